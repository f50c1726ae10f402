package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// createMigrationsTable records which migration files have been applied.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	name       TEXT PRIMARY KEY,
	applied_at TIMESTAMPTZ NOT NULL
)`

// Migrate applies, in file name order, every embedded migration that
// schema_migrations does not list yet. Each file runs in its own
// transaction together with its schema_migrations row, so a failing file
// leaves no trace. Running Migrate again, or from several processes at once,
// applies nothing twice.
func (db *DB) Migrate(ctx context.Context) error {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.migrateFile(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// migrateFile applies one migration unless it is already recorded.
func (db *DB) migrateFile(ctx context.Context, name string) error {
	body, err := migrationFS.ReadFile(name)
	if err != nil {
		return fmt.Errorf("read migration %s: %w", name, err)
	}
	name = path.Base(name)

	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: begin: %w", name, db.dialect.scrub(err))
	}
	defer tx.Rollback()

	if err := db.dialect.lockMigrations(ctx, tx); err != nil {
		return fmt.Errorf("migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("migration %s: create schema_migrations: %w", name, db.dialect.scrub(err))
	}

	applied, err := migrationApplied(ctx, tx, name)
	if err != nil {
		return fmt.Errorf("migration %s: %w", name, db.dialect.scrub(err))
	}
	if applied {
		return nil
	}

	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("migration %s: %w", name, db.dialect.scrub(err))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`,
		name, db.dialect.timeValue(time.Now())); err != nil {
		return fmt.Errorf("migration %s: record: %w", name, db.dialect.scrub(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", name, db.dialect.scrub(err))
	}
	db.logger.Info("applied migration", "migration", name, "dialect", db.dialect.name)
	return nil
}

func migrationApplied(ctx context.Context, tx *sql.Tx, name string) (bool, error) {
	var found string
	err := tx.QueryRowContext(ctx, `SELECT name FROM schema_migrations WHERE name = $1`, name).Scan(&found)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read schema_migrations: %w", err)
	}
	return true, nil
}

// Migrations returns the names of the applied migrations in order.
func (db *DB) Migrations(ctx context.Context) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT name FROM schema_migrations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", db.dialect.scrub(err))
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list migrations: %w", err)
		}
		names = append(names, name)
	}
	return names, rows.Err()
}
