package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"cliq/events"
	"cliq/settings"
)

// fakeAgentSettings returns settings whose agent "fake" runs
// testdata/agents/fake-agent.
func fakeAgentSettings(tb testing.TB) settings.Map {
	tb.Helper()
	path, err := filepath.Abs(filepath.Join("..", "testdata", "agents", "fake-agent"))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		tb.Fatalf("fake agent: %v", err)
	}
	return settings.Map{"agents": settings.Map{"fake": settings.Map{"command": []any{path}}}}
}

// MustTestdataProject assembles testdata/teams/<team> into a new project
// and sets its requirement and inputs.
func MustTestdataProject(tb testing.TB, team, requirement string, inputs map[string]string) string {
	tb.Helper()
	tb.Setenv("CLIQ_HOME", tb.TempDir())
	dir := tb.TempDir()
	if _, err := Assemble(dir, filepath.Join("..", "testdata", "teams", team)); err != nil {
		tb.Fatalf("Assemble %s: %v", team, err)
	}
	if err := WriteRequirement(dir, requirement, inputs); err != nil {
		tb.Fatalf("WriteRequirement: %v", err)
	}
	MustWrite(tb, filepath.Join(dir, ".cliq", "cliq.id"), "cliq-abc123\n")
	return dir
}

func TestPipeline_RunCommandAgents(t *testing.T) {
	t.Run("PromptsCarryRoleRequirementHandoffAndFeedback", func(t *testing.T) {
		dir := MustTestdataProject(t, "agent-loop", "Make a widget.", map[string]string{"topic": "widgets"})
		st, evs := MustRun(t, dir, fakeAgentSettings(t))
		if st.Status != StatusCompleted {
			t.Fatalf("status = %s (%s), want completed", st.Status, st.Reason)
		}
		prompts := filepath.Join(dir, ".fake-agent")

		design := MustRead(t, filepath.Join(prompts, "design-1.prompt.md"))
		for _, want := range []string{"You are the design agent.", "## Role", "Design notes about widgets",
			"## Requirements", "Make a widget.", "## Your Task"} {
			if !strings.Contains(design, want) {
				t.Errorf("design prompt lacks %q:\n%s", want, design)
			}
		}
		if strings.Contains(design, "## Context from Prior Phases") {
			t.Errorf("design has no upstream phase but its prompt has a context section:\n%s", design)
		}

		build1 := MustRead(t, filepath.Join(prompts, "build-1.prompt.md"))
		for _, want := range []string{"You are the build agent.", "## Context from Prior Phases",
			"### From design", "HANDOFF-FROM-DESIGN"} {
			if !strings.Contains(build1, want) {
				t.Errorf("first build prompt lacks %q:\n%s", want, build1)
			}
		}
		if strings.Contains(build1, "## Feedback from gate") {
			t.Errorf("first build prompt has gate feedback:\n%s", build1)
		}
		order := []string{"You are the build agent.", "## Role", "## Requirements", "## Context from Prior Phases", "## Your Task"}
		assertOrder(t, build1, order)

		build2 := MustRead(t, filepath.Join(prompts, "build-2.prompt.md"))
		for _, want := range []string{"## Feedback from gate review (iteration 1)", "GATE-FEEDBACK: build.txt needs a header line.",
			"build-exists"} {
			if !strings.Contains(build2, want) {
				t.Errorf("second build prompt lacks %q:\n%s", want, build2)
			}
		}
		assertOrder(t, build2, []string{"## Context from Prior Phases", "## Feedback from gate review", "## Your Task"})

		review := MustRead(t, filepath.Join(prompts, "review-1.prompt.md"))
		for _, want := range []string{"## Command Results", "`build-exists`: passed", "VERDICT: ROUTE:<phase>", "Built build.txt"} {
			if !strings.Contains(review, want) {
				t.Errorf("review prompt lacks %q:\n%s", want, review)
			}
		}

		verdicts := filterEvents(evs, events.GateVerdict, "review")
		if len(verdicts) != 2 || verdicts[0].Data["verdict"] != VerdictRoute || verdicts[1].Data["verdict"] != VerdictPass {
			t.Fatalf("verdicts = %v, want ROUTE then PASS", verdicts)
		}
		if r := verdicts[0].Data["reason"]; r != "GATE-FEEDBACK: build.txt needs a header line." {
			t.Errorf("ROUTE reason = %q, want the line before the verdict", r)
		}
		if _, err := os.Stat(filepath.Join(prompts, "design-2.prompt.md")); err == nil {
			t.Error("design re-ran, but the gate routes only to build")
		}
		out := MustRead(t, filepath.Join(dir, ".cliq", "files", "design", "output.md"))
		if !strings.Contains(out, "HANDOFF-FROM-DESIGN") {
			t.Errorf("design output.md = %q, want the agent's stdout", out)
		}
	})

	t.Run("FailedAgentFailsRun", func(t *testing.T) {
		dir := MustProject(t, testProject{
			team: `
name: "@test/agent-fails"
workflow:
  phases:
    - name: work
    - name: after
      agent: exec
      depends_on: [work]
      commands:
        - name: x
          run: touch after
`,
			roles: map[string]string{"work": "fake-agent: id work\nfake-agent: exit 5\n"},
		})
		s := settings.Merge(fakeAgentSettings(t), settings.Map{"default_agent": "fake"})
		st, evs := MustRun(t, dir, s)
		if st.Status != StatusFailed {
			t.Fatalf("status = %s, want failed", st.Status)
		}
		if !strings.Contains(st.Reason, "exited with code 5") || st.Phase != "work" {
			t.Errorf("reason %q phase %q, want exit code 5 of work", st.Reason, st.Phase)
		}
		errs := filterEvents(evs, events.PhaseError, "work")
		if len(errs) != 1 || errs[0].Data["exit_code"] != 5 {
			t.Errorf("phase_error = %v, want exit_code 5", errs)
		}
		if phaseState(t, st, "work").Agent != "fake" {
			t.Errorf("work agent = %q, want fake from default_agent", phaseState(t, st, "work").Agent)
		}
		if ExitCode(st.Status) != 1 {
			t.Errorf("ExitCode(failed) = %d, want 1", ExitCode(st.Status))
		}
	})

	t.Run("GateWithoutVerdictEscalates", func(t *testing.T) {
		dir := MustProject(t, testProject{
			team: `
name: "@test/no-verdict"
workflow:
  phases:
    - name: work
      agent: exec
      commands:
        - name: x
          run: "true"
    - name: judge
      type: gate
      agent: fake
      depends_on: [work]
`,
			roles: map[string]string{"judge": "fake-agent: id judge\nfake-agent: verdicts NONE\n"},
		})
		st, evs := MustRun(t, dir, fakeAgentSettings(t))
		if st.Status != StatusEscalated {
			t.Fatalf("status = %s, want escalated", st.Status)
		}
		if !strings.Contains(st.Reason, "no line of the form VERDICT") {
			t.Errorf("reason = %q, want it to say the VERDICT line is missing", st.Reason)
		}
		v := filterEvents(evs, events.GateVerdict, "judge")
		if len(v) != 1 || v[0].Data["verdict"] != VerdictEscalate {
			t.Errorf("gate_verdict = %v, want ESCALATE", v)
		}
	})

	t.Run("RouteToNamedPhase", func(t *testing.T) {
		dir := MustProject(t, testProject{
			team: `
name: "@test/route-named"
workflow:
  phases:
    - name: plan
      agent: exec
      commands:
        - name: count
          run: "echo x >> plans.txt"
    - name: build
      agent: exec
      depends_on: [plan]
      commands:
        - name: count
          run: "echo x >> builds.txt"
    - name: judge
      type: gate
      agent: fake
      depends_on: [build]
`,
			roles: map[string]string{"judge": "fake-agent: id judge\nfake-agent: verdicts ROUTE:plan PASS\n"},
		})
		st, evs := MustRun(t, dir, fakeAgentSettings(t))
		if st.Status != StatusCompleted {
			t.Fatalf("status = %s (%s), want completed", st.Status, st.Reason)
		}
		for _, file := range []string{"plans.txt", "builds.txt"} {
			if n := lineCount(t, filepath.Join(dir, file)); n != 2 {
				t.Errorf("%s has %d lines, want 2: ROUTE:plan re-runs plan and build", file, n)
			}
		}
		v := filterEvents(evs, events.GateVerdict, "judge")
		if len(v) != 2 || v[0].Data["target"] != "plan" {
			t.Errorf("gate_verdict = %v, want target plan first", v)
		}
	})

	t.Run("RouteToUnknownPhaseEscalates", func(t *testing.T) {
		dir := MustProject(t, testProject{
			team: `
name: "@test/route-bad"
workflow:
  phases:
    - name: build
      agent: exec
      commands:
        - name: x
          run: "true"
    - name: judge
      type: gate
      agent: fake
      depends_on: [build]
`,
			roles: map[string]string{"judge": "fake-agent: id judge\nfake-agent: verdicts ROUTE:nowhere\n"},
		})
		st, _ := MustRun(t, dir, fakeAgentSettings(t))
		if st.Status != StatusEscalated || !strings.Contains(st.Reason, `"nowhere" is not a phase before the gate`) {
			t.Errorf("status %s reason %q, want escalated naming the unknown phase", st.Status, st.Reason)
		}
	})
}

