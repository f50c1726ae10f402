package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"cliq/auth"
	"cliq/store"
)

const serverTokenUsage = `
Usage: cliq server token <command> [flags]

Manages the database tokens of the running server. Database tokens outlive
server restarts and work on every server that shares the database, until
they are revoked. create, list and revoke call the server's API with the
session token from $CLIQ_HOME/server.json, or with --server and --token.

Commands:
  create    create a token and print it; it is shown only this once
  list      list the tokens, revoked ones included
  revoke    revoke a token by id; it stops working on the next request
  generate  print a new random token without contacting any server, e.g.
            for CLIQ_ADMIN_TOKEN

Examples:
  cliq server token create --label ci-deploy
  cliq server token list --json
  cliq server token revoke tok_0123456789abcdef
  export CLIQ_ADMIN_TOKEN=$(cliq server token generate)
`

// tokenInfo is a token as the /tokens/ endpoints return it.
type tokenInfo struct {
	ID         string     `json:"id"`
	Label      string     `json:"label"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// createdToken is the response of /tokens/create/.
type createdToken struct {
	ID        string    `json:"id"`
	Label     string    `json:"label"`
	Token     string    `json:"token"`
	CreatedAt time.Time `json:"created_at"`
}

func runServerToken(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, serverTokenUsage[1:])
		return &exitError{code: ExitUsage}
	}
	if isHelp(args[0]) {
		fmt.Fprint(env.Stdout, serverTokenUsage[1:])
		return nil
	}
	switch args[0] {
	case "create":
		return runTokenCreate(ctx, env, args[1:])
	case "list":
		return runTokenList(ctx, env, args[1:])
	case "revoke":
		return runTokenRevoke(ctx, env, args[1:])
	case "generate":
		return runTokenGenerate(env, args[1:])
	}
	return usagef("unknown token command %q; see 'cliq server token -h'", args[0])
}

const tokenCreateUsage = `
Usage: cliq server token create --label LABEL [--json]

Creates a database token on the running server and prints it. The server
stores only its SHA-256, so this is the only time the token is shown: store
it now. The label (1 to 100 characters) says what the token is for.

Examples:
  cliq server token create --label ci-deploy
  cliq server token create --label nightly --json | jq -r .token
`

func runTokenCreate(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "server token create", tokenCreateUsage)
	label := fs.String("label", "", "what the token is for, 1 to 100 characters (required)")
	asJSON := fs.Bool("json", false, "print the new token as JSON")
	serverURL, token := addClientFlags(fs)
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("server token create takes no arguments, got %q; pass the label with --label", pos[0])
	}
	if strings.TrimSpace(*label) == "" {
		return usagef("--label is required, e.g. --label ci-deploy")
	}
	client, err := newClient(*serverURL, *token)
	if err != nil {
		return err
	}

	var created createdToken
	if err := client.call(ctx, "/tokens/create/", map[string]string{"label": *label}, &created); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if *asJSON {
		return writeJSON(env.Stdout, created)
	}
	fmt.Fprintf(env.Stdout, "Created token %s (label %q)\n%s\n", created.ID, created.Label, created.Token)
	fmt.Fprint(env.Stderr, "Store the token now: the server keeps only its hash and cannot show it again.\n")
	return nil
}

const tokenListUsage = `
Usage: cliq server token list [--json]

Lists the database tokens of the running server, oldest first, revoked ones
included. Tokens themselves are never shown, only their ids and labels.
`

func runTokenList(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "server token list", tokenListUsage)
	asJSON := fs.Bool("json", false, "print the tokens as JSON")
	serverURL, token := addClientFlags(fs)
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("server token list takes no arguments, got %q", pos[0])
	}
	client, err := newClient(*serverURL, *token)
	if err != nil {
		return err
	}

	var resp struct {
		Tokens []tokenInfo `json:"tokens"`
	}
	if err := client.call(ctx, "/tokens/list/", struct{}{}, &resp); err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	if *asJSON {
		return writeJSON(env.Stdout, resp)
	}
	printTokens(env.Stdout, resp.Tokens)
	return nil
}

// printTokens writes tokens as a table, with "-" for a time not set.
func printTokens(w io.Writer, tokens []tokenInfo) {
	if len(tokens) == 0 {
		fmt.Fprint(w, "No tokens. Create one with 'cliq server token create --label LABEL'.\n")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLABEL\tSTATUS\tCREATED\tLAST USED\tREVOKED")
	for _, t := range tokens {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Label, t.Status,
			formatTime(&t.CreatedAt), formatTime(t.LastUsedAt), formatTime(t.RevokedAt))
	}
	tw.Flush()
}

func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

const tokenRevokeUsage = `
Usage: cliq server token revoke ID [--json]

Revokes the database token with the given id (tok_…, see 'cliq server token
list'). Requests with the token fail from the next one on, on every server
that shares the database, and its WebSocket connections are closed.
Revoking a revoked token changes nothing.
`

func runTokenRevoke(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "server token revoke", tokenRevokeUsage)
	asJSON := fs.Bool("json", false, "print the revoked token as JSON")
	serverURL, token := addClientFlags(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("server token revoke takes one token id (tok_…), got %d arguments; see 'cliq server token list'", len(pos))
	}
	if !strings.HasPrefix(pos[0], auth.IDPrefix) {
		// The argument is not echoed: it may be a token pasted by mistake.
		return usagef("server token revoke takes a token id starting with %q, not a token; see 'cliq server token list'", auth.IDPrefix)
	}
	client, err := newClient(*serverURL, *token)
	if err != nil {
		return err
	}

	var revoked tokenInfo
	if err := client.call(ctx, "/tokens/revoke/", map[string]string{"id": pos[0]}, &revoked); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if *asJSON {
		return writeJSON(env.Stdout, revoked)
	}
	fmt.Fprintf(env.Stdout, "Revoked token %s (label %q) at %s\n", revoked.ID, revoked.Label, formatTime(revoked.RevokedAt))
	return nil
}

const tokenGenerateUsage = `
Usage: cliq server token generate

Prints a new random database token (cliq_sk_ followed by 64 hex characters)
without contacting a server or a database. Give it to a server through
CLIQ_ADMIN_TOKEN, which stores it at start.

Example:
  export CLIQ_ADMIN_TOKEN=$(cliq server token generate)
`

func runTokenGenerate(env *Env, args []string) error {
	fs := newFlagSet(env, "server token generate", tokenGenerateUsage)
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("server token generate takes no arguments, got %q", pos[0])
	}
	token, err := auth.NewDatabaseToken()
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, token)
	return nil
}

const serverMigrateUsage = `
Usage: cliq server migrate

Applies the pending schema migrations to the database that the server uses:
$CLIQ_DATABASE_URL, else database.url in the global settings, else
$CLIQ_HOME/cliq.db. The server applies them at start too; run this to
migrate a shared PostgreSQL before rolling out new servers. Running it again
changes nothing.
`

func runServerMigrate(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "server migrate", serverMigrateUsage)
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("server migrate takes no arguments, got %q", pos[0])
	}
	home, global, err := loadGlobal()
	if err != nil {
		return err
	}
	dsn := databaseURL(home, global)

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rec := &migrationRecorder{}
	db, err := store.OpenWithOptions(ctx, dsn, store.Options{Logger: slog.New(rec)})
	if err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	defer db.Close()
	all, err := db.Migrations(ctx)
	if err != nil {
		return err
	}

	applied := rec.names()
	where := store.RedactURL(dsn)
	if len(applied) == 0 {
		fmt.Fprintf(env.Stdout, "Database %s (%s) is up to date: %d migrations applied\n", where, db.Dialect(), len(all))
		return nil
	}
	fmt.Fprintf(env.Stdout, "Applied %d migrations to %s (%s): %s\n", len(applied), where, db.Dialect(), strings.Join(applied, ", "))
	return nil
}

// migrationRecorder is a slog.Handler that keeps the names of the
// migrations the store reports as applied, and drops every other record.
type migrationRecorder struct {
	mu      sync.Mutex
	applied []string
}

func (r *migrationRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *migrationRecorder) Handle(_ context.Context, rec slog.Record) error {
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "migration" {
			r.mu.Lock()
			r.applied = append(r.applied, a.Value.String())
			r.mu.Unlock()
			return false
		}
		return true
	})
	return nil
}

func (r *migrationRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *migrationRecorder) WithGroup(string) slog.Handler      { return r }

func (r *migrationRecorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.applied...)
}
