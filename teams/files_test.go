package teams_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cliq/pipeline"
	"cliq/teams"
)

// mustWriteDir writes a team directory with version and the role file of
// its phase "sub", and returns it.
func mustWriteDir(tb testing.TB, yml, version string) string {
	tb.Helper()
	return MustWriteTeam(tb, tb.TempDir(), "version: \""+version+"\"\n"+yml, map[string]string{"sub": "Run it.\n"})
}

// installedVersion returns the version of the installed team name.
func installedVersion(tb testing.TB, home, name string) string {
	tb.Helper()
	d, err := teams.Get(home, "", name)
	if err != nil {
		tb.Fatal(err)
	}
	return d.Version
}

func TestInstall_SubTeams(t *testing.T) {
	t.Run("CycleClosedByNewVersion", func(t *testing.T) {
		home := t.TempDir()
		for _, dir := range []string{mustWriteDir(t, leafTeam("@cyc/a"), "1"),
			mustWriteDir(t, teamWithPhase("@cyc/b", "@cyc/a"), "1")} {
			if _, err := teams.Install(home, dir, false); err != nil {
				t.Fatal(err)
			}
		}
		_, err := teams.Install(home, mustWriteDir(t, teamWithPhase("@cyc/a", "@cyc/b"), "2"), false)
		if !errors.Is(err, pipeline.ErrInvalidTeam) {
			t.Fatalf("err = %v, want ErrInvalidTeam", err)
		}
		msg := err.Error()
		for _, want := range []string{"@cyc/a/team.yml", "includes itself", "@cyc/a -> @cyc/b -> @cyc/a"} {
			if !strings.Contains(msg, want) {
				t.Errorf("err = %q, want it to contain %q", msg, want)
			}
		}
		if strings.Contains(msg, home) || strings.Contains(msg, ".stage-") {
			t.Errorf("err = %q shows a path", msg)
		}
		if v := installedVersion(t, home, "@cyc/a"); v != "1" {
			t.Errorf("installed version = %q, want 1 kept", v)
		}
		assertOnlyTeams(t, home, "@cyc/a", "@cyc/b")
	})
	t.Run("SelfByBareName", func(t *testing.T) {
		home := t.TempDir()
		_, err := teams.Install(home, mustWriteDir(t, teamWithPhase("@local/me", "me"), "1"), false)
		if !errors.Is(err, pipeline.ErrInvalidTeam) || !strings.Contains(err.Error(), "includes itself") {
			t.Fatalf("err = %v, want a cycle", err)
		}
		assertOnlyTeams(t, home)
	})
	t.Run("MissingSubTeam", func(t *testing.T) {
		home := t.TempDir()
		_, err := teams.Install(home, mustWriteDir(t, teamWithPhase("@x/a", "@x/none"), "1"), false)
		if !errors.Is(err, pipeline.ErrInvalidTeam) || !strings.Contains(err.Error(), "@x/none") {
			t.Fatalf("err = %v, want the missing sub-team named", err)
		}
		assertOnlyTeams(t, home)
	})
}

func TestCopy_SubTeams(t *testing.T) {
	home := t.TempDir()
	mustInstalled(t, home, "@cyc/a", teamWithPhase("@cyc/a", "@cyc/b"))
	mustInstalled(t, home, "@cyc/b", teamWithPhase("@cyc/b", "@cyc/a"))
	_, err := teams.Copy(home, "", "@cyc/a", "cc")
	if !errors.Is(err, pipeline.ErrInvalidTeam) || !strings.Contains(err.Error(), "includes itself") {
		t.Fatalf("err = %v, want a cycle", err)
	}
	if strings.Contains(err.Error(), home) {
		t.Errorf("err = %q shows a path", err)
	}
	assertOnlyTeams(t, home, "@cyc/a", "@cyc/b")
}

