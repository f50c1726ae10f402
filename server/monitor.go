package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"cliq/events"
	"cliq/pipeline"
	"cliq/store"
)

// Timing of the instance monitor.
const (
	// refreshInterval is how often the monitor reloads the instance
	// registry, to follow instances registered by cliq init meanwhile.
	refreshInterval = 2 * time.Second
	// fastPollInterval and fastPollPeriod: after a kick (a run this server
	// just started), _ws.json is polled this often for this long, so that
	// the first event reaches subscribers quickly.
	fastPollInterval = 5 * time.Millisecond
	fastPollPeriod   = 3 * time.Second
	// recordTimeout bounds one write to the run history.
	recordTimeout = 5 * time.Second
)

// monitor follows the orchestrators of every registered instance and
// publishes their events to the hub. It runs one watcher goroutine per
// instance.
type monitor struct {
	s   *Server
	log *slog.Logger

	mu       sync.Mutex
	ctx      context.Context // nil before start
	watchers map[string]*watcher
}

func newMonitor(s *Server) *monitor {
	return &monitor{
		s:        s,
		log:      s.cfg.Logger.With("component", "monitor"),
		watchers: make(map[string]*watcher),
	}
}

// start watches every registered instance and keeps the set up to date
// until runCtx is done. ctx bounds the first registry read.
func (m *monitor) start(ctx, runCtx context.Context) error {
	list, err := m.s.db.Instances(ctx)
	if err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	m.mu.Lock()
	m.ctx = runCtx
	m.mu.Unlock()
	for _, inst := range list {
		m.watch(inst)
	}

	m.s.wg.Add(1)
	go func() {
		defer m.s.wg.Done()
		m.refreshLoop(runCtx)
	}()
	return nil
}

// refreshLoop reloads the registry every refreshInterval.
func (m *monitor) refreshLoop(ctx context.Context) {
	tick := time.NewTicker(refreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		list, err := m.s.db.Instances(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("reload instance registry failed", "error", err)
			}
			continue
		}
		m.sync(list)
	}
}

// sync watches the instances of list and stops watching the others.
func (m *monitor) sync(list []store.Instance) {
	seen := make(map[string]bool, len(list))
	for _, inst := range list {
		seen[inst.ID] = true
		m.watch(inst)
	}
	m.mu.Lock()
	var gone []string
	for id := range m.watchers {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		m.unwatch(id)
	}
}

// watch starts a watcher for inst unless one with the same project
// directory runs already.
func (m *monitor) watch(inst store.Instance) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.ctx.Err() != nil {
		return
	}
	if w, ok := m.watchers[inst.ID]; ok {
		if w.projectDir == inst.ProjectDir {
			return
		}
		w.cancel()
	}
	ctx, cancel := context.WithCancel(m.ctx)
	w := &watcher{
		m:          m,
		instanceID: inst.ID,
		projectDir: inst.ProjectDir,
		kicks:      make(chan struct{}, 1),
		cancel:     cancel,
		log:        m.log.With("instance_id", inst.ID),
	}
	m.watchers[inst.ID] = w
	m.s.wg.Add(1)
	go func() {
		defer m.s.wg.Done()
		w.run(ctx)
	}()
}

// unwatch stops the watcher of an instance.
func (m *monitor) unwatch(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w, ok := m.watchers[id]; ok {
		w.cancel()
		delete(m.watchers, id)
	}
}

// kick makes the instance's watcher look for an orchestrator now and
// often for a while, because this server just started one.
func (m *monitor) kick(id string) {
	m.mu.Lock()
	w := m.watchers[id]
	m.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.kicks <- struct{}{}:
	default:
	}
}

// watcher follows the runs of one instance. Its fields below log are owned
// by its goroutine.
type watcher struct {
	m          *monitor
	instanceID string
	projectDir string
	kicks      chan struct{}
	cancel     context.CancelFunc
	log        *slog.Logger

	// runID is the run whose events were published last, lastSeq the seq
	// of the last of them, finished whether its final event was among
	// them.
	runID    string
	lastSeq  int64
	finished bool
	history  store.Run
}

// run polls the instance until ctx is done.
func (w *watcher) run(ctx context.Context) {
	w.skipFinishedRun()
	var fastUntil time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kicks:
			fastUntil = time.Now().Add(fastPollPeriod)
		case <-timer.C:
		}
		w.poll(ctx)

		interval := w.m.s.cfg.PollInterval
		if time.Now().Before(fastUntil) && !w.following() {
			interval = fastPollInterval
		}
		timer.Reset(interval)
	}
}

