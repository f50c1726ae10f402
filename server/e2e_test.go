package server

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"cliq/events"
	"cliq/pipeline"
)

// waitTeam runs "first", then "hold", which waits (up to 30 s) for the
// file release in the project, then "last".
const waitTeam = `name: "@test/wait"
workflow:
  phases:
    - name: first
      agent: exec
      commands:
        - name: hello
          run: echo hello
    - name: hold
      agent: exec
      depends_on: [first]
      commands:
        - name: wait-for-release
          timeout: 1m
          run: |
            i=0
            while [ ! -f release ]; do
              i=$((i+1))
              if [ "$i" -gt 3000 ]; then exit 1; fi
              sleep 0.01
            done
    - name: last
      agent: exec
      depends_on: [hold]
      commands:
        - name: bye
          run: echo bye
`

// sleepTeam has one phase that sleeps until it is cancelled.
const sleepTeam = `name: "@test/sleep"
workflow:
  phases:
    - name: nap
      agent: exec
      commands:
        - name: sleep
          timeout: 5m
          run: sleep 120
`

func demoTeam(tb testing.TB) string {
	return filepath.Join(moduleRoot(tb), "testdata", "teams", "demo")
}

func TestE2E_JobEvents(t *testing.T) {
	env := newCliqEnv(t)
	_, id := env.project(t, demoTeam(t), "-m", "say hi", "--input", "greeting=hi")
	srv := env.startServer(t)

	job := srv.dial(t, "/")
	subscribe(t, job, events.JobChannel(id), -1)
	all := srv.dial(t, "/ws")
	subscribe(t, all, events.JobsChannel, -1)

	var created map[string]string
	if status := srv.call(t, "/jobs/create/", map[string]any{"instance_id": id}, &created); status != http.StatusAccepted {
		t.Fatalf("create: status %d, body %v", status, created)
	}
	runID := created["run_id"]
	if !strings.HasPrefix(runID, "run_") || created["instance_id"] != id {
		t.Fatalf("create returned %v, want a run id for %s", created, id)
	}

	t.Run("JobChannel", func(t *testing.T) {
		list := readRun(t, job, runID)
		checkSeqs(t, list)
		if first := list[0]; first.Type != events.PipelineStart || first.Data["team"] != "@testdata/demo" {
			t.Errorf("first event = %s %v, want pipeline_start of @testdata/demo", first.Type, first.Data)
		}
		if last := list[len(list)-1]; last.Type != events.PipelineDone {
			t.Errorf("last event = %s, want pipeline_done", last.Type)
		}
		for _, e := range list {
			if e.InstanceID != id || e.Channel != events.JobChannel(id) {
				t.Fatalf("event %d has instance %q channel %q", e.Seq, e.InstanceID, e.Channel)
			}
		}
	})
	t.Run("JobsChannel", func(t *testing.T) {
		list := readRun(t, all, runID)
		if got := describeEvents(list); !strings.HasSuffix(got, ":pipeline_done") || !strings.HasPrefix(got, "1:pipeline_start ") || len(list) != 2 {
			t.Errorf("jobs channel got %s, want pipeline_start and pipeline_done only", got)
		}
		for _, e := range list {
			if e.Channel != events.JobsChannel {
				t.Errorf("event %d channel = %q, want jobs", e.Seq, e.Channel)
			}
		}
	})
	t.Run("Get", func(t *testing.T) {
		var got jobResponse
		mustCall(t, srv, "/jobs/get/", map[string]any{"instance_id": id}, &got, http.StatusOK)
		if got.RunID != runID || got.Status != pipeline.StatusCompleted || got.Team != "@testdata/demo" {
			t.Errorf("get = %+v, want run %s completed", got, runID)
		}
		if got.StartedAt == nil || got.FinishedAt == nil || len(got.ActivePhases) != 0 {
			t.Errorf("get = %+v, want start and finish times and no active phase", got)
		}
	})
	t.Run("Phases", func(t *testing.T) {
		var got struct{ Phases []pipeline.PhaseState }
		mustCall(t, srv, "/jobs/phases/", map[string]any{"instance_id": id}, &got, http.StatusOK)
		if len(got.Phases) != 5 {
			t.Fatalf("got %d phases, want 5", len(got.Phases))
		}
		for _, ph := range got.Phases {
			if ph.Status != pipeline.PhaseDone {
				t.Errorf("phase %s status = %s, want done", ph.Name, ph.Status)
			}
			if ph.Name == "check" && (ph.Iteration != 2 || ph.Verdict != "PASS") {
				t.Errorf("gate check = iteration %d verdict %q, want 2 PASS", ph.Iteration, ph.Verdict)
			}
		}
	})
	t.Run("Log", func(t *testing.T) {
		var tail, whole struct{ Lines []string }
		mustCall(t, srv, "/jobs/log/", map[string]any{"instance_id": id, "tail": 2}, &tail, http.StatusOK)
		mustCall(t, srv, "/jobs/log", map[string]any{"instance_id": id}, &whole, http.StatusOK)
		if len(tail.Lines) != 2 || !strings.Contains(tail.Lines[1], runID+" completed") {
			t.Errorf("tail 2 = %q, want 2 lines ending with the completion", tail.Lines)
		}
		if len(whole.Lines) <= 2 || whole.Lines[len(whole.Lines)-1] != tail.Lines[1] {
			t.Errorf("whole log has %d lines, want more than 2 with the same last line", len(whole.Lines))
		}
	})
	t.Run("ListAndInstance", func(t *testing.T) {
		var jobs struct{ Jobs []jobResponse }
		mustCall(t, srv, "/jobs/list/", nil, &jobs, http.StatusOK)
		if len(jobs.Jobs) != 1 || jobs.Jobs[0].RunID != runID {
			t.Errorf("jobs/list = %+v, want the one run", jobs.Jobs)
		}
		var inst instanceDetail
		mustCall(t, srv, "/instances/get/", map[string]any{"id": id}, &inst, http.StatusOK)
		if !inst.Valid || inst.Team != "@testdata/demo" || inst.LastRun == nil || inst.LastRun.RunID != runID {
			t.Errorf("instances/get = %+v, want a valid instance with the last run", inst)
		}
	})
}

