package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"cliq/events"
	"cliq/pipeline"
	"cliq/settings"
	"cliq/store"
	"cliq/teams"
)

const runUsage = `
Usage: cliq run [--headless] [--agent NAME] [--grace DURATION] [--settings JSON]

Runs the assembled team's pipeline on the requirement, in the foreground,
and prints each phase as it starts and finishes, every gate verdict and the
outcome. Ctrl+C (SIGINT) or SIGTERM cancels the run and stops every process
it started.

Exit codes:
  0  completed
  1  failed, or the run could not start
  2  usage error
  3  escalated (a gate asked for a human, or ran out of iterations)
  4  cancelled

Examples:
  cliq run
  cliq run --headless > run.log
`

func runRun(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "run", runUsage)
	headless := fs.Bool("headless", false, "print plain timestamped lines with no color or symbols (the server uses this)")
	agent := fs.String("agent", "", "use agent `NAME` for phases that name none, for this run only")
	grace := fs.Duration("grace", 10*time.Second, "how long a cancelled phase gets between SIGTERM and SIGKILL")
	runID := fs.String("run-id", "", "use `ID` as the run id instead of a new one (the server sets it)")
	patch := fs.String("settings", "", "a settings patch as `JSON`, merged over the resolved settings for this run only")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("run takes no arguments, got %q; set the requirement with 'cliq req'", pos[0])
	}
	if *grace <= 0 {
		return usagef("--grace %s must be positive, for example 10s", *grace)
	}
	project, err := findProject(env.Dir)
	if err != nil {
		return err
	}
	home, global, err := loadGlobal()
	if err != nil {
		return err
	}
	resolved, err := settingsForRun(home, project, *patch, *agent)
	if err != nil {
		return err
	}

	history := openHistory(ctx, env, home, global)
	if history != nil {
		defer history.Close()
	}
	progress := &progressPrinter{w: env.Stdout, plain: *headless || !isTerminal(env.Stdout)}
	p, err := pipeline.Open(project, pipeline.Options{
		RunID:    *runID,
		Settings: resolved,
		ResolveTeam: func(base, ref string) (string, error) {
			return teams.Resolve(home, base, ref)
		},
		Grace:  *grace,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		OnEvent: func(e events.Event) {
			progress.print(e)
			history.record(e)
		},
	})
	if err != nil {
		return explainOpenError(err, project)
	}
	state, err := p.Run(ctx)
	if err != nil {
		return err
	}
	code := pipeline.ExitCode(state.Status)
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}

// settingsForRun returns the settings of one run: the project's resolved
// settings, then the --settings patch, then --agent, validated together.
func settingsForRun(home, project, patch, agent string) (settings.Map, error) {
	resolved, err := settings.Resolve(home, project)
	if err != nil {
		return nil, err
	}
	if patch != "" {
		var m settings.Map
		if err := json.Unmarshal([]byte(patch), &m); err != nil {
			return nil, usagef("--settings is not a JSON object: %v", err)
		}
		resolved = settings.Merge(resolved, m)
	}
	if agent != "" {
		resolved = settings.Merge(resolved, settings.Map{"default_agent": agent})
	}
	if err := settings.Validate(resolved); err != nil {
		return nil, fmt.Errorf("invalid settings for this run: %w; fix them with 'cliq settings KEY VALUE' (add --global for %s)", err, settings.GlobalPath(home))
	}
	return resolved, nil
}

func explainOpenError(err error, project string) error {
	switch {
	case errors.Is(err, pipeline.ErrNotAssembled):
		return fmt.Errorf("%w; run 'cliq assemble TEAM' in %s first", err, project)
	case errors.Is(err, pipeline.ErrNoRequirement):
		return fmt.Errorf("%w; run 'cliq req -m TEXT' in %s first", err, project)
	case errors.Is(err, pipeline.ErrActiveRun):
		return fmt.Errorf("%w; wait for it, or cancel it (Ctrl+C in its terminal, or 'cliq job cancel')", err)
	}
	return err
}

// history records the run in the database's run history. A database that
// cannot be opened only costs the history, never the run.
type history struct {
	db     *store.DB
	stderr io.Writer
	run    store.Run
	warned bool // a failed write was reported; later ones are not
}

func openHistory(ctx context.Context, env *Env, home string, global settings.Map) *history {
	db, err := openStore(ctx, home, global, nil)
	if err != nil {
		fmt.Fprintf(env.Stderr, "cliq: warning: run history not recorded: %v\n", err)
		return nil
	}
	return &history{db: db, stderr: env.Stderr}
}

func (h *history) record(e events.Event) {
	if h == nil || e.Depth != 0 {
		return
	}
	switch e.Type {
	case events.PipelineStart:
		team, _ := e.Data["team"].(string)
		h.run = store.Run{RunID: e.RunID, InstanceID: e.InstanceID, Team: team, Status: pipeline.StatusRunning, StartedAt: e.Time}
	case events.PipelineDone:
		h.finish(e.Time, pipeline.StatusCompleted, "")
	case events.PipelineError:
		status, _ := e.Data["status"].(string)
		reason, _ := e.Data["reason"].(string)
		h.finish(e.Time, status, reason)
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := h.db.PutRun(ctx, h.run)
	if err == nil || h.warned {
		return
	}
	h.warned = true
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(h.stderr, "cliq: warning: run history not recorded: instance %s is not in the registry; run 'cliq init' to register it\n", e.InstanceID)
		return
	}
	fmt.Fprintf(h.stderr, "cliq: warning: run history not recorded: %v\n", err)
}

func (h *history) finish(at time.Time, status, reason string) {
	h.run.Status = status
	h.run.Reason = reason
	h.run.FinishedAt = &at
}

func (h *history) Close() { h.db.Close() }

