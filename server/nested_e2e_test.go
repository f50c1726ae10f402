package server

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"cliq/events"
	"cliq/pipeline"
)

// readEventsFile reads an events.jsonl file.
func readEventsFile(tb testing.TB, path string) []events.Event {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []events.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var e events.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			tb.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// withoutChannel returns a copy of list with Channel cleared, as
// events.jsonl has no channel.
func withoutChannel(list []events.Event) []events.Event {
	out := slices.Clone(list)
	for i := range out {
		out[i].Channel = ""
	}
	return out
}

// indexOf returns the index of the first event of type typ, phase phase
// and depth depth in list, or -1.
func indexOf(list []events.Event, typ, phase string, depth int) int {
	return slices.IndexFunc(list, func(e events.Event) bool {
		return e.Type == typ && e.Phase == phase && e.Depth == depth
	})
}

// checkNestedEvents checks the events of one run of nested-parent: the
// phases of the sub-team are relayed under "audit." at depth 1, between
// the team phase's start and end, in the sub-team's order.
func checkNestedEvents(tb testing.TB, list []events.Event) {
	tb.Helper()
	for _, e := range list {
		nested := e.Phase == "audit" && e.Type != events.PhaseStart && e.Type != events.PhaseDone ||
			strings.HasPrefix(e.Phase, "audit.")
		if nested && e.Depth != 1 {
			tb.Errorf("event %d %s/%s has depth %d, want 1", e.Seq, e.Type, e.Phase, e.Depth)
		}
		if !nested && e.Depth != 0 {
			tb.Errorf("event %d %s/%s has depth %d, want 0", e.Seq, e.Type, e.Phase, e.Depth)
		}
	}

	// Landmarks of the run in their order. Each is searched for in the
	// events after the one before it.
	steps := []struct {
		typ, phase string
		depth      int
	}{
		{events.PipelineStart, "", 0},
		{events.PhaseDone, "prepare", 0},
		{events.PhaseStart, "audit", 0},
		{events.PipelineStart, "audit", 1},
		{events.PhaseStart, "audit.scan-a", 1},
		{events.PhaseStart, "audit.verify", 1},
		{events.GateVerdict, "audit.verify", 1},
		{events.GateIteration, "audit.verify", 1},
		{events.PhaseStart, "audit.scan-b", 1},
		{events.GateVerdict, "audit.verify", 1},
		{events.PipelineDone, "audit", 1},
		{events.PhaseDone, "audit", 0},
		{events.PhaseStart, "report", 0},
		{events.PipelineDone, "", 0},
	}
	rest := list
	for _, step := range steps {
		i := indexOf(rest, step.typ, step.phase, step.depth)
		if i < 0 {
			tb.Fatalf("no %s/%s at depth %d after the events before it; all: %s",
				step.typ, step.phase, step.depth, describeNested(list))
		}
		rest = rest[i+1:]
	}

	// Each phase of the sub-team starts as often as it runs: scan-b twice
	// because the gate routes it back once.
	starts := map[string]int{}
	var verdicts []any
	for _, e := range list {
		if e.Type == events.PhaseStart {
			starts[e.Phase]++
		}
		if e.Type == events.GateVerdict && e.Phase == "audit.verify" {
			verdicts = append(verdicts, e.Data["verdict"])
		}
	}
	want := map[string]int{"prepare": 1, "audit": 1, "audit.scan-a": 1, "audit.scan-b": 2, "audit.verify": 2, "report": 1}
	if !reflect.DeepEqual(starts, want) {
		tb.Errorf("phase_start counts = %v, want %v", starts, want)
	}
	if !slices.Equal(verdicts, []any{"ROUTE", "PASS"}) {
		tb.Errorf("audit.verify verdicts = %v, want [ROUTE PASS]", verdicts)
	}
}

// describeNested lists the events as type/phase@depth.
func describeNested(list []events.Event) string {
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = e.Type + "/" + e.Phase + "@" + strconv.Itoa(e.Depth)
	}
	return strings.Join(parts, " ")
}

// checkRelayedFile checks that the parent relayed the nested run's own
// events.jsonl, event by event, with the phase prefixed and depth + 1.
func checkRelayedFile(tb testing.TB, projectDir string, list []events.Event) {
	tb.Helper()
	nested := readEventsFile(tb, filepath.Join(projectDir, ".cliq", "teams", "audit", "events.jsonl"))
	var relayed []events.Event
	for _, e := range list {
		if e.Depth > 0 {
			relayed = append(relayed, e)
		}
	}
	if len(relayed) != len(nested) {
		tb.Fatalf("relayed %d events, the nested run wrote %d", len(relayed), len(nested))
	}
	for i, n := range nested {
		want := "audit"
		if n.Phase != "" {
			want += "." + n.Phase
		}
		got := relayed[i]
		if got.Type != n.Type || got.Phase != want || got.Depth != n.Depth+1 {
			tb.Errorf("relayed event %d = %s/%s depth %d, want %s/%s depth %d",
				i, got.Type, got.Phase, got.Depth, n.Type, want, n.Depth+1)
		}
	}
}

