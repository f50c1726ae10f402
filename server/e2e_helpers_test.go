package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"cliq/events"
)

// e2eTimeout bounds every wait of the end-to-end tests.
const e2eTimeout = 20 * time.Second

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// cliqBinary builds the cliq binary once per test run, or returns
// $CLIQ_TEST_BINARY when that names one built already.
func cliqBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if bin := os.Getenv("CLIQ_TEST_BINARY"); bin != "" {
			buildPath = bin
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "cliq-server-test-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "cliq")
		cmd := exec.Command("go", "build", "-o", buildPath, ".")
		cmd.Dir = moduleRoot(tb)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatalf("build cliq: %v", buildErr)
	}
	return buildPath
}

// cliqEnv runs the cliq binary with its own CLIQ_HOME.
type cliqEnv struct {
	bin  string
	home string
	// env holds extra KEY=value pairs, set after the defaults.
	env []string
}

func newCliqEnv(tb testing.TB) *cliqEnv {
	tb.Helper()
	return &cliqEnv{bin: cliqBinary(tb), home: tb.TempDir()}
}

func (e *cliqEnv) command(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CLIQ_HOME="+e.home, "CLIQ_DATABASE_URL=", "CLIQ_ADMIN_TOKEN=")
	cmd.Env = append(cmd.Env, e.env...)
	return cmd
}

// run runs cliq in dir and returns its stdout; a failure ends the test.
func (e *cliqEnv) run(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	cmd := e.command(dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("cliq %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// project creates a project directory, runs cliq init, assembles teamDir
// and sets the requirement. It returns the directory and the instance id.
func (e *cliqEnv) project(tb testing.TB, teamDir string, reqArgs ...string) (string, string) {
	tb.Helper()
	dir := tb.TempDir()
	e.run(tb, dir, "init")
	e.run(tb, dir, "assemble", teamDir)
	e.run(tb, dir, append([]string{"req"}, reqArgs...)...)
	id, err := os.ReadFile(filepath.Join(dir, ".cliq", "cliq.id"))
	if err != nil {
		tb.Fatal(err)
	}
	return dir, strings.TrimSpace(string(id))
}

// serverProc is a running "cliq server start".
type serverProc struct {
	cmd    *exec.Cmd
	url    string
	token  string
	pid    int
	stderr *syncBuffer
	// exited is closed once Wait has returned, with its error in waitErr.
	exited  chan struct{}
	waitErr error
}

// startServer starts "cliq server start --port 0" and waits until it
// prints its URL. The server is stopped when the test ends.
func (e *cliqEnv) startServer(tb testing.TB) *serverProc {
	tb.Helper()
	cmd := e.command(tb.TempDir(), "server", "start", "--port", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p := &serverProc{cmd: cmd, exited: make(chan struct{}), stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p.pid = cmd.Process.Pid
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() { p.stop(tb) })

	deadline := time.After(e2eTimeout)
	for p.url == "" || p.token == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				tb.Fatalf("server exited before printing its URL; stderr:\n%s", p.stderr.String())
			}
			if _, url, ok := strings.Cut(line, " listening on "); ok {
				p.url = url
			}
			if token, ok := strings.CutPrefix(line, "Session token: "); ok {
				p.token = token
			}
		case <-deadline:
			tb.Fatalf("server did not print its URL within %s; stderr:\n%s", e2eTimeout, p.stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

// stop sends SIGTERM unless the process has exited, and waits for it.
func (p *serverProc) stop(tb testing.TB) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(e2eTimeout):
		_ = p.cmd.Process.Kill()
		tb.Errorf("server pid %d did not exit after SIGTERM", p.pid)
	}
}

// wait waits for the process to exit and returns its error.
func (p *serverProc) wait(tb testing.TB) error {
	tb.Helper()
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(e2eTimeout):
		tb.Fatalf("server pid %d did not exit within %s", p.pid, e2eTimeout)
		return nil
	}
}

// call posts body to path with the session token and decodes the JSON
// response into out (when not nil). It returns the status.
func (p *serverProc) call(tb testing.TB, path string, body any, out any) int {
	tb.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, p.url+path, bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.Fatalf("POST %s: response %q is not JSON: %v", path, raw, err)
		}
	}
	return resp.StatusCode
}

