package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"cliq/events"
	"cliq/settings"
)

// MustInstallTeam writes a team into CLIQ_HOME/teams/<name> (CLIQ_HOME must
// already point to a temporary directory) and returns its directory.
func MustInstallTeam(tb testing.TB, name, yml string, roles map[string]string) string {
	tb.Helper()
	home := os.Getenv("CLIQ_HOME")
	if home == "" {
		tb.Fatal("CLIQ_HOME is not set")
	}
	dir := filepath.Join(home, TeamsDirName, filepath.FromSlash(name))
	MustWriteFile(tb, filepath.Join(dir, TeamFileName), yml)
	for role, text := range roles {
		MustWriteFile(tb, filepath.Join(dir, RolesDirName, role+".md"), text)
	}
	return dir
}

// relayed returns the events of e whose phase is teamPhase or below it.
func relayed(evs []events.Event, teamPhase string) []events.Event {
	var out []events.Event
	for _, e := range evs {
		if e.Depth > 0 && (e.Phase == teamPhase || strings.HasPrefix(e.Phase, teamPhase+".")) {
			out = append(out, e)
		}
	}
	return out
}

// CheckRelayed checks that the parent's relayed events of teamPhase are
// exactly the events in the nested run's own events.jsonl, in order, with
// the phase prefixed and the depth raised by one. It also checks that they
// all come between the team phase's phase_start and its last phase_done.
func CheckRelayed(tb testing.TB, dir, teamPhase string, parent []events.Event) {
	tb.Helper()
	nested := ReadEventFile(tb, filepath.Join(dir, ".cliq", nestedRunsDirName, teamPhase, "events.jsonl"))
	got := relayed(parent, teamPhase)
	if len(got) != len(nested) {
		tb.Fatalf("parent relayed %d events of %s, the nested run has %d:\nrelayed: %s\nnested:  %s",
			len(got), teamPhase, len(nested), eventTypes(got), eventTypes(nested))
	}
	for i, n := range nested {
		want := nestedPhaseName(teamPhase, n.Phase)
		if got[i].Type != n.Type || got[i].Phase != want || got[i].Depth != n.Depth+1 {
			tb.Fatalf("relayed event %d = %s/%s depth %d, want %s/%s depth %d", i,
				got[i].Type, got[i].Phase, got[i].Depth, n.Type, want, n.Depth+1)
		}
		if n.RunID != got[i].RunID {
			tb.Errorf("relayed event %d: run_id %q, nested run_id %q", i, got[i].RunID, n.RunID)
		}
	}

	start := slices.IndexFunc(parent, func(e events.Event) bool {
		return e.Type == events.PhaseStart && e.Phase == teamPhase && e.Depth == 0
	})
	end := -1
	for i, e := range parent {
		if e.Type == events.PhaseDone && e.Phase == teamPhase && e.Depth == 0 {
			end = i
		}
	}
	bySeq := func(seq int64) int {
		return slices.IndexFunc(parent, func(e events.Event) bool { return e.Seq == seq })
	}
	first, last := bySeq(got[0].Seq), bySeq(got[len(got)-1].Seq)
	if start < 0 || end < 0 || first < start || last > end {
		tb.Fatalf("relayed events at %d..%d are not inside phase %s (%d..%d)", first, last, teamPhase, start, end)
	}
}