// mustOneFileError checks that res is invalid with one error on file.
func mustOneFileError(tb testing.TB, res *teams.ValidationResult, file, want string) {
	tb.Helper()
	if res.Valid || len(res.Errors) != 1 {
		tb.Fatalf("result = %+v, want one error", res)
	}
	if e := res.Errors[0]; e.File != file || !strings.Contains(e.Message, want) {
		tb.Errorf("error = %+v, want file %s and %q", e, file, want)
	}
}

func TestValidateDir_Files(t *testing.T) {
	big := strings.Repeat("x", teams.MaxFileSize+1)
	t.Run("SymlinkedTeamFile", func(t *testing.T) {
		real := MustWriteTeam(t, t.TempDir(), leafTeam("@x/a"), nil)
		dir := t.TempDir()
		if err := os.Symlink(filepath.Join(real, "team.yml"), filepath.Join(dir, "team.yml")); err != nil {
			t.Skip("symbolic links unsupported:", err)
		}
		res, err := teams.ValidateDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		mustOneFileError(t, res, "team.yml", "symbolic link")
	})
	t.Run("SymlinkedRoleFile", func(t *testing.T) {
		t.Setenv("CLIQ_HOME", t.TempDir())
		dir := MustWriteTeam(t, t.TempDir(), "name: \"@x/a\"\nworkflow:\n  phases:\n    - name: a\n", nil)
		target := filepath.Join(t.TempDir(), "a.md")
		if err := os.WriteFile(target, []byte("Do it.\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, "roles", "a.md")); err != nil {
			t.Skip("symbolic links unsupported:", err)
		}
		res, err := teams.ValidateDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		mustOneFileError(t, res, "roles/a.md", "symbolic link")
		if res.Errors[0].Field != "role" {
			t.Errorf("field = %q, want role", res.Errors[0].Field)
		}
	})
	t.Run("BigTeamFile", func(t *testing.T) {
		dir := MustWriteTeam(t, t.TempDir(), leafTeam("@x/a")+"description: \""+big+"\"\n", nil)
		res, err := teams.ValidateDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		mustOneFileError(t, res, "team.yml", "over the limit of 1048576 bytes")
	})
	t.Run("BigRoleFile", func(t *testing.T) {
		t.Setenv("CLIQ_HOME", t.TempDir())
		dir := MustWriteTeam(t, t.TempDir(), "name: \"@x/a\"\nworkflow:\n  phases:\n    - name: a\n",
			map[string]string{"a": big})
		res, err := teams.ValidateDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		mustOneFileError(t, res, "roles/a.md", "roles/a.md is 1048577 bytes")
	})
}

func TestInstall_BigFile(t *testing.T) {
	home := t.TempDir()
	dir := MustWriteTeam(t, t.TempDir(), "name: \"@x/a\"\nworkflow:\n  phases:\n    - name: a\n",
		map[string]string{"a": strings.Repeat("x", teams.MaxFileSize+1)})
	_, err := teams.Install(home, dir, false)
	if !errors.Is(err, pipeline.ErrInvalidTeam) || !strings.Contains(err.Error(), "@x/a/roles/a.md") ||
		!strings.Contains(err.Error(), "1048576") {
		t.Fatalf("err = %v, want the role file and the limit named", err)
	}
	assertOnlyTeams(t, home)
}

func TestList_BigTeamFile(t *testing.T) {
	home := t.TempDir()
	big := "description: \"" + strings.Repeat("x", teams.MaxFileSize) + "\"\n"
	MustWriteTeam(t, filepath.Join(home, "teams", "@x", "big"), leafTeam("@x/big")+big, nil)
	list, err := teams.List(home, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.Name != "@x/big" {
			continue
		}
		if s.Description != "" || !strings.Contains(s.Error, "over the limit") {
			t.Errorf("summary = description of %d bytes, error %q; want no description and the limit",
				len(s.Description), s.Error)
		}
		return
	}
	t.Fatalf("@x/big not listed: %+v", list)
}