func TestE2E_NestedTeamEvents(t *testing.T) {
	env := newCliqEnv(t)
	teamDir := filepath.Join(moduleRoot(t), "testdata", "teams", "nested-parent")
	project, id := env.project(t, teamDir, "-m", "Audit the thing.", "--input", "target=hello")
	srv := env.startServer(t)

	ws := srv.dial(t, "/")
	subscribe(t, ws, events.JobChannel(id), -1)

	var created map[string]string
	mustCall(t, srv, "/jobs/create/", map[string]any{"instance_id": id}, &created, http.StatusAccepted)
	runID := created["run_id"]
	live := readRun(t, ws, runID)

	t.Run("Subscriber", func(t *testing.T) {
		checkSeqs(t, live)
		checkNestedEvents(t, live)
		for _, e := range live {
			if e.InstanceID != id || e.RunID != runID || e.Channel != events.JobChannel(id) {
				t.Fatalf("event %d: instance %q run %q channel %q, want %s %s on its job channel",
					e.Seq, e.InstanceID, e.RunID, e.Channel, id, runID)
			}
		}
	})
	t.Run("EventsFile", func(t *testing.T) {
		file := readEventsFile(t, filepath.Join(project, ".cliq", "events.jsonl"))
		checkNestedEvents(t, file)
		got := withoutChannel(live)
		if len(got) != len(file) {
			t.Fatalf("subscriber got %d events, events.jsonl has %d", len(got), len(file))
		}
		for i := range file {
			if !reflect.DeepEqual(got[i], file[i]) {
				t.Errorf("event %d: subscriber got %+v, events.jsonl has %+v", i, got[i], file[i])
			}
		}
		checkRelayedFile(t, project, file)
	})
	t.Run("Replay", func(t *testing.T) {
		// A subscriber that arrives after the run gets the same events
		// from the hub's memory, each once.
		late := srv.dial(t, "/ws")
		subscribe(t, late, events.JobChannel(id), 0)
		replayed := readRun(t, late, runID)
		if !reflect.DeepEqual(replayed, live) {
			t.Errorf("replayed %s, want %s", describeNested(replayed), describeNested(live))
		}
	})
	t.Run("Phases", func(t *testing.T) {
		var got struct {
			Status string
			Phases []pipeline.PhaseState
		}
		mustCall(t, srv, "/jobs/phases/", map[string]any{"instance_id": id}, &got, http.StatusOK)
		if got.Status != pipeline.StatusCompleted {
			t.Errorf("status = %s, want completed", got.Status)
		}
		i := slices.IndexFunc(got.Phases, func(ps pipeline.PhaseState) bool { return ps.Name == "audit" })
		if i < 0 {
			t.Fatalf("phases = %+v, want audit", got.Phases)
		}

		audit := got.Phases[i]
		if audit.Type != pipeline.TypeTeam || audit.Status != pipeline.PhaseDone || audit.Depth != 0 {
			t.Errorf("audit = %s %s depth %d, want a done team phase at depth 0", audit.Type, audit.Status, audit.Depth)
		}
		var names []string
		for _, ps := range audit.Phases {
			names = append(names, ps.Name)
			if ps.Depth != 1 || ps.Status != pipeline.PhaseDone {
				t.Errorf("nested phase %s: depth %d status %s, want depth 1 done", ps.Name, ps.Depth, ps.Status)
			}
		}
		if want := []string{"audit.scan-a", "audit.scan-b", "audit.verify"}; !slices.Equal(names, want) {
			t.Fatalf("nested phases = %v, want %v", names, want)
		}

		verify := audit.Phases[2]
		if verify.Type != pipeline.TypeGate || verify.Iteration != 2 || verify.MaxIterations != 2 || verify.Verdict != "PASS" {
			t.Errorf("audit.verify = %+v, want a gate at iteration 2 of 2 with verdict PASS", verify)
		}
		if want := []string{"audit.scan-a", "audit.scan-b"}; !slices.Equal(verify.DependsOn, want) {
			t.Errorf("audit.verify depends_on = %v, want %v", verify.DependsOn, want)
		}
	})
}
