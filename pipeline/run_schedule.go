package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"cliq/events"
)

// execute schedules the phases until none runs and none can start, then
// sets r.outcome. A phase starts once all its depends_on are done or
// skipped, so independent phases run at the same time. The first failure or
// escalation cancels the phases still running and starts no new ones.
func (r *runner) execute(ctx context.Context) {
	r.events.emit(events.PipelineStart, "", map[string]any{"team": r.p.team.Name, "phases": r.order})
	r.text.printf("run %s started: team %s, phases %s", r.runID, r.p.team.Name, strings.Join(r.order, ", "))

	phaseCtx, cancelPhases := context.WithCancel(ctx)
	defer cancelPhases()
	cancelled := ctx.Done()
	for {
		if r.outcome.status == "" && ctx.Err() == nil {
			r.startReady(phaseCtx)
		}
		if r.running == 0 {
			break
		}
		select {
		case res := <-r.results:
			r.running--
			r.handle(res)
			if r.outcome.status != "" {
				cancelPhases()
			}
		case <-cancelled:
			cancelled = nil
			r.setOutcome(StatusCancelled, "run cancelled", "")
			r.text.printf("cancelling: stopping %d running phases", r.running)
		}
	}
	r.settle(ctx)
}

// settle sets the outcome of a run whose scheduling loop ended without
// a failure: completed when every phase is done or skipped.
func (r *runner) settle(ctx context.Context) {
	if r.outcome.status != "" {
		return
	}
	if ctx.Err() != nil {
		r.setOutcome(StatusCancelled, "run cancelled", "")
		return
	}
	var waiting []string
	for _, name := range r.order {
		if s := r.phases[name].status; s != PhaseDone && s != PhaseSkipped {
			waiting = append(waiting, name)
		}
	}
	if len(waiting) > 0 {
		r.setOutcome(StatusFailed, "phases never became ready: "+strings.Join(waiting, ", "), waiting[0])
		return
	}
	r.setOutcome(StatusCompleted, "", "")
}

// setOutcome records the run's outcome unless one is already set: the
// first failure, escalation or cancellation decides.
func (r *runner) setOutcome(status, reason, phase string) {
	if r.outcome.status == "" {
		r.outcome = outcome{status: status, reason: reason, phase: phase}
	}
}

// startReady starts every pending phase whose dependencies are satisfied.
func (r *runner) startReady(ctx context.Context) {
	for _, name := range r.order {
		pr := r.phases[name]
		if pr.status == PhasePending && r.depsSatisfied(pr.phase) {
			r.launch(ctx, pr)
		}
	}
}

// depsSatisfied reports whether every depends_on of ph is done or skipped.
func (r *runner) depsSatisfied(ph *Phase) bool {
	for _, dep := range ph.DependsOn {
		if s := r.phases[dep].status; s != PhaseDone && s != PhaseSkipped {
			return false
		}
	}
	return true
}

// launch marks pr running, emits phase_start and runs it in a goroutine.
func (r *runner) launch(ctx context.Context, pr *phaseRun) {
	pr.runs++
	iteration := pr.runs
	if pr.phase.Type == TypeGate {
		if pr.gateIter == 0 {
			pr.gateIter = 1
		}
		iteration = pr.gateIter
	}
	pr.status = StatusRunning
	pr.started = time.Now()
	job := phaseJob{phase: pr.phase, agent: pr.agent, iteration: iteration,
		feedback: append([]feedback(nil), pr.feedback...)}

	r.savePhase(pr.phase.Name, func(ps *PhaseState) {
		ps.Status = StatusRunning
		ps.Iteration = iteration
		ps.StartedAt = timePtr(pr.started)
		ps.FinishedAt = nil
		ps.Error = ""
		ps.ExitCode = nil
	})
	data := map[string]any{"type": pr.phase.Type, "agent": pr.agent.Name, "iteration": iteration}
	if pr.phase.Type == TypeTeam {
		team := r.p.subTeams[pr.phase.Name].team.Name
		data["team"] = team
		r.events.emit(events.PhaseStart, pr.phase.Name, data)
		r.text.printf("%s: started (team %s, iteration %d)", pr.phase.Name, team, iteration)
	} else {
		r.events.emit(events.PhaseStart, pr.phase.Name, data)
		r.text.printf("%s: started (agent %s, iteration %d)", pr.phase.Name, pr.agent.Name, iteration)
	}

	r.running++
	started := pr.started
	go func() {
		res := r.executePhase(ctx, job)
		res.Name = job.phase.Name
		res.Duration = time.Since(started)
		r.results <- res
	}()
}

// handle applies the result of one phase execution.
func (r *runner) handle(res phaseResult) {
	pr := r.phases[res.Name]
	if res.Verdict != nil && res.Status == PhaseDone {
		r.handleVerdict(pr, res)
		return
	}
	r.finishPhase(pr, res, res.Status)
	switch res.Status {
	case StatusFailed:
		r.setOutcome(StatusFailed, fmt.Sprintf("phase %q failed: %s", res.Name, res.Reason), res.Name)
	case StatusEscalated:
		r.setOutcome(StatusEscalated, fmt.Sprintf("phase %q escalated: %s", res.Name, res.Reason), res.Name)
	case StatusCancelled:
		r.setOutcome(StatusCancelled, "run cancelled", "")
	}
}

