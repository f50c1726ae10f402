package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

var (
	// teamNameRE matches a scoped team name such as @cliq/hello-world.
	teamNameRE = regexp.MustCompile(`^@[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)
	// identRE matches names that become path components or settings keys:
	// phase, role, agent and command names. Dots are excluded because they
	// separate sub-team phase names in events.
	identRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	// inputNameRE matches an input name usable in $(inputs.name).
	inputNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
)

// maxNameLen bounds phase, role and agent names, which become file names.
const maxNameLen = 64

// Validate checks a team and returns every problem found, or nil. It
// accepts a normalized team (as LoadTeam and ParseTeam return) or a raw
// one. When rolesDir is not empty, every phase that needs a role must have
// rolesDir/<role>.md, and role files count as places that reference inputs.
// When rolesDir is empty, role files are not read, so an input that only
// the roles could reference is not reported as unused.
func (t *Team) Validate(rolesDir string) []FieldError {
	c := *t
	c.Workflow.Phases = slices.Clone(t.Workflow.Phases)
	c.normalize()

	v := &validator{team: &c, rolesDir: rolesDir, roles: map[string]string{}}
	v.checkHeader()
	v.checkPhases()
	if len(v.errs) == 0 {
		v.checkCycles()
	}
	v.checkRoutes()
	v.checkRoleFiles()
	v.checkInputs()
	return v.errs
}

// validator collects the problems of one team.
type validator struct {
	team     *Team
	rolesDir string
	// roles maps a role name to the content of its file, for the input
	// check.
	roles map[string]string
	errs  []FieldError
}

// add records a problem at line of team.yml (0 when unknown).
func (v *validator) add(line int, phase, field, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Line: line, Phase: phase, Field: field, Message: fmt.Sprintf(format, args...)})
}

// checkHeader checks the name, the inputs and that there are phases.
func (v *validator) checkHeader() {
	t := v.team
	switch {
	case strings.TrimSpace(t.Name) == "":
		v.add(t.line("name"), "", "name", `missing (set name: "@scope/name", quoted)`)
	case !teamNameRE.MatchString(t.Name):
		v.add(t.line("name"), "", "name", `invalid value %q (want "@scope/name" with letters, digits, '.', '_' or '-')`, t.Name)
	}
	if len(t.Workflow.Phases) == 0 {
		v.add(t.phasesLine(), "", "workflow.phases", "missing (a team needs at least one phase)")
	}

	seen := map[string]bool{}
	for i, in := range t.Inputs {
		field := fmt.Sprintf("inputs[%d].name", i)
		line := t.inputLine(i, "name")
		switch {
		case in.Name == "":
			v.add(line, "", field, "missing (every input needs a name)")
		case !inputNameRE.MatchString(in.Name):
			v.add(line, "", field, "invalid input name %q (use letters, digits, '_' or '-', starting with a letter)", in.Name)
		case seen[in.Name]:
			v.add(line, "", field, "duplicate input %q (declare each input once)", in.Name)
		}
		seen[in.Name] = true
	}
	for i, out := range t.Outputs {
		if out.Name == "" {
			v.add(t.outputLine(i, "name"), "", fmt.Sprintf("outputs[%d].name", i), "missing (every output needs a name)")
		}
	}
}

// checkPhases checks each phase on its own and its depends_on names.
func (v *validator) checkPhases() {
	seen := map[string]bool{}
	for i := range v.team.Workflow.Phases {
		p := &v.team.Workflow.Phases[i]
		if !v.checkPhaseName(i, p, seen) {
			continue
		}
		v.checkType(p)
		v.checkDependsOn(p)
		v.checkCommands(p)
		v.checkKindFields(p)
	}
}

// checkPhaseName reports a missing, invalid or duplicate name and returns
// whether the name can be used for further checks.
func (v *validator) checkPhaseName(i int, p *Phase, seen map[string]bool) bool {
	field := fmt.Sprintf("workflow.phases[%d].name", i)
	switch {
	case p.Name == "":
		v.add(p.line("name"), "", field, "missing (every phase needs a unique name)")
		return false
	case !validIdent(p.Name):
		v.add(p.line("name"), "", field, "invalid phase name %q (use letters, digits, '_' or '-', up to %d characters, no '--')",
			p.Name, maxNameLen)
		return false
	case seen[p.Name]:
		v.add(p.line("name"), p.Name, "name", "duplicate phase name (phase names must be unique)")
		return false
	}
	seen[p.Name] = true
	return true
}

// validIdent reports whether name is safe as a path component, a settings
// key and one side of a channel directory name "<from>--<to>".
func validIdent(name string) bool {
	return len(name) <= maxNameLen && identRE.MatchString(name) && !strings.Contains(name, "--")
}

// checkType checks the type, agent and role names.
func (v *validator) checkType(p *Phase) {
	switch p.Type {
	case TypeStandard, TypeGate, TypeTeam:
	case "hug", "pull", "push", "support":
		v.add(p.line("type"), p.Name, "type", "type %q is not supported (use standard, gate or team)", p.Type)
	default:
		v.add(p.line("type"), p.Name, "type", "unknown type %q (use standard, gate, team or exec)", p.Type)
	}
	switch {
	case p.Agent != "" && !validIdent(p.Agent):
		v.add(p.line("agent"), p.Name, "agent", "invalid agent name %q (use letters, digits, '_' or '-')", p.Agent)
	case unbuiltAgents[p.Agent] != "" && p.Type != TypeTeam:
		v.add(p.line("agent"), p.Name, "agent", "agent %q is not available in this version (%s)",
			p.Agent, unbuiltAgents[p.Agent])
	}
	if !validIdent(p.Role) {
		v.add(p.line("role"), p.Name, "role", "invalid role name %q (use letters, digits, '_' or '-'; the file is roles/<role>.md)",
			p.Role)
	}
}

// unbuiltAgents maps the agents of the cliq docs that no command can stand
// in for to what to use instead. Validate rejects them, because a command
// agent configured under the same name would not behave as documented.
var unbuiltAgents = map[string]string{
	"hug": "the human review gate is not built; use a gate with agent exec and commands that check the work, " +
		"or a command agent configured under settings.agents.<name>.command with a different name",
	"mesh": "agent meshes are not built; use a command agent configured under " +
		"settings.agents.<name>.command with a different name, or an exec phase",
	"team": `to run a sub-team, set type: team and team: "@scope/name" instead of an agent`,
}

// connectorAgents lists the agents and connectors of the cliq docs that
// this engine does not build but that a command agent of the same name,
// configured in settings, may stand in for. Validate accepts them because
// it does not see settings. The run reports one that is not configured.
var connectorAgents = map[string]bool{
	"gemini-api": true, "git": true, "jira": true, "slack": true, "email": true,
	"gdrive": true, "s3": true, "curl": true, "confluence": true, "zendesk": true,
	"datadog": true, "hubspot": true,
}

// UnbuiltAgentHint explains an agent name of the cliq docs that this
// engine does not build, such as jira or gdrive, for the message about an
// agent that settings do not configure. It returns "" for other names.
func UnbuiltAgentHint(name string) string {
	if hint := unbuiltAgents[name]; hint != "" {
		return fmt.Sprintf("agent %q is not available in this version (%s)", name, hint)
	}
	if !connectorAgents[name] {
		return ""
	}
	return fmt.Sprintf("agent %q is not available in this version (use an exec phase whose commands call the "+
		"service, or configure a command agent under settings.agents.%s.command)", name, name)
}

// checkDependsOn reports unknown, self and repeated dependencies.
func (v *validator) checkDependsOn(p *Phase) {
	seen := map[string]bool{}
	for i, dep := range p.DependsOn {
		line := p.dependsOnLine(i)
		switch {
		case dep == p.Name:
			v.add(line, p.Name, "depends_on", "phase depends on itself (remove %q from depends_on)", dep)
		case seen[dep]:
			v.add(line, p.Name, "depends_on", "%q is listed twice (list each phase once)", dep)
		default:
			if _, ok := v.team.PhaseByName(dep); !ok {
				names := v.team.PhaseNames()
				v.add(line, p.Name, "depends_on", "unknown phase %q (%sknown phases: %s)",
					dep, didYouMean(dep, names), strings.Join(names, ", "))
			}
		}
		seen[dep] = true
	}
}

// checkCommands checks each command and which phases may have commands.
func (v *validator) checkCommands(p *Phase) {
	names := map[string]bool{}
	for i, c := range p.Commands {
		field := fmt.Sprintf("commands[%d]", i)
		switch {
		case strings.TrimSpace(c.Name) == "":
			v.add(p.commandLine(i, "name"), p.Name, field+".name", "missing (every command needs a name)")
		case strings.ContainsAny(c.Name, `/\`) || c.Name == "." || c.Name == "..":
			v.add(p.commandLine(i, "name"), p.Name, field+".name", "invalid command name %q (it must not contain '/' or '\\')", c.Name)
		case names[c.Name]:
			v.add(p.commandLine(i, "name"), p.Name, field+".name", "duplicate command name %q (names must be unique within a phase)", c.Name)
		}
		names[c.Name] = true
		if strings.TrimSpace(c.Run) == "" {
			v.add(p.commandLine(i, "run"), p.Name, field+".run", "missing (set the shell command to run)")
		}
		if c.Timeout != "" {
			if d, err := time.ParseDuration(c.Timeout); err != nil || d <= 0 {
				v.add(p.commandLine(i, "timeout"), p.Name, field+".timeout", `invalid duration %q (use a positive Go duration such as "30s" or "5m")`,
					c.Timeout)
			}
		}
		if c.EscalateOnFail && p.Type == TypeGate {
			v.add(p.commandLine(i, "escalate_on_fail"), p.Name, field+".escalate_on_fail",
				"not allowed on a gate command (a failing gate command routes the work back; remove it)")
		}
	}
	if p.Type == TypeTeam && len(p.Commands) > 0 {
		v.add(p.line("commands"), p.Name, "commands", "a team phase runs a sub-team and takes no commands")
	}
	if p.Type == TypeStandard && p.Agent == AgentExec && len(p.Commands) == 0 {
		v.add(p.line("commands"), p.Name, "commands", "missing (an exec phase needs at least one command)")
	}
	if p.Type == TypeGate && p.Agent == AgentExec && len(p.Commands) == 0 {
		v.add(p.line("commands"), p.Name, "commands", "the gate has nothing to judge (add commands, or an agent that renders a verdict)")
	}
}

// checkKindFields reports fields that do not apply to the phase's type.
func (v *validator) checkKindFields(p *Phase) {
	if p.Type != TypeGate {
		if p.MaxIterations != 0 {
			v.add(p.line("max_iterations"), p.Name, "max_iterations", "applies to gates only (remove it, or set type: gate)")
		}
		if p.RouteTo != "" {
			v.add(p.line("route_to"), p.Name, "route_to", "applies to gates only (remove it, or set type: gate)")
		}
	}
	if p.Type == TypeGate && p.MaxIterations < 1 {
		v.add(p.line("max_iterations"), p.Name, "max_iterations", "invalid value %d (set 1 or more)", p.MaxIterations)
	}
	if p.Type == TypeGate && len(p.DependsOn) == 0 {
		v.add(p.line("depends_on"), p.Name, "depends_on", "missing (a gate judges the phases it depends on and routes work back to them)")
	}
	if p.Type != TypeTeam {
		if p.Team != "" {
			v.add(p.line("team"), p.Name, "team", "applies to team phases only (remove it, or set type: team)")
		}
		if len(p.TeamInputs) > 0 {
			v.add(p.line("inputs"), p.Name, "inputs", "applies to team phases only (remove it, or set type: team)")
		}
		return
	}
	if p.Agent != "" {
		v.add(p.line("agent"), p.Name, "agent", "a team phase runs a sub-team and takes no agent (remove it)")
	}
	switch {
	case strings.TrimSpace(p.Team) == "":
		v.add(p.line("team"), p.Name, "team", `missing (name the sub-team, e.g. team: "@local/child-team")`)
	case strings.Contains(p.Team, "://"):
		v.add(p.line("team"), p.Name, "team", "remote team %q is not supported (install it under CLIQ_HOME/teams and use @scope/name)",
			p.Team)
	case strings.HasPrefix(p.Team, "@") && !teamNameRE.MatchString(p.Team):
		v.add(p.line("team"), p.Name, "team", `invalid team name %q (want "@scope/name")`, p.Team)
	}
}

// checkCycles reports each dependency cycle once, naming its path.
func (v *validator) checkCycles() {
	const (
		unvisited = iota
		visiting
		visited
	)
	state := map[string]int{}
	var path []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = visiting
		path = append(path, name)
		p, _ := v.team.PhaseByName(name)
		for _, dep := range p.DependsOn {
			switch state[dep] {
			case unvisited:
				visit(dep)
			case visiting:
				start := slices.Index(path, dep)
				cycle := append(slices.Clone(path[start:]), dep)
				slices.Reverse(cycle)
				v.add(v.cycleLine(cycle), cycle[0], "depends_on", "dependency cycle %s (remove one of these dependencies)",
					strings.Join(cycle, " -> "))
			}
		}
		path = path[:len(path)-1]
		state[name] = visited
	}
	for _, p := range v.team.Workflow.Phases {
		if state[p.Name] == unvisited {
			visit(p.Name)
		}
	}
}

// cycleLine returns the line of the depends_on entry of phase cycle[0]
// that closes cycle, a path such as a -> b -> c -> a in which each phase
// depends on the one before it.
func (v *validator) cycleLine(cycle []string) int {
	p, ok := v.team.PhaseByName(cycle[0])
	if !ok {
		return 0
	}
	dep := cycle[len(cycle)-2]
	return p.dependsOnLine(slices.Index(p.DependsOn, dep))
}

// checkRoutes checks that each gate's route_to names a phase upstream of it.
func (v *validator) checkRoutes() {
	for _, p := range v.team.Workflow.Phases {
		if p.Type != TypeGate || p.RouteTo == "" {
			continue
		}
		line := p.line("route_to")
		switch _, ok := v.team.PhaseByName(p.RouteTo); {
		case p.RouteTo == p.Name:
			v.add(line, p.Name, "route_to", "a gate cannot route to itself (name a phase it depends on)")
		case !ok:
			names := v.team.PhaseNames()
			v.add(line, p.Name, "route_to", "unknown phase %q (%sknown phases: %s)",
				p.RouteTo, didYouMean(p.RouteTo, names), strings.Join(names, ", "))
		case !v.team.IsUpstream(p.RouteTo, p.Name):
			v.add(line, p.Name, "route_to", "phase %q is not upstream of the gate (route to a phase the gate depends on, "+
				"directly or through other phases)", p.RouteTo)
		}
	}
}

// checkRoleFiles reads the role file of every phase that needs one.
func (v *validator) checkRoleFiles() {
	if v.rolesDir == "" {
		return
	}
	for i := range v.team.Workflow.Phases {
		p := &v.team.Workflow.Phases[i]
		if !p.NeedsRole() || !validIdent(p.Role) {
			continue
		}
		if _, done := v.roles[p.Role]; done {
			continue
		}
		data, err := os.ReadFile(filepath.Join(v.rolesDir, p.Role+".md"))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			v.add(p.line("role"), p.Name, "role", "missing role file %s/%s.md (create it, or set agent: exec for a "+
				"commands-only phase)", RolesDirName, p.Role)
		case err != nil:
			v.add(p.line("role"), p.Name, "role", "cannot read role file: %v", err)
		default:
			v.roles[p.Role] = string(data)
		}
	}
}

// checkInputs reports references to undeclared inputs and, when every
// place that can reference inputs was read, declared inputs that nothing
// references.
func (v *validator) checkInputs() {
	declared := map[string]bool{}
	for _, in := range v.team.Inputs {
		declared[in.Name] = true
	}
	used := map[string]bool{}
	check := func(line int, phase, field, text string) {
		for _, name := range InputRefs(text) {
			used[name] = true
			if !declared[name] {
				v.add(line, phase, field, "$(inputs.%s) references an undeclared input (declare it under inputs: "+
					"- name: %s)", name, name)
			}
		}
	}

	complete := true
	for _, p := range v.team.Workflow.Phases {
		for i, c := range p.Commands {
			check(p.commandLine(i, "run"), p.Name, fmt.Sprintf("commands[%d].run", i), c.Run)
			check(p.commandLine(i, "if"), p.Name, fmt.Sprintf("commands[%d].if", i), c.If)
		}
		for _, key := range slices.Sorted(maps.Keys(p.TeamInputs)) {
			check(p.teamInputLine(key), p.Name, "inputs."+key, p.TeamInputs[key])
		}
		check(p.line("team"), p.Name, "team", p.Team)
		if p.NeedsRole() {
			role, ok := v.roles[p.Role]
			complete = complete && ok
			check(p.line("role"), p.Name, "role", role)
		}
	}

	if !complete {
		return
	}
	for i, in := range v.team.Inputs {
		if in.Name != "" && !used[in.Name] {
			v.add(v.team.inputLine(i, ""), "", fmt.Sprintf("inputs[%d]", i), "input %q is declared but never used (reference it as "+
				"$(inputs.%s) in a command or role, or remove it)", in.Name, in.Name)
		}
	}
}

// didYouMean returns `did you mean "x"? ` for the candidate closest to
// name, or "" when none is within max(1, len(name)/3) edits.
func didYouMean(name string, candidates []string) string {
	best, bestDist := "", max(1, len(name)/3)+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("did you mean %q? ", best)
}

// editDistance returns the optimal string alignment distance between a and
// b in bytes: insertions, deletions, substitutions and swaps of adjacent
// bytes each count 1.
func editDistance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(a)][len(b)]
}
