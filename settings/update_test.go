package settings

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const testSecret = "sk-abcdefghijklmnop1234"

func TestMask(t *testing.T) {
	m := mustJSON(t, `{
		"agents": {"claude-code": {"api_key": "`+testSecret+`", "command": ["claude"],
			"env": {"ANTHROPIC_API_KEY": "`+testSecret+`", "HOME_DIR": "/x"}}},
		"integrations": {"s": {"type": "slack", "webhook_url": "https://hooks.test/`+testSecret+`"},
			"h": {"type": "http", "url": "http://a.test", "headers": {"Authorization": "Bearer `+testSecret+`"}},
			"g": {"type": "github", "token": "short"}},
		"server": {"a2a": {"meshes": [{"name": "m", "client_secret": "`+testSecret+`"}]}},
		"database": {"url": "postgres://user:pa55word@127.0.0.1:5432/db?sslmode=disable"},
		"hub": {"token": ""}
	}`)
	before := mustJSON(t, mustEncode(t, m))
	got := Mask(m)
	out := mustEncode(t, got)

	if strings.Contains(out, testSecret) || strings.Contains(out, "pa55word") || strings.Contains(out, "short") {
		t.Errorf("masked settings still contain a secret: %s", out)
	}
	checks := map[string]any{
		"agents.claude-code.api_key":               "****1234",
		"agents.claude-code.env.ANTHROPIC_API_KEY": "****1234",
		"agents.claude-code.env.HOME_DIR":          "/x",
		"integrations.g.token":                     "****",
		"integrations.h.url":                       "http://a.test",
		"integrations.h.headers.Authorization":     "****1234",
		"integrations.s.webhook_url":               "****1234",
		"database.url":                             "postgres://user:****@127.0.0.1:5432/db?sslmode=disable",
		"hub.token":                                "",
	}
	for path, want := range checks {
		if v, _ := Lookup(got, path); v != want {
			t.Errorf("%s = %v, want %v", path, v, want)
		}
	}
	mesh := got["server"].(Map)["a2a"].(Map)["meshes"].([]any)[0].(Map)
	if mesh["client_secret"] != "****1234" {
		t.Errorf("meshes[0].client_secret = %v, want ****1234", mesh["client_secret"])
	}
	if !reflect.DeepEqual(m, before) {
		t.Error("Mask modified its argument")
	}
}

