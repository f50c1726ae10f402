package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Instance is a registered project: the id from its .cliq/cliq.id, a display
// name and the absolute project directory.
type Instance struct {
	ID         string
	Name       string
	ProjectDir string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

const instanceColumns = `id, name, project_dir, created_at, updated_at`

// PutInstance inserts inst, or updates the name, project directory and
// updated_at of the instance with the same id while keeping its created_at.
// Zero CreatedAt and UpdatedAt mean now. It returns ErrInvalid for an empty
// id or project directory.
func (db *DB) PutInstance(ctx context.Context, inst Instance) error {
	if inst.ID == "" {
		return fmt.Errorf("put instance: %w: empty id", ErrInvalid)
	}
	if inst.ProjectDir == "" {
		return fmt.Errorf("put instance %s: %w: empty project directory", inst.ID, ErrInvalid)
	}
	now := time.Now()
	if inst.CreatedAt.IsZero() {
		inst.CreatedAt = now
	}
	if inst.UpdatedAt.IsZero() {
		inst.UpdatedAt = now
	}

	d := db.dialect
	_, err := db.db.ExecContext(ctx, `
		INSERT INTO instances (`+instanceColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET
			name = excluded.name,
			project_dir = excluded.project_dir,
			updated_at = excluded.updated_at`,
		inst.ID, inst.Name, inst.ProjectDir, d.timeValue(inst.CreatedAt), d.timeValue(inst.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put instance %s: %w", inst.ID, d.scrub(err))
	}
	return nil
}

// Instance returns the instance with the given id, or ErrNotFound.
func (db *DB) Instance(ctx context.Context, id string) (Instance, error) {
	row := db.db.QueryRowContext(ctx, `SELECT `+instanceColumns+` FROM instances WHERE id = $1`, id)
	inst, err := scanInstance(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Instance{}, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Instance{}, fmt.Errorf("get instance %s: %w", id, db.dialect.scrub(err))
	}
	return inst, nil
}

// Instances returns every instance, oldest first (ties by id).
func (db *DB) Instances(ctx context.Context) ([]Instance, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+instanceColumns+` FROM instances ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", db.dialect.scrub(err))
	}
	defer rows.Close()

	instances := []Instance{}
	for rows.Next() {
		inst, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		instances = append(instances, inst)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list instances: %w", db.dialect.scrub(err))
	}
	return instances, nil
}

// RemoveInstance deletes the instance and, through the foreign key, its run
// history. It returns ErrNotFound when no instance has the id.
func (db *DB) RemoveInstance(ctx context.Context, id string) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM instances WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("remove instance %s: %w", id, db.dialect.scrub(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("remove instance %s: %w", id, db.dialect.scrub(err))
	}
	if n == 0 {
		return fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	return nil
}

// rowScanner is the Scan method shared by *sql.Row and *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

func scanInstance(row rowScanner) (Instance, error) {
	var inst Instance
	var created, updated nullTime
	if err := row.Scan(&inst.ID, &inst.Name, &inst.ProjectDir, &created, &updated); err != nil {
		return Instance{}, err
	}
	inst.CreatedAt, inst.UpdatedAt = created.Time, updated.Time
	return inst, nil
}
