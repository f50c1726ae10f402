package events_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"cliq/events"
)

const (
	benchSubscribers = 1000
	// benchRunEvents is the number of events of one benchmarked run.
	benchRunEvents = 20
)

// frameCounter counts the text frames received by many clients and
// signals when the total reaches the expected count.
type frameCounter struct {
	received atomic.Int64
	want     atomic.Int64
	reached  chan struct{}
}

func newFrameCounter() *frameCounter {
	return &frameCounter{reached: make(chan struct{}, 1)}
}

// expect adds n frames to the expected total.
func (fc *frameCounter) expect(n int64) { fc.want.Add(n) }

// wait blocks until the expected total has arrived.
func (fc *frameCounter) wait(tb testing.TB) {
	tb.Helper()
	for fc.received.Load() < fc.want.Load() {
		select {
		case <-fc.reached:
		case <-time.After(waitTimeout):
			tb.Fatalf("received %d frames, want %d", fc.received.Load(), fc.want.Load())
		}
	}
}

// count reads server frames from r until an error and counts text frames.
func (fc *frameCounter) count(r *bufio.Reader) {
	readFrames(r, func() {
		if fc.received.Add(1) >= fc.want.Load() {
			select {
			case fc.reached <- struct{}{}:
			default:
			}
		}
	})
}

// readFrames reads server frames from r until an error and calls onText
// for each text frame.
func readFrames(r *bufio.Reader, onText func()) {
	var head [2]byte
	var ext [8]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return
		}
		length := int64(head[1] & 0x7f)
		switch length {
		case 126:
			if _, err := io.ReadFull(r, ext[:2]); err != nil {
				return
			}
			length = int64(binary.BigEndian.Uint16(ext[:2]))
		case 127:
			if _, err := io.ReadFull(r, ext[:]); err != nil {
				return
			}
			length = int64(binary.BigEndian.Uint64(ext[:]))
		}
		if _, err := r.Discard(int(length)); err != nil {
			return
		}
		if head[0]&0x0f == opText {
			onText()
		}
	}
}

// bareBroadcaster is the baseline: a plain x/net/websocket server whose
// broadcast loop encodes each event once per subscriber and writes to the
// subscribers one after another.
type bareBroadcaster struct {
	mu      sync.Mutex
	conns   []*websocket.Conn
	joined  chan struct{}
	release chan struct{}
}

func (bb *bareBroadcaster) serve(ws *websocket.Conn) {
	bb.mu.Lock()
	bb.conns = append(bb.conns, ws)
	bb.mu.Unlock()
	bb.joined <- struct{}{}
	<-bb.release
}

func (bb *bareBroadcaster) broadcast(tb testing.TB, e events.Event) {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	e.Channel = events.JobChannel(e.InstanceID)
	for _, ws := range bb.conns {
		data, err := json.Marshal(e)
		if err != nil {
			tb.Fatal(err)
		}
		if err := websocket.Message.Send(ws, string(data)); err != nil {
			tb.Fatal(err)
		}
	}
}

// startBare connects n counting clients to a bare broadcaster.
func startBare(b *testing.B, n int, fc *frameCounter) *bareBroadcaster {
	bb := &bareBroadcaster{joined: make(chan struct{}, n), release: make(chan struct{})}
	srv := httptest.NewServer(websocket.Server{Handler: bb.serve})
	b.Cleanup(func() {
		close(bb.release)
		srv.Close()
	})
	for range n {
		raw := MustDialRaw(b, srv, "/")
		go fc.count(raw.br)
	}
	for range n {
		<-bb.joined
	}
	return bb
}

// startHubClients connects n counting clients subscribed to channel.
func startHubClients(b *testing.B, srv *httptest.Server, n int, channel string, fc *frameCounter) {
	for range n {
		raw := MustDialRaw(b, srv, "/")
		raw.Send(events.ClientMessage{Action: events.ActionSubscribe, Channel: channel})
		if m := raw.MustReadText(); m.Type != events.TypeSubscribed {
			b.Fatalf("reply = %+v, want ack", m)
		}
		// MustReadText set a read deadline, which counting must not keep.
		if err := raw.conn.SetReadDeadline(time.Time{}); err != nil {
			b.Fatal(err)
		}
		go fc.count(raw.br)
	}
}

// BenchmarkHub_FanOut sends one run's events to 1,000 subscribers through
// the hub and through the bare broadcast loop, and reports the frame rate
// of both and their ratio.
func BenchmarkHub_FanOut(b *testing.B) {
	hubCounter, bareCounter := newFrameCounter(), newFrameCounter()
	hub, srv := MustStartHub(b, events.HubOptions{})
	startHubClients(b, srv, benchSubscribers, "job:cliq-aaaaaa", hubCounter)
	bare := startBare(b, benchSubscribers, bareCounter)

	run := make([]events.Event, benchRunEvents)
	for i := range run {
		run[i] = newEvent("cliq-aaaaaa", "run_1", int64(i+1), events.PhaseDone)
		run[i].Phase = "implement"
		run[i].Data = map[string]any{"duration_ms": 1234, "agent": "exec"}
	}
	frames := int64(benchRunEvents * benchSubscribers)

	var hubTime, bareTime time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		hubCounter.expect(frames)
		for _, e := range run {
			hub.Publish(e)
		}
		hubCounter.wait(b)
		hubTime += time.Since(start)

		start = time.Now()
		bareCounter.expect(frames)
		for _, e := range run {
			bare.broadcast(b, e)
		}
		bareCounter.wait(b)
		bareTime += time.Since(start)
	}
	total := float64(frames) * float64(b.N)
	hubRate := total / hubTime.Seconds()
	bareRate := total / bareTime.Seconds()
	b.ReportMetric(hubRate, "hub-frames/s")
	b.ReportMetric(bareRate, "bare-frames/s")
	b.ReportMetric(hubRate/bareRate, "hub/bare")
}

