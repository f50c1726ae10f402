//go:build linux

package main

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// adoptOrphans makes the test process the child subreaper of the cliq
// processes it starts. The phase processes of a killed orchestrator are
// then adopted and reaped here, not by a PID 1 that may never reap them.
// The setting lasts for the rest of the test binary.
func adoptOrphans(t *testing.T) {
	t.Helper()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Skipf("cannot become a child subreaper: %v", errno)
	}
}

// processGone reports whether process pid no longer exists. A zombie that this
// process adopted is reaped first.
func processGone(pid int) bool {
	var status syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &status, syscall.WNOHANG, nil)
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestRun_KilledOrchestratorLeavesNoProcess(t *testing.T) {
	adoptOrphans(t)
	p := newProject(t)
	p.setup("slow")
	cmd, out, done := startSlowRun(t, p)

	var old []int
	for _, s := range strings.Fields(readFile(t, p.path("out", "hang.pids"))) {
		pid, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("out/hang.pids: %v", err)
		}
		old = append(old, pid)
	}
	if len(old) != 2 {
		t.Fatalf("out/hang.pids = %v, want the shell and the grandchild", old)
	}
	t.Cleanup(func() {
		for _, pid := range old {
			syscall.Kill(pid, syscall.SIGKILL)
			processGone(pid)
		}
	})
	st := p.state()
	if hang := st.Phases[0]; !slices.Contains(hang.PGIDs, old[0]) {
		t.Errorf("run.json phase %s records process groups %v, want %d (the shell's group)", hang.Name, hang.PGIDs, old[0])
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("cliq run did not exit after SIGKILL; output:\n%s", out.String())
	}
	for _, pid := range old {
		if processGone(pid) {
			t.Fatalf("process %d ended with the orchestrator; the test needs it to outlive it", pid)
		}
	}

	// The next run must end the old run's processes before its own start.
	if err := os.Remove(p.path("out", "hang.ready")); err != nil {
		t.Fatal(err)
	}
	next, nextOut, nextDone := startSlowRun(t, p)
	waitFor(t, 10*time.Second, "the old run's processes to be gone", func() bool {
		return processGone(old[0]) && processGone(old[1])
	})

	next.Process.Signal(syscall.SIGINT)
	select {
	case <-nextDone:
	case <-time.After(30 * time.Second):
		t.Fatalf("second run did not stop within 30 s of SIGINT; output:\n%s", nextOut.String())
	}
}
