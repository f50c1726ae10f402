package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// maxClientMessage bounds one client frame. Subscribe and unsubscribe
// messages are well under 1 KiB.
const maxClientMessage = 16 << 10

// closeGrace is how long a connection waits for the peer's close frame
// after sending its own, before it closes the TCP connection.
const closeGrace = time.Second

// textCodec sends a pre-encoded []byte as one text frame without copying
// it. websocket.Message would send []byte as a binary frame and copy a
// string on every send.
var textCodec = websocket.Codec{Marshal: func(v any) ([]byte, byte, error) {
	data, _ := v.([]byte)
	return data, websocket.TextFrame, nil
}}

// pingCodec sends an empty ping frame. Clients reply with a pong, which
// x/net/websocket reads and discards.
var pingCodec = websocket.Codec{Marshal: func(any) ([]byte, byte, error) {
	return nil, websocket.PingFrame, nil
}}

// client is one WebSocket connection to the hub. The handler goroutine
// reads from it. A writer goroutine runs only while frames are queued, so
// an idle connection costs one goroutine instead of two.
type client struct {
	ws           *websocket.Conn
	meta         any
	remote       string
	limit        int
	writeTimeout time.Duration
	log          *slog.Logger

	// mu guards the fields below it. queue is bounded by limit. writing
	// reports whether a writer goroutine runs. closing is set by shutdown,
	// with closeCode the close code to send (0 sends none because the
	// connection is already broken).
	mu        sync.Mutex
	queue     []*frame
	spare     []*frame
	writing   bool
	closing   bool
	closeCode int

	// finished is closed when the writer has sent the close frame, or
	// given up on it.
	finished chan struct{}

	// channels is owned by the hub goroutine.
	channels map[string]struct{}
}

// pingFrame is queued to ping an idle client.
var pingFrame = &frame{}

// Handler returns the hub's WebSocket handler. check validates the request,
// typically its Origin header, before the upgrade, and a nil check accepts
// every request. Authentication belongs to a wrapping handler.
func (h *Hub) Handler(check func(r *http.Request) bool) http.Handler {
	return h.HandlerWithMeta(check, nil)
}

// HandlerWithMeta is Handler that also stores meta(r) with the connection,
// for CloseWhere. A nil meta stores nil.
func (h *Hub) HandlerWithMeta(check func(*http.Request) bool, meta func(*http.Request) any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if check != nil && !check(r) {
			writeHTTPError(w, http.StatusForbidden, "forbidden",
				fmt.Sprintf("origin %q is not allowed; add it to server.cors_origins", r.Header.Get("Origin")))
			return
		}
		if _, ok := w.(http.Hijacker); !ok {
			writeHTTPError(w, http.StatusBadRequest, "invalid_request",
				"the WebSocket endpoint needs an HTTP/1.1 connection")
			return
		}
		var m any
		if meta != nil {
			m = meta(r)
		}
		server := websocket.Server{
			Handshake: acceptAnyOrigin,
			Handler:   func(ws *websocket.Conn) { h.serve(ws, m) },
		}
		server.ServeHTTP(w, r)
	})
}

// acceptAnyOrigin lets clients without an Origin header (CLI, Go, Node)
// connect. Browser origins are checked before the upgrade.
func acceptAnyOrigin(*websocket.Config, *http.Request) error { return nil }

// serve runs one connection until it is done. x/net/websocket closes the
// TCP connection when this returns, so it waits for the writer too.
func (h *Hub) serve(ws *websocket.Conn, meta any) {
	ws.MaxPayloadBytes = maxClientMessage
	c := &client{
		ws:           ws,
		meta:         meta,
		remote:       ws.Request().RemoteAddr,
		limit:        h.opts.SendBuffer,
		writeTimeout: h.opts.WriteTimeout,
		log:          h.log,
		finished:     make(chan struct{}),
		channels:     make(map[string]struct{}),
	}
	if !h.addConn() {
		_ = c.writeClose(CloseGoingAway)
		return
	}
	defer h.conns.Done()
	if !h.registerClient(c) {
		_ = c.writeClose(CloseGoingAway)
		return
	}

	h.readLoop(c)
	<-c.finished
	h.unregisterClient(c)
}

func (h *Hub) addConn() bool {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	if h.stopped {
		return false
	}
	h.conns.Add(1)
	return true
}

func (h *Hub) registerClient(c *client) bool {
	select {
	case h.register <- c:
		return true
	case <-h.quit:
		return false
	case <-h.done:
		return false
	}
}

func (h *Hub) unregisterClient(c *client) {
	select {
	case h.unregister <- c:
	case <-h.done:
	}
}

