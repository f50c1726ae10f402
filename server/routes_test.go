package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// publicPaths need no token.
var publicPaths = []string{"/health/", "/health", "/healthz", "/healthz/", "/readyz", "/readyz/"}

func TestServer_Unauthorized(t *testing.T) {
	s, _ := newTestServer(t, nil)
	var protected []string
	for path, methods := range s.routes {
		if slices.Contains(publicPaths, path) || !slices.Contains(methods, http.MethodPost) {
			continue
		}
		protected = append(protected, path)
	}
	slices.Sort(protected)
	if len(protected) < 18 {
		t.Fatalf("found %d protected routes, want at least 18: %v", len(protected), protected)
	}

	tokens := []struct{ name, header string }{
		{"NoToken", ""},
		{"WrongToken", "Bearer " + mustSessionToken()},
		{"WrongScheme", "Basic " + testToken},
		{"EmptyBearer", "Bearer "},
	}
	for _, path := range protected {
		for _, tok := range tokens {
			t.Run(strings.Trim(path, "/")+"/"+tok.name, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{}`))
				if tok.header != "" {
					req.Header.Set("Authorization", tok.header)
				}
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
				mustStatus(t, rec, http.StatusUnauthorized)
				if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want Bearer", got)
				}
				if code, _ := errorCode(t, rec); code != CodeUnauthorized {
					t.Errorf("code = %q, want %q", code, CodeUnauthorized)
				}
			})
		}
	}
}

func TestServer_Authorized(t *testing.T) {
	s, _ := newTestServer(t, nil)
	t.Run("LowercaseScheme", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/jobs/list/", nil)
		req.Header.Set("Authorization", "bearer "+testToken)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		mustStatus(t, rec, http.StatusOK)
	})
	t.Run("WithoutTrailingSlash", func(t *testing.T) {
		mustStatus(t, serve(t, s, http.MethodPost, "/instances/list", testToken, ""), http.StatusOK)
	})
	t.Run("EmptyBody", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/jobs/list/", testToken, "")
		mustStatus(t, rec, http.StatusOK)
		if got := strings.TrimSpace(rec.Body.String()); got != `{"jobs":[]}` {
			t.Errorf("body = %s, want {\"jobs\":[]}", got)
		}
	})
}

func TestServer_NotFound(t *testing.T) {
	s, _ := newTestServer(t, nil)
	for _, path := range []string{"/nope", "/jobs/", "/jobs/create/extra", "/ws/x", "//jobs/list/", "/jobs/list//", "/jobs/./list/", "/x/../jobs/list/"} {
		t.Run(path, func(t *testing.T) {
			rec := serve(t, s, http.MethodPost, path, testToken, "{}")
			mustStatus(t, rec, http.StatusNotFound)
			if code, _ := errorCode(t, rec); code != CodeNotFound {
				t.Errorf("code = %q, want %q", code, CodeNotFound)
			}
		})
	}
	t.Run("WithoutToken", func(t *testing.T) {
		rec := serve(t, s, http.MethodGet, "/nope", "", "")
		mustStatus(t, rec, http.StatusNotFound)
	})
}

func TestServer_MethodNotAllowed(t *testing.T) {
	s, _ := newTestServer(t, nil)
	tests := []struct {
		method, path, allow string
	}{
		{http.MethodGet, "/jobs/create/", "POST"},
		{http.MethodPut, "/jobs/get", "POST"},
		{http.MethodDelete, "/instances/remove/", "POST"},
		{http.MethodGet, "/health/", "POST"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodPost, "/readyz", "GET, HEAD"},
		{http.MethodPost, "/", "GET, HEAD"},
		{http.MethodPost, "/ws", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			rec := serve(t, s, tt.method, tt.path, testToken, "")
			mustStatus(t, rec, http.StatusMethodNotAllowed)
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if code, _ := errorCode(t, rec); code != CodeMethodNotAllowed {
				t.Errorf("code = %q, want %q", code, CodeMethodNotAllowed)
			}
		})
	}
}

func TestServer_Decode(t *testing.T) {
	s, _ := newTestServer(t, nil)
	tests := []struct {
		name, body string
		status     int
		code, text string
	}{
		{"UnknownField", `{"instanec_id":"cliq-a1b2c3"}`, 400, CodeInvalidRequest, `unknown field "instanec_id"`},
		{"TrailingData", `{"instance_id":"x"} {}`, 400, CodeInvalidRequest, "after the JSON object"},
		{"WrongType", `{"instance_id":42}`, 400, CodeInvalidRequest, `"instance_id" must be a string`},
		{"NotAnObject", `[1,2]`, 400, CodeInvalidRequest, "must be a JSON object"},
		{"Syntax", `{"instance_id":`, 400, CodeInvalidRequest, "invalid JSON"},
		{"TooLarge", `{"instance_id":"` + strings.Repeat("a", 2<<20) + `"}`, 413, CodeTooLarge, "larger than"},
		{"MissingID", `{}`, 400, CodeInvalidRequest, "missing instance_id"},
		{"UnknownInstance", `{"instance_id":"cliq-000000"}`, 404, CodeNotFound, "instance cliq-000000 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, s, http.MethodPost, "/jobs/get/", testToken, tt.body)
			mustStatus(t, rec, tt.status)
			code, msg := errorCode(t, rec)
			if code != tt.code {
				t.Errorf("code = %q, want %q", code, tt.code)
			}
			if !strings.Contains(msg, tt.text) {
				t.Errorf("message %q does not contain %q", msg, tt.text)
			}
		})
	}
}

func TestServer_CORS(t *testing.T) {
	preflight := func(s *Server, origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodOptions, "/jobs/create/", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}

	t.Run("AnyOrigin", func(t *testing.T) {
		s, _ := newTestServer(t, nil)
		rec := preflight(s, "https://dash.example.com")
		mustStatus(t, rec, http.StatusNoContent)
		h := rec.Header()
		if got := h.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("Allow-Origin = %q, want *", got)
		}
		if got := h.Get("Access-Control-Allow-Methods"); got != "POST, GET, OPTIONS" {
			t.Errorf("Allow-Methods = %q", got)
		}
		if got := h.Get("Access-Control-Allow-Headers"); got != "Authorization, Content-Type" {
			t.Errorf("Allow-Headers = %q", got)
		}
	})
	t.Run("ListedOrigin", func(t *testing.T) {
		s, _ := newTestServer(t, func(c *Config) { c.CORSOrigins = []string{"https://dash.example.com"} })
		rec := preflight(s, "https://dash.example.com")
		mustStatus(t, rec, http.StatusNoContent)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "https://dash.example.com" {
			t.Errorf("Allow-Origin = %q, want the origin", got)
		}
		if got := rec.Header().Get("Vary"); got != "Origin" {
			t.Errorf("Vary = %q, want Origin", got)
		}

		req := httptest.NewRequest(http.MethodPost, "/jobs/list/", nil)
		req.Header.Set("Origin", "https://dash.example.com")
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec = httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		mustStatus(t, rec, http.StatusOK)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "https://dash.example.com" {
			t.Errorf("Allow-Origin on POST = %q, want the origin", got)
		}
	})
	t.Run("UnlistedOrigin", func(t *testing.T) {
		s, _ := newTestServer(t, func(c *Config) { c.CORSOrigins = []string{"https://dash.example.com"} })
		rec := preflight(s, "https://evil.example.com")
		for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"} {
			if got := rec.Header().Get(h); got != "" {
				t.Errorf("%s = %q, want none", h, got)
			}
		}
	})
	t.Run("UnknownPath", func(t *testing.T) {
		s, _ := newTestServer(t, nil)
		req := httptest.NewRequest(http.MethodOptions, "/nope", nil)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		mustStatus(t, rec, http.StatusNotFound)
	})
}

func TestServer_Health(t *testing.T) {
	s, db := newTestServer(t, nil)
	t.Run("Health", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/health/", "", "")
		mustStatus(t, rec, http.StatusOK)
		var body healthResponse
		decodeBody(t, rec.Body, &body)
		if body.Status != "ok" || body.PID != os.Getpid() {
			t.Errorf("body = %+v, want ok with pid %d", body, os.Getpid())
		}
	})
	t.Run("Healthz", func(t *testing.T) {
		mustStatus(t, serve(t, s, http.MethodGet, "/healthz", "", ""), http.StatusOK)
	})
	t.Run("Readyz", func(t *testing.T) {
		rec := serve(t, s, http.MethodGet, "/readyz", "", "")
		mustStatus(t, rec, http.StatusOK)
		if got := strings.TrimSpace(rec.Body.String()); got != `{"status":"ready"}` {
			t.Errorf("body = %s", got)
		}
	})
	t.Run("ReadyzDatabaseDown", func(t *testing.T) {
		db.Close()
		rec := serve(t, s, http.MethodGet, "/readyz", "", "")
		mustStatus(t, rec, http.StatusServiceUnavailable)
		if code, _ := errorCode(t, rec); code != CodeUnavailable {
			t.Errorf("code = %q, want %q", code, CodeUnavailable)
		}
		mustStatus(t, serve(t, s, http.MethodGet, "/healthz", "", ""), http.StatusOK)
	})
}

func TestServer_WebSocketWithoutUpgrade(t *testing.T) {
	s, _ := newTestServer(t, nil)
	rec := serve(t, s, http.MethodGet, "/ws", testToken, "")
	mustStatus(t, rec, http.StatusBadRequest)
	if code, _ := errorCode(t, rec); code != CodeInvalidRequest {
		t.Errorf("code = %q, want %q", code, CodeInvalidRequest)
	}
}

func TestCreateJob_ReqFile(t *testing.T) {
	s, db := newTestServer(t, nil)
	inst := newProject(t, db, "demo", "say hello", map[string]string{"greeting": "hi"})
	outside := filepath.Join(t.TempDir(), "req.md")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(inst.ProjectDir, "link.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inst.ProjectDir, "empty.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct{ name, reqFile, text string }{
		{"ParentDir", "../req.md", "outside the project"},
		{"Absolute", outside, "outside the project"},
		{"SymlinkOut", "link.md", "outside the project"},
		{"Missing", "nope.md", "does not exist"},
		{"Empty", "empty.md", "is empty"},
		{"Directory", ".cliq", "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"instance_id":"` + inst.ID + `","req_file":"` + tt.reqFile + `"}`
			rec := serve(t, s, http.MethodPost, "/jobs/create/", testToken, body)
			mustStatus(t, rec, http.StatusBadRequest)
			if _, msg := errorCode(t, rec); !strings.Contains(msg, tt.text) {
				t.Errorf("message %q does not contain %q", msg, tt.text)
			}
		})
	}
}

func TestCreateJob_NotRunnable(t *testing.T) {
	s, db := newTestServer(t, nil)
	noTeam := newProject(t, db, "", "", nil)
	noReq := newProject(t, db, "demo", "", nil)
	gone := newProject(t, db, "demo", "x", map[string]string{"greeting": "hi"})
	if err := os.RemoveAll(gone.ProjectDir); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, id, text string }{
		{"NoTeam", noTeam.ID, "no team assembled"},
		{"NoRequirement", noReq.ID, "no requirement"},
		{"DirectoryGone", gone.ID, "no longer exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, s, http.MethodPost, "/jobs/create/", testToken, `{"instance_id":"`+tt.id+`"}`)
			mustStatus(t, rec, http.StatusConflict)
			if _, msg := errorCode(t, rec); !strings.Contains(msg, tt.text) {
				t.Errorf("message %q does not contain %q", msg, tt.text)
			}
		})
	}
}

func TestCancelJob_NothingRuns(t *testing.T) {
	s, db := newTestServer(t, nil)
	inst := newProject(t, db, "demo", "x", map[string]string{"greeting": "hi"})
	rec := serve(t, s, http.MethodPost, "/jobs/cancel/", testToken, `{"instance_id":"`+inst.ID+`"}`)
	mustStatus(t, rec, http.StatusConflict)
}

func TestRedactURL(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/ws?token=secret&x=1", nil)
	got := redactURL(req.URL)
	if strings.Contains(got, "secret") {
		t.Errorf("redactURL = %q, still contains the token", got)
	}
	if !strings.Contains(got, "x=1") {
		t.Errorf("redactURL = %q, lost the other parameters", got)
	}
}