func TestPipeline_RunNested(t *testing.T) {
	dir := MustTestdataProject(t, "nested-parent", "Audit the thing.", map[string]string{"target": "hello"})
	st, evs := MustRun(t, dir, nil)
	if st.Status != StatusCompleted {
		t.Fatalf("status = %s (%s), want completed", st.Status, st.Reason)
	}

	t.Run("Events", func(t *testing.T) {
		CheckRelayed(t, dir, "audit", evs)
		var top []string
		for _, e := range evs {
			if e.Depth == 0 {
				top = append(top, e.Type+"/"+e.Phase)
			}
		}
		want := []string{"pipeline_start/", "phase_start/prepare", "phase_done/prepare", "phase_start/audit",
			"phase_done/audit", "phase_start/report", "phase_done/report", "pipeline_done/"}
		if !slices.Equal(top, want) {
			t.Errorf("depth 0 events = %v, want %v", top, want)
		}

		sub := relayed(evs, "audit")
		if sub[0].Type != events.PipelineStart || sub[0].Phase != "audit" || sub[0].Depth != 1 {
			t.Errorf("first relayed event = %s/%s depth %d, want pipeline_start/audit depth 1",
				sub[0].Type, sub[0].Phase, sub[0].Depth)
		}
		if e := sub[len(sub)-1]; e.Type != events.PipelineDone || e.Phase != "audit" || e.Final() {
			t.Errorf("last relayed event = %s/%s final %v, want a non-final pipeline_done/audit", e.Type, e.Phase, e.Final())
		}

		if n := len(filterEvents(evs, events.PhaseStart, "audit.scan-b")); n != 2 {
			t.Errorf("audit.scan-b started %d times, want 2", n)
		}
		if n := len(filterEvents(evs, events.PhaseStart, "audit.scan-a")); n != 1 {
			t.Errorf("audit.scan-a started %d times, want 1", n)
		}

		var verdicts []any
		for _, e := range filterEvents(evs, events.GateVerdict, "audit.verify") {
			verdicts = append(verdicts, e.Data["verdict"])
		}
		if !slices.Equal(verdicts, []any{"ROUTE", "PASS"}) {
			t.Errorf("audit.verify verdicts = %v, want [ROUTE PASS]", verdicts)
		}
		if n := len(filterEvents(evs, events.GateIteration, "audit.verify")); n != 1 {
			t.Errorf("audit.verify gate_iteration events = %d, want 1", n)
		}
		if team := filterEvents(evs, events.PhaseStart, "audit")[0].Data["team"]; team != "@testdata/nested-child" {
			t.Errorf("phase_start of audit has team %v, want @testdata/nested-child", team)
		}
	})

	t.Run("State", func(t *testing.T) {
		onDisk, err := ReadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		audit := phaseState(t, onDisk, "audit")
		if audit.Status != PhaseDone || audit.Type != TypeTeam {
			t.Errorf("audit = %s %s, want a done team phase", audit.Type, audit.Status)
		}
		var names []string
		for _, ps := range audit.Phases {
			names = append(names, ps.Name)
			if ps.Depth != 1 || ps.Status != PhaseDone {
				t.Errorf("nested phase %s: depth %d, status %s; want depth 1, done", ps.Name, ps.Depth, ps.Status)
			}
		}
		if want := []string{"audit.scan-a", "audit.scan-b", "audit.verify"}; !slices.Equal(names, want) {
			t.Fatalf("nested phases = %v, want %v", names, want)
		}
		verify := audit.Phases[2]
		if verify.Iteration != 2 || verify.Verdict != VerdictPass {
			t.Errorf("audit.verify iteration %d verdict %q, want 2 PASS", verify.Iteration, verify.Verdict)
		}
		if want := []string{"audit.scan-a", "audit.scan-b"}; !slices.Equal(verify.DependsOn, want) {
			t.Errorf("audit.verify depends_on = %v, want %v", verify.DependsOn, want)
		}
	})

	t.Run("Files", func(t *testing.T) {
		nested := filepath.Join(dir, ".cliq", nestedRunsDirName, "audit")
		if req := MustRead(t, filepath.Join(nested, RequirementFileName)); !strings.Contains(req, "Audit hello:") {
			t.Errorf("nested requirement = %q, want the audit role with the input substituted", req)
		}
		if _, err := os.Stat(filepath.Join(nested, "signals", "_ws.json")); err == nil {
			t.Error("the nested run's _ws.json was not removed")
		}
		data := MustRead(t, filepath.Join(nested, "run.json"))
		if !strings.Contains(data, `"status": "completed"`) {
			t.Errorf("nested run.json does not say completed:\n%s", data)
		}
		handoff := MustRead(t, filepath.Join(dir, ".cliq", "channels", "audit--report", handoffFile))
		if !strings.Contains(handoff, "Sub-team @testdata/nested-child of phase audit completed") ||
			!strings.Contains(handoff, "### From audit.verify") {
			t.Errorf("handoff of audit = %q, want the sub-team summary and the output of verify", handoff)
		}
		if log := MustRead(t, filepath.Join(dir, ".cliq", "orchestrator.log")); !strings.Contains(log, "audit: scan-a: started") {
			t.Errorf("orchestrator.log has no line of the nested run:\n%s", log)
		}
		if _, err := os.Stat(filepath.Join(dir, "out", "report.txt")); err != nil {
			t.Errorf("report did not run: %v", err)
		}
	})
}

