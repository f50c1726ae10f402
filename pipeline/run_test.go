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
)

// waitScript waits up to about 20 s for file to exist, then fails.
func waitScript(file string) string {
	return `i=0; while [ ! -f ` + file + ` ]; do i=$((i+1)); [ $i -gt 400 ] && exit 9; sleep 0.05; done`
}

func TestPipeline_Run(t *testing.T) {
	t.Run("ParallelPhasesOverlap", func(t *testing.T) {
		// Each phase waits for the file the other creates, so the run can
		// only complete when both run at the same time.
		dir := MustProject(t, testProject{team: `
name: "@test/parallel"
workflow:
  phases:
    - name: left
      agent: exec
      commands:
        - name: meet
          run: "touch left.started && ` + waitScript("right.started") + `"
          escalate_on_fail: true
    - name: right
      agent: exec
      commands:
        - name: meet
          run: "touch right.started && ` + waitScript("left.started") + `"
          escalate_on_fail: true
    - name: join
      agent: exec
      depends_on: [left, right]
      commands:
        - name: done
          run: "touch joined"
`})
		st, evs := MustRun(t, dir, nil)
		if st.Status != StatusCompleted {
			t.Fatalf("status = %s (%s), want completed", st.Status, st.Reason)
		}
		if _, err := os.Stat(filepath.Join(dir, "joined")); err != nil {
			t.Fatalf("join did not run: %v", err)
		}
		// join starts only after both of its dependencies are done.
		var doneLeft, doneRight, startJoin int64
		for _, e := range evs {
			switch {
			case e.Type == events.PhaseDone && e.Phase == "left":
				doneLeft = e.Seq
			case e.Type == events.PhaseDone && e.Phase == "right":
				doneRight = e.Seq
			case e.Type == events.PhaseStart && e.Phase == "join":
				startJoin = e.Seq
			}
		}
		if startJoin < doneLeft || startJoin < doneRight {
			t.Fatalf("join started at seq %d before left (%d) or right (%d) were done", startJoin, doneLeft, doneRight)
		}
		for _, name := range []string{"left", "right", "join"} {
			if s := phaseState(t, st, name).Status; s != PhaseDone {
				t.Errorf("phase %s status = %s, want done", name, s)
			}
		}
	})

	t.Run("GateRoutesThenPasses", func(t *testing.T) {
		dir := MustProject(t, testProject{team: `
name: "@test/route"
workflow:
  phases:
    - name: build
      agent: exec
      commands:
        - name: build
          run: "echo built >> builds.txt"
    - name: review
      type: gate
      depends_on: [build]
      commands:
        - name: check
          run: "test -f second || { touch second; echo first try fails; exit 1; }"
`})
		st, evs := MustRun(t, dir, nil)
		if st.Status != StatusCompleted {
			t.Fatalf("status = %s (%s), want completed", st.Status, st.Reason)
		}
		if n := lineCount(t, filepath.Join(dir, "builds.txt")); n != 2 {
			t.Errorf("build ran %d times, want 2", n)
		}
		verdicts := filterEvents(evs, events.GateVerdict, "review")
		if len(verdicts) != 2 {
			t.Fatalf("got %d gate_verdict events, want 2: %s", len(verdicts), eventTypes(evs))
		}
		if v := verdicts[0].Data["verdict"]; v != VerdictRoute {
			t.Errorf("first verdict = %v, want ROUTE", v)
		}
		if tg := verdicts[0].Data["target"]; tg != "build" {
			t.Errorf("first verdict target = %v, want build", tg)
		}
		if r, _ := verdicts[0].Data["reason"].(string); !strings.Contains(r, "check") {
			t.Errorf("first verdict reason %q does not name the failed command", r)
		}
		if v := verdicts[1].Data["verdict"]; v != VerdictPass {
			t.Errorf("second verdict = %v, want PASS", v)
		}
		iters := filterEvents(evs, events.GateIteration, "review")
		if len(iters) != 1 || iters[0].Data["iteration"] != float64(2) && iters[0].Data["iteration"] != 2 {
			t.Errorf("gate_iteration events = %v, want one with iteration 2", iters)
		}
		starts := filterEvents(evs, events.PhaseStart, "build")
		if len(starts) != 2 || starts[1].Data["iteration"] != 2 {
			t.Errorf("build phase_start events = %v, want 2, the second with iteration 2", starts)
		}
		gate := phaseState(t, st, "review")
		if gate.Iteration != 2 || gate.MaxIterations != 3 || gate.Verdict != VerdictPass {
			t.Errorf("gate state = iteration %d/%d verdict %q, want 2/3 PASS", gate.Iteration, gate.MaxIterations, gate.Verdict)
		}
	})

	t.Run("EscalatesPastMaxIterations", func(t *testing.T) {
		dir := MustProject(t, testProject{team: `
name: "@test/exhaust"
workflow:
  phases:
    - name: build
      agent: exec
      commands:
        - name: build
          run: "echo built >> builds.txt"
    - name: review
      type: gate
      depends_on: [build]
      max_iterations: 2
      commands:
        - name: check
          run: "exit 1"
    - name: ship
      agent: exec
      depends_on: [review]
      commands:
        - name: ship
          run: "touch shipped"
`})
		st, evs := MustRun(t, dir, nil)
		if st.Status != StatusEscalated {
			t.Fatalf("status = %s, want escalated", st.Status)
		}
		if want := `gate "review" exhausted its 2 iterations`; st.Reason != want {
			t.Errorf("reason = %q, want %q", st.Reason, want)
		}
		if st.Phase != "review" {
			t.Errorf("phase to blame = %q, want review", st.Phase)
		}
		if n := lineCount(t, filepath.Join(dir, "builds.txt")); n != 2 {
			t.Errorf("build ran %d times, want 2", n)
		}
		if _, err := os.Stat(filepath.Join(dir, "shipped")); err == nil {
			t.Error("ship ran after the gate escalated")
		}
		last := evs[len(evs)-1]
		if last.Type != events.PipelineError || last.Data["status"] != StatusEscalated || last.Data["phase"] != "review" {
			t.Errorf("final event = %s %v, want pipeline_error escalated for review", last.Type, last.Data)
		}
		gateErrs := filterEvents(evs, events.PhaseError, "review")
		if len(gateErrs) != 1 || gateErrs[0].Data["error"] != st.Reason {
			t.Errorf("phase_error of review = %v, want one carrying the run's reason", gateErrs)
		}
		if s := phaseState(t, st, "ship").Status; s != PhasePending {
			t.Errorf("ship status = %s, want pending", s)
		}
		if ExitCode(st.Status) != 3 {
			t.Errorf("ExitCode(%s) = %d, want 3", st.Status, ExitCode(st.Status))
		}
	})

	t.Run("IfSkipsCommands", func(t *testing.T) {
		dir := MustProject(t, testProject{team: `
name: "@test/if"
workflow:
  phases:
    - name: optional
      agent: exec
      commands:
        - name: node
          if: "test -f package.json"
          run: "touch ran-node"
    - name: mixed
      agent: exec
      depends_on: [optional]
      commands:
        - name: skipped
          if: "false"
          run: "touch ran-skipped"
        - name: kept
          if: "true"
          run: "touch ran-kept"
`})
		st, evs := MustRun(t, dir, nil)
		if st.Status != StatusCompleted {
			t.Fatalf("status = %s (%s), want completed", st.Status, st.Reason)
		}
		if s := phaseState(t, st, "optional").Status; s != PhaseSkipped {
			t.Errorf("optional status = %s, want skipped (its only command was skipped)", s)
		}
		if s := phaseState(t, st, "mixed").Status; s != PhaseDone {
			t.Errorf("mixed status = %s, want done", s)
		}
		for file, want := range map[string]bool{"ran-node": false, "ran-skipped": false, "ran-kept": true} {
			_, err := os.Stat(filepath.Join(dir, file))
			if got := err == nil; got != want {
				t.Errorf("%s exists = %v, want %v", file, got, want)
			}
		}
		done := filterEvents(evs, events.PhaseDone, "optional")
		if len(done) != 1 || done[0].Data["status"] != PhaseSkipped {
			t.Errorf("phase_done of optional = %v, want status skipped", done)
		}
	})

	t.Run("EscalateOnFail", func(t *testing.T) {
		dir := MustProject(t, testProject{team: `
name: "@test/escalate"
workflow:
  phases:
    - name: build
      agent: exec
      commands:
        - name: soft
          run: "exit 2"
        - name: hard
          run: "exit 3"
          escalate_on_fail: true
        - name: after
          run: "touch after"
    - name: ship
      agent: exec
      depends_on: [build]
      commands:
        - name: ship
          run: "touch shipped"
`})
		st, evs := MustRun(t, dir, nil)
		if st.Status != StatusEscalated {
			t.Fatalf("status = %s, want escalated", st.Status)
		}
		if !strings.Contains(st.Reason, `"hard"`) || !strings.Contains(st.Reason, "exit 3") {
			t.Errorf("reason %q does not name the command and its exit code", st.Reason)
		}
		for _, file := range []string{"after", "shipped"} {
			if _, err := os.Stat(filepath.Join(dir, file)); err == nil {
				t.Errorf("%s exists: commands ran after the escalation", file)
			}
		}
		errs := filterEvents(evs, events.PhaseError, "build")
		if len(errs) != 1 || errs[0].Data["exit_code"] != 3 {
			t.Errorf("phase_error of build = %v, want one with exit_code 3", errs)
		}
		if s := phaseState(t, st, "build").Status; s != StatusEscalated {
			t.Errorf("build status = %s, want escalated", s)
		}
	})

	t.Run("FailedCommandWithoutEscalateContinues", func(t *testing.T) {
		dir := MustProject(t, testProject{team: `
name: "@test/soft"
workflow:
  phases:
    - name: build
      agent: exec
      commands:
        - name: soft
          run: "echo broken; exit 2"
        - name: after
          run: "touch after"
`})
		st, evs := MustRun(t, dir, nil)
		if st.Status != StatusCompleted {
			t.Fatalf("status = %s (%s), want completed", st.Status, st.Reason)
		}
		if _, err := os.Stat(filepath.Join(dir, "after")); err != nil {
			t.Errorf("the command after the failed one did not run: %v", err)
		}
		done := filterEvents(evs, events.PhaseDone, "build")
		if len(done) != 1 || done[0].Data["failed_commands"] != 1 {
			t.Errorf("phase_done of build = %v, want failed_commands 1", done)
		}
		out := MustRead(t, filepath.Join(dir, ".cliq", "files", "build", "output.md"))
		if !strings.Contains(out, "failed (exit 2)") || !strings.Contains(out, "broken") {
			t.Errorf("output.md does not report the failure with its output:\n%s", out)
		}
	})

	t.Run("CommandTimeout", func(t *testing.T) {
		dir := MustProject(t, testProject{team: `
name: "@test/timeout"
workflow:
  phases:
    - name: slow
      agent: exec
      commands:
        - name: hang
          run: "sleep 300"
          timeout: 300ms
          escalate_on_fail: true
`})
		st, _ := MustRun(t, dir, nil)
		if st.Status != StatusEscalated {
			t.Fatalf("status = %s, want escalated", st.Status)
		}
		if !strings.Contains(st.Reason, "timed out after 300ms") {
			t.Errorf("reason %q does not report the timeout", st.Reason)
		}
	})

	t.Run("WritesStateAndLogs", func(t *testing.T) {
		dir := MustProject(t, testProject{team: `
name: "@test/files"
workflow:
  phases:
    - name: a
      agent: exec
      commands:
        - name: hello
          run: "echo hello from a"
    - name: b
      agent: exec
      depends_on: [a]
      commands:
        - name: world
          run: "echo world"
`})
		st, _ := MustRun(t, dir, nil)
		if st.Status != StatusCompleted {
			t.Fatalf("status = %s (%s)", st.Status, st.Reason)
		}
		disk, err := ReadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if disk.Status != StatusCompleted || disk.RunID != st.RunID || disk.FinishedAt == nil {
			t.Errorf("run.json = %+v, want the completed run %s with finished_at", disk, st.RunID)
		}
		if disk.PID != os.Getpid() || disk.Team != "@test/files" || disk.InstanceID != "cliq-abc123" {
			t.Errorf("run.json pid/team/instance = %d/%s/%s", disk.PID, disk.Team, disk.InstanceID)
		}
		if !strings.HasPrefix(st.RunID, "run_") || len(st.RunID) != 30 {
			t.Errorf("run id %q, want run_ and 26 characters", st.RunID)
		}
		cliq := filepath.Join(dir, ".cliq")
		for _, gone := range []string{"signals/_ws.json", "run.lock"} {
			if _, err := os.Stat(filepath.Join(cliq, gone)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still exists after the run: %v", gone, err)
			}
		}
		handoff := MustRead(t, filepath.Join(cliq, "channels", "a--b", "handoff.md"))
		if !strings.Contains(handoff, "`hello`: passed") {
			t.Errorf("handoff a--b = %q, want the command results", handoff)
		}
		cmdLog := MustRead(t, filepath.Join(cliq, "files", "a", "commands", "01-hello.log"))
		if !strings.Contains(cmdLog, "hello from a") {
			t.Errorf("command log = %q, want the command's output", cmdLog)
		}
		olog := MustRead(t, filepath.Join(cliq, "orchestrator.log"))
		for _, want := range []string{"a: started", `command "hello" passed`, "b: done", "completed"} {
			if !strings.Contains(olog, want) {
				t.Errorf("orchestrator.log lacks %q:\n%s", want, olog)
			}
		}

		// A second run starts from clean files.
		MustWrite(t, filepath.Join(cliq, "channels", "x--y", "stale.md"), "old")
		st2, _ := MustRun(t, dir, nil)
		if st2.RunID == st.RunID {
			t.Error("second run reused the run id")
		}
		if _, err := os.Stat(filepath.Join(cliq, "channels", "x--y")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale channel survived the new run: %v", err)
		}
	})
}

