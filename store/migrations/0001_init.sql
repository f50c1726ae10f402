-- Instance registry, API tokens and run history.
-- Shared by SQLite and PostgreSQL: types are TEXT and TIMESTAMPTZ only.
-- SQLite stores TIMESTAMPTZ values as fixed-width UTC text.

CREATE TABLE instances (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	project_dir TEXT NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX instances_created_at_idx ON instances (created_at, id);

CREATE TABLE tokens (
	id           TEXT PRIMARY KEY,
	label        TEXT NOT NULL,
	hash         TEXT NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	last_used_at TIMESTAMPTZ,
	revoked_at   TIMESTAMPTZ
);

CREATE UNIQUE INDEX tokens_hash_idx ON tokens (hash);

CREATE TABLE runs (
	run_id      TEXT PRIMARY KEY,
	instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
	team        TEXT NOT NULL,
	status      TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	started_at  TIMESTAMPTZ NOT NULL,
	finished_at TIMESTAMPTZ
);

CREATE INDEX runs_instance_started_idx ON runs (instance_id, started_at);
