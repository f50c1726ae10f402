package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// MustWriteTeam writes team.yml and the given roles (name to content) into
// a new temporary team directory and returns it.
func MustWriteTeam(tb testing.TB, yml string, roles map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	MustWriteFile(tb, filepath.Join(dir, TeamFileName), yml)
	for name, content := range roles {
		MustWriteFile(tb, filepath.Join(dir, RolesDirName, name+".md"), content)
	}
	return dir
}

// MustWriteFile writes content to path, creating its directory.
func MustWriteFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// MustParseTeam parses yml and fails the test on any problem.
func MustParseTeam(tb testing.TB, yml string) *Team {
	tb.Helper()
	team, err := ParseTeam(TeamFileName, []byte(yml))
	if err != nil {
		tb.Fatalf("ParseTeam: %v", err)
	}
	return team
}

const diamondYML = `
name: "@test/diamond"
workflow:
  phases:
    - name: plan
      agent: exec
      commands: [{name: a, run: "true"}]
    - name: left
      agent: exec
      depends_on: [plan]
      commands: [{name: a, run: "true"}]
    - name: right
      agent: exec
      depends_on: [plan]
      commands: [{name: a, run: "true"}]
    - name: join
      agent: exec
      depends_on: [left, right]
      commands: [{name: a, run: "true"}]
    - name: gate
      type: gate
      depends_on: [join]
      commands: [{name: a, run: "true"}]
    - name: side
      agent: exec
      commands: [{name: a, run: "true"}]
    - name: final
      agent: exec
      depends_on: [gate, side]
      commands: [{name: a, run: "true"}]
`

func TestParseTeam_Normalize(t *testing.T) {
	team := MustParseTeam(t, `
name: "@test/norm"
workflow:
  phases:
    - name: old
      type: exec
      commands: [{name: a, run: "true"}]
    - name: writer
      depends_on: [old]
    - name: check
      type: gate
      depends_on: [writer]
      commands: [{name: a, run: "true"}]
    - name: review
      type: gate
      agent: claude-code
      role: reviewer
      max_iterations: 5
      depends_on: [check]
`)
	tests := []struct {
		phase, typ, agent, role string
		maxIterations           int
	}{
		{"old", TypeStandard, AgentExec, "old", 0},
		{"writer", TypeStandard, "", "writer", 0},
		{"check", TypeGate, AgentExec, "check", DefaultMaxIterations},
		{"review", TypeGate, "claude-code", "reviewer", 5},
	}
	for _, tt := range tests {
		t.Run(tt.phase, func(t *testing.T) {
			p, ok := team.PhaseByName(tt.phase)
			if !ok {
				t.Fatalf("phase %q not found", tt.phase)
			}
			if p.Type != tt.typ {
				t.Errorf("Type = %q, want %q", p.Type, tt.typ)
			}
			if p.Agent != tt.agent {
				t.Errorf("Agent = %q, want %q", p.Agent, tt.agent)
			}
			if p.Role != tt.role {
				t.Errorf("Role = %q, want %q", p.Role, tt.role)
			}
			if p.MaxIterations != tt.maxIterations {
				t.Errorf("MaxIterations = %d, want %d", p.MaxIterations, tt.maxIterations)
			}
		})
	}
}

func TestParseTeam_Metadata(t *testing.T) {
	team := MustParseTeam(t, `
name: "@test/meta"
description: d
version: "1.2.3"
cliq_version: ">=1.0.0"
tools: [git]
tags: [code]
outputs: [{name: report, description: r}]
use_when: [x]
not_for: [y]
workflow:
  phases:
    - name: a
      agent: exec
      model: some-model
      commands: [{name: a, run: "true"}]
`)
	if team.Name != "@test/meta" || team.Version != "1.2.3" || team.Tools[0] != "git" {
		t.Errorf("metadata not parsed: %+v", team)
	}
	if team.Dir != "" {
		t.Errorf("Dir = %q, want empty for ParseTeam", team.Dir)
	}
}