// nestedTeam returns the YAML of a team called name whose phases are given.
func nestedTeam(name, phases string) string {
	return "name: \"" + name + "\"\nworkflow:\n  phases:\n" + phases
}

// teamPhase returns the YAML of a team phase that runs ref.
func teamPhase(name, ref, extra string) string {
	return "    - name: " + name + "\n      type: team\n      team: \"" + ref + "\"\n" + extra
}

func TestPipeline_RunNestedEscalated(t *testing.T) {
	dir := MustProject(t, testProject{
		team: nestedTeam("@t/parent",
			teamPhase("sub", "@t/never", "")+execPhase("after", "      depends_on: [sub]\n")),
		roles: map[string]string{"sub": "Never pass."},
	})
	MustInstallTeam(t, "@t/never", nestedTeam("@t/never", execPhase("work", "")+`    - name: never
      type: gate
      depends_on: [work]
      max_iterations: 1
      commands: [{name: c, run: "false"}]
`), nil)

	st, evs := MustRun(t, dir, nil)
	if st.Status != StatusEscalated {
		t.Fatalf("status = %s (%s), want escalated", st.Status, st.Reason)
	}
	want := `phase "sub" escalated: sub-team @t/never escalated: gate "never" exhausted its 1 iterations`
	if st.Reason != want {
		t.Errorf("reason = %q, want %q", st.Reason, want)
	}
	if st.Phase != "sub" {
		t.Errorf("phase to blame = %q, want sub", st.Phase)
	}
	if s := phaseState(t, st, "sub").Status; s != StatusEscalated {
		t.Errorf("sub status = %s, want escalated", s)
	}
	if s := phaseState(t, st, "after").Status; s != PhasePending {
		t.Errorf("after status = %s, want pending", s)
	}
	if ExitCode(st.Status) != 3 {
		t.Errorf("ExitCode = %d, want 3", ExitCode(st.Status))
	}
	CheckRelayed(t, dir, "sub", evs)
	nestedErr := filterEvents(evs, events.PipelineError, "sub.never")
	if len(nestedErr) != 1 || nestedErr[0].Depth != 1 || nestedErr[0].Data["status"] != StatusEscalated {
		t.Errorf("relayed pipeline_error = %v, want one of sub.never at depth 1 with status escalated", nestedErr)
	}
}

func TestPipeline_RunNestedCancel(t *testing.T) {
	dir := MustProject(t, testProject{
		team:  nestedTeam("@t/parent", teamPhase("sub", "@t/hang", "")+execPhase("after", "      depends_on: [sub]\n")),
		roles: map[string]string{"sub": "Hang."},
	})
	MustInstallTeam(t, "@t/hang", nestedTeam("@t/hang", `    - name: stubborn
      agent: exec
      commands:
        - name: hang
          run: "trap '' TERM; sleep 300 & echo $! > bg.pid; echo $$ > pgid.tmp; mv pgid.tmp pgid; wait; wait"
`), nil)

	rec := &recorder{}
	p, err := Open(dir, Options{Grace: 200 * time.Millisecond, OnEvent: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *RunState, 1)
	go func() {
		st, err := p.Run(ctx)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- st
	}()
	waitForFile(t, filepath.Join(dir, "pgid"))
	pgid := readPID(t, filepath.Join(dir, "pgid"))
	bg := readPID(t, filepath.Join(dir, "bg.pid"))
	cancel()

	var st *RunState
	select {
	case st = <-done:
	case <-time.After(testTimeout):
		t.Fatal("Run did not return after cancel")
	}
	if st == nil || st.Status != StatusCancelled {
		t.Fatalf("state = %+v, want cancelled", st)
	}
	if s := phaseState(t, st, "sub").Status; s != StatusCancelled {
		t.Errorf("sub status = %s, want cancelled", s)
	}
	if nested := phaseState(t, st, "sub").Phases; len(nested) != 1 || nested[0].Status != StatusCancelled {
		t.Errorf("nested phases = %+v, want sub.stubborn cancelled", nested)
	}
	for _, pid := range []int{-pgid, bg} {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill(%d, 0) = %v, want ESRCH: a process of the nested run survived the cancel", pid, err)
		}
	}
	evs := rec.all()
	CheckEventLog(t, dir, evs)
	CheckRelayed(t, dir, "sub", evs)
	if _, err := os.Stat(filepath.Join(dir, ".cliq", nestedRunsDirName, "sub", "signals", "_ws.json")); err == nil {
		t.Error("the nested run's _ws.json was not removed")
	}
}

