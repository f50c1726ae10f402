package pipeline

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testdataDir is the repository's testdata directory, relative to this
// package.
var testdataDir = filepath.Join("..", "testdata")

func TestTestdata_TeamsLoad(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(testdataDir, "teams"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no teams in testdata/teams")
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			team, err := LoadTeam(filepath.Join(testdataDir, "teams", e.Name()))
			if err != nil {
				t.Fatalf("LoadTeam: %v", err)
			}
			if want := "@testdata/" + e.Name(); team.Name != want {
				t.Errorf("Name = %q, want %q", team.Name, want)
			}
		})
	}
}

// execOutcome is what runExecTeam observed.
type execOutcome struct {
	runs      map[string]int // phase name to number of runs
	verdicts  []string       // "gate:PASS" or "gate:ROUTE", in order
	escalated string         // the gate that ran out of iterations
}

// runExecTeam runs a team of exec phases in projectDir in waves: every
// phase whose depends_on are done runs at the same time as the others of
// its wave, and a gate's ROUTE re-runs Between(target, gate). It is a small
// stand-in for the scheduler in run_schedule.go, used to check that the
// testdata teams behave as their comments state.
func runExecTeam(t *testing.T, team *Team, projectDir string, inputs map[string]string) execOutcome {
	t.Helper()
	out := execOutcome{runs: map[string]int{}}
	done := map[string]bool{}
	iterations := map[string]int{}
	for waves := 0; len(done) < len(team.Workflow.Phases); waves++ {
		if waves > 50 {
			t.Fatal("runExecTeam: no progress after 50 waves")
		}
		ready := readyPhases(team, done)
		results := runWave(t, team, projectDir, inputs, ready)
		for i, name := range ready {
			p, _ := team.PhaseByName(name)
			out.runs[name]++
			if p.Type != TypeGate {
				if !results[i] {
					t.Fatalf("phase %s failed", name)
				}
				done[name] = true
				continue
			}
			iterations[name]++
			if results[i] {
				out.verdicts = append(out.verdicts, name+":PASS")
				done[name] = true
				continue
			}
			out.verdicts = append(out.verdicts, name+":ROUTE")
			if iterations[name] >= p.MaxIterations {
				out.escalated = name
				return out
			}
			for _, target := range team.RouteTargets(name) {
				for _, rerun := range team.Between(target, name) {
					delete(done, rerun)
				}
			}
		}
	}
	return out
}

func readyPhases(team *Team, done map[string]bool) []string {
	var ready []string
	for _, p := range team.Workflow.Phases {
		if !done[p.Name] && allDone(p.DependsOn, done) {
			ready = append(ready, p.Name)
		}
	}
	return ready
}

// runWave runs the named phases at the same time and reports which passed.
func runWave(t *testing.T, team *Team, projectDir string, inputs map[string]string, names []string) []bool {
	t.Helper()
	passed := make([]bool, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		p, _ := team.PhaseByName(name)
		wg.Go(func() { passed[i] = runCommands(t, p, projectDir, inputs) })
	}
	wg.Wait()
	return passed
}

func runCommands(t *testing.T, p *Phase, projectDir string, inputs map[string]string) bool {
	ok := true
	for _, c := range p.Commands {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, "sh", "-c", Substitute(c.Run, inputs))
		cmd.Dir = projectDir
		output, err := cmd.CombinedOutput()
		cancel()
		t.Logf("%s/%s: err=%v output=%q", p.Name, c.Name, err, output)
		if err != nil {
			ok = false
			if p.Type != TypeGate {
				return false
			}
		}
	}
	return ok
}

