package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"

	"cliq/auth"
	"cliq/logging"
	"cliq/server"
	"cliq/settings"
	"cliq/store"
)

func init() {
	extraCommands = append(extraCommands, command{"server", "start, stop or check the HTTP and WebSocket server", runServer})
}

// AdminTokenEnv names the environment variable whose database token is
// seeded into the store at server start.
const AdminTokenEnv = "CLIQ_ADMIN_TOKEN"

// shutdownTimeout bounds a graceful shutdown after SIGINT or SIGTERM.
const shutdownTimeout = 5 * time.Second

const serverUsage = `
Usage: cliq server <command> [flags]

Runs the HTTP and WebSocket server that exposes the engine to curl scripts,
CI jobs and the Dashboard. One server owns a CLIQ_HOME; it records its pid,
port, URL and session token in $CLIQ_HOME/server.json.

Commands:
  start    run the server in the foreground until SIGINT or SIGTERM
  status   report whether the server is running (exit 1 when it is not)
  stop     stop the running server and wait until it is gone
  token    create, list, revoke or generate database tokens
  migrate  apply pending schema migrations to the database

Examples:
  cliq server start
  cliq server start --port 8080 --host 0.0.0.0
  cliq server status
  cliq server stop
  cliq server token create --label ci-deploy
`

func runServer(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, serverUsage[1:])
		return &exitError{code: ExitUsage}
	}
	if isHelp(args[0]) {
		fmt.Fprint(env.Stdout, serverUsage[1:])
		return nil
	}
	switch args[0] {
	case "start":
		return runServerStart(ctx, env, args[1:])
	case "status":
		return runServerStatus(ctx, env, args[1:])
	case "stop":
		return runServerStop(ctx, env, args[1:])
	case "token":
		return runServerToken(ctx, env, args[1:])
	case "migrate":
		return runServerMigrate(ctx, env, args[1:])
	}
	return usagef("unknown server command %q; see 'cliq server -h'", args[0])
}

const serverStartUsage = `
Usage: cliq server start [--port N] [--host H]

Runs the server in the foreground. It prints the URL and the session token,
writes $CLIQ_HOME/server.json (mode 0600), and on SIGINT or SIGTERM closes
every WebSocket client with code 1001, removes server.json and exits 0.
Pipelines started through the server keep running after it stops.

A server.json left by a crashed server is removed; a live server of the same
CLIQ_HOME makes start fail.

Examples:
  cliq server start
  cliq server start --port 0     # any free port; the URL shows which
`

func runServerStart(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "server start", serverStartUsage)
	port := fs.Int("port", server.DefaultPort, "TCP `port` to listen on (default server.port); 0 picks a free one")
	host := fs.String("host", server.DefaultHost, "`address` to listen on (default server.host); 0.0.0.0 listens on every interface")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("server start takes no arguments, got %q", pos[0])
	}
	if *port < 0 || *port > 65535 {
		return usagef("--port %d is out of range; use 1 to 65535, or 0 for any free port", *port)
	}

	home, global, err := loadGlobal()
	if err != nil {
		return err
	}
	if err := settings.Validate(global); err != nil {
		return fmt.Errorf("invalid global settings in %s: %w; fix it with 'cliq settings KEY VALUE --global'", settings.GlobalPath(home), err)
	}
	// A flag on the command line wins over the settings.
	if !flagGiven(fs, "port") {
		*port = settings.ServerPort(global)
	}
	if !flagGiven(fs, "host") {
		*host = settings.ServerHost(global)
	}
	if err := claimHome(ctx, env, home); err != nil {
		return err
	}
	logs, err := openServerLogs(env, home, global)
	if err != nil {
		return err
	}
	defer logs.Close()

	db, err := openStore(ctx, home, global, logs.Logger("store"))
	if err != nil {
		return err
	}
	defer db.Close()
	srv, token, err := newServer(ctx, home, global, db, logs, *host, *port)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("start server: %w (is another program using port %d? pick one with --port)", err, *port)
	}
	fmt.Fprintf(env.Stdout, "cliq server %s listening on %s\nSession token: %s\nServer info: %s\n",
		Version, srv.URL(), token, server.InfoPath(home))

	<-ctx.Done()
	fmt.Fprint(env.Stdout, "Shutting down\n")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down server: %w", err)
	}
	return nil
}

// flagGiven reports whether the flag called name was set on the command
// line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// claimHome fails when a live server owns home and removes a stale
// server.json.
func claimHome(ctx context.Context, env *Env, home string) error {
	status, err := server.Check(ctx, home)
	if err != nil {
		return err
	}
	switch status.State {
	case server.StateRunning:
		return fmt.Errorf("a cliq server is already running for %s (pid %d, %s); stop it with 'cliq server stop' or use another CLIQ_HOME",
			home, status.Info.PID, status.Info.URL)
	case server.StateStale:
		fmt.Fprintf(env.Stderr, "cliq: removed a stale server.json (%s)\n", status.Reason)
	}
	return nil
}

