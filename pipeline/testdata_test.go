package pipeline

import (
	"context"
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

// runExecTeam runs a team of exec phases in projectDir the way DESIGN
// describes, in waves of ready phases that run at the same time. It is a
// small stand-in for the engine that checks the testdata teams behave as
// their comments say; the real scheduler lives in the run side.
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
