package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cliq/events"
	"cliq/settings"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 30 * time.Second

// testProject describes a project to create in a temporary directory.
type testProject struct {
	team        string            // team.yml
	roles       map[string]string // role name -> content
	requirement string
	inputs      map[string]string
}

// MustProject writes a project with an assembled team and a requirement
// and returns its directory.
func MustProject(tb testing.TB, p testProject) string {
	tb.Helper()
	tb.Setenv("CLIQ_HOME", tb.TempDir())
	dir := tb.TempDir()
	cliq := filepath.Join(dir, ".cliq")
	MustWrite(tb, filepath.Join(cliq, "team.yml"), p.team)
	MustWrite(tb, filepath.Join(cliq, "cliq.id"), "cliq-abc123\n")
	for name, text := range p.roles {
		MustWrite(tb, filepath.Join(cliq, "roles", name+".md"), text)
	}
	req := p.requirement
	if req == "" {
		req = "Build the thing."
	}
	MustWrite(tb, filepath.Join(cliq, "req_spec.md"), req+"\n")
	if p.inputs != nil {
		data, err := json.Marshal(p.inputs)
		if err != nil {
			tb.Fatal(err)
		}
		MustWrite(tb, filepath.Join(cliq, "inputs.json"), string(data))
	}
	return dir
}

// MustWrite writes text to path, creating its directory.
func MustWrite(tb testing.TB, path, text string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		tb.Fatal(err)
	}
}

// MustRead returns the content of path.
func MustRead(tb testing.TB, path string) string {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

// recorder collects the events passed to Options.OnEvent.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
}

func (r *recorder) add(e events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.events...)
}

// MustRun opens the project and runs it to its end, with a short grace
// period, and checks the event log. It returns the final state and the
// events.
func MustRun(tb testing.TB, dir string, s settings.Map) (*RunState, []events.Event) {
	tb.Helper()
	rec := &recorder{}
	p, err := Open(dir, Options{Settings: s, Grace: 200 * time.Millisecond, OnEvent: rec.add})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	st, err := p.Run(ctx)
	if err != nil {
		tb.Fatalf("Run: %v", err)
	}
	evs := rec.all()
	CheckEventLog(tb, dir, evs)
	return st, evs
}

// ReadEventLog parses .cliq/events.jsonl.
func ReadEventLog(tb testing.TB, dir string) []events.Event {
	tb.Helper()
	return ReadEventFile(tb, filepath.Join(dir, ".cliq", "events.jsonl"))
}

// ReadEventFile parses the events.jsonl file at path.
func ReadEventFile(tb testing.TB, path string) []events.Event {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []events.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e events.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			tb.Fatalf("events.jsonl line %d: %v", len(out)+1, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// CheckEventLog checks the invariants of a finished run's events. The file
// matches what OnEvent received, and seq runs from 1 without gaps. The run
// starts with pipeline_start and ends with a final event. Every phase_start
// is followed by its phase_done before the phase starts again.
func CheckEventLog(tb testing.TB, dir string, got []events.Event) {
	tb.Helper()
	file := ReadEventLog(tb, dir)
	if len(file) != len(got) {
		tb.Fatalf("events.jsonl has %d events, OnEvent got %d", len(file), len(got))
	}
	open := map[string]bool{}
	for i, e := range file {
		if e.Seq != int64(i+1) {
			tb.Fatalf("event %d has seq %d, want %d", i, e.Seq, i+1)
		}
		if e.Type != got[i].Type || e.Seq != got[i].Seq || e.Phase != got[i].Phase {
			tb.Fatalf("event %d: file has %s/%d, OnEvent had %s/%d", i, e.Type, e.Seq, got[i].Type, got[i].Seq)
		}
		if e.RunID == "" || e.InstanceID != "cliq-abc123" {
			tb.Fatalf("event %d: run_id %q, instance_id %q", i, e.RunID, e.InstanceID)
		}
		switch e.Type {
		case events.PhaseStart:
			if open[e.Phase] {
				tb.Fatalf("seq %d: phase %s started twice without phase_done", e.Seq, e.Phase)
			}
			open[e.Phase] = true
		case events.PhaseDone:
			if !open[e.Phase] {
				tb.Fatalf("seq %d: phase_done of %s without phase_start", e.Seq, e.Phase)
			}
			open[e.Phase] = false
		}
	}
	if len(file) < 2 || file[0].Type != events.PipelineStart || !file[len(file)-1].Final() {
		tb.Fatalf("events do not start with pipeline_start and end with a final event: %s", eventTypes(file))
	}
	for name, running := range open {
		if running {
			tb.Fatalf("phase %s has no phase_done", name)
		}
	}
}

// eventTypes lists "type/phase" of each event, for failure messages.
func eventTypes(evs []events.Event) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = e.Type
		if e.Phase != "" {
			parts[i] += "/" + e.Phase
		}
	}
	return strings.Join(parts, " ")
}

// filterEvents returns the events of type typ for phase (any phase when
// phase is empty).
func filterEvents(evs []events.Event, typ, phase string) []events.Event {
	var out []events.Event
	for _, e := range evs {
		if e.Type == typ && (phase == "" || e.Phase == phase) {
			out = append(out, e)
		}
	}
	return out
}

// phaseState returns the state of phase name in st.
func phaseState(tb testing.TB, st *RunState, name string) PhaseState {
	tb.Helper()
	for _, ps := range st.Phases {
		if ps.Name == name {
			return ps
		}
	}
	tb.Fatalf("run state has no phase %q", name)
	return PhaseState{}
}

// waitForFile waits until path exists, failing the test after testTimeout.
func waitForFile(tb testing.TB, path string) {
	tb.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not appear within %s", path, testTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lineCount returns the number of lines in the file at path.
func lineCount(tb testing.TB, path string) int {
	tb.Helper()
	return strings.Count(MustRead(tb, path), "\n")
}
