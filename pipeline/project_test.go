package pipeline

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const agentTeamYML = `
name: "@test/agents"
inputs:
  - name: topic
  - name: dir
workflow:
  phases:
    - name: writer
    - name: check
      type: exec
      depends_on: [writer]
      commands: [{name: c, run: "test -d $(inputs.dir)"}]
`

// MustAgentTeam writes a valid team with a role for writer and returns its
// directory.
func MustAgentTeam(tb testing.TB) string {
	tb.Helper()
	return MustWriteTeam(tb, agentTeamYML, map[string]string{
		"writer": "Write about $(inputs.topic).",
		"extra":  "A role file no phase uses.",
	})
}

// MustAssemble assembles teamDir into a new project and returns the
// project directory.
func MustAssemble(tb testing.TB, teamDir string) string {
	tb.Helper()
	project := tb.TempDir()
	if _, err := Assemble(project, teamDir); err != nil {
		tb.Fatalf("Assemble: %v", err)
	}
	return project
}

// listDir returns the sorted names in dir, or nil when it does not exist.
func listDir(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func TestResolveTeamRef(t *testing.T) {
	home := t.TempDir()
	cwd := t.TempDir()
	installed := filepath.Join(home, TeamsDirName, "@acme", "review")
	MustWriteFile(t, filepath.Join(installed, TeamFileName), "name: x\n")
	localFallback := filepath.Join(home, TeamsDirName, "@local", "blog")
	MustWriteFile(t, filepath.Join(localFallback, TeamFileName), "name: x\n")
	MustWriteFile(t, filepath.Join(cwd, "teams", "mine", TeamFileName), "name: x\n")
	MustWriteFile(t, filepath.Join(cwd, "@acme", "review", TeamFileName), "name: x\n")
	MustWriteFile(t, filepath.Join(cwd, "empty", "README.md"), "no team here\n")

	t.Run("OK", func(t *testing.T) {
		tests := []struct{ ref, want string }{
			{"@acme/review", installed},
			{"teams/mine", filepath.Join(cwd, "teams", "mine")},
			{"./teams/mine/", filepath.Join(cwd, "teams", "mine")},
			{filepath.Join(cwd, "teams", "mine"), filepath.Join(cwd, "teams", "mine")},
			{"./@acme/review", filepath.Join(cwd, "@acme", "review")},
			{"blog", localFallback},
		}
		for _, tt := range tests {
			got, err := ResolveTeamRef(home, cwd, tt.ref)
			if err != nil {
				t.Errorf("ResolveTeamRef(%q): %v", tt.ref, err)
				continue
			}
			if got != tt.want {
				t.Errorf("ResolveTeamRef(%q) = %q, want %q", tt.ref, got, tt.want)
			}
		}
	})
	t.Run("ErrInvalidTeamRef", func(t *testing.T) {
		for _, ref := range []string{"", "  ", "@acme", "@acme/", "@/review", "@acme/../../etc", "@../x",
			"@acme/review/extra", "@acme/.hidden", "@acme\\review", "@acme//review", "hub://@acme/review"} {
			_, err := ResolveTeamRef(home, cwd, ref)
			if !errors.Is(err, ErrInvalidTeamRef) {
				t.Errorf("ResolveTeamRef(%q) err = %v, want ErrInvalidTeamRef", ref, err)
				continue
			}
			if quoted := strconv.Quote(ref); !strings.Contains(err.Error(), quoted) {
				t.Errorf("error %q does not name the reference %q", err, ref)
			}
		}
	})
	t.Run("ErrTeamNotFound", func(t *testing.T) {
		tests := []struct{ ref, want string }{
			{"@acme/missing", "@acme/missing is not installed"},
			{"nowhere", `"nowhere" is neither a team directory nor an installed team`},
			{"empty", "directory empty has no team.yml"},
			{"../outside", `"../outside" is neither`},
		}
		for _, tt := range tests {
			_, err := ResolveTeamRef(home, cwd, tt.ref)
			if !errors.Is(err, ErrTeamNotFound) {
				t.Errorf("ResolveTeamRef(%q) err = %v, want ErrTeamNotFound", tt.ref, err)
				continue
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), home) {
				t.Errorf("error %q shows the home path", err)
			}
		}
	})
}

