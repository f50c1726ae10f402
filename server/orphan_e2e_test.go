//go:build linux

package server

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"cliq/events"
	"cliq/pipeline"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// processGone reports whether process pid no longer exists. The test
// process is the child subreaper, so a killed phase process that a dead
// orchestrator left is adopted, and reaped, here.
func processGone(pid int) bool {
	var status syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &status, syscall.WNOHANG, nil)
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestE2E_OrchestratorDiesLeavesNoProcess(t *testing.T) {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Skipf("cannot become a child subreaper: %v", errno)
	}
	env := newCliqEnv(t)
	dir, id := env.project(t, filepath.Join(moduleRoot(t), "testdata", "teams", "slow"), "-m", "hang")
	srv := env.startServer(t)
	ws := srv.dial(t, "/")
	subscribe(t, ws, events.JobChannel(id), -1)

	var created map[string]string
	mustCall(t, srv, "/jobs/create/", map[string]any{"instance_id": id}, &created, http.StatusAccepted)
	runID := created["run_id"]
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "out", "hang.ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for out/hang.ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", "hang.pids"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, s := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(s)
		pids = append(pids, pid)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
			processGone(pid)
		}
	})
	st, err := pipeline.ReadState(dir)
	if err != nil || st.PID <= 0 {
		t.Fatalf("run state %+v (%v), want the orchestrator pid", st, err)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	for {
		m := readMessage(t, ws)
		if m.RunID == runID && m.Type == events.PipelineError {
			break
		}
	}
	// The monitor kills the groups before it writes run.json and
	// publishes pipeline_error, so they are dead by now.
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("process %d of the dead run is still there", pid)
		}
	}
	st, err = pipeline.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range st.Phases {
		if len(ph.PGIDs) > 0 {
			t.Errorf("run.json phase %s still lists process groups %v", ph.Name, ph.PGIDs)
		}
	}
}
