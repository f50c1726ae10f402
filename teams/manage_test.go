package teams_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"cliq/pipeline"
	"cliq/teams"
)

// MustTree returns the relative paths of every entry below dir.
func MustTree(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		tb.Fatal(err)
	}
	return out
}

// assertOnlyTeams fails unless every entry under home/teams belongs to one
// of the given installed teams or to the extracted built-ins.
func assertOnlyTeams(tb testing.TB, home string, names ...string) {
	tb.Helper()
	allowed := map[string]bool{".": true}
	for _, n := range names {
		scope, base, _ := strings.Cut(n, "/")
		allowed[scope] = true
		allowed[filepath.Join(scope, base)] = true
	}
	for _, rel := range MustTree(tb, filepath.Join(home, "teams")) {
		parts := strings.Split(rel, string(filepath.Separator))
		if parts[0] == ".builtin" || allowed[rel] || (len(parts) > 2 && allowed[filepath.Join(parts[0], parts[1])]) {
			continue
		}
		tb.Errorf("unexpected entry teams/%s", rel)
	}
}

func TestCreate(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		home := t.TempDir()
		s, err := teams.Create(home, "fresh")
		if err != nil {
			t.Fatal(err)
		}
		if s.Name != "@local/fresh" || s.Scope != "local" || s.PhaseCount != 1 || s.Builtin || s.Error != "" {
			t.Errorf("summary = %+v", s)
		}
		res, err := teams.Validate(home, "", "@local/fresh")
		if err != nil || !res.Valid {
			t.Errorf("Validate = %+v, %v; want valid", res, err)
		}
		if info, err := os.Stat(filepath.Join(home, "teams", "@local", "fresh", "roles")); err != nil || !info.IsDir() {
			t.Errorf("roles directory: %v", err)
		}
		assertOnlyTeams(t, home, "@local/fresh")
	})

	t.Run("Scoped", func(t *testing.T) {
		home := t.TempDir()
		s, err := teams.Create(home, "@acme/deploy")
		if err != nil || s.Name != "@acme/deploy" || s.Scope != "acme" {
			t.Fatalf("Create = %+v, %v", s, err)
		}
	})

	t.Run("ErrExists", func(t *testing.T) {
		home := t.TempDir()
		if _, err := teams.Create(home, "@local/x"); err != nil {
			t.Fatal(err)
		}
		if _, err := teams.Create(home, "x"); !errors.Is(err, teams.ErrExists) {
			t.Errorf("second Create = %v, want ErrExists", err)
		}
	})

	t.Run("ReservedScope", func(t *testing.T) {
		home := t.TempDir()
		for _, name := range []string{"@cliq/hello-world", "@cliq/new-one"} {
			if _, err := teams.Create(home, name); !errors.Is(err, teams.ErrInvalidName) {
				t.Errorf("Create(%s) = %v, want ErrInvalidName", name, err)
			}
		}
		assertOnlyTeams(t, home)
	})

	t.Run("PathEscape", func(t *testing.T) {
		home := filepath.Join(t.TempDir(), "home")
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, name := range escapeNames {
			if _, err := teams.Create(home, name); !errors.Is(err, teams.ErrInvalidName) {
				t.Errorf("Create(%q) = %v, want ErrInvalidName", name, err)
			}
		}
		if tree := MustTree(t, filepath.Dir(home)); len(tree) != 2 {
			t.Errorf("files written: %v", tree)
		}
	})
}

