//go:build linux

package pipeline

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// startGroup starts sh in its own process group with a background child
// and CLIQ_RUN_ID=runID in its environment, and returns the group id.
func startGroup(tb testing.TB, runID string) int {
	tb.Helper()
	cmd := exec.Command("sh", "-c", "sleep 300 & exec sleep 300")
	cmd.Env = append(os.Environ(), "CLIQ_RUN_ID="+runID)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	pgid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	})
	// Wait until the background child exists, so the group has two members.
	deadline := time.Now().Add(10 * time.Second)
	for len(liveGroupMembers(pgid)) < 2 {
		if time.Now().After(deadline) {
			tb.Fatalf("process group %d did not get its two members", pgid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return pgid
}

// writeRunJSON writes a run.json in dir for run runID of orchestrator pid,
// with one phase that records pgids.
func writeRunJSON(tb testing.TB, dir, runID string, pid int, pgids ...int) {
	tb.Helper()
	st := RunState{RunID: runID, Status: StatusRunning, PID: pid,
		Phases: []PhaseState{{Name: "hang", Status: StatusRunning, PGIDs: pgids}}}
	data, err := json.Marshal(st)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.json"), data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

func TestKillLeftovers(t *testing.T) {
	t.Run("DeadOrchestrator", func(t *testing.T) {
		const runID = "run_LEFTOVERTEST0000000000001"
		project := t.TempDir()
		cliqDir := filepath.Join(project, ".cliq")
		top := startGroup(t, runID)
		nested := startGroup(t, runID)
		// A recorded group id that now belongs to another program: it
		// lacks the run's CLIQ_RUN_ID and must survive.
		other := startGroup(t, "run_SOMEONEELSE")
		dead := deadPID(t)
		writeRunJSON(t, cliqDir, runID, dead, top, other)
		writeRunJSON(t, filepath.Join(cliqDir, "teams", "audit"), runID, dead, nested)

		killed, err := KillLeftovers(project)
		if err != nil {
			t.Fatalf("KillLeftovers: %v", err)
		}
		slices.Sort(killed)
		want := []int{top, nested}
		slices.Sort(want)
		if !slices.Equal(killed, want) {
			t.Errorf("killed %v, want %v", killed, want)
		}
		for _, g := range want {
			if m := liveGroupMembers(g); len(m) > 0 {
				t.Errorf("group %d still has live members %v", g, m)
			}
		}
		if len(liveGroupMembers(other)) == 0 {
			t.Errorf("group %d of another run was killed", other)
		}
	})

	t.Run("LiveOrchestrator", func(t *testing.T) {
		const runID = "run_LEFTOVERTEST0000000000002"
		project := t.TempDir()
		g := startGroup(t, runID)
		writeRunJSON(t, filepath.Join(project, ".cliq"), runID, os.Getpid(), g)
		killed, err := KillLeftovers(project)
		if err != nil || len(killed) != 0 {
			t.Errorf("KillLeftovers = %v, %v; want nothing killed while the orchestrator lives", killed, err)
		}
		if len(liveGroupMembers(g)) == 0 {
			t.Errorf("group %d of a live run was killed", g)
		}
	})

	t.Run("NoRun", func(t *testing.T) {
		killed, err := KillLeftovers(t.TempDir())
		if err != nil || len(killed) != 0 {
			t.Errorf("KillLeftovers = %v, %v; want nothing for a project without run.json", killed, err)
		}
	})
}

func TestProcess_OnGroup(t *testing.T) {
	// The hook reports the group once it exists and again once it is
	// empty, which is when the runner adds it to run.json and removes it.
	dir := t.TempDir()
	p := process{argv: []string{"sh", "-c", "true"}, dir: dir}
	var seen []int
	var gone []int
	p.onGroup = func(pgid int, started bool) {
		if started {
			seen = append(seen, pgid)
		} else {
			gone = append(gone, pgid)
		}
	}
	if _, err := p.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || !slices.Equal(seen, gone) {
		t.Errorf("onGroup started %v, gone %v; want one group reported both times", seen, gone)
	}
}
