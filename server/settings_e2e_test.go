package server

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/websocket"

	"cliq/auth"
	"cliq/events"
	"cliq/logging"
	"cliq/settings"
)

// callAs posts body to path with token and decodes the JSON response into
// out (when not nil). It returns the status.
func callAs(tb testing.TB, p *serverProc, token, path string, body, out any) int {
	tb.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, p.url+path, bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.Fatalf("POST %s: response %q is not JSON: %v", path, raw, err)
		}
	}
	return resp.StatusCode
}

// mustCallAs is callAs that fails the test unless the status is want.
func mustCallAs(tb testing.TB, p *serverProc, token, path string, body, out any, want int) {
	tb.Helper()
	var raw json.RawMessage
	if status := callAs(tb, p, token, path, body, &raw); status != want {
		tb.Fatalf("%s: status %d, want %d: %s", path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.Fatal(err)
		}
	}
}

// secretAfterPrefix returns the random part of a cliq token: the text
// after its fixed prefix, which the redacted form keeps.
func secretAfterPrefix(token string) string {
	for _, prefix := range []string{auth.DatabasePrefix, auth.SessionPrefix} {
		if rest, ok := strings.CutPrefix(token, prefix); ok {
			return rest
		}
	}
	return token
}

// findSecretPart returns the first part of secret, 8 characters long,
// that occurs in text, or "". A longer part contains such a part too.
func findSecretPart(text, secret string) string {
	if len(secret) < 8 {
		panic("secret shorter than 8 characters: " + secret)
	}
	for i := 0; i+8 <= len(secret); i++ {
		if part := secret[i : i+8]; strings.Contains(text, part) {
			return part
		}
	}
	return ""
}

// readServerLogs returns server.log and the rotated files of home.
func readServerLogs(tb testing.TB, home string) string {
	tb.Helper()
	files, err := filepath.Glob(logging.Path(home) + "*")
	if err != nil {
		tb.Fatal(err)
	}
	var all strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		all.Write(data)
	}
	return all.String()
}

// randomSecret returns label followed by 26 random base32 characters.
func randomSecret(label string) string {
	return label + "-" + rand.Text()
}