// chainTeams installs @t/l0 … @t/l<n>, where each team runs the next one
// in its team phase "next" and the last one has one exec phase. It
// returns a project assembled with @t/l0.
func chainTeams(tb testing.TB, n int) string {
	tb.Helper()
	dir := MustProject(tb, testProject{
		team:  nestedTeam("@t/l0", teamPhase("l1", "@t/l1", "")),
		roles: map[string]string{"l1": "Go one level down."},
	})
	for i := 1; i <= n; i++ {
		name := "@t/l" + string(rune('0'+i))
		yml := nestedTeam(name, execPhase("leaf", ""))
		roles := map[string]string(nil)
		if i < n {
			next := "l" + string(rune('0'+i+1))
			yml = nestedTeam(name, teamPhase(next, "@t/"+next, ""))
			roles = map[string]string{next: "Go one level down."}
		}
		MustInstallTeam(tb, name, yml, roles)
	}
	return dir
}

func TestPipeline_RunNestedDepth(t *testing.T) {
	t.Run("DefaultAllowsThree", func(t *testing.T) {
		dir := chainTeams(t, 3)
		st, evs := MustRun(t, dir, nil)
		if st.Status != StatusCompleted {
			t.Fatalf("status = %s (%s), want completed", st.Status, st.Reason)
		}
		leaf := filterEvents(evs, events.PhaseDone, "l1.l2.l3.leaf")
		if len(leaf) != 1 || leaf[0].Depth != 3 {
			t.Fatalf("phase_done of l1.l2.l3.leaf = %v, want one at depth 3", leaf)
		}
		l1 := phaseState(t, st, "l1")
		if len(l1.Phases) != 1 || len(l1.Phases[0].Phases) != 1 {
			t.Fatalf("run.json does not nest l1.l2.l3: %+v", l1)
		}
		if got := l1.Phases[0].Phases[0]; got.Name != "l1.l2.l3" || got.Depth != 2 || len(got.Phases) != 1 {
			t.Errorf("l1.l2.l3 state = %+v, want depth 2 with one nested phase", got)
		}
		if got := l1.Phases[0].Phases[0].Phases[0]; got.Name != "l1.l2.l3.leaf" || got.Depth != 3 {
			t.Errorf("leaf state = %s depth %d, want l1.l2.l3.leaf depth 3", got.Name, got.Depth)
		}
	})

	t.Run("LimitFails", func(t *testing.T) {
		dir := chainTeams(t, 3)
		st, _ := MustRun(t, dir, settings.Map{"teams": settings.Map{"max_depth": float64(2)}})
		if st.Status != StatusFailed {
			t.Fatalf("status = %s (%s), want failed", st.Status, st.Reason)
		}
		if !strings.HasPrefix(st.Reason, `phase "l1" failed: sub-team @t/l1 failed: phase "l2" failed: `) ||
			!strings.Contains(st.Reason, `phase "l3" failed: sub-teams nested too deep`) ||
			!strings.Contains(st.Reason, "depth 3, but the setting teams.max_depth is 2") {
			t.Errorf("reason = %q, want the blamed phase and the depth limit", st.Reason)
		}
	})

	t.Run("InvalidSetting", func(t *testing.T) {
		dir := chainTeams(t, 1)
		for _, v := range []any{float64(0), 1.5, "3", float64(-1)} {
			_, err := Open(dir, Options{Settings: settings.Map{"teams": settings.Map{"max_depth": v}}})
			if err == nil || !strings.Contains(err.Error(), "teams.max_depth") {
				t.Errorf("max_depth %v: err = %v, want one naming teams.max_depth", v, err)
			}
		}
	})
}

