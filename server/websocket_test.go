package server

import (
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"cliq/events"
)

// dialInProcess opens a WebSocket connection to a started in-process
// server. x/net/websocket always sends an Origin header: origin when it is
// not empty, else http://127.0.0.1/.
func dialInProcess(tb testing.TB, s *Server, path, origin string) (*websocket.Conn, error) {
	tb.Helper()
	return dialInProcessBuffer(tb, s, path, origin, 0)
}

// dialInProcessBuffer is dialInProcess with the socket's receive buffer
// set to readBuffer bytes when it is positive. A small buffer makes a
// client that never reads fall behind after little data.
func dialInProcessBuffer(tb testing.TB, s *Server, path, origin string, readBuffer int) (*websocket.Conn, error) {
	tb.Helper()
	cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(s.URL(), "http")+path, "http://127.0.0.1/")
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Header.Set("Authorization", "Bearer "+testToken)
	if origin != "" {
		cfg.Origin, err = url.Parse(origin)
		if err != nil {
			tb.Fatal(err)
		}
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	if readBuffer > 0 {
		conn.(*net.TCPConn).SetReadBuffer(readBuffer)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	tb.Cleanup(func() { ws.Close() })
	return ws, nil
}

func TestWebSocket_Handshake(t *testing.T) {
	s, _ := newTestServer(t, func(c *Config) { c.CORSOrigins = []string{"https://dash.example.com"} })
	startTestServer(t, s)

	t.Run("ListedOrigin", func(t *testing.T) {
		if _, err := dialInProcess(t, s, "/", "https://dash.example.com"); err != nil {
			t.Fatalf("dial: %v", err)
		}
	})
	t.Run("SameOrigin", func(t *testing.T) {
		if _, err := dialInProcess(t, s, "/", s.URL()); err != nil {
			t.Fatalf("dial: %v", err)
		}
	})
	t.Run("UnlistedOrigin", func(t *testing.T) {
		if _, err := dialInProcess(t, s, "/", "https://evil.example.com"); err == nil {
			t.Fatal("dial with an unlisted origin succeeded")
		}
	})
	t.Run("NoToken", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/ws", nil)
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", resp.StatusCode)
		}
	})
}

func TestWebSocket_SlowSubscriber(t *testing.T) {
	var logs syncBuffer
	s, _ := newTestServer(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	startTestServer(t, s)
	channel := events.JobChannel("cliq-5105a0")

	slow, err := dialInProcessBuffer(t, s, "/", "", 4096)
	if err != nil {
		t.Fatal(err)
	}
	subscribe(t, slow, channel, -1)
	fast, err := dialInProcess(t, s, "/ws", "")
	if err != nil {
		t.Fatal(err)
	}
	subscribe(t, fast, channel, -1)

	// 4000 events of about 2 KiB overflow every buffer of the client that
	// never reads. They are published in batches that the fast client
	// keeps up with, as a real run's events are.
	const n, batch = 4000, 100
	padding := strings.Repeat("x", 2048)
	progress := make(chan int, n/batch)
	go func() {
		for i := 1; i <= n; i++ {
			s.hub.Publish(events.Event{Type: events.PhaseDone, InstanceID: "cliq-5105a0", RunID: "run_1",
				Seq: int64(i), Time: time.Now(), Data: map[string]any{"padding": padding}})
			if i%batch == 0 && i < n {
				<-progress
			}
		}
	}()
	for i := 1; i <= n; i++ {
		m := readMessage(t, fast)
		if m.Seq != int64(i) {
			t.Fatalf("fast subscriber got seq %d, want %d", m.Seq, i)
		}
		if i%batch == 0 {
			progress <- i
		}
	}

	// Draining the slow client through its small buffer would take long,
	// so its disconnection is checked in the hub's log.
	waitFor(t, "the slow client to be dropped", func() bool {
		return strings.Contains(logs.String(), "client dropped, send buffer full")
	})
}