func TestPipeline_RunProgress(t *testing.T) {
	dir := MustProject(t, testProject{team: minimalTeam})
	var out strings.Builder
	p, err := Open(dir, Options{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"started: team @test/minimal", "work: started (agent exec, iteration 1)",
		`work: command "x" passed`, "work: done in", "completed in"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "Z work:") {
		t.Errorf("progress lines carry timestamps:\n%s", out.String())
	}
}

func TestPipeline_RunCancel(t *testing.T) {
	// The phase ignores SIGTERM and leaves a background grandchild that
	// ignores it too, so only SIGKILL of the whole group stops them.
	dir := MustProject(t, testProject{team: `
name: "@test/cancel"
workflow:
  phases:
    - name: stubborn
      agent: exec
      commands:
        - name: hang
          run: "trap '' TERM; sleep 300 & echo $! > bg.pid; echo $$ > pgid.tmp; mv pgid.tmp pgid; wait; wait"
    - name: never
      agent: exec
      depends_on: [stubborn]
      commands:
        - name: never
          run: "touch never"
`})
	rec := &recorder{}
	p, err := Open(dir, Options{Grace: 200 * time.Millisecond, OnEvent: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		st  *RunState
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := p.Run(ctx)
		done <- result{st, err}
	}()

	waitForFile(t, filepath.Join(dir, "pgid"))
	pgid := readPID(t, filepath.Join(dir, "pgid"))
	bg := readPID(t, filepath.Join(dir, "bg.pid"))
	cancel()

	var res result
	select {
	case res = <-done:
	case <-time.After(testTimeout):
		t.Fatal("Run did not return after cancel")
	}
	if res.err != nil {
		t.Fatalf("Run: %v", res.err)
	}
	if res.st.Status != StatusCancelled {
		t.Fatalf("status = %s, want cancelled", res.st.Status)
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(-%d, 0) = %v, want ESRCH: the phase's process group survived", pgid, err)
	}
	if err := syscall.Kill(bg, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) = %v, want ESRCH: the background grandchild survived", bg, err)
	}
	if s := phaseState(t, res.st, "stubborn").Status; s != StatusCancelled {
		t.Errorf("stubborn status = %s, want cancelled", s)
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); err == nil {
		t.Error("a phase started after the cancel")
	}
	evs := rec.all()
	CheckEventLog(t, dir, evs)
	last := evs[len(evs)-1]
	if last.Type != events.PipelineError || last.Data["status"] != StatusCancelled {
		t.Errorf("final event = %s %v, want pipeline_error with status cancelled", last.Type, last.Data)
	}
	if ExitCode(res.st.Status) != 4 {
		t.Errorf("ExitCode(cancelled) = %d, want 4", ExitCode(res.st.Status))
	}
}

// readPID reads a pid written by a test script.
func readPID(tb testing.TB, path string) int {
	tb.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(MustRead(tb, path)))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return pid
}
