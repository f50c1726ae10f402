package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cliq/settings"
)

const cliSecret = "sk-cli-secret-0123456789"

// settingsResult is the outcome of one cliq settings call.
type settingsResult struct {
	code           int
	stdout, stderr string
}

// runSettingsIn runs cliq settings in dir with stdin.
func runSettingsIn(tb testing.TB, dir, stdin string, args ...string) settingsResult {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Dir: dir}
	code := exitCode(&stderr, runSettings(context.Background(), env, args))
	return settingsResult{code, stdout.String(), stderr.String()}
}

// newSettingsHome sets CLIQ_HOME to a new directory with global settings
// and returns it with a project directory holding .cliq/cliq.id.
func newSettingsHome(tb testing.TB, global string) (home, project string) {
	tb.Helper()
	home, project = tb.TempDir(), tb.TempDir()
	tb.Setenv(settings.HomeEnv, home)
	if err := os.WriteFile(settings.GlobalPath(home), []byte(global), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(project, ".cliq"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, ".cliq", "cliq.id"), []byte("cliq-abc123\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return home, project
}

func TestRunSettings(t *testing.T) {
	home, project := newSettingsHome(t, `{"server":{"port":4100},"agents":{"codex":{"api_key":"`+cliSecret+`"}}}`)
	outside := t.TempDir()
	sub := filepath.Join(project, "src")
	os.MkdirAll(sub, 0o755)

	t.Run("PrintAllMasked", func(t *testing.T) {
		r := runSettingsIn(t, outside, "")
		if r.code != 0 || strings.Contains(r.stdout, cliSecret) || !strings.Contains(r.stdout, `"****6789"`) {
			t.Errorf("code %d, stdout %s, want the settings with the key masked", r.code, r.stdout)
		}
	})
	t.Run("WriteProject", func(t *testing.T) {
		r := runSettingsIn(t, sub, "", "server.port", "4200")
		if r.code != 0 || !strings.Contains(r.stdout, "Set server.port = 4200 in the project settings") {
			t.Fatalf("code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if got := runSettingsIn(t, sub, "", "server.port"); got.stdout != "4200\n" {
			t.Errorf("resolved server.port inside the project = %q, want 4200", got.stdout)
		}
		if got := runSettingsIn(t, outside, "", "server.port"); got.stdout != "4100\n" {
			t.Errorf("server.port outside the project = %q, want the global 4100", got.stdout)
		}
		if got := runSettingsIn(t, sub, "", "--global", "server.port"); got.stdout != "4100\n" {
			t.Errorf("--global server.port = %q, want 4100", got.stdout)
		}
	})
	t.Run("WriteGlobalString", func(t *testing.T) {
		r := runSettingsIn(t, outside, "", "default_agent", "claude-code", "--global")
		if r.code != 0 {
			t.Fatalf("code %d, stderr %q", r.code, r.stderr)
		}
		global, _ := settings.ReadFile(settings.GlobalPath(home))
		if settings.DefaultAgent(global) != "claude-code" {
			t.Errorf("default_agent = %q", settings.DefaultAgent(global))
		}
	})
	t.Run("Stdin", func(t *testing.T) {
		secret := "sk-from-stdin-abcdef987654"
		r := runSettingsIn(t, outside, secret+"\n", "--global", "--stdin", "agents.claude-code.api_key")
		if r.code != 0 {
			t.Fatalf("code %d, stderr %q", r.code, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("output shows the secret: %q", r.stdout)
		}
		global, _ := settings.ReadFile(settings.GlobalPath(home))
		if v, _ := settings.Lookup(global, "agents.claude-code.api_key"); v != secret {
			t.Errorf("stored api_key = %v, want the stdin value without its newline", v)
		}
		if got := runSettingsIn(t, outside, "", "agents.claude-code.api_key"); got.stdout != "****7654\n" {
			t.Errorf("reading the key printed %q, want it masked", got.stdout)
		}
	})
	t.Run("StdinNumericStaysString", func(t *testing.T) {
		r := runSettingsIn(t, outside, "12345678901234\n", "--global", "--stdin", "hub.token")
		if r.code != 0 {
			t.Fatalf("code %d, stderr %q", r.code, r.stderr)
		}
		global, _ := settings.ReadFile(settings.GlobalPath(home))
		if v, _ := settings.Lookup(global, "hub.token"); v != "12345678901234" {
			t.Errorf("hub.token = %#v, want the string", v)
		}
	})
	t.Run("DeleteWithNull", func(t *testing.T) {
		r := runSettingsIn(t, outside, "", "--global", "hub.token", "null")
		if r.code != 0 || !strings.Contains(r.stdout, "Removed hub.token") {
			t.Errorf("code %d, stdout %q", r.code, r.stdout)
		}
	})

	errCases := []struct {
		name, dir, stdin string
		args             []string
		code             int
		want             string
	}{
		{"ErrOutsideProject", outside, "", []string{"server.port", "1"}, ExitUsage, "add --global"},
		{"ErrInvalidValue", project, "", []string{"server.port", "high"}, ExitFailure, `setting server.port: must be an integer from 0 to 65535, got "high"`},
		{"ErrUnknownKey", project, "", []string{"server.prot", "1"}, ExitFailure, "setting server.prot: unknown key"},
		{"ErrNotSet", project, "", []string{"teams.max_depth"}, ExitFailure, "teams.max_depth is not set"},
		{"ErrTooMany", project, "", []string{"a", "b", "c"}, ExitUsage, "at most KEY and VALUE"},
		{"ErrStdinWithValue", project, "x", []string{"--stdin", "a", "b"}, ExitUsage, "--stdin needs exactly one KEY"},
		{"ErrStdinEmpty", project, "\n", []string{"--stdin", "hub.token"}, ExitUsage, "empty value"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(settings.ProjectPath(project))
			r := runSettingsIn(t, tc.dir, tc.stdin, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tc.want)
			}
			after, _ := os.ReadFile(settings.ProjectPath(project))
			if !bytes.Equal(before, after) {
				t.Errorf("project settings changed to %s", after)
			}
		})
	}

	t.Run("JSONOutput", func(t *testing.T) {
		r := runSettingsIn(t, project, "", "server")
		var v map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["port"] != float64(4200) {
			t.Errorf("server printed %q, want a JSON object with port 4200", r.stdout)
		}
	})
}
