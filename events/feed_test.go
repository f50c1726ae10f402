package events_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"cliq/events"
)

const feedToken = "feed-secret-token"

// MustStartFeed serves feed with feedToken on an httptest server.
func MustStartFeed(tb testing.TB, feed *events.Feed) *httptest.Server {
	tb.Helper()
	return newServer(tb, feed.Handler(feedToken))
}

// MustDialFeed connects to a feed with the token in an Authorization header.
func MustDialFeed(tb testing.TB, srv *httptest.Server, query string) *websocket.Conn {
	tb.Helper()
	config, err := websocket.NewConfig(wsURL(srv, "/"+query), "http://127.0.0.1/")
	if err != nil {
		tb.Fatal(err)
	}
	config.Header.Set("Authorization", "bearer "+feedToken)
	ws, err := config.DialContext(context.Background())
	if err != nil {
		tb.Fatalf("dial feed: %v", err)
	}
	tb.Cleanup(func() { ws.Close() })
	return ws
}

// readUntilEOF reads events until the feed closes the connection.
func readUntilEOF(tb testing.TB, ws *websocket.Conn) []int64 {
	tb.Helper()
	var got []int64
	for {
		m, err := receive(ws)
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			tb.Fatalf("after %d events: %v", len(got), err)
		}
		got = append(got, m.Seq)
	}
}

// checkSeqs fails unless got is from, from+1, ..., to.
func checkSeqs(tb testing.TB, got []int64, from, to int64) {
	tb.Helper()
	if int64(len(got)) != to-from+1 {
		tb.Fatalf("got %d events, want %d (seq %d to %d): %s", len(got), to-from+1, from, to, seqs(got))
	}
	for i, seq := range got {
		if seq != from+int64(i) {
			tb.Fatalf("event #%d has seq %d, want %d: %s", i, seq, from+int64(i), seqs(got))
		}
	}
}

func TestFeed_Handler(t *testing.T) {
	feed := events.NewFeed()
	srv := MustStartFeed(t, feed)

	tests := []struct {
		name   string
		query  string
		header string
		status int
	}{
		{"NoToken", "", "", http.StatusUnauthorized},
		{"WrongQueryToken", "?token=wrong", "", http.StatusUnauthorized},
		{"WrongBearer", "", "Bearer wrong", http.StatusUnauthorized},
		{"OtherScheme", "", "Basic " + feedToken, http.StatusUnauthorized},
		{"InvalidSince", "?token=" + feedToken + "&since=abc", "", http.StatusBadRequest},
		{"NegativeSince", "?token=" + feedToken + "&since=-2", "", http.StatusBadRequest},
		{"QueryTokenNoUpgrade", "?token=" + feedToken, "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("WWW-Authenticate = %q, want Bearer", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}

	t.Run("QueryToken", func(t *testing.T) {
		feed.Append(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))
		ws := MustDial(t, wsURL(srv, "/?token="+feedToken))
		if m := MustReceive(t, ws); m.Seq != 1 {
			t.Fatalf("seq = %d, want 1", m.Seq)
		}
	})

	t.Run("EmptyTokenRejectsAll", func(t *testing.T) {
		empty := newServer(t, events.NewFeed().Handler(""))
		resp, err := http.Get(empty.URL + "/?token=")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status = %d, want 401", resp.StatusCode)
		}
	})
}

func TestFeed_Append(t *testing.T) {
	t.Run("ReplayThenLive", func(t *testing.T) {
		const total = 2000
		feed := events.NewFeed()
		srv := MustStartFeed(t, feed)

		// Connect while the appender is in the middle of the run.
		halfway := make(chan struct{})
		go func() {
			for seq := int64(1); seq < total; seq++ {
				feed.Append(newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseDone))
				if seq == total/2 {
					close(halfway)
				}
			}
			feed.Append(newEvent("cliq-aaaaaa", "run_1", total, events.PipelineDone))
			feed.Close()
		}()
		<-halfway
		ws := MustDialFeed(t, srv, "")
		checkSeqs(t, readUntilEOF(t, ws), 1, total)
	})

	t.Run("Since", func(t *testing.T) {
		feed := events.NewFeed()
		srv := MustStartFeed(t, feed)
		for seq := int64(1); seq <= 9; seq++ {
			feed.Append(newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseDone))
		}
		ws := MustDialFeed(t, srv, "?since=6")
		feed.Append(newEvent("cliq-aaaaaa", "run_1", 10, events.PipelineDone))
		feed.Close()
		checkSeqs(t, readUntilEOF(t, ws), 7, 10)
	})

	t.Run("AfterClose", func(t *testing.T) {
		feed := events.NewFeed()
		feed.Append(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))
		feed.Close()
		feed.Append(newEvent("cliq-aaaaaa", "run_1", 2, events.PhaseStart))
		if n := len(feed.Events()); n != 1 {
			t.Fatalf("len(Events()) = %d, want 1", n)
		}
	})
}

func TestFeed_Close(t *testing.T) {
	feed := events.NewFeed()
	srv := MustStartFeed(t, feed)
	raw := MustDialRaw(t, srv, "/?token="+feedToken)
	feed.Append(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))
	feed.Append(newEvent("cliq-aaaaaa", "run_1", 2, events.PipelineDone))
	feed.Close()

	code, texts := raw.MustReadUntilClose()
	if code != events.CloseNormal {
		t.Errorf("close code = %d, want 1000", code)
	}
	if texts != 2 {
		t.Errorf("read %d events before the close frame, want 2", texts)
	}

	raw.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := feed.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// restartableServer serves a handler on a fixed 127.0.0.1 port and can drop
