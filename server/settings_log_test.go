package server

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cliq/logging"
	"cliq/settings"
)

// logLine is one decoded JSON log line.
type logLine map[string]any

// loggedServer returns a server, not started, that logs through
// logging.Open with the global settings global, into out and
// CLIQ_HOME/logs/server.log.
func loggedServer(tb testing.TB, global settings.Map) (*Server, *syncBuffer, string) {
	tb.Helper()
	out := &syncBuffer{}
	var s *Server
	s, _, home := settingsServer(tb, func(c *Config) {
		writeGlobalSettings(tb, c.Home, global)
		logs, err := logging.Open(c.Home, global, out)
		if err != nil {
			tb.Fatalf("open logs: %v", err)
		}
		tb.Cleanup(func() { logs.Close() })
		logs.AddSecrets(testToken)
		c.Logger = logs.Base()
		c.Logs = logs
	})
	return s, out, home
}

// logLines decodes every line of out; a line that is not JSON fails.
func logLines(tb testing.TB, out string) []logLine {
	tb.Helper()
	var lines []logLine
	for _, text := range strings.Split(strings.TrimSpace(out), "\n") {
		if text == "" {
			continue
		}
		var l logLine
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			tb.Fatalf("log line %q is not JSON: %v", text, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// findLine returns the first line with the message and every given
// attribute value, compared as text.
func findLine(lines []logLine, msg string, attrs map[string]string) (logLine, bool) {
	for _, l := range lines {
		if l["msg"] != msg {
			continue
		}
		match := true
		for k, want := range attrs {
			if v, ok := l[k]; !ok || jsonText(v) != want {
				match = false
				break
			}
		}
		if match {
			return l, true
		}
	}
	return nil, false
}

func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	data, _ := json.Marshal(v)
	return string(data)
}

func levels(server string) settings.Map {
	return settings.Map{"logging": settings.Map{"server_level": server}}
}

func TestServer_RequestLog(t *testing.T) {
	t.Run("TraceLine", func(t *testing.T) {
		s, out, _ := loggedServer(t, levels("trace"))
		serve(t, s, http.MethodPost, "/jobs/list/", testToken, "")
		serve(t, s, http.MethodGet, "/ws?token="+testToken+"&since=3", "", "")
		lines := logLines(t, out.String())

		line, ok := findLine(lines, "request", map[string]string{"method": "POST", "url": "/jobs/list/", "status": "200"})
		if !ok {
			t.Fatalf("no trace line for POST /jobs/list/ in:\n%s", out.String())
		}
		if line["level"] != "trace" || line["component"] != "server" {
			t.Errorf("line = %v, want level trace and component server", line)
		}
		if _, ok := line["duration_ms"]; !ok {
			t.Errorf("line = %v, want duration_ms", line)
		}
		if _, ok := findLine(lines, "request", map[string]string{"method": "GET", "status": "400"}); !ok {
			t.Errorf("no trace line for GET /ws in:\n%s", out.String())
		}
		if strings.Contains(out.String(), testToken) {
			t.Errorf("the log shows the session token:\n%s", out.String())
		}
		wsLine, ok := findLine(lines, "request", map[string]string{"method": "GET"})
		if url, _ := wsLine["url"].(string); !ok || !strings.HasPrefix(url, "/ws?since=3&token=") {
			t.Errorf("url = %q, want the path and query with the token replaced", url)
		}
	})
	t.Run("InfoHidesRequests", func(t *testing.T) {
		s, out, _ := loggedServer(t, levels("info"))
		serve(t, s, http.MethodPost, "/jobs/list/", testToken, "")
		serve(t, s, http.MethodPost, "/jobs/get/", testToken, `{}`)
		if got := out.String(); got != "" {
			t.Errorf("info level logged requests:\n%s", got)
		}
	})
	t.Run("ClientErrorAtDebug", func(t *testing.T) {
		s, out, _ := loggedServer(t, levels("debug"))
		serve(t, s, http.MethodPost, "/jobs/get/", testToken, `{}`)
		lines := logLines(t, out.String())
		line, ok := findLine(lines, "request rejected", map[string]string{"status": "400"})
		if !ok || line["level"] != "debug" {
			t.Errorf("want a debug line for the 400, got:\n%s", out.String())
		}
		if _, ok := findLine(lines, "request", nil); ok {
			t.Errorf("debug level logged a trace line:\n%s", out.String())
		}
	})
	t.Run("ServerErrorAtError", func(t *testing.T) {
		s, out, home := loggedServer(t, levels("error"))
		// A settings file that does not parse makes the read fail.
		if err := os.WriteFile(filepath.Join(home, "settings.json"), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		rec := serve(t, s, http.MethodPost, "/settings/get/", testToken, "")
		mustStatus(t, rec, http.StatusInternalServerError)
		serve(t, s, http.MethodPost, "/jobs/get/", testToken, `{}`)
		lines := logLines(t, out.String())
		if len(lines) != 1 {
			t.Fatalf("want one line, for the 500, got:\n%s", out.String())
		}
		if lines[0]["level"] != "error" || jsonText(lines[0]["status"]) != "500" {
			t.Errorf("line = %v, want an error line with status 500", lines[0])
		}
	})
}

func TestServer_SettingsApplyToLogs(t *testing.T) {
	s, out, home := loggedServer(t, levels("info"))

	t.Run("LevelWithoutRestart", func(t *testing.T) {
		rec := postWithToken(t, s, "/settings/update/", map[string]any{"scope": "global",
			"patch": map[string]any{"logging": map[string]any{"server_level": "trace"}}})
		mustStatus(t, rec, http.StatusOK)
		serve(t, s, http.MethodPost, "/jobs/list/", testToken, "")
		if _, ok := findLine(logLines(t, out.String()), "request", map[string]string{"url": "/jobs/list/"}); !ok {
			t.Errorf("no trace line after the level changed to trace:\n%s", out.String())
		}
	})
	t.Run("UpdateLogsKeysOnly", func(t *testing.T) {
		line, ok := findLine(logLines(t, out.String()), "settings updated", map[string]string{"scope": "global"})
		if !ok || line["keys"] != "logging.server_level" {
			t.Errorf("want an info line naming the changed key, got:\n%s", out.String())
		}
	})
	t.Run("GlobalSecretRedacted", func(t *testing.T) {
		const secret = "global-secret-9c8b7a6f5e4d"
		rec := postWithToken(t, s, "/settings/update/", map[string]any{"scope": "global",
			"patch": map[string]any{"integrations": map[string]any{"hook": map[string]any{
				"type": "http", "url": "http://127.0.0.1:9/", "headers": map[string]any{"X-Api-Key": secret}}}}})
		mustStatus(t, rec, http.StatusOK)
		s.log.Info("probe", "text", "value "+secret)
		if strings.Contains(out.String(), secret) {
			t.Errorf("the log shows a secret written to the global settings:\n%s", out.String())
		}
	})
	t.Run("ProjectSecretRedacted", func(t *testing.T) {
		inst := newProject(t, s.db, "", "", nil)
		const secret = "project-secret-1a2b3c4d5e6f"
		rec := postWithToken(t, s, "/settings/update/", map[string]any{"scope": "project", "instance_id": inst.ID,
			"patch": map[string]any{"integrations": map[string]any{"github": map[string]any{"token": secret}}}})
		mustStatus(t, rec, http.StatusOK)
		s.log.Info("probe", "text", "value "+secret)
		if strings.Contains(out.String(), secret) {
			t.Errorf("the log shows a secret written to project settings:\n%s", out.String())
		}
	})
	t.Run("FileGetsLines", func(t *testing.T) {
		data, err := os.ReadFile(logging.Path(home))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `"msg":"settings updated"`) {
			t.Errorf("server.log lacks the lines written to stderr:\n%s", data)
		}
	})
}