func TestCopy(t *testing.T) {
	t.Run("Builtin", func(t *testing.T) {
		home := t.TempDir()
		s, err := teams.Copy(home, "", "@cliq/feature", "my-feature")
		if err != nil {
			t.Fatal(err)
		}
		if s.Name != "@local/my-feature" || s.Builtin || s.PhaseCount != 3 {
			t.Errorf("summary = %+v", s)
		}
		team, err := pipeline.LoadTeam(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		if team.Name != "@local/my-feature" {
			t.Errorf("team.yml name = %s", team.Name)
		}
		data, err := os.ReadFile(filepath.Join(s.Path, "team.yml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "default_agent") {
			t.Errorf("comments were lost:\n%s", data)
		}
		if _, err := os.Stat(filepath.Join(s.Path, "roles", "architect.md")); err != nil {
			t.Errorf("role not copied: %v", err)
		}
	})

	t.Run("InstalledAndProject", func(t *testing.T) {
		home := t.TempDir()
		MustInstall(t, home, "@acme/base", "1.2.0")
		s, err := teams.Copy(home, "", "@acme/base", "@acme/derived")
		if err != nil || s.Version != "1.2.0" {
			t.Fatalf("Copy = %+v, %v", s, err)
		}
		project := MustProject(t, "@local/assembled")
		s, err = teams.Copy(home, project, "@project", "saved")
		if err != nil || s.Name != "@local/saved" || s.Version != "9.9.9" {
			t.Fatalf("Copy(@project) = %+v, %v", s, err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		home := t.TempDir()
		MustInstall(t, home, "@local/taken", "1")
		cases := []struct {
			source, name string
			want         error
		}{
			{"@local/nope", "x", teams.ErrNotFound},
			{"@cliq/hello-world", "taken", teams.ErrExists},
			{"@cliq/hello-world", "@cliq/copy", teams.ErrInvalidName},
			{"@local/../../etc", "x", teams.ErrInvalidName},
		}
		for _, name := range escapeNames {
			cases = append(cases, struct {
				source, name string
				want         error
			}{"@cliq/hello-world", name, teams.ErrInvalidName})
		}
		for _, c := range cases {
			if _, err := teams.Copy(home, "", c.source, c.name); !errors.Is(err, c.want) {
				t.Errorf("Copy(%q, %q) = %v, want %v", c.source, c.name, err, c.want)
			}
		}
		assertOnlyTeams(t, home, "@local/taken")
	})

	t.Run("InvalidSource", func(t *testing.T) {
		home := t.TempDir()
		MustWriteTeam(t, filepath.Join(home, "teams", "@local", "bad"),
			"name: \"@local/bad\"\nworkflow:\n  phases:\n    - name: a\n", nil)
		_, err := teams.Copy(home, "", "@local/bad", "copy")
		if !errors.Is(err, pipeline.ErrInvalidTeam) {
			t.Fatalf("Copy = %v, want ErrInvalidTeam", err)
		}
		if strings.Contains(err.Error(), home) || !strings.Contains(err.Error(), "@local/copy/") {
			t.Errorf("error %q should name the team, not the staging path", err)
		}
		assertOnlyTeams(t, home, "@local/bad")
	})
}

func TestDelete(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		home := t.TempDir()
		MustInstall(t, home, "@acme/gone", "1")
		MustInstall(t, home, "@local/a", "1")
		if err := teams.Delete(home, "@acme/gone"); err != nil {
			t.Fatal(err)
		}
		if err := teams.Delete(home, "a"); err != nil {
			t.Fatal(err)
		}
		if tree := MustTree(t, filepath.Join(home, "teams")); len(tree) != 1 {
			t.Errorf("left behind: %v", tree)
		}
	})

	t.Run("KeepsOtherTeamsOfScope", func(t *testing.T) {
		home := t.TempDir()
		MustInstall(t, home, "@local/a", "1")
		MustInstall(t, home, "@local/b", "1")
		if err := teams.Delete(home, "@local/a"); err != nil {
			t.Fatal(err)
		}
		if _, err := teams.Get(home, "", "@local/b"); err != nil {
			t.Errorf("Get(@local/b) after deleting a: %v", err)
		}
	})

	t.Run("ErrBuiltin", func(t *testing.T) {
		home := t.TempDir()
		for _, name := range teams.BuiltinNames() {
			err := teams.Delete(home, name)
			if !errors.Is(err, teams.ErrBuiltin) {
				t.Errorf("Delete(%s) = %v, want ErrBuiltin", name, err)
			}
		}
		if _, err := teams.Get(home, "", "@cliq/hello-world"); err != nil {
			t.Errorf("built-in gone after Delete: %v", err)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		home := t.TempDir()
		for _, name := range []string{"@local/nope", "nope", "@cliq/nope"} {
			if err := teams.Delete(home, name); !errors.Is(err, teams.ErrNotFound) {
				t.Errorf("Delete(%s) = %v, want ErrNotFound", name, err)
			}
		}
	})

	t.Run("PathEscape", func(t *testing.T) {
		root := t.TempDir()
		home := filepath.Join(root, "home")
		victim := MustWriteTeam(t, filepath.Join(root, "victim"), "name: x\n", nil)
		MustWriteTeam(t, filepath.Join(home, "x"), "name: x\n", nil)
		for _, name := range append(escapeNames, "@../victim", "../victim", "@local/../../victim") {
			if err := teams.Delete(home, name); !errors.Is(err, teams.ErrInvalidName) {
				t.Errorf("Delete(%q) = %v, want ErrInvalidName", name, err)
			}
		}
		for _, dir := range []string{victim, filepath.Join(home, "x")} {
			if _, err := os.Stat(filepath.Join(dir, "team.yml")); err != nil {
				t.Errorf("%s was touched: %v", dir, err)
			}
		}
	})
}

func TestInstall(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		home := t.TempDir()
		src := MustValidTeam(t, "@acme/tool", "1.0.0")
		if err := os.WriteFile(filepath.Join(src, "README.md"), []byte("# Tool\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(src, ".git"), 0o755); err != nil {
			t.Fatal(err)
		}
		res, err := teams.Install(home, src, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Name != "@acme/tool" || res.Version != "1.0.0" || res.Replaced {
			t.Errorf("result = %+v", res)
		}
		dir := filepath.Join(home, "teams", "@acme", "tool")
		for _, f := range []string{"team.yml", "roles/review.md", "README.md"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s not installed: %v", f, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			t.Error(".git was copied")
		}
	})

	t.Run("SameVersion", func(t *testing.T) {
		home := t.TempDir()
		MustInstall(t, home, "@acme/tool", "1.0.0")
		src := MustValidTeam(t, "@acme/tool", "1.0.0")
		if _, err := teams.Install(home, src, false); !errors.Is(err, teams.ErrExists) {
			t.Fatalf("Install again = %v, want ErrExists", err)
		}
		res, err := teams.Install(home, src, true)
		if err != nil || !res.Replaced || res.PreviousVersion != "1.0.0" {
			t.Errorf("Install --force = %+v, %v", res, err)
		}
	})

	t.Run("Upgrade", func(t *testing.T) {
		home := t.TempDir()
		MustInstall(t, home, "@acme/tool", "1.0.0")
		src := MustValidTeam(t, "@acme/tool", "1.1.0")
		if err := os.WriteFile(filepath.Join(src, "roles", "extra.md"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := teams.Install(home, src, false)
		if err != nil || !res.Replaced || res.PreviousVersion != "1.0.0" || res.Version != "1.1.0" {
			t.Fatalf("upgrade = %+v, %v", res, err)
		}
		want := []string{".", "roles", "roles/extra.md", "roles/review.md", "team.yml"}
		got := MustTree(t, filepath.Join(home, "teams", "@acme", "tool"))
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("installed files = %v, want %v", got, want)
		}
		assertOnlyTeams(t, home, "@acme/tool")
	})

	t.Run("InvalidTeam", func(t *testing.T) {
		home := t.TempDir()
		MustInstall(t, home, "@acme/tool", "1.0.0")
		src := MustValidTeam(t, "@acme/tool", "2.0.0")
		if err := os.Remove(filepath.Join(src, "roles", "review.md")); err != nil {
			t.Fatal(err)
		}
		_, err := teams.Install(home, src, true)
		var de *pipeline.DefinitionError
		if !errors.As(err, &de) || de.Errors[0].Phase != "review" || de.Errors[0].Field != "role" {
			t.Fatalf("Install = %v, want a missing role error", err)
		}
		if s, err := teams.Get(home, "", "@acme/tool"); err != nil || s.Version != "1.0.0" {
			t.Errorf("installed team after failed install = %+v, %v", s, err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		home := t.TempDir()
		if _, err := teams.Install(home, t.TempDir(), false); !errors.Is(err, teams.ErrNotFound) {
			t.Errorf("Install(empty dir) = %v, want ErrNotFound", err)
		}
		for _, name := range []string{"@cliq/hello-world", "@cliq/other", "@Acme/Tool"} {
			src := MustValidTeam(t, name, "1")
			if _, err := teams.Install(home, src, true); !errors.Is(err, teams.ErrInvalidName) {
				t.Errorf("Install(%s) = %v, want ErrInvalidName", name, err)
			}
		}
		assertOnlyTeams(t, home)
	})

	t.Run("Symlink", func(t *testing.T) {
		home := t.TempDir()
		src := MustValidTeam(t, "@acme/link", "1")
		secret := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(secret, filepath.Join(src, "roles", "leak.md")); err != nil {
			t.Fatal(err)
		}
		_, err := teams.Install(home, src, false)
		if err == nil || !strings.Contains(err.Error(), "roles/leak.md") {
			t.Errorf("Install = %v, want an error naming roles/leak.md", err)
		}
		assertOnlyTeams(t, home)
	})
}

func TestValidate(t *testing.T) {
	t.Run("Builtins", func(t *testing.T) {
		home := t.TempDir()
		for _, name := range teams.BuiltinNames() {
			res, err := teams.Validate(home, "", name)
			if err != nil || !res.Valid || len(res.Errors) != 0 || res.Name != name {
				t.Errorf("Validate(%s) = %+v, %v", name, res, err)
			}
		}
	})

	t.Run("Problems", func(t *testing.T) {
		home := t.TempDir()
		MustWriteTeam(t, filepath.Join(home, "teams", "@local", "bad"), `name: "@local/bad"
workflow:
  phases:
    - name: a
      depends_on: [nope]
    - name: g
      type: gate
      depends_on: [a]
      max_iterations: 0
      commands:
        - name: t
          run: "true"
`, nil)
		res, err := teams.Validate(home, "", "bad")
		if err != nil {
			t.Fatal(err)
		}
		if res.Valid || res.Name != "@local/bad" {
			t.Fatalf("result = %+v, want invalid", res)
		}
		found := map[string]teams.ValidationError{}
		for _, e := range res.Errors {
			found[e.Phase+"."+e.Field] = e
			if e.File != "team.yml" || e.Message == "" {
				t.Errorf("error %+v: want file team.yml and a message", e)
			}
		}
		if _, ok := found["g.max_iterations"]; !ok {
			t.Errorf("errors %+v: missing g.max_iterations", res.Errors)
		}
	})

	t.Run("MissingRole", func(t *testing.T) {
		home := t.TempDir()
		MustWriteTeam(t, filepath.Join(home, "teams", "@local", "norole"),
			strings.Replace(strings.Replace(validTeam, "%s", "@local/norole", 1), "%s", "1", 1), nil)
		res, err := teams.Validate(home, "", "@local/norole")
		if err != nil {
			t.Fatal(err)
		}
		if res.Valid || len(res.Errors) != 1 || res.Errors[0].Phase != "review" || res.Errors[0].Field != "role" {
			t.Errorf("result = %+v, want one missing role", res)
		}
	})

	t.Run("NameMismatch", func(t *testing.T) {
		home := t.TempDir()
		dir := MustValidTeam(t, "@acme/other", "1")
		if err := os.MkdirAll(filepath.Join(home, "teams", "@local"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(dir, filepath.Join(home, "teams", "@local", "moved")); err != nil {
			t.Fatal(err)
		}
		res, err := teams.Validate(home, "", "@local/moved")
		if err != nil {
			t.Fatal(err)
		}
		if res.Valid || len(res.Errors) != 1 || res.Errors[0].Field != "name" {
			t.Errorf("result = %+v, want a name error", res)
		}
	})

	t.Run("Project", func(t *testing.T) {
		project := MustProject(t, "@local/assembled")
		res, err := teams.Validate(t.TempDir(), project, "@project")
		if err != nil || !res.Valid || res.Name != "@local/assembled" {
			t.Errorf("Validate(@project) = %+v, %v", res, err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		home := t.TempDir()
		if _, err := teams.Validate(home, "", "@local/nope"); !errors.Is(err, teams.ErrNotFound) {
			t.Errorf("Validate(nope) = %v, want ErrNotFound", err)
		}
		for _, name := range escapeNames {
			if _, err := teams.Validate(home, "", name); !errors.Is(err, teams.ErrInvalidName) {
				t.Errorf("Validate(%q) = %v, want ErrInvalidName", name, err)
			}
		}
	})
}

func TestValidateDir(t *testing.T) {
	res, err := teams.ValidateDir(MustWriteTeam(t, t.TempDir(), "name: [x\n", nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Valid || len(res.Errors) != 1 || res.Errors[0].File != "team.yml" || res.Errors[0].Line == 0 {
		t.Errorf("result = %+v, want one YAML error with a line", res)
	}
	if _, err := teams.ValidateDir(t.TempDir()); !errors.Is(err, teams.ErrNotFound) {
		t.Errorf("ValidateDir(empty) = %v, want ErrNotFound", err)
	}
}

// TestBuiltin_HelloWorldRuns runs the commands of @cliq/hello-world with
// sh -c in dependency order, as the exec agent does, in a project with a
// requirement, and checks that every command passes.
func TestBuiltin_HelloWorldRuns(t *testing.T) {
	home, project := t.TempDir(), t.TempDir()
	dir, err := teams.Resolve(home, project, "@cliq/hello-world")
	if err != nil {
		t.Fatal(err)
	}
	team, err := pipeline.LoadTeam(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(project, ".cliq"), 0o755); err != nil {
		t.Fatal(err)
	}
	req := filepath.Join(project, ".cliq", "req_spec.md")
	if err := os.WriteFile(req, []byte("Say hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range team.Order() {
		phase, _ := team.PhaseByName(name)
		if phase.Agent != pipeline.AgentExec {
			t.Fatalf("phase %s uses agent %q, want exec", name, phase.Agent)
		}
		for _, c := range phase.Commands {
			cmd := exec.Command("sh", "-c", c.Run)
			cmd.Dir = project
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("phase %s command %s: %v\n%s", name, c.Name, err, out)
			}
		}
	}
	out, err := os.ReadFile(filepath.Join(project, "hello", "output.md"))
	if err != nil || !strings.Contains(string(out), "Say hello") {
		t.Errorf("hello/output.md = %q, %v", out, err)
	}
}