// finishPhase records that pr ended with status and emits phase_error
// (for failed and escalated phases) and phase_done.
func (r *runner) finishPhase(pr *phaseRun, res phaseResult, status string) {
	name := pr.phase.Name
	pr.status = status
	now := time.Now()
	r.savePhase(name, func(ps *PhaseState) {
		ps.Status = status
		ps.FinishedAt = timePtr(now)
		ps.Error = res.Reason
		ps.ExitCode = res.ExitCode
		if res.Verdict != nil {
			ps.Verdict = res.Verdict.Kind
		}
	})

	if status == StatusFailed || status == StatusEscalated {
		data := map[string]any{"error": res.Reason}
		if res.ExitCode != nil {
			data["exit_code"] = *res.ExitCode
		}
		r.events.emit(events.PhaseError, name, data)
	}
	data := map[string]any{"duration_ms": res.Duration.Milliseconds(), "status": status}
	if res.Failed > 0 {
		data["failed_commands"] = res.Failed
	}
	r.events.emit(events.PhaseDone, name, data)

	msg := fmt.Sprintf("%s: %s in %s", name, status, res.Duration.Round(time.Millisecond))
	if res.Reason != "" {
		msg += ": " + res.Reason
	}
	r.text.printf("%s", msg)
}

// handleVerdict applies a gate's decision: PASS lets the run go on,
// ESCALATE ends it, and ROUTE sends the work back for another iteration
// unless the gate's budget is spent.
func (r *runner) handleVerdict(pr *phaseRun, res phaseResult) {
	name := pr.phase.Name
	v := *res.Verdict
	data := map[string]any{"verdict": v.Kind, "iteration": pr.gateIter, "reason": v.Reason}

	switch v.Kind {
	case VerdictPass:
		r.finishPhase(pr, res, PhaseDone)
		r.emitVerdict(name, data, v)
		return
	case VerdictEscalate:
		r.escalateGate(pr, res, data, fmt.Sprintf("gate %q escalated: %s", name, v.Reason))
		return
	}

	targets, err := r.routeTargets(name, v.Target)
	if err != nil {
		r.escalateGate(pr, res, data, err.Error())
		return
	}
	data["target"] = strings.Join(targets, ",")
	if pr.gateIter >= pr.maxIter {
		r.escalateGate(pr, res, data, fmt.Sprintf("gate %q exhausted its %d iterations", name, pr.maxIter))
		return
	}
	r.finishPhase(pr, res, PhaseDone)
	r.emitVerdict(name, data, v)
	r.route(pr, targets, feedback{Gate: name, Iteration: pr.gateIter, Text: res.Feedback})
}

// escalateGate ends the gate as escalated, emits its verdict and escalates
// the run with reason.
func (r *runner) escalateGate(pr *phaseRun, res phaseResult, data map[string]any, reason string) {
	res.Reason = reason
	r.finishPhase(pr, res, StatusEscalated)
	r.emitVerdict(pr.phase.Name, data, *res.Verdict)
	r.setOutcome(StatusEscalated, reason, pr.phase.Name)
}

// emitVerdict emits gate_verdict and logs it.
func (r *runner) emitVerdict(gate string, data map[string]any, v verdict) {
	r.events.emit(events.GateVerdict, gate, data)
	msg := fmt.Sprintf("%s: verdict %s (iteration %v): %s", gate, v, data["iteration"], v.Reason)
	if t, ok := data["target"]; ok {
		msg = fmt.Sprintf("%s: verdict %s, routing to %v (iteration %v): %s", gate, v, t, data["iteration"], v.Reason)
	}
	r.text.printf("%s", msg)
}

// route starts the gate's next iteration: the targets, every phase between
// them and the gate, and the gate itself become pending again, and the
// re-run phases get fb in their prompt.
func (r *runner) route(gate *phaseRun, targets []string, fb feedback) {
	gate.gateIter++
	r.events.emit(events.GateIteration, gate.phase.Name, map[string]any{
		"iteration": gate.gateIter, "max_iterations": gate.maxIter,
	})

	rerun := map[string]bool{gate.phase.Name: true}
	for _, t := range targets {
		rerun[t] = true
		for _, name := range r.p.team.Between(t, gate.phase.Name) {
			rerun[name] = true
		}
	}
	for _, name := range r.order {
		if !rerun[name] {
			continue
		}
		pr := r.phases[name]
		pr.status = PhasePending
		if name != gate.phase.Name {
			pr.feedback = withFeedback(pr.feedback, fb)
		}
		r.savePhase(name, func(ps *PhaseState) {
			ps.Status = PhasePending
			if name == gate.phase.Name {
				ps.Iteration = gate.gateIter
			}
		})
	}
}

// withFeedback replaces the feedback of fb's gate in list, or appends it.
func withFeedback(list []feedback, fb feedback) []feedback {
	out := make([]feedback, 0, len(list)+1)
	for _, f := range list {
		if f.Gate != fb.Gate {
			out = append(out, f)
		}
	}
	return append(out, fb)
}

