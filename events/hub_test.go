package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"cliq/events"
)

func TestHub_Subscribe(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		hub, srv := MustStartHub(t, events.HubOptions{})
		ws := MustDial(t, wsURL(srv, "/"))
		MustSubscribe(t, ws, "job:cliq-aaaaaa")

		for seq := int64(1); seq <= 5; seq++ {
			hub.Publish(newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseStart))
		}
		for want := int64(1); want <= 5; want++ {
			m := MustReceive(t, ws)
			if m.Seq != want {
				t.Fatalf("seq = %d, want %d", m.Seq, want)
			}
			if m.Channel != "job:cliq-aaaaaa" {
				t.Errorf("channel = %q, want job:cliq-aaaaaa", m.Channel)
			}
			if m.Type != events.PhaseStart {
				t.Errorf("type = %q, want phase_start", m.Type)
			}
		}
	})

	t.Run("OtherInstance", func(t *testing.T) {
		hub, srv := MustStartHub(t, events.HubOptions{})
		ws := MustDial(t, wsURL(srv, "/ws"))
		MustSubscribe(t, ws, "job:cliq-aaaaaa")

		hub.Publish(newEvent("cliq-bbbbbb", "run_2", 1, events.PipelineStart))
		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 7, events.PhaseDone))
		if m := MustReceive(t, ws); m.InstanceID != "cliq-aaaaaa" || m.Seq != 7 {
			t.Fatalf("got %+v, want only the event of cliq-aaaaaa", m.Event)
		}
	})

	t.Run("JobsPipelineLevelOnly", func(t *testing.T) {
		hub, srv := MustStartHub(t, events.HubOptions{})
		ws := MustDial(t, wsURL(srv, "/"))
		MustSubscribe(t, ws, events.JobsChannel)

		nested := newEvent("cliq-aaaaaa", "run_1", 3, events.PipelineDone)
		nested.Depth = 1
		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))
		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 2, events.PhaseStart))
		hub.Publish(nested)
		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 4, events.GateVerdict))
		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 5, events.PipelineError))
		hub.Publish(newEvent("cliq-bbbbbb", "run_2", 1, events.PipelineDone))

		want := []struct {
			id  string
			seq int64
		}{{"cliq-aaaaaa", 1}, {"cliq-aaaaaa", 5}, {"cliq-bbbbbb", 1}}
		for _, w := range want {
			m := MustReceive(t, ws)
			if m.InstanceID != w.id || m.Seq != w.seq {
				t.Fatalf("got %s seq %d (%s), want %s seq %d", m.InstanceID, m.Seq, m.Type, w.id, w.seq)
			}
			if m.Channel != events.JobsChannel {
				t.Errorf("channel = %q, want jobs", m.Channel)
			}
		}
	})

	t.Run("Repeated", func(t *testing.T) {
		hub, srv := MustStartHub(t, events.HubOptions{})
		ws := MustDial(t, wsURL(srv, "/"))
		MustSubscribe(t, ws, "job:cliq-aaaaaa")
		MustSubscribe(t, ws, "job:cliq-aaaaaa")

		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))
		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 2, events.PhaseStart))
		if m := MustReceive(t, ws); m.Seq != 1 {
			t.Fatalf("seq = %d, want 1", m.Seq)
		}
		if m := MustReceive(t, ws); m.Seq != 2 {
			t.Fatalf("seq = %d, want 2 (no duplicate of 1)", m.Seq)
		}
	})
}

func TestHub_Unsubscribe(t *testing.T) {
	hub, srv := MustStartHub(t, events.HubOptions{})
	ws := MustDial(t, wsURL(srv, "/"))
	MustSubscribe(t, ws, "job:cliq-aaaaaa")
	MustSubscribe(t, ws, "job:cliq-bbbbbb")

	MustSend(t, ws, events.ClientMessage{Action: events.ActionUnsubscribe, Channel: "job:cliq-aaaaaa"})
	if m := MustReceive(t, ws); m.Type != events.TypeUnsubscribed || m.Channel != "job:cliq-aaaaaa" {
		t.Fatalf("reply = %+v, want unsubscribed ack", m)
	}

	// The event of cliq-bbbbbb marks the end: anything of cliq-aaaaaa
	// would arrive before it.
	hub.Publish(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))
	hub.Publish(newEvent("cliq-bbbbbb", "run_2", 1, events.PipelineStart))
	if m := MustReceive(t, ws); m.InstanceID != "cliq-bbbbbb" {
		t.Fatalf("got event of %s after unsubscribing from it", m.InstanceID)
	}
}

