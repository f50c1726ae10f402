package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cliq/settings"
	"cliq/store"
)

// settingsServer returns a server, not started, whose CLIQ_HOME is a fresh
// temporary directory, and that home.
func settingsServer(tb testing.TB, edit func(*Config)) (*Server, *store.DB, string) {
	tb.Helper()
	home := tb.TempDir()
	s, db := newTestServer(tb, func(c *Config) {
		c.Home = home
		if edit != nil {
			edit(c)
		}
	})
	return s, db, home
}

// postWithToken sends body as JSON to path with the session token.
func postWithToken(tb testing.TB, s *Server, path string, body any) *httptest.ResponseRecorder {
	tb.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	return serve(tb, s, http.MethodPost, path, testToken, string(data))
}

// readSettingsFile reads a settings file and fails the test on an error.
func readSettingsFile(tb testing.TB, path string) settings.Map {
	tb.Helper()
	m, err := settings.ReadFile(path)
	if err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	return m
}

// mustReject checks that rec is an error with the status and the code,
// and that its message contains every one of parts.
func mustReject(tb testing.TB, rec *httptest.ResponseRecorder, status int, code string, parts ...string) {
	tb.Helper()
	mustStatus(tb, rec, status)
	gotCode, msg := errorCode(tb, rec)
	if gotCode != code {
		tb.Errorf("code = %q, want %q", gotCode, code)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			tb.Errorf("message %q does not contain %q", msg, p)
		}
	}
}

const apiKey = "sk-test-0123456789abcdef0123"

