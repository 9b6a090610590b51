-- A stored file's attributes, as a component's file manifest gives them (is_permanent,
-- is_public, notify). A file that is not permanent expires (expires_at), as on Keboola, where
-- such files are kept 15 days; uploads by people are permanent.
ALTER TABLE storage_files ADD COLUMN is_permanent INTEGER NOT NULL DEFAULT 1;
ALTER TABLE storage_files ADD COLUMN is_public INTEGER NOT NULL DEFAULT 0;
ALTER TABLE storage_files ADD COLUMN notify INTEGER NOT NULL DEFAULT 0;
ALTER TABLE storage_files ADD COLUMN expires_at TEXT;
CREATE INDEX IF NOT EXISTS storage_files_expires ON storage_files (expires_at) WHERE expires_at IS NOT NULL;
