package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"cliq/settings"
)

// DefaultMaxDepth is the nesting limit of team phases when the setting
// teams.max_depth is not set: a run may start sub-teams three levels deep.
const DefaultMaxDepth = 3

// SubTeamsDirName is the directory, inside a team directory, that holds
// copies of the sub-teams its team phases name by path. Assemble fills it,
// so an assembled team does not depend on the directory it came from.
const SubTeamsDirName = "subteams"

var (
	// ErrTeamCycle means a team includes itself through its team phases,
	// directly or through other teams.
	ErrTeamCycle = errors.New("team includes itself")
	// ErrTooDeep means a team phase would nest sub-teams deeper than the
	// setting teams.max_depth allows.
	ErrTooDeep = errors.New("sub-teams nested too deep")
)

// TeamResolver returns the directory of the team that ref names. base is
// the directory of the team.yml that contains the reference, so that a
// relative path is read from there. The teams package's Resolve fits:
//
//	func(base, ref string) (string, error) { return teams.Resolve(home, base, ref) }
type TeamResolver func(base, ref string) (string, error)

// subTeam is the sub-team of one team phase, loaded when the pipeline is
// opened.
type subTeam struct {
	dir      string // the team's source directory
	team     *Team
	inputs   map[string]string // the phase's inputs, with the parent's substituted
	agents   map[string]agentSpec
	children map[string]*subTeam // by team phase name
}

// CheckSubTeams loads the sub-team of every team phase of t, and theirs in
// turn, and returns an error when a team includes itself, directly or
// through others. The error wraps ErrTeamCycle and names the chain, such
// as "@a/x -> @a/y -> @a/x". A sub-team that cannot be resolved or loaded
// is an error naming the phase. A nil resolve uses DefaultTeamResolver.
func CheckSubTeams(t *Team, resolve TeamResolver) error {
	if resolve == nil {
		resolve = DefaultTeamResolver
	}
	return walkSubTeams(t, []string{t.Name}, resolve, func(*Phase, *Team, string) error { return nil })
}

// DefaultTeamResolver resolves ref with ResolveTeamRef, with CLIQ_HOME
// from settings.Home and relative paths read from base.
func DefaultTeamResolver(base, ref string) (string, error) {
	home, err := settings.Home()
	if err != nil {
		return "", err
	}
	return ResolveTeamRef(home, base, ref)
}

// walkSubTeams calls visit for every team phase of t with the loaded
// sub-team and its directory, then walks the sub-team. chain holds the
// names of the teams from the root to t.
func walkSubTeams(t *Team, chain []string, resolve TeamResolver,
	visit func(ph *Phase, sub *Team, dir string) error) error {
	for i := range t.Workflow.Phases {
		ph := &t.Workflow.Phases[i]
		if ph.Type != TypeTeam {
			continue
		}
		sub, dir, err := loadSubTeam(t, ph, chain, resolve)
		if err != nil {
			return err
		}
		if err := visit(ph, sub, dir); err != nil {
			return err
		}
		if err := walkSubTeams(sub, append(chain[:len(chain):len(chain)], sub.Name), resolve, visit); err != nil {
			return err
		}
	}
	return nil
}

// loadSubTeam resolves and loads the team of phase ph of t, and rejects it
// when its name is already in chain.
func loadSubTeam(t *Team, ph *Phase, chain []string, resolve TeamResolver) (*Team, string, error) {
	dir, err := subTeamDir(t.Dir, ph, resolve)
	if err != nil {
		return nil, "", fmt.Errorf("team %s: phase %q: team %q: %w", t.Name, ph.Name, ph.Team, err)
	}
	sub, err := LoadTeam(dir)
	if err != nil {
		return nil, "", fmt.Errorf("team %s: phase %q: sub-team %q: %w", t.Name, ph.Name, ph.Team, err)
	}
	for _, name := range chain {
		if name == sub.Name {
			path := strings.Join(append(append([]string(nil), chain...), sub.Name), " -> ")
			return nil, "", fmt.Errorf("%w: %s (phase %q of %s runs %s; remove the team phase or name another team)",
				ErrTeamCycle, path, ph.Name, t.Name, sub.Name)
		}
	}
	return sub, dir, nil
}

// subTeamDir returns the directory of the team that phase ph of the team
// in base names. A path reference is first looked up in the copy that
// Assemble made (base/subteams/<phase>), then resolved from base.
func subTeamDir(base string, ph *Phase, resolve TeamResolver) (string, error) {
	if isPathTeamRef(ph.Team) {
		vendored := filepath.Join(base, SubTeamsDirName, ph.Name)
		if isTeamDir(vendored) {
			return vendored, nil
		}
	}
	return resolve(base, ph.Team)
}

