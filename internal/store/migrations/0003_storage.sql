-- Storage: buckets of tables (rows kept here, one JSON array per row) and files (data on disk).
CREATE TABLE IF NOT EXISTS storage_buckets (
	id         TEXT PRIMARY KEY,
	created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS storage_tables (
	id             TEXT PRIMARY KEY,
	bucket         TEXT NOT NULL REFERENCES storage_buckets (id),
	name           TEXT NOT NULL,
	columns        TEXT NOT NULL,
	primary_key    TEXT NOT NULL DEFAULT '[]',
	rows_count     INTEGER NOT NULL DEFAULT 0,
	created_at     TEXT NOT NULL,
	last_change_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS storage_rows (
	table_id   TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	pk         TEXT,
	data       TEXT NOT NULL,
	changed_at TEXT NOT NULL,
	PRIMARY KEY (table_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS storage_rows_pk ON storage_rows (table_id, pk);
CREATE TABLE IF NOT EXISTS storage_files (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT NOT NULL,
	size       INTEGER NOT NULL,
	tags       TEXT NOT NULL DEFAULT '[]',
	sha256     TEXT NOT NULL,
	created_at TEXT NOT NULL
);
-- Components (images speaking the common interface) and their configurations.
CREATE TABLE IF NOT EXISTS components (
	id         TEXT PRIMARY KEY,
	body       TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS configs (
	id            TEXT PRIMARY KEY,
	component_id  TEXT NOT NULL REFERENCES components (id),
	version       INTEGER NOT NULL,
	body          TEXT NOT NULL,
	state         TEXT NOT NULL DEFAULT '{}',
	state_version INTEGER NOT NULL DEFAULT 0,
	updated_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS config_versions (
	config_id  TEXT NOT NULL,
	version    INTEGER NOT NULL,
	body       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	PRIMARY KEY (config_id, version)
);
-- Jobs of other kinds than blocks carry what they run as JSON.
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'block';
ALTER TABLE jobs ADD COLUMN payload TEXT NOT NULL DEFAULT '{}';
