package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cliq/cli"
	"cliq/teams"
)

// teamEnv sets CLIQ_HOME to a new directory and changes into a new working
// directory. It returns both.
func teamEnv(tb testing.TB) (home, cwd string) {
	tb.Helper()
	home, cwd = tb.TempDir(), tb.TempDir()
	tb.Setenv("CLIQ_HOME", home)
	tb.Chdir(cwd)
	return home, cwd
}

// runCLI runs cliq with args and returns the exit code, stdout and stderr.
func runCLI(tb testing.TB, args ...string) (int, string, string) {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// mustRunCLI runs cliq with args and fails unless it exits 0.
func mustRunCLI(tb testing.TB, args ...string) string {
	tb.Helper()
	code, stdout, stderr := runCLI(tb, args...)
	if code != 0 {
		tb.Fatalf("cliq %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// writeTeamDir writes a team with one exec phase named name at dir.
func writeTeamDir(tb testing.TB, dir, name, version string) {
	tb.Helper()
	yml := "name: \"" + name + "\"\nversion: \"" + version + "\"\nworkflow:\n  phases:\n" +
		"    - name: build\n      agent: exec\n      commands:\n        - name: ok\n          run: \"true\"\n"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "team.yml"), []byte(yml), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// sameJSON fails unless got, printed by the CLI, is the JSON encoding of
// want.
func sameJSON(tb testing.TB, got string, want any) {
	tb.Helper()
	data, err := json.Marshal(want)
	if err != nil {
		tb.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal([]byte(got), &a); err != nil {
		tb.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(data, &b); err != nil {
		tb.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		tb.Errorf("CLI JSON differs from the library result:\n got %s\nwant %s", ja, jb)
	}
}

func TestTeam_List(t *testing.T) {
	home, _ := teamEnv(t)
	mustRunCLI(t, "team", "new", "mine")

	out := mustRunCLI(t, "team", "list")
	for _, want := range []string{"NAME", "@cliq/hello-world", "cliq (built-in)", "@local/mine", "0.1.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}

	list, err := teams.List(home, "")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, mustRunCLI(t, "team", "list", "--json"), map[string]any{"teams": list})

	if code, _, _ := runCLI(t, "team", "list", "extra"); code != cli.ExitUsage {
		t.Errorf("list with an argument: exit %d, want %d", code, cli.ExitUsage)
	}
}

func TestTeam_Info(t *testing.T) {
	home, _ := teamEnv(t)
	out := mustRunCLI(t, "team", "info", "hello-world")
	for _, want := range []string{"@cliq/hello-world 1.0.0 (built-in)", "3. reviewer (gate, agent exec, max_iterations 3)",
		"depends on: writer", "command minimum-length:"} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
	out = mustRunCLI(t, "team", "info", "@cliq/feature")
	for _, want := range []string{"agent default_agent", "role: roles/architect.md (", "routes to: developer",
		"test_command"} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}

	d, err := teams.Get(home, "", "@cliq/feature")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, mustRunCLI(t, "team", "info", "--json", "@cliq/feature"), d)

	code, _, stderr := runCLI(t, "team", "info", "@local/nope")
	if code != cli.ExitFailure || !strings.Contains(stderr, "@local/nope") {
		t.Errorf("info of a missing team: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "team", "info"); code != cli.ExitUsage {
		t.Errorf("info without NAME: exit %d, want %d", code, cli.ExitUsage)
	}
}

func TestTeam_Project(t *testing.T) {
	_, cwd := teamEnv(t)
	writeTeamDir(t, filepath.Join(cwd, ".cliq"), "@local/assembled", "4.0.0")
	if err := os.WriteFile(filepath.Join(cwd, ".cliq", "cliq.id"), []byte("cliq-abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(cwd, "src")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)

	out := mustRunCLI(t, "team", "list")
	if !strings.Contains(out, "@local/assembled") || !strings.Contains(out, "project") {
		t.Errorf("list inside a project lacks its team:\n%s", out)
	}
	out = mustRunCLI(t, "team", "info", "@project")
	if !strings.Contains(out, "assembled in this project") {
		t.Errorf("info @project:\n%s", out)
	}
	mustRunCLI(t, "team", "copy", "@project", "saved")
	if out := mustRunCLI(t, "team", "validate", "@local/saved"); !strings.Contains(out, "@local/saved is valid") {
		t.Errorf("validate saved copy: %s", out)
	}
}

func TestTeam_NewCopyDelete(t *testing.T) {
	home, _ := teamEnv(t)
	out := mustRunCLI(t, "team", "new", "@acme/deploy")
	if !strings.Contains(out, "Created @acme/deploy") {
		t.Errorf("new output: %s", out)
	}
	if code, _, stderr := runCLI(t, "team", "new", "@acme/deploy"); code != cli.ExitFailure ||
		!strings.Contains(stderr, "already") {
		t.Errorf("second new: exit %d, stderr %q", code, stderr)
	}

	var s teams.Summary
	if err := json.Unmarshal([]byte(mustRunCLI(t, "team", "copy", "hello-world", "hello", "--json")), &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "@local/hello" || s.PhaseCount != 3 {
		t.Errorf("copy summary = %+v", s)
	}

	mustRunCLI(t, "team", "delete", "hello")
	mustRunCLI(t, "team", "delete", "@acme/deploy")
	if entries, _ := os.ReadDir(filepath.Join(home, "teams")); len(entries) != 0 {
		t.Errorf("teams left after delete: %v", entries)
	}

	code, _, stderr := runCLI(t, "team", "delete", "@cliq/hello-world")
	if code != cli.ExitFailure || !strings.Contains(stderr, "cannot be deleted") {
		t.Errorf("delete built-in: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "team", "copy", "hello-world"); code != cli.ExitUsage {
		t.Errorf("copy with one argument: exit %d, want %d", code, cli.ExitUsage)
	}
}

func TestTeam_PathEscape(t *testing.T) {
	home, cwd := teamEnv(t)
	for _, args := range [][]string{
		{"new", "../x"},
		{"new", "@local/../../etc"},
		{"copy", "hello-world", "@../x"},
		{"copy", "@local/../../x", "y"},
		{"delete", "/etc/passwd"},
		{"delete", `..\x`},
		{"info", "@local/x\x00"},
		{"validate", "@local/../../etc"},
	} {
		code, _, stderr := runCLI(t, append([]string{"team"}, args...)...)
		if code != cli.ExitFailure || !strings.Contains(stderr, "invalid team name") {
			t.Errorf("team %q: exit %d, stderr %q", args, code, stderr)
		}
	}
	for _, dir := range []string{home, cwd} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s holds %v after rejected names", dir, entries)
		}
	}
}

func TestTeam_Validate(t *testing.T) {
	_, cwd := teamEnv(t)
	bad := filepath.Join(cwd, "bad")
	writeTeamDir(t, bad, "@local/bad", "1")
	yml := "name: \"@local/bad\"\nworkflow:\n  phases:\n    - name: a\n      depends_on: [nope]\n"
	if err := os.WriteFile(filepath.Join(bad, "team.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, "team", "validate", "./bad")
	if code != cli.ExitFailure {
		t.Errorf("validate ./bad: exit %d, want %d", code, cli.ExitFailure)
	}
	if !strings.Contains(stdout, `team.yml:5: phase "a": depends_on:`) || !strings.Contains(stderr, "is invalid") {
		t.Errorf("validate ./bad output:\nstdout: %s\nstderr: %s", stdout, stderr)
	}

	res, err := teams.ValidateDir(bad)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, "team", "validate", "--json", bad)
	if code != cli.ExitFailure {
		t.Errorf("validate --json: exit %d", code)
	}
	sameJSON(t, stdout, res)

	if out := mustRunCLI(t, "team", "validate", "hello-world"); !strings.Contains(out, "@cliq/hello-world is valid") {
		t.Errorf("validate hello-world: %s", out)
	}
	if code, _, _ := runCLI(t, "team", "validate", "@local/nope"); code != cli.ExitFailure {
		t.Errorf("validate a missing team: exit %d", code)
	}
}

func TestTeam_Install(t *testing.T) {
	home, cwd := teamEnv(t)
	writeTeamDir(t, filepath.Join(cwd, "tool"), "@acme/tool", "1.0.0")

	if out := mustRunCLI(t, "team", "install", "tool"); !strings.Contains(out, "Installed @acme/tool 1.0.0") {
		t.Errorf("install output: %s", out)
	}
	code, _, stderr := runCLI(t, "team", "install", "tool")
	if code != cli.ExitFailure || !strings.Contains(stderr, "--force") {
		t.Errorf("install again: exit %d, stderr %q", code, stderr)
	}
	if out := mustRunCLI(t, "team", "install", "tool", "--force"); !strings.Contains(out, "replacing version 1.0.0") {
		t.Errorf("install --force output: %s", out)
	}
	if _, err := os.Stat(filepath.Join(home, "teams", "@acme", "tool", "team.yml")); err != nil {
		t.Errorf("team not installed: %v", err)
	}

	writeTeamDir(t, filepath.Join(cwd, "reserved"), "@cliq/tool", "1")
	if code, _, stderr := runCLI(t, "team", "install", "reserved"); code != cli.ExitFailure ||
		!strings.Contains(stderr, "reserved") {
		t.Errorf("install into @cliq: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "team", "install", "missing"); code != cli.ExitFailure {
		t.Errorf("install of a missing directory: exit %d", code)
	}
}

func TestTeam_Usage(t *testing.T) {
	teamEnv(t)
	if code, _, stderr := runCLI(t, "team"); code != cli.ExitUsage || !strings.Contains(stderr, "Commands:") {
		t.Errorf("team: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "team", "-h"); code != cli.ExitOK {
		t.Errorf("team -h: exit %d", code)
	}
	if code, _, stderr := runCLI(t, "team", "frobnicate"); code != cli.ExitUsage || !strings.Contains(stderr, "frobnicate") {
		t.Errorf("team frobnicate: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "team", "info", "-h"); code != cli.ExitOK {
		t.Errorf("team info -h: exit %d", code)
	}
}

// TestTeam_HelloWorldRuns assembles the built-in hello-world team, which
// needs no AI CLI, and runs it to completion with the real engine.
func TestTeam_HelloWorldRuns(t *testing.T) {
	home, cwd := teamEnv(t)
	mustRunCLI(t, "init")
	dir, err := teams.Resolve(home, cwd, "@cliq/hello-world")
	if err != nil {
		t.Fatal(err)
	}
	mustRunCLI(t, "assemble", dir)
	mustRunCLI(t, "req", "-m", "Greet the world")
	mustRunCLI(t, "run")

	out, err := os.ReadFile(filepath.Join(cwd, "hello", "output.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "Greet the world") {
		t.Errorf("hello/output.md does not quote the requirement:\n%s", out)
	}
}

// writeCycleTeam writes the team name, whose one phase runs the team ref,
// with its role file, to dir.
func writeCycleTeam(tb testing.TB, dir, name, ref string) {
	tb.Helper()
	yml := "name: \"" + name + "\"\nversion: \"1\"\nworkflow:\n  phases:\n" +
		"    - name: sub\n      type: team\n      team: \"" + ref + "\"\n"
	if err := os.MkdirAll(filepath.Join(dir, "roles"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "team.yml"), []byte(yml), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "roles", "sub.md"), []byte("Run it.\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestTeam_SubTeamCycle checks that install, assemble and req reject a
// team whose sub-teams include it again.
func TestTeam_SubTeamCycle(t *testing.T) {
	home, cwd := teamEnv(t)
	mustRunCLI(t, "init")
	writeTeamDir(t, filepath.Join(cwd, "a1"), "@cyc/a", "1")
	mustRunCLI(t, "team", "install", "a1")
	writeCycleTeam(t, filepath.Join(cwd, "b"), "@cyc/b", "@cyc/a")
	mustRunCLI(t, "team", "install", "b")

	t.Run("Install", func(t *testing.T) {
		writeCycleTeam(t, filepath.Join(cwd, "a2"), "@cyc/a", "@cyc/b")
		if err := os.WriteFile(filepath.Join(cwd, "a2", "team.yml"), []byte(strings.Replace(
			mustRead(t, filepath.Join(cwd, "a2", "team.yml")), `version: "1"`, `version: "2"`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCLI(t, "team", "install", "a2")
		if code == cli.ExitOK || !strings.Contains(stderr, "includes itself") {
			t.Errorf("install: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
	})

	// Close the cycle behind the library's back, as an older cliq could.
	mustRunCLI(t, "assemble", "@cyc/b")
	writeCycleTeam(t, filepath.Join(home, "teams", "@cyc", "a"), "@cyc/a", "@cyc/b")

	t.Run("Assemble", func(t *testing.T) {
		before := mustRead(t, filepath.Join(cwd, ".cliq", "team.yml"))
		code, stdout, stderr := runCLI(t, "assemble", "@cyc/a")
		if code != cli.ExitFailure || !strings.Contains(stderr, "team.yml: phase \"sub\": team:") ||
			!strings.Contains(stderr, "includes itself") {
			t.Errorf("assemble: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if after := mustRead(t, filepath.Join(cwd, ".cliq", "team.yml")); after != before {
			t.Errorf("assemble replaced the assembled team:\n%s", after)
		}
	})
	t.Run("Req", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "req", "-m", "hi")
		if code == cli.ExitOK || !strings.Contains(stderr, "includes itself") {
			t.Errorf("req: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if _, err := os.Stat(filepath.Join(cwd, ".cliq", "req_spec.md")); err == nil {
			t.Error("req wrote req_spec.md for a team with a cycle")
		}
	})
}

func mustRead(tb testing.TB, path string) string {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}