// progressPrinter turns events into one readable line each.
type progressPrinter struct {
	w     io.Writer
	plain bool
}

func (p *progressPrinter) print(e events.Event) {
	line := describeEvent(e)
	if line == "" {
		return
	}
	indent := strings.Repeat("  ", e.Depth)
	if p.plain {
		fmt.Fprintf(p.w, "%s %s%s\n", e.Time.UTC().Format("15:04:05.000"), indent, line)
		return
	}
	fmt.Fprintf(p.w, "%s%s%s\x1b[0m\n", colorFor(e.Type), indent, line)
}

// describeEvent returns the readable form of an event.
func describeEvent(e events.Event) string {
	d := e.Data
	switch e.Type {
	case events.PipelineStart:
		if e.Depth > 0 {
			return fmt.Sprintf("sub-team %v of phase %s started: phases %v", d["team"], e.Phase, joinAny(d["phases"]))
		}
		return fmt.Sprintf("run %s started: team %v, phases %v", e.RunID, d["team"], joinAny(d["phases"]))
	case events.PhaseStart:
		if d["type"] == "team" {
			return fmt.Sprintf("phase %s started (sub-team %v, iteration %v)", e.Phase, d["team"], d["iteration"])
		}
		return fmt.Sprintf("phase %s started (%v, agent %v, iteration %v)", e.Phase, d["type"], d["agent"], d["iteration"])
	case events.PhaseDone:
		status, _ := d["status"].(string)
		if status == "" || status == pipeline.PhaseDone {
			return fmt.Sprintf("phase %s done in %s", e.Phase, millis(d["duration_ms"]))
		}
		return fmt.Sprintf("phase %s ended %s after %s", e.Phase, status, millis(d["duration_ms"]))
	case events.PhaseError:
		if code, ok := d["exit_code"]; ok {
			return fmt.Sprintf("phase %s failed: %v (exit code %v)", e.Phase, d["error"], code)
		}
		return fmt.Sprintf("phase %s failed: %v", e.Phase, d["error"])
	case events.GateVerdict:
		line := fmt.Sprintf("gate %s verdict %v (iteration %v)", e.Phase, d["verdict"], d["iteration"])
		if t, ok := d["target"]; ok && t != "" {
			line += fmt.Sprintf(" -> %v", t)
		}
		if r, ok := d["reason"].(string); ok && r != "" {
			line += ": " + firstLine(r)
		}
		return line
	case events.GateIteration:
		return fmt.Sprintf("gate %s iteration %v of %v", e.Phase, d["iteration"], d["max_iterations"])
	case events.PipelineDone:
		return fmt.Sprintf("%s completed in %s", runLabel(e), millis(d["duration_ms"]))
	case events.PipelineError:
		line := fmt.Sprintf("%s %v: %v", runLabel(e), d["status"], d["reason"])
		if ph, ok := d["phase"].(string); ok && ph != "" {
			line += fmt.Sprintf(" (phase %s)", ph)
		}
		return line
	}
	return ""
}

// runLabel names the run of a pipeline-level event: the run itself, or the
// sub-team of a team phase for relayed events.
func runLabel(e events.Event) string {
	if e.Depth > 0 {
		return "sub-team of phase " + e.Phase
	}
	return "run " + e.RunID
}

func colorFor(eventType string) string {
	switch eventType {
	case events.PhaseDone, events.PipelineDone:
		return "\x1b[32m"
	case events.PhaseError, events.PipelineError:
		return "\x1b[31m"
	case events.GateVerdict, events.GateIteration:
		return "\x1b[33m"
	}
	return "\x1b[36m"
}

func millis(v any) string {
	f, ok := v.(float64)
	if !ok {
		if i, iok := v.(int64); iok {
			f = float64(i)
		} else if i, iok := v.(int); iok {
			f = float64(i)
		}
	}
	return (time.Duration(f) * time.Millisecond).String()
}

func joinAny(v any) string {
	switch list := v.(type) {
	case []string:
		return strings.Join(list, ", ")
	case []any:
		parts := make([]string, len(list))
		for i, x := range list {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// printState writes a run's state as a short report.
func printState(w io.Writer, s *pipeline.RunState) {
	if s.Status == pipeline.StatusIdle {
		fmt.Fprint(w, "No run yet (status idle). Start one with 'cliq run'.\n")
		return
	}
	fmt.Fprintf(w, "Run:      %s\nStatus:   %s\nTeam:     %s\nStarted:  %s\n", s.RunID, s.Status, s.Team, s.StartedAt.Local().Format(time.RFC3339))
	if s.FinishedAt != nil {
		fmt.Fprintf(w, "Finished: %s (%s)\n", s.FinishedAt.Local().Format(time.RFC3339), s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond))
	}
	if s.Reason != "" {
		fmt.Fprintf(w, "Reason:   %s\n", s.Reason)
	}
	fmt.Fprint(w, "Phases:\n")
	printPhases(w, s.Phases, "  ")
}

func printPhases(w io.Writer, phases []pipeline.PhaseState, indent string) {
	for _, ph := range phases {
		extra := ""
		if ph.Type == pipeline.TypeGate {
			extra = fmt.Sprintf(" iteration %d/%d", ph.Iteration, ph.MaxIterations)
			if ph.Verdict != "" {
				extra += " verdict " + ph.Verdict
			}
		}
		if ph.Error != "" {
			extra += " error: " + firstLine(ph.Error)
		}
		agent := ph.Agent
		if ph.Type == pipeline.TypeTeam {
			agent = "(team)"
		}
		fmt.Fprintf(w, "%s%-20s %-10s %s%s\n", indent, ph.Name, ph.Status, agent, extra)
		printPhases(w, ph.Phases, indent+"  ")
	}
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
