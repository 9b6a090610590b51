-- Table rows move to the table engine (DuckDB, one database per project under the storage
-- dir). data_bytes is a table's counted size (what quotas add up), recorded by each load;
-- -1 marks a table whose rows are still in storage_rows (the old format): storage moves them
-- at start-up, once, and empties storage_rows (kept only for that move).
ALTER TABLE storage_tables ADD COLUMN data_bytes INTEGER NOT NULL DEFAULT -1;
