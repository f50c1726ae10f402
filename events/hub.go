package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of HubOptions.
const (
	DefaultSendBuffer   = 256
	DefaultPingInterval = 30 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultReplayLimit  = 10000
	DefaultPublishLimit = 65536
)

// WebSocket close codes the hub and the feed send (RFC 6455, section 7.4.1).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	ClosePolicyViolation = 1008
)

// HubOptions configures a Hub. Zero fields take the Default* values.
type HubOptions struct {
	// SendBuffer is the number of messages queued per client. A client whose
	// queue is full when an event arrives is disconnected with close code
	// 1008.
	SendBuffer int
	// PingInterval is the time between two pings on every connection.
	PingInterval time.Duration
	// WriteTimeout bounds every write to a client, the close frame included.
	WriteTimeout time.Duration
	// ReplayLimit is the maximum number of events of an instance's current
	// run kept for subscribers that pass since. Older events are forgotten.
	ReplayLimit int
	// PublishLimit is the maximum number of events waiting for the hub
	// goroutine. Publish drops events beyond it and logs a warning.
	PublishLimit int
	// Logger receives the hub's log lines, with component=hub added.
	// Nil means slog.Default().
	Logger *slog.Logger
}

func (o HubOptions) withDefaults() HubOptions {
	if o.SendBuffer <= 0 {
		o.SendBuffer = DefaultSendBuffer
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.ReplayLimit <= 0 {
		o.ReplayLimit = DefaultReplayLimit
	}
	if o.PublishLimit <= 0 {
		o.PublishLimit = DefaultPublishLimit
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Hub fans events out to WebSocket clients. One goroutine, Run, owns every
// client and subscription. Publish only queues an event for it, and the
// hub hands a frame to a client by a non-blocking append to the client's
// bounded queue, so neither a publisher nor a client waits for another
// client.
type Hub struct {
	opts HubOptions
	log  *slog.Logger

	// pending is the queue between Publish and Run, guarded by pendingMu.
	// wake has room for one signal, which wakes Run when pending has events.
	pendingMu sync.Mutex
	pending   []Event
	dropped   int64
	wake      chan struct{}

	register   chan *client
	requests   chan request
	unregister chan *client
	closeWhere chan func(meta any) bool

	quit     chan struct{}
	quitOnce sync.Once
	done     chan struct{}
	started  atomic.Bool

	// connMu guards stopped and the calls to conns.Add, so that no
	// connection is added while Stop waits for the others.
	connMu  sync.Mutex
	stopped bool
	conns   sync.WaitGroup

	// The fields below are owned by the Run goroutine.
	clients map[*client]struct{}
	subs    map[string]map[*client]struct{}
	runs    map[string]*runLog
}

// frame is one encoded message to a client, shared by every client that
// receives it. A frame with a batch sends the batch's frames in order.
type frame struct {
	seq   int64
	data  []byte
	batch []*frame
}

// runLog keeps the encoded job-channel frames of an instance's current run.
type runLog struct {
	runID  string
	frames []*frame
}

// request is a subscribe or unsubscribe from a client's reader, or a
// problem with the client's message to report back.
type request struct {
	c   *client
	msg ClientMessage
	err *channelError
}

// NewHub returns a hub configured by opts. Call Run to start it.
func NewHub(opts HubOptions) *Hub {
	opts = opts.withDefaults()
	return &Hub{
		opts:       opts,
		log:        opts.Logger.With("component", "hub"),
		wake:       make(chan struct{}, 1),
		register:   make(chan *client),
		requests:   make(chan request),
		unregister: make(chan *client),
		closeWhere: make(chan func(any) bool),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		clients:    make(map[*client]struct{}),
		subs:       make(map[string]map[*client]struct{}),
		runs:       make(map[string]*runLog),
	}
}

// Run owns the hub's state until ctx is done or Stop is called. On return,
// every client is closed with code 1001. Call Run once.
func (h *Hub) Run(ctx context.Context) {
	h.started.Store(true)
	defer close(h.done)
	h.log.Info("hub started")
	ping := time.NewTicker(h.opts.PingInterval)
	defer ping.Stop()

	for {
		select {
		case <-ctx.Done():
			h.shutdown()
			return
		case <-h.quit:
			h.shutdown()
			return
		case <-h.wake:
			h.drain()
		case c := <-h.register:
			h.clients[c] = struct{}{}
		case c := <-h.unregister:
			h.remove(c)
		case r := <-h.requests:
			h.handle(r)
		case match := <-h.closeWhere:
			h.closeMatching(match)
		case <-ping.C:
			for c := range h.clients {
				c.ping()
			}
		}
	}
}

// Publish queues e for the channel job:<e.InstanceID>, and for the jobs
// channel when e is a depth-0 pipeline_start, pipeline_done or
// pipeline_error. Publish never waits for clients. When PublishLimit events
// already wait for the hub goroutine, e is dropped and a warning is logged.
// After Run has returned, Publish drops e silently.
func (h *Hub) Publish(e Event) {
	select {
	case <-h.done:
		return
	default:
	}
	h.pendingMu.Lock()
	if len(h.pending) >= h.opts.PublishLimit {
		h.dropped++
		n := h.dropped
		h.pendingMu.Unlock()
		h.logDroppedEvent(e, n)
		return
	}
	h.pending = append(h.pending, e)
	h.pendingMu.Unlock()

	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// logDroppedEvent logs the first dropped event and every 1000th after it.
func (h *Hub) logDroppedEvent(e Event, total int64) {
	if total%1000 != 1 {
		return
	}
	h.log.Warn("event dropped, publish queue full",
		"instance_id", e.InstanceID, "run_id", e.RunID, "seq", e.Seq,
		"limit", h.opts.PublishLimit, "dropped_total", total)
}

// Stop closes every client with code 1001 and waits until their handlers
// have returned. New connections after Stop are closed with 1001 at once.
// Stop may be called more than once.
func (h *Hub) Stop() {
	h.connMu.Lock()
	h.stopped = true
	h.connMu.Unlock()

	h.quitOnce.Do(func() { close(h.quit) })
	if h.started.Load() {
		<-h.done
	}
	h.conns.Wait()
}

// CloseWhere closes, with code 1008, every connection whose metadata (see
// HandlerWithMeta) makes match return true. The server uses it to drop the
// connections of a revoked token. match runs on the hub goroutine and must
// not block.
func (h *Hub) CloseWhere(match func(meta any) bool) {
	select {
	case h.closeWhere <- match:
	case <-h.quit:
	case <-h.done:
	}
}

// drain takes every pending event and dispatches it in publish order.
func (h *Hub) drain() {
	h.pendingMu.Lock()
	batch := h.pending
	h.pending = nil
	h.pendingMu.Unlock()

	for _, e := range batch {
		h.dispatch(e)
	}
}

// dispatch encodes e once per channel and queues it for the subscribers.
func (h *Hub) dispatch(e Event) {
	if e.InstanceID == "" {
		h.log.Warn("event without instance_id ignored", "type", e.Type, "run_id", e.RunID, "seq", e.Seq)
		return
	}
	channel := JobChannel(e.InstanceID)
	f, ok := h.encode(e, channel)
	if !ok {
		return
	}
	h.remember(e, f)
	h.fanOut(channel, f)

	if pipelineLevel(e) && len(h.subs[JobsChannel]) > 0 {
		if f, ok := h.encode(e, JobsChannel); ok {
			h.fanOut(JobsChannel, f)
		}
	}
}

func (h *Hub) encode(e Event, channel string) (*frame, bool) {
	e.Channel = channel
	data, err := json.Marshal(e)
	if err != nil {
		h.log.Error("event not encodable, dropped", "instance_id", e.InstanceID,
			"run_id", e.RunID, "seq", e.Seq, "type", e.Type, "error", err)
		return nil, false
	}
	return &frame{seq: e.Seq, data: data}, true
}

// remember keeps f for later subscribers with since. A new run_id starts a
// new log, so the log always contains the current run only.
func (h *Hub) remember(e Event, f *frame) {
	log := h.runs[e.InstanceID]
	if log == nil || log.runID != e.RunID {
		log = &runLog{runID: e.RunID}
		h.runs[e.InstanceID] = log
	}
	log.frames = append(log.frames, f)

	// Trim in steps of a quarter of the limit, so that trimming copies the
	// slice once every ReplayLimit/4 events instead of on every event.
	limit := h.opts.ReplayLimit
	if len(log.frames) > limit+limit/4 {
		log.frames = append([]*frame(nil), log.frames[len(log.frames)-limit:]...)
	}
}

// fanOut queues f for every subscriber of channel and drops the subscribers
// whose queue is full.
func (h *Hub) fanOut(channel string, f *frame) {
	var slow []*client
	for c := range h.subs[channel] {
		if !c.enqueue(f) {
			slow = append(slow, c)
		}
	}
	for _, c := range slow {
		h.drop(c, channel)
	}
}

// drop disconnects a client that cannot keep up.
func (h *Hub) drop(c *client, channel string) {
	h.log.Warn("client dropped, send buffer full", "remote", c.remote,
		"channel", channel, "send_buffer", h.opts.SendBuffer)
	h.remove(c)
	c.shutdown(ClosePolicyViolation)
}

// remove deletes c and its subscriptions. Removing an unknown client does
// nothing.
func (h *Hub) remove(c *client) {
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	for channel := range c.channels {
		h.unsubscribe(c, channel)
	}
}

func (h *Hub) unsubscribe(c *client, channel string) {
	delete(c.channels, channel)
	subs := h.subs[channel]
	delete(subs, c)
	if len(subs) == 0 {
		delete(h.subs, channel)
	}
}

// handle carries out one client request. The reply, the replayed events
// and the registration happen in this one step, so a subscriber with since
// receives every event exactly once.
func (h *Hub) handle(r request) {
	c := r.c
	if _, ok := h.clients[c]; !ok {
		return
	}
	switch {
	case r.err != nil:
		h.reply(c, errorFrame(r.err))
	case r.msg.Action == ActionUnsubscribe:
		h.unsubscribe(c, r.msg.Channel)
		h.reply(c, ackFrame(TypeUnsubscribed, r.msg.Channel))
	default:
		h.subscribe(c, r.msg)
	}
}

// subscribe acknowledges, replays the stored events after since, and adds
// c to the channel. A repeated subscribe only acknowledges, because a
// second replay would repeat events.
func (h *Hub) subscribe(c *client, m ClientMessage) {
	if _, ok := c.channels[m.Channel]; ok {
		h.reply(c, ackFrame(TypeSubscribed, m.Channel))
		return
	}
	if !h.reply(c, ackFrame(TypeSubscribed, m.Channel)) {
		return
	}
	if m.Since != nil && !h.replay(c, m.Channel, *m.Since) {
		return
	}
	c.channels[m.Channel] = struct{}{}
	subs := h.subs[m.Channel]
	if subs == nil {
		subs = make(map[*client]struct{})
		h.subs[m.Channel] = subs
	}
	subs[c] = struct{}{}
}

// replay queues, as one batch, the stored events of channel with a seq
// above since. It reports false when c was dropped.
func (h *Hub) replay(c *client, channel string, since int64) bool {
	log := h.runs[channel[len(JobChannelPrefix):]]
	if log == nil {
		return true
	}
	var batch []*frame
	if len(log.frames) > 0 && log.frames[0].seq > since+1 {
		batch = append(batch, errorFrame(&channelError{CodeReplayGap, replayGapMessage(
			log.runID, since, log.frames[0].seq)}))
	}
	for _, f := range log.frames {
		if f.seq > since {
			batch = append(batch, f)
		}
	}
	if len(batch) == 0 {
		return true
	}
	return h.reply(c, &frame{batch: batch})
}

// reply queues f for c alone, dropping c when its queue is full.
func (h *Hub) reply(c *client, f *frame) bool {
	if !c.enqueue(f) {
		h.drop(c, "")
		return false
	}
	return true
}

func (h *Hub) closeMatching(match func(any) bool) {
	for c := range h.clients {
		if match(c.meta) {
			h.log.Info("client closed by request", "remote", c.remote)
			h.remove(c)
			c.shutdown(ClosePolicyViolation)
		}
	}
}

// shutdown closes every client with 1001 when Run ends.
func (h *Hub) shutdown() {
	for c := range h.clients {
		h.remove(c)
		c.shutdown(CloseGoingAway)
	}
	h.log.Info("hub stopped")
}