// BenchmarkHub_IdleConnection reports the server memory of an idle,
// subscribed hub connection: the heap and stack growth over 1,000 of them.
// The clients are bare TCP connections without goroutines, so their share
// (a few hundred bytes each) is included, which overstates the cost a
// little.
func BenchmarkHub_IdleConnection(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(measureIdleConnection(b), "B/conn")
	}
}

// measureIdleConnection connects benchSubscribers idle clients to a new
// hub and returns the memory growth per connection.
func measureIdleConnection(b *testing.B) float64 {
	hub := events.NewHub(events.HubOptions{Logger: slog.New(slog.DiscardHandler)})
	go hub.Run(context.Background())
	srv := httptest.NewServer(hub.Handler(nil))
	defer srv.Close()
	defer hub.Stop()

	before := memInUse()
	raws := make([]*rawConn, benchSubscribers)
	for i := range raws {
		raws[i] = MustDialRaw(b, srv, "/")
		raws[i].Send(events.ClientMessage{Action: events.ActionSubscribe, Channel: "job:cliq-aaaaaa"})
		raws[i].MustReadText()
		raws[i].br = nil
	}
	after := memInUse()
	for _, raw := range raws {
		raw.conn.Close()
	}
	return float64(after-before) / benchSubscribers
}

// arrivalTracker records, for each event of a paced run, when the last of
// the subscribers received it. Every client receives the events in order,
// so a client's k-th text frame is event k.
type arrivalTracker struct {
	subscribers int64
	published   []time.Time
	arrivals    []atomic.Int64
	delays      []time.Duration
	done        chan struct{}
	remaining   atomic.Int64
}

func newArrivalTracker(subscribers, events int) *arrivalTracker {
	tr := &arrivalTracker{
		subscribers: int64(subscribers),
		published:   make([]time.Time, events),
		arrivals:    make([]atomic.Int64, events),
		delays:      make([]time.Duration, events),
		done:        make(chan struct{}),
	}
	tr.remaining.Store(int64(events))
	return tr
}

// track counts the frames of one client.
func (tr *arrivalTracker) track(r *bufio.Reader) {
	next := 0
	readFrames(r, func() {
		k := next
		next++
		if k >= len(tr.arrivals) {
			return
		}
		if tr.arrivals[k].Add(1) == tr.subscribers {
			tr.delays[k] = time.Since(tr.published[k])
			if tr.remaining.Add(-1) == 0 {
				close(tr.done)
			}
		}
	})
}

// BenchmarkHub_FanOutPaced publishes 200 events at 200 events/s to 1,000
// subscribers and reports the p99, over the events, of the delay until the
// last subscriber has an event. That bounds the p99 delay of single frames
// from above.
func BenchmarkHub_FanOutPaced(b *testing.B) {
	const rate, count = 200, 200
	for b.Loop() {
		tr := newArrivalTracker(benchSubscribers, count)
		hub := events.NewHub(events.HubOptions{Logger: slog.New(slog.DiscardHandler)})
		go hub.Run(context.Background())
		srv := httptest.NewServer(hub.Handler(nil))
		raws := connectTracked(b, srv, tr)

		tick := time.NewTicker(time.Second / rate)
		for i := range count {
			<-tick.C
			tr.published[i] = time.Now()
			hub.Publish(newEvent("cliq-aaaaaa", "run_1", int64(i+1), events.PhaseDone))
		}
		tick.Stop()
		select {
		case <-tr.done:
		case <-time.After(waitTimeout):
			b.Fatalf("%d events did not reach every subscriber", tr.remaining.Load())
		}
		for _, raw := range raws {
			raw.conn.Close()
		}
		hub.Stop()
		srv.Close()

		slices.Sort(tr.delays)
		b.ReportMetric(float64(tr.delays[count*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(tr.delays[count-1].Microseconds())/1000, "max-ms")
	}
}

// connectTracked connects the tracker's subscribers to srv's hub.
func connectTracked(b *testing.B, srv *httptest.Server, tr *arrivalTracker) []*rawConn {
	var raws []*rawConn
	for range tr.subscribers {
		raw := MustDialRaw(b, srv, "/")
		raw.Send(events.ClientMessage{Action: events.ActionSubscribe, Channel: "job:cliq-aaaaaa"})
		raw.MustReadText()
		if err := raw.conn.SetReadDeadline(time.Time{}); err != nil {
			b.Fatal(err)
		}
		go tr.track(raw.br)
		raws = append(raws, raw)
	}
	return raws
}

// memInUse returns the heap and stack memory in use after a collection.
func memInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