// dial opens a WebSocket connection to the server with the token in the
// query, as a browser would.
func (p *serverProc) dial(tb testing.TB, path string) *websocket.Conn {
	tb.Helper()
	wsURL := "ws" + strings.TrimPrefix(p.url, "http") + path + "?token=" + p.token
	ws, err := websocket.Dial(wsURL, "", p.url)
	if err != nil {
		tb.Fatalf("dial %s: %v", path, err)
	}
	tb.Cleanup(func() { ws.Close() })
	return ws
}

// message is one frame from the hub: an event, an ack or an error.
type message struct {
	events.Event
	Error *events.ErrorDetail `json:"error"`
}

// frame is what readFrame returns: a text message, or the close code.
type frame struct {
	msg       message
	closeCode int
}

// readFrame reads the next text or close frame within e2eTimeout,
// skipping pings. It reads raw frames because x/net/websocket hides the
// close code.
func readFrame(tb testing.TB, ws *websocket.Conn) frame {
	tb.Helper()
	ws.SetReadDeadline(time.Now().Add(e2eTimeout))
	for {
		fr, err := ws.NewFrameReader()
		if err != nil {
			tb.Fatalf("read frame: %v", err)
		}
		data, err := io.ReadAll(fr)
		if err != nil {
			tb.Fatalf("read frame payload: %v", err)
		}
		switch fr.PayloadType() {
		case websocket.TextFrame:
			var m message
			if err := json.Unmarshal(data, &m); err != nil {
				tb.Fatalf("frame %q is not JSON: %v", data, err)
			}
			return frame{msg: m}
		case websocket.CloseFrame:
			if len(data) < 2 {
				return frame{closeCode: 1005}
			}
			return frame{closeCode: int(binary.BigEndian.Uint16(data))}
		}
	}
}

// readMessage reads the next text message and fails on a close frame.
func readMessage(tb testing.TB, ws *websocket.Conn) message {
	tb.Helper()
	f := readFrame(tb, ws)
	if f.closeCode != 0 {
		tb.Fatalf("connection closed with code %d, want a message", f.closeCode)
	}
	return f.msg
}

// subscribe subscribes ws to channel, with since when it is not negative,
// and waits for the acknowledgement.
func subscribe(tb testing.TB, ws *websocket.Conn, channel string, since int64) {
	tb.Helper()
	msg := map[string]any{"action": "subscribe", "channel": channel}
	if since >= 0 {
		msg["since"] = since
	}
	if err := websocket.JSON.Send(ws, msg); err != nil {
		tb.Fatalf("send subscribe: %v", err)
	}
	ack := readMessage(tb, ws)
	if ack.Type != events.TypeSubscribed || ack.Channel != channel {
		tb.Fatalf("got %+v, want a subscribed ack for %s", ack, channel)
	}
}

// readRun reads events until the final event of run runID and returns
// every event of that run that arrived. Events of other runs are skipped.
func readRun(tb testing.TB, ws *websocket.Conn, runID string) []events.Event {
	tb.Helper()
	var got []events.Event
	for {
		m := readMessage(tb, ws)
		if m.Type == events.TypeError {
			tb.Fatalf("hub error: %+v", m.Error)
		}
		if m.RunID != runID {
			continue
		}
		got = append(got, m.Event)
		if m.Final() {
			return got
		}
	}
}

// checkSeqs fails unless the events have the seqs 1, 2, ... in order.
func checkSeqs(tb testing.TB, list []events.Event) {
	tb.Helper()
	for i, e := range list {
		if e.Seq != int64(i+1) {
			tb.Fatalf("event %d (%s) has seq %d, want %d; all: %s", i, e.Type, e.Seq, i+1, describeEvents(list))
		}
	}
}

func describeEvents(list []events.Event) string {
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = fmt.Sprintf("%d:%s", e.Seq, e.Type)
	}
	return strings.Join(parts, " ")
}

// waitFor polls cond every 10 ms until it returns true or e2eTimeout ends.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			tb.Fatalf("timed out after %s waiting for %s", e2eTimeout, what)
		case <-tick.C:
		}
	}
}

// writeTeam writes a team directory with the given team.yml.
func writeTeam(tb testing.TB, yml string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "team.yml"), []byte(yml), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
