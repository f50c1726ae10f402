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
)

func TestProcess_Run(t *testing.T) {
	t.Run("ExitCode", func(t *testing.T) {
		res, err := process{argv: []string{"sh", "-c", "exit 7"}}.run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 7 || res.Err != nil {
			t.Errorf("result = %+v, want exit 7 and no error", res)
		}
	})

	t.Run("BackgroundChildKilledAfterExit", func(t *testing.T) {
		dir := t.TempDir()
		out, err := os.Create(filepath.Join(dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		// The leader exits at once and leaves a grandchild that would
		// otherwise run for five minutes.
		p := process{argv: []string{"sh", "-c", "sleep 300 & echo $! $$"}, dir: dir, stdout: out}
		res, err := p.run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 0 || res.GroupLeft {
			t.Fatalf("result = %+v, want exit 0 and an empty group", res)
		}
		fields := strings.Fields(MustRead(t, filepath.Join(dir, "out")))
		if len(fields) != 2 {
			t.Fatalf("output %q, want two pids", fields)
		}
		pgid, _ := strconv.Atoi(fields[1])
		if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill(-%d, 0) = %v, want ESRCH", pgid, err)
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		p := process{argv: []string{"sh", "-c", "trap '' TERM; sleep 300"}, timeout: 50 * time.Millisecond,
			grace: 50 * time.Millisecond}
		res, err := p.run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res.Err, ErrTimeout) {
			t.Errorf("Err = %v, want ErrTimeout", res.Err)
		}
		if res.ExitCode != 128+int(syscall.SIGKILL) {
			t.Errorf("exit code = %d, want %d (killed by SIGKILL after ignoring SIGTERM)", res.ExitCode, 128+int(syscall.SIGKILL))
		}
	})

	t.Run("CancelTerminates", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := process{argv: []string{"sleep", "300"}, grace: time.Second}.run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res.Err, context.Canceled) || res.ExitCode != 128+int(syscall.SIGTERM) {
			t.Errorf("result = %+v, want context.Canceled and exit by SIGTERM", res)
		}
	})

	t.Run("StartFailure", func(t *testing.T) {
		_, err := process{argv: []string{"/nonexistent/agent"}}.run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/agent") {
			t.Errorf("err = %v, want it to name the program", err)
		}
	})
}