func TestHub_BadMessage(t *testing.T) {
	tests := []struct {
		name    string
		message string
		code    string
	}{
		{"InvalidJSON", `{"action":`, events.CodeInvalidJSON},
		{"NotObject", `[1,2]`, events.CodeInvalidJSON},
		{"SinceString", `{"action":"subscribe","channel":"job:cliq-aaaaaa","since":"3"}`, events.CodeInvalidRequest},
		{"SinceFraction", `{"action":"subscribe","channel":"job:cliq-aaaaaa","since":3.5}`, events.CodeInvalidRequest},
		{"UnknownAction", `{"action":"publish","channel":"jobs"}`, events.CodeUnknownAction},
		{"MissingAction", `{"channel":"jobs"}`, events.CodeUnknownAction},
		{"UnknownChannel", `{"action":"subscribe","channel":"news"}`, events.CodeUnknownChannel},
		{"EmptyInstance", `{"action":"subscribe","channel":"job:"}`, events.CodeUnknownChannel},
		{"SinceOnJobs", `{"action":"subscribe","channel":"jobs","since":3}`, events.CodeInvalidRequest},
		{"NegativeSince", `{"action":"subscribe","channel":"job:x","since":-1}`, events.CodeInvalidRequest},
		{"TooLarge", `{"action":"subscribe","channel":"job:` + strings.Repeat("x", 20000) + `"}`, events.CodeTooLarge},
	}
	hub, srv := MustStartHub(t, events.HubOptions{})
	ws := MustDial(t, wsURL(srv, "/"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := websocket.Message.Send(ws, tt.message); err != nil {
				t.Fatal(err)
			}
			m := MustReceive(t, ws)
			if m.Type != events.TypeError {
				t.Fatalf("type = %q, want error", m.Type)
			}
			if m.Error == nil || m.Error.Code != tt.code {
				t.Fatalf("error = %+v, want code %s", m.Error, tt.code)
			}
			if m.Error.Message == "" {
				t.Error("error message is empty")
			}
			if strings.Contains(m.Error.Message, "Go ") {
				t.Errorf("error message names Go types: %s", m.Error.Message)
			}
		})
	}

	t.Run("ConnectionStaysOpen", func(t *testing.T) {
		MustSubscribe(t, ws, "job:cliq-aaaaaa")
		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))
		if m := MustReceive(t, ws); m.Seq != 1 {
			t.Fatalf("seq = %d, want 1", m.Seq)
		}
	})
}