func TestCheckTeamName(t *testing.T) {
	for _, name := range []string{"@cliq/hello-world", "@a/b", "@my_org/v1.2", "@A9/x-y_z"} {
		if err := CheckTeamName(name); err != nil {
			t.Errorf("CheckTeamName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"cliq/x", "@cliq", "@cliq/", "@cliq/..", "@../x", "@cliq/a/b", "@cliq/-x", "@ cliq/x"} {
		if err := CheckTeamName(name); !errors.Is(err, ErrInvalidTeamRef) {
			t.Errorf("CheckTeamName(%q) = %v, want ErrInvalidTeamRef", name, err)
		}
	}
}

func TestAssemble(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		teamDir := MustAgentTeam(t)
		project := t.TempDir()
		team, err := Assemble(project, teamDir)
		if err != nil {
			t.Fatalf("Assemble: %v", err)
		}
		cliqDir := filepath.Join(project, ProjectDirName)
		if team.Dir != cliqDir {
			t.Errorf("Dir = %q, want %q", team.Dir, cliqDir)
		}
		want, _ := os.ReadFile(filepath.Join(teamDir, TeamFileName))
		got, err := os.ReadFile(filepath.Join(cliqDir, TeamFileName))
		if err != nil || string(got) != string(want) {
			t.Errorf("assembled team.yml = %q, %v; want a copy of the source", got, err)
		}
		if roles := listDir(t, filepath.Join(cliqDir, RolesDirName)); !slices.Equal(roles, []string{"extra.md", "writer.md"}) {
			t.Errorf("roles = %v, want [extra.md writer.md]", roles)
		}
		if names := listDir(t, cliqDir); !slices.Equal(names, []string{RolesDirName, TeamFileName}) {
			t.Errorf(".cliq holds %v, want only roles and team.yml (no staging leftovers)", names)
		}
	})
	t.Run("ReplacesStaleRoles", func(t *testing.T) {
		project := MustAssemble(t, MustAgentTeam(t))
		MustWriteFile(t, filepath.Join(project, ProjectDirName, "settings.json"), "{}\n")
		execOnly := MustWriteTeam(t, teamYML(execPhase("only", "")), nil)
		team, err := Assemble(project, execOnly)
		if err != nil {
			t.Fatalf("Assemble: %v", err)
		}
		if team.Name != "@test/bad" {
			t.Errorf("Name = %q, want the new team", team.Name)
		}
		cliqDir := filepath.Join(project, ProjectDirName)
		if roles := listDir(t, filepath.Join(cliqDir, RolesDirName)); len(roles) != 0 {
			t.Errorf("roles = %v, want none left from the old team", roles)
		}
		if names := listDir(t, cliqDir); !slices.Equal(names, []string{RolesDirName, "settings.json", TeamFileName}) {
			t.Errorf(".cliq holds %v, want roles, settings.json, team.yml", names)
		}
	})
	t.Run("ErrInvalidTeam", func(t *testing.T) {
		project := MustAssemble(t, MustAgentTeam(t))
		before, _ := os.ReadFile(filepath.Join(project, ProjectDirName, TeamFileName))
		bad := MustWriteTeam(t, teamYML(execPhase("a", "      depends_on: [ghost]\n")), nil)
		_, err := Assemble(project, bad)
		MustDefinitionError(t, err)
		after, _ := os.ReadFile(filepath.Join(project, ProjectDirName, TeamFileName))
		if string(after) != string(before) {
			t.Errorf("team.yml changed after a failed assemble")
		}
		if roles := listDir(t, filepath.Join(project, ProjectDirName, RolesDirName)); len(roles) != 2 {
			t.Errorf("roles = %v, want the 2 old roles kept", roles)
		}
	})
	t.Run("ErrInvalidTeamFreshProject", func(t *testing.T) {
		project := t.TempDir()
		bad := MustWriteTeam(t, "name: [\n", nil)
		if _, err := Assemble(project, bad); !errors.Is(err, ErrInvalidTeam) {
			t.Fatalf("err = %v, want ErrInvalidTeam", err)
		}
		if names := listDir(t, project); len(names) != 0 {
			t.Errorf("project holds %v, want nothing written", names)
		}
	})
	t.Run("ErrTeamNotFound", func(t *testing.T) {
		if _, err := Assemble(t.TempDir(), t.TempDir()); !errors.Is(err, ErrTeamNotFound) {
			t.Fatalf("err = %v, want ErrTeamNotFound", err)
		}
	})
}