func TestLoadTeam(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := MustWriteTeam(t, `
name: "@test/ok"
inputs: [{name: target}]
workflow:
  phases:
    - name: writer
    - name: check
      type: exec
      depends_on: [writer]
      commands: [{name: a, run: "test -d $(inputs.target)"}]
`, map[string]string{"writer": "# Writer\n"})
		team, err := LoadTeam(dir)
		if err != nil {
			t.Fatalf("LoadTeam: %v", err)
		}
		if team.Dir != dir {
			t.Errorf("Dir = %q, want %q", team.Dir, dir)
		}
	})
	t.Run("ErrTeamNotFound", func(t *testing.T) {
		_, err := LoadTeam(t.TempDir())
		if !errors.Is(err, ErrTeamNotFound) {
			t.Fatalf("err = %v, want ErrTeamNotFound", err)
		}
	})
	t.Run("ErrInvalidTeam", func(t *testing.T) {
		dir := MustWriteTeam(t, "name: \"@test/x\"\nworkflow:\n  phases:\n    - name: writer\n", nil)
		_, err := LoadTeam(dir)
		if !errors.Is(err, ErrInvalidTeam) {
			t.Fatalf("err = %v, want ErrInvalidTeam", err)
		}
		var de *DefinitionError
		if !errors.As(err, &de) {
			t.Fatalf("err = %T, want *DefinitionError", err)
		}
		if want := filepath.Join(dir, TeamFileName); de.File != want {
			t.Errorf("File = %q, want %q", de.File, want)
		}
		if !strings.Contains(err.Error(), `phase "writer": role: missing role file roles/writer.md`) {
			t.Errorf("message %q does not name the missing role", err)
		}
	})
}

func TestTeam_Order(t *testing.T) {
	team := MustParseTeam(t, diamondYML)
	want := []string{"plan", "left", "right", "join", "gate", "side", "final"}
	if got := team.Order(); !reflect.DeepEqual(got, want) {
		t.Errorf("Order() = %v, want %v", got, want)
	}
}

func TestTeam_Order_FileOrderAmongReady(t *testing.T) {
	team := MustParseTeam(t, `
name: "@test/order"
workflow:
  phases:
    - {name: c, agent: exec, depends_on: [a], commands: [{name: x, run: "true"}]}
    - {name: b, agent: exec, commands: [{name: x, run: "true"}]}
    - {name: a, agent: exec, commands: [{name: x, run: "true"}]}
`)
	want := []string{"b", "a", "c"}
	if got := team.Order(); !reflect.DeepEqual(got, want) {
		t.Errorf("Order() = %v, want %v", got, want)
	}
}

func TestTeam_Between(t *testing.T) {
	team := MustParseTeam(t, diamondYML)
	tests := []struct {
		target, gate string
		want         []string
	}{
		{"plan", "gate", []string{"plan", "left", "right", "join"}},
		{"left", "gate", []string{"left", "join"}},
		{"join", "gate", []string{"join"}},
		{"side", "gate", nil},
		{"gate", "gate", nil},
		{"unknown", "gate", nil},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			if got := team.Between(tt.target, tt.gate); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Between(%q, %q) = %v, want %v", tt.target, tt.gate, got, tt.want)
			}
		})
	}
}

func TestTeam_RouteTargets(t *testing.T) {
	team := MustParseTeam(t, `
name: "@test/routes"
workflow:
  phases:
    - {name: a, agent: exec, commands: [{name: x, run: "true"}]}
    - {name: b, agent: exec, commands: [{name: x, run: "true"}]}
    - {name: g1, type: gate, depends_on: [a, b], commands: [{name: x, run: "true"}]}
    - {name: g2, type: gate, depends_on: [g1], route_to: a, commands: [{name: x, run: "true"}]}
`)
	t.Run("DependsOn", func(t *testing.T) {
		if got, want := team.RouteTargets("g1"), []string{"a", "b"}; !reflect.DeepEqual(got, want) {
			t.Errorf("RouteTargets(g1) = %v, want %v", got, want)
		}
	})
	t.Run("RouteTo", func(t *testing.T) {
		if got, want := team.RouteTargets("g2"), []string{"a"}; !reflect.DeepEqual(got, want) {
			t.Errorf("RouteTargets(g2) = %v, want %v", got, want)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		if got := team.RouteTargets("nope"); got != nil {
			t.Errorf("RouteTargets(nope) = %v, want nil", got)
		}
	})
	t.Run("CopiesDependsOn", func(t *testing.T) {
		team.RouteTargets("g1")[0] = "changed"
		if p, _ := team.PhaseByName("g1"); p.DependsOn[0] != "a" {
			t.Errorf("RouteTargets result aliases DependsOn")
		}
	})
}

func TestSubstitute(t *testing.T) {
	inputs := map[string]string{"dir": "src", "empty": ""}
	tests := []struct{ in, want string }{
		{"ls $(inputs.dir)", "ls src"},
		{"$(inputs.dir)/$(inputs.dir)", "src/src"},
		{"x$(inputs.empty)y", "xy"},
		{"keep $(inputs.other)", "keep $(inputs.other)"},
		{"shell $(date) stays", "shell $(date) stays"},
		{"no refs", "no refs"},
	}
	for _, tt := range tests {
		if got := Substitute(tt.in, inputs); got != tt.want {
			t.Errorf("Substitute(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestInputRefs(t *testing.T) {
	got := InputRefs("$(inputs.a) $(inputs.b) $(inputs.a) $(other)")
	if want := []string{"a", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("InputRefs = %v, want %v", got, want)
	}
}
