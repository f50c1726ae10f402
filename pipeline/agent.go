package pipeline

import (
	"fmt"
	"sort"
	"strings"

	"cliq/settings"
)

// builtinAgents are the command agents that work without settings, with the
// argv of their CLI in print mode. agents.<name>.command overrides them.
var builtinAgents = map[string][]string{
	"claude-code": {"claude", "-p"},
	"codex":       {"codex", "exec"},
	"gemini":      {"gemini", "-p"},
	"cursor":      {"cursor-agent", "-p"},
}

// agentSpec is the resolved agent of one phase.
type agentSpec struct {
	// Name is the agent's name as shown in events: "exec" or the command
	// agent's name.
	Name string
	// Argv is the command line of a command agent; nil for exec.
	Argv []string
}

// isExec reports whether the phase runs its commands without an agent.
func (a agentSpec) isExec() bool { return a.Argv == nil }

// resolveAgents returns the agent of every phase of t. A standard phase
// without an agent gets default_agent; a gate without one decides by its
// commands alone. It returns an error naming the phase and the setting to
// add when an agent cannot be resolved.
func resolveAgents(t *Team, s settings.Map) (map[string]agentSpec, error) {
	out := make(map[string]agentSpec, len(t.Workflow.Phases))
	for i := range t.Workflow.Phases {
		ph := &t.Workflow.Phases[i]
		spec, err := resolveAgent(ph, s)
		if err != nil {
			return nil, err
		}
		out[ph.Name] = spec
	}
	return out, nil
}

// resolveAgent returns the agent of one phase.
func resolveAgent(ph *Phase, s settings.Map) (agentSpec, error) {
	if ph.Type == TypeTeam {
		// A team phase runs a nested pipeline, which resolves its own
		// agents (see loadSubTeams).
		return agentSpec{}, nil
	}

	name := ph.Agent
	if name == "" && ph.Type == TypeGate {
		name = AgentExec
	}
	if name == "" {
		name = settings.String(s, "default_agent", "")
	}
	if name == "" {
		return agentSpec{}, fmt.Errorf("phase %q names no agent and the setting default_agent is not set: "+
			"add agent: to the phase or set default_agent (one of %s, or a name under agents)",
			ph.Name, strings.Join(knownAgents(s), ", "))
	}
	if name == AgentExec {
		return agentSpec{Name: AgentExec}, nil
	}

	argv, err := agentCommand(name, s)
	if err != nil {
		return agentSpec{}, fmt.Errorf("phase %q: %w", ph.Name, err)
	}
	return agentSpec{Name: name, Argv: argv}, nil
}

// agentCommand returns the argv of the command agent name: the setting
// agents.<name>.command, or the built-in default.
func agentCommand(name string, s settings.Map) ([]string, error) {
	key := "agents." + name + ".command"
	argv, found, err := settings.Strings(s, key)
	if err != nil {
		return nil, err
	}
	if !found {
		builtin, ok := builtinAgents[name]
		if !ok {
			return nil, fmt.Errorf("unknown agent %q: set %s to its command line, e.g. [\"my-agent\", \"--print\"] "+
				"(built-in agents: exec, %s)", name, key, strings.Join(sortedBuiltins(), ", "))
		}
		return append([]string(nil), builtin...), nil
	}
	if len(argv) == 0 || strings.TrimSpace(argv[0]) == "" {
		return nil, fmt.Errorf("setting %s is empty: give the program and its arguments, e.g. [\"claude\", \"-p\"]", key)
	}
	return argv, nil
}

// knownAgents lists exec, the built-in agents and the agents configured in
// settings, sorted.
func knownAgents(s settings.Map) []string {
	names := map[string]bool{AgentExec: true}
	for name := range builtinAgents {
		names[name] = true
	}
	if v, ok := settings.Lookup(s, "agents"); ok {
		if m, ok := v.(settings.Map); ok {
			for name := range m {
				names[name] = true
			}
		}
	}
	out := make([]string, 0, len(names))
	for name := range names {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// sortedBuiltins returns the names of the built-in command agents, sorted.
func sortedBuiltins() []string {
	out := make([]string, 0, len(builtinAgents))
	for name := range builtinAgents {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
