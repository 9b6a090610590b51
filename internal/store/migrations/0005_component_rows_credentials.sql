-- Configuration rows keep their own state; a configuration's stored credentials are sealed
-- (AES-GCM with the data dir's key) and never read back by the API.
CREATE TABLE IF NOT EXISTS config_row_states (
	config_id     TEXT NOT NULL,
	row_id        TEXT NOT NULL,
	state         TEXT NOT NULL DEFAULT '{}',
	state_version INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (config_id, row_id)
);
CREATE TABLE IF NOT EXISTS config_credentials (
	config_id  TEXT PRIMARY KEY,
	sealed     BLOB NOT NULL,
	updated_at TEXT NOT NULL
);
