package store

import (
	"context"
	"fmt"
	"time"
)

// Run is one pipeline run in an instance's history. FinishedAt is nil while
// the run is active.
type Run struct {
	RunID      string
	InstanceID string
	Team       string
	Status     string
	Reason     string
	StartedAt  time.Time
	FinishedAt *time.Time
}

const runColumns = `run_id, instance_id, team, status, reason, started_at, finished_at`

// PutRun inserts r, or replaces the team, status, reason and times of the run
// with the same run id. A zero StartedAt means now. It returns ErrNotFound
// when the instance is not registered and ErrInvalid for empty ids.
func (db *DB) PutRun(ctx context.Context, r Run) error {
	if r.RunID == "" || r.InstanceID == "" {
		return fmt.Errorf("put run: %w: run id and instance id are required (got %q, %q)",
			ErrInvalid, r.RunID, r.InstanceID)
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = time.Now()
	}

	d := db.dialect
	_, err := db.db.ExecContext(ctx, `
		INSERT INTO runs (`+runColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (run_id) DO UPDATE SET
			team = excluded.team,
			status = excluded.status,
			reason = excluded.reason,
			started_at = excluded.started_at,
			finished_at = excluded.finished_at`,
		r.RunID, r.InstanceID, r.Team, r.Status, r.Reason, d.timeValue(r.StartedAt), d.nullTimeValue(r.FinishedAt))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("put run %s: instance %s: %w", r.RunID, r.InstanceID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("put run %s: %w", r.RunID, d.scrub(err))
	}
	return nil
}

// Runs returns the runs of one instance, newest first, at most limit of them
// (limit <= 0 means all). An empty instanceID returns the runs of every
// instance.
func (db *DB) Runs(ctx context.Context, instanceID string, limit int) ([]Run, error) {
	query := `SELECT ` + runColumns + ` FROM runs
		WHERE ($1 = '' OR instance_id = $1)
		ORDER BY started_at DESC, run_id DESC`
	args := []any{instanceID}
	if limit > 0 {
		query += ` LIMIT $2`
		args = append(args, limit)
	}

	rows, err := db.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", db.dialect.scrub(err))
	}
	defer rows.Close()

	runs := []Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", db.dialect.scrub(err))
	}
	return runs, nil
}

func scanRun(row rowScanner) (Run, error) {
	var r Run
	var started, finished nullTime
	if err := row.Scan(&r.RunID, &r.InstanceID, &r.Team, &r.Status, &r.Reason, &started, &finished); err != nil {
		return Run{}, err
	}
	r.StartedAt, r.FinishedAt = started.Time, finished.ptr()
	return r, nil
}
