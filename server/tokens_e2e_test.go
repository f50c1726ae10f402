package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"cliq/auth"
	"cliq/store/storetest"
)

// cliResult is the outcome of one cliq command.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs cliq with args in a temporary directory, waits at most
// e2eTimeout and returns its output and exit code.
func (e *cliqEnv) runCLI(tb testing.TB, args ...string) cliResult {
	tb.Helper()
	cmd := e.command(tb.TempDir(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var err error
	select {
	case err = <-done:
	case <-time.After(e2eTimeout):
		cmd.Process.Kill()
		<-done
		tb.Fatalf("cliq %s did not finish within %s; stderr:\n%s", strings.Join(args, " "), e2eTimeout, stderr.String())
	}
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	case err != nil:
		tb.Fatalf("cliq %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// mustRunCLI is runCLI that fails the test unless cliq exits 0.
func (e *cliqEnv) mustRunCLI(tb testing.TB, args ...string) string {
	tb.Helper()
	res := e.runCLI(tb, args...)
	if res.code != 0 {
		tb.Fatalf("cliq %s exited %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// checkNoToken fails the test when text contains an 8-character part of
// the random part of token.
func checkNoToken(tb testing.TB, where, text, token string) {
	tb.Helper()
	if part := findSecretPart(text, secretAfterPrefix(token)); part != "" {
		tb.Errorf("%s contains %q, a part of a token", where, part)
	}
}

// getStatus sends GET url and returns the status.
func getStatus(tb testing.TB, url string) int {
	tb.Helper()
	client := &http.Client{Timeout: e2eTimeout}
	resp, err := client.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestE2E_TokenCommands(t *testing.T) {
	env := newCliqEnv(t)
	srv := env.startServer(t)

	// create prints the token once; list shows it as active.
	var created createTokenResponse
	out := env.mustRunCLI(t, "server", "token", "create", "--label", "ci-deploy", "--json")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("token create --json printed %q: %v", out, err)
	}
	if !auth.ValidDatabaseToken(created.Token) || created.Label != "ci-deploy" {
		t.Fatalf("created %+v, want a database token labelled ci-deploy", created)
	}
	textCreate := env.runCLI(t, "server", "token", "create", "--label", "second")
	if textCreate.code != 0 || !strings.Contains(textCreate.stdout, auth.DatabasePrefix) {
		t.Errorf("token create exited %d with %q, want the token on stdout", textCreate.code, textCreate.stdout)
	}
	mustCallAs(t, srv, created.Token, "/jobs/list/", struct{}{}, nil, http.StatusOK)

	table := env.mustRunCLI(t, "server", "token", "list")
	if !strings.Contains(table, created.ID) || !strings.Contains(table, "ci-deploy") || !strings.Contains(table, TokenActive) {
		t.Errorf("token list printed\n%s\nwant a row for %s, ci-deploy, active", table, created.ID)
	}
	var listed struct {
		Tokens []tokenInfo `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(env.mustRunCLI(t, "server", "token", "list", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed.Tokens) != 2 {
		t.Errorf("token list --json has %d tokens, want 2", len(listed.Tokens))
	}

	// revoke stops the token at once; revoking again changes nothing.
	out = env.mustRunCLI(t, "server", "token", "revoke", created.ID)
	if !strings.Contains(out, created.ID) {
		t.Errorf("token revoke printed %q, want the id %s", out, created.ID)
	}
	if status := callAs(t, srv, created.Token, "/jobs/list/", struct{}{}, nil); status != http.StatusUnauthorized {
		t.Errorf("revoked token: status %d, want 401", status)
	}
	env.mustRunCLI(t, "server", "token", "revoke", created.ID)

	// Mistakes are usage errors that do not repeat a token.
	res := env.runCLI(t, "server", "token", "revoke", created.Token)
	if res.code != 2 {
		t.Errorf("token revoke with a token exited %d, want 2", res.code)
	}
	checkNoToken(t, "stderr of token revoke", res.stderr, created.Token)
	if res := env.runCLI(t, "server", "token", "revoke", "tok_0000000000000000"); res.code != 1 || !strings.Contains(res.stderr, "not found") {
		t.Errorf("token revoke of an unknown id exited %d with %q, want 1 and not found", res.code, res.stderr)
	}
	if res := env.runCLI(t, "server", "token", "create"); res.code != 2 || !strings.Contains(res.stderr, "--label") {
		t.Errorf("token create without a label exited %d with %q, want 2 naming --label", res.code, res.stderr)
	}

	generated := strings.TrimSpace(env.mustRunCLI(t, "server", "token", "generate"))
	if !auth.ValidDatabaseToken(generated) {
		t.Errorf("token generate printed %q, want a database token", generated)
	}
	if out := env.mustRunCLI(t, "server", "migrate"); !strings.Contains(out, "up to date") {
		t.Errorf("migrate on a migrated database printed %q, want up to date", out)
	}

	srv.stop(t)
	logs := srv.stderr.String() + readServerLogs(t, env.home)
	for _, token := range []string{created.Token, srv.token} {
		checkNoToken(t, "server output", logs, token)
	}
}

func TestE2E_AdminToken(t *testing.T) {
	admin, err := auth.NewDatabaseToken()
	if err != nil {
		t.Fatal(err)
	}
	env := newCliqEnv(t)
	env.env = []string{"CLIQ_ADMIN_TOKEN=" + admin}

	listAsAdmin := func(srv *serverProc) []tokenInfo {
		t.Helper()
		var resp struct {
			Tokens []tokenInfo `json:"tokens"`
		}
		mustCallAs(t, srv, admin, "/tokens/list/", struct{}{}, &resp, http.StatusOK)
		return resp.Tokens
	}

	srv := env.startServer(t)
	first := listAsAdmin(srv)
	if len(first) != 1 || first[0].Label != "admin" || first[0].Status != TokenActive {
		t.Fatalf("tokens after the first start: %+v, want one active token labelled admin", first)
	}
	srv.stop(t)
	logs := srv.stderr.String()

	// Seeding the same value again changes nothing.
	srv = env.startServer(t)
	again := listAsAdmin(srv)
	if len(again) != 1 || again[0].ID != first[0].ID {
		t.Errorf("tokens after a restart: %+v, want only %s", again, first[0].ID)
	}
	srv.stop(t)
	logs += srv.stderr.String() + readServerLogs(t, env.home)
	checkNoToken(t, "server output", logs, admin)

	t.Run("Malformed", func(t *testing.T) {
		bad := "cliq_sk_" + strings.Repeat("Z", 64)
		env.env = []string{"CLIQ_ADMIN_TOKEN=" + bad}
		res := env.runCLI(t, "server", "start", "--port", "0")
		if res.code != 1 {
			t.Errorf("start exited %d, want 1; stderr:\n%s", res.code, res.stderr)
		}
		if !strings.Contains(res.stderr, "CLIQ_ADMIN_TOKEN") || !strings.Contains(res.stderr, "openssl rand -hex 32") {
			t.Errorf("stderr %q does not name CLIQ_ADMIN_TOKEN and the fix", res.stderr)
		}
		if strings.Contains(res.stderr, strings.Repeat("Z", 8)) {
			t.Errorf("stderr repeats the malformed value: %s", res.stderr)
		}
	})
}

// withHost returns dsn with its host and port replaced by addr.
func withHost(tb testing.TB, dsn, addr string) string {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("parse the PostgreSQL URL: %v", err)
	}
	u.Host = addr
	return u.String()
}

func TestE2E_UnreachablePostgres(t *testing.T) {
	env := newCliqEnv(t)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	env.env = []string{"CLIQ_DATABASE_URL=postgres://cliq:hunter2secret@" + addr + "/cliq?sslmode=disable"}

	res := env.runCLI(t, "server", "start", "--port", "0")
	if res.code != 1 {
		t.Errorf("start exited %d, want 1; stderr:\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, addr) {
		t.Errorf("stderr %q does not name the host %s", res.stderr, addr)
	}
	if strings.Contains(res.stderr+res.stdout, "hunter2secret") {
		t.Errorf("output contains the password: %s", res.stderr)
	}
	if _, err := os.Stat(InfoPath(env.home)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server.json exists after a failed start (stat error %v)", err)
	}
}

func TestE2E_SharedPostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	envA, envB := newCliqEnv(t), newCliqEnv(t)
	envA.env = []string{"CLIQ_DATABASE_URL=" + dsn}
	envB.env = envA.env
	srvA, srvB := envA.startServer(t), envB.startServer(t)

	var created createTokenResponse
	mustCallAs(t, srvA, srvA.token, "/tokens/create/", map[string]string{"label": "shared"}, &created, http.StatusCreated)
	mustCallAs(t, srvB, created.Token, "/jobs/list/", struct{}{}, nil, http.StatusOK)
	ws := dialWS(t, srvB.url, created.Token)
	ws.subscribe(t, "jobs")

	// Revoked on A: B returns 401 on the next request and closes the
	// WebSocket connection at its next recheck.
	mustCallAs(t, srvA, srvA.token, "/tokens/revoke/", map[string]string{"id": created.ID}, nil, http.StatusOK)
	if status := callAs(t, srvB, created.Token, "/jobs/list/", struct{}{}, nil); status != http.StatusUnauthorized {
		t.Errorf("server B after the revocation on A: status %d, want 401", status)
	}
	if code := ws.waitClose(t, 5*time.Second); code != 1008 {
		t.Errorf("close code = %d, want 1008", code)
	}

	var listed struct {
		Tokens []tokenInfo `json:"tokens"`
	}
	mustCallAs(t, srvB, srvB.token, "/tokens/list/", struct{}{}, &listed, http.StatusOK)
	if len(listed.Tokens) != 1 || listed.Tokens[0].Status != TokenRevoked {
		t.Errorf("server B lists %+v, want the one token, revoked", listed.Tokens)
	}

	srvA.stop(t)
	srvB.stop(t)
	logs := srvA.stderr.String() + srvB.stderr.String() + readServerLogs(t, envA.home) + readServerLogs(t, envB.home)
	checkNoToken(t, "server output", logs, created.Token)
}

// TestE2E_ReadyzFollowsPostgres stops and starts PostgreSQL from the
// server's point of view. The PostgreSQL server is shared with other
// tests, so the test puts its own TCP proxy between cliq and PostgreSQL.
// Closing the proxy's listener and cutting its connections is a stop, and
// listening on the same port again is a start.
func TestE2E_ReadyzFollowsPostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, u.Host)
	env := newCliqEnv(t)
	env.env = []string{"CLIQ_DATABASE_URL=" + withHost(t, dsn, proxy.addr)}
	srv := env.startServer(t)

	if status := getStatus(t, srv.url+"/readyz"); status != http.StatusOK {
		t.Fatalf("readyz with PostgreSQL up: %d, want 200", status)
	}
	proxy.Stop()
	waitFor(t, "readyz 503 with PostgreSQL down", func() bool {
		return getStatus(t, srv.url+"/readyz") == http.StatusServiceUnavailable
	})
	if status := getStatus(t, srv.url+"/healthz"); status != http.StatusOK {
		t.Errorf("healthz with PostgreSQL down: %d, want 200", status)
	}
	proxy.Start(t)
	waitFor(t, "readyz 200 with PostgreSQL back", func() bool {
		return getStatus(t, srv.url+"/readyz") == http.StatusOK
	})
	mustCallAs(t, srv, srv.token, "/tokens/list/", struct{}{}, nil, http.StatusOK)
}