// readLoop turns client frames into hub requests until the connection
// fails or the peer closes it.
func (h *Hub) readLoop(c *client) {
	for {
		var data []byte
		err := websocket.Message.Receive(c.ws, &data)
		if errors.Is(err, websocket.ErrFrameTooLarge) {
			h.request(request{c: c, err: &channelError{CodeTooLarge, fmt.Sprintf(
				"message is larger than %d bytes", maxClientMessage)}})
			continue
		}
		if err != nil {
			c.readFailed(err)
			return
		}
		msg, perr := parseClientMessage(data)
		if !h.request(request{c: c, msg: msg, err: perr}) {
			c.shutdown(CloseGoingAway)
			return
		}
	}
}

func (h *Hub) request(r request) bool {
	select {
	case h.requests <- r:
		return true
	case <-h.done:
		return false
	}
}

// readFailed ends the connection. After the peer's close frame it replies
// with a normal close, and after any other error it sends nothing.
func (c *client) readFailed(err error) {
	if errors.Is(err, io.EOF) {
		c.shutdown(CloseNormal)
		return
	}
	c.shutdown(0)
}

// enqueue queues f for the writer without blocking. It reports false when
// the queue is full, and then queues nothing. A closing client accepts and
// discards everything.
func (c *client) enqueue(f *frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return true
	}
	if len(c.queue) >= c.limit {
		return false
	}
	c.queue = append(c.queue, f)
	c.startWriter()
	return true
}

// ping queues a ping unless frames are queued or being written, which
// already show that the connection is alive.
func (c *client) ping() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.writing {
		return
	}
	c.queue = append(c.queue, pingFrame)
	c.startWriter()
}

// shutdown makes the writer drop the queue, send a close frame with code
// (none when code is 0) and end the reader. Only the first call has an
// effect.
func (c *client) shutdown(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = true
	c.closeCode = code
	c.queue = nil
	c.startWriter()
}

// startWriter starts the writer goroutine unless it runs. c.mu is held.
func (c *client) startWriter() {
	if !c.writing {
		c.writing = true
		go c.writeQueued()
	}
}

// writeQueued writes the queue until it is empty, or until shutdown, when
// it sends the close frame.
func (c *client) writeQueued() {
	for {
		c.mu.Lock()
		if c.closing {
			code := c.closeCode
			c.mu.Unlock()
			c.finish(code)
			return
		}
		batch := c.queue
		if len(batch) == 0 {
			c.writing = false
			c.releaseBuffers()
			c.mu.Unlock()
			return
		}
		c.queue, c.spare = c.spare[:0], nil
		c.mu.Unlock()

		if err := c.writeBatch(batch); err != nil {
			c.log.Debug("client write failed", "remote", c.remote, "error", err)
			c.shutdown(0)
			continue
		}
		c.mu.Lock()
		clear(batch)
		c.spare = batch[:0]
		c.mu.Unlock()
	}
}

// releaseBuffers frees large queue buffers of a client that went idle, so
// that one burst does not raise its memory for good. c.mu is held.
func (c *client) releaseBuffers() {
	if cap(c.queue) > 32 {
		c.queue = nil
	}
	if cap(c.spare) > 32 {
		c.spare = nil
	}
}

// writeBatch writes frames in order. It stops early when the client is
// closing, because a dropped or stopped client needs no more events.
func (c *client) writeBatch(batch []*frame) error {
	for _, f := range batch {
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if closing {
			return nil
		}
		if err := c.writeFrame(f); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) writeFrame(f *frame) error {
	switch {
	case f == pingFrame:
		return c.write(pingCodec, nil)
	case f.batch != nil:
		for _, b := range f.batch {
			if err := c.write(textCodec, b.data); err != nil {
				return err
			}
		}
		return nil
	default:
		return c.write(textCodec, f.data)
	}
}

func (c *client) write(codec websocket.Codec, data []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := codec.Send(c.ws, data); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// finish sends the close frame and makes the reader return: at once when
// no close frame was sent, else after the peer's close frame or closeGrace.
func (c *client) finish(code int) {
	defer close(c.finished)
	if code == 0 {
		_ = c.ws.SetReadDeadline(time.Now())
		return
	}
	if err := c.writeClose(code); err != nil {
		_ = c.ws.SetReadDeadline(time.Now())
		return
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
}

func (c *client) writeClose(code int) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := c.ws.WriteClose(code); err != nil {
		return fmt.Errorf("write close frame %d: %w", code, err)
	}
	return nil
}

// writeHTTPError writes the project's JSON error body before an upgrade.
func writeHTTPError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	w.WriteHeader(status)
	body := struct {
		Error ErrorDetail `json:"error"`
	}{ErrorDetail{Code: code, Message: message}}
	_ = json.NewEncoder(w).Encode(body)
}
