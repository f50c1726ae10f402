package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"cliq/events"
	"cliq/settings"
)

// nestedRunsDirName is the directory in .cliq that holds the state of the
// nested runs of team phases: teams/<phase>/ is a .cliq directory of its
// own, with team.yml, roles, req_spec.md, inputs.json, run.json,
// events.jsonl, orchestrator.log, files, channels and signals/_ws.json.
const nestedRunsDirName = "teams"

// runTeamPhase runs the sub-team of a team phase as a nested pipeline in
// the same project directory and maps the nested run's outcome onto the
// phase. Every event of the nested run is relayed into this run's events
// as it happens, and its phases appear under the team phase in run.json.
func (r *runner) runTeamPhase(ctx context.Context, job phaseJob) phaseResult {
	name := job.phase.Name
	if r.p.depth >= r.p.maxDepth {
		return phaseResult{Status: StatusFailed, Reason: fmt.Sprintf(
			"%v: the sub-team would run at depth %d, but the setting teams.max_depth is %d "+
				"(raise teams.max_depth, or include fewer levels of teams)",
			ErrTooDeep, r.p.depth+1, r.p.maxDepth)}
	}
	sub := r.p.subTeams[name]
	if sub == nil {
		return phaseResult{Status: StatusFailed, Reason: fmt.Sprintf("phase %q has no loaded sub-team", name)}
	}

	child, err := r.prepareNested(job, sub)
	if err != nil {
		return phaseResult{Status: StatusFailed, Reason: err.Error()}
	}
	st, err := child.Run(ctx)
	if err != nil {
		return phaseResult{Status: StatusFailed, Reason: fmt.Sprintf("sub-team %s could not start: %v", sub.team.Name, err)}
	}
	return r.nestedResult(ctx, job, child, st)
}

// prepareNested writes the nested run's directory, .cliq/teams/<phase>,
// and returns the nested Pipeline. The directory gets a copy of the
// sub-team (team.yml and roles), the requirement (the team phase's role
// with the upstream handoffs) and the phase's inputs. A previous nested
// run of the same phase, from an earlier iteration, is removed first.
func (r *runner) prepareNested(job phaseJob, sub *subTeam) (*Pipeline, error) {
	name := job.phase.Name
	stateDir := filepath.Join(r.p.cliqDir, nestedRunsDirName, name)
	if err := os.RemoveAll(stateDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("clear nested run directory: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create nested run directory: %w", err)
	}
	if err := stageTeam(stateDir, sub.dir); err != nil {
		return nil, fmt.Errorf("copy sub-team %s: %w", sub.team.Name, err)
	}

	requirement, err := r.nestedRequirement(job)
	if err != nil {
		return nil, err
	}
	if err := writeNestedInputs(stateDir, requirement, sub.inputs); err != nil {
		return nil, err
	}

	team := *sub.team
	team.Dir = stateDir
	return &Pipeline{
		dir:         r.p.dir,
		cliqDir:     stateDir,
		instanceID:  r.p.instanceID,
		opts:        r.nestedOptions(name),
		team:        &team,
		requirement: requirement,
		inputs:      sub.inputs,
		agents:      sub.agents,
		subTeams:    sub.children,
		maxDepth:    r.p.maxDepth,
		depth:       r.p.depth + 1,
		onState: func(st RunState) {
			nested := nestPhases(name, st.Phases)
			r.savePhase(name, func(ps *PhaseState) { ps.Phases = nested })
		},
	}, nil
}

// nestedOptions returns the options of the nested run of team phase name.
// Its events are relayed into this run's event log, and its readable log
// lines also go to this run's orchestrator.log, prefixed with the phase.
func (r *runner) nestedOptions(name string) Options {
	return Options{
		InstanceID:  r.p.instanceID,
		RunID:       r.runID,
		Settings:    r.p.opts.Settings,
		Grace:       r.p.opts.Grace,
		Stdout:      prefixWriter{text: r.text, prefix: name},
		Logger:      r.p.opts.Logger.With("team_phase", name, "depth", r.p.depth+1),
		OnEvent:     func(e events.Event) { r.events.relay(e, name) },
		ResolveTeam: r.p.opts.ResolveTeam,
	}
}

