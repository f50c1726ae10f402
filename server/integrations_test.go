package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cliq/auth"
	"cliq/integrations"
	"cliq/settings"
	"cliq/store"
	"cliq/store/storetest"
)

// Secrets of the integrations in these tests. None may appear in a
// response.
const (
	hookSecret   = "hook-secret-5f1e0c9a7b3d4e21"
	githubSecret = "ghp_test4c1d8e2f7a9b0c3d5e6f"
	jiraSecret   = "jira-secret-8a7b6c5d4e3f2a1b"
	headerSecret = "header-secret-a1b2c3d4e5f6"
)

var integrationSecrets = []string{hookSecret, githubSecret, jiraSecret, headerSecret}

// recordingServer is a local HTTP server that responds to every request
// with status and records the requests it receives.
type recordingServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
}

func newRecordingServer(tb testing.TB, status int, body string) *recordingServer {
	tb.Helper()
	rs := &recordingServer{}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		rs.mu.Lock()
		rs.requests = append(rs.requests, r)
		rs.bodies = append(rs.bodies, string(data))
		rs.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	tb.Cleanup(rs.Close)
	return rs
}

// last returns the last request and its body.
func (rs *recordingServer) last(tb testing.TB) (*http.Request, string) {
	tb.Helper()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.requests) == 0 {
		tb.Fatal("the local server got no request")
	}
	return rs.requests[len(rs.requests)-1], rs.bodies[len(rs.bodies)-1]
}

