package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cliq/events"
	"cliq/pipeline"
)

// binary is the cliq binary built once for the tests of this file.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cliq-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cliq")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cliq:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// project is a temporary project directory with its own CLIQ_HOME.
type project struct {
	t    *testing.T
	dir  string
	home string
}

func newProject(t *testing.T) *project {
	t.Helper()
	// CLIQ_HOME does not exist yet, so cliq creates it as it would ~/.cliqrc.
	return &project{t: t, dir: t.TempDir(), home: filepath.Join(t.TempDir(), "home")}
}

// result is what one cliq command printed and how it exited.
type result struct {
	code   int
	stdout string
	stderr string
}

func (p *project) command(args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "CLIQ_HOME="+p.home, "CLIQ_DATABASE_URL=")
	return cmd
}

// run runs cliq with args in the project and waits for it, at most a minute.
func (p *project) run(args ...string) result {
	p.t.Helper()
	cmd := p.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start cliq %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		p.t.Fatalf("cliq %v did not finish within a minute; stdout:\n%s\nstderr:\n%s", args, stdout.String(), stderr.String())
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// mustRun runs cliq and fails the test unless it exits 0.
func (p *project) mustRun(args ...string) result {
	p.t.Helper()
	r := p.run(args...)
	if r.code != 0 {
		p.t.Fatalf("cliq %v exited %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// setup runs init, assemble TEAM and req with the given inputs.
func (p *project) setup(team string, inputs ...string) {
	p.t.Helper()
	p.mustRun("init")
	p.mustRun("assemble", testdataTeam(p.t, team))
	args := []string{"req", "-m", "REQUIREMENT-TEXT: build the thing"}
	for _, in := range inputs {
		args = append(args, "--input", in)
	}
	p.mustRun(args...)
}

func (p *project) path(parts ...string) string {
	return filepath.Join(append([]string{p.dir}, parts...)...)
}

func (p *project) state() *pipeline.RunState {
	p.t.Helper()
	s, err := pipeline.ReadState(p.dir)
	if err != nil {
		p.t.Fatalf("read run.json: %v", err)
	}
	return s
}

// events reads .cliq/events.jsonl and checks the invariants every run
// keeps: seq contiguous from 1, one run id, every phase_start followed by
// its phase_done, and exactly one final event, at the end.
func (p *project) events() []events.Event {
	p.t.Helper()
	data, err := os.ReadFile(p.path(".cliq", "events.jsonl"))
	if err != nil {
		p.t.Fatalf("read events.jsonl: %v", err)
	}
	var list []events.Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e events.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			p.t.Fatalf("events.jsonl line %d: %v", len(list)+1, err)
		}
		list = append(list, e)
	}
	checkEventInvariants(p.t, list)
	return list
}

func checkEventInvariants(t *testing.T, list []events.Event) {
	t.Helper()
	if len(list) == 0 {
		t.Fatal("events.jsonl is empty")
	}
	open := map[string]bool{}
	for i, e := range list {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d, want %d", i, e.Seq, i+1)
		}
		if e.RunID != list[0].RunID {
			t.Fatalf("event %d has run id %s, want %s", i, e.RunID, list[0].RunID)
		}
		if e.Final() != (i == len(list)-1) {
			t.Fatalf("event %d (%s) final=%v, but it is at position %d of %d", i, e.Type, e.Final(), i+1, len(list))
		}
		switch e.Type {
		case events.PhaseStart:
			if open[e.Phase] {
				t.Fatalf("phase %s started twice without phase_done (seq %d)", e.Phase, e.Seq)
			}
			open[e.Phase] = true
		case events.PhaseDone:
			if !open[e.Phase] {
				t.Fatalf("phase_done of %s before its phase_start (seq %d)", e.Phase, e.Seq)
			}
			open[e.Phase] = false
		}
	}
	if list[0].Type != events.PipelineStart {
		t.Fatalf("first event is %s, want pipeline_start", list[0].Type)
	}
}

func testdataTeam(t *testing.T, name string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "teams", name))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// verdicts returns "VERDICT@iteration" for every gate_verdict of a gate.
func verdicts(list []events.Event, gate string) []string {
	var out []string
	for _, e := range list {
		if e.Type == events.GateVerdict && e.Phase == gate {
			out = append(out, fmt.Sprintf("%v@%v", e.Data["verdict"], e.Data["iteration"]))
		}
	}
	return out
}