func TestWriteRequirement(t *testing.T) {
	inputs := map[string]string{"topic": "caching", "dir": "src"}

	t.Run("OK", func(t *testing.T) {
		project := MustAssemble(t, MustAgentTeam(t))
		if err := WriteRequirement(project, "Add a cache.", inputs); err != nil {
			t.Fatalf("WriteRequirement: %v", err)
		}
		req, err := ReadRequirement(project)
		if err != nil {
			t.Fatal(err)
		}
		if req != "Add a cache.\n" {
			t.Errorf("req_spec.md = %q, want the text with a final newline", req)
		}
		got, err := ReadInputs(project)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, inputs) {
			t.Errorf("ReadInputs = %v, want %v", got, inputs)
		}
		info, err := os.Stat(filepath.Join(project, ProjectDirName, InputsFileName))
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("inputs.json mode = %o, want 600", perm)
		}
	})
	t.Run("NoInputsTeam", func(t *testing.T) {
		project := MustAssemble(t, MustWriteTeam(t, teamYML(execPhase("a", "")), nil))
		if err := WriteRequirement(project, "text\n", nil); err != nil {
			t.Fatalf("WriteRequirement: %v", err)
		}
		got, err := ReadInputs(project)
		if err != nil || len(got) != 0 {
			t.Errorf("ReadInputs = %v, %v; want an empty map", got, err)
		}
	})

	errTests := []struct {
		name   string
		text   string
		inputs map[string]string
		want   []string
	}{
		{"EmptyText", " \n", inputs, []string{"the requirement is empty"}},
		{"MissingInput", "x", map[string]string{"topic": "a"},
			[]string{"missing input dir (pass --input dir=VALUE)"}},
		{"MissingInputs", "x", nil,
			[]string{"missing input topic, dir (pass --input topic=VALUE --input dir=VALUE)"}},
		{"EmptyInput", "x", map[string]string{"topic": "", "dir": "src"}, []string{`input "topic" is empty`}},
		{"UnknownInput", "x", map[string]string{"topic": "a", "dir": "b", "colour": "red"},
			[]string{"unknown input colour (team @test/agents declares: topic, dir)"}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			project := MustAssemble(t, MustAgentTeam(t))
			err := WriteRequirement(project, tt.text, tt.inputs)
			if !errors.Is(err, ErrInvalidRequirement) {
				t.Fatalf("err = %v, want ErrInvalidRequirement", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
			for _, name := range []string{RequirementFileName, InputsFileName} {
				if _, err := os.Stat(filepath.Join(project, ProjectDirName, name)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s exists after a rejected requirement", name)
				}
			}
		})
	}
	t.Run("ErrNotAssembled", func(t *testing.T) {
		err := WriteRequirement(t.TempDir(), "x", nil)
		if !errors.Is(err, ErrNotAssembled) {
			t.Fatalf("err = %v, want ErrNotAssembled", err)
		}
		if !strings.Contains(err.Error(), "cliq assemble") {
			t.Errorf("error %q does not say to run cliq assemble", err)
		}
	})
	t.Run("ErrMissingRole", func(t *testing.T) {
		project := MustAssemble(t, MustAgentTeam(t))
		if err := os.Remove(filepath.Join(project, ProjectDirName, RolesDirName, "writer.md")); err != nil {
			t.Fatal(err)
		}
		err := WriteRequirement(project, "x", inputs)
		MustDefinitionError(t, err)
		if !strings.Contains(err.Error(), "missing role file roles/writer.md") {
			t.Errorf("error %q does not name the missing role", err)
		}
	})
}

func TestReadInputs(t *testing.T) {
	t.Run("Missing", func(t *testing.T) {
		got, err := ReadInputs(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || len(got) != 0 {
			t.Errorf("ReadInputs = %v, want an empty map", got)
		}
	})
	t.Run("ErrInvalidJSON", func(t *testing.T) {
		project := t.TempDir()
		MustWriteFile(t, filepath.Join(project, ProjectDirName, InputsFileName), `{"a": 1}`)
		if _, err := ReadInputs(project); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
			t.Errorf("err = %v, want an invalid JSON error", err)
		}
	})
}

func TestReadRequirement_Missing(t *testing.T) {
	_, err := ReadRequirement(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "cliq req") {
		t.Errorf("error %q does not say to run cliq req", err)
	}
}

func TestParseInputs(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		got, err := ParseInputs([]string{"a=1", "b=x=y", "c="})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"a": "1", "b": "x=y", "c": ""}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseInputs = %v, want %v", got, want)
		}
	})
	t.Run("ErrInvalidRequirement", func(t *testing.T) {
		for _, arg := range [][]string{{"novalue"}, {"=x"}, {"a b=1"}, {"a=1", "a=2"}} {
			_, err := ParseInputs(arg)
			if !errors.Is(err, ErrInvalidRequirement) {
				t.Errorf("ParseInputs(%q) err = %v, want ErrInvalidRequirement", arg, err)
				continue
			}
			if !strings.Contains(err.Error(), arg[len(arg)-1]) {
				t.Errorf("error %q does not name %q", err, arg[len(arg)-1])
			}
		}
	})
}
