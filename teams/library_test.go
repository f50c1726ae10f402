package teams_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cliq/pipeline"
	"cliq/teams"
)

func TestBuiltinNames(t *testing.T) {
	names := teams.BuiltinNames()
	for _, want := range []string{"@cliq/hello-world", "@cliq/feature"} {
		if !slices.Contains(names, want) {
			t.Errorf("BuiltinNames() = %v, missing %s", names, want)
		}
	}
}

func TestList(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		home := t.TempDir()
		MustInstall(t, home, "@local/mine", "1.0.0")
		MustInstall(t, home, "@acme/shared", "2.0.0")
		project := MustProject(t, "@local/assembled")

		list, err := teams.List(home, project)
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]teams.Summary{}
		var order []string
		for _, s := range list {
			byName[s.Name+"|"+s.Scope] = s
			order = append(order, s.Name)
		}

		hello := byName["@cliq/hello-world|cliq"]
		if hello.Description == "" {
			t.Error("hello-world has no description")
		}
		hello.Description = ""
		if want := (teams.Summary{Name: "@cliq/hello-world", Scope: "cliq", Version: "1.0.0", PhaseCount: 3,
			Builtin: true}); hello != want {
			t.Errorf("hello-world summary = %+v, want %+v", hello, want)
		}
		mine := byName["@local/mine|local"]
		if want := filepath.Join(home, "teams", "@local", "mine"); mine.Path != want {
			t.Errorf("@local/mine path = %q, want %q", mine.Path, want)
		}
		mine.Path = ""
		if want := (teams.Summary{Name: "@local/mine", Scope: "local", Description: "test team", Version: "1.0.0",
			PhaseCount: 2}); mine != want {
			t.Errorf("@local/mine summary = %+v, want %+v", mine, want)
		}
		if s := byName["@acme/shared|acme"]; s.Version != "2.0.0" {
			t.Errorf("@acme/shared version = %q, want 2.0.0", s.Version)
		}
		assembled := byName["@local/assembled|project"]
		assembled.Path = ""
		if want := (teams.Summary{Name: "@local/assembled", Scope: "project", Description: "test team",
			Version: "9.9.9", PhaseCount: 2}); assembled != want {
			t.Errorf("project summary = %+v, want %+v", assembled, want)
		}
		// Built-ins first, then installed by name, then the project.
		want := []string{"@cliq/feature", "@cliq/hello-world", "@acme/shared", "@local/mine", "@local/assembled"}
		if !slices.Equal(order, want) {
			t.Errorf("order = %v, want %v", order, want)
		}
	})

	t.Run("EmptyHome", func(t *testing.T) {
		list, err := teams.List(t.TempDir(), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(teams.BuiltinNames()) {
			t.Errorf("List = %v, want only the built-ins", list)
		}
	})

	t.Run("BrokenTeamListed", func(t *testing.T) {
		home := t.TempDir()
		dir := filepath.Join(home, "teams", "@local", "broken")
		MustWriteTeam(t, dir, "name: [unclosed\n", nil)
		MustWriteTeam(t, filepath.Join(home, "teams", "@local", "half"),
			"name: \"@local/half\"\nversion: \"3\"\nworkflow:\n  phases:\n    - name: a\n      depends_on: [nope]\n", nil)

		list, err := teams.List(home, "")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]teams.Summary{}
		for _, s := range list {
			got[s.Name] = s
		}
		if s := got["@local/broken"]; s.Error == "" {
			t.Errorf("broken team summary = %+v, want Error set", s)
		}
		half := got["@local/half"]
		if half.Error == "" || half.Version != "3" || half.PhaseCount != 1 {
			t.Errorf("half team summary = %+v, want Error, version and phase count", half)
		}
		if strings.Contains(half.Error, home) {
			t.Errorf("error %q shows the home path", half.Error)
		}
	})

	t.Run("SkipsOddDirectories", func(t *testing.T) {
		home := t.TempDir()
		for _, dir := range []string{"no-at/x", "@UPPER/x", "@local/UPPER", "@local/no-team-yml/roles"} {
			if err := os.MkdirAll(filepath.Join(home, "teams", dir), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		MustWriteTeam(t, filepath.Join(home, "teams", "@local", "UPPER"), "name: x\n", nil)
		list, err := teams.List(home, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(teams.BuiltinNames()) {
			t.Errorf("List = %+v, want only the built-ins", list)
		}
	})
}

func TestGet(t *testing.T) {
	t.Run("Builtin", func(t *testing.T) {
		d, err := teams.Get(t.TempDir(), "", "@cliq/hello-world")
		if err != nil {
			t.Fatal(err)
		}
		if !d.Builtin || len(d.Phases) != 3 {
			t.Fatalf("detail = %+v", d)
		}
		gate := d.Phases[2]
		if gate.Name != "reviewer" || gate.Type != "gate" || gate.Agent != "exec" || gate.MaxIterations != 3 {
			t.Errorf("reviewer = %+v", gate)
		}
		if !slices.Equal(gate.DependsOn, []string{"writer"}) || len(gate.Commands) != 2 {
			t.Errorf("reviewer depends_on/commands = %v / %v", gate.DependsOn, gate.Commands)
		}
		if gate.Role != "" {
			t.Errorf("exec gate has role %q", gate.Role)
		}
	})

	t.Run("RoleTextAndDefaultAgent", func(t *testing.T) {
		d, err := teams.Get(t.TempDir(), "", "@cliq/feature")
		if err != nil {
			t.Fatal(err)
		}
		arch := d.Phases[0]
		if arch.Agent != "" || arch.Role != "architect" || !strings.Contains(arch.RoleText, "# Architect") {
			t.Errorf("architect = %+v", arch)
		}
		if len(d.Inputs) != 1 || d.Inputs[0].Name != "test_command" {
			t.Errorf("inputs = %+v", d.Inputs)
		}
		tests := d.Phases[2]
		if tests.RouteTo != "developer" || tests.Commands[0].Timeout != "10m" {
			t.Errorf("tests gate = %+v", tests)
		}
	})

	t.Run("JSONShape", func(t *testing.T) {
		d, err := teams.Get(t.TempDir(), "", "@cliq/hello-world")
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"name", "scope", "description", "version", "phase_count", "builtin", "phases"} {
			if _, ok := m[key]; !ok {
				t.Errorf("JSON %s has no %q", data, key)
			}
		}
		if _, ok := m["Path"]; ok {
			t.Errorf("JSON %s shows the path", data)
		}
		phase := m["phases"].([]any)[0].(map[string]any)
		for _, key := range []string{"name", "type", "agent", "role", "role_text", "depends_on", "commands"} {
			if _, ok := phase[key]; !ok {
				t.Errorf("phase JSON %v has no %q", phase, key)
			}
		}
	})

	t.Run("BareNameOrder", func(t *testing.T) {
		home := t.TempDir()
		d, err := teams.Get(home, "", "hello-world")
		if err != nil || d.Name != "@cliq/hello-world" {
			t.Fatalf("Get(hello-world) = %v, %v; want the built-in", d, err)
		}
		MustInstall(t, home, "@acme/only", "1")
		if d, err := teams.Get(home, "", "only"); err != nil || d.Name != "@acme/only" {
			t.Errorf("Get(only) = %v, %v; want @acme/only", d, err)
		}
		MustInstall(t, home, "@local/hello-world", "1")
		if d, err := teams.Get(home, "", "hello-world"); err != nil || d.Name != "@local/hello-world" {
			t.Errorf("Get(hello-world) = %v, %v; want @local to win over the built-in", d, err)
		}
		if d, err := teams.Get(home, "", "@cliq/hello-world"); err != nil || !d.Builtin {
			t.Errorf("Get(@cliq/hello-world) = %v, %v; want the built-in", d, err)
		}
	})

	t.Run("ErrAmbiguous", func(t *testing.T) {
		home := t.TempDir()
		MustInstall(t, home, "@a/same", "1")
		MustInstall(t, home, "@b/same", "1")
		_, err := teams.Get(home, "", "same")
		if !errors.Is(err, teams.ErrAmbiguous) {
			t.Fatalf("Get(same) = %v, want ErrAmbiguous", err)
		}
		if !strings.Contains(err.Error(), "@a/same") || !strings.Contains(err.Error(), "@b/same") {
			t.Errorf("error %q does not list the candidates", err)
		}
	})

	t.Run("Project", func(t *testing.T) {
		home := t.TempDir()
		project := MustProject(t, "@local/assembled")
		for _, name := range []string{"@project", "@local/assembled", "assembled"} {
			d, err := teams.Get(home, project, name)
			if err != nil {
				t.Errorf("Get(%s): %v", name, err)
				continue
			}
			if d.Scope != "project" || !strings.Contains(d.Phases[1].RoleText, "Project review") {
				t.Errorf("Get(%s) = %+v, want the project team", name, d)
			}
		}
		MustInstall(t, home, "@local/assembled", "1")
		if d, err := teams.Get(home, project, "@local/assembled"); err != nil || d.Scope != "local" {
			t.Errorf("Get(@local/assembled) = %+v, %v; want the installed team first", d, err)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		home := t.TempDir()
		for _, name := range []string{"@local/nope", "nope", "@cliq/nope", "@project"} {
			if _, err := teams.Get(home, "", name); !errors.Is(err, teams.ErrNotFound) {
				t.Errorf("Get(%s) = %v, want ErrNotFound", name, err)
			}
		}
		if _, err := teams.Get(home, t.TempDir(), "@project"); !errors.Is(err, teams.ErrNotFound) {
			t.Errorf("Get(@project) without a team = %v, want ErrNotFound", err)
		}
	})

	t.Run("ErrInvalidName", func(t *testing.T) {
		home := t.TempDir()
		for _, name := range escapeNames {
			if _, err := teams.Get(home, "", name); !errors.Is(err, teams.ErrInvalidName) {
				t.Errorf("Get(%q) = %v, want ErrInvalidName", name, err)
			}
		}
	})

	t.Run("BrokenTeam", func(t *testing.T) {
		home := t.TempDir()
		MustWriteTeam(t, filepath.Join(home, "teams", "@local", "half"),
			"name: \"@local/half\"\nworkflow:\n  phases:\n    - name: a\n      type: exec\n      depends_on: [nope]\n", nil)
		d, err := teams.Get(home, "", "@local/half")
		if err != nil {
			t.Fatal(err)
		}
		if d.Error == "" || len(d.Phases) != 1 || d.Phases[0].Name != "a" {
			t.Errorf("detail = %+v, want the phase and an error", d)
		}
	})
}

func TestResolve(t *testing.T) {
	t.Run("Path", func(t *testing.T) {
		home, cwd := t.TempDir(), t.TempDir()
		dir := MustValidTeam(t, "@local/p", "1")
		if got, err := teams.Resolve(home, cwd, dir); err != nil || got != dir {
			t.Errorf("Resolve(abs) = %q, %v", got, err)
		}
		MustWriteTeam(t, filepath.Join(cwd, "sub", "team"), "name: x\n", nil)
		want := filepath.Join(cwd, "sub", "team")
		for _, ref := range []string{"sub/team", "./sub/team"} {
			if got, err := teams.Resolve(home, cwd, ref); err != nil || got != want {
				t.Errorf("Resolve(%s) = %q, %v; want %q", ref, got, err, want)
			}
		}
		if _, err := teams.Resolve(home, cwd, "./missing"); !errors.Is(err, teams.ErrNotFound) {
			t.Errorf("Resolve(./missing) = %v, want ErrNotFound", err)
		}
	})

	t.Run("BareNameDirectoryFirst", func(t *testing.T) {
		home, cwd := t.TempDir(), t.TempDir()
		MustInstall(t, home, "@local/demo", "1")
		MustWriteTeam(t, filepath.Join(cwd, "demo"), "name: x\n", nil)
		if got, err := teams.Resolve(home, cwd, "demo"); err != nil || got != filepath.Join(cwd, "demo") {
			t.Errorf("Resolve(demo) = %q, %v; want the directory in cwd", got, err)
		}
		want := filepath.Join(home, "teams", "@local", "demo")
		if got, err := teams.Resolve(home, t.TempDir(), "demo"); err != nil || got != want {
			t.Errorf("Resolve(demo) elsewhere = %q, %v; want %q", got, err, want)
		}
	})

	t.Run("BuiltinExtracted", func(t *testing.T) {
		home := t.TempDir()
		for _, name := range teams.BuiltinNames() {
			dir, err := teams.Resolve(home, t.TempDir(), name)
			if err != nil {
				t.Fatalf("Resolve(%s): %v", name, err)
			}
			if rel, err := filepath.Rel(home, dir); err != nil || !filepath.IsLocal(rel) {
				t.Errorf("Resolve(%s) = %q, not under CLIQ_HOME", name, dir)
			}
			team, err := pipeline.LoadTeam(dir)
			if err != nil {
				t.Fatalf("LoadTeam(%s): %v", name, err)
			}
			if team.Name != name {
				t.Errorf("team.yml of %s names %s", name, team.Name)
			}
			again, err := teams.Resolve(home, t.TempDir(), name)
			if err != nil || again != dir {
				t.Errorf("second Resolve(%s) = %q, %v; want %q", name, again, err, dir)
			}
		}
		list, err := teams.List(home, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(teams.BuiltinNames()) {
			t.Errorf("extracted built-ins show up in List: %+v", list)
		}
	})

	t.Run("ConcurrentExtraction", func(t *testing.T) {
		home := t.TempDir()
		const callers = 8
		dirs := make(chan string, callers)
		errs := make(chan error, callers)
		for range callers {
			go func() {
				dir, err := teams.Resolve(home, home, "@cliq/feature")
				dirs <- dir
				errs <- err
			}()
		}
		first := ""
		for range callers {
			dir, err := <-dirs, <-errs
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if first == "" {
				first = dir
			}
			if dir != first {
				t.Errorf("Resolve = %q, want %q like the first caller", dir, first)
			}
		}
		if _, err := pipeline.LoadTeam(first); err != nil {
			t.Errorf("LoadTeam(extracted): %v", err)
		}
		parent := filepath.Dir(first)
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Errorf("%s holds %d entries, want only the team", parent, len(entries))
		}
	})

	t.Run("AssembleBuiltin", func(t *testing.T) {
		home, project := t.TempDir(), t.TempDir()
		dir, err := teams.Resolve(home, project, "hello-world")
		if err != nil {
			t.Fatal(err)
		}
		team, err := pipeline.Assemble(project, dir)
		if err != nil {
			t.Fatal(err)
		}
		if team.Name != "@cliq/hello-world" {
			t.Errorf("assembled %s", team.Name)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		home, cwd := t.TempDir(), t.TempDir()
		cases := []struct {
			ref  string
			want error
		}{
			{"", teams.ErrInvalidName},
			{"  ", teams.ErrInvalidName},
			{"hub://@cliq/x", teams.ErrInvalidName},
			{"@local/../../etc", teams.ErrInvalidName},
			{"@../x", teams.ErrInvalidName},
			{"@local/x\x00", teams.ErrInvalidName},
			{"nope", pipeline.ErrTeamNotFound},
			{"@acme/nope", teams.ErrNotFound},
			{"../x", teams.ErrNotFound},
		}
		for _, c := range cases {
			if _, err := teams.Resolve(home, cwd, c.ref); !errors.Is(err, c.want) {
				t.Errorf("Resolve(%q) = %v, want %v", c.ref, err, c.want)
			}
		}
	})
}
