package events_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"cliq/events"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// Frame opcodes of RFC 6455, section 5.2.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
)

// MustStartHub starts a hub and an httptest server for its handler, both
// stopped at the end of the test.
func MustStartHub(tb testing.TB, opts events.HubOptions) (*events.Hub, *httptest.Server) {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hub := events.NewHub(opts)
	go hub.Run(context.Background())
	srv := httptest.NewServer(hub.Handler(nil))
	tb.Cleanup(func() {
		hub.Stop()
		srv.Close()
	})
	return hub, srv
}

// wsURL turns an httptest URL into a WebSocket URL with path and query.
func wsURL(srv *httptest.Server, pathAndQuery string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + pathAndQuery
}

// MustDial opens an x/net/websocket client connection.
func MustDial(tb testing.TB, url string) *websocket.Conn {
	tb.Helper()
	ws, err := websocket.Dial(url, "", "http://127.0.0.1/")
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	tb.Cleanup(func() { ws.Close() })
	return ws
}

// MustSend sends v as a JSON text frame.
func MustSend(tb testing.TB, ws *websocket.Conn, v any) {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	if err := websocket.Message.Send(ws, string(data)); err != nil {
		tb.Fatalf("send %s: %v", data, err)
	}
}

// message is any server message: an event, an ack or an error.
type message struct {
	events.Event
	Error *events.ErrorDetail `json:"error"`
}

// MustReceive reads one message, failing after waitTimeout.
func MustReceive(tb testing.TB, ws *websocket.Conn) message {
	tb.Helper()
	m, err := receive(ws)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// receive reads one message within waitTimeout. Unlike MustReceive, it may
// run on any goroutine.
func receive(ws *websocket.Conn) (message, error) {
	var m message
	if err := ws.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		return m, err
	}
	var data string
	if err := websocket.Message.Receive(ws, &data); err != nil {
		return m, fmt.Errorf("receive: %w", err)
	}
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return m, fmt.Errorf("decode %s: %w", data, err)
	}
	return m, nil
}

// MustSubscribe subscribes ws to channel and waits for the acknowledgement.
func MustSubscribe(tb testing.TB, ws *websocket.Conn, channel string) {
	tb.Helper()
	MustSend(tb, ws, events.ClientMessage{Action: events.ActionSubscribe, Channel: channel})
	m := MustReceive(tb, ws)
	if m.Type != events.TypeSubscribed || m.Channel != channel {
		tb.Fatalf("reply to subscribe %s = %+v, want subscribed ack", channel, m)
	}
}

// newEvent returns an event of instance id and run with the given seq.
func newEvent(id, run string, seq int64, typ string) events.Event {
	return events.Event{Type: typ, InstanceID: id, RunID: run, Seq: seq,
		Time: time.Unix(1700000000, 0).UTC(), Data: map[string]any{"n": seq}}
}

// rawConn is a WebSocket client written on a bare TCP connection, which
// lets tests stop reading, see ping frames and read close codes.
type rawConn struct {
	tb   testing.TB
	conn net.Conn
	br   *bufio.Reader
}

// MustDialRaw opens a rawConn to srv with the given path and query.
func MustDialRaw(tb testing.TB, srv *httptest.Server, pathAndQuery string) *rawConn {
	tb.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	c := &rawConn{tb: tb, conn: conn, br: bufio.NewReader(conn)}
	c.handshake(pathAndQuery)
	return c
}

func (c *rawConn) handshake(pathAndQuery string) {
	c.tb.Helper()
	req := "GET " + pathAndQuery + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c.conn, req); err != nil {
		c.tb.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.tb.Fatalf("read handshake response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.tb.Fatalf("handshake status = %d, want 101", resp.StatusCode)
	}
}

// Send writes v as a masked JSON text frame.
func (c *rawConn) Send(v any) {
	c.tb.Helper()
	payload, err := json.Marshal(v)
	if err != nil {
		c.tb.Fatal(err)
	}
	if len(payload) > 125 {
		c.tb.Fatalf("raw client sends only short frames, got %d bytes", len(payload))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	frame := []byte{0x80 | opText, 0x80 | byte(len(payload))}
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	if _, err := c.conn.Write(frame); err != nil {
		c.tb.Fatal(err)
	}
}

// ReadFrame reads one server frame and returns its opcode and payload.
func (c *rawConn) ReadFrame() (byte, []byte, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		return 0, nil, err
	}
	var head [2]byte
	if _, err := io.ReadFull(c.br, head[:]); err != nil {
		return 0, nil, err
	}
	length := uint64(head[1] & 0x7f)
	switch length {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return 0, nil, err
		}
		length = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return 0, nil, err
		}
		length = binary.BigEndian.Uint64(ext[:])
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return head[0] & 0x0f, payload, nil
}

// MustReadUntilClose reads frames until a close frame and returns its code
// and the number of text frames before it.
func (c *rawConn) MustReadUntilClose() (code int, texts int) {
	c.tb.Helper()
	for {
		op, payload, err := c.ReadFrame()
		if err != nil {
			c.tb.Fatalf("read until close frame: %v (after %d text frames)", err, texts)
		}
		switch op {
		case opText:
			texts++
		case opClose:
			if len(payload) < 2 {
				c.tb.Fatalf("close frame without code: %x", payload)
			}
			return int(binary.BigEndian.Uint16(payload)), texts
		}
	}
}

// MustReadText reads frames until a text frame and decodes it.
func (c *rawConn) MustReadText() message {
	c.tb.Helper()
	for {
		op, payload, err := c.ReadFrame()
		if err != nil {
			c.tb.Fatalf("read text frame: %v", err)
		}
		if op == opClose {
			c.tb.Fatalf("got close frame %x, want a text frame", payload)
		}
		if op != opText {
			continue
		}
		var m message
		if err := json.Unmarshal(payload, &m); err != nil {
			c.tb.Fatalf("decode %s: %v", payload, err)
		}
		return m
	}
}

// recordHandler is a slog.Handler that passes every record's message to a
// channel, so tests can wait for a log line.
type recordHandler struct{ messages chan string }

func newRecordHandler() *recordHandler {
	return &recordHandler{messages: make(chan string, 1024)}
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.messages <- r.Message:
	default:
	}
	return nil
}

func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// Seen reports, without waiting, whether a log record logged since the
// last call contains text.
func (h *recordHandler) Seen(text string) bool {
	for {
		select {
		case msg := <-h.messages:
			if strings.Contains(msg, text) {
				return true
			}
		default:
			return false
		}
	}
}

// seqs formats a list of seqs for failure messages.
func seqs(list []int64) string {
	if len(list) > 20 {
		return fmt.Sprintf("%v ... (%d in all)", list[:20], len(list))
	}
	return fmt.Sprint(list)
}
