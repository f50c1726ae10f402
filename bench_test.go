package main

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkServerStart_Readyz measures the time from starting the cliq
// binary with `server start` on a new SQLite CLIQ_HOME until GET /readyz
// returns 200. It reports the median as ms/median.
func BenchmarkServerStart_Readyz(b *testing.B) {
	var samples []time.Duration
	for range b.N {
		samples = append(samples, startUntilReady(b))
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "ms/median")
}

func startUntilReady(b *testing.B) time.Duration {
	b.Helper()
	port := freePort(b)
	home := filepath.Join(b.TempDir(), "home")
	cmd := exec.Command(binary, "server", "start", "--port", fmt.Sprint(port))
	cmd.Env = append(cmd.Environ(), "CLIQ_HOME="+home, "CLIQ_DATABASE_URL=")
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	client := &http.Client{Timeout: time.Second}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	deadline := start.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("%s did not answer 200 within 10 s", url)
	return 0
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(b *testing.B) int {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