// openServerLogs opens the JSON logs that go to stderr and to the rotating
// $CLIQ_HOME/logs/server.log, at the levels of the global settings, and
// keeps CLIQ_ADMIN_TOKEN out of them.
func openServerLogs(env *Env, home string, global settings.Map) (*logging.Logs, error) {
	logs, err := logging.Open(home, global, env.Stderr)
	if err != nil {
		return nil, fmt.Errorf("open server log: %w", err)
	}
	logs.AddSecrets(os.Getenv(AdminTokenEnv))
	return logs, nil
}

// newServer builds the server: a new session token, the verifier, the
// seeded admin token and the CORS origins from the settings.
func newServer(ctx context.Context, home string, global settings.Map, db *store.DB, logs *logging.Logs, host string, port int) (*server.Server, string, error) {
	token, err := auth.NewSessionToken()
	if err != nil {
		return nil, "", err
	}
	verifier := auth.NewVerifier(token, db)
	logs.AddSecrets(token)
	verifier.SetLogger(logs.Logger(logging.ComponentAuth))
	if err := seedAdminToken(ctx, db, logs.Logger(logging.ComponentServer)); err != nil {
		return nil, "", err
	}
	origins, _, err := settings.Strings(global, "server.cors_origins")
	if err != nil {
		return nil, "", err
	}
	srv, err := server.New(server.Config{
		Home: home, Host: host, Port: port, DB: db, Verifier: verifier, SessionToken: token,
		Logger: logs.Base(), Logs: logs, Version: Version, CORSOrigins: origins,
	})
	if err != nil {
		return nil, "", err
	}
	return srv, token, nil
}

// seedAdminToken stores the token in CLIQ_ADMIN_TOKEN, when set, as a
// database token. Seeding the same token again changes nothing.
func seedAdminToken(ctx context.Context, db *store.DB, logger *slog.Logger) error {
	plaintext := os.Getenv(AdminTokenEnv)
	if plaintext == "" {
		return nil
	}
	id, created, err := auth.SeedToken(ctx, db, plaintext, "admin")
	if err != nil {
		return fmt.Errorf("%s: %w", AdminTokenEnv, err)
	}
	logger.Info("admin token seeded", "token_id", id, "created", created)
	return nil
}

const serverStatusUsage = `
Usage: cliq server status [--json]

Reports whether the server of this CLIQ_HOME is running: its pid, port, URL,
version and uptime. The server counts as running only when its port answers
the health check with the pid in server.json. A server.json left by a
crashed server is reported as stale and removed. Exits 1 when no server runs.
`

func runServerStatus(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "server status", serverStatusUsage)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	home, err := settings.Home()
	if err != nil {
		return err
	}
	status, err := server.Check(ctx, home)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(env.Stdout, statusJSON(status)); err != nil {
			return err
		}
	} else {
		printServerStatus(env.Stdout, status)
	}
	if status.State != server.StateRunning {
		return &exitError{code: ExitFailure}
	}
	return nil
}

// statusJSON is the --json form of a server status. The token is left out.
func statusJSON(st server.Status) map[string]any {
	out := map[string]any{"status": st.State}
	if st.Reason != "" {
		out["reason"] = st.Reason
	}
	if st.State == server.StateRunning {
		info := st.Info
		out["pid"], out["port"], out["url"], out["version"] = info.PID, info.Port, info.URL, info.Version
		out["started_at"] = info.StartedAt
		out["uptime_seconds"] = int64(time.Since(info.StartedAt).Seconds())
	}
	return out
}

func printServerStatus(w io.Writer, st server.Status) {
	switch st.State {
	case server.StateRunning:
		info := st.Info
		fmt.Fprintf(w, "Server running\n  pid:     %d\n  port:    %d\n  url:     %s\n  version: %s\n  uptime:  %s\n",
			info.PID, info.Port, info.URL, info.Version, time.Since(info.StartedAt).Round(time.Second))
	case server.StateStale:
		fmt.Fprintf(w, "Server not running (removed a stale server.json: %s)\n", st.Reason)
	default:
		fmt.Fprint(w, "Server not running\n")
	}
}

const serverStopUsage = `
Usage: cliq server stop [--timeout D]

Sends SIGTERM to the server named by $CLIQ_HOME/server.json and waits until
it has exited. Pipelines it started keep running. Stopping when no server
runs is not an error.
`

func runServerStop(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "server stop", serverStopUsage)
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the server to exit")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	home, err := settings.Home()
	if err != nil {
		return err
	}
	status, err := server.Check(ctx, home)
	if err != nil {
		return err
	}
	if status.State != server.StateRunning {
		printServerStatus(env.Stdout, status)
		return nil
	}
	pid := status.Info.PID
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop server pid %d: %w", pid, err)
	}
	if err := waitServerGone(ctx, home, status.Info, *timeout); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Server stopped (pid %d)\n", pid)
	return nil
}

// waitServerGone waits until the server's process has exited, or its
// server.json is gone and its port no longer accepts connections. A process
// that has exited but was not yet reaped by its parent still has a pid.
func waitServerGone(ctx context.Context, home string, info *server.Info, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if !processAlive(info.PID) {
			return nil
		}
		if _, err := server.ReadInfo(home); errors.Is(err, server.ErrNoServer) && server.Probe(ctx, info) != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server pid %d did not stop within %s; end it with 'kill -9 %d'", info.PID, timeout, info.PID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
