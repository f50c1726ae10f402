package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// DefaultGrace is how long a phase's process group gets between SIGTERM and
// SIGKILL when it is cancelled or times out.
const DefaultGrace = 10 * time.Second

// groupExitTimeout bounds the wait for a killed process group to disappear.
const groupExitTimeout = 5 * time.Second

// ErrTimeout reports that a command ran past its timeout and was killed.
var ErrTimeout = errors.New("timed out")

// process describes one child process that runs in its own process group.
type process struct {
	argv   []string
	dir    string
	env    []string
	stdin  *os.File // nil means /dev/null
	stdout *os.File
	stderr *os.File
	// timeout, when positive, kills the group after that long.
	timeout time.Duration
	// grace is the time between SIGTERM and SIGKILL.
	grace time.Duration
	// onGroup, when set, is called with started true once the process
	// group exists, and with started false once it is empty again, so the
	// run can record in run.json which groups a crash would leave behind.
	// A group that outlives groupExitTimeout is not reported as gone.
	onGroup func(pgid int, started bool)
}

// processResult is the outcome of a process.
type processResult struct {
	ExitCode int
	Duration time.Duration
	// Err is ErrTimeout, the context's error when it was cancelled, or nil
	// when the process exited by itself (whatever its exit code).
	Err error
	// GroupLeft reports that members of the process group were still
	// present groupExitTimeout after being killed.
	GroupLeft bool
}

// run starts the process in a new process group and waits for it. When ctx
// is cancelled or the timeout passes, the whole group gets SIGTERM, then
// SIGKILL after the grace period. After the process exits, for whatever
// reason, the rest of its group is killed and waited for, so no background
// child outlives it. The returned error is set only when the process could
// not be started.
func (p process) run(ctx context.Context) (processResult, error) {
	if len(p.argv) == 0 {
		return processResult{}, errors.New("empty command line")
	}
	enableReaping()

	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	// No Pdeathsig: Linux sends it when the thread that forked the child
	// exits, and the Go runtime may retire that thread while the child
	// runs unless the goroutine stays locked to it. Even then it would
	// reach only the group leader, not its background children. Groups
	// left by a killed orchestrator are recorded in run.json instead, and
	// KillLeftovers ends them before the next run starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Handing over *os.File values gives the child the descriptors directly,
	// so Wait does not wait for a background grandchild that keeps them open.
	if p.stdin != nil {
		cmd.Stdin = p.stdin
	}
	if p.stdout != nil {
		cmd.Stdout = p.stdout
	}
	if p.stderr != nil {
		cmd.Stderr = p.stderr
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return processResult{}, fmt.Errorf("start %s: %w", p.argv[0], err)
	}
	pgid := cmd.Process.Pid
	if p.onGroup != nil {
		p.onGroup(pgid, true)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	res := processResult{}
	waitErr := p.wait(ctx, pgid, done, &res)
	res.Duration = time.Since(start)
	res.ExitCode = exitCode(waitErr)
	res.GroupLeft = !killGroup(pgid)
	if p.onGroup != nil && !res.GroupLeft {
		p.onGroup(pgid, false)
	}
	return res, nil
}

// wait waits for the process to exit, terminating its group when ctx is
// cancelled or the timeout passes, and records why it was stopped in res.
func (p process) wait(ctx context.Context, pgid int, done <-chan error, res *processResult) error {
	var timeout <-chan time.Time
	if p.timeout > 0 {
		timer := time.NewTimer(p.timeout)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		res.Err = ctx.Err()
	case <-timeout:
		res.Err = ErrTimeout
	}
	return terminateGroup(pgid, p.grace, done)
}

// terminateGroup sends SIGTERM to the group, then SIGKILL when the leader
// has not exited within grace, and returns the leader's wait error.
func terminateGroup(pgid int, grace time.Duration, done <-chan error) error {
	if grace <= 0 {
		grace = DefaultGrace
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return <-done
}

// killGroup kills what is left of a process group after its leader exited
// and waits, up to groupExitTimeout, until no member exists any more. It
// reports whether the group is gone. Members that were orphaned and adopted
// by this process are reaped here.
func killGroup(pgid int) bool {
	deadline := time.Now().Add(groupExitTimeout)
	for {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		reapGroup(pgid)
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exitCode returns the exit code carried by a Wait error: 0 for nil, 128+n
// for a process killed by signal n (as shells report it), -1 when unknown.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return -1
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return exitErr.ExitCode()
}
