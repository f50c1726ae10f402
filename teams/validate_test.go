package teams_test

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"cliq/teams"
)

// teamWithPhase returns a team.yml named name whose only phase, "sub",
// is a team phase that runs ref.
func teamWithPhase(name, ref string) string {
	return "name: \"" + name + "\"\nworkflow:\n  phases:\n" +
		"    - name: sub\n      type: team\n      team: \"" + ref + "\"\n"
}

// leafTeam is a team.yml with one exec phase.
func leafTeam(name string) string {
	return "name: \"" + name + "\"\nworkflow:\n  phases:\n" +
		"    - name: leaf\n      agent: exec\n      commands: [{name: ok, run: \"true\"}]\n"
}

// mustInstalled writes the team yml into home as the installed team name,
// with the role file of its team phase.
func mustInstalled(tb testing.TB, home, name, yml string) {
	tb.Helper()
	dir := filepath.Join(home, "teams", filepath.FromSlash(name))
	MustWriteTeam(tb, dir, yml, map[string]string{"sub": "Run the sub-team.\n"})
}

// testdataTeam returns the directory of testdata/teams/<name>.
func testdataTeam(tb testing.TB, name string) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate the test source")
	}
	return filepath.Join(filepath.Dir(filepath.Dir(file)), "testdata", "teams", name)
}

// mustOneSubTeamError checks that res is invalid with exactly one error,
// on the team field of phase "sub", whose message contains want and no
// path of this machine.
func mustOneSubTeamError(tb testing.TB, res *teams.ValidationResult, want string, paths ...string) {
	tb.Helper()
	if res.Valid {
		tb.Fatalf("result = %+v, want invalid", res)
	}
	if len(res.Errors) != 1 {
		tb.Fatalf("errors = %+v, want one", res.Errors)
	}
	e := res.Errors[0]
	if e.Phase != "sub" || e.Field != "team" || e.File != "team.yml" {
		tb.Errorf("error = %+v, want file team.yml, phase sub, field team", e)
	}
	if !strings.Contains(e.Message, want) {
		tb.Errorf("message = %q, want it to contain %q", e.Message, want)
	}
	for _, p := range paths {
		if strings.Contains(e.Message, p) {
			tb.Errorf("message = %q shows the path %s", e.Message, p)
		}
	}
}

func TestValidate_SubTeams(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		home := t.TempDir()
		mustInstalled(t, home, "@t/top", teamWithPhase("@t/top", "@t/leaf"))
		mustInstalled(t, home, "@t/leaf", leafTeam("@t/leaf"))
		res, err := teams.Validate(home, "", "@t/top")
		if err != nil {
			t.Fatal(err)
		}
		if !res.Valid || len(res.Errors) != 0 {
			t.Errorf("result = %+v, want valid", res)
		}
	})

	t.Run("Self", func(t *testing.T) {
		home := t.TempDir()
		mustInstalled(t, home, "@t/self", teamWithPhase("@t/self", "@t/self"))
		res, err := teams.Validate(home, "", "@t/self")
		if err != nil {
			t.Fatal(err)
		}
		mustOneSubTeamError(t, res, "@t/self -> @t/self", home)
	})

	t.Run("Indirect", func(t *testing.T) {
		home := t.TempDir()
		mustInstalled(t, home, "@t/a", teamWithPhase("@t/a", "@t/b"))
		mustInstalled(t, home, "@t/b", teamWithPhase("@t/b", "@t/c"))
		mustInstalled(t, home, "@t/c", teamWithPhase("@t/c", "@t/a"))
		res, err := teams.Validate(home, "", "@t/a")
		if err != nil {
			t.Fatal(err)
		}
		mustOneSubTeamError(t, res, "@t/a -> @t/b -> @t/c -> @t/a", home)
	})

	t.Run("CycleBelow", func(t *testing.T) {
		// The top team is not part of the cycle, but running it would
		// never end either.
		home := t.TempDir()
		mustInstalled(t, home, "@t/top", teamWithPhase("@t/top", "@t/x"))
		mustInstalled(t, home, "@t/x", teamWithPhase("@t/x", "@t/y"))
		mustInstalled(t, home, "@t/y", teamWithPhase("@t/y", "@t/x"))
		res, err := teams.Validate(home, "", "@t/top")
		if err != nil {
			t.Fatal(err)
		}
		mustOneSubTeamError(t, res, "@t/top -> @t/x -> @t/y -> @t/x", home)
	})

	t.Run("NotFound", func(t *testing.T) {
		home := t.TempDir()
		mustInstalled(t, home, "@t/top", teamWithPhase("@t/top", "@t/missing"))
		res, err := teams.Validate(home, "", "@t/top")
		if err != nil {
			t.Fatal(err)
		}
		mustOneSubTeamError(t, res, "@t/missing", home)
	})

	t.Run("InvalidSubTeam", func(t *testing.T) {
		home := t.TempDir()
		mustInstalled(t, home, "@t/top", teamWithPhase("@t/top", "@t/broken"))
		mustInstalled(t, home, "@t/broken", "name: \"@t/broken\"\nworkflow:\n  phases: []\n")
		res, err := teams.Validate(home, "", "@t/top")
		if err != nil {
			t.Fatal(err)
		}
		mustOneSubTeamError(t, res, "@t/broken", home)
	})

	t.Run("Project", func(t *testing.T) {
		// A project whose assembled team runs the installed team that
		// runs it back.
		home := t.TempDir()
		project := t.TempDir()
		MustWriteTeam(t, filepath.Join(project, ".cliq"), teamWithPhase("@t/p", "@t/q"),
			map[string]string{"sub": "Run q.\n"})
		mustInstalled(t, home, "@t/q", teamWithPhase("@t/q", "@t/p"))
		mustInstalled(t, home, "@t/p", teamWithPhase("@t/p", "@t/q"))
		res, err := teams.Validate(home, project, "@project")
		if err != nil {
			t.Fatal(err)
		}
		mustOneSubTeamError(t, res, "@t/p -> @t/q -> @t/p", home, project)
	})
}

func TestValidateDir_SubTeams(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		t.Setenv("CLIQ_HOME", t.TempDir())
		res, err := teams.ValidateDir(testdataTeam(t, "nested-parent"))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Valid || res.Name != "@testdata/nested-parent" {
			t.Errorf("result = %+v, want valid @testdata/nested-parent", res)
		}
	})

	t.Run("PathToItself", func(t *testing.T) {
		t.Setenv("CLIQ_HOME", t.TempDir())
		dir := MustWriteTeam(t, t.TempDir(), teamWithPhase("@t/loop", "."), map[string]string{"sub": "Again.\n"})
		res, err := teams.ValidateDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		mustOneSubTeamError(t, res, "@t/loop -> @t/loop", dir)
	})

	t.Run("Installed", func(t *testing.T) {
		home := t.TempDir()
		t.Setenv("CLIQ_HOME", home)
		mustInstalled(t, home, "@t/back", teamWithPhase("@t/back", "@t/dir"))
		mustInstalled(t, home, "@t/dir", teamWithPhase("@t/dir", "@t/back"))
		dir := MustWriteTeam(t, t.TempDir(), teamWithPhase("@t/dir", "@t/back"), map[string]string{"sub": "Go.\n"})
		res, err := teams.ValidateDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		mustOneSubTeamError(t, res, "@t/dir -> @t/back -> @t/dir", home, dir)
	})
}
