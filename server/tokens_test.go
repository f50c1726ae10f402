package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cliq/auth"
	"cliq/store"
	"cliq/store/storetest"
)

// eachStore runs fn with a server over SQLite and, when
// CLIQ_TEST_DATABASE_URL is set, over a fresh PostgreSQL schema.
func eachStore(t *testing.T, fn func(t *testing.T, s *Server, db *store.DB)) {
	t.Helper()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, _ := newTestServer(t, func(c *Config) {
			c.DB = db
			c.Verifier = auth.NewVerifier(testToken, db)
		})
		fn(t, s, db)
	})
}

// createTestToken creates a token through the API with the session token.
func createTestToken(tb testing.TB, s *Server, label string) createTokenResponse {
	tb.Helper()
	body, _ := json.Marshal(createTokenRequest{Label: label})
	rec := serve(tb, s, http.MethodPost, "/tokens/create/", testToken, string(body))
	mustStatus(tb, rec, http.StatusCreated)
	var created createTokenResponse
	decodeBody(tb, rec.Body, &created)
	return created
}

// listTestTokens returns /tokens/list/ as seen with token.
func listTestTokens(tb testing.TB, s *Server, token string) []tokenInfo {
	tb.Helper()
	rec := serve(tb, s, http.MethodPost, "/tokens/list", token, "")
	mustStatus(tb, rec, http.StatusOK)
	var resp struct {
		Tokens []tokenInfo `json:"tokens"`
	}
	decodeBody(tb, rec.Body, &resp)
	return resp.Tokens
}

func TestTokens_Lifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Server, db *store.DB) {
		created := createTestToken(t, s, "  ci-deploy  ")
		if !auth.ValidDatabaseToken(created.Token) {
			t.Fatalf("token %q is not a well-formed database token", created.Token)
		}
		if !strings.HasPrefix(created.ID, auth.IDPrefix) {
			t.Errorf("id = %q, want the prefix %q", created.ID, auth.IDPrefix)
		}
		if created.Label != "ci-deploy" {
			t.Errorf("label = %q, want the trimmed %q", created.Label, "ci-deploy")
		}
		if created.CreatedAt.IsZero() {
			t.Error("created_at is zero")
		}

		// The new token authenticates, and its use is recorded.
		list := listTestTokens(t, s, created.Token)
		if len(list) != 1 {
			t.Fatalf("listed %d tokens, want 1: %+v", len(list), list)
		}
		got := list[0]
		if got.ID != created.ID || got.Label != "ci-deploy" || got.Status != TokenActive {
			t.Errorf("listed %+v, want id %s, label ci-deploy, status active", got, created.ID)
		}
		if !got.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("listed created_at %s, want %s", got.CreatedAt, created.CreatedAt)
		}
		if got.LastUsedAt == nil {
			t.Error("last_used_at is null after the token was used")
		}
		if got.RevokedAt != nil {
			t.Errorf("revoked_at = %s, want null", got.RevokedAt)
		}

		// Revoking takes effect on the next request.
		rec := serve(t, s, http.MethodPost, "/tokens/revoke/", testToken, `{"id":"`+created.ID+`"}`)
		mustStatus(t, rec, http.StatusOK)
		var revoked tokenInfo
		decodeBody(t, rec.Body, &revoked)
		if revoked.Status != TokenRevoked || revoked.RevokedAt == nil {
			t.Fatalf("revoke returned %+v, want status revoked with revoked_at", revoked)
		}
		rec = serve(t, s, http.MethodPost, "/tokens/list/", created.Token, "")
		mustStatus(t, rec, http.StatusUnauthorized)

		// Revoking again is a harmless repeat that keeps the first time.
		rec = serve(t, s, http.MethodPost, "/tokens/revoke", testToken, `{"id":"`+created.ID+`"}`)
		mustStatus(t, rec, http.StatusOK)
		var again tokenInfo
		decodeBody(t, rec.Body, &again)
		if again.RevokedAt == nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
			t.Errorf("second revoke has revoked_at %v, want the first %s", again.RevokedAt, revoked.RevokedAt)
		}

		list = listTestTokens(t, s, testToken)
		if len(list) != 1 || list[0].Status != TokenRevoked {
			t.Errorf("listed %+v, want the one token, revoked", list)
		}
	})
}