// refusedURL returns an http URL on 127.0.0.1 where nothing listens.
func refusedURL(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// hangingURL returns the URL of a local server that sends no response
// until the client gives up or the test ends.
func hangingURL(tb testing.TB) string {
	tb.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	tb.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return srv.URL
}

// writeGlobalSettings writes m as the global settings of home.
func writeGlobalSettings(tb testing.TB, home string, m settings.Map) {
	tb.Helper()
	if err := settings.WriteFile(settings.GlobalPath(home), m); err != nil {
		tb.Fatal(err)
	}
}

// mustNoSecret fails when body contains one of the integration secrets.
func mustNoSecret(tb testing.TB, body string) {
	tb.Helper()
	for _, secret := range integrationSecrets {
		if strings.Contains(body, secret) {
			tb.Errorf("response contains the secret %q: %s", secret, body)
		}
	}
}

// testIntegrationOK posts /integrations/test/ and decodes the result.
func testIntegrationOK(tb testing.TB, s *Server, body string) integrations.Result {
	tb.Helper()
	rec := serve(tb, s, http.MethodPost, "/integrations/test/", testToken, body)
	mustStatus(tb, rec, http.StatusOK)
	mustNoSecret(tb, rec.Body.String())
	var res integrations.Result
	decodeBody(tb, rec.Body, &res)
	return res
}

func TestServer_Integrations(t *testing.T) {
	ok := newRecordingServer(t, http.StatusOK, `{"login":"cliq"}`)
	// The failing server echoes a secret back, as some services do.
	failing := newRecordingServer(t, http.StatusInternalServerError, "boom: "+githubSecret)
	s, _, home := settingsServer(t, func(c *Config) { c.IntegrationTimeout = 300 * time.Millisecond })
	writeGlobalSettings(t, home, settings.Map{"integrations": settings.Map{
		"hook": settings.Map{"type": "http", "url": ok.URL + "/ping", "method": "POST",
			"headers": settings.Map{"Authorization": "Bearer " + headerSecret}},
		"slack":    settings.Map{"webhook_url": ok.URL + "/services/" + hookSecret},
		"github":   settings.Map{"token": githubSecret, "api_url": failing.URL},
		"jira":     settings.Map{"type": "jira", "url": ok.URL, "email": "bot@example.com", "api_token": jiraSecret},
		"slow":     settings.Map{"type": "http", "url": hangingURL(t)},
		"down":     settings.Map{"type": "http", "url": refusedURL(t)},
		"unfilled": settings.Map{"type": "http"},
	}})

	t.Run("List", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/integrations/list/", testToken, "")
		mustStatus(t, rec, http.StatusOK)
		mustNoSecret(t, rec.Body.String())
		var body struct {
			Integrations []integrations.Integration `json:"integrations"`
		}
		decodeBody(t, rec.Body, &body)
		var names []string
		for _, in := range body.Integrations {
			names = append(names, in.Name+":"+in.Type)
		}
		want := "down:http github:github hook:http jira:jira slack:slack slow:http unfilled:http"
		if got := strings.Join(names, " "); got != want {
			t.Errorf("integrations = %s, want %s", got, want)
		}
	})
	t.Run("Get", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/integrations/get", testToken, `{"name":"github"}`)
		mustStatus(t, rec, http.StatusOK)
		mustNoSecret(t, rec.Body.String())
		var in integrations.Integration
		decodeBody(t, rec.Body, &in)
		if got := settings.String(in.Config, "token", ""); got != settings.MaskPrefix+githubSecret[len(githubSecret)-4:] {
			t.Errorf("token = %q, want it masked", got)
		}
		if got := settings.String(in.Config, "api_url", ""); got != failing.URL {
			t.Errorf("api_url = %q, want %q", got, failing.URL)
		}
	})
	t.Run("GetHeaderMasked", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/integrations/get/", testToken, `{"name":"hook"}`)
		mustStatus(t, rec, http.StatusOK)
		mustNoSecret(t, rec.Body.String())
	})
	t.Run("HTTPSuccess", func(t *testing.T) {
		res := testIntegrationOK(t, s, `{"target":"hook"}`)
		if !res.OK || res.Status != http.StatusOK || res.Error != "" {
			t.Errorf("result = %+v, want ok with 200", res)
		}
		req, _ := ok.last(t)
		if req.Method != http.MethodPost || req.URL.Path != "/ping" {
			t.Errorf("request = %s %s, want POST /ping", req.Method, req.URL.Path)
		}
		if got := req.Header.Get("Authorization"); got != "Bearer "+headerSecret {
			t.Errorf("Authorization = %q, want the configured header", got)
		}
	})
	t.Run("Slack", func(t *testing.T) {
		res := testIntegrationOK(t, s, `{"target":"slack"}`)
		if !res.OK || res.Type != "slack" {
			t.Errorf("result = %+v, want ok", res)
		}
		req, body := ok.last(t)
		if req.Method != http.MethodPost || req.URL.Path != "/services/"+hookSecret {
			t.Errorf("request = %s %s, want POST to the webhook", req.Method, req.URL.Path)
		}
		var msg map[string]string
		if err := json.Unmarshal([]byte(body), &msg); err != nil || msg["text"] != integrations.SlackTestText {
			t.Errorf("webhook body = %q, want a text message", body)
		}
	})
	t.Run("Jira", func(t *testing.T) {
		res := testIntegrationOK(t, s, `{"target":"jira"}`)
		if !res.OK {
			t.Errorf("result = %+v, want ok", res)
		}
		req, _ := ok.last(t)
		user, pass, hasAuth := req.BasicAuth()
		if req.URL.Path != "/rest/api/2/myself" || !hasAuth || user != "bot@example.com" || pass != jiraSecret {
			t.Errorf("request %s with basic auth %v %q, want /rest/api/2/myself as bot@example.com",
				req.URL.Path, hasAuth, user)
		}
	})
	t.Run("ServerError", func(t *testing.T) {
		res := testIntegrationOK(t, s, `{"target":"github"}`)
		if res.OK || res.Status != http.StatusInternalServerError {
			t.Errorf("result = %+v, want not ok with 500", res)
		}
		if !strings.Contains(res.Error, "500") {
			t.Errorf("error = %q, want the status", res.Error)
		}
		req, _ := failing.last(t)
		if got := req.Header.Get("Authorization"); got != "Bearer "+githubSecret {
			t.Errorf("GitHub request Authorization = %q, want the token", got)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		res := testIntegrationOK(t, s, `{"target":"slow"}`)
		if res.OK || !strings.Contains(res.Error, "timed out") {
			t.Errorf("result = %+v, want a timeout", res)
		}
		if res.DurationMS <= 0 {
			t.Errorf("duration_ms = %d, want the time waited", res.DurationMS)
		}
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		res := testIntegrationOK(t, s, `{"target":"down"}`)
		if res.OK || !strings.Contains(res.Error, "refused") {
			t.Errorf("result = %+v, want connection refused", res)
		}
	})
	t.Run("Incomplete", func(t *testing.T) {
		res := testIntegrationOK(t, s, `{"target":"unfilled"}`)
		if res.OK || !strings.Contains(res.Error, "integrations.unfilled.url") {
			t.Errorf("result = %+v, want the missing url named", res)
		}
	})
	t.Run("ErrUnknownName", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/integrations/get/", testToken, `{"name":"pagerduty"}`)
		mustReject(t, rec, http.StatusNotFound, CodeNotFound, "pagerduty", "hook")
		rec = serve(t, s, http.MethodPost, "/integrations/test/", testToken, `{"target":"pagerduty"}`)
		mustReject(t, rec, http.StatusNotFound, CodeNotFound, "pagerduty")
	})
	t.Run("ErrMissingName", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/integrations/get/", testToken, `{}`)
		mustReject(t, rec, http.StatusBadRequest, CodeInvalidRequest, "name")
		rec = serve(t, s, http.MethodPost, "/integrations/test/", testToken, `{"target":" "}`)
		mustReject(t, rec, http.StatusBadRequest, CodeInvalidRequest, "target")
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/integrations/list/", "", "")
		mustReject(t, rec, http.StatusUnauthorized, CodeUnauthorized)
	})
}

