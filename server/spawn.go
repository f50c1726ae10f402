package server

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"cliq/events"
	"cliq/pipeline"
	"cliq/settings"
	"cliq/store"
)

// job is an orchestrator process started by this server.
type job struct {
	instanceID string
	runID      string
	pid        int
	started    time.Time
	// done is closed once the process has exited and been reaped.
	done chan struct{}
}

func (j *job) running() bool {
	select {
	case <-j.done:
		return false
	default:
		return true
	}
}

// jobTable tracks the orchestrators this server started, and serializes
// the creates and cancels of each instance.
type jobTable struct {
	mu    sync.Mutex
	jobs  map[string]*job        // instance id -> latest job
	locks map[string]*sync.Mutex // instance id -> create/cancel lock
}

func newJobTable() *jobTable {
	return &jobTable{jobs: make(map[string]*job), locks: make(map[string]*sync.Mutex)}
}

// lock takes the instance's create/cancel lock and returns its release.
func (t *jobTable) lock(instanceID string) func() {
	t.mu.Lock()
	l := t.locks[instanceID]
	if l == nil {
		l = &sync.Mutex{}
		t.locks[instanceID] = l
	}
	t.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (t *jobTable) put(j *job) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.jobs[j.instanceID] = j
}

// running returns the instance's job while its process runs.
func (t *jobTable) running(instanceID string) (*job, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j := t.jobs[instanceID]
	if j == nil || !j.running() {
		return nil, false
	}
	return j, true
}

// pending returns the instance's running job when run.json does not show
// its run yet (its run id differs from stateRunID).
func (t *jobTable) pending(instanceID, stateRunID string) (*job, bool) {
	j, ok := t.running(instanceID)
	if !ok || j.runID == stateRunID {
		return nil, false
	}
	return j, true
}

// activeRun identifies the run to cancel or wait for.
type activeRun struct {
	runID string
	pid   int
}

// activeRun returns the instance's active run: the run in run.json when it
// is running and its orchestrator is alive, else a job this server started
// that has not written run.json yet.
func (s *Server) activeRun(inst store.Instance) (activeRun, bool) {
	st, err := pipeline.ReadState(inst.ProjectDir)
	if err != nil {
		st = &pipeline.RunState{}
	}
	if st.Status == pipeline.StatusRunning && processAlive(st.PID) {
		return activeRun{runID: st.RunID, pid: st.PID}, true
	}
	if j, ok := s.jobs.pending(inst.ID, st.RunID); ok {
		return activeRun{runID: j.runID, pid: j.pid}, true
	}
	return activeRun{}, false
}

// lockHeld reports whether a live process holds the project's run lock.
// An orchestrator holds it a little longer than its run is active: it
// writes the final state first, then stops its event feed and exits.
func lockHeld(projectDir string) bool {
	data, err := os.ReadFile(filepath.Join(projectDir, ".cliq", "run.lock"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	return err == nil && processAlive(pid)
}

// signalRun sends SIGTERM to the run's orchestrator to cancel the run.
// The orchestrator stops its phases' process groups itself (SIGTERM, a
// grace period, then SIGKILL) and records the run as cancelled.
func (s *Server) signalRun(inst store.Instance, run activeRun) error {
	err := syscall.Kill(run.pid, syscall.SIGTERM)
	if errors.Is(err, syscall.ESRCH) {
		// The orchestrator exited between the check and the signal: the
		// run is over, which is what a cancel wants.
		return nil
	}
	if err != nil {
		return internalError("signal orchestrator failed", fmt.Errorf("kill %d: %w", run.pid, err))
	}
	s.log.Info("run cancelling", "instance_id", inst.ID, "run_id", run.runID, "pid", run.pid)
	return nil
}

// stopActiveRun returns nil once the instance has no active run and no
// orchestrator holds its run lock. With force, it cancels the active run;
// without, an active run is a conflict. It waits up to Config.CancelWait
// for the orchestrator to exit.
func (s *Server) stopActiveRun(r *http.Request, inst store.Instance, force bool) error {
	run, active := s.activeRun(inst)
	if active && !force {
		return errorf(CodeConflict, "instance %s already has an active run %s; cancel it with /jobs/cancel/ or pass \"force\": true", inst.ID, run.runID)
	}
	if active {
		if err := s.signalRun(inst, run); err != nil {
			return err
		}
	}

	deadline := time.NewTimer(s.cfg.CancelWait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, active := s.activeRun(inst); !active && !lockHeld(inst.ProjectDir) {
			return nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return errorf(CodeConflict, "the last run of instance %s did not end within %s; try again later", inst.ID, s.cfg.CancelWait)
		case <-r.Context().Done():
			return errorf(CodeConflict, "request ended while the last run of instance %s was ending", inst.ID)
		}
	}
}

// spawn starts a detached orchestrator, "cliq run --headless --run-id ID",
// in the project directory, in its own session so that it outlives the
// server. Its stdout and stderr are appended to .cliq/orchestrator.out.
func (s *Server) spawn(inst store.Instance, patch settings.Map) (*job, error) {
	runID := newRunID()
	args := []string{"run", "--headless", "--run-id", runID}
	if len(patch) > 0 {
		data, err := json.Marshal(patch)
		if err != nil {
			return nil, errorf(CodeInvalidRequest, "settings cannot be encoded: %v", err)
		}
		args = append(args, "--settings", string(data))
	}

	outPath := filepath.Join(inst.ProjectDir, ".cliq", "orchestrator.out")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, internalError("open orchestrator output failed", err)
	}
	defer out.Close()

	cmd := exec.Command(s.executable, args...)
	cmd.Dir = inst.ProjectDir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, internalError("start orchestrator failed", err)
	}

	j := &job{instanceID: inst.ID, runID: runID, pid: cmd.Process.Pid, started: time.Now().UTC(), done: make(chan struct{})}
	s.jobs.put(j)
	s.log.Info("run dispatched", "instance_id", inst.ID, "run_id", runID, "pid", j.pid)
	s.monitor.watch(inst)
	s.monitor.kick(inst.ID)

	go s.reap(cmd, j, inst)
	return j, nil
}

