package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"cliq/auth"
	"cliq/pipeline"
	"cliq/store"
	"cliq/store/storetest"
)

// testToken is the session token of the servers built by newTestServer.
var testToken = mustSessionToken()

func mustSessionToken() string {
	token, err := auth.NewSessionToken()
	if err != nil {
		panic(err)
	}
	return token
}

// newTestServer returns a server over a fresh SQLite store, not started.
func newTestServer(tb testing.TB, edit func(*Config)) (*Server, *store.DB) {
	tb.Helper()
	db := storetest.Open(tb)
	cfg := Config{
		Host: "127.0.0.1", Port: 0, DB: db, Verifier: auth.NewVerifier(testToken, db),
		SessionToken: testToken, Logger: testLogger(tb), Executable: "/bin/false",
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s, db
}

// startTestServer starts s and shuts it down when the test ends.
func startTestServer(tb testing.TB, s *Server) {
	tb.Helper()
	if err := s.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
}

// testLogger logs to the test output when -v is given, else discards.
func testLogger(tb testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// serve sends one request through the server's handler.
func serve(tb testing.TB, s *Server, method, path, token, body string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// errorCode decodes an error response and returns its code and message.
func errorCode(tb testing.TB, rec *httptest.ResponseRecorder) (string, string) {
	tb.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		tb.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		tb.Fatalf("error body %q is not JSON: %v", rec.Body.String(), err)
	}
	return body.Error.Code, body.Error.Message
}

// decodeBody decodes a JSON response body into v.
func decodeBody(tb testing.TB, r io.Reader, v any) {
	tb.Helper()
	if err := json.NewDecoder(r).Decode(v); err != nil {
		tb.Fatalf("decode response: %v", err)
	}
}

// moduleRoot returns the directory of go.mod.
func moduleRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate the test source")
	}
	return filepath.Dir(filepath.Dir(file))
}

// newProject creates a project with an instance id, the team in
// testdata/teams/<team> assembled, and the requirement text with inputs.
// It registers the instance in db when db is not nil.
func newProject(tb testing.TB, db *store.DB, team, requirement string, inputs map[string]string) store.Instance {
	tb.Helper()
	dir := tb.TempDir()
	id := "cliq-" + randomHex6(tb)
	if err := os.MkdirAll(filepath.Join(dir, ".cliq"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".cliq", "cliq.id"), []byte(id+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	if team != "" {
		if _, err := pipeline.Assemble(dir, filepath.Join(moduleRoot(tb), "testdata", "teams", team)); err != nil {
			tb.Fatalf("assemble %s: %v", team, err)
		}
	}
	if requirement != "" {
		if err := pipeline.WriteRequirement(dir, requirement, inputs); err != nil {
			tb.Fatalf("write requirement: %v", err)
		}
	}
	inst := store.Instance{ID: id, Name: filepath.Base(dir), ProjectDir: dir}
	if db != nil {
		if err := db.PutInstance(context.Background(), inst); err != nil {
			tb.Fatalf("register instance: %v", err)
		}
		got, err := db.Instance(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		inst = got
	}
	return inst
}

func randomHex6(tb testing.TB) string {
	tb.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// mustStatus fails the test unless rec has the wanted status.
func mustStatus(tb testing.TB, rec *httptest.ResponseRecorder, want int) {
	tb.Helper()
	if rec.Code != want {
		tb.Fatalf("status = %d, want %d; body %s", rec.Code, want, rec.Body.String())
	}
}
