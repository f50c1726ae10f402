package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cliq/settings"
)

func TestParseLevel(t *testing.T) {
	for name, want := range map[string]slog.Level{
		"error": slog.LevelError, "warn": slog.LevelWarn, "info": slog.LevelInfo,
		"debug": slog.LevelDebug, "trace": LevelTrace, "TRACE": LevelTrace, " Info ": slog.LevelInfo,
	} {
		got, err := ParseLevel(name)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	t.Run("ErrUnknown", func(t *testing.T) {
		_, err := ParseLevel("verbose")
		if err == nil || !strings.Contains(err.Error(), `"verbose"`) || !strings.Contains(err.Error(), "trace") {
			t.Errorf("err = %v, want one naming the value and the levels", err)
		}
	})
}

// decodeLines decodes every JSON line of data.
func decodeLines(tb testing.TB, data string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNew(t *testing.T) {
	t.Run("Levels", func(t *testing.T) {
		for _, tc := range []struct {
			level slog.Level
			want  []string
		}{
			{slog.LevelError, []string{"error"}},
			{slog.LevelWarn, []string{"error", "warn"}},
			{slog.LevelInfo, []string{"error", "warn", "info"}},
			{slog.LevelDebug, []string{"error", "warn", "info", "debug"}},
			{LevelTrace, []string{"error", "warn", "info", "debug", "trace"}},
		} {
			var buf bytes.Buffer
			logger := New(&buf, tc.level)
			logger.Error("e")
			logger.Warn("w")
			logger.Info("i")
			logger.Debug("d")
			Trace(context.Background(), logger, "t")
			var got []string
			for _, line := range decodeLines(t, buf.String()) {
				got = append(got, line["level"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("at %s logged levels %v, want %v", LevelName(tc.level), got, tc.want)
			}
		}
	})
	t.Run("Fields", func(t *testing.T) {
		var buf bytes.Buffer
		New(&buf, slog.LevelInfo).With("component", "server").Info("run dispatched", "instance_id", "cliq-a1b2c3")
		line := decodeLines(t, buf.String())[0]
		for key, want := range map[string]string{"level": "info", "msg": "run dispatched",
			"component": "server", "instance_id": "cliq-a1b2c3"} {
			if line[key] != want {
				t.Errorf("%s = %v, want %q", key, line[key], want)
			}
		}
		if _, ok := line["time"]; !ok {
			t.Error("line has no time")
		}
	})
}

// secretValues are the secrets the redaction tests use; none may appear in
// any output.
var secretValues = []string{
	"cliq_sk_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
	"cliq_ss_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe",
	"wsTokenAbc123def456",
	"sk-ant-apikey-0123456789",
	"pgPa55w0rd",
	"hooks-T000-B000-XXXXSECRET",
	"ghp_githubtoken0123456789",
	"jira-api-token-42x",
}

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"Authorization: Bearer cliq_sk_abcdef0123":     "Authorization: Bearer " + Redacted,
		"GET /?token=abc123&since=4":                   "GET /?token=" + Redacted + "&since=4",
		"ws://127.0.0.1:1/?access_token=xyz":           "ws://127.0.0.1:1/?access_token=" + Redacted,
		"dial postgres://cliq:s3cret@db:5432/cliq":     "dial postgres://cliq:" + Redacted + "@db:5432/cliq",
		"seeded cliq_sk_0123456789abcdef":              "seeded cliq_sk_" + Redacted,
		"basic dXNlcjpwYXNz":                           "basic " + Redacted,
		"max_tokens=5 and tokens are fine, token_id=1": "max_tokens=5 and tokens are fine, token_id=1",
		"nothing secret here":                          "nothing secret here",
	}
	for in, want := range cases {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNew_NoSecretAtTrace(t *testing.T) {
	var stderr bytes.Buffer
	home := t.TempDir()
	s := settings.Map{
		"logging":  settings.Map{"server_level": "trace", "core_level": "trace"},
		"database": settings.Map{"url": "postgres://cliq:" + secretValues[4] + "@127.0.0.1:5432/cliq"},
		"agents":   settings.Map{"claude-code": settings.Map{"api_key": secretValues[3]}},
		"integrations": settings.Map{
			"slack": settings.Map{"webhook_url": "https://hooks.slack.test/services/" + secretValues[5]},
			"gh":    settings.Map{"type": "github", "token": secretValues[6]},
			"jira":  settings.Map{"url": "https://j.test", "email": "a@b.c", "api_token": secretValues[7]},
		},
	}
	logs, err := Open(home, s, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	logs.AddSecrets(secretValues[1])
	logger := logs.Logger(ComponentServer)
	ctx := context.Background()

	// Secrets by attribute key, in messages, in errors, in URLs, in
	// settings maps and in groups, at every level.
	Trace(ctx, logger, "request", "method", "POST", "path", "/?token="+secretValues[2], "authorization", "Bearer "+secretValues[0])
	logger.Debug("token created", "token", secretValues[0], "token_id", "tok_1")
	logger.Info("session token is " + secretValues[1])
	logger.Warn("database unreachable", "error", errors.New("dial postgres://cliq:"+secretValues[4]+"@127.0.0.1/cliq: refused"))
	logger.Error("settings loaded", "settings", s)
	logger.Info("integration", slog.Group("slack", "webhook_url", "https://hooks.slack.test/services/"+secretValues[5]))
	logger.Info("test failed", "detail", fmt.Sprintf("posting to %s with %s and %s", "https://hooks.slack.test/services/"+secretValues[5], secretValues[6], secretValues[7]))
	logs.Logger(ComponentPipeline).Log(ctx, LevelTrace, "agent env", "api_key", secretValues[3])
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}

	file, err := os.ReadFile(Path(home))
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"stderr": stderr.String(), "server.log": string(file)} {
		if n := len(decodeLines(t, out)); n != 8 {
			t.Errorf("%s has %d lines, want 8", name, n)
		}
		for _, secret := range secretValues {
			if strings.Contains(out, secret) {
				t.Errorf("%s contains the secret %q:\n%s", name, secret, out)
			}
		}
		if !strings.Contains(out, `"token_id":"tok_1"`) {
			t.Errorf("%s lost the token id, which is not a secret", name)
		}
	}
}

func TestLogs_Levels(t *testing.T) {
	var buf bytes.Buffer
	logs, err := Open(t.TempDir(), settings.Map{"logging": settings.Map{"server_level": "warn", "core_level": "debug"}}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	logs.Logger(ComponentServer).Info("server info")
	logs.Logger(ComponentServer).Warn("server warn")
	logs.Logger(ComponentPipeline).Debug("core debug")
	logs.Logger(ComponentPipeline).Log(context.Background(), LevelTrace, "core trace")

	var got []string
	for _, line := range decodeLines(t, buf.String()) {
		got = append(got, line["msg"].(string))
	}
	if strings.Join(got, ",") != "server warn,core debug" {
		t.Errorf("logged %v, want [server warn core debug]", got)
	}

	t.Run("Apply", func(t *testing.T) {
		buf.Reset()
		if err := logs.Apply(settings.Map{"logging": settings.Map{"server_level": "trace"}}); err != nil {
			t.Fatal(err)
		}
		Trace(context.Background(), logs.Logger(ComponentHub), "hub trace")
		logs.Logger(ComponentPipeline).Debug("core debug")
		lines := decodeLines(t, buf.String())
		if len(lines) != 1 || lines[0]["msg"] != "hub trace" || lines[0]["component"] != "hub" {
			t.Errorf("after Apply logged %v, want only the hub trace line (core back to info)", lines)
		}
	})
}

func TestRotatingFile_Write(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "server.log")
	r, err := NewRotatingFile(path, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	line := strings.Repeat("x", 39) + "\n" // 40 bytes: two fit in 100, three do not
	for i := range 7 {
		if _, err := fmt.Fprintf(r, "%d%s", i, line[1:]); err != nil {
			t.Fatal(err)
		}
	}
	// Writes 0,1 -> rotated twice away; 2,3 -> server.log.2; 4,5 -> .1; 6 -> current.
	want := map[string]string{path: "6", RotatedPath(path, 1): "45", RotatedPath(path, 2): "23"}
	for p, firsts := range want {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			got += l[:1]
		}
		if got != firsts {
			t.Errorf("%s holds lines %q, want %q", filepath.Base(p), got, firsts)
		}
	}
	if _, err := os.Stat(RotatedPath(path, 3)); err == nil {
		t.Error("server.log.3 exists, want at most 2 rotated files")
	}
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Dir(path), 0o700|os.ModeDir)

	t.Run("BigWrite", func(t *testing.T) {
		big := strings.Repeat("y", 250) + "\n"
		if n, err := r.Write([]byte(big)); err != nil || n != len(big) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		data, _ := os.ReadFile(path)
		if string(data) != big {
			t.Errorf("current file holds %d bytes, want the big line alone", len(data))
		}
	})
	t.Run("Reopen", func(t *testing.T) {
		r.Close()
		r2, err := NewRotatingFile(path, 252, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer r2.Close()
		if _, err := r2.Write([]byte("z\n")); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(RotatedPath(path, 1))
		if !strings.HasPrefix(string(data), "yyy") {
			t.Error("reopening did not count the existing size: the big line was not rotated")
		}
	})
	t.Run("ErrClosed", func(t *testing.T) {
		if _, err := r.Write([]byte("late\n")); err == nil {
			t.Error("Write after Close succeeded")
		}
	})
	t.Run("ErrLimits", func(t *testing.T) {
		if _, err := NewRotatingFile(path, 0, 1); err == nil {
			t.Error("max size 0 accepted")
		}
		if _, err := NewRotatingFile(path, 1, 0); err == nil {
			t.Error("max files 0 accepted")
		}
	})
}

func assertMode(tb testing.TB, path string, want os.FileMode) {
	tb.Helper()
	info, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if got := info.Mode() & (os.ModePerm | os.ModeDir); got != want {
		tb.Errorf("%s mode = %v, want %v", path, got, want)
	}
}

func TestLogs_ConcurrentHandlers(t *testing.T) {
	var buf bytes.Buffer // not safe for concurrent use on its own
	logs, err := Open(t.TempDir(), settings.Map{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	done := make(chan struct{})
	for _, component := range []string{ComponentServer, ComponentPipeline} {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				logs.Logger(component).Info("line", "i", i)
			}
		}()
	}
	<-done
	<-done
	if n := len(decodeLines(t, buf.String())); n != 200 {
		t.Errorf("got %d lines, want 200", n)
	}
}

func BenchmarkNew_InfoLine(b *testing.B) {
	logger := New(io.Discard, slog.LevelInfo).With("component", "server")
	b.ReportAllocs()
	for b.Loop() {
		logger.Info("request", "method", "POST", "path", "/jobs/get/", "instance_id", "cliq-a1b2c3", "status", 200)
	}
}

// BenchmarkSlogJSON_InfoLine is the same line through a bare slog JSON
// handler, the baseline for BenchmarkNew_InfoLine.
func BenchmarkSlogJSON_InfoLine(b *testing.B) {
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil)).With("component", "server")
	b.ReportAllocs()
	for b.Loop() {
		logger.Info("request", "method", "POST", "path", "/jobs/get/", "instance_id", "cliq-a1b2c3", "status", 200)
	}
}
