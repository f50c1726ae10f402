// Package store keeps cliq's durable state (the instance registry, API
// tokens and run history) in SQLite or PostgreSQL through database/sql.
//
// Both databases share one schema and one set of queries written with $n
// placeholders and RETURNING. What differs between the two (driver, DSN,
// error codes, time encoding, migration locking) lives in dialect.go.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Errors returned by the store. Callers test them with errors.Is.
var (
	// ErrNotFound means the requested row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique value (an id or a token hash) is taken.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means an argument was rejected before it reached the
	// database, for example an empty id.
	ErrInvalid = errors.New("invalid argument")
)

// Dialect names returned by DB.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// PingTimeout bounds Ping and the connection check in Open when the caller's
// context has no earlier deadline.
const PingTimeout = 5 * time.Second

// DB is an open store: a connection pool and the dialect of the database
// behind it. It is safe for concurrent use.
type DB struct {
	db      *sql.DB
	dialect *dialect
	// path is the SQLite file, or empty for PostgreSQL and :memory:.
	path string
	// redacted is the DSN without its password, for messages.
	redacted string
	logger   *slog.Logger
	// tokenByHash is prepared once because every request authenticated by
	// a database token runs it.
	tokenByHash *sql.Stmt
}

// Options adjusts OpenWithOptions.
type Options struct {
	// Logger receives a line per applied migration. Nil means
	// slog.Default() with component=store.
	Logger *slog.Logger
}

// Open connects to the database named by dsn and applies every pending
// migration. A dsn starting with postgres:// or postgresql:// selects
// PostgreSQL. Anything else is a SQLite file path, optionally written as
// file:PATH, and the file is created when missing.
// A PostgreSQL server that does not respond within PingTimeout fails Open
// with an error that names the host. No error contains the password.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return OpenWithOptions(ctx, dsn, Options{})
}

// OpenWithOptions is Open with a logger of the caller's choice.
func OpenWithOptions(ctx context.Context, dsn string, opts Options) (*DB, error) {
	db, err := open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	db.logger = opts.Logger
	if db.logger == nil {
		db.logger = slog.Default().With("component", "store")
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// prepare prepares the statements of the hot paths. It runs after Migrate
// because preparing a statement checks that its tables exist.
func (db *DB) prepare(ctx context.Context) error {
	stmt, err := db.db.PrepareContext(ctx, tokenByHashQuery)
	if err != nil {
		return fmt.Errorf("prepare token lookup: %w", db.dialect.scrub(err))
	}
	db.tokenByHash = stmt
	return nil
}

func open(ctx context.Context, dsn string) (*DB, error) {
	dsn = strings.TrimSpace(dsn)
	switch {
	case dsn == "":
		return nil, fmt.Errorf("open database: %w: empty DSN (give a postgres:// URL or a SQLite file path)", ErrInvalid)
	case IsPostgresURL(dsn):
		return openPostgres(ctx, dsn)
	case strings.HasPrefix(dsn, "file:"):
		// A SQLite URI such as file:/var/lib/cliq/cliq.db names the same file.
		return openSQLite(ctx, strings.TrimPrefix(dsn, "file:"))
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("open database %s: %w: unsupported URL scheme (use postgres://, postgresql:// or a SQLite file path)",
			RedactURL(dsn), ErrInvalid)
	default:
		return openSQLite(ctx, dsn)
	}
}

// IsPostgresURL reports whether dsn selects PostgreSQL.
func IsPostgresURL(dsn string) bool {
	lower := strings.ToLower(dsn)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// Close closes the connection pool.
func (db *DB) Close() error {
	if db.tokenByHash != nil {
		db.tokenByHash.Close()
	}
	return db.db.Close()
}

// Dialect returns DialectSQLite or DialectPostgres.
func (db *DB) Dialect() string {
	return db.dialect.name
}

// String returns the redacted DSN, safe to log.
func (db *DB) String() string {
	return db.redacted
}

// Ping makes a round trip to the database, bounded by PingTimeout. For SQLite
// it also fails when the database file has been removed, which an open
// connection would not notice on its own.
func (db *DB) Ping(ctx context.Context) error {
	if db.path != "" {
		if _, err := os.Stat(db.path); err != nil {
			return fmt.Errorf("ping sqlite database: %w", err)
		}
	}
	ctx, cancel := boundContext(ctx, PingTimeout)
	defer cancel()

	var one int
	if err := db.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping %s database %s: %w", db.dialect.name, db.redacted, db.dialect.scrub(err))
	}
	return nil
}

// boundContext returns ctx limited to d unless it already ends sooner.
func boundContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
