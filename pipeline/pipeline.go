// Package pipeline is the cliq engine: team definitions, the DAG scheduler,
// agents, gates, run state on disk and the orchestrator's event server.
package pipeline

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"cliq/events"
	"cliq/settings"
)

// Errors returned by Open and Run, besides ErrNotAssembled.
var (
	// ErrActiveRun means another run of the same project is still going.
	ErrActiveRun = errors.New("a run is already active in this project")
	// ErrNoRequirement means the project has no or an empty
	// .cliq/req_spec.md.
	ErrNoRequirement = errors.New("no requirement set")
)

// runIDPattern matches the run ids that Options.RunID accepts.
var runIDPattern = regexp.MustCompile(`^run_[A-Za-z0-9_-]{1,60}$`)

// Options configures a Pipeline. The zero value is usable.
type Options struct {
	// InstanceID names the project in events; empty reads .cliq/cliq.id.
	InstanceID string
	// RunID is the id of the run, for a caller that announces it before
	// the run starts; empty generates one. It must be "run_" followed by
	// letters, digits, '_' or '-' (at most 64 characters in all).
	RunID string
	// Settings are the resolved settings: agents.<name>.command and
	// default_agent are read from them.
	Settings settings.Map
	// Grace is the time between SIGTERM and SIGKILL when a phase's process
	// group is stopped; zero means DefaultGrace.
	Grace time.Duration
	// Stdout receives readable progress lines; nil prints nothing.
	Stdout io.Writer
	// Logger receives structured log lines; nil discards them.
	Logger *slog.Logger
	// OnEvent, when set, is called for every event in seq order, after the
	// event was written to events.jsonl. That includes the events relayed
	// from the nested runs of team phases, which have a depth above 0. It runs while the event log is
	// locked, so it must return quickly and must not call back into the
	// Pipeline.
	OnEvent func(events.Event)
	// ResolveTeam finds the sub-team that a team phase names; nil uses
	// DefaultTeamResolver. The CLI sets it to the team library's lookup,
	// which also finds the built-in teams.
	ResolveTeam TeamResolver
}

// Pipeline runs one project's assembled team against its requirement. It is
// the one entry point for cliq run, server jobs and A2A tasks.
type Pipeline struct {
	dir         string // absolute project directory
	cliqDir     string // dir/.cliq
	instanceID  string
	opts        Options
	team        *Team
	requirement string
	inputs      map[string]string
	agents      map[string]agentSpec // phase name -> resolved agent
	subTeams    map[string]*subTeam  // team phase name -> its sub-team
	maxDepth    int                  // the setting teams.max_depth
	// depth is 0 for a run that cliq started, and one more for each team
	// phase between it and that run.
	depth int
	// onState, when set, receives the run state after every write of
	// run.json, so that the parent of a nested run can show its phases.
	onState func(RunState)
}

// Open prepares a run of the project at projectDir. It checks that a team
// is assembled (ErrNotAssembled), that a requirement is set
// (ErrNoRequirement) and that no run is active (ErrActiveRun). It then
// loads the team and resolves the agent of every phase, so a definition or
// settings error is reported before anything starts.
func Open(projectDir string, opts Options) (*Pipeline, error) {
	dir, err := filepath.Abs(projectDir)
	if err != nil {
		return nil, fmt.Errorf("resolve project directory %q: %w", projectDir, err)
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Logger = opts.Logger.With("component", "pipeline")
	if opts.RunID != "" && !runIDPattern.MatchString(opts.RunID) {
		return nil, fmt.Errorf("invalid run id %q: use run_ followed by letters, digits, '_' or '-', "+
			"at most 64 characters, or leave it empty to generate one", opts.RunID)
	}
	p := &Pipeline{dir: dir, cliqDir: filepath.Join(dir, ".cliq"), opts: opts}

	if err := p.checkProject(); err != nil {
		return nil, err
	}
	if err := p.load(); err != nil {
		return nil, err
	}
	return p, nil
}

// Dir returns the absolute project directory.
func (p *Pipeline) Dir() string { return p.dir }

// InstanceID returns the instance id that the run's events carry.
func (p *Pipeline) InstanceID() string { return p.instanceID }

// Team returns the loaded team definition.
func (p *Pipeline) Team() *Team { return p.team }

// checkProject verifies the files a run needs and that no run is active.
func (p *Pipeline) checkProject() error {
	teamFile := filepath.Join(p.cliqDir, "team.yml")
	if _, err := os.Stat(teamFile); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s does not exist", ErrNotAssembled, teamFile)
	} else if err != nil {
		return fmt.Errorf("check team: %w", err)
	}

	reqFile := filepath.Join(p.cliqDir, "req_spec.md")
	req, err := os.ReadFile(reqFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s does not exist", ErrNoRequirement, reqFile)
	}
	if err != nil {
		return fmt.Errorf("read requirement: %w", err)
	}
	if strings.TrimSpace(string(req)) == "" {
		return fmt.Errorf("%w: %s is empty", ErrNoRequirement, reqFile)
	}
	p.requirement = strings.TrimSpace(string(req))

	st, err := ReadState(p.dir)
	if err != nil {
		return err
	}
	if st.Status == StatusRunning && processAlive(st.PID) {
		return fmt.Errorf("%w: run %s (pid %d) is running", ErrActiveRun, st.RunID, st.PID)
	}
	return nil
}

// load reads the instance id, the team and the inputs, and resolves every
// phase's agent.
func (p *Pipeline) load() error {
	p.instanceID = p.opts.InstanceID
	if p.instanceID == "" {
		data, err := os.ReadFile(filepath.Join(p.cliqDir, "cliq.id"))
		if err != nil {
			return fmt.Errorf("read instance id: %w (run cliq init in %s)", err, p.dir)
		}
		p.instanceID = strings.TrimSpace(string(data))
	}

	team, err := LoadTeam(p.cliqDir)
	if err != nil {
		return err
	}
	p.team = team

	inputs, err := ReadInputs(p.dir)
	if err != nil {
		return err
	}
	p.inputs = inputs

	agents, err := resolveAgents(team, p.opts.Settings)
	if err != nil {
		return err
	}
	p.agents = agents

	if p.maxDepth, err = maxDepth(p.opts.Settings); err != nil {
		return err
	}
	resolve := p.opts.ResolveTeam
	if resolve == nil {
		resolve = DefaultTeamResolver
	}
	p.subTeams, err = loadSubTeams(team, inputs, []string{team.Name}, p.opts.Settings, resolve)
	return err
}

// ExitCode maps a final run status to the exit code of cliq run: completed
// 0, failed 1, escalated 3, cancelled 4. Any other status is 1.
func ExitCode(status string) int {
	switch status {
	case StatusCompleted:
		return 0
	case StatusEscalated:
		return 3
	case StatusCancelled:
		return 4
	default:
		return 1
	}
}