func TestRun_DemoTeam(t *testing.T) {
	p := newProject(t)
	p.setup("demo", "greeting=hello there")

	r := p.run("run", "--headless")
	if r.code != 0 {
		t.Fatalf("cliq run exited %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"phase left started", "verdict ROUTE", "verdict PASS", "completed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run output lacks %q:\n%s", want, r.stdout)
		}
	}

	s := p.state()
	if s.Status != pipeline.StatusCompleted {
		t.Fatalf("run.json status %s (%s), want completed", s.Status, s.Reason)
	}
	if s.FinishedAt == nil {
		t.Error("run.json has no finished_at")
	}
	list := p.events()
	if got, want := strings.Join(verdicts(list, "check"), " "), "ROUTE@1 PASS@2"; got != want {
		t.Errorf("gate verdicts %q, want %q", got, want)
	}
	var iterations []string
	for _, e := range list {
		if e.Type == events.GateIteration {
			iterations = append(iterations, fmt.Sprintf("%v/%v", e.Data["iteration"], e.Data["max_iterations"]))
		}
	}
	if strings.Join(iterations, " ") != "2/3" {
		t.Errorf("gate_iteration events %v, want [2/3]", iterations)
	}
	for _, edge := range []string{"prepare--left", "prepare--right", "left--check", "right--check", "check--report"} {
		if _, err := os.Stat(p.path(".cliq", "channels", edge, "handoff.md")); err != nil {
			t.Errorf("handoff of %s: %v", edge, err)
		}
	}
	greeting, err := os.ReadFile(p.path("out", "greeting.txt"))
	if err != nil || strings.TrimSpace(string(greeting)) != "hello there" {
		t.Errorf("out/greeting.txt = %q, %v; want the substituted input", greeting, err)
	}
	if _, err := os.Stat(p.path(".cliq", "signals", "_ws.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("_ws.json still exists after the run: %v", err)
	}

	status := p.mustRun("status")
	if !strings.Contains(status.stdout, "completed") || !strings.Contains(status.stdout, "verdict PASS") {
		t.Errorf("cliq status output:\n%s", status.stdout)
	}
}

func TestRun_EscalateTeam(t *testing.T) {
	p := newProject(t)
	p.setup("escalate")

	r := p.run("run")
	if r.code != 3 {
		t.Fatalf("cliq run exited %d, want 3 (escalated)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	s := p.state()
	if s.Status != pipeline.StatusEscalated {
		t.Fatalf("run.json status %s, want escalated", s.Status)
	}
	if !strings.Contains(s.Reason, `"never"`) || !strings.Contains(s.Reason, "2") {
		t.Errorf("reason %q should name the gate and its iteration count", s.Reason)
	}
	list := p.events()
	if got, want := strings.Join(verdicts(list, "never"), " "), "ROUTE@1 ROUTE@2"; got != want {
		t.Errorf("gate verdicts %q, want %q", got, want)
	}
	last := list[len(list)-1]
	if last.Type != events.PipelineError || last.Data["status"] != pipeline.StatusEscalated {
		t.Errorf("last event %s %v, want pipeline_error with status escalated", last.Type, last.Data)
	}
	if _, err := os.Stat(p.path("out", "after-ran")); err == nil {
		t.Error("the phase after the escalated gate ran")
	}
	runs, _ := os.ReadFile(p.path("out", "work.runs"))
	if strings.TrimSpace(string(runs)) != "2" {
		t.Errorf("work ran %q times, want 2", strings.TrimSpace(string(runs)))
	}
}

func TestRun_AgentLoopPrompts(t *testing.T) {
	p := newProject(t)
	p.mustRun("init")
	agent, err := filepath.Abs(filepath.Join("testdata", "agents", "fake-agent"))
	if err != nil {
		t.Fatal(err)
	}
	p.mustRun("assemble", testdataTeam(t, "agent-loop"))
	settingsJSON := fmt.Sprintf(`{"agents": {"fake": {"command": [%q]}}}`, agent)
	if err := os.WriteFile(p.path(".cliq", "settings.json"), []byte(settingsJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	p.mustRun("req", "-m", "REQUIREMENT-TEXT: a tiny tool", "--input", "topic=parsers")

	r := p.run("run", "--headless")
	if r.code != 0 {
		t.Fatalf("cliq run exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	list := p.events()
	if got, want := strings.Join(verdicts(list, "review"), " "), "ROUTE@1 PASS@2"; got != want {
		t.Errorf("review verdicts %q, want %q", got, want)
	}

	first := readFile(t, p.path(".fake-agent", "build-1.prompt.md"))
	for _, want := range []string{"You build what design.md describes", "REQUIREMENT-TEXT: a tiny tool", "From design", "HANDOFF-FROM-DESIGN"} {
		if !strings.Contains(first, want) {
			t.Errorf("first build prompt lacks %q:\n%s", want, first)
		}
	}
	if strings.Contains(first, "GATE-FEEDBACK") {
		t.Error("first build prompt already holds gate feedback")
	}
	second := readFile(t, p.path(".fake-agent", "build-2.prompt.md"))
	if !strings.Contains(second, "GATE-FEEDBACK") {
		t.Errorf("re-run prompt of build lacks the gate's feedback:\n%s", second)
	}
	design := readFile(t, p.path(".fake-agent", "design-1.prompt.md"))
	if !strings.Contains(design, "Design notes about parsers") {
		t.Errorf("design prompt lacks the role with the input substituted:\n%s", design)
	}
	if got := readFile(t, p.path(".cliq", "files", "design", "prompt.md")); got != design {
		t.Error("files/design/prompt.md differs from the prompt the agent read on stdin")
	}
	handoff := readFile(t, p.path(".cliq", "channels", "design--build", "handoff.md"))
	if !strings.Contains(handoff, "HANDOFF-FROM-DESIGN") {
		t.Errorf("design--build handoff lacks the design output:\n%s", handoff)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// startSlowRun starts cliq run on the slow team and waits until its hang
// phase is ready.
func startSlowRun(t *testing.T, p *project) (*exec.Cmd, *lockedBuffer, chan error) {
	t.Helper()
	cmd := p.command("run", "--headless", "--grace", "500ms")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	waitFor(t, 20*time.Second, "the hang phase to be ready", func() bool {
		_, err := os.Stat(p.path("out", "hang.ready"))
		return err == nil
	})
	return cmd, out, done
}

func TestRun_CancelStopsEveryProcess(t *testing.T) {
	p := newProject(t)
	p.setup("slow")
	cmd, out, done := startSlowRun(t, p)

	pids := strings.Fields(readFile(t, p.path("out", "hang.pids")))
	if len(pids) != 2 {
		t.Fatalf("out/hang.pids = %v, want the shell and the grandchild", pids)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("cliq run did not stop within 30 s of SIGINT; output:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 4 {
		t.Errorf("exit code %d, want 4 (cancelled); output:\n%s", code, out.String())
	}
	if s := p.state(); s.Status != pipeline.StatusCancelled {
		t.Errorf("run.json status %s, want cancelled", s.Status)
	}
	list := p.events()
	if last := list[len(list)-1]; last.Type != events.PipelineError || last.Data["status"] != pipeline.StatusCancelled {
		t.Errorf("last event %s %v, want pipeline_error with status cancelled", last.Type, last.Data)
	}
	for _, s := range pids {
		pid, _ := strconv.Atoi(s)
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d of the run is still there (kill 0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(p.path("out", "after-ran")); err == nil {
		t.Error("the phase after the cancelled one ran")
	}
}

func TestRun_SecondRunWhileActive(t *testing.T) {
	p := newProject(t)
	p.setup("slow")
	cmd, _, done := startSlowRun(t, p)
	before := readFile(t, p.path(".cliq", "events.jsonl"))

	r := p.run("run")
	if r.code == 0 {
		t.Fatal("second cliq run exited 0, want a failure")
	}
	if !strings.Contains(r.stderr, "active") {
		t.Errorf("second run's error does not say a run is active:\n%s", r.stderr)
	}
	if after := readFile(t, p.path(".cliq", "events.jsonl")); !strings.HasPrefix(after, before) {
		t.Error("the second run changed the first run's events.jsonl")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("first run did not stop within 30 s of SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 4 {
		t.Errorf("first run exited %d after SIGTERM, want 4", code)
	}
}

func TestRun_BeforeAssembleOrReq(t *testing.T) {
	p := newProject(t)
	r := p.run("run")
	if r.code != 1 || !strings.Contains(r.stderr, "cliq init") {
		t.Errorf("run before init: exit %d, stderr %q; want 1 and a hint to run cliq init", r.code, r.stderr)
	}
	p.mustRun("init")
	r = p.run("run")
	if r.code != 1 || !strings.Contains(r.stderr, "cliq assemble") {
		t.Errorf("run before assemble: exit %d, stderr %q; want 1 and a hint to run cliq assemble", r.code, r.stderr)
	}
	p.mustRun("assemble", testdataTeam(t, "escalate"))
	r = p.run("run")
	if r.code != 1 || !strings.Contains(r.stderr, "cliq req") {
		t.Errorf("run before req: exit %d, stderr %q; want 1 and a hint to run cliq req", r.code, r.stderr)
	}
	if _, err := os.Stat(p.path(".cliq", "run.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a run that could not start left run.json: %v", err)
	}
}

func TestAssemble_InvalidTeams(t *testing.T) {
	cases := []struct {
		name    string
		teamYML string
		roles   []string
		want    string
	}{
		{"bad yaml", "name: \"@t/x\"\nworkflow: [unclosed\n", nil, "team.yml"},
		{"unknown field", "name: \"@t/x\"\ncolour: red\nworkflow:\n  phases:\n    - {name: a, agent: exec, commands: [{name: c, run: \"true\"}]}\n", nil, "colour"},
		{"unknown depends_on", "name: \"@t/x\"\nworkflow:\n  phases:\n    - {name: a, agent: exec, depends_on: [ghost], commands: [{name: c, run: \"true\"}]}\n", nil, "ghost"},
		{"cycle", "name: \"@t/x\"\nworkflow:\n  phases:\n    - {name: a, agent: exec, depends_on: [b], commands: [{name: c, run: \"true\"}]}\n    - {name: b, agent: exec, depends_on: [a], commands: [{name: c, run: \"true\"}]}\n", nil, "cycle"},
		{"duplicate name", "name: \"@t/x\"\nworkflow:\n  phases:\n    - {name: a, agent: exec, commands: [{name: c, run: \"true\"}]}\n    - {name: a, agent: exec, commands: [{name: c, run: \"true\"}]}\n", nil, "duplicate"},
		{"missing role", "name: \"@t/x\"\nworkflow:\n  phases:\n    - {name: writer, agent: claude-code}\n", nil, "writer"},
		{"gate with nothing to judge", "name: \"@t/x\"\nworkflow:\n  phases:\n    - {name: a, agent: exec, commands: [{name: c, run: \"true\"}]}\n    - {name: g, type: gate, depends_on: [a]}\n", nil, "g"},
		{"unused input", "name: \"@t/x\"\ninputs: [{name: unused}]\nworkflow:\n  phases:\n    - {name: a, agent: exec, commands: [{name: c, run: \"true\"}]}\n", nil, "unused"},
		{"undeclared input", "name: \"@t/x\"\nworkflow:\n  phases:\n    - {name: a, agent: exec, commands: [{name: c, run: \"echo $(inputs.missing)\"}]}\n", nil, "missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProject(t)
			p.mustRun("init")
			team := t.TempDir()
			if err := os.WriteFile(filepath.Join(team, "team.yml"), []byte(tc.teamYML), 0o644); err != nil {
				t.Fatal(err)
			}
			r := p.run("assemble", team)
			if r.code == 0 {
				t.Fatalf("assemble of an invalid team exited 0")
			}
			if !strings.Contains(r.stderr, "team.yml") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("error does not name the file and %q:\n%s", tc.want, r.stderr)
			}
			if _, err := os.Stat(p.path(".cliq", "team.yml")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed assemble wrote .cliq/team.yml: %v", err)
			}
		})
	}
}

func TestInit_KeepsID(t *testing.T) {
	p := newProject(t)
	p.mustRun("init")
	first := readFile(t, p.path(".cliq", "cliq.id"))
	p.mustRun("init")
	if second := readFile(t, p.path(".cliq", "cliq.id")); second != first {
		t.Errorf("second init changed the id from %q to %q", first, second)
	}
	if info, err := os.Stat(p.home); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("CLIQ_HOME mode %v, %v; want 0700", info.Mode().Perm(), err)
	}
}

func TestClean_RemovesRunStateOnly(t *testing.T) {
	p := newProject(t)
	p.setup("demo", "greeting=hi")
	p.mustRun("run")
	r := p.mustRun("clean")
	for _, want := range []string{"Removed registry entry", "run.json", "events.jsonl"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("clean output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, gone := range []string{"run.json", "events.jsonl", "orchestrator.log", "channels", "files"} {
		if _, err := os.Stat(p.path(".cliq", gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf(".cliq/%s survived clean: %v", gone, err)
		}
	}
	for _, kept := range []string{".cliq/team.yml", ".cliq/req_spec.md", ".cliq/cliq.id", "out/report.txt"} {
		if _, err := os.Stat(p.path(kept)); err != nil {
			t.Errorf("clean removed %s: %v", kept, err)
		}
	}
	if r := p.mustRun("clean"); !strings.Contains(r.stdout, "already gone") {
		t.Errorf("second clean should say the entry was already gone:\n%s", r.stdout)
	}
}

func TestUsage_ExitCodes(t *testing.T) {
	p := newProject(t)
	if r := p.run("help"); r.code != 0 {
		t.Errorf("cliq help exited %d, want 0", r.code)
	}
	if r := p.run("no-such-command"); r.code != 2 {
		t.Errorf("unknown command exited %d, want 2", r.code)
	}
	if r := p.run("req"); r.code != 2 {
		t.Errorf("req without a requirement exited %d, want 2", r.code)
	}
	r := p.run("run", "--no-such-flag")
	if r.code != 2 {
		t.Errorf("unknown flag exited %d, want 2", r.code)
	}
	if n := strings.Count(r.stderr, "no-such-flag"); n != 1 {
		t.Errorf("the unknown flag is named %d times, want once:\n%s", n, r.stderr)
	}
	if r := p.run("run", "extra-argument"); r.code != 2 {
		t.Errorf("run with an argument exited %d, want 2", r.code)
	}
	if r := p.run("run", "--grace", "-5s"); r.code != 2 {
		t.Errorf("run --grace -5s exited %d, want 2", r.code)
	}
	if r := p.run("status", "extra-argument"); r.code != 2 {
		t.Errorf("status with an argument exited %d, want 2", r.code)
	}
}

func TestRun_InvalidSettingsPatch(t *testing.T) {
	p := newProject(t)
	p.setup("escalate")
	r := p.run("run", "--settings", `{"foo": 1}`)
	if r.code != 1 || !strings.Contains(r.stderr, "setting foo") {
		t.Errorf("run with an unknown setting: exit %d, stderr %q; want 1 naming the setting", r.code, r.stderr)
	}
	if _, err := os.Stat(p.path(".cliq", "run.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a run with invalid settings left run.json: %v", err)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer collects a child's output while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
