package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// This file holds every difference between SQLite and PostgreSQL. The
// queries elsewhere are shared: $n placeholders (modernc binds $n by
// ordinal), ON CONFLICT upserts and RETURNING work in both.

// sqliteParams are applied by the modernc driver to every new connection, so
// each pooled connection gets the same pragmas. _txlock=immediate makes
// BeginTx take the write lock at once: a deferred transaction that later
// writes can fail with "database is locked" without waiting for busy_timeout.
const sqliteParams = "_pragma=busy_timeout(5000)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(NORMAL)" +
	"&_txlock=immediate"

// Pool sizes. SQLite has one writer at a time, so a few connections are
// enough: readers run in parallel under WAL and writers queue on the lock.
const (
	sqliteMaxConns   = 4
	postgresMaxConns = 10
	postgresMaxIdle  = 5
)

// migrationLockKey is the PostgreSQL advisory lock that serializes
// migrations when several servers share one database ("cliq" in ASCII).
const migrationLockKey int64 = 0x636c6971

// sqliteTimeLayout has a fixed width, so SQLite's text comparison of two
// stored times orders them correctly.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// dialect describes one database product.
type dialect struct {
	name string
	// password is removed from error messages. It is empty for SQLite.
	password string
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite database %q: %w: the path must not contain '?' or '#'", path, ErrInvalid)
	}
	memory := path == ":memory:"
	if !memory {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
		}
		path = abs
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open sqlite database %q: create directory: %w", path, err)
		}
		if err := createPrivateFile(path); err != nil {
			return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
		}
	}

	sqlDB, err := sql.Open("sqlite", path+"?"+sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
	}
	maxConns := sqliteMaxConns
	if memory {
		// Every connection to :memory: would see its own empty database.
		maxConns = 1
	}
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)

	db := &DB{db: sqlDB, dialect: &dialect{name: DialectSQLite}, redacted: path}
	if !memory {
		db.path = path
	}
	pingCtx, cancel := boundContext(ctx, PingTimeout)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
	}
	return db, nil
}

// createPrivateFile creates an empty database file with mode 0600 unless
// one exists. SQLite gives its -wal and -shm files the mode of the database
// file, so they stay private too.
func createPrivateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	redacted := RedactURL(dsn)
	u, err := url.Parse(dsn)
	if err != nil {
		// url.Error repeats the whole URL, password included, so it is not wrapped.
		return nil, fmt.Errorf("open postgres database %s: %w: malformed URL", redacted, ErrInvalid)
	}
	d := &dialect{name: DialectPostgres, password: urlPassword(u)}
	host := u.Host
	if host == "" {
		host = "the default host"
	}

	sqlDB, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres database %s: %w", redacted, d.scrub(err))
	}
	sqlDB.SetMaxOpenConns(postgresMaxConns)
	sqlDB.SetMaxIdleConns(postgresMaxIdle)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)

	pingCtx, cancel := boundContext(ctx, PingTimeout)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", host, d.scrub(err))
	}
	return &DB{db: sqlDB, dialect: d, redacted: redacted}, nil
}

// lockMigrations serializes concurrent migrators inside tx. SQLite needs
// nothing more: the transaction began with BEGIN IMMEDIATE.
func (d *dialect) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	if d.name != DialectPostgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("lock schema_migrations: %w", d.scrub(err))
	}
	return nil
}

// timeValue converts t into the value bound for a timestamp column: UTC with
// microsecond precision (PostgreSQL's), and for SQLite a fixed-width string.
func (d *dialect) timeValue(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d.name == DialectSQLite {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// nullTimeValue is timeValue for an optional time, where nil binds NULL.
func (d *dialect) nullTimeValue(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.timeValue(*t)
}

// scrub removes the connection password from err's message. The result
// still matches context errors with errors.Is but does not expose the
// original error.
func (d *dialect) scrub(err error) error {
	if err == nil || d.password == "" || !strings.Contains(err.Error(), d.password) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(err.Error(), d.password, "xxxxx"), err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }

// Is lets errors.Is see through to the original error without handing it out.
func (e *scrubbedError) Is(target error) bool { return errors.Is(e.err, target) }

// isUniqueViolation reports whether err is a unique or primary key
// constraint failure in either database.
func isUniqueViolation(err error) bool {
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		code := sqliteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// isForeignKeyViolation reports whether err is a foreign key failure in
// either database.
func isForeignKeyViolation(err error) bool {
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// nullTime scans a timestamp column from either database: PostgreSQL returns
// time.Time and SQLite returns the text that timeValue wrote.
type nullTime struct {
	Time  time.Time
	Valid bool
}

// timeLayouts are tried in order when a timestamp arrives as text. The later
// ones are the modernc driver's time format and the output of SQLite's
// datetime(), for rows written by other tools.
var timeLayouts = []string{
	sqliteTimeLayout,
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
}

// Scan implements sql.Scanner.
func (n *nullTime) Scan(src any) error {
	n.Time, n.Valid = time.Time{}, false
	switch v := src.(type) {
	case nil:
		return nil
	case time.Time:
		n.Time, n.Valid = v.UTC(), true
		return nil
	case string:
		return n.parse(v)
	case []byte:
		return n.parse(string(v))
	default:
		return fmt.Errorf("scan timestamp: unsupported type %T", src)
	}
}

func (n *nullTime) parse(s string) error {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			n.Time, n.Valid = t.UTC(), true
			return nil
		}
	}
	return fmt.Errorf("scan timestamp: unrecognized format %q", s)
}

// ptr returns the time, or nil when the column was NULL.
func (n nullTime) ptr() *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time
	return &t
}