// every connection, hijacked WebSocket connections included.
type restartableServer struct {
	handler http.Handler
	addr    string

	mu    sync.Mutex
	srv   *http.Server
	conns []net.Conn
}

func (s *restartableServer) Start(tb testing.TB) {
	tb.Helper()
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("listen on %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: s.handler, ConnState: s.track}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

func (s *restartableServer) track(c net.Conn, state http.ConnState) {
	if state == http.StateNew {
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
	}
}

// Stop closes the listener and every connection.
func (s *restartableServer) Stop() {
	s.mu.Lock()
	srv, conns := s.srv, s.conns
	s.srv, s.conns = nil, nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestFollower_Run(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		feed := events.NewFeed()
		srv := MustStartFeed(t, feed)
		for seq := int64(1); seq <= 4; seq++ {
			feed.Append(newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseDone))
		}
		feed.Append(newEvent("cliq-aaaaaa", "run_1", 5, events.PipelineDone))

		var got []int64
		f := &events.Follower{URL: wsURL(srv, "/"), Token: feedToken, Since: 2,
			OnEvent: func(e events.Event) { got = append(got, e.Seq) }}
		if err := runWithTimeout(f); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkSeqs(t, got, 3, 5)
	})

	t.Run("Reconnect", func(t *testing.T) {
		feed := events.NewFeed()
		server := &restartableServer{handler: feed.Handler(feedToken)}
		server.Start(t)
		t.Cleanup(server.Stop)

		received := make(chan int64, 100)
		f := &events.Follower{URL: "ws://" + server.addr + "/?token=" + feedToken,
			Backoff: 5 * time.Millisecond, Retries: 50,
			OnEvent: func(e events.Event) { received <- e.Seq }}
		result := make(chan error, 1)
		go func() { result <- runWithTimeout(f) }()

		for seq := int64(1); seq <= 5; seq++ {
			feed.Append(newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseDone))
		}
		got := collect(t, received, 5)

		// Drop every connection; the run goes on while the server is down.
		server.Stop()
		for seq := int64(6); seq <= 8; seq++ {
			feed.Append(newEvent("cliq-aaaaaa", "run_1", seq, events.PhaseDone))
		}
		server.Start(t)
		feed.Append(newEvent("cliq-aaaaaa", "run_1", 9, events.PhaseDone))
		feed.Append(newEvent("cliq-aaaaaa", "run_1", 10, events.PipelineDone))

		if err := <-result; err != nil {
			t.Fatalf("Run: %v", err)
		}
		close(received)
		for seq := range received {
			got = append(got, seq)
		}
		checkSeqs(t, got, 1, 10)
	})

	t.Run("ErrFeedGone", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		f := &events.Follower{URL: "ws://" + addr + "/", Token: feedToken,
			Retries: 2, Backoff: time.Millisecond}
		if err := runWithTimeout(f); !errors.Is(err, events.ErrFeedGone) {
			t.Fatalf("Run = %v, want ErrFeedGone", err)
		}
	})

	t.Run("ClosedWithoutFinal", func(t *testing.T) {
		feed := events.NewFeed()
		srv := MustStartFeed(t, feed)
		feed.Append(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))
		feed.Close()
		f := &events.Follower{URL: wsURL(srv, "/"), Token: feedToken,
			Retries: 2, Backoff: time.Millisecond}
		if err := runWithTimeout(f); !errors.Is(err, events.ErrFeedGone) {
			t.Fatalf("Run = %v, want ErrFeedGone", err)
		}
	})

	t.Run("WrongToken", func(t *testing.T) {
		feed := events.NewFeed()
		srv := MustStartFeed(t, feed)
		f := &events.Follower{URL: wsURL(srv, "/"), Token: "wrong",
			Retries: 1, Backoff: time.Millisecond}
		err := runWithTimeout(f)
		if !errors.Is(err, events.ErrFeedGone) {
			t.Fatalf("Run = %v, want ErrFeedGone", err)
		}
	})

	t.Run("ContextCanceled", func(t *testing.T) {
		feed := events.NewFeed()
		srv := MustStartFeed(t, feed)
		connected := make(chan struct{})
		f := &events.Follower{URL: wsURL(srv, "/"), Token: feedToken,
			OnEvent: func(events.Event) { close(connected) }}
		feed.Append(newEvent("cliq-aaaaaa", "run_1", 1, events.PipelineStart))

		ctx, cancel := context.WithCancel(context.Background())
		result := make(chan error, 1)
		go func() { result <- f.Run(ctx) }()
		<-connected
		cancel()
		select {
		case err := <-result:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v, want context.Canceled", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Run did not return after cancel")
		}
	})
}

// runWithTimeout runs f with a context bounded by waitTimeout.
func runWithTimeout(f *events.Follower) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return f.Run(ctx)
}

// collect reads n seqs from ch within waitTimeout.
func collect(tb testing.TB, ch <-chan int64, n int) []int64 {
	tb.Helper()
	var got []int64
	timeout := time.After(waitTimeout)
	for len(got) < n {
		select {
		case seq := <-ch:
			got = append(got, seq)
		case <-timeout:
			tb.Fatalf("got %d events, want %d: %s", len(got), n, seqs(got))
		}
	}
	return got
}