// mustCall posts body and fails unless the status is want.
func mustCall(tb testing.TB, srv *serverProc, path string, body, out any, want int) {
	tb.Helper()
	if status := srv.call(tb, path, body, out); status != want {
		tb.Fatalf("%s: status %d, want %d (%+v)", path, status, want, out)
	}
}

func TestE2E_CancelAndForce(t *testing.T) {
	env := newCliqEnv(t)
	_, id := env.project(t, writeTeam(t, sleepTeam), "-m", "nap")
	srv := env.startServer(t)
	ws := srv.dial(t, "/")
	subscribe(t, ws, events.JobChannel(id), -1)

	create := func(force bool) string {
		t.Helper()
		var created map[string]string
		mustCall(t, srv, "/jobs/create/", map[string]any{"instance_id": id, "force": force}, &created, http.StatusAccepted)
		return created["run_id"]
	}
	waitNap := func(runID string) {
		t.Helper()
		for {
			m := readMessage(t, ws)
			if m.RunID == runID && m.Type == events.PhaseStart && m.Phase == "nap" {
				return
			}
		}
	}
	wantCancelled := func(runID string) {
		t.Helper()
		list := readRun(t, ws, runID)
		last := list[len(list)-1]
		if last.Type != events.PipelineError || last.Data["status"] != pipeline.StatusCancelled {
			t.Fatalf("final event of %s = %s %v, want pipeline_error cancelled", runID, last.Type, last.Data)
		}
	}

	run1 := create(false)
	waitNap(run1)

	t.Run("SecondCreateConflicts", func(t *testing.T) {
		var body errorBody
		mustCall(t, srv, "/jobs/create/", map[string]any{"instance_id": id}, &body, http.StatusConflict)
		if body.Error.Code != CodeConflict || !strings.Contains(body.Error.Message, run1) {
			t.Errorf("error = %+v, want conflict naming %s", body.Error, run1)
		}
	})
	t.Run("RemoveWhileActiveConflicts", func(t *testing.T) {
		var body errorBody
		mustCall(t, srv, "/instances/remove/", map[string]any{"id": id}, &body, http.StatusConflict)
		if !strings.Contains(body.Error.Message, run1) || !strings.Contains(body.Error.Message, "/jobs/cancel/") {
			t.Errorf("error = %+v, want conflict naming %s and the fix", body.Error, run1)
		}
	})
	t.Run("Cancel", func(t *testing.T) {
		var got map[string]string
		mustCall(t, srv, "/jobs/cancel/", map[string]any{"instance_id": id}, &got, http.StatusAccepted)
		if got["status"] != "cancelling" || got["run_id"] != run1 {
			t.Errorf("cancel = %v, want cancelling %s", got, run1)
		}
		// Repeating is harmless: 202 while the run stops, 409 once it has.
		if status := srv.call(t, "/jobs/cancel/", map[string]any{"instance_id": id}, nil); status != http.StatusAccepted && status != http.StatusConflict {
			t.Errorf("second cancel: status %d, want 202 or 409", status)
		}
		wantCancelled(run1)
		var job jobResponse
		mustCall(t, srv, "/jobs/get/", map[string]any{"instance_id": id}, &job, http.StatusOK)
		if job.Status != pipeline.StatusCancelled {
			t.Errorf("status after cancel = %s, want cancelled", job.Status)
		}
		mustCall(t, srv, "/jobs/cancel/", map[string]any{"instance_id": id}, nil, http.StatusConflict)
	})
	t.Run("Force", func(t *testing.T) {
		run2 := create(false)
		waitNap(run2)
		run3 := create(true)
		if run3 == run2 {
			t.Fatalf("force returned the old run id %s", run2)
		}
		wantCancelled(run2)
		waitNap(run3)
		mustCall(t, srv, "/jobs/cancel/", map[string]any{"instance_id": id}, nil, http.StatusAccepted)
		wantCancelled(run3)
	})
}