// isPathTeamRef reports whether ref names a team by directory path rather
// than by name: it is absolute, starts with '.', or contains a slash
// without starting with '@'.
func isPathTeamRef(ref string) bool {
	if strings.HasPrefix(ref, "@") {
		return false
	}
	return filepath.IsAbs(ref) || strings.HasPrefix(ref, ".") || strings.ContainsAny(ref, `/\`)
}

// loadSubTeams loads the sub-team of every team phase of t, recursively.
// inputs are the input values of t, which are substituted into each team
// phase's inputs. Those are checked against the inputs the sub-team
// declares, and the agents of the sub-team's phases are resolved, so these
// errors surface before the run starts.
func loadSubTeams(t *Team, inputs map[string]string, chain []string, s settings.Map,
	resolve TeamResolver) (map[string]*subTeam, error) {
	out := map[string]*subTeam{}
	for i := range t.Workflow.Phases {
		ph := &t.Workflow.Phases[i]
		if ph.Type != TypeTeam {
			continue
		}
		team, dir, err := loadSubTeam(t, ph, chain, resolve)
		if err != nil {
			return nil, err
		}
		sub := &subTeam{dir: dir, team: team, inputs: map[string]string{}}
		for name, value := range ph.TeamInputs {
			sub.inputs[name] = Substitute(value, inputs)
		}
		if err := checkSubTeamInputs(t, ph, team, sub.inputs); err != nil {
			return nil, err
		}
		if sub.agents, err = resolveAgents(team, s); err != nil {
			return nil, fmt.Errorf("team %s: phase %q: sub-team %s: %w", t.Name, ph.Name, team.Name, err)
		}
		childChain := append(chain[:len(chain):len(chain)], team.Name)
		if sub.children, err = loadSubTeams(team, sub.inputs, childChain, s, resolve); err != nil {
			return nil, err
		}
		out[ph.Name] = sub
	}
	return out, nil
}

// checkSubTeamInputs reports the inputs of sub-team sub that phase ph of t
// leaves out or leaves empty, and those it passes but sub does not declare.
func checkSubTeamInputs(t *Team, ph *Phase, sub *Team, inputs map[string]string) error {
	declared := map[string]bool{}
	var problems []string
	for _, in := range sub.Inputs {
		declared[in.Name] = true
		if strings.TrimSpace(inputs[in.Name]) == "" {
			problems = append(problems, fmt.Sprintf("input %q is missing or empty (set it under the phase's inputs:)",
				in.Name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		if !declared[name] {
			problems = append(problems, fmt.Sprintf("unknown input %q (sub-team %s declares: %s)",
				name, sub.Name, declaredList(sub)))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: team %s: phase %q: sub-team %s: %s", ErrInvalidTeam, t.Name, ph.Name, sub.Name,
			strings.Join(problems, "; "))
	}
	return nil
}

// maxDepth returns the setting teams.max_depth, or DefaultMaxDepth when it
// is not set. A value that is not a whole number of 1 or more is an error.
func maxDepth(s settings.Map) (int, error) {
	v, ok := settings.Lookup(s, "teams.max_depth")
	if !ok || v == nil {
		return DefaultMaxDepth, nil
	}
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case int:
		n = float64(x)
	case int64:
		n = float64(x)
	default:
		return 0, fmt.Errorf("setting teams.max_depth is %v (%T): set a whole number of 1 or more, e.g. 3", v, v)
	}
	if n < 1 || n != math.Trunc(n) || n > 1000 {
		return 0, fmt.Errorf("setting teams.max_depth is %v: set a whole number from 1 to 1000, e.g. 3", v)
	}
	return int(n), nil
}

// nestedPhaseName returns the name of a sub-team's phase as the parent
// reports it: "<team phase>.<phase>", or the team phase's name for events
// of the sub-team's run as a whole.
func nestedPhaseName(teamPhase, phase string) string {
	if phase == "" {
		return teamPhase
	}
	return teamPhase + "." + phase
}

// nestPhases returns a copy of a sub-team's phase states as the parent's
// run.json shows them under the team phase: names and depends_on prefixed
// with the team phase's name and depth raised by one, at every level.
func nestPhases(teamPhase string, phases []PhaseState) []PhaseState {
	if len(phases) == 0 {
		return nil
	}
	out := make([]PhaseState, len(phases))
	for i, ps := range phases {
		ps.Name = nestedPhaseName(teamPhase, ps.Name)
		deps := make([]string, len(ps.DependsOn))
		for j, dep := range ps.DependsOn {
			deps[j] = nestedPhaseName(teamPhase, dep)
		}
		ps.DependsOn = deps
		ps.Depth++
		ps.Phases = nestPhases(teamPhase, ps.Phases)
		out[i] = ps
	}
	return out
}