// routeTargets returns where a ROUTE of gate goes: the named target, which
// must be a phase that the gate depends on directly or indirectly, or else
// the gate's route targets (route_to, else depends_on).
func (r *runner) routeTargets(gate, target string) ([]string, error) {
	ancestors := r.ancestors(gate)
	if target == "" {
		targets := r.p.team.RouteTargets(gate)
		if len(targets) == 0 {
			return nil, fmt.Errorf("gate %q returned ROUTE but has no phase to route to: set route_to or depends_on", gate)
		}
		return targets, nil
	}
	for _, a := range ancestors {
		if a == target {
			return []string{target}, nil
		}
	}
	return nil, fmt.Errorf("gate %q returned ROUTE:%s, but %q is not a phase before the gate (expected one of: %s)",
		gate, target, target, strings.Join(ancestors, ", "))
}

// ancestors returns the phases that name depends on directly or
// indirectly, in run order.
func (r *runner) ancestors(name string) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		ph, ok := r.p.team.PhaseByName(n)
		if !ok {
			return
		}
		for _, dep := range ph.DependsOn {
			if !seen[dep] {
				seen[dep] = true
				visit(dep)
			}
		}
	}
	visit(name)
	var out []string
	for _, n := range r.order {
		if seen[n] {
			out = append(out, n)
		}
	}
	return out
}

// executePhase runs one phase with its agent and, when it succeeded,
// leaves its handoff in the channels of the phases that depend on it.
func (r *runner) executePhase(ctx context.Context, job phaseJob) phaseResult {
	if err := os.MkdirAll(r.phaseDir(job.phase.Name), 0o755); err != nil {
		return phaseResult{Status: StatusFailed, Reason: fmt.Sprintf("create phase directory: %v", err)}
	}
	var res phaseResult
	switch {
	case job.phase.Type == TypeGate:
		res = r.runGate(ctx, job)
	case job.phase.Type == TypeTeam:
		res = r.runTeamPhase(ctx, job)
	case job.agent.isExec():
		res = r.runExecPhase(ctx, job)
	default:
		res = r.runAgentPhase(ctx, job)
	}
	if res.Status == PhaseDone || res.Status == PhaseSkipped {
		if err := r.writeHandoffs(job, res.Output); err != nil {
			return phaseResult{Status: StatusFailed, Reason: err.Error()}
		}
	}
	return res
}

// runExecPhase runs a standard phase's commands. A failed command is
// recorded and the next one runs, unless it has escalate_on_fail.
func (r *runner) runExecPhase(ctx context.Context, job phaseJob) phaseResult {
	results, escalate := r.runCommands(ctx, job)
	res := phaseResult{
		Output: fmt.Sprintf("Commands of phase %s:\n\n%s", job.phase.Name, formatResults(results)),
		Failed: countFailed(results),
	}
	switch {
	case ctx.Err() != nil:
		res.Status = StatusCancelled
	case escalate != nil:
		res.Status = StatusEscalated
		res.Reason = escalateReason(*escalate)
		code := escalate.ExitCode
		res.ExitCode = &code
	case allSkipped(results):
		res.Status = PhaseSkipped
	default:
		res.Status = PhaseDone
	}
	return res
}

// runAgentPhase runs a standard phase's command agent. Exit code 0 means
// done; its output is the handoff.
func (r *runner) runAgentPhase(ctx context.Context, job phaseJob) phaseResult {
	text, err := r.buildPrompt(job, "")
	if err != nil {
		return phaseResult{Status: StatusFailed, Reason: err.Error()}
	}
	run, err := r.runAgent(ctx, job, text)
	switch {
	case err != nil:
		return phaseResult{Status: StatusFailed, Reason: err.Error()}
	case run.Result.Err != nil:
		return phaseResult{Status: StatusCancelled}
	case run.Result.ExitCode != 0:
		code := run.Result.ExitCode
		return phaseResult{Status: StatusFailed, Reason: r.agentFailure(job, run.Result), ExitCode: &code}
	}
	return phaseResult{Status: PhaseDone, Output: run.Output}
}

// writeHandoffs writes output.md for phases without a command agent (whose
// stdout already is output.md) and the handoff note into the channel of
// every dependent phase.
func (r *runner) writeHandoffs(job phaseJob, output string) error {
	name := job.phase.Name
	if job.agent.isExec() {
		if err := os.WriteFile(filepath.Join(r.phaseDir(name), "output.md"), []byte(output), 0o644); err != nil {
			return fmt.Errorf("write output of phase %q: %w", name, err)
		}
	}
	dependents := append([]string(nil), r.dependents[name]...)
	sort.Strings(dependents)
	for _, to := range dependents {
		dir := filepath.Join(r.p.cliqDir, "channels", name+"--"+to)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create channel %s--%s: %w", name, to, err)
		}
		if err := os.WriteFile(filepath.Join(dir, handoffFile), []byte(output), 0o644); err != nil {
			return fmt.Errorf("write handoff %s--%s: %w", name, to, err)
		}
	}
	return nil
}
