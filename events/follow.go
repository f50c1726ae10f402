package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/net/websocket"
)

// Defaults for the zero fields of Follower.
const (
	DefaultFollowRetries = 5
	DefaultFollowBackoff = 100 * time.Millisecond
	maxFollowBackoff     = 2 * time.Second
)

// ErrFeedGone is returned by Follower.Run when the feed cannot be reached
// any more and the final event of the run has not arrived.
var ErrFeedGone = errors.New("event feed gone before the final event")

// errUnexpectedClose reports a feed connection that ended without the
// run's final event.
var errUnexpectedClose = errors.New("connection ended before the final event")

// Follower follows an orchestrator's event feed (see Feed.Handler) and
// delivers each event exactly once, in order, reconnecting with since set
// to the last delivered seq after a dropped connection.
type Follower struct {
	// URL is the feed's WebSocket address, e.g. ws://127.0.0.1:41234/.
	URL string
	// Token is sent as an "Authorization: Bearer" header.
	Token string
	// Since skips the events with a seq up to it; 0 follows the whole run.
	Since int64
	// OnEvent receives each event on the goroutine that called Run. Nil
	// means the events are only counted towards the final one.
	OnEvent func(Event)
	// Retries is the number of failed connection attempts in a row, after
	// the first, before Run gives up. An attempt that delivers an event
	// resets the count. Zero means DefaultFollowRetries.
	Retries int
	// Backoff is the wait before the first retry, doubled on every further
	// retry up to 2 s. Zero means DefaultFollowBackoff.
	Backoff time.Duration
}

// Run follows the feed until the run's final event (Event.Final) and then
// returns nil. It returns ctx.Err() when ctx is done, and an error wrapping
// ErrFeedGone when the connection attempts fail Retries+1 times in a row.
func (f *Follower) Run(ctx context.Context) error {
	retries, backoff := f.Retries, f.Backoff
	if retries <= 0 {
		retries = DefaultFollowRetries
	}
	if backoff <= 0 {
		backoff = DefaultFollowBackoff
	}

	last := f.Since
	failures := 0
	for {
		delivered, final, err := f.follow(ctx, &last)
		if final {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if delivered {
			failures = 0
		}
		failures++
		if failures > retries {
			return fmt.Errorf("%w: %d attempts failed, last seq %d: %w", ErrFeedGone, failures, last, err)
		}
		if err := sleepContext(ctx, backoffDelay(backoff, failures)); err != nil {
			return err
		}
	}
}

func backoffDelay(first time.Duration, failures int) time.Duration {
	d := first
	for i := 1; i < failures && d < maxFollowBackoff; i++ {
		d *= 2
	}
	return min(d, maxFollowBackoff)
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// follow runs one connection. It reports whether it delivered an event,
// whether that included the final one, and why the connection ended.
func (f *Follower) follow(ctx context.Context, last *int64) (delivered, final bool, err error) {
	ws, err := f.dial(ctx, *last)
	if err != nil {
		return false, false, err
	}
	defer ws.Close()

	// Closing the connection is the only way to interrupt a blocked read.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			_ = ws.Close()
		case <-stop:
		}
	}()

	for {
		e, err := receiveEvent(ws)
		if err != nil {
			return delivered, false, err
		}
		if e.Seq <= *last {
			continue
		}
		if f.OnEvent != nil {
			f.OnEvent(e)
		}
		*last = e.Seq
		delivered = true
		if e.Final() {
			return true, true, nil
		}
	}
}

func (f *Follower) dial(ctx context.Context, since int64) (*websocket.Conn, error) {
	location, err := url.Parse(f.URL)
	if err != nil {
		// url.Error repeats the whole URL, which may contain a token.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("invalid feed URL: %w", err)
	}
	// A token given in the URL moves to the header, so that no error
	// message built from the URL contains it.
	query := location.Query()
	token := f.Token
	if token == "" {
		token = query.Get("token")
	}
	query.Del("token")
	query.Set("since", strconv.FormatInt(since, 10))
	location.RawQuery = query.Encode()

	config, err := websocket.NewConfig(location.String(), "http://127.0.0.1/")
	if err != nil {
		return nil, fmt.Errorf("invalid feed URL %q: %w", location.Redacted(), err)
	}
	if token != "" {
		config.Header.Set("Authorization", "Bearer "+token)
	}
	ws, err := config.DialContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to event feed: %w", err)
	}
	return ws, nil
}

func receiveEvent(ws *websocket.Conn) (Event, error) {
	var data []byte
	if err := websocket.Message.Receive(ws, &data); err != nil {
		return Event{}, fmt.Errorf("read event: %w", errors.Join(errUnexpectedClose, err))
	}
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("decode event %q: %w", truncate(string(data), 80), err)
	}
	return e, nil
}