// nestedRequirement returns the sub-team's requirement: the team phase's
// role with the inputs substituted, then the handoffs of the phases before
// it and, on a re-run, the feedback of the gates that routed work back.
func (r *runner) nestedRequirement(job phaseJob) (string, error) {
	role, err := r.readRole(job.phase)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(role) == "" {
		return "", fmt.Errorf("role %s of team phase %q is empty: it becomes the sub-team's requirement, "+
			"so describe the sub-team's task there", job.phase.Role+".md", job.phase.Name)
	}
	handoffs, err := readHandoffs(r.p.cliqDir, job.phase)
	if err != nil {
		return "", err
	}

	var b strings.Builder
	b.WriteString(strings.TrimSpace(role) + "\n")
	if len(handoffs) > 0 {
		b.WriteString("\n## Context from Prior Phases\n")
		for _, h := range handoffs {
			section(&b, "### From "+h.From, h.Text)
		}
	}
	for _, f := range job.feedback {
		section(&b, fmt.Sprintf("## Feedback from gate %s (iteration %d)", f.Gate, f.Iteration), f.Text)
	}
	return b.String(), nil
}

// writeNestedInputs writes req_spec.md and inputs.json into the nested
// run's directory, with the file modes that cliq req uses.
func writeNestedInputs(stateDir, requirement string, inputs map[string]string) error {
	data, err := json.MarshalIndent(inputs, "", "  ")
	if err != nil {
		return fmt.Errorf("write sub-team inputs: %w", err)
	}
	if err := settings.WriteAtomic(filepath.Join(stateDir, InputsFileName), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write sub-team inputs: %w", err)
	}
	if err := settings.WriteAtomic(filepath.Join(stateDir, RequirementFileName), []byte(requirement), 0o644); err != nil {
		return fmt.Errorf("write sub-team requirement: %w", err)
	}
	return nil
}

// nestedResult maps the final state of the nested run onto the team
// phase: completed is done, escalated and failed carry the nested run's
// reason, which names its phase to blame, and cancelled stays cancelled
// when this run cancelled it.
func (r *runner) nestedResult(ctx context.Context, job phaseJob, child *Pipeline, st *RunState) phaseResult {
	switch st.Status {
	case StatusCompleted:
		return phaseResult{Status: PhaseDone, Output: nestedOutput(child, job.phase.Name)}
	case StatusEscalated:
		return phaseResult{Status: StatusEscalated,
			Reason: fmt.Sprintf("sub-team %s escalated: %s", child.team.Name, st.Reason)}
	case StatusCancelled:
		if ctx.Err() != nil {
			return phaseResult{Status: StatusCancelled}
		}
	}
	return phaseResult{Status: StatusFailed,
		Reason: fmt.Sprintf("sub-team %s %s: %s", child.team.Name, st.Status, st.Reason)}
}

// nestedOutput returns the handoff of a completed team phase: a line
// naming the sub-team, then the output of each of its last phases, the
// ones that no other phase depends on.
func nestedOutput(child *Pipeline, teamPhase string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Sub-team %s of phase %s completed.\n", child.team.Name, teamPhase)

	needed := map[string]bool{}
	for _, ph := range child.team.Workflow.Phases {
		for _, dep := range ph.DependsOn {
			needed[dep] = true
		}
	}
	for _, name := range child.team.Order() {
		if needed[name] {
			continue
		}
		data, err := os.ReadFile(filepath.Join(child.cliqDir, "files", name, "output.md"))
		if err != nil {
			continue // a skipped phase leaves no output
		}
		section(&b, "### From "+nestedPhaseName(teamPhase, name), string(data))
	}
	return b.String()
}

// prefixWriter writes each line it receives to a run's orchestrator.log,
// prefixed with the name of the team phase whose nested run produced it.
type prefixWriter struct {
	text   *textLog
	prefix string
}

// Write logs every line of b. It returns no error, because textLog
// ignores its write errors.
func (w prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.text.printf("%s: %s", w.prefix, line)
	}
	return len(b), nil
}
