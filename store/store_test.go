package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cliq/store"
	"cliq/store/storetest"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOpen(t *testing.T) {
	t.Run("SQLiteCreatesDirectory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nested", "dir", "cliq.db")
		db := storetest.OpenPath(t, path)
		if got := db.Dialect(); got != store.DialectSQLite {
			t.Errorf("Dialect() = %q, want %q", got, store.DialectSQLite)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("database file not created: %v", err)
		}
	})

	t.Run("SQLiteFileURI", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "uri.db")
		for _, dsn := range []string{"file:" + path, "file://" + path} {
			storetest.OpenPath(t, dsn).Close()
			if _, err := os.Stat(path); err != nil {
				t.Errorf("Open(%q) did not create %s: %v", dsn, path, err)
			}
		}
	})

	t.Run("SQLiteFileMode", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "cliq.db")
		db := storetest.OpenPath(t, path)
		mustPutInstance(t, db, store.Instance{ID: "cliq-mode01", ProjectDir: "/p"})
		for _, name := range []string{path, path + "-wal"} {
			info, err := os.Stat(name)
			if err != nil {
				t.Fatalf("stat: %v", err)
			}
			if mode := info.Mode().Perm(); mode != 0o600 {
				t.Errorf("%s has mode %o, want 600", filepath.Base(name), mode)
			}
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		for _, dsn := range []string{"", "   ", "mysql://root@127.0.0.1/test", filepath.Join(t.TempDir(), "a?b.db")} {
			_, err := store.Open(testContext(t), dsn)
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Open(%q) error = %v, want ErrInvalid", dsn, err)
			}
		}
	})

	t.Run("UnsupportedSchemeHidesPassword", func(t *testing.T) {
		_, err := store.Open(testContext(t), "mysql://root:hunter2secret@127.0.0.1/test")
		if err == nil {
			t.Fatal("Open succeeded, want an error")
		}
		if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("error leaks the password: %v", err)
		}
	})
}

func TestOpen_PostgresUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*store.PingTimeout)
	defer cancel()

	_, err := store.Open(ctx, "postgres://root:hunter2secret@127.0.0.1:1/test?sslmode=disable")
	if err == nil {
		t.Fatal("Open succeeded, want a connection error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("error does not name the host: %v", err)
	}
	if strings.Contains(msg, "hunter2secret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Open did not return before the test deadline")
	}
}

func TestOpen_PostgresPasswordInQuery(t *testing.T) {
	ctx := testContext(t)
	_, err := store.Open(ctx, "postgresql://root@127.0.0.1:1/test?sslmode=disable&password=hunter2secret")
	if err == nil {
		t.Fatal("Open succeeded, want a connection error")
	}
	if strings.Contains(err.Error(), "hunter2secret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"/home/u/.cliqrc/cliq.db", "/home/u/.cliqrc/cliq.db"},
		{"postgres://root@127.0.0.1:5432/test", "postgres://root@127.0.0.1:5432/test"},
		{"postgres://root:pw@db:5432/test?sslmode=disable", "postgres://root:xxxxx@db:5432/test?sslmode=disable"},
		{"postgresql://db/test?password=pw&sslmode=disable", "postgresql://db/test?password=xxxxx&sslmode=disable"},
		{"postgres://root:p%zz@db/test", "postgres://xxxxx@db/test"},
	}
	for _, tt := range tests {
		if got := store.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDB_Migrate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)
		for i := 0; i < 2; i++ {
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("Migrate #%d: %v", i+2, err)
			}
		}
		names, err := db.Migrations(ctx)
		if err != nil {
			t.Fatalf("Migrations: %v", err)
		}
		if len(names) == 0 || names[0] != "0001_init.sql" {
			t.Errorf("Migrations() = %v, want 0001_init.sql first", names)
		}
		seen := map[string]bool{}
		for _, name := range names {
			if seen[name] {
				t.Errorf("migration %s recorded twice", name)
			}
			seen[name] = true
		}
	})

	t.Run("SQLiteReopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "cliq.db")
		first := storetest.OpenPath(t, path)
		mustPutInstance(t, first, store.Instance{ID: "cliq-aaaaaa", Name: "a", ProjectDir: "/p/a"})
		first.Close()

		second := storetest.OpenPath(t, path)
		if _, err := second.Instance(testContext(t), "cliq-aaaaaa"); err != nil {
			t.Errorf("Instance after reopen: %v", err)
		}
	})

	t.Run("PostgresConcurrent", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		errs := make(chan error, 4)
		for i := 0; i < cap(errs); i++ {
			go func() {
				db, err := store.Open(testContext(t), dsn)
				if err == nil {
					db.Close()
				}
				errs <- err
			}()
		}
		for i := 0; i < cap(errs); i++ {
			if err := <-errs; err != nil {
				t.Errorf("concurrent Open: %v", err)
			}
		}
	})
}

func TestDB_Ping(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if err := db.Ping(testContext(t)); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})

	t.Run("SQLiteFileDeleted", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "cliq.db")
		db := storetest.OpenPath(t, path)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := db.Ping(testContext(t)); err == nil {
			t.Error("Ping succeeded after the database file was deleted")
		}
	})

	t.Run("Closed", func(t *testing.T) {
		db := storetest.Open(t)
		db.Close()
		if err := db.Ping(testContext(t)); err == nil {
			t.Error("Ping succeeded on a closed store")
		}
	})
}

func mustPutInstance(tb testing.TB, db *store.DB, inst store.Instance) {
	tb.Helper()
	if err := db.PutInstance(context.Background(), inst); err != nil {
		tb.Fatalf("PutInstance(%s): %v", inst.ID, err)
	}
}

// at returns a fixed UTC time plus offset seconds.
func at(offset int) time.Time {
	return time.Date(2026, 12, 4, 15, 4, 5, 123456000, time.UTC).Add(time.Duration(offset) * time.Second)
}