// reap waits for an orchestrator to exit. An orchestrator that exits
// before its run wrote run.json (a bad setting, a team that does not load)
// would leave no trace for clients, so its run is recorded as failed here.
func (s *Server) reap(cmd *exec.Cmd, j *job, inst store.Instance) {
	err := cmd.Wait()
	close(j.done)

	// The run is the engine's to record once run.json carries its id, and
	// another run (started from a terminal meanwhile) must not be touched.
	st, readErr := pipeline.ReadState(inst.ProjectDir)
	if readErr == nil && (st.RunID == j.runID || st.Status == pipeline.StatusRunning && processAlive(st.PID)) {
		s.monitor.kick(inst.ID)
		return
	}
	reason := fmt.Sprintf("orchestrator (pid %d) exited before the run started (%v)", j.pid, exitStatus(err))
	if detail := lastLine(filepath.Join(inst.ProjectDir, ".cliq", "orchestrator.out")); detail != "" {
		reason += ": " + detail
	}
	s.log.Error("run failed to start", "instance_id", inst.ID, "run_id", j.runID, "reason", reason)
	if err := writeStartFailure(inst, j, reason); err != nil {
		s.log.Error("record failed start", "instance_id", inst.ID, "run_id", j.runID, "error", err)
	}
	s.monitor.kick(inst.ID)
}

// writeStartFailure makes run.json and events.jsonl describe a run that
// failed before it started, as the engine would have.
func writeStartFailure(inst store.Instance, j *job, reason string) error {
	now := time.Now().UTC()
	st := pipeline.RunState{
		InstanceID: inst.ID, RunID: j.runID, Status: pipeline.StatusFailed, PID: j.pid,
		StartedAt: j.started, FinishedAt: &now, Reason: reason, Phases: []pipeline.PhaseState{},
	}
	e := events.Event{
		Type: events.PipelineError, InstanceID: inst.ID, RunID: j.runID, Seq: 1, Time: now,
		Data: map[string]any{"status": pipeline.StatusFailed, "reason": reason},
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	cliqDir := filepath.Join(inst.ProjectDir, ".cliq")
	if err := settings.WriteAtomic(filepath.Join(cliqDir, "events.jsonl"), append(line, '\n'), 0o644); err != nil {
		return err
	}
	return writeRunState(inst.ProjectDir, &st)
}

// writeRunState writes run.json atomically, as the engine does.
func writeRunState(projectDir string, st *pipeline.RunState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode run state: %w", err)
	}
	if err := settings.WriteAtomic(filepath.Join(projectDir, ".cliq", "run.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write run state: %w", err)
	}
	return nil
}

// exitStatus describes how a process ended.
func exitStatus(err error) string {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ProcessState.String()
	}
	if err != nil {
		return err.Error()
	}
	return "exit status 0"
}

// lastLine returns the last non-empty line of a small file, cut to 300
// bytes, or "".
func lastLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(data) > 64<<10 {
		data = data[len(data)-64<<10:]
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	if len(line) > 300 {
		line = line[:300] + "..."
	}
	return line
}

// crockford is the base32 alphabet without I, L, O and U; its strings sort
// in the order of the numbers they encode.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newRunID returns a run id in the engine's format: "run_" and 26 base32
// characters, 48 bits of Unix milliseconds followed by 80 random bits.
func newRunID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(time.Now().UnixMilli())<<16)
	// crypto/rand.Read does not fail on the platforms Go supports.
	_, _ = rand.Read(b[6:])

	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return "run_" + string(out[:])
}
