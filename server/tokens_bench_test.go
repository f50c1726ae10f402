package server

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"cliq/auth"
	"cliq/store"
	"cliq/store/storetest"
)

// BenchmarkAuthToken measures an authenticated POST /jobs/list/ over
// loopback HTTP with the session token, which is checked in memory, and
// with a database token, which costs one lookup by hash per request, on
// SQLite and, when CLIQ_TEST_DATABASE_URL is set, on PostgreSQL.
func BenchmarkAuthToken(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchAuthToken(b, storetest.Open(b)) })
	b.Run("postgres", func(b *testing.B) { benchAuthToken(b, storetest.OpenPostgres(b)) })
}

func benchAuthToken(b *testing.B, db *store.DB) {
	s, _ := newTestServer(b, func(c *Config) {
		c.DB = db
		c.Verifier = auth.NewVerifier(testToken, db)
	})
	startTestServer(b, s)
	created := createTestToken(b, s, "bench")

	b.Run("session", func(b *testing.B) { benchAuthPost(b, s.URL()+"/jobs/list/", testToken) })
	b.Run("database", func(b *testing.B) { benchAuthPost(b, s.URL()+"/jobs/list/", created.Token) })
}

// benchAuthPost posts {} to url with token from parallel clients that keep
// their connections alive.
func benchAuthPost(b *testing.B, url, token string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("POST %s: status %d", url, resp.StatusCode)
				return
			}
		}
	})
}
