package events

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// Feed is an orchestrator's event server: it keeps every event of one run
// and streams them to followers over WebSocket. Each follower has its own
// cursor into the stored events, so a slow follower neither loses events
// nor slows Append.
type Feed struct {
	mu     sync.Mutex
	events []Event
	frames [][]byte
	// changed is closed and replaced by Append and Close, which wakes every
	// follower waiting for more events.
	changed chan struct{}
	closed  bool

	pingInterval time.Duration
	writeTimeout time.Duration

	// active counts the follower connections, guarded by mu. idle is
	// closed whenever active drops to zero.
	active int
	idle   chan struct{}
}

// NewFeed returns an empty, open feed.
func NewFeed() *Feed {
	idle := make(chan struct{})
	close(idle)
	return &Feed{
		changed:      make(chan struct{}),
		pingInterval: DefaultPingInterval,
		writeTimeout: DefaultWriteTimeout,
		idle:         idle,
	}
}

// Append stores e, which already carries its seq, and wakes the followers.
// It never waits for a follower. Callers must pass increasing seqs, because
// since is looked up by binary search, and Append does not check them.
// After Close, Append does nothing.
func (f *Feed) Append(e Event) {
	e.Channel = ""
	data := encodeFeedEvent(e)

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.events = append(f.events, e)
	f.frames = append(f.frames, data)
	close(f.changed)
	f.changed = make(chan struct{})
}

// encodeFeedEvent encodes e. When e.Data cannot be encoded (a NaN, a
// channel), the data is replaced by the encoding error, so the event and
// its seq still reach the followers.
func encodeFeedEvent(e Event) []byte {
	data, err := json.Marshal(e)
	if err == nil {
		return data
	}
	e.Data = map[string]any{"encode_error": err.Error()}
	data, _ = json.Marshal(e)
	return data
}

// Close ends the run: followers receive the events they have not seen yet,
// then a close frame with code 1000. Followers that connect later get every
// event and the same close. Close may be called more than once.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	close(f.changed)
	f.changed = make(chan struct{})
}

// Events returns a copy of the stored events.
func (f *Feed) Events() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.events...)
}

// Wait blocks until no follower is connected or ctx is done, and returns
// ctx.Err() in the second case. After Close, it lets the orchestrator give
// its followers time to read the last events before it exits.
func (f *Feed) Wait(ctx context.Context) error {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Handler returns the feed's WebSocket handler. A request needs token in
// the token query parameter or in an "Authorization: Bearer" header,
// compared in constant time, and gets 401 before the upgrade otherwise. An
// empty token rejects every request. The query parameter since=N skips the
// events with a seq up to N.
func (f *Feed) Handler(token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" || !tokenMatches(requestToken(r), token) {
			writeHTTPError(w, http.StatusUnauthorized, "unauthorized",
				"missing or invalid token; pass the token of signals/_ws.json "+
					"as ?token= or an Authorization: Bearer header")
			return
		}
		since, err := parseSince(r.URL.Query().Get("since"))
		if err != nil {
			writeHTTPError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		if _, ok := w.(http.Hijacker); !ok {
			writeHTTPError(w, http.StatusBadRequest, "invalid_request",
				"the WebSocket endpoint needs an HTTP/1.1 connection")
			return
		}
		server := websocket.Server{
			Handshake: acceptAnyOrigin,
			Handler:   func(ws *websocket.Conn) { f.serve(ws, since) },
		}
		server.ServeHTTP(w, r)
	})
}

// requestToken returns the bearer token of r, from the Authorization
// header (scheme case-insensitive) or else from the token query parameter.
func requestToken(r *http.Request) string {
	if scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok &&
		strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(value)
	}
	return r.URL.Query().Get("token")
}

func tokenMatches(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func parseSince(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid since %q; use a seq of 0 or more", truncate(s, 40))
	}
	return n, nil
}

// serve streams the events after since to one follower, then live events,
// until the feed is closed or the follower goes away.
func (f *Feed) serve(ws *websocket.Conn, since int64) {
	f.enter()
	defer f.leave()

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		discardUntilClosed(ws)
	}()
	defer func() { <-readerDone }()

	if err := f.stream(ws, since, readerDone); err != nil {
		_ = ws.SetReadDeadline(time.Now())
	}
}

// stream sends the events to ws and ends with a normal close after Close.
// It returns an error when the follower is gone or a write failed.
func (f *Feed) stream(ws *websocket.Conn, since int64, readerDone <-chan struct{}) error {
	ping := time.NewTicker(f.pingInterval)
	defer ping.Stop()

	cursor := f.firstAfter(since)
	for {
		f.mu.Lock()
		pending := f.frames[cursor:len(f.frames):len(f.frames)]
		closed, changed := f.closed, f.changed
		f.mu.Unlock()

		for _, data := range pending {
			if err := f.write(ws, textCodec, data); err != nil {
				return err
			}
		}
		cursor += len(pending)
		if len(pending) > 0 {
			continue
		}
		if closed {
			return f.closeNormally(ws)
		}

		select {
		case <-changed:
		case <-readerDone:
			return errFollowerGone
		case <-ping.C:
			if err := f.write(ws, pingCodec, nil); err != nil {
				return err
			}
		}
	}
}

// errFollowerGone reports a follower that closed its connection.
var errFollowerGone = errors.New("follower closed the connection")

func (f *Feed) firstAfter(since int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sort.Search(len(f.events), func(i int) bool { return f.events[i].Seq > since })
}

func (f *Feed) write(ws *websocket.Conn, codec websocket.Codec, data []byte) error {
	if err := ws.SetWriteDeadline(time.Now().Add(f.writeTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := codec.Send(ws, data); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// closeNormally sends close code 1000 and gives the follower closeGrace to
// reply before the connection is closed.
func (f *Feed) closeNormally(ws *websocket.Conn) error {
	if err := ws.SetWriteDeadline(time.Now().Add(f.writeTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := ws.WriteClose(CloseNormal); err != nil {
		return fmt.Errorf("write close frame: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(closeGrace))
	return nil
}

// discardUntilClosed reads and drops client frames, so that pings and the
// client's close frame are processed, until the connection ends.
func discardUntilClosed(ws *websocket.Conn) {
	ws.MaxPayloadBytes = maxClientMessage
	var data []byte
	for {
		err := websocket.Message.Receive(ws, &data)
		if err != nil && !errors.Is(err, websocket.ErrFrameTooLarge) {
			return
		}
	}
}

func (f *Feed) enter() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active == 0 {
		f.idle = make(chan struct{})
	}
	f.active++
}

func (f *Feed) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active--
	if f.active == 0 {
		close(f.idle)
	}
}