func TestTokens_StoredHashOnly(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Server, db *store.DB) {
		created := createTestToken(t, s, "ci")
		stored, err := db.Token(context.Background(), created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Hash != auth.Hash(created.Token) {
			t.Errorf("stored hash %s is not the SHA-256 of the token", stored.Hash)
		}

		// Neither the list nor the revoke response repeats the token.
		rec := serve(t, s, http.MethodPost, "/tokens/list/", testToken, "")
		mustStatus(t, rec, http.StatusOK)
		if strings.Contains(rec.Body.String(), created.Token) || strings.Contains(rec.Body.String(), stored.Hash) {
			t.Errorf("list response contains the token or its hash: %s", rec.Body.String())
		}
		rec = serve(t, s, http.MethodPost, "/tokens/revoke/", testToken, `{"id":"`+created.ID+`"}`)
		mustStatus(t, rec, http.StatusOK)
		if strings.Contains(rec.Body.String(), created.Token) || strings.Contains(rec.Body.String(), stored.Hash) {
			t.Errorf("revoke response contains the token or its hash: %s", rec.Body.String())
		}
	})
}

func TestCreateToken_Label(t *testing.T) {
	s, _ := newTestServer(t, nil)
	tests := []struct {
		name  string
		label string
		want  string // the stored label, or "" for a 400
	}{
		{"Plain", "nightly", "nightly"},
		{"Trimmed", " \tnightly \n", "nightly"},
		{"MaxRunes", strings.Repeat("é", MaxTokenLabel), strings.Repeat("é", MaxTokenLabel)},
		{"Empty", "", ""},
		{"Spaces", "   ", ""},
		{"TooLong", strings.Repeat("a", MaxTokenLabel+1), ""},
		{"ControlCharacter", "ci\x07deploy", ""},
		{"InnerNewline", "ci\ndeploy", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"label": tt.label})
			rec := serve(t, s, http.MethodPost, "/tokens/create/", testToken, string(body))
			if tt.want == "" {
				mustStatus(t, rec, http.StatusBadRequest)
				code, msg := errorCode(t, rec)
				if code != CodeInvalidRequest || !strings.Contains(msg, "label") {
					t.Errorf("error %s %q, want invalid_request naming the label", code, msg)
				}
				return
			}
			mustStatus(t, rec, http.StatusCreated)
			var created createTokenResponse
			decodeBody(t, rec.Body, &created)
			if created.Label != tt.want {
				t.Errorf("label = %q, want %q", created.Label, tt.want)
			}
		})
	}

	t.Run("UnknownField", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/tokens/create/", testToken, `{"label":"x","scope":"admin"}`)
		mustStatus(t, rec, http.StatusBadRequest)
	})
	t.Run("NoToken", func(t *testing.T) {
		rec := serve(t, s, http.MethodPost, "/tokens/create/", "", `{"label":"x"}`)
		mustStatus(t, rec, http.StatusUnauthorized)
	})
}

func TestRevokeToken_BadID(t *testing.T) {
	secret, err := auth.NewDatabaseToken()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		id     string
		status int
	}{
		{"Empty", "", http.StatusBadRequest},
		{"NotAnID", "abc", http.StatusBadRequest},
		{"TokenInsteadOfID", secret, http.StatusBadRequest},
		{"Unknown", "tok_0000000000000000", http.StatusNotFound},
	}
	eachStore(t, func(t *testing.T, s *Server, db *store.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				body, _ := json.Marshal(revokeTokenRequest{ID: tt.id})
				rec := serve(t, s, http.MethodPost, "/tokens/revoke/", testToken, string(body))
				mustStatus(t, rec, tt.status)
				_, msg := errorCode(t, rec)
				if strings.Contains(msg, secret[len(auth.DatabasePrefix):len(auth.DatabasePrefix)+8]) {
					t.Errorf("message %q repeats part of the token", msg)
				}
				if tt.status == http.StatusNotFound && !strings.Contains(msg, tt.id) {
					t.Errorf("message %q does not name the id %s", msg, tt.id)
				}
			})
		}
	})
}