func TestTestdata_Demo(t *testing.T) {
	team, err := LoadTeam(filepath.Join(testdataDir, "teams", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	project := t.TempDir()
	got := runExecTeam(t, team, project, map[string]string{"greeting": "hello there"})

	if got.escalated != "" {
		t.Fatalf("escalated at %s", got.escalated)
	}
	if want := []string{"check:ROUTE", "check:PASS"}; !slices.Equal(got.verdicts, want) {
		t.Errorf("verdicts = %v, want %v", got.verdicts, want)
	}
	if got.runs["right"] != 2 {
		t.Errorf("right ran %d times, want 2", got.runs["right"])
	}
	if got.runs["left"] != 1 {
		t.Errorf("left ran %d times, want 1", got.runs["left"])
	}
	if got.runs["report"] != 1 {
		t.Errorf("report ran %d times, want 1", got.runs["report"])
	}
	greeting, err := os.ReadFile(filepath.Join(project, "out", "greeting.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(greeting)) != "hello there" {
		t.Errorf("greeting.txt = %q, want the substituted input", greeting)
	}
}

func TestTestdata_Escalate(t *testing.T) {
	team, err := LoadTeam(filepath.Join(testdataDir, "teams", "escalate"))
	if err != nil {
		t.Fatal(err)
	}
	got := runExecTeam(t, team, t.TempDir(), nil)

	if got.escalated != "never" {
		t.Errorf("escalated = %q, want never", got.escalated)
	}
	if want := []string{"never:ROUTE", "never:ROUTE"}; !slices.Equal(got.verdicts, want) {
		t.Errorf("verdicts = %v, want %v", got.verdicts, want)
	}
	if got.runs["work"] != 2 {
		t.Errorf("work ran %d times, want 2", got.runs["work"])
	}
	if got.runs["after"] != 0 {
		t.Errorf("after ran %d times, want 0", got.runs["after"])
	}
}

// fakeAgentPath is the fake AI agent script of the testdata.
var fakeAgentPath = filepath.Join(testdataDir, "agents", "fake-agent")

// runFakeAgent runs the fake agent in dir with prompt on stdin and returns
// its stdout and exit code.
func runFakeAgent(t *testing.T, dir, prompt string) (string, int) {
	t.Helper()
	script, err := filepath.Abs(fakeAgentPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(prompt)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return string(out), exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run fake agent: %v (stderr %q)", err, stderr.String())
	}
	return string(out), 0
}

// mustRole returns the agent-loop role with its inputs substituted.
func mustRole(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdataDir, "teams", "agent-loop", RolesDirName, name+".md"))
	if err != nil {
		t.Fatal(err)
	}
	return Substitute(string(data), map[string]string{"topic": "caching"})
}

func TestTestdata_FakeAgent(t *testing.T) {
	dir := t.TempDir()

	design, code := runFakeAgent(t, dir, mustRole(t, "design")+"\nThe requirement.\n")
	if code != 0 {
		t.Fatalf("design exit code = %d", code)
	}
	if !strings.Contains(design, "HANDOFF-FROM-DESIGN") {
		t.Errorf("design output %q lacks its handoff text", design)
	}
	if strings.Contains(design, "fake-agent:") {
		t.Errorf("design output %q repeats directive lines", design)
	}
	notes, err := os.ReadFile(filepath.Join(dir, "design.md"))
	if err != nil || strings.TrimSpace(string(notes)) != "Design notes about caching" {
		t.Errorf("design.md = %q, %v; want the substituted notes", notes, err)
	}

	build, _ := runFakeAgent(t, dir, mustRole(t, "build")+"\n## From design\n"+design)
	if _, err := os.Stat(filepath.Join(dir, "build.txt")); err != nil {
		t.Errorf("build did not write build.txt: %v", err)
	}

	review1, _ := runFakeAgent(t, dir, mustRole(t, "review")+"\n## From build\n"+build)
	if !strings.HasSuffix(review1, "VERDICT: ROUTE\n") {
		t.Errorf("first review output %q does not end with VERDICT: ROUTE", review1)
	}
	if !strings.Contains(review1, "GATE-FEEDBACK") {
		t.Errorf("first review output %q lacks the feedback", review1)
	}
	review2, _ := runFakeAgent(t, dir, mustRole(t, "review")+"\n## From build\n"+build)
	if !strings.HasSuffix(review2, "VERDICT: PASS\n") {
		t.Errorf("second review output %q does not end with VERDICT: PASS", review2)
	}
	if strings.Contains(review2, "GATE-FEEDBACK") {
		t.Errorf("second review output %q repeats the feedback", review2)
	}

	saved, err := os.ReadFile(filepath.Join(dir, ".fake-agent", "review-2.prompt.md"))
	if err != nil || !strings.Contains(string(saved), "## From build") {
		t.Errorf("review-2.prompt.md = %q, %v; want the second prompt", saved, err)
	}
}

func TestTestdata_FakeAgentDirectives(t *testing.T) {
	t.Run("ExitAndNoVerdict", func(t *testing.T) {
		out, code := runFakeAgent(t, t.TempDir(),
			"fake-agent: id x\nfake-agent: verdicts NONE\nfake-agent: exit 3\n")
		if code != 3 {
			t.Errorf("exit code = %d, want 3", code)
		}
		if strings.Contains(out, "VERDICT") {
			t.Errorf("output %q has a verdict line, want none", out)
		}
	})
	t.Run("LastVerdictRepeats", func(t *testing.T) {
		dir := t.TempDir()
		prompt := "fake-agent: id g\nfake-agent: verdicts ROUTE:build ESCALATE\n"
		var got []string
		for range 3 {
			out, _ := runFakeAgent(t, dir, prompt)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			got = append(got, lines[len(lines)-1])
		}
		want := []string{"VERDICT: ROUTE:build", "VERDICT: ESCALATE", "VERDICT: ESCALATE"}
		if !slices.Equal(got, want) {
			t.Errorf("verdicts = %v, want %v", got, want)
		}
	})
	t.Run("ErrNoID", func(t *testing.T) {
		if _, code := runFakeAgent(t, t.TempDir(), "no directives\n"); code != 2 {
			t.Errorf("exit code = %d, want 2", code)
		}
	})
}