func TestOpen_SubTeams(t *testing.T) {
	t.Run("ErrTeamCycleDirect", func(t *testing.T) {
		dir := MustProject(t, testProject{
			team:  nestedTeam("@t/self", teamPhase("again", "@t/self", "")),
			roles: map[string]string{"again": "Recurse."},
		})
		MustInstallTeam(t, "@t/self", nestedTeam("@t/self", teamPhase("again", "@t/self", "")),
			map[string]string{"again": "Recurse."})
		_, err := Open(dir, Options{})
		if !errors.Is(err, ErrTeamCycle) || !strings.Contains(err.Error(), "@t/self -> @t/self") {
			t.Fatalf("err = %v, want ErrTeamCycle naming @t/self -> @t/self", err)
		}
	})

	t.Run("ErrTeamCycleIndirect", func(t *testing.T) {
		dir := MustProject(t, testProject{
			team:  nestedTeam("@t/x", execPhase("first", "")+teamPhase("y", "@t/y", "")),
			roles: map[string]string{"y": "Run y."},
		})
		MustInstallTeam(t, "@t/y", nestedTeam("@t/y", teamPhase("z", "@t/z", "")), map[string]string{"z": "Run z."})
		MustInstallTeam(t, "@t/z", nestedTeam("@t/z", teamPhase("x", "@t/x", "")), map[string]string{"x": "Run x."})
		MustInstallTeam(t, "@t/x", nestedTeam("@t/x", teamPhase("y", "@t/y", "")), map[string]string{"y": "Run y."})
		_, err := Open(dir, Options{})
		if !errors.Is(err, ErrTeamCycle) || !strings.Contains(err.Error(), "@t/x -> @t/y -> @t/z -> @t/x") {
			t.Fatalf("err = %v, want ErrTeamCycle naming @t/x -> @t/y -> @t/z -> @t/x", err)
		}
	})

	t.Run("ResolveTeamOption", func(t *testing.T) {
		child := MustWriteTeam(t, nestedTeam("@t/child", execPhase("leaf", "")), nil)
		dir := MustProject(t, testProject{
			team:  nestedTeam("@t/parent", teamPhase("sub", "@lib/child", "")),
			roles: map[string]string{"sub": "Run the child."},
		})
		var requested []string
		p, err := Open(dir, Options{ResolveTeam: func(base, ref string) (string, error) {
			requested = append(requested, ref)
			return child, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(requested, []string{"@lib/child"}) {
			t.Errorf("resolver got %v, want [@lib/child]", requested)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		st, err := p.Run(ctx)
		if err != nil || st.Status != StatusCompleted {
			t.Fatalf("Run = %v, %v; want completed", st, err)
		}
	})

	t.Run("ErrTeamNotFound", func(t *testing.T) {
		dir := MustProject(t, testProject{
			team:  nestedTeam("@t/parent", teamPhase("sub", "@t/missing", "")),
			roles: map[string]string{"sub": "Run it."},
		})
		_, err := Open(dir, Options{})
		if !errors.Is(err, ErrTeamNotFound) || !strings.Contains(err.Error(), `phase "sub"`) {
			t.Fatalf("err = %v, want ErrTeamNotFound naming phase sub", err)
		}
	})

	t.Run("ErrInvalidTeamInputs", func(t *testing.T) {
		dir := MustProject(t, testProject{
			team:  nestedTeam("@t/parent", teamPhase("sub", "@t/child", "      inputs: {extra: x}\n")),
			roles: map[string]string{"sub": "Run it."},
		})
		MustInstallTeam(t, "@t/child", `name: "@t/child"
inputs: [{name: target}]
workflow:
  phases:
    - name: leaf
      agent: exec
      commands: [{name: c, run: "echo $(inputs.target)"}]
`, nil)
		_, err := Open(dir, Options{})
		if !errors.Is(err, ErrInvalidTeam) {
			t.Fatalf("err = %v, want ErrInvalidTeam", err)
		}
		for _, part := range []string{`input "target" is missing`, `unknown input "extra"`} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("err = %v, want it to contain %q", err, part)
			}
		}
	})

	t.Run("SubTeamAgentError", func(t *testing.T) {
		dir := MustProject(t, testProject{
			team:  nestedTeam("@t/parent", teamPhase("sub", "@t/child", "")),
			roles: map[string]string{"sub": "Run it."},
		})
		MustInstallTeam(t, "@t/child", nestedTeam("@t/child", "    - name: think\n      agent: nope\n"),
			map[string]string{"think": "Think."})
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), `unknown agent "nope"`) ||
			!strings.Contains(err.Error(), "sub-team @t/child") {
			t.Fatalf("err = %v, want the unknown agent of the sub-team", err)
		}
	})
}

