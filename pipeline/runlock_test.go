package pipeline

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(tb testing.TB) int {
	tb.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		tb.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestClaimRunLock(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "run.lock")
		lock, err := claimRunLock(path)
		if err != nil {
			t.Fatal(err)
		}
		if pid, ok := readLockPID(path); !ok || pid != os.Getpid() {
			t.Errorf("lock holds pid %d (%v), want %d", pid, ok, os.Getpid())
		}
		if _, err := claimRunLock(path); !errors.Is(err, ErrActiveRun) {
			t.Errorf("second claim: err = %v, want ErrActiveRun", err)
		}
		if err := lock.release(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lock file still exists after release: %v", err)
		}
	})

	t.Run("StaleLockTakenOver", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "run.lock")
		MustWrite(t, path, strconv.Itoa(deadPID(t))+"\n")
		lock, err := claimRunLock(path)
		if err != nil {
			t.Fatalf("claim over a dead pid: %v", err)
		}
		defer lock.release()
		if pid, _ := readLockPID(path); pid != os.Getpid() {
			t.Errorf("lock holds pid %d, want %d", pid, os.Getpid())
		}
	})
}

func TestNewRunID(t *testing.T) {
	ids := make([]string, 50)
	seen := map[string]bool{}
	for i := range ids {
		ids[i] = newRunID()
		if seen[ids[i]] {
			t.Fatalf("duplicate run id %s", ids[i])
		}
		seen[ids[i]] = true
		if len(ids[i]) != 30 || !strings.HasPrefix(ids[i], "run_") {
			t.Fatalf("run id %q, want run_ and 26 characters", ids[i])
		}
		for _, c := range ids[i][4:] {
			if !strings.ContainsRune(crockford, c) {
				t.Fatalf("run id %q has %q outside the base32 alphabet", ids[i], c)
			}
		}
	}
	// The first 10 characters encode the millisecond, so ids made in later
	// milliseconds sort after earlier ones.
	prefixes := make([]string, len(ids))
	for i, id := range ids {
		prefixes[i] = id[:14]
	}
	if !sort.StringsAreSorted(prefixes) {
		t.Errorf("time prefixes are not sorted: %v", prefixes)
	}
}
