-- Metadata of a table (column_name '') and of its columns, as components write it in their
-- manifests (metadata, column_metadata, table_metadata, description, schema[].metadata).
CREATE TABLE IF NOT EXISTS storage_metadata (
	table_id    TEXT NOT NULL,
	column_name TEXT NOT NULL DEFAULT '',
	key         TEXT NOT NULL,
	value       TEXT NOT NULL,
	provider    TEXT NOT NULL DEFAULT '',
	updated_at  TEXT NOT NULL,
	PRIMARY KEY (table_id, column_name, key)
);