func TestAssemble_SubTeams(t *testing.T) {
	t.Run("CopiesPathSubTeams", func(t *testing.T) {
		project := MustAssemble(t, filepath.Join(testdataDir, "teams", "nested-parent"))
		copied := filepath.Join(project, ".cliq", SubTeamsDirName, "audit")
		team, err := LoadTeam(copied)
		if err != nil {
			t.Fatalf("LoadTeam of the copy: %v", err)
		}
		if team.Name != "@testdata/nested-child" {
			t.Errorf("copied team = %s, want @testdata/nested-child", team.Name)
		}
	})

	t.Run("ReplacesSubTeams", func(t *testing.T) {
		project := MustAssemble(t, filepath.Join(testdataDir, "teams", "nested-parent"))
		if _, err := Assemble(project, filepath.Join(testdataDir, "teams", "demo")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(project, ".cliq", SubTeamsDirName)); err == nil {
			t.Error("subteams of the previous team survived assembling a team without sub-teams")
		}
	})

	t.Run("ErrTeamCycle", func(t *testing.T) {
		src := MustWriteTeam(t, nestedTeam("@t/self", teamPhase("again", "./", "")),
			map[string]string{"again": "Recurse."})
		project := t.TempDir()
		_, err := Assemble(project, src)
		if !errors.Is(err, ErrTeamCycle) || !strings.Contains(err.Error(), "@t/self -> @t/self") {
			t.Fatalf("err = %v, want ErrTeamCycle naming @t/self -> @t/self", err)
		}
		if names := listDir(t, filepath.Join(project, ".cliq")); slices.Contains(names, TeamFileName) {
			t.Errorf(".cliq = %v, want no team.yml after a failed assemble", names)
		}
	})
}

