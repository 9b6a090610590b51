-- Jobs: one row per run of a block. block and files are JSON; times are RFC 3339 UTC text.
CREATE TABLE IF NOT EXISTS jobs (
	id              TEXT PRIMARY KEY,
	name            TEXT NOT NULL,
	owner           TEXT NOT NULL DEFAULT '',
	state           TEXT NOT NULL,
	reason          TEXT NOT NULL DEFAULT '',
	message         TEXT NOT NULL DEFAULT '',
	block           TEXT NOT NULL,
	files           TEXT NOT NULL DEFAULT '{}',
	base_dir        TEXT NOT NULL DEFAULT '',
	spec_hash       TEXT NOT NULL DEFAULT '',
	image           TEXT NOT NULL DEFAULT '',
	image_cache_hit INTEGER NOT NULL DEFAULT 0,
	exit_code       INTEGER,
	container_id    TEXT NOT NULL DEFAULT '',
	timings         TEXT NOT NULL DEFAULT '[]',
	created_at      TEXT NOT NULL,
	started_at      TEXT,
	finished_at     TEXT,
	output_dir      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