func TestPipeline_RunTestdata(t *testing.T) {
	t.Run("Demo", func(t *testing.T) {
		dir := MustTestdataProject(t, "demo", "Show the demo.", map[string]string{"greeting": "hello there"})
		st, evs := MustRun(t, dir, nil)
		if st.Status != StatusCompleted {
			t.Fatalf("status = %s (%s), want completed", st.Status, st.Reason)
		}
		if got := strings.TrimSpace(MustRead(t, filepath.Join(dir, "out", "greeting.txt"))); got != "hello there" {
			t.Errorf("greeting = %q, want the substituted input", got)
		}
		if got := strings.TrimSpace(MustRead(t, filepath.Join(dir, "out", "right.runs"))); got != "2" {
			t.Errorf("right ran %s times, want 2", got)
		}
		if n := len(filterEvents(evs, events.PhaseStart, "left")); n != 1 {
			t.Errorf("left started %d times, want 1: route_to right re-runs right only", n)
		}
		if _, err := os.Stat(filepath.Join(dir, "out", "report.txt")); err != nil {
			t.Errorf("report did not run: %v", err)
		}
	})

	t.Run("Escalate", func(t *testing.T) {
		dir := MustTestdataProject(t, "escalate", "Never pass.", nil)
		st, _ := MustRun(t, dir, nil)
		if st.Status != StatusEscalated {
			t.Fatalf("status = %s, want escalated", st.Status)
		}
		if want := `gate "never" exhausted its 2 iterations`; st.Reason != want {
			t.Errorf("reason = %q, want %q", st.Reason, want)
		}
		if got := strings.TrimSpace(MustRead(t, filepath.Join(dir, "out", "work.runs"))); got != "2" {
			t.Errorf("work ran %s times, want 2", got)
		}
	})

	t.Run("SlowCancelled", func(t *testing.T) {
		dir := MustTestdataProject(t, "slow", "Hang.", nil)
		p, err := Open(dir, Options{Grace: 100 * time.Millisecond})
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
		waitForFile(t, filepath.Join(dir, "out", "hang.ready"))
		fields := strings.Fields(MustRead(t, filepath.Join(dir, "out", "hang.pids")))
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
		for _, f := range fields {
			pid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("hang.pids: %v", err)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process %d survived the cancel: kill = %v", pid, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "out", "after-ran")); err == nil {
			t.Error("after ran although the run was cancelled")
		}
	})
}

// assertOrder checks that the parts appear in text in the given order.
func assertOrder(tb testing.TB, text string, parts []string) {
	tb.Helper()
	at := 0
	for _, p := range parts {
		i := strings.Index(text[at:], p)
		if i < 0 {
			tb.Errorf("%q missing or out of order in:\n%s", p, text)
			return
		}
		at += i + len(p)
	}
}