func TestCheckSubTeams(t *testing.T) {
	t.Setenv("CLIQ_HOME", t.TempDir())
	MustInstallTeam(t, "@t/a", nestedTeam("@t/a", teamPhase("b", "@t/b", "")), map[string]string{"b": "Run b."})
	MustInstallTeam(t, "@t/b", nestedTeam("@t/b", teamPhase("a", "@t/a", "")), map[string]string{"a": "Run a."})
	MustInstallTeam(t, "@t/ok", nestedTeam("@t/ok", execPhase("leaf", "")), nil)

	t.Run("OK", func(t *testing.T) {
		team := MustParseTeam(t, nestedTeam("@t/top", teamPhase("ok", "@t/ok", "")))
		if err := CheckSubTeams(team, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrTeamCycle", func(t *testing.T) {
		team := MustParseTeam(t, nestedTeam("@t/a", teamPhase("b", "@t/b", "")))
		err := CheckSubTeams(team, nil)
		if !errors.Is(err, ErrTeamCycle) || !strings.Contains(err.Error(), "@t/a -> @t/b -> @t/a") {
			t.Fatalf("err = %v, want ErrTeamCycle naming @t/a -> @t/b -> @t/a", err)
		}
	})
}

func TestNestPhases(t *testing.T) {
	in := []PhaseState{
		{Name: "a", Status: PhaseDone},
		{Name: "inner", DependsOn: []string{"a"}, Depth: 0, Phases: []PhaseState{
			{Name: "inner.x", Depth: 1},
		}},
	}
	out := nestPhases("outer", in)
	if out[0].Name != "outer.a" || out[0].Depth != 1 {
		t.Errorf("out[0] = %s depth %d, want outer.a depth 1", out[0].Name, out[0].Depth)
	}
	if !slices.Equal(out[1].DependsOn, []string{"outer.a"}) {
		t.Errorf("depends_on = %v, want [outer.a]", out[1].DependsOn)
	}
	if got := out[1].Phases[0]; got.Name != "outer.inner.x" || got.Depth != 2 {
		t.Errorf("grandchild = %s depth %d, want outer.inner.x depth 2", got.Name, got.Depth)
	}
	if in[0].Name != "a" || in[1].Phases[0].Name != "inner.x" {
		t.Error("nestPhases changed its input")
	}
}

func TestPipeline_RunNestedEventServer(t *testing.T) {
	dir := MustProject(t, testProject{
		team: nestedTeam("@t/parent", `    - name: first
      agent: exec
      commands:
        - name: hold
          run: "touch started && `+waitScript("go")+`"
          escalate_on_fail: true
`+teamPhase("audit", "@testdata/nested-child", "      depends_on: [first]\n      inputs: {target: served}\n")),
		roles: map[string]string{"audit": "Audit it."},
	})
	child := MustRead(t, filepath.Join(testdataDir, "teams", "nested-child", TeamFileName))
	MustInstallTeam(t, "@testdata/nested-child", child, nil)

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

	waitForFile(t, filepath.Join(dir, "started"))
	info, err := ReadWSInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	followed := follow(t, info, "")
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
	var got []events.Event
	select {
	case got = <-followed:
	case <-time.After(testTimeout):
		t.Fatal("follower did not finish")
	}
	want := ReadEventLog(t, dir)
	CheckRelayed(t, dir, "audit", want)
	if len(got) != len(want) {
		t.Fatalf("follower got %d events (%s), events.jsonl has %d (%s)",
			len(got), eventTypes(got), len(want), eventTypes(want))
	}
	for i := range want {
		if got[i].Seq != want[i].Seq || got[i].Type != want[i].Type || got[i].Phase != want[i].Phase ||
			got[i].Depth != want[i].Depth {
			t.Errorf("event %d = %d/%s/%s depth %d, want %d/%s/%s depth %d", i, got[i].Seq, got[i].Type,
				got[i].Phase, got[i].Depth, want[i].Seq, want[i].Type, want[i].Phase, want[i].Depth)
		}
	}
	if n := len(relayed(got, "audit")); n == 0 {
		t.Error("the follower received no relayed event of audit")
	}
}

func TestPipeline_RunNestedRouted(t *testing.T) {
	dir := MustProject(t, testProject{
		team: nestedTeam("@t/parent", teamPhase("sub", "@t/counter", "")+`    - name: check
      type: gate
      depends_on: [sub]
      commands: [{name: fixed, run: "test -f fixed"}]
`),
		roles: map[string]string{"sub": "Count the runs."},
	})
	MustInstallTeam(t, "@t/counter", nestedTeam("@t/counter", `    - name: count
      agent: exec
      commands:
        - name: count
          run: "n=$(cat runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > runs; if [ $n -ge 2 ]; then touch fixed; fi"
`), nil)

	st, evs := MustRun(t, dir, nil)
	if st.Status != StatusCompleted {
		t.Fatalf("status = %s (%s), want completed", st.Status, st.Reason)
	}
	if n := len(filterEvents(evs, events.PhaseStart, "sub")); n != 2 {
		t.Errorf("sub started %d times, want 2", n)
	}
	if n := len(filterEvents(evs, events.PipelineStart, "sub")); n != 2 {
		t.Errorf("nested pipeline_start relayed %d times, want 2: one nested run per iteration", n)
	}
	req := MustRead(t, filepath.Join(dir, ".cliq", nestedRunsDirName, "sub", RequirementFileName))
	if !strings.HasPrefix(req, "Count the runs.") || !strings.Contains(req, "## Feedback from gate check (iteration 1)") {
		t.Errorf("requirement of the second nested run = %q, want the role and the gate's feedback", req)
	}
	if got := phaseState(t, st, "sub").Phases; len(got) != 1 || got[0].Name != "sub.count" || got[0].Iteration != 1 {
		t.Errorf("nested phases = %+v, want sub.count of the latest nested run", got)
	}
}
