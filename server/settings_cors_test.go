package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// corsRequest sends a request with an Origin header through s's handler.
// A preflight carries the Access-Control-Request headers a browser sends.
func corsRequest(tb testing.TB, s *Server, method, path, origin, token string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Origin", origin)
	if method == http.MethodOptions {
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// mustNoCORSHeaders fails when rec carries any Access-Control header.
func mustNoCORSHeaders(tb testing.TB, rec *httptest.ResponseRecorder) {
	tb.Helper()
	for name := range rec.Header() {
		if strings.HasPrefix(name, "Access-Control-") {
			tb.Errorf("%s = %q, want no CORS headers", name, rec.Header().Get(name))
		}
	}
}

func TestServer_CORSOrigins(t *testing.T) {
	const dash = "http://localhost:5173"
	listed, _ := newTestServer(t, func(c *Config) { c.CORSOrigins = []string{dash, "https://dash.example.com"} })
	star, _ := newTestServer(t, nil)
	none, _ := newTestServer(t, func(c *Config) { c.CORSOrigins = []string{} })

	t.Run("PreflightListed", func(t *testing.T) {
		rec := corsRequest(t, listed, http.MethodOptions, "/settings/update/", dash, "")
		mustStatus(t, rec, http.StatusNoContent)
		h := rec.Header()
		if got := h.Get("Access-Control-Allow-Origin"); got != dash {
			t.Errorf("Allow-Origin = %q, want %q", got, dash)
		}
		if got := h.Values("Vary"); !strings.Contains(strings.Join(got, ","), "Origin") {
			t.Errorf("Vary = %q, want Origin", got)
		}
		if got := h.Get("Access-Control-Allow-Headers"); !strings.Contains(got, "Authorization") {
			t.Errorf("Allow-Headers = %q, want Authorization named", got)
		}
		if got := h.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
			t.Errorf("Allow-Methods = %q, want POST", got)
		}
	})
	t.Run("RequestListedNeedsToken", func(t *testing.T) {
		rec := corsRequest(t, listed, http.MethodPost, "/settings/get/", dash, "")
		mustReject(t, rec, http.StatusUnauthorized, CodeUnauthorized)
		// The header lets the page read the error.
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != dash {
			t.Errorf("Allow-Origin on 401 = %q, want %q", got, dash)
		}
	})
	t.Run("RequestListedWithToken", func(t *testing.T) {
		rec := corsRequest(t, listed, http.MethodPost, "/jobs/list/", "https://dash.example.com", testToken)
		mustStatus(t, rec, http.StatusOK)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "https://dash.example.com" {
			t.Errorf("Allow-Origin = %q, want the second listed origin", got)
		}
	})
	t.Run("PreflightUnlisted", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example.com", dash + ".evil.example.com", "http://localhost:5174"} {
			rec := corsRequest(t, listed, http.MethodOptions, "/settings/update/", origin, "")
			mustNoCORSHeaders(t, rec)
		}
	})
	t.Run("RequestUnlisted", func(t *testing.T) {
		rec := corsRequest(t, listed, http.MethodPost, "/jobs/list/", "https://evil.example.com", testToken)
		mustStatus(t, rec, http.StatusOK)
		mustNoCORSHeaders(t, rec)
	})
	t.Run("PreflightAny", func(t *testing.T) {
		rec := corsRequest(t, star, http.MethodOptions, "/integrations/test/", "https://anything.example.org", "")
		mustStatus(t, rec, http.StatusNoContent)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("Allow-Origin = %q, want *", got)
		}
		if got := rec.Header().Get("Access-Control-Allow-Headers"); !strings.Contains(got, "Authorization") {
			t.Errorf("Allow-Headers = %q, want Authorization named", got)
		}
	})
	t.Run("RequestAnyNeedsToken", func(t *testing.T) {
		rec := corsRequest(t, star, http.MethodPost, "/integrations/list/", "https://anything.example.org", "")
		mustReject(t, rec, http.StatusUnauthorized, CodeUnauthorized)
	})
	t.Run("EmptyList", func(t *testing.T) {
		rec := corsRequest(t, none, http.MethodOptions, "/settings/get/", dash, "")
		mustNoCORSHeaders(t, rec)
	})
}

// handshake sends a WebSocket upgrade request to a started server, with
// origin when it is not empty, and returns the response status.
func handshake(tb testing.TB, s *Server, origin string) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+"/ws", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Authorization", "Bearer "+testToken)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("handshake: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestWebSocket_OriginList(t *testing.T) {
	listed, _ := newTestServer(t, func(c *Config) { c.CORSOrigins = []string{"https://dash.example.com"} })
	startTestServer(t, listed)
	star, _ := newTestServer(t, nil)
	startTestServer(t, star)

	cases := []struct {
		name   string
		server *Server
		origin string
		want   int
	}{
		{"NoOrigin", listed, "", http.StatusSwitchingProtocols},
		{"Listed", listed, "https://dash.example.com", http.StatusSwitchingProtocols},
		{"Unlisted", listed, "https://evil.example.com", http.StatusForbidden},
		{"UnlistedPort", listed, "https://dash.example.com:8443", http.StatusForbidden},
		{"AnyWithStar", star, "https://evil.example.com", http.StatusSwitchingProtocols},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := handshake(t, tc.server, tc.origin); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
		})
	}
}