func TestServer_UpdateSettings(t *testing.T) {
	s, db, home := settingsServer(t, nil)
	inst := newProject(t, db, "", "", nil)

	t.Run("OK", func(t *testing.T) {
		rec := postWithToken(t, s, "/settings/update/", map[string]any{"scope": "global", "patch": map[string]any{
			"logging": map[string]any{"server_level": "debug"},
			"agents":  map[string]any{"claude-code": map[string]any{"api_key": apiKey}},
			"server":  map[string]any{"port": 4200},
		}})
		mustStatus(t, rec, http.StatusOK)
		var body settingsResponse
		decodeBody(t, rec.Body, &body)
		if body.Scope != settings.ScopeGlobal {
			t.Errorf("scope = %q, want global", body.Scope)
		}
		if got := settings.String(body.Settings, "agents.claude-code.api_key", ""); got != "****0123" {
			t.Errorf("api_key in the response = %q, want ****0123", got)
		}
		if !slices.Equal(body.RestartRequired, []string{"server.port"}) {
			t.Errorf("restart_required = %v, want [server.port]", body.RestartRequired)
		}
		stored := readSettingsFile(t, settings.GlobalPath(home))
		if got := settings.String(stored, "agents.claude-code.api_key", ""); got != apiKey {
			t.Errorf("stored api_key = %q, want the secret", got)
		}
		info, err := os.Stat(settings.GlobalPath(home))
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("settings.json mode = %o, want 600", perm)
		}
	})
	t.Run("WithoutSlash", func(t *testing.T) {
		rec := postWithToken(t, s, "/settings/update", map[string]any{"scope": "global",
			"patch": map[string]any{"default_agent": "exec"}})
		mustStatus(t, rec, http.StatusOK)
	})
	t.Run("MaskedSecretKeepsStored", func(t *testing.T) {
		rec := postWithToken(t, s, "/settings/update/", map[string]any{"scope": "global", "patch": map[string]any{
			"agents": map[string]any{"claude-code": map[string]any{"api_key": "****0123", "model": "opus"}},
		}})
		mustStatus(t, rec, http.StatusOK)
		stored := readSettingsFile(t, settings.GlobalPath(home))
		if got := settings.String(stored, "agents.claude-code.api_key", ""); got != apiKey {
			t.Errorf("stored api_key = %q, want the secret kept", got)
		}
	})
	t.Run("NullDeletes", func(t *testing.T) {
		rec := postWithToken(t, s, "/settings/update/", map[string]any{"scope": "global",
			"patch": map[string]any{"server": nil}})
		mustStatus(t, rec, http.StatusOK)
		var body settingsResponse
		decodeBody(t, rec.Body, &body)
		if _, ok := body.Settings["server"]; ok {
			t.Errorf("server is still set: %v", body.Settings)
		}
		if !slices.Contains(body.RestartRequired, "server.cors_origins") {
			t.Errorf("restart_required = %v, want the server keys", body.RestartRequired)
		}
	})
	t.Run("Project", func(t *testing.T) {
		rec := postWithToken(t, s, "/settings/update/", map[string]any{"scope": "project", "instance_id": inst.ID,
			"patch": map[string]any{"default_agent": "codex"}})
		mustStatus(t, rec, http.StatusOK)
		stored := readSettingsFile(t, settings.ProjectPath(inst.ProjectDir))
		if got := settings.DefaultAgent(stored); got != "codex" {
			t.Errorf("project default_agent = %q, want codex", got)
		}
		if global := readSettingsFile(t, settings.GlobalPath(home)); settings.DefaultAgent(global) != "exec" {
			t.Errorf("global default_agent = %q, want exec unchanged", settings.DefaultAgent(global))
		}
	})

	before, err := os.ReadFile(settings.GlobalPath(home))
	if err != nil {
		t.Fatal(err)
	}
	rejects := []struct {
		name   string
		body   string
		status int
		code   string
		parts  []string
	}{
		{"UnknownKey", `{"scope":"global","patch":{"server":{"prot":1}}}`, 400, CodeInvalidRequest, []string{"server.prot"}},
		{"MistypedKey", `{"scope":"global","patch":{"server":{"port":"80"}}}`, 400, CodeInvalidRequest, []string{"server.port"}},
		{"PortOutOfRange", `{"scope":"global","patch":{"server":{"port":70000}}}`, 400, CodeInvalidRequest, []string{"server.port"}},
		{"BadLevel", `{"scope":"global","patch":{"logging":{"server_level":"loud"}}}`, 400, CodeInvalidRequest, []string{"logging.server_level"}},
		{"ForeignMaskedSecret", `{"scope":"global","patch":{"agents":{"codex":{"api_key":"****abcd"}}}}`, 400, CodeInvalidRequest, []string{"agents.codex.api_key"}},
		{"MissingScope", `{"patch":{}}`, 400, CodeInvalidRequest, []string{"scope"}},
		{"UnknownScope", `{"scope":"team","patch":{}}`, 400, CodeInvalidRequest, []string{`"team"`}},
		{"ResolvedScope", `{"scope":"resolved","patch":{}}`, 400, CodeInvalidRequest, []string{"read-only"}},
		{"MissingPatch", `{"scope":"global"}`, 400, CodeInvalidRequest, []string{"patch"}},
		{"PatchNotObject", `{"scope":"global","patch":[1]}`, 400, CodeInvalidRequest, []string{"patch"}},
		{"UnknownField", `{"scope":"global","patch":{},"extra":1}`, 400, CodeInvalidRequest, []string{"extra"}},
		{"ProjectWithoutInstance", `{"scope":"project","patch":{}}`, 400, CodeInvalidRequest, []string{"instance_id"}},
		{"UnknownInstance", `{"scope":"project","instance_id":"cliq-000000","patch":{}}`, 404, CodeNotFound, []string{"cliq-000000"}},
		{"NoToken", ``, 401, CodeUnauthorized, nil},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			token := testToken
			if tc.code == CodeUnauthorized {
				token = ""
			}
			rec := serve(t, s, http.MethodPost, "/settings/update/", token, tc.body)
			mustReject(t, rec, tc.status, tc.code, tc.parts...)
			if strings.Contains(rec.Body.String(), apiKey) {
				t.Errorf("response %s contains the secret", rec.Body.String())
			}
			after, err := os.ReadFile(settings.GlobalPath(home))
			if err != nil {
				t.Fatal(err)
			}
			if string(after) != string(before) {
				t.Errorf("settings.json changed on a rejected update:\n%s", after)
			}
		})
	}
}

