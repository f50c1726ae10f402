// Package storetest opens real databases for tests: a SQLite file in the
// test's temporary directory, and a fresh PostgreSQL schema when
// CLIQ_TEST_DATABASE_URL is set.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"cliq/store"
)

// DatabaseURLEnv names the environment variable with the PostgreSQL URL used
// by OpenPostgres. Tests that need PostgreSQL skip when it is unset.
const DatabaseURLEnv = "CLIQ_TEST_DATABASE_URL"

// setupTimeout bounds creating and dropping a test database.
const setupTimeout = 30 * time.Second

// Open returns a migrated SQLite store in tb.TempDir(), closed when the test
// ends.
func Open(tb testing.TB) *store.DB {
	tb.Helper()
	return OpenPath(tb, filepath.Join(tb.TempDir(), "cliq.db"))
}

// OpenPath returns a migrated store for dsn, closed when the test ends.
func OpenPath(tb testing.TB, dsn string) *store.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := store.OpenWithOptions(ctx, dsn, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// OpenPostgres returns a migrated store in a new schema of the database at
// CLIQ_TEST_DATABASE_URL, or skips the test when the variable is unset. The
// schema is dropped when the test ends.
func OpenPostgres(tb testing.TB) *store.DB {
	tb.Helper()
	dsn := PostgresDSN(tb)
	return OpenPath(tb, dsn)
}

// PostgresDSN creates a new schema in the database at CLIQ_TEST_DATABASE_URL
// and returns a URL whose connections use it as search_path. The test is
// skipped when the variable is unset, and the schema is dropped when it ends.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(DatabaseURLEnv)
	if base == "" {
		tb.Skipf("%s is not set; skipping PostgreSQL test", DatabaseURLEnv)
	}
	schema := "cliqtest_" + randomHex(tb, 8)

	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("open %s: %v", store.RedactURL(base), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		tb.Fatalf("create schema %s in %s: %v", schema, store.RedactURL(base), err)
	}
	tb.Cleanup(func() { dropSchema(tb, admin, schema) })

	dsn, err := withSearchPath(base, schema)
	if err != nil {
		tb.Fatalf("%s: malformed URL %s", DatabaseURLEnv, store.RedactURL(base))
	}
	return dsn
}

// Each runs fn twice: as subtest "sqlite" with a SQLite store, and as
// subtest "postgres" with a PostgreSQL store. The second one skips when
// CLIQ_TEST_DATABASE_URL is unset.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, Open(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, OpenPostgres(t)) })
}

// dropSchema runs after the store opened in it has been closed: cleanups run
// last-registered first, and the store's Close was registered later.
func dropSchema(tb testing.TB, admin *sql.DB, schema string) {
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		tb.Errorf("drop schema %s: %v", schema, err)
	}
}

func withSearchPath(base, schema string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}