func TestServer_IntegrationsForInstance(t *testing.T) {
	storetest.Each(t, testIntegrationsForInstance)
}

// testIntegrationsForInstance runs the instance and project_dir lookups of
// the integrations endpoints over db.
func testIntegrationsForInstance(t *testing.T, db *store.DB) {
	ok := newRecordingServer(t, http.StatusOK, "")
	s, _, home := settingsServer(t, func(c *Config) {
		c.DB = db
		c.Verifier = auth.NewVerifier(testToken, db)
	})
	inst := newProject(t, db, "", "", nil)
	writeGlobalSettings(t, home, settings.Map{"integrations": settings.Map{
		"global-hook": settings.Map{"type": "http", "url": refusedURL(t)},
	}})
	if err := settings.WriteFile(settings.ProjectPath(inst.ProjectDir), settings.Map{"integrations": settings.Map{
		"project-hook": settings.Map{"type": "http", "url": ok.URL},
	}}); err != nil {
		t.Fatal(err)
	}

	names := func(t *testing.T, body string) string {
		t.Helper()
		rec := serve(t, s, http.MethodPost, "/integrations/list/", testToken, body)
		mustStatus(t, rec, http.StatusOK)
		var out struct {
			InstanceID   string                     `json:"instance_id"`
			Integrations []integrations.Integration `json:"integrations"`
		}
		decodeBody(t, rec.Body, &out)
		var list []string
		for _, in := range out.Integrations {
			list = append(list, in.Name)
		}
		return out.InstanceID + " " + strings.Join(list, ",")
	}

	t.Run("Global", func(t *testing.T) {
		if got := names(t, `{}`); got != " global-hook" {
			t.Errorf("got %q, want the global integration only", got)
		}
	})
	t.Run("InstanceID", func(t *testing.T) {
		if got, want := names(t, `{"instance_id":"`+inst.ID+`"}`), inst.ID+" global-hook,project-hook"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("ProjectDir", func(t *testing.T) {
		body, _ := json.Marshal(map[string]string{"project_dir": inst.ProjectDir + "/"})
		if got, want := names(t, string(body)), inst.ID+" global-hook,project-hook"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("TestProjectIntegration", func(t *testing.T) {
		res := testIntegrationOK(t, s, `{"target":"project-hook","instance_id":"`+inst.ID+`"}`)
		if !res.OK {
			t.Errorf("result = %+v, want ok", res)
		}
	})
	t.Run("ErrUnregisteredDir", func(t *testing.T) {
		body, _ := json.Marshal(map[string]string{"project_dir": t.TempDir()})
		rec := serve(t, s, http.MethodPost, "/integrations/list/", testToken, string(body))
		mustReject(t, rec, http.StatusNotFound, CodeNotFound, "no registered instance")
	})
	t.Run("ErrDirAndOtherInstance", func(t *testing.T) {
		body, _ := json.Marshal(map[string]string{"project_dir": inst.ProjectDir, "instance_id": "cliq-123456"})
		rec := serve(t, s, http.MethodPost, "/integrations/get/", testToken, string(body)[:len(body)-1]+`,"name":"x"}`)
		mustReject(t, rec, http.StatusBadRequest, CodeInvalidRequest, inst.ID, "cliq-123456")
	})
	t.Run("ErrUnknownInstance", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/integrations/list/", testToken, `{"instance_id":"cliq-abcdef"}`)
		mustReject(t, rec, http.StatusNotFound, CodeNotFound, "cliq-abcdef")
	})
}

func TestServer_IntegrationTestCancelled(t *testing.T) {
	s, _, home := settingsServer(t, nil)
	writeGlobalSettings(t, home, settings.Map{"integrations": settings.Map{
		"slow": settings.Map{"type": "http", "url": hangingURL(t)},
	}})
	// A client that goes away ends the outgoing request too, long before
	// the 10 s default timeout.
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodPost, "/integrations/test/", strings.NewReader(`{"target":"slow"}`)).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		s.Handler().ServeHTTP(rec, req)
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the test request did not end after the client went away")
	}
	var res integrations.Result
	decodeBody(t, rec.Body, &res)
	if res.OK || res.Error == "" {
		t.Errorf("result = %+v, want a failure", res)
	}
}
