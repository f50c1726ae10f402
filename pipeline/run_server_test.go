package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"cliq/events"
)

// follow connects to the event server described by info with since and
// returns a channel that receives every event it sends, closed when the
// server closes the connection.
func follow(tb testing.TB, info *WSInfo, query string) <-chan []events.Event {
	tb.Helper()
	url := fmt.Sprintf("ws://127.0.0.1:%d/?%s", info.Port, query)
	cfg, err := websocket.NewConfig(url, "http://127.0.0.1/")
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Header = http.Header{"Authorization": {"Bearer " + info.Token}}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		tb.Fatalf("dial event server: %v", err)
	}
	out := make(chan []events.Event, 1)
	go func() {
		defer ws.Close()
		var got []events.Event
		ws.SetReadDeadline(time.Now().Add(testTimeout))
		for {
			var e events.Event
			if err := websocket.JSON.Receive(ws, &e); err != nil {
				break
			}
			got = append(got, e)
		}
		out <- got
	}()
	return out
}

func TestPipeline_RunEventServer(t *testing.T) {
	dir := MustProject(t, testProject{team: `
name: "@test/server"
workflow:
  phases:
    - name: first
      agent: exec
      commands:
        - name: hold
          run: "touch started && ` + waitScript("go") + `"
          escalate_on_fail: true
    - name: second
      agent: exec
      depends_on: [first]
      commands:
        - name: x
          run: "true"
`})
	p, err := Open(dir, Options{Grace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	done := make(chan *RunState, 1)
	go func() {
		st, err := p.Run(ctx)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- st
	}()

	// Connect in the middle of the run: after first started, before it
	// can finish.
	waitForFile(t, filepath.Join(dir, "started"))
	info, err := ReadWSInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, ".cliq", "signals", "_ws.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("_ws.json mode = %v, want 0600", fi.Mode().Perm())
	}
	if info.PID != os.Getpid() || info.Token == "" || info.Port == 0 {
		t.Errorf("_ws.json = %+v, want this pid, a token and a port", info)
	}

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", info.Port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("request without token: status %d, want 401", resp.StatusCode)
	}

	fromStart := follow(t, info, "")
	fromTwo := follow(t, info, "since=2")
	MustWrite(t, filepath.Join(dir, "go"), "")

	var st *RunState
	select {
	case st = <-done:
	case <-time.After(testTimeout):
		t.Fatal("run did not finish")
	}
	if st == nil || st.Status != StatusCompleted {
		t.Fatalf("state = %+v, want completed", st)
	}
	if info.RunID != st.RunID {
		t.Errorf("_ws.json run_id = %s, want %s", info.RunID, st.RunID)
	}
	all := ReadEventLog(t, dir)

	for name, tc := range map[string]struct {
		ch   <-chan []events.Event
		from int
	}{"since0": {fromStart, 0}, "since2": {fromTwo, 2}} {
		t.Run(name, func(t *testing.T) {
			var got []events.Event
			select {
			case got = <-tc.ch:
			case <-time.After(testTimeout):
				t.Fatal("follower did not finish")
			}
			want := all[tc.from:]
			if len(got) != len(want) {
				t.Fatalf("got %d events (%s), want %d (%s)", len(got), eventTypes(got), len(want), eventTypes(want))
			}
			for i := range want {
				if got[i].Seq != want[i].Seq || got[i].Type != want[i].Type || got[i].Phase != want[i].Phase {
					t.Errorf("event %d = %d/%s/%s, want %d/%s/%s", i, got[i].Seq, got[i].Type, got[i].Phase,
						want[i].Seq, want[i].Type, want[i].Phase)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, ".cliq", "signals", "_ws.json")); !os.IsNotExist(err) {
		t.Errorf("_ws.json still exists after the run: %v", err)
	}
}