func TestMaskURLPassword(t *testing.T) {
	cases := map[string]string{
		"postgres://u:p@h:5432/d":       "postgres://u:****@h:5432/d",
		"postgres://u@h/d":              "postgres://u@h/d",
		"postgres://h/d?password=p&x=1": "postgres://h/d?password=****&x=1",
		"/home/x/cliq.db":               "/home/x/cliq.db",
		"postgres://u:p%zz@h/d":         "****@h/d",
	}
	for in, want := range cases {
		if got := MaskURLPassword(in); got != want {
			t.Errorf("MaskURLPassword(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	for key, want := range map[string]bool{
		"api_key": true, "token": true, "api_token": true, "hub_token": true, "password": true,
		"client_secret": true, "webhook_url": true, "Authorization": true, "X-Api-Key": true,
		"GITHUB_TOKEN": true, "token_id": false, "max_tokens": false, "url": false, "email": false,
	} {
		if got := IsSecretKey(key); got != want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestGet(t *testing.T) {
	home, project := t.TempDir(), t.TempDir()
	writeJSON(t, GlobalPath(home), `{"agents":{"codex":{"api_key":"`+testSecret+`"}},"server":{"port":4200}}`)
	writeJSON(t, ProjectPath(project), `{"server":{"port":4300}}`)

	cases := []struct {
		scope    Scope
		project  string
		wantPort float64
	}{
		{ScopeGlobal, project, 4200},
		{ScopeProject, project, 4300},
		{ScopeResolved, project, 4300},
		{ScopeResolved, "", 4200},
	}
	for _, tc := range cases {
		t.Run(string(tc.scope), func(t *testing.T) {
			got, err := Get(home, tc.project, tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := Lookup(got, "server.port"); v != tc.wantPort {
				t.Errorf("server.port = %v, want %v", v, tc.wantPort)
			}
			if strings.Contains(mustEncode(t, got), testSecret) {
				t.Errorf("Get(%s) shows the secret", tc.scope)
			}
		})
	}
	t.Run("ErrProjectWithoutDir", func(t *testing.T) {
		if _, err := Get(home, "", ScopeProject); !errors.Is(err, ErrInvalid) {
			t.Errorf("err = %v, want ErrInvalid", err)
		}
	})
	t.Run("ErrUnknownScope", func(t *testing.T) {
		if _, err := Get(home, "", Scope("local")); !errors.Is(err, ErrInvalid) {
			t.Errorf("err = %v, want ErrInvalid", err)
		}
	})
}

func TestParseScope(t *testing.T) {
	if s, _ := ParseScope("", true); s != ScopeResolved {
		t.Errorf("ParseScope(\"\", true) = %q, want resolved", s)
	}
	if s, _ := ParseScope("", false); s != ScopeGlobal {
		t.Errorf("ParseScope(\"\", false) = %q, want global", s)
	}
	if _, err := ParseScope("both", true); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"both"`) {
		t.Errorf("ParseScope(both) err = %v, want ErrInvalid naming the value", err)
	}
}

func TestUpdate(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		home := t.TempDir()
		writeJSON(t, GlobalPath(home), `{"server":{"port":4100,"cors_origins":["*"]},"default_agent":"codex"}`)
		got, err := Update(home, "", ScopeGlobal, mustJSON(t,
			`{"server":{"cors_origins":["http://a.test"]},"default_agent":null,"agents":{"x":{"api_key":"`+testSecret+`"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		want := mustJSON(t, `{"server":{"port":4100,"cors_origins":["http://a.test"]},"agents":{"x":{"api_key":"****1234"}}}`)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Update = %v, want %v", got, want)
		}
		stored, _ := ReadFile(GlobalPath(home))
		if v, _ := Lookup(stored, "agents.x.api_key"); v != testSecret {
			t.Errorf("stored api_key = %v, want the secret itself", v)
		}
		assertMode(t, GlobalPath(home), 0o600)
	})
	t.Run("ProjectCreatesFile", func(t *testing.T) {
		home, project := t.TempDir(), t.TempDir()
		if _, err := Update(home, project, ScopeProject, Map{"headless": true}); err != nil {
			t.Fatal(err)
		}
		stored, _ := ReadFile(ProjectPath(project))
		if !Headless(stored) {
			t.Errorf("project settings = %v, want headless true", stored)
		}
	})
	t.Run("MaskedSecretKept", func(t *testing.T) {
		home := t.TempDir()
		writeJSON(t, GlobalPath(home), `{"agents":{"x":{"api_key":"`+testSecret+`"}},"database":{"url":"postgres://u:pw@h/d"}}`)
		masked, _ := Get(home, "", ScopeGlobal)
		masked["headless"] = true
		if _, err := Update(home, "", ScopeGlobal, masked); err != nil {
			t.Fatalf("Update with masked values: %v", err)
		}
		stored, _ := ReadFile(GlobalPath(home))
		if v, _ := Lookup(stored, "agents.x.api_key"); v != testSecret {
			t.Errorf("api_key = %v, want the stored secret kept", v)
		}
		if v, _ := Lookup(stored, "database.url"); v != "postgres://u:pw@h/d" {
			t.Errorf("database.url = %v, want the stored URL kept", v)
		}
	})

	errCases := []struct {
		name, patch string
		scope       Scope
		project     bool
		want        string
	}{
		{"ErrResolved", `{"headless":true}`, ScopeResolved, true, "read-only"},
		{"ErrUnknownScope", `{"headless":true}`, "all", true, `"all"`},
		{"ErrProjectWithoutDir", `{"headless":true}`, ScopeProject, false, "instance_id"},
		{"ErrUnknownKey", `{"serverr":{}}`, ScopeGlobal, false, "setting serverr: unknown key"},
		{"ErrMistyped", `{"server":{"port":"4100"}}`, ScopeGlobal, false, `setting server.port: must be an integer`},
		{"ErrForeignMask", `{"agents":{"x":{"api_key":"****zzzz"}}}`, ScopeGlobal, false, "masked value"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			home, project := t.TempDir(), ""
			if tc.project {
				project = t.TempDir()
			}
			writeJSON(t, GlobalPath(home), `{"server":{"port":4100}}`)
			_, err := Update(home, project, tc.scope, mustJSON(t, tc.patch))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
			data, _ := os.ReadFile(GlobalPath(home))
			if string(data) != `{"server":{"port":4100}}` {
				t.Errorf("global file changed to %s", data)
			}
		})
	}

	t.Run("Concurrent", func(t *testing.T) {
		home := t.TempDir()
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := string(rune('a' + i))
				if _, err := Update(home, "", ScopeGlobal, Map{"agents": Map{name: Map{"model": name}}}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		stored, _ := ReadFile(GlobalPath(home))
		if n := len(stored["agents"].(Map)); n != 20 {
			t.Errorf("agents has %d entries, want 20 (an update was lost)", n)
		}
	})
}

func TestSetKey(t *testing.T) {
	cases := []struct {
		name, key, value string
		want             any
	}{
		{"Number", "server.port", "4242", float64(4242)},
		{"Bool", "headless", "true", true},
		{"Array", "server.cors_origins", `["http://a.test"]`, []any{"http://a.test"}},
		{"PlainString", "default_agent", "claude-code", "claude-code"},
		{"QuotedString", "default_agent", `"codex"`, "codex"},
		{"DashedSegment", "agents.claude-code.command", `["claude","-p"]`, []any{"claude", "-p"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := GlobalPath(t.TempDir())
			if err := SetKey(path, tc.key, tc.value); err != nil {
				t.Fatal(err)
			}
			stored, _ := ReadFile(path)
			if got, _ := Lookup(stored, tc.key); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s = %#v, want %#v", tc.key, got, tc.want)
			}
		})
	}
	t.Run("NullDeletes", func(t *testing.T) {
		path := GlobalPath(t.TempDir())
		writeJSON(t, path, `{"server":{"port":1,"host":"h"}}`)
		if err := SetKey(path, "server.port", "null"); err != nil {
			t.Fatal(err)
		}
		stored, _ := ReadFile(path)
		if _, ok := Lookup(stored, "server.port"); ok {
			t.Errorf("server.port still set: %v", stored)
		}
	})
	for _, tc := range []struct{ name, key, value string }{
		{"ErrEmptyKey", "", "1"},
		{"ErrEmptySegment", "server..port", "1"},
		{"ErrUnknownKey", "server.colour", "red"},
		{"ErrRange", "server.port", "-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := GlobalPath(t.TempDir())
			if err := SetKey(path, tc.key, tc.value); !errors.Is(err, ErrInvalid) {
				t.Errorf("SetKey(%q, %q) = %v, want ErrInvalid", tc.key, tc.value, err)
			}
			if _, err := os.Stat(path); err == nil {
				t.Error("settings file written despite the error")
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	empty := Map{}
	if ServerPort(empty) != DefaultPort || ServerHost(empty) != DefaultHost || TeamsMaxDepth(empty) != 3 {
		t.Error("defaults of server.port, server.host or teams.max_depth are wrong")
	}
	if got := CORSOrigins(empty); !reflect.DeepEqual(got, []string{"*"}) {
		t.Errorf("CORSOrigins default = %v, want [*]", got)
	}
	if s, c := LogLevelSettings(empty); s != "info" || c != "info" {
		t.Errorf("LogLevelSettings default = %s, %s; want info, info", s, c)
	}
	m := mustJSON(t, `{"server":{"port":8080,"cors_origins":["http://a.test"]},
		"logging":{"server_level":"trace","core_level":"bogus","max_size_mb":2,"max_files":7},
		"database":{"url":"postgres://h/d"},"teams":{"max_depth":5}}`)
	if ServerPort(m) != 8080 {
		t.Errorf("ServerPort = %d, want 8080", ServerPort(m))
	}
	if got := CORSOrigins(m); !reflect.DeepEqual(got, []string{"http://a.test"}) {
		t.Errorf("CORSOrigins = %v", got)
	}
	if s, c := LogLevelSettings(m); s != "trace" || c != "info" {
		t.Errorf("LogLevelSettings = %s, %s; want trace, info", s, c)
	}
	if b, n := LogRotation(m); b != 2<<20 || n != 7 {
		t.Errorf("LogRotation = %d, %d; want %d, 7", b, n, 2<<20)
	}
	if DatabaseURL(m) != "postgres://h/d" || TeamsMaxDepth(m) != 5 {
		t.Error("DatabaseURL or TeamsMaxDepth wrong")
	}
	if ServerPort(Map{"server": Map{"port": 9000}}) != 9000 {
		t.Error("ServerPort ignores an int set from Go code")
	}
}

func mustEncode(tb testing.TB, v any) string {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

func assertMode(tb testing.TB, path string, want os.FileMode) {
	tb.Helper()
	info, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		tb.Errorf("%s mode = %o, want %o", path, got, want)
	}
}
