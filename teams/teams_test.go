package teams_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cliq/teams"
)

// validTeam is a team.yml with one exec phase and one agent phase that
// needs roles/review.md.
const validTeam = `name: "%s"
description: "test team"
version: "%s"
workflow:
  phases:
    - name: build
      agent: exec
      commands:
        - name: ok
          run: "true"
    - name: review
      depends_on: [build]
`

// MustWriteTeam writes a team directory at dir with the given team.yml and
// role files (role name to text).
func MustWriteTeam(tb testing.TB, dir, yml string, roles map[string]string) string {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "roles"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "team.yml"), []byte(yml), 0o644); err != nil {
		tb.Fatal(err)
	}
	for name, text := range roles {
		if err := os.WriteFile(filepath.Join(dir, "roles", name+".md"), []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// MustValidTeam writes a valid team named name with version version in a
// new temporary directory and returns the directory.
func MustValidTeam(tb testing.TB, name, version string) string {
	tb.Helper()
	yml := strings.Replace(strings.Replace(validTeam, "%s", name, 1), "%s", version, 1)
	return MustWriteTeam(tb, tb.TempDir(), yml, map[string]string{"review": "# Review\n"})
}

// MustInstall installs a valid team named name into home.
func MustInstall(tb testing.TB, home, name, version string) {
	tb.Helper()
	if _, err := teams.Install(home, MustValidTeam(tb, name, version), false); err != nil {
		tb.Fatalf("install %s: %v", name, err)
	}
}

// MustProject creates a project directory whose .cliq holds the team yml.
func MustProject(tb testing.TB, name string) string {
	tb.Helper()
	project := tb.TempDir()
	yml := strings.Replace(strings.Replace(validTeam, "%s", name, 1), "%s", "9.9.9", 1)
	MustWriteTeam(tb, filepath.Join(project, ".cliq"), yml, map[string]string{"review": "# Project review\n"})
	return project
}

// escapeNames are names that would leave CLIQ_HOME/teams if they were
// joined to it unchecked.
var escapeNames = []string{
	"../x",
	"..",
	"@local/..",
	"@local/../../etc",
	"@../x",
	"@..",
	"/etc/passwd",
	"@local//etc/passwd",
	"@local/x/../../y",
	"x\x00y",
	"@local/x\x00",
	`..\x`,
	`@local\..\x`,
	`@local/a\b`,
	"@local/.hidden",
	"@local/a..b",
	"",
}

func TestCheckName(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		cases := []struct{ name, scope, base string }{
			{"@local/x", "local", "x"},
			{"@acme/security-scan", "acme", "security-scan"},
			{"@a.b/c_d.1", "a.b", "c_d.1"},
			{"blog-pipeline", "", "blog-pipeline"},
			{"v1.2", "", "v1.2"},
		}
		for _, c := range cases {
			scope, base, err := teams.CheckName(c.name)
			if err != nil {
				t.Errorf("CheckName(%q): %v", c.name, err)
				continue
			}
			if scope != c.scope || base != c.base {
				t.Errorf("CheckName(%q) = %q, %q, want %q, %q", c.name, scope, base, c.scope, c.base)
			}
		}
	})

	t.Run("ErrInvalidName", func(t *testing.T) {
		bad := append([]string{
			"@local", "@local/", "@/x", "a/b", "@a/b/c", "@Local/x", "@local/X", "-x", "_x",
			"@local/" + strings.Repeat("a", 65), "with space", "@local/x;rm",
		}, escapeNames...)
		for _, name := range bad {
			_, _, err := teams.CheckName(name)
			if !errors.Is(err, teams.ErrInvalidName) {
				t.Errorf("CheckName(%q) = %v, want ErrInvalidName", name, err)
			}
		}
	})

	t.Run("MessageNamesValue", func(t *testing.T) {
		_, _, err := teams.CheckName("@local/../../etc")
		if err == nil || !strings.Contains(err.Error(), `"@local/../../etc"`) {
			t.Errorf("error %v does not quote the name", err)
		}
		_, _, err = teams.CheckName("x\x00y")
		if err == nil || !strings.Contains(err.Error(), `\x00`) {
			t.Errorf("error %v does not show the NUL byte as an escape", err)
		}
	})
}