func TestHub_SubscribeSince(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		hub, srv := MustStartHub(t, events.HubOptions{})
		for seq := int64(1); seq <= 10; seq++ {
			hub.Publish(newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseStart))
		}
		ws := MustDial(t, wsURL(srv, "/"))
		since := int64(6)
		MustSend(t, ws, events.ClientMessage{Action: events.ActionSubscribe, Channel: "job:cliq-aaaaaa", Since: &since})
		if m := MustReceive(t, ws); m.Type != events.TypeSubscribed {
			t.Fatalf("first reply = %+v, want subscribed ack", m)
		}
		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 11, events.PipelineDone))
		for want := int64(7); want <= 11; want++ {
			if m := MustReceive(t, ws); m.Seq != want {
				t.Fatalf("seq = %d, want %d", m.Seq, want)
			}
		}
	})

	t.Run("NewRunResets", func(t *testing.T) {
		hub, srv := MustStartHub(t, events.HubOptions{})
		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))
		hub.Publish(newEvent("cliq-aaaaaa", "run_1", 2, events.PipelineDone))
		hub.Publish(newEvent("cliq-aaaaaa", "run_2", 1, events.PipelineStart))
		ws := MustDial(t, wsURL(srv, "/"))
		since := int64(0)
		MustSend(t, ws, events.ClientMessage{Action: events.ActionSubscribe, Channel: "job:cliq-aaaaaa", Since: &since})
		MustReceive(t, ws) // the ack
		hub.Publish(newEvent("cliq-aaaaaa", "run_2", 2, events.PhaseStart))
		for want := int64(1); want <= 2; want++ {
			m := MustReceive(t, ws)
			if m.RunID != "run_2" || m.Seq != want {
				t.Fatalf("got %s seq %d, want run_2 seq %d", m.RunID, m.Seq, want)
			}
		}
	})

	t.Run("ConcurrentPublish", func(t *testing.T) {
		const total = 3000
		hub, srv := MustStartHub(t, events.HubOptions{SendBuffer: total + 8})
		ws := MustDial(t, wsURL(srv, "/"))

		// Subscribe while the publisher is somewhere in the middle.
		halfway := make(chan struct{})
		go func() {
			for seq := int64(1); seq <= total; seq++ {
				hub.Publish(newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseDone))
				if seq == total/3 {
					close(halfway)
				}
			}
		}()
		<-halfway
		since := int64(5)
		MustSend(t, ws, events.ClientMessage{Action: events.ActionSubscribe, Channel: "job:cliq-aaaaaa", Since: &since})
		if m := MustReceive(t, ws); m.Type != events.TypeSubscribed {
			t.Fatalf("first reply = %+v, want subscribed ack", m)
		}
		var got []int64
		for len(got) < total-5 {
			got = append(got, MustReceive(t, ws).Seq)
		}
		for i, seq := range got {
			if seq != int64(i)+6 {
				t.Fatalf("seq #%d = %d, want %d; got %s", i, seq, i+6, seqs(got))
			}
		}
	})

	t.Run("Gap", func(t *testing.T) {
		hub, srv := MustStartHub(t, events.HubOptions{ReplayLimit: 4})
		for seq := int64(1); seq <= 10; seq++ {
			hub.Publish(newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseStart))
		}
		ws := MustDial(t, wsURL(srv, "/"))
		since := int64(0)
		MustSend(t, ws, events.ClientMessage{Action: events.ActionSubscribe, Channel: "job:cliq-aaaaaa", Since: &since})
		MustReceive(t, ws) // the ack
		m := MustReceive(t, ws)
		if m.Type != events.TypeError || m.Error == nil || m.Error.Code != events.CodeReplayGap {
			t.Fatalf("got %+v, want a replay_gap error", m)
		}
		if first := MustReceive(t, ws); first.Seq <= 1 || first.Type != events.PhaseStart {
			t.Fatalf("first replayed event = %+v, want a later seq", first.Event)
		}
	})
}

func TestHub_SlowClient(t *testing.T) {
	logs := newRecordHandler()
	hub, srv := MustStartHub(t, events.HubOptions{SendBuffer: 4, Logger: slog.New(logs)})

	// The stalled client reads its ack, then nothing.
	stalled := MustDialRaw(t, srv, "/")
	stalled.Send(events.ClientMessage{Action: events.ActionSubscribe, Channel: "job:cliq-aaaaaa"})
	if m := stalled.MustReadText(); m.Type != events.TypeSubscribed {
		t.Fatalf("stalled client reply = %+v, want ack", m)
	}
	normal := MustDial(t, wsURL(srv, "/"))
	MustSubscribe(t, normal, "job:cliq-aaaaaa")

	// Publish large events in step with the normal client until the stalled
	// one is dropped, then a few more.
	payload := strings.Repeat("x", 64<<10)
	seq := int64(0)
	publish := func() {
		seq++
		e := newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseDone)
		e.Data["output"] = payload
		hub.Publish(e)
		if m := MustReceive(t, normal); m.Seq != seq {
			t.Fatalf("normal client got seq %d, want %d", m.Seq, seq)
		}
	}
	for !logs.Seen("client dropped") {
		publish()
		if seq > 5000 {
			t.Fatal("stalled client not dropped after 5000 events")
		}
	}
	for range 20 {
		publish()
	}

	t.Logf("dropped after %d events", seq)
	code, texts := stalled.MustReadUntilClose()
	if code != events.ClosePolicyViolation {
		t.Errorf("close code = %d, want 1008", code)
	}
	if int64(texts) >= seq {
		t.Errorf("stalled client read %d frames, want fewer than the %d events", texts, seq)
	}
}

