package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// pingCodec sends an empty ping frame. Clients answer with a pong, which
// x/net/websocket reads and discards.
var pingCodec = websocket.Codec{Marshal: func(any) ([]byte, byte, error) {
	return nil, websocket.PingFrame, nil
}}

// client is one WebSocket connection to the hub. The handler goroutine
// writes to it and one reader goroutine reads from it.
type client struct {
	ws     *websocket.Conn
	meta   any
	remote string
	send   chan *frame

	// kick is closed by shutdown, with code the close code to send (0 sends
	// none because the connection is already broken).
	kick      chan struct{}
	kickOnce  sync.Once
	closeCode int

	// channels is owned by the hub goroutine.
	channels map[string]struct{}
}

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
// TCP connection when this returns, so it waits for the reader too.
func (h *Hub) serve(ws *websocket.Conn, meta any) {
	ws.MaxPayloadBytes = maxClientMessage
	c := &client{
		ws:       ws,
		meta:     meta,
		remote:   ws.Request().RemoteAddr,
		send:     make(chan *frame, h.opts.SendBuffer),
		kick:     make(chan struct{}),
		channels: make(map[string]struct{}),
	}
	if !h.addConn() {
		c.writeClose(CloseGoingAway, h.opts.WriteTimeout)
		return
	}
	defer h.conns.Done()
	if !h.registerClient(c) {
		c.writeClose(CloseGoingAway, h.opts.WriteTimeout)
		return
	}

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		h.readLoop(c)
	}()
	h.writeLoop(c)
	<-readerDone
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

// readFailed ends the writer: after the peer's close frame it answers with
// a normal close, after any other error it sends nothing.
func (c *client) readFailed(err error) {
	if errors.Is(err, io.EOF) {
		c.shutdown(CloseNormal)
		return
	}
	c.shutdown(0)
}

// shutdown makes the writer send a close frame with code, unless code is
// 0, and end. Only the first call has an effect.
func (c *client) shutdown(code int) {
	c.kickOnce.Do(func() {
		c.closeCode = code
		close(c.kick)
	})
}

// writeLoop sends queued frames and pings until shutdown or a failed write.
func (h *Hub) writeLoop(c *client) {
	ping := time.NewTicker(h.opts.PingInterval)
	defer ping.Stop()

	for {
		// A kicked client gets no more queued frames.
		select {
		case <-c.kick:
			c.finish(h.opts.WriteTimeout)
			return
		default:
		}

		var err error
		select {
		case <-c.kick:
			c.finish(h.opts.WriteTimeout)
			return
		case f := <-c.send:
			err = c.writeFrame(f, h.opts.WriteTimeout)
		case <-ping.C:
			err = c.write(pingCodec, nil, h.opts.WriteTimeout)
		}
		if err != nil {
			h.log.Debug("client write failed", "remote", c.remote, "error", err)
			c.shutdown(0)
			c.finish(h.opts.WriteTimeout)
			return
		}
	}
}

func (c *client) writeFrame(f *frame, timeout time.Duration) error {
	if f.batch == nil {
		return c.write(textCodec, f.data, timeout)
	}
	for _, b := range f.batch {
		if err := c.write(textCodec, b.data, timeout); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) write(codec websocket.Codec, data []byte, timeout time.Duration) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := codec.Send(c.ws, data); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// finish sends the close frame chosen by shutdown and makes the reader
// return: at once when no close frame was sent, else after the peer's
// close frame or closeGrace.
func (c *client) finish(timeout time.Duration) {
	if c.closeCode == 0 {
		_ = c.ws.SetReadDeadline(time.Now())
		return
	}
	if err := c.writeClose(c.closeCode, timeout); err != nil {
		_ = c.ws.SetReadDeadline(time.Now())
		return
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
}

func (c *client) writeClose(code int, timeout time.Duration) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
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
