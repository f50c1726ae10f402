package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cliq/logging"
	"cliq/settings"
)

// notifyBuffer is a concurrency-safe buffer that signals every write.
type notifyBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{}
}

func newNotifyBuffer() *notifyBuffer { return &notifyBuffer{written: make(chan struct{}, 1)} }

func (b *notifyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.written <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *notifyBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer contains every one of want.
func (b *notifyBuffer) waitFor(tb testing.TB, want ...string) {
	tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		s, ok := b.String(), true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return
		}
		select {
		case <-b.written:
		case <-timeout:
			tb.Fatalf("output never contained %q; got:\n%s", want, s)
		}
	}
}

// writeLogLines writes entries to the server log in home through the real
// logger.
func writeServerLog(tb testing.TB, home string) {
	tb.Helper()
	logs, err := logging.Open(home, settings.Map{"logging": settings.Map{"server_level": "trace", "core_level": "trace"}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer logs.Close()
	srv, mon := logs.Logger("server"), logs.Logger("monitor")
	srv.Info("server started", "port", 4100)
	logging.Trace(context.Background(), srv, "request", "path", "/jobs/get/", "instance_id", "cliq-aaa111")
	mon.Warn("orchestrator lost", "instance_id", "cliq-bbb222", "run_id", "run_1")
	mon.Error("reconnect failed", "instance_id", "cliq-aaa111", "error", "connection refused")
}

func runLogsWith(tb testing.TB, ctx context.Context, stdout *notifyBuffer, args ...string) (int, string) {
	tb.Helper()
	var stderr bytes.Buffer
	env := &Env{Stdout: stdout, Stderr: &stderr, Dir: tb.TempDir()}
	return exitCode(&stderr, runLogs(ctx, env, args)), stderr.String()
}

func TestRunLogs(t *testing.T) {
	home := t.TempDir()
	t.Setenv(settings.HomeEnv, home)
	writeServerLog(t, home)

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"All", nil, []string{"server started", "request", "orchestrator lost", "reconnect failed"}},
		{"Level", []string{"--level", "warn"}, []string{"orchestrator lost", "reconnect failed"}},
		{"Component", []string{"--component", "server"}, []string{"server started", "request"}},
		{"Instance", []string{"--instance", "cliq-aaa111"}, []string{"request", "reconnect failed"}},
		{"Combined", []string{"--instance", "cliq-aaa111", "--level", "error"}, []string{"reconnect failed"}},
		{"SinceDuration", []string{"--since", "1h"}, []string{"server started", "request", "orchestrator lost", "reconnect failed"}},
		{"SinceFuture", []string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, nil},
		{"Tail", []string{"-n", "1"}, []string{"reconnect failed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := newNotifyBuffer()
			if code, stderr := runLogsWith(t, context.Background(), out, tc.args...); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(tc.want) == 0 {
				if out.String() != "" {
					t.Errorf("printed %q, want nothing", out.String())
				}
				return
			}
			if len(lines) != len(tc.want) {
				t.Fatalf("printed %d lines, want %d:\n%s", len(lines), len(tc.want), out.String())
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want %q", i, lines[i], w)
				}
			}
		})
	}

	t.Run("Readable", func(t *testing.T) {
		out := newNotifyBuffer()
		runLogsWith(t, context.Background(), out, "--level", "warn", "--component", "monitor")
		line := strings.Split(out.String(), "\n")[0]
		if !strings.Contains(line, "WARN  [monitor] orchestrator lost instance_id=cliq-bbb222 run_id=run_1") {
			t.Errorf("readable line = %q", line)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		out := newNotifyBuffer()
		runLogsWith(t, context.Background(), out, "--json", "--level", "error")
		if !strings.HasPrefix(out.String(), `{"time":`) || !strings.Contains(out.String(), `"level":"error"`) {
			t.Errorf("--json printed %q, want the stored line", out.String())
		}
	})

	errCases := []struct {
		name string
		args []string
		want string
	}{
		{"ErrLevel", []string{"--level", "loud"}, `invalid log level "loud"`},
		{"ErrSince", []string{"--since", "yesterday"}, `--since "yesterday" is neither a duration`},
		{"ErrArgument", []string{"server"}, "logs takes no arguments"},
		{"ErrTail", []string{"-n", "-2"}, "-n -2"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runLogsWith(t, context.Background(), newNotifyBuffer(), tc.args...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, ExitUsage, tc.want)
			}
		})
	}
	t.Run("ErrNoLog", func(t *testing.T) {
		t.Setenv(settings.HomeEnv, t.TempDir())
		code, stderr := runLogsWith(t, context.Background(), newNotifyBuffer())
		if code != ExitFailure || !strings.Contains(stderr, "no server log") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestRunLogs_Follow(t *testing.T) {
	home := t.TempDir()
	t.Setenv(settings.HomeEnv, home)
	writeServerLog(t, home)

	defer func(old time.Duration) { logsPollInterval = old }(logsPollInterval)
	logsPollInterval = 5 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	out := newNotifyBuffer()
	done := make(chan int, 1)
	go func() {
		code, _ := runLogsWith(t, ctx, out, "-f", "--component", "server")
		done <- code
	}()
	out.waitFor(t, "server started", "request")

	// Write through a small rotating file so that following crosses
	// several rotations.
	file, err := logging.NewRotatingFile(logging.Path(home), 400, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	logger := logging.New(file, logging.LevelTrace).With("component", "server")
	var want []string
	for i := range 12 {
		msg := fmt.Sprintf("followed line %02d", i)
		logger.Info(msg)
		logging.New(file, logging.LevelTrace).With("component", "hub").Info("hidden by the filter")
		want = append(want, msg)
		out.waitFor(t, msg)
	}
	if _, err := os.Stat(logging.RotatedPath(logging.Path(home), 2)); err != nil {
		t.Fatalf("the log was not rotated twice: %v", err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("cliq logs -f exited %d after cancel, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cliq logs -f did not stop after cancel")
	}
	got := out.String()
	for _, w := range want {
		if strings.Count(got, w) != 1 {
			t.Errorf("%q printed %d times, want once", w, strings.Count(got, w))
		}
	}
	if strings.Contains(got, "hidden by the filter") {
		t.Error("a line of another component was printed")
	}
}