func TestHub_Stop(t *testing.T) {
	t.Run("GoingAway", func(t *testing.T) {
		hub := events.NewHub(events.HubOptions{Logger: slog.New(slog.DiscardHandler)})
		go hub.Run(context.Background())
		srv := newServer(t, hub.Handler(nil))
		raw := MustDialRaw(t, srv, "/")
		raw.Send(events.ClientMessage{Action: events.ActionSubscribe, Channel: "jobs"})
		raw.MustReadText()

		stopped := make(chan struct{})
		go func() {
			hub.Stop()
			close(stopped)
		}()
		if code, _ := raw.MustReadUntilClose(); code != events.CloseGoingAway {
			t.Errorf("close code = %d, want 1001", code)
		}
		raw.conn.Close()
		select {
		case <-stopped:
		case <-time.After(waitTimeout):
			t.Fatal("Stop did not return")
		}

		late := MustDialRaw(t, srv, "/")
		if code, _ := late.MustReadUntilClose(); code != events.CloseGoingAway {
			t.Errorf("close code after Stop = %d, want 1001", code)
		}
	})

	t.Run("ContextDone", func(t *testing.T) {
		hub := events.NewHub(events.HubOptions{Logger: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		go hub.Run(ctx)
		srv := newServer(t, hub.Handler(nil))
		raw := MustDialRaw(t, srv, "/")
		raw.Send(events.ClientMessage{Action: events.ActionSubscribe, Channel: "jobs"})
		raw.MustReadText()

		cancel()
		if code, _ := raw.MustReadUntilClose(); code != events.CloseGoingAway {
			t.Errorf("close code = %d, want 1001", code)
		}
		raw.conn.Close()
		hub.Stop()
	})
}

func TestHub_CloseWhere(t *testing.T) {
	hub := events.NewHub(events.HubOptions{Logger: slog.New(slog.DiscardHandler)})
	go hub.Run(context.Background())
	t.Cleanup(hub.Stop)
	handler := hub.HandlerWithMeta(nil, func(r *http.Request) any { return r.URL.Query().Get("who") })
	srv := newServer(t, handler)

	revoked := MustDialRaw(t, srv, "/?who=tok_revoked")
	kept := MustDial(t, wsURL(srv, "/?who=tok_kept"))
	revoked.Send(events.ClientMessage{Action: events.ActionSubscribe, Channel: "jobs"})
	revoked.MustReadText()
	MustSubscribe(t, kept, events.JobsChannel)

	hub.CloseWhere(func(meta any) bool { return meta == "tok_revoked" })
	if code, _ := revoked.MustReadUntilClose(); code != events.ClosePolicyViolation {
		t.Errorf("close code = %d, want 1008", code)
	}
	hub.Publish(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))
	if m := MustReceive(t, kept); m.Seq != 1 {
		t.Fatalf("kept client got %+v, want seq 1", m)
	}
}

func TestHub_Ping(t *testing.T) {
	_, srv := MustStartHub(t, events.HubOptions{PingInterval: 20 * time.Millisecond})
	raw := MustDialRaw(t, srv, "/")
	for {
		op, _, err := raw.ReadFrame()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if op == opPing {
			return
		}
	}
}

func TestHub_Handler(t *testing.T) {
	t.Run("OriginRejected", func(t *testing.T) {
		hub, _ := MustStartHub(t, events.HubOptions{})
		srv := newServer(t, hub.Handler(func(r *http.Request) bool {
			return r.Header.Get("Origin") == "http://good.example"
		}))
		_, err := websocket.Dial(wsURL(srv, "/"), "", "http://evil.example")
		if err == nil {
			t.Fatal("dial with a rejected origin succeeded")
		}
		ws, err := websocket.Dial(wsURL(srv, "/"), "", "http://good.example")
		if err != nil {
			t.Fatalf("dial with an allowed origin: %v", err)
		}
		ws.Close()
	})

	t.Run("ManyClients", func(t *testing.T) {
		hub, srv := MustStartHub(t, events.HubOptions{})
		const clients = 20
		conns := make([]*websocket.Conn, clients)
		for i := range conns {
			conns[i] = MustDial(t, wsURL(srv, "/"))
			MustSubscribe(t, conns[i], "job:cliq-aaaaaa")
		}
		for seq := int64(1); seq <= 50; seq++ {
			hub.Publish(newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseDone))
		}
		var wg sync.WaitGroup
		errs := make(chan string, clients)
		for _, ws := range conns {
			wg.Go(func() {
				for want := int64(1); want <= 50; want++ {
					m, err := receive(ws)
					if err != nil || m.Seq != want {
						errs <- fmt.Sprintf("got seq %d (error %v), want %d", m.Seq, err, want)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})
}

// newServer starts an httptest server closed at the end of the test.
func newServer(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv
}