// dialWithToken opens a WebSocket connection to a started in-process server
// with token in the Authorization header.
func dialWithToken(tb testing.TB, s *Server, token string) *wsConn {
	tb.Helper()
	return dialWS(tb, s.URL(), token)
}

func TestTokens_RevokeClosesWebSocket(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Server, db *store.DB) {
		startTestServer(t, s)
		activeToken := createTestToken(t, s, "active")
		revokedToken := createTestToken(t, s, "revoked")
		wsActive := dialWithToken(t, s, activeToken.Token)
		wsRevoked := dialWithToken(t, s, revokedToken.Token)
		wsSession := dialWithToken(t, s, testToken)

		rec := serve(t, s, http.MethodPost, "/tokens/revoke/", testToken, `{"id":"`+revokedToken.ID+`"}`)
		mustStatus(t, rec, http.StatusOK)
		if code := wsRevoked.waitClose(t, 5*time.Second); code != 1008 {
			t.Errorf("close code = %d, want 1008", code)
		}

		// The other connections still work.
		wsActive.subscribe(t, "jobs")
		wsSession.subscribe(t, "jobs")
	})
}

func TestTokens_RecheckClosesWebSocket(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Server, db *store.DB) {
		startTestServer(t, s)
		created := createTestToken(t, s, "elsewhere")
		ws := dialWithToken(t, s, created.Token)
		ws.subscribe(t, "jobs")

		// Revoke in the store directly, as another replica sharing the
		// database would. Only the periodic recheck can notice it.
		if _, err := db.RevokeToken(context.Background(), created.ID); err != nil {
			t.Fatal(err)
		}
		if code := ws.waitClose(t, TokenRecheckInterval+3*time.Second); code != 1008 {
			t.Errorf("close code = %d, want 1008", code)
		}
	})
}

func TestTokens_ConcurrentSQLite(t *testing.T) {
	s, _ := newTestServer(t, nil)
	startTestServer(t, s)
	user := createTestToken(t, s, "reader")

	const n = 50
	type result struct {
		what   string
		status int
		body   string
	}
	results := make(chan result, 3*n)
	client := &http.Client{Timeout: e2eTimeout}
	post := func(what, path, token, body string) {
		req, err := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(body))
		if err != nil {
			results <- result{what: what, body: err.Error()}
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			results <- result{what: what, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		json.NewDecoder(resp.Body).Decode(&raw)
		results <- result{what: what, status: resp.StatusCode, body: string(raw)}
	}
	for i := range n {
		go post("create", "/tokens/create/", testToken, fmt.Sprintf(`{"label":"parallel-%d"}`, i))
		go post("list with a database token", "/tokens/list/", user.Token, "")
		go post("instances with a database token", "/instances/list/", user.Token, "")
	}

	for range 3 * n {
		select {
		case r := <-results:
			if r.status == 0 || r.status >= 500 || strings.Contains(r.body, "locked") {
				t.Errorf("%s: status %d, body %s", r.what, r.status, r.body)
			}
		case <-time.After(e2eTimeout):
			t.Fatal("timed out waiting for the parallel requests")
		}
	}
	if got := len(listTestTokens(t, s, testToken)); got != n+1 {
		t.Errorf("listed %d tokens, want %d", got, n+1)
	}
}

func TestReadyz_SQLiteFileDeleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cliq.db")
	db := storetest.OpenPath(t, path)
	s, _ := newTestServer(t, func(c *Config) {
		c.DB = db
		c.Verifier = auth.NewVerifier(testToken, db)
	})
	mustStatus(t, serve(t, s, http.MethodGet, "/readyz", "", ""), http.StatusOK)

	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	mustStatus(t, serve(t, s, http.MethodGet, "/readyz", "", ""), http.StatusServiceUnavailable)
	mustStatus(t, serve(t, s, http.MethodGet, "/healthz", "", ""), http.StatusOK)
}