// following reports whether the current run is still being published.
func (w *watcher) following() bool { return w.runID != "" && !w.finished }

// skipFinishedRun marks the run in run.json as published when it is over,
// so that a server start does not replay the last run of every instance.
// A running run is followed from its first event.
func (w *watcher) skipFinishedRun() {
	st, err := pipeline.ReadState(w.projectDir)
	if err != nil || st.RunID == "" || st.Status == pipeline.StatusRunning {
		return
	}
	w.runID, w.finished = st.RunID, true
}

// poll follows the orchestrator named by _ws.json, if there is a new one,
// and then checks run.json for runs that ended without it.
func (w *watcher) poll(ctx context.Context) {
	info, err := pipeline.ReadWSInfo(w.projectDir)
	if err == nil && info.RunID != "" && !(info.RunID == w.runID && w.finished) && processAlive(info.PID) {
		w.follow(ctx, info)
	}
	if ctx.Err() == nil {
		w.checkRunState()
	}
}

// follow publishes the events of the orchestrator's feed until the final
// one, or until the feed is gone.
func (w *watcher) follow(ctx context.Context, info *pipeline.WSInfo) {
	if info.RunID != w.runID {
		w.beginRun(info.RunID)
	}
	w.log.Debug("following orchestrator", "run_id", info.RunID, "pid", info.PID, "since", w.lastSeq)
	f := events.Follower{
		URL:     "ws://127.0.0.1:" + strconv.Itoa(info.Port) + "/",
		Token:   info.Token,
		Since:   w.lastSeq,
		OnEvent: w.deliver,
		Retries: 3,
	}
	err := f.Run(ctx)
	if err != nil && ctx.Err() == nil {
		w.log.Warn("orchestrator event feed lost", "run_id", info.RunID, "pid", info.PID,
			"last_seq", w.lastSeq, "error", err)
	}
}

// beginRun starts publishing a new run.
func (w *watcher) beginRun(runID string) {
	w.runID, w.lastSeq, w.finished = runID, 0, false
	w.history = store.Run{}
}

// deliver publishes e unless it was published already, and records the
// run in the history at its start and its end.
func (w *watcher) deliver(e events.Event) {
	if e.RunID != w.runID {
		w.beginRun(e.RunID)
	}
	if e.Seq <= w.lastSeq {
		return
	}
	w.lastSeq = e.Seq
	w.m.s.hub.Publish(e)
	if e.Final() {
		w.finished = true
	}
	w.record(e)
}

// checkRunState handles what the feed cannot: runs that ended between two
// polls (their events are read from events.jsonl) and orchestrators that
// died without a final event (their run is marked failed).
func (w *watcher) checkRunState() {
	st, err := pipeline.ReadState(w.projectDir)
	if err != nil || st.RunID == "" {
		return
	}
	if st.RunID == w.runID && w.finished {
		return
	}
	alive := processAlive(st.PID)
	if st.Status == pipeline.StatusRunning && alive {
		// The orchestrator is starting, or its feed will be followed at
		// the next poll.
		return
	}
	if st.RunID != w.runID {
		w.beginRun(st.RunID)
	}
	if err := w.catchUp(); err != nil {
		w.log.Warn("read events.jsonl failed", "run_id", st.RunID, "error", err)
	}
	switch {
	case w.finished:
	case st.Status == pipeline.StatusRunning:
		w.markFailed(st)
	case !alive:
		// run.json is final but events.jsonl has no final event, and no
		// process will write one.
		w.log.Warn("run ended without a final event", "run_id", st.RunID, "status", st.Status)
		w.finished = true
	}
}

// catchUp publishes the events of events.jsonl after lastSeq.
func (w *watcher) catchUp() error {
	f, err := os.Open(filepath.Join(w.projectDir, ".cliq", "events.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e events.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// A line being written right now; the next poll reads it.
			break
		}
		if e.RunID == w.runID {
			w.deliver(e)
		}
	}
	return sc.Err()
}

