-- Projects own every resource. The default project keeps single-team use as it was: every
-- existing row moves into it, and existing components become shared (project '').
CREATE TABLE IF NOT EXISTS projects (
	id                  TEXT PRIMARY KEY,
	created_at          TEXT NOT NULL,
	max_concurrent_jobs INTEGER NOT NULL DEFAULT 0, -- 0: no limit
	max_storage_bytes   INTEGER NOT NULL DEFAULT 0  -- 0: no limit
);
INSERT OR IGNORE INTO projects (id, created_at) VALUES ('default', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

ALTER TABLE tokens ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
UPDATE tokens SET role = 'member' WHERE role = 'user';

ALTER TABLE jobs ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
CREATE INDEX IF NOT EXISTS jobs_project_created ON jobs (project, created_at);
ALTER TABLE components ADD COLUMN project TEXT NOT NULL DEFAULT '';
ALTER TABLE configs ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE storage_buckets ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE storage_files ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE services ADD COLUMN project TEXT NOT NULL DEFAULT 'default';

-- Entities are keyed by project and package: #{pkg:name} resolves only in the service's own
-- project.
CREATE TABLE entities_new (
	project TEXT NOT NULL DEFAULT 'default',
	package TEXT NOT NULL,
	name    TEXT NOT NULL,
	value   TEXT NOT NULL,
	PRIMARY KEY (project, package, name)
);
INSERT INTO entities_new (project, package, name, value) SELECT 'default', package, name, value FROM entities;
DROP TABLE entities;
ALTER TABLE entities_new RENAME TO entities;

-- A bucket shared with another project is readable there, never writable (Keboola's sharing).
CREATE TABLE IF NOT EXISTS storage_bucket_shares (
	bucket     TEXT NOT NULL REFERENCES storage_buckets (id) ON DELETE CASCADE,
	project    TEXT NOT NULL REFERENCES projects (id),
	created_at TEXT NOT NULL,
	PRIMARY KEY (bucket, project)
);

-- The audit log is append-only: nothing but retention deletes from it.
CREATE TABLE IF NOT EXISTS audit (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	at         TEXT NOT NULL,
	actor_id   TEXT NOT NULL DEFAULT '',
	actor_name TEXT NOT NULL DEFAULT '',
	project    TEXT NOT NULL DEFAULT '',
	action     TEXT NOT NULL,
	resource   TEXT NOT NULL DEFAULT '',
	remote     TEXT NOT NULL DEFAULT '',
	outcome    TEXT NOT NULL,
	status     INTEGER NOT NULL DEFAULT 0,
	detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE INDEX IF NOT EXISTS audit_project_at ON audit (project, at);
