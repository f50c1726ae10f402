//go:build unix

package pipeline

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ignoresSIGTERM reads the ignored-signal mask of pid from /proc. It skips
// the test where /proc is missing.
func ignoresSIGTERM(t *testing.T, pid int) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skipf("no /proc status for pid %d: %v", pid, err)
	}
	for line := range strings.Lines(string(data)) {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatalf("parse SigIgn %q: %v", hex, err)
			}
			return mask&(1<<(uint(syscall.SIGTERM)-1)) != 0
		}
	}
	t.Fatalf("no SigIgn line for pid %d", pid)
	return false
}

func TestTestdata_SlowTeam(t *testing.T) {
	team, err := LoadTeam(filepath.Join(testdataDir, "teams", "slow"))
	if err != nil {
		t.Fatal(err)
	}
	hang, _ := team.PhaseByName("hang")
	project := t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", hang.Commands[0].Run)
	cmd.Dir = project
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()

	// The phase prints its ready line once the grandchild runs and the
	// SIGTERM trap is set. The context bounds the wait.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "hang is ready\n" {
		t.Fatalf("first output line = %q, %v; want the ready line", line, err)
	}
	data, err := os.ReadFile(filepath.Join(project, "out", "hang.pids"))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		t.Fatalf("hang.pids = %q, want the shell and grandchild pids", data)
	}
	shell, _ := strconv.Atoi(fields[0])
	grandchild, _ := strconv.Atoi(fields[1])
	if shell != cmd.Process.Pid {
		t.Errorf("shell pid = %d, want %d", shell, cmd.Process.Pid)
	}
	if !ignoresSIGTERM(t, shell) {
		t.Errorf("the phase shell does not ignore SIGTERM")
	}
	if ignoresSIGTERM(t, grandchild) {
		t.Errorf("the grandchild ignores SIGTERM, want it to die on SIGTERM")
	}
	if pgid, err := syscall.Getpgid(grandchild); err != nil || pgid != cmd.Process.Pid {
		t.Errorf("grandchild process group = %d, %v; want %d", pgid, err, cmd.Process.Pid)
	}

	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Errorf("Wait = nil, want the shell killed")
	}
}