// markFailed records a run whose orchestrator exited without finishing it:
// run.json becomes failed with the reason, a pipeline_error event is
// appended to events.jsonl and published.
func (w *watcher) markFailed(st *pipeline.RunState) {
	reason := fmt.Sprintf("orchestrator (pid %d) exited without finishing the run", st.PID)
	cleaned := w.killLeftovers(st.RunID)
	now := time.Now().UTC()
	st.Status = pipeline.StatusFailed
	st.Reason = reason
	st.FinishedAt = &now
	failRunningPhases(st.Phases, now, cleaned)
	if err := writeRunState(w.projectDir, st); err != nil {
		w.log.Error("mark run failed", "run_id", st.RunID, "error", err)
	}

	e := events.Event{
		Type: events.PipelineError, InstanceID: w.instanceID, RunID: st.RunID,
		Seq: w.lastSeq + 1, Time: now,
		Data: map[string]any{"status": pipeline.StatusFailed, "reason": reason},
	}
	if err := appendEvent(w.projectDir, e); err != nil {
		w.log.Error("append pipeline_error to events.jsonl", "run_id", st.RunID, "error", err)
	}
	w.log.Warn("run failed, orchestrator gone", "run_id", st.RunID, "pid", st.PID)
	w.deliver(e)
	removeStaleWSInfo(w.projectDir, st.PID)
}

// killLeftovers kills the process groups that the dead orchestrator of run
// runID left, and reports whether none is left.
func (w *watcher) killLeftovers(runID string) bool {
	killed, err := pipeline.KillLeftovers(w.projectDir)
	if len(killed) > 0 {
		w.m.log.Info("killed processes of a dead orchestrator", "instance_id", w.instanceID,
			"run_id", runID, "pgids", killed)
	}
	if err != nil {
		w.log.Error("kill processes of a dead orchestrator", "run_id", runID, "error", err)
		return false
	}
	return true
}

// failRunningPhases marks the phases that were still running as failed.
// When cleaned is true, the process groups of the run are gone and their
// record is removed.
func failRunningPhases(phases []pipeline.PhaseState, at time.Time, cleaned bool) {
	for i := range phases {
		ph := &phases[i]
		if cleaned {
			ph.PGIDs = nil
		}
		if ph.Status == pipeline.StatusRunning {
			ph.Status = pipeline.StatusFailed
			ph.FinishedAt = &at
			ph.Error = "the orchestrator exited while the phase ran"
		}
		failRunningPhases(ph.Phases, at, cleaned)
	}
}

// appendEvent appends e as one line to the project's events.jsonl.
func appendEvent(projectDir string, e events.Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(projectDir, ".cliq", "events.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// removeStaleWSInfo removes _ws.json when it names the dead pid.
func removeStaleWSInfo(projectDir string, pid int) {
	info, err := pipeline.ReadWSInfo(projectDir)
	if err != nil || info.PID != pid || processAlive(pid) {
		return
	}
	_ = os.Remove(filepath.Join(projectDir, ".cliq", "signals", "_ws.json"))
}

// record writes the run to the history when it starts and when it ends.
func (w *watcher) record(e events.Event) {
	if e.Depth != 0 {
		return
	}
	switch {
	case e.Type == events.PipelineStart:
		team, _ := e.Data["team"].(string)
		w.history = store.Run{RunID: e.RunID, InstanceID: w.instanceID, Team: team,
			Status: pipeline.StatusRunning, StartedAt: e.Time}
		w.m.log.Info("run started", "instance_id", w.instanceID, "run_id", e.RunID, "team", team)
	case e.Final():
		w.finishHistory(e)
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	err := w.m.s.db.PutRun(ctx, w.history)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		w.log.Warn("record run history failed", "run_id", e.RunID, "error", err)
	}
}

// finishHistory fills the history entry from a final event.
func (w *watcher) finishHistory(e events.Event) {
	if w.history.RunID != e.RunID {
		w.history = store.Run{RunID: e.RunID, InstanceID: w.instanceID}
		if st, err := pipeline.ReadState(w.projectDir); err == nil && st.RunID == e.RunID {
			w.history.Team, w.history.StartedAt = st.Team, st.StartedAt
		}
	}
	finished := e.Time
	w.history.FinishedAt = &finished
	w.history.Status = pipeline.StatusCompleted
	w.history.Reason = ""
	if e.Type == events.PipelineError {
		w.history.Status, _ = e.Data["status"].(string)
		w.history.Reason, _ = e.Data["reason"].(string)
		if w.history.Status == "" {
			w.history.Status = pipeline.StatusFailed
		}
	}
	w.m.log.Info("run finished", "instance_id", w.instanceID, "run_id", e.RunID,
		"status", w.history.Status, "reason", w.history.Reason)
}