func TestServer_GetSettings(t *testing.T) {
	s, db, home := settingsServer(t, nil)
	inst := newProject(t, db, "", "", nil)
	if err := settings.WriteFile(settings.GlobalPath(home), settings.Map{
		"default_agent": "exec",
		"agents":        settings.Map{"codex": settings.Map{"api_key": apiKey}},
		"database":      settings.Map{"url": "postgres://cliq:hunter2hunter2@127.0.0.1:5432/cliq"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := settings.WriteFile(settings.ProjectPath(inst.ProjectDir), settings.Map{"default_agent": "codex"}); err != nil {
		t.Fatal(err)
	}

	get := func(t *testing.T, body string) settingsResponse {
		t.Helper()
		rec := serve(t, s, http.MethodPost, "/settings/get/", testToken, body)
		mustStatus(t, rec, http.StatusOK)
		for _, secret := range []string{apiKey, "hunter2hunter2"} {
			if strings.Contains(rec.Body.String(), secret) {
				t.Errorf("response %s contains the secret %q", rec.Body.String(), secret)
			}
		}
		var out settingsResponse
		decodeBody(t, rec.Body, &out)
		return out
	}

	t.Run("GlobalByDefault", func(t *testing.T) {
		got := get(t, "")
		if got.Scope != settings.ScopeGlobal || settings.DefaultAgent(got.Settings) != "exec" {
			t.Errorf("got scope %q default_agent %q, want global exec", got.Scope, settings.DefaultAgent(got.Settings))
		}
		if u := settings.DatabaseURL(got.Settings); u != "postgres://cliq:****@127.0.0.1:5432/cliq" {
			t.Errorf("database.url = %q, want the password masked", u)
		}
	})
	t.Run("ResolvedForInstance", func(t *testing.T) {
		got := get(t, `{"instance_id":"`+inst.ID+`"}`)
		if got.Scope != settings.ScopeResolved || got.InstanceID != inst.ID {
			t.Errorf("got scope %q instance %q, want resolved for %s", got.Scope, got.InstanceID, inst.ID)
		}
		if agent := settings.DefaultAgent(got.Settings); agent != "codex" {
			t.Errorf("default_agent = %q, want codex from the project", agent)
		}
		if key := settings.String(got.Settings, "agents.codex.api_key", ""); key != "****0123" {
			t.Errorf("api_key = %q, want ****0123 from the global file", key)
		}
	})
	t.Run("Project", func(t *testing.T) {
		got := get(t, `{"instance_id":"`+inst.ID+`","scope":"project"}`)
		if len(got.Settings) != 1 || settings.DefaultAgent(got.Settings) != "codex" {
			t.Errorf("project settings = %v, want only default_agent codex", got.Settings)
		}
	})
	t.Run("ErrProjectWithoutInstance", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/settings/get/", testToken, `{"scope":"project"}`)
		mustReject(t, rec, http.StatusBadRequest, CodeInvalidRequest, "instance_id")
	})
	t.Run("ErrUnknownInstance", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/settings/get", testToken, `{"instance_id":"cliq-ffffff"}`)
		mustReject(t, rec, http.StatusNotFound, CodeNotFound, "cliq-ffffff")
	})
	t.Run("ErrProjectGone", func(t *testing.T) {
		gone := newProject(t, db, "", "", nil)
		if err := os.RemoveAll(gone.ProjectDir); err != nil {
			t.Fatal(err)
		}
		rec := serve(t, s, http.MethodPost, "/settings/update/", testToken,
			`{"scope":"project","instance_id":"`+gone.ID+`","patch":{"default_agent":"exec"}}`)
		mustReject(t, rec, http.StatusConflict, CodeConflict, gone.ID)
		if _, err := os.Stat(gone.ProjectDir); !os.IsNotExist(err) {
			t.Errorf("the removed project directory was created again (stat error %v)", err)
		}
	})
	t.Run("ErrUnreadableFile", func(t *testing.T) {
		broken, _, brokenHome := settingsServer(t, nil)
		if err := os.WriteFile(filepath.Join(brokenHome, "settings.json"), []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		rec := serve(t, broken, http.MethodPost, "/settings/get/", testToken, "")
		mustReject(t, rec, http.StatusInternalServerError, CodeInternal)
	})
}
