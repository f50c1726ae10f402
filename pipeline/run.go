package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"cliq/events"
)

// Run runs the pipeline to its end and returns the final state, whose
// Status is completed, failed, escalated or cancelled. Cancelling ctx stops
// every running phase's process group (SIGTERM, then SIGKILL after the
// grace period) and ends the run as cancelled. The error is set only when
// the run could not start. It is ErrActiveRun when another run holds the
// project or when processes of a dead previous run could not be killed.
// Otherwise the run's files or event server could not be set up.
func (p *Pipeline) Run(ctx context.Context) (*RunState, error) {
	lock, err := claimRunLock(filepath.Join(p.cliqDir, "run.lock"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := lock.release(); err != nil {
			p.opts.Logger.Error("release run lock failed", "error", err, "instance_id", p.instanceID)
		}
	}()
	if p.depth == 0 {
		if err := p.killLeftovers(); err != nil {
			return nil, err
		}
	}

	r, err := p.newRunner()
	if err != nil {
		return nil, err
	}
	if err := r.startServer(); err != nil {
		r.abort(err)
		return nil, err
	}
	p.opts.Logger.Info("run started", "instance_id", p.instanceID, "run_id", r.runID, "team", p.team.Name)

	r.execute(ctx)
	r.finish()
	st := r.state.snapshot()
	p.opts.Logger.Info("run finished", "instance_id", p.instanceID, "run_id", r.runID,
		"status", st.Status, "reason", st.Reason)
	return st, nil
}

// killLeftovers ends the process groups that a previous run's orchestrator
// left when it died, before this run clears its files. When some are still
// alive, it returns ErrActiveRun, so no run starts beside them.
func (p *Pipeline) killLeftovers() error {
	prevRun := ""
	if prev, err := ReadState(p.dir); err == nil {
		prevRun = prev.RunID
	}
	killed, err := KillLeftovers(p.dir)
	if len(killed) > 0 {
		p.opts.Logger.Info("killed processes of a previous run", "instance_id", p.instanceID,
			"run_id", prevRun, "pgids", killed)
	}
	if err != nil {
		p.opts.Logger.Error("kill processes of a previous run failed", "instance_id", p.instanceID,
			"run_id", prevRun, "error", err)
		return fmt.Errorf("%w: run %s left processes: %w", ErrActiveRun, prevRun, err)
	}
	return nil
}

// runner is the state of one run while it executes. Only the goroutine
// that calls execute touches the phases map. Phase goroutines receive a
// phaseJob and send back a phaseResult.
type runner struct {
	p      *Pipeline
	runID  string
	start  time.Time
	state  *stateFile
	events *eventLog
	text   *textLog
	server *eventServer
	order  []string
	phases map[string]*phaseRun
	// dependents maps a phase to the phases that depend on it.
	dependents map[string][]string
	results    chan phaseResult
	running    int
	outcome    outcome
}

// phaseRun is the scheduler's view of one phase.
type phaseRun struct {
	phase    *Phase
	agent    agentSpec
	status   string
	runs     int // how often the phase started in this run
	gateIter int // current iteration of a gate, from 1
	maxIter  int
	feedback []feedback // latest feedback per gate that routed here
	started  time.Time
}

// phaseJob is the input of one phase goroutine. It shares nothing mutable
// with the scheduler.
type phaseJob struct {
	phase     *Phase
	agent     agentSpec
	iteration int
	feedback  []feedback
}

// phaseResult is the outcome of one execution of a phase.
type phaseResult struct {
	Name     string
	Status   string // PhaseDone, PhaseSkipped, StatusFailed, StatusEscalated or StatusCancelled
	Reason   string // cause of a failure or escalation
	ExitCode *int
	Verdict  *verdict // set for gates that decided
	Output   string   // the handoff to dependent phases
	Feedback string   // for gates: what a ROUTE sends back
	Failed   int      // commands that failed
	Duration time.Duration
}

// outcome is the final status of a run and why.
type outcome struct {
	status string
	reason string
	phase  string
}

// newRunner clears the previous run's files, writes the initial run.json
// and opens the run's logs.
func (p *Pipeline) newRunner() (*runner, error) {
	if err := clearRunFiles(p.cliqDir); err != nil {
		return nil, err
	}
	r := &runner{
		p:          p,
		runID:      p.opts.RunID,
		start:      time.Now(),
		order:      p.team.Order(),
		phases:     make(map[string]*phaseRun),
		dependents: make(map[string][]string),
	}
	if r.runID == "" {
		r.runID = newRunID()
	}
	r.results = make(chan phaseResult, len(r.order))

	states := make([]PhaseState, 0, len(r.order))
	for _, name := range r.order {
		ph, _ := p.team.PhaseByName(name)
		pr := &phaseRun{phase: ph, agent: p.agents[name], status: PhasePending}
		if ph.Type == TypeGate {
			pr.maxIter = ph.MaxIterations
			if pr.maxIter <= 0 {
				pr.maxIter = DefaultMaxIterations
			}
		}
		r.phases[name] = pr
		for _, dep := range ph.DependsOn {
			r.dependents[dep] = append(r.dependents[dep], name)
		}
		states = append(states, PhaseState{
			Name: name, Type: ph.Type, Agent: pr.agent.Name, Status: PhasePending,
			DependsOn: append([]string{}, ph.DependsOn...), MaxIterations: pr.maxIter,
		})
	}

	r.state = newStateFile(filepath.Join(p.cliqDir, "run.json"), RunState{
		InstanceID: p.instanceID, RunID: r.runID, Status: StatusRunning, Team: p.team.Name,
		PID: os.Getpid(), StartedAt: r.start.UTC(), Phases: states,
	})
	r.state.onWrite = p.onState
	if err := r.state.update(func(*RunState) {}); err != nil {
		return nil, err
	}
	if err := r.openLogs(); err != nil {
		r.abort(err)
		return nil, err
	}
	return r, nil
}

// openLogs opens events.jsonl and orchestrator.log.
func (r *runner) openLogs() error {
	ev, err := openEventLog(filepath.Join(r.p.cliqDir, "events.jsonl"), r.p.instanceID, r.runID, r.p.opts.Logger)
	if err != nil {
		return err
	}
	r.events = ev
	if r.p.opts.OnEvent != nil {
		r.events.addSink(r.p.opts.OnEvent)
	}
	text, err := openTextLog(filepath.Join(r.p.cliqDir, "orchestrator.log"), r.p.opts.Stdout)
	if err != nil {
		return err
	}
	r.text = text
	return nil
}

// clearRunFiles removes what the previous run left in the project:
// events.jsonl, orchestrator.log, channels, files, the state of nested
// runs (teams) and _ws.json.
func clearRunFiles(cliqDir string) error {
	for _, name := range []string{"events.jsonl", "orchestrator.log", "channels", "files", nestedRunsDirName,
		filepath.Join("signals", "_ws.json")} {
		if err := os.RemoveAll(filepath.Join(cliqDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clear previous run: %w", err)
		}
	}
	for _, name := range []string{"channels", "files", "signals"} {
		if err := os.MkdirAll(filepath.Join(cliqDir, name), 0o755); err != nil {
			return fmt.Errorf("prepare run directories: %w", err)
		}
	}
	return nil
}

// abort records a run that could not start as failed and closes what was
// opened.
func (r *runner) abort(cause error) {
	now := time.Now()
	if err := r.state.update(func(st *RunState) {
		st.Status = StatusFailed
		st.Reason = "run could not start: " + cause.Error()
		st.FinishedAt = timePtr(now)
	}); err != nil {
		r.p.opts.Logger.Error("write run state failed", "error", err, "run_id", r.runID)
	}
	r.closeLogs()
}

// trackGroup returns the process hook that records the process groups of
// phase name in run.json while they have members.
func (r *runner) trackGroup(name string) func(pgid int, started bool) {
	return func(pgid int, started bool) {
		r.savePhase(name, func(ps *PhaseState) {
			ps.PGIDs = slices.DeleteFunc(ps.PGIDs, func(g int) bool { return g == pgid })
			if started {
				ps.PGIDs = append(ps.PGIDs, pgid)
			}
		})
	}
}

// closeLogs closes the run's log files.
func (r *runner) closeLogs() {
	if r.events != nil {
		r.events.close()
	}
	if r.text != nil {
		r.text.close()
	}
}

// phaseDir returns files/<phase>, where a phase keeps what it produced.
func (r *runner) phaseDir(name string) string {
	return filepath.Join(r.p.cliqDir, "files", name)
}

// saveState applies fn to the run state and logs a failed write: the run
// goes on, because the events still record its progress.
func (r *runner) saveState(fn func(*RunState)) {
	if err := r.state.update(fn); err != nil {
		r.p.opts.Logger.Error("write run state failed", "error", err, "run_id", r.runID)
	}
}

// savePhase applies fn to one phase's state, logging a failed write.
func (r *runner) savePhase(name string, fn func(*PhaseState)) {
	if err := r.state.updatePhase(name, fn); err != nil {
		r.p.opts.Logger.Error("write run state failed", "error", err, "run_id", r.runID, "phase", name)
	}
}

// finish records the outcome in run.json, emits the final event, stops the
// event server and closes the logs.
func (r *runner) finish() {
	now := time.Now()
	out := r.outcome
	r.saveState(func(st *RunState) {
		st.Status = out.status
		st.Reason = out.reason
		st.Phase = out.phase
		st.FinishedAt = timePtr(now)
	})

	elapsed := now.Sub(r.start)
	if out.status == StatusCompleted {
		r.events.emit(events.PipelineDone, "", map[string]any{"duration_ms": elapsed.Milliseconds()})
		r.text.printf("run %s completed in %s", r.runID, elapsed.Round(time.Millisecond))
	} else {
		data := map[string]any{"status": out.status, "reason": out.reason,
			"duration_ms": elapsed.Milliseconds()}
		if out.phase != "" {
			// DESIGN: phase is present where one is to blame.
			data["phase"] = out.phase
		}
		r.events.emit(events.PipelineError, out.phase, data)
		r.text.printf("run %s %s after %s: %s", r.runID, out.status, elapsed.Round(time.Millisecond), out.reason)
	}
	r.server.stop()
	r.closeLogs()
}