func TestE2E_Shutdown(t *testing.T) {
	env := newCliqEnv(t)
	srv := env.startServer(t)
	clients := []*struct {
		path, channel string
	}{{"/", "jobs"}, {"/ws", "job:cliq-000000"}}
	var conns []*websocket.Conn
	for _, c := range clients {
		ws := srv.dial(t, c.path)
		subscribe(t, ws, c.channel, -1)
		conns = append(conns, ws)
	}

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		f := readFrame(t, c)
		if f.closeCode != events.CloseGoingAway {
			t.Errorf("client %d: close code %d, want 1001", i, f.closeCode)
		}
	}
	if err := srv.wait(t); err != nil {
		t.Errorf("server exit: %v, want exit status 0; stderr:\n%s", err, srv.stderr.String())
	}
	if _, err := os.Stat(InfoPath(env.home)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server.json still exists after shutdown (stat error %v)", err)
	}
}

func TestE2E_ServerFile(t *testing.T) {
	env := newCliqEnv(t)
	statusOf := func() (string, int) {
		t.Helper()
		cmd := env.command(t.TempDir(), "server", "status")
		out, err := cmd.Output()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	writeStale := func(pid int) {
		t.Helper()
		port := freePort(t)
		info := Info{PID: pid, Port: port, URL: "http://127.0.0.1:" + strconv.Itoa(port), Token: "cliq_ss_x", StartedAt: time.Now()}
		if err := writeInfo(env.home, info); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("DeadPid", func(t *testing.T) {
		dead := exec.Command("true")
		if err := dead.Run(); err != nil {
			t.Fatal(err)
		}
		writeStale(dead.Process.Pid)
		out, code := statusOf()
		if code != 1 || !strings.Contains(out, "stale") {
			t.Errorf("status = %d %q, want 1 and a stale report", code, out)
		}
		if _, err := os.Stat(InfoPath(env.home)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale server.json was not removed")
		}
	})
	t.Run("LivePidOfAnotherProgram", func(t *testing.T) {
		other := exec.Command("sleep", "60")
		if err := other.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { other.Process.Kill(); other.Wait() }()
		writeStale(other.Process.Pid)
		out, code := statusOf()
		if code != 1 || !strings.Contains(out, "stale") {
			t.Errorf("status = %d %q, want 1 and a stale report", code, out)
		}
	})
	t.Run("StartRemovesStale", func(t *testing.T) {
		dead := exec.Command("true")
		if err := dead.Run(); err != nil {
			t.Fatal(err)
		}
		writeStale(dead.Process.Pid)
		srv := env.startServer(t)
		info, err := ReadInfo(env.home)
		if err != nil || info.PID != srv.pid {
			t.Fatalf("server.json = %+v (%v), want pid %d", info, err, srv.pid)
		}
		if !strings.Contains(srv.stderr.String(), "stale server.json") {
			t.Errorf("start did not report the stale file; stderr:\n%s", srv.stderr.String())
		}
		testRunningAndStop(t, env, statusOf)
	})
}

// testRunningAndStop checks status, a second start and stop against the
// server running for env.
func testRunningAndStop(t *testing.T, env *cliqEnv, statusOf func() (string, int)) {
	t.Run("RunningAndStop", func(t *testing.T) {
		info, err := ReadInfo(env.home)
		if err != nil {
			t.Fatal(err)
		}
		out, code := statusOf()
		if code != 0 || !strings.Contains(out, "Server running") || !strings.Contains(out, strconv.Itoa(info.PID)) {
			t.Errorf("status = %d %q, want running with pid %d", code, out, info.PID)
		}

		second := env.command(t.TempDir(), "server", "start", "--port", "0")
		msg, err := second.CombinedOutput()
		if err == nil || !strings.Contains(string(msg), "already running") {
			t.Errorf("second start: %v %q, want an already-running error", err, msg)
		}

		stopOut := env.run(t, t.TempDir(), "server", "stop")
		if !strings.Contains(stopOut, "Server stopped") {
			t.Errorf("stop printed %q", stopOut)
		}
		if _, err := os.Stat(InfoPath(env.home)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("server.json exists after stop")
		}
		if _, code := statusOf(); code != 1 {
			t.Errorf("status after stop exits %d, want 1", code)
		}
	})
}

// freePort returns a TCP port that nothing listens on right now.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestE2E_TerminalRun(t *testing.T) {
	env := newCliqEnv(t)
	dir, id := env.project(t, demoTeam(t), "-m", "say hi", "--input", "greeting=hi")
	srv := env.startServer(t)
	ws := srv.dial(t, "/")
	subscribe(t, ws, events.JobChannel(id), -1)

	env.run(t, dir, "run", "--headless")
	st, err := pipeline.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	list := readRun(t, ws, st.RunID)
	checkSeqs(t, list)
	if list[0].Type != events.PipelineStart || list[len(list)-1].Type != events.PipelineDone {
		t.Errorf("events %s, want pipeline_start to pipeline_done", describeEvents(list))
	}
}

func TestE2E_RestartDuringRun(t *testing.T) {
	env := newCliqEnv(t)
	dir, id := env.project(t, writeTeam(t, waitTeam), "-m", "wait")
	release := func() { os.WriteFile(filepath.Join(dir, "release"), nil, 0o644) }
	t.Cleanup(release)

	first := env.startServer(t)
	ws := first.dial(t, "/")
	subscribe(t, ws, events.JobChannel(id), -1)
	var created map[string]string
	mustCall(t, first, "/jobs/create/", map[string]any{"instance_id": id}, &created, http.StatusAccepted)
	runID := created["run_id"]
	for {
		m := readMessage(t, ws)
		if m.RunID == runID && m.Type == events.PhaseStart && m.Phase == "hold" {
			break
		}
	}

	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.wait(t)

	second := env.startServer(t)
	ws2 := second.dial(t, "/ws")
	subscribe(t, ws2, events.JobChannel(id), 0)
	release()
	list := readRun(t, ws2, runID)
	checkSeqs(t, list)
	if list[0].Type != events.PipelineStart || list[len(list)-1].Type != events.PipelineDone {
		t.Errorf("events after restart %s, want pipeline_start to pipeline_done", describeEvents(list))
	}
}

func TestE2E_OrchestratorDies(t *testing.T) {
	env := newCliqEnv(t)
	dir, id := env.project(t, writeTeam(t, waitTeam), "-m", "wait")
	t.Cleanup(func() { os.WriteFile(filepath.Join(dir, "release"), nil, 0o644) })
	srv := env.startServer(t)
	ws := srv.dial(t, "/")
	subscribe(t, ws, events.JobChannel(id), -1)

	var created map[string]string
	mustCall(t, srv, "/jobs/create/", map[string]any{"instance_id": id}, &created, http.StatusAccepted)
	runID := created["run_id"]
	for {
		m := readMessage(t, ws)
		if m.RunID == runID && m.Type == events.PhaseStart && m.Phase == "hold" {
			break
		}
	}
	st, err := pipeline.ReadState(dir)
	if err != nil || st.PID <= 0 {
		t.Fatalf("run state %+v (%v), want the orchestrator pid", st, err)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	// Seqs 1 to 4 (start, first, first done, hold) were read above.
	list := readRun(t, ws, runID)
	if len(list) != 1 || list[0].Seq != 5 {
		t.Fatalf("events after the kill: %s, want 5:pipeline_error", describeEvents(list))
	}
	last := list[0]
	reason, _ := last.Data["reason"].(string)
	if last.Type != events.PipelineError || !strings.Contains(reason, "exited without finishing the run") {
		t.Errorf("final event = %s %q, want pipeline_error about the orchestrator", last.Type, reason)
	}
	var job jobResponse
	mustCall(t, srv, "/jobs/get/", map[string]any{"instance_id": id}, &job, http.StatusOK)
	if job.Status != pipeline.StatusFailed || !strings.Contains(job.Reason, strconv.Itoa(st.PID)) {
		t.Errorf("job = %s %q, want failed naming pid %d", job.Status, job.Reason, st.PID)
	}
}

func TestE2E_CreateOptions(t *testing.T) {
	env := newCliqEnv(t)
	teamDir := filepath.Join(moduleRoot(t), "testdata", "teams", "agent-loop")
	dir, id := env.project(t, teamDir, "-m", "first requirement", "--input", "topic=widgets")
	spec := "Make a widget from the spec file.\n"
	if err := os.WriteFile(filepath.Join(dir, "spec.md"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	projectSettings, err := os.ReadFile(filepath.Join(dir, ".cliq", "settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := env.startServer(t)
	ws := srv.dial(t, "/")
	subscribe(t, ws, events.JobChannel(id), -1)

	// A patch that the settings schema rejects never starts a run.
	for _, bad := range []map[string]any{
		{"foo": 1},
		{"teams": map[string]any{"max_depth": 99}},
		{"agents": map[string]any{"fake": map[string]any{"command": "not-an-array"}}},
	} {
		var body errorBody
		mustCall(t, srv, "/jobs/create/", map[string]any{"instance_id": id, "settings": bad}, &body, http.StatusBadRequest)
		if !strings.Contains(body.Error.Message, "setting") {
			t.Errorf("patch %v: error %q does not name the setting", bad, body.Error.Message)
		}
	}

	// The fake agent is wired in by the settings patch of this run only.
	fake := filepath.Join(moduleRoot(t), "testdata", "agents", "fake-agent")
	var created map[string]string
	mustCall(t, srv, "/jobs/create/", map[string]any{
		"instance_id": id, "req_file": "spec.md",
		"settings": map[string]any{"agents": map[string]any{"fake": map[string]any{"command": []string{fake}}}},
	}, &created, http.StatusAccepted)

	list := readRun(t, ws, created["run_id"])
	if last := list[len(list)-1]; last.Type != events.PipelineDone {
		t.Fatalf("run ended with %s %v, want pipeline_done", last.Type, last.Data)
	}
	req, err := pipeline.ReadRequirement(dir)
	if err != nil || strings.TrimSpace(req) != strings.TrimSpace(spec) {
		t.Errorf("requirement = %q (%v), want the content of spec.md", req, err)
	}
	after, err := os.ReadFile(filepath.Join(dir, ".cliq", "settings.json"))
	if err != nil || string(after) != string(projectSettings) {
		t.Errorf("project settings changed to %q (%v); the patch must apply to one run only", after, err)
	}
}
