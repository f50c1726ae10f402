package pipeline

import (
	"errors"
	"strings"
	"testing"
)

// execPhase is a valid exec phase with the given name and extra YAML.
func execPhase(name, extra string) string {
	return "    - name: " + name + "\n      agent: exec\n      commands: [{name: c, run: \"true\"}]\n" + extra
}

// teamYML wraps phase YAML into a team with a valid name.
func teamYML(phases string) string {
	return "name: \"@test/bad\"\nworkflow:\n  phases:\n" + phases
}

// MustDefinitionError asserts that err is a *DefinitionError and returns
// it.
func MustDefinitionError(tb testing.TB, err error) *DefinitionError {
	tb.Helper()
	if err == nil {
		tb.Fatal("err = nil, want a definition error")
	}
	var de *DefinitionError
	if !errors.As(err, &de) {
		tb.Fatalf("err = %T %v, want *DefinitionError", err, err)
	}
	if !errors.Is(err, ErrInvalidTeam) {
		tb.Errorf("errors.Is(err, ErrInvalidTeam) = false")
	}
	return de
}

func TestParseTeam_Errors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		line int      // Line of the first FieldError
		want []string // substrings of the error message
	}{
		{"BadYAML", "name: \"@test/x\"\ndescription: a: b\nworkflow:\n",
			2, []string{"team.yml:2: invalid YAML: mapping values are not allowed in this context"}},
		{"Empty", "", 0, []string{"team.yml: file is empty"}},
		{"NotMapping", "- a\n- b\n", 1, []string{"team.yml:1: expected a mapping"}},
		{"UnknownTopField", "name: \"@test/x\"\nbogus: 1\nworkflow:\n  phases:\n" + execPhase("a", ""),
			2, []string{"team.yml:2: bogus: unknown field (known fields: ", "workflow"}},
		{"UnknownWorkflowField", "name: \"@test/x\"\nworkflow:\n  support: []\n  phases:\n" + execPhase("a", ""),
			3, []string{"team.yml:3: workflow.support: unknown field: support phases are not supported"}},
		{"UnknownPhaseField", teamYML(execPhase("a", "      dependson: [b]\n")),
			7, []string{`team.yml:7: phase "a": dependson: unknown field (did you mean "depends_on"? known fields: `}},
		{"UnknownCommandField", teamYML("    - name: a\n      agent: exec\n      commands:\n" +
			"        - {name: c, run: \"true\", timout: 5s}\n"),
			7, []string{`phase "a": commands[0].timout: unknown field (did you mean "timeout"? ` +
				`known fields: escalate_on_fail, if, name, run, timeout)`}},
		{"UnknownInputField", "name: \"@test/x\"\ninputs: [{name: a, default: x}]\nworkflow:\n  phases:\n" +
			execPhase("p", ""), 2, []string{"inputs[0].default: unknown field"}},
		{"AgentsNotSupported", "name: \"@test/x\"\nagents: {}\nworkflow:\n  phases:\n" + execPhase("a", ""),
			2, []string{"agents: unknown field: custom team agents are not supported"}},
		{"WrongValueType", teamYML(execPhase("a", "      max_iterations: many\n")),
			7, []string{`phase "a": max_iterations: invalid value: cannot decode !!str`}},
		{"DependsOnString", teamYML(execPhase("a", "") + execPhase("b", "      depends_on: a\n")),
			10, []string{`phase "b": depends_on: invalid value`}},
		{"MissingName", "workflow:\n  phases:\n" + execPhase("a", ""),
			1, []string{`team.yml:1: name: missing (set name: "@scope/name", quoted)`}},
		{"InvalidName", "name: hello\nworkflow:\n  phases:\n" + execPhase("a", ""),
			1, []string{`name: invalid value "hello" (want "@scope/name"`}},
		{"NoPhases", "name: \"@test/x\"\nworkflow:\n  phases: []\n",
			3, []string{"workflow.phases: missing (a team needs at least one phase)"}},
		{"NoWorkflow", "name: \"@test/x\"\n", 1, []string{"workflow.phases: missing"}},
		{"PhaseWithoutName", teamYML("    - agent: exec\n      commands: [{name: c, run: \"true\"}]\n"),
			4, []string{"workflow.phases[0].name: missing (every phase needs a unique name)"}},
		{"InvalidPhaseName", teamYML(execPhase("a/b", "")), 4, []string{`invalid phase name "a/b"`}},
		{"DoubleDashPhaseName", teamYML(execPhase("a--b", "")), 4, []string{`invalid phase name "a--b"`}},
		{"DotPhaseName", teamYML(execPhase("a.b", "")), 4, []string{`invalid phase name "a.b"`}},
		{"DuplicatePhase", teamYML(execPhase("a", "") + execPhase("a", "")),
			7, []string{`phase "a": name: duplicate phase name`}},
		{"UnknownType", teamYML("    - name: a\n      type: magic\n"),
			5, []string{`phase "a": type: unknown type "magic" (use standard, gate, team or exec)`}},
		{"UnsupportedType", teamYML("    - name: a\n      type: hug\n"),
			5, []string{`phase "a": type: type "hug" is not supported`}},
		{"ExecTypeWithAgent", teamYML("    - name: a\n      type: exec\n      agent: claude-code\n" +
			"      commands: [{name: c, run: \"true\"}]\n"),
			6, []string{`phase "a": agent: type exec runs commands without an agent, but agent is "claude-code"`}},
		{"InvalidAgent", teamYML("    - name: a\n      agent: \"x.y\"\n"), 5, []string{`agent: invalid agent name "x.y"`}},
		{"AgentHug", teamYML(execPhase("a", "") + "    - name: review\n      type: gate\n      agent: hug\n" +
			"      depends_on: [a]\n"), 9,
			[]string{`phase "review": agent: agent "hug" is not available in this version (the human review gate ` +
				`is not built; use a gate with agent exec`, `settings.agents.<name>.command with a different name`}},
		{"AgentMesh", teamYML("    - name: a\n      agent: mesh\n"), 5,
			[]string{`phase "a": agent: agent "mesh" is not available in this version`}},
		{"AgentTeam", teamYML("    - name: a\n      agent: team\n"), 5,
			[]string{`phase "a": agent: agent "team" is not available in this version (to run a sub-team, ` +
				`set type: team and team: "@scope/name" instead of an agent)`}},
		{"InvalidRole", teamYML("    - name: a\n      role: ../etc\n"), 5, []string{`role: invalid role name "../etc"`}},
		{"UnknownDependsOn", teamYML(execPhase("a", "      depends_on: [ghost]\n")),
			7, []string{`team.yml:7: phase "a": depends_on: unknown phase "ghost" (known phases: a)`}},
		{"UnknownDependsOnTypo", teamYML(execPhase("build", "") + execPhase("b", "      depends_on: [biuld]\n")),
			10, []string{`phase "b": depends_on: unknown phase "biuld" (did you mean "build"? known phases: build, b)`}},
		{"DependsOnItself", teamYML(execPhase("a", "      depends_on: [a]\n")),
			7, []string{`phase "a": depends_on: phase depends on itself`}},
		{"DependsOnTwice", teamYML(execPhase("a", "") + execPhase("b", "      depends_on: [a, a]\n")),
			10, []string{`phase "b": depends_on: "a" is listed twice`}},
		{"Cycle", teamYML(execPhase("a", "      depends_on: [c]\n") + execPhase("b", "      depends_on: [a]\n") +
			execPhase("c", "      depends_on: [b]\n")),
			7, []string{`depends_on: dependency cycle a -> b -> c -> a`}},
		{"ExecWithoutCommands", teamYML("    - name: a\n      agent: exec\n"),
			4, []string{`phase "a": commands: missing (an exec phase needs at least one command)`}},
		{"CommandWithoutRun", teamYML("    - name: a\n      agent: exec\n      commands: [{name: c}]\n"),
			6, []string{`phase "a": commands[0].run: missing (set the shell command to run)`}},
		{"CommandBlankRun", teamYML("    - name: a\n      agent: exec\n      commands: [{name: c, run: \"  \"}]\n"),
			6, []string{`commands[0].run: missing`}},
		{"CommandWithoutName", teamYML("    - name: a\n      agent: exec\n      commands: [{run: \"true\"}]\n"),
			6, []string{`commands[0].name: missing`}},
		{"DuplicateCommand", teamYML("    - name: a\n      agent: exec\n" +
			"      commands: [{name: c, run: \"true\"}, {name: c, run: \"true\"}]\n"),
			6, []string{`commands[1].name: duplicate command name "c"`}},
		{"CommandNameSlash", teamYML("    - name: a\n      agent: exec\n      commands: [{name: a/b, run: \"true\"}]\n"),
			6, []string{`commands[0].name: invalid command name "a/b"`}},
		{"InvalidTimeout", teamYML("    - name: a\n      agent: exec\n" +
			"      commands: [{name: c, run: \"true\", timeout: soon}]\n"),
			6, []string{`phase "a": commands[0].timeout: invalid duration "soon"`}},
		{"NegativeTimeout", teamYML("    - name: a\n      agent: exec\n" +
			"      commands: [{name: c, run: \"true\", timeout: -5s}]\n"),
			6, []string{`commands[0].timeout: invalid duration "-5s"`}},
		{"GateNothingToJudge", teamYML(execPhase("a", "") + "    - name: g\n      type: gate\n      depends_on: [a]\n"),
			7, []string{`phase "g": commands: the gate has nothing to judge`}},
		{"GateWithoutDependsOn", teamYML("    - name: g\n      type: gate\n      commands: [{name: c, run: \"true\"}]\n"),
			4, []string{`phase "g": depends_on: missing (a gate judges`}},
		{"MaxIterationsZero", teamYML(execPhase("a", "") + "    - name: g\n      type: gate\n      depends_on: [a]\n" +
			"      max_iterations: 0\n      commands: [{name: c, run: \"true\"}]\n"),
			10, []string{`team.yml:10: phase "g": max_iterations: invalid value 0 (set 1 or more`}},
		{"MaxIterationsNegative", teamYML(execPhase("a", "") + "    - name: g\n      type: gate\n      depends_on: [a]\n" +
			"      max_iterations: -1\n      commands: [{name: c, run: \"true\"}]\n"),
			10, []string{`max_iterations: invalid value -1`}},
		{"MaxIterationsOnStandard", teamYML(execPhase("a", "      max_iterations: 2\n")),
			7, []string{`phase "a": max_iterations: applies to gates only`}},
		{"RouteToOnStandard", teamYML(execPhase("a", "") + execPhase("b", "      depends_on: [a]\n      route_to: a\n")),
			11, []string{`phase "b": route_to: applies to gates only`}},
		{"RouteToUnknown", teamYML(execPhase("a", "") + "    - name: g\n      type: gate\n      depends_on: [a]\n" +
			"      route_to: ghost\n      commands: [{name: c, run: \"true\"}]\n"),
			10, []string{`phase "g": route_to: unknown phase "ghost"`}},
		{"RouteToNotUpstream", teamYML(execPhase("a", "") + execPhase("side", "") +
			"    - name: g\n      type: gate\n      depends_on: [a]\n" +
			"      route_to: side\n      commands: [{name: c, run: \"true\"}]\n"),
			13, []string{`phase "g": route_to: phase "side" is not upstream of the gate`}},
		{"RouteToDownstream", teamYML(execPhase("a", "") + "    - name: g\n      type: gate\n      depends_on: [a]\n" +
			"      route_to: z\n      commands: [{name: c, run: \"true\"}]\n" + execPhase("z", "      depends_on: [g]\n")),
			10, []string{`route_to: phase "z" is not upstream of the gate`}},
		{"RouteToItself", teamYML(execPhase("a", "") + "    - name: g\n      type: gate\n      depends_on: [a]\n" +
			"      route_to: g\n      commands: [{name: c, run: \"true\"}]\n"),
			10, []string{`route_to: a gate cannot route to itself`}},
		{"EscalateOnFailInGate", teamYML(execPhase("a", "") + "    - name: g\n      type: gate\n      depends_on: [a]\n" +
			"      commands: [{name: c, run: \"true\", escalate_on_fail: true}]\n"),
			10, []string{`phase "g": commands[0].escalate_on_fail: not allowed on a gate command`}},
		{"TeamWithoutTeam", teamYML("    - name: sub\n      type: team\n"),
			4, []string{`phase "sub": team: missing (name the sub-team`}},
		{"TeamRemote", teamYML("    - name: sub\n      type: team\n      team: \"hub://@a/b\"\n"),
			6, []string{`phase "sub": team: remote team "hub://@a/b" is not supported`}},
		{"TeamBadScopedName", teamYML("    - name: sub\n      type: team\n      team: \"@a/../b\"\n"),
			6, []string{`phase "sub": team: invalid team name "@a/../b"`}},
		{"TeamWithCommands", teamYML("    - name: sub\n      type: team\n      team: \"@a/b\"\n" +
			"      commands: [{name: c, run: \"true\"}]\n"),
			7, []string{`phase "sub": commands: a team phase runs a sub-team and takes no commands`}},
		{"TeamWithAgent", teamYML("    - name: sub\n      type: team\n      team: \"@a/b\"\n      agent: codex\n"),
			7, []string{`phase "sub": agent: a team phase runs a sub-team and takes no agent`}},
		{"TeamFieldOnStandard", teamYML(execPhase("a", "      team: \"@a/b\"\n      inputs: {x: y}\n")),
			7, []string{`phase "a": team: applies to team phases only`, `phase "a": inputs: applies to team phases only`}},
		{"UndeclaredInput", teamYML("    - name: a\n      agent: exec\n      commands: [{name: c, run: \"ls $(inputs.dir)\"}]\n"),
			6, []string{`phase "a": commands[0].run: $(inputs.dir) references an undeclared input`}},
		{"UndeclaredInputInIf", teamYML("    - name: a\n      agent: exec\n" +
			"      commands: [{name: c, run: \"true\", if: \"test -d $(inputs.dir)\"}]\n"),
			6, []string{`commands[0].if: $(inputs.dir) references an undeclared input`}},
		{"UndeclaredInputInTeamInputs", teamYML("    - name: sub\n      type: team\n      team: \"@a/b\"\n" +
			"      inputs: {target: \"$(inputs.dir)\"}\n"),
			7, []string{`phase "sub": inputs.target: $(inputs.dir) references an undeclared input`}},
		{"UnusedInput", "name: \"@test/x\"\ninputs: [{name: dir}]\nworkflow:\n  phases:\n" + execPhase("a", ""),
			2, []string{`inputs[0]: input "dir" is declared but never used`}},
		{"DuplicateInput", "name: \"@test/x\"\ninputs: [{name: dir}, {name: dir}]\nworkflow:\n  phases:\n" +
			"    - {name: a, agent: exec, commands: [{name: c, run: \"ls $(inputs.dir)\"}]}\n",
			2, []string{`inputs[1].name: duplicate input "dir"`}},
		{"InputWithoutName", "name: \"@test/x\"\ninputs: [{description: d}]\nworkflow:\n  phases:\n" + execPhase("a", ""),
			2, []string{`inputs[0].name: missing`}},
		{"InvalidInputName", "name: \"@test/x\"\ninputs: [{name: \"a b\"}]\nworkflow:\n  phases:\n" + execPhase("a", ""),
			2, []string{`inputs[0].name: invalid input name "a b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			team, err := ParseTeam(TeamFileName, []byte(tt.yml))
			if team != nil {
				t.Errorf("team = %+v, want nil on error", team)
			}
			de := MustDefinitionError(t, err)
			if len(de.Errors) > 0 && de.Errors[0].Line != tt.line {
				t.Errorf("Errors[0].Line = %d, want %d: %v", de.Errors[0].Line, tt.line, err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
			if len(de.Errors) == 0 {
				t.Errorf("DefinitionError has no FieldErrors")
			}
		})
	}
}

func TestDefinitionError_Error(t *testing.T) {
	t.Run("One", func(t *testing.T) {
		err := &DefinitionError{File: "team.yml", Errors: []FieldError{
			{File: "team.yml", Phase: "x", Field: "depends_on", Message: `unknown phase "y"`},
		}}
		if got, want := err.Error(), `team.yml: phase "x": depends_on: unknown phase "y"`; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	})
	t.Run("Many", func(t *testing.T) {
		err := &DefinitionError{File: "team.yml", Errors: []FieldError{
			{File: "team.yml", Line: 3, Field: "name", Message: "missing"},
			{File: "team.yml", Phase: "a", Field: "role", Message: "missing role file"},
		}}
		want := "team.yml: 2 problems:\n  team.yml:3: name: missing\n  team.yml: phase \"a\": role: missing role file"
		if got := err.Error(); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	})
}

func TestParseTeam_ListsEveryProblem(t *testing.T) {
	_, err := ParseTeam(TeamFileName, []byte(teamYML(
		execPhase("a", "      depends_on: [ghost]\n")+"    - name: b\n      type: magic\n")))
	de := MustDefinitionError(t, err)
	if len(de.Errors) != 2 {
		t.Errorf("got %d errors, want 2: %v", len(de.Errors), err)
	}
}

func TestLoadTeam_RoleErrors(t *testing.T) {
	tests := []struct {
		name  string
		yml   string
		roles map[string]string
		line  int // Line of the first FieldError
		want  string
	}{
		{"StandardNeedsRole", teamYML("    - name: writer\n      agent: claude-code\n"), nil,
			4, `phase "writer": role: missing role file roles/writer.md`},
		{"DefaultAgentNeedsRole", teamYML("    - name: writer\n"), nil,
			4, `phase "writer": role: missing role file roles/writer.md`},
		{"NamedRole", teamYML("    - name: writer\n      role: author\n"), map[string]string{"writer": "x"},
			5, `phase "writer": role: missing role file roles/author.md`},
		{"AgentGateNeedsRole", teamYML(execPhase("a", "") +
			"    - name: review\n      type: gate\n      agent: codex\n      depends_on: [a]\n"), nil,
			7, `phase "review": role: missing role file roles/review.md`},
		{"TeamPhaseNeedsRole", teamYML("    - name: sub\n      type: team\n      team: \"@a/b\"\n"), nil,
			4, `phase "sub": role: missing role file roles/sub.md`},
		{"UnusedInputWithRoles", "name: \"@test/x\"\ninputs: [{name: topic}]\nworkflow:\n  phases:\n" +
			"    - name: writer\n", map[string]string{"writer": "no reference"},
			2, `input "topic" is declared but never used`},
		{"UndeclaredInputInRole", teamYML("    - name: writer\n"), map[string]string{"writer": "about $(inputs.topic)"},
			4, `phase "writer": role: $(inputs.topic) references an undeclared input`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadTeam(MustWriteTeam(t, tt.yml, tt.roles))
			de := MustDefinitionError(t, err)
			if got := de.Errors[0].Line; got != tt.line {
				t.Errorf("Errors[0].Line = %d, want %d: %v", got, tt.line, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadTeam_RoleCases(t *testing.T) {
	t.Run("ExecNeedsNoRole", func(t *testing.T) {
		if _, err := LoadTeam(MustWriteTeam(t, teamYML(execPhase("a", "")), nil)); err != nil {
			t.Fatalf("LoadTeam: %v", err)
		}
	})
	t.Run("InputUsedOnlyInRole", func(t *testing.T) {
		yml := "name: \"@test/x\"\ninputs: [{name: topic}]\nworkflow:\n  phases:\n    - name: writer\n"
		dir := MustWriteTeam(t, yml, map[string]string{"writer": "Write about $(inputs.topic)."})
		if _, err := LoadTeam(dir); err != nil {
			t.Fatalf("LoadTeam: %v", err)
		}
		// Without roles, ParseTeam cannot see the reference and must not
		// call the input unused.
		if _, err := ParseTeam(TeamFileName, []byte(yml)); err != nil {
			t.Fatalf("ParseTeam: %v", err)
		}
	})
	t.Run("SharedRole", func(t *testing.T) {
		yml := teamYML("    - name: a\n      role: worker\n    - name: b\n      role: worker\n      depends_on: [a]\n")
		if _, err := LoadTeam(MustWriteTeam(t, yml, map[string]string{"worker": "w"})); err != nil {
			t.Fatalf("LoadTeam: %v", err)
		}
	})
}

func TestTeam_Validate(t *testing.T) {
	t.Run("RawTeam", func(t *testing.T) {
		// A team built in code, not normalized: type exec and a gate
		// without max_iterations are fine.
		team := &Team{Name: "@test/raw", Workflow: Workflow{Phases: []Phase{
			{Name: "a", Type: "exec", Commands: []Command{{Name: "c", Run: "true"}}},
			{Name: "g", Type: TypeGate, DependsOn: []string{"a"}, Commands: []Command{{Name: "c", Run: "true"}}},
		}}}
		if errs := team.Validate(""); len(errs) != 0 {
			t.Fatalf("Validate = %v, want none", errs)
		}
		if team.Workflow.Phases[0].Type != "exec" {
			t.Errorf("Validate modified the team")
		}
	})
	t.Run("ErrFieldsSet", func(t *testing.T) {
		team := &Team{Name: "@test/raw", Workflow: Workflow{Phases: []Phase{
			{Name: "a", Agent: AgentExec, DependsOn: []string{"b"}, Commands: []Command{{Name: "c", Run: "true"}}},
		}}}
		errs := team.Validate("")
		if len(errs) != 1 {
			t.Fatalf("Validate = %v, want 1 error", errs)
		}
		if errs[0].Phase != "a" || errs[0].Field != "depends_on" {
			t.Errorf("error = %+v, want phase a, field depends_on", errs[0])
		}
	})
}

func TestParseTeam_ConnectorAgentAccepted(t *testing.T) {
	// A command agent named like a documented connector may be configured
	// in settings, which validation does not see.
	for _, agent := range []string{"jira", "gdrive", "gemini-api"} {
		t.Run(agent, func(t *testing.T) {
			MustParseTeam(t, teamYML("    - name: a\n      agent: "+agent+"\n"))
		})
	}
}

func TestUnbuiltAgentHint(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"jira", `agent "jira" is not available in this version (use an exec phase whose commands call the ` +
			`service, or configure a command agent under settings.agents.jira.command)`},
		{"hug", `agent "hug" is not available in this version (the human review gate is not built`},
		{"claude-code", ""},
		{"my-agent", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := UnbuiltAgentHint(tt.name)
			if tt.want == "" && got != "" {
				t.Errorf("UnbuiltAgentHint(%q) = %q, want empty", tt.name, got)
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("UnbuiltAgentHint(%q) = %q, want prefix %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestParseTeam_BlockStyleLines(t *testing.T) {
	yml := `name: "@test/lines"
workflow:
  phases:
    - name: build
      agent: exec
      commands:
        - name: make
          run: make
          timeout: soon
    - name: test
      agent: exec
      depends_on:
        - build
        - tset
      commands:
        - name: go
          run: go test
    - name: a
      agent: exec
      depends_on:
        - test
        - b
      commands: [{name: c, run: "true"}]
    - name: b
      agent: exec
      depends_on:
        - a
      commands: [{name: c, run: "true"}]
`
	want := map[string]int{
		"commands[0].timeout": 9,
		"depends_on":          14,
	}
	_, err := ParseTeam(TeamFileName, []byte(yml))
	de := MustDefinitionError(t, err)
	if len(de.Errors) != 2 {
		t.Fatalf("got %d errors, want 2: %v", len(de.Errors), err)
	}
	for _, fe := range de.Errors {
		if fe.Line != want[fe.Field] {
			t.Errorf("%s: Line = %d, want %d", fe.Field, fe.Line, want[fe.Field])
		}
	}

	// Without the other problems, the cycle a -> b -> a is reported at
	// the entry of a that closes it.
	yml = strings.Replace(strings.Replace(yml, "        - tset\n", "", 1), "          timeout: soon\n", "", 1)
	_, err = ParseTeam(TeamFileName, []byte(yml))
	de = MustDefinitionError(t, err)
	if len(de.Errors) != 1 {
		t.Errorf("got %d errors, want 1: %v", len(de.Errors), err)
	}
	if want := "team.yml:20: phase \"a\": depends_on: dependency cycle a -> b -> a"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\ndoes not contain %q", err, want)
	}
}

func TestTeam_ValidateWithoutLines(t *testing.T) {
	// A team built in Go has no lines: every problem is still reported,
	// with Line 0.
	team := &Team{Name: "bad", Workflow: Workflow{Phases: []Phase{
		{Name: "a", Agent: "hug", DependsOn: []string{"b", "ghost"}},
		{Name: "b", Type: TypeGate, DependsOn: []string{"a"}, RouteTo: "x",
			Commands: []Command{{Name: "c", Run: "true", Timeout: "soon"}}},
		{Name: "a", Agent: AgentExec},
	}}}
	errs := team.Validate("")
	if len(errs) < 6 {
		t.Errorf("Validate = %v, want at least 6 problems", errs)
	}
	for _, fe := range errs {
		if fe.Line != 0 {
			t.Errorf("%v: Line = %d, want 0", fe, fe.Line)
		}
	}
}

func TestParseTeam_TypeErrorLocation(t *testing.T) {
	// The type error sits at the top level after the phases, so it must
	// not be blamed on the last phase.
	yml := teamYML(execPhase("a", "")+execPhase("b", "")) + "use_when: {not: a list}\n"
	_, err := ParseTeam(TeamFileName, []byte(yml))
	de := MustDefinitionError(t, err)
	if len(de.Errors) != 1 {
		t.Fatalf("got %d errors, want 1: %v", len(de.Errors), err)
	}
	if got := de.Errors[0]; got.Phase != "" || got.Field != "use_when" {
		t.Errorf("error at phase %q field %q, want top-level use_when: %v", got.Phase, got.Field, err)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"build", "build", 0},
		{"biuld", "build", 1},
		{"timout", "timeout", 1},
		{"dependson", "depends_on", 1},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