func TestE2E_NoSecretsInLogs(t *testing.T) {
	env := newCliqEnv(t)
	adminToken, err := auth.NewDatabaseToken()
	if err != nil {
		t.Fatal(err)
	}
	rejectedToken, err := auth.NewDatabaseToken()
	if err != nil {
		t.Fatal(err)
	}
	env.env = []string{"CLIQ_ADMIN_TOKEN=" + adminToken}
	writeGlobalSettings(t, env.home, settings.Map{
		"logging": settings.Map{"server_level": "trace", "core_level": "trace"},
	})
	_, id := env.project(t, demoTeam(t), "-m", "say hi", "--input", "greeting=hi")

	secrets := map[string]string{
		"agent api_key":     randomSecret("agent"),
		"http header":       randomSecret("header"),
		"slack webhook":     randomSecret("slack"),
		"github token":      randomSecret("github"),
		"jira api_token":    randomSecret("jira"),
		"project header":    randomSecret("project"),
		"rejected db token": secretAfterPrefix(rejectedToken),
		"admin token":       secretAfterPrefix(adminToken),
	}
	hook := newRecordingServer(t, http.StatusOK, `{"ok":true}`)
	// The failing service echoes the secrets it got, as some do in errors.
	echo := newRecordingServer(t, http.StatusInternalServerError,
		"denied: "+secrets["github token"]+" "+secrets["jira api_token"])

	srv := env.startServer(t)
	secrets["session token"] = secretAfterPrefix(srv.token)
	session := srv.token

	// Secrets go in through the API: global and project settings.
	mustCallAs(t, srv, session, "/settings/update/", map[string]any{"scope": "global", "patch": map[string]any{
		"agents": map[string]any{"claude-code": map[string]any{"api_key": secrets["agent api_key"]}},
		"integrations": map[string]any{
			"hook":   map[string]any{"type": "http", "url": hook.URL, "headers": map[string]any{"Authorization": "Bearer " + secrets["http header"]}},
			"slack":  map[string]any{"webhook_url": hook.URL + "/services/" + secrets["slack webhook"]},
			"github": map[string]any{"token": secrets["github token"], "api_url": echo.URL},
			"jira":   map[string]any{"url": echo.URL, "email": "bot@example.com", "api_token": secrets["jira api_token"]},
		},
	}}, nil, http.StatusOK)
	mustCallAs(t, srv, session, "/settings/update/", map[string]any{"scope": "project", "instance_id": id, "patch": map[string]any{
		"integrations": map[string]any{"proj": map[string]any{"type": "http", "url": hook.URL,
			"headers": map[string]any{"X-Api-Token": secrets["project header"]}}},
	}}, nil, http.StatusOK)

	// A database token created through the API.
	var created struct {
		Token string `json:"token"`
	}
	mustCallAs(t, srv, session, "/tokens/create/", map[string]any{"label": "ci"}, &created, http.StatusCreated)
	dbToken := created.Token
	secrets["database token"] = secretAfterPrefix(dbToken)

	// Every endpoint of this area, with each kind of token.
	for _, token := range []string{session, dbToken, adminToken} {
		mustCallAs(t, srv, token, "/settings/get/", map[string]any{}, nil, http.StatusOK)
		mustCallAs(t, srv, token, "/settings/get/", map[string]any{"instance_id": id}, nil, http.StatusOK)
		mustCallAs(t, srv, token, "/integrations/list/", map[string]any{"instance_id": id}, nil, http.StatusOK)
	}
	for _, name := range []string{"hook", "slack", "github", "jira", "proj"} {
		var res map[string]any
		mustCallAs(t, srv, dbToken, "/integrations/get/", map[string]any{"name": name, "instance_id": id}, nil, http.StatusOK)
		mustCallAs(t, srv, dbToken, "/integrations/test/", map[string]any{"target": name, "instance_id": id}, &res, http.StatusOK)
		wantOK := name != "github" && name != "jira"
		if res["ok"] != wantOK {
			t.Errorf("test of %s = %v, want ok %v", name, res, wantOK)
		}
	}
	mustCallAs(t, srv, session, "/settings/update/", map[string]any{"scope": "global",
		"patch": map[string]any{"server": map[string]any{"port": "80"}}}, nil, http.StatusBadRequest)
	mustCallAs(t, srv, rejectedToken, "/jobs/list/", map[string]any{}, nil, http.StatusUnauthorized)

	// A run, followed over a WebSocket that has the token in its URL.
	wsURL := "ws" + strings.TrimPrefix(srv.url, "http") + "/ws?token=" + dbToken
	ws, err := websocket.Dial(wsURL, "", srv.url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	subscribe(t, ws, events.JobChannel(id), -1)
	var job map[string]string
	mustCallAs(t, srv, adminToken, "/jobs/create/", map[string]any{"instance_id": id}, &job, http.StatusAccepted)
	run := readRun(t, ws, job["run_id"])
	if last := run[len(run)-1]; last.Type != events.PipelineDone {
		t.Fatalf("run ended with %s %v", last.Type, last.Data)
	}
	mustCallAs(t, srv, dbToken, "/jobs/get/", map[string]any{"instance_id": id}, nil, http.StatusOK)
	mustCallAs(t, srv, dbToken, "/jobs/log/", map[string]any{"instance_id": id}, nil, http.StatusOK)
	ws.Close()

	srv.stop(t)
	if err := srv.wait(t); err != nil {
		t.Errorf("server exited with %v; stderr:\n%s", err, srv.stderr.String())
	}
	stderr := srv.stderr.String()
	file := readServerLogs(t, env.home)

	t.Run("TraceWritten", func(t *testing.T) {
		for _, want := range []string{`"level":"trace"`, `"url":"/integrations/test/"`, `"msg":"settings updated"`, `/ws?token=`} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %s, so the scan proves little", want)
			}
			if !strings.Contains(file, want) {
				t.Errorf("server.log lacks %s", want)
			}
		}
	})
	for name, secret := range secrets {
		t.Run("NoSecret/"+strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			for where, text := range map[string]string{"stderr": stderr, "server.log": file} {
				if part := findSecretPart(text, secret); part != "" {
					t.Errorf("%s shows part %q of the %s:\n%s", where, part, name, excerpt(text, part))
				}
			}
		})
	}
}

// excerpt returns the lines of text that contain part.
func excerpt(text, part string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, part) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
