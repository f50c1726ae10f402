package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cliq/settings"
)

const minimalTeam = `
name: "@test/minimal"
workflow:
  phases:
    - name: work
      agent: exec
      commands:
        - name: x
          run: "true"
`

func TestOpen(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := MustProject(t, testProject{team: minimalTeam})
		p, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if p.InstanceID() != "cliq-abc123" {
			t.Errorf("InstanceID = %q, want the id from cliq.id", p.InstanceID())
		}
		if p.Team().Name != "@test/minimal" {
			t.Errorf("Team().Name = %q", p.Team().Name)
		}
	})

	t.Run("ErrNotAssembled", func(t *testing.T) {
		dir := MustProject(t, testProject{team: minimalTeam})
		os.Remove(filepath.Join(dir, ".cliq", "team.yml"))
		_, err := Open(dir, Options{})
		if !errors.Is(err, ErrNotAssembled) {
			t.Fatalf("err = %v, want ErrNotAssembled", err)
		}
	})

	t.Run("ErrNoRequirement", func(t *testing.T) {
		dir := MustProject(t, testProject{team: minimalTeam})
		req := filepath.Join(dir, ".cliq", "req_spec.md")
		MustWrite(t, req, "  \n")
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrNoRequirement) || !strings.Contains(err.Error(), "empty") {
			t.Errorf("empty requirement: err = %v, want ErrNoRequirement saying it is empty", err)
		}
		os.Remove(req)
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrNoRequirement) {
			t.Errorf("missing requirement: err = %v, want ErrNoRequirement", err)
		}
	})

	t.Run("ErrActiveRun", func(t *testing.T) {
		dir := MustProject(t, testProject{team: minimalTeam})
		data, _ := json.Marshal(RunState{RunID: "run_x", Status: StatusRunning, PID: os.Getpid()})
		MustWrite(t, filepath.Join(dir, ".cliq", "run.json"), string(data))
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrActiveRun) {
			t.Errorf("err = %v, want ErrActiveRun", err)
		}
	})

	t.Run("DeadRunIsNotActive", func(t *testing.T) {
		dir := MustProject(t, testProject{team: minimalTeam})
		data, _ := json.Marshal(RunState{RunID: "run_x", Status: StatusRunning, PID: deadPID(t)})
		MustWrite(t, filepath.Join(dir, ".cliq", "run.json"), string(data))
		if _, err := Open(dir, Options{}); err != nil {
			t.Errorf("err = %v, want nil for a run whose process is gone", err)
		}
	})

	t.Run("RunID", func(t *testing.T) {
		dir := MustProject(t, testProject{team: minimalTeam})
		st := mustRunWith(t, dir, Options{RunID: "run_given-1"})
		if st.RunID != "run_given-1" {
			t.Errorf("run id = %q, want the one from Options", st.RunID)
		}
		for _, bad := range []string{"given", "run_", "run_a/b", "run_" + strings.Repeat("x", 61)} {
			if _, err := Open(dir, Options{RunID: bad}); err == nil || !strings.Contains(err.Error(), "invalid run id") {
				t.Errorf("Open with run id %q: err = %v, want invalid run id", bad, err)
			}
		}
	})

	t.Run("NoAgentAndNoDefault", func(t *testing.T) {
		dir := MustProject(t, testProject{
			team:  "name: \"@test/noagent\"\nworkflow:\n  phases:\n    - name: think\n",
			roles: map[string]string{"think": "Think."},
		})
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), `phase "think"`) || !strings.Contains(err.Error(), "default_agent") {
			t.Errorf("err = %v, want it to name the phase and default_agent", err)
		}
	})

	t.Run("InvalidTeam", func(t *testing.T) {
		dir := MustProject(t, testProject{team: "name: \"@test/bad\"\nworkflow:\n  phases:\n    - name: a\n      depends_on: [missing]\n      agent: exec\n      commands: [{name: x, run: \"true\"}]\n"})
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrInvalidTeam) {
			t.Errorf("err = %v, want ErrInvalidTeam", err)
		}
	})
}

func TestPipeline_RunActive(t *testing.T) {
	dir := MustProject(t, testProject{team: minimalTeam})
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// PID 1 always exists, so this lock is held by a live process.
	MustWrite(t, filepath.Join(dir, ".cliq", "run.lock"), "1\n")
	if _, err := p.Run(context.Background()); !errors.Is(err, ErrActiveRun) {
		t.Fatalf("Run with a live lock: err = %v, want ErrActiveRun", err)
	}
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusIdle {
		t.Errorf("a rejected run changed run.json to %s", st.Status)
	}
}

func TestResolveAgent(t *testing.T) {
	tests := []struct {
		name     string
		phase    Phase
		settings settings.Map
		want     []string
		wantErr  string
	}{
		{"Builtin", Phase{Name: "a", Type: TypeStandard, Agent: "claude-code"}, nil, []string{"claude", "-p"}, ""},
		{"Default", Phase{Name: "a", Type: TypeStandard}, settings.Map{"default_agent": "codex"}, []string{"codex", "exec"}, ""},
		{"Override", Phase{Name: "a", Type: TypeStandard, Agent: "gemini"},
			settings.Map{"agents": settings.Map{"gemini": settings.Map{"command": []any{"my-gemini", "--yolo"}}}},
			[]string{"my-gemini", "--yolo"}, ""},
		{"Exec", Phase{Name: "a", Type: TypeStandard, Agent: "exec"}, nil, nil, ""},
		{"GateWithoutAgent", Phase{Name: "g", Type: TypeGate}, settings.Map{"default_agent": "codex"}, nil, ""},
		{"Unknown", Phase{Name: "a", Type: TypeStandard, Agent: "nope"}, nil, nil, `unknown agent "nope"`},
		{"EmptyCommand", Phase{Name: "a", Type: TypeStandard, Agent: "x"},
			settings.Map{"agents": settings.Map{"x": settings.Map{"command": []any{}}}}, nil, "agents.x.command is empty"},
		{"NoDefault", Phase{Name: "a", Type: TypeStandard}, nil, nil, "default_agent is not set"},
		{"TeamPhase", Phase{Name: "sub", Type: TypeTeam}, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := resolveAgent(&tt.phase, tt.settings)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(spec.Argv, " ") != strings.Join(tt.want, " ") || spec.isExec() != (tt.want == nil) {
				t.Errorf("argv = %q, want %q", spec.Argv, tt.want)
			}
		})
	}
}

func TestReadState(t *testing.T) {
	t.Run("Idle", func(t *testing.T) {
		st, err := ReadState(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != StatusIdle {
			t.Errorf("status = %s, want idle", st.Status)
		}
	})
	t.Run("InvalidJSON", func(t *testing.T) {
		dir := t.TempDir()
		MustWrite(t, filepath.Join(dir, ".cliq", "run.json"), "{")
		if _, err := ReadState(dir); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
			t.Errorf("err = %v, want invalid JSON", err)
		}
	})
}

func TestExitCode(t *testing.T) {
	for status, want := range map[string]int{
		StatusCompleted: 0, StatusFailed: 1, StatusEscalated: 3, StatusCancelled: 4, StatusRunning: 1,
	} {
		if got := ExitCode(status); got != want {
			t.Errorf("ExitCode(%s) = %d, want %d", status, got, want)
		}
	}
}

// mustRunWith opens the project with opts and runs it to its end.
func mustRunWith(tb testing.TB, dir string, opts Options) *RunState {
	tb.Helper()
	p, err := Open(dir, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	st, err := p.Run(context.Background())
	if err != nil {
		tb.Fatalf("Run: %v", err)
	}
	return st
}
