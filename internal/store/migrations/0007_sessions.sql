-- Browser sessions and one-time sign-in codes. Like tokens, only the SHA-256 of a session's
-- cookie value or of a code is stored. Each belongs to the token it was made from: its rights
-- are that token's, and revoking the token ends them.
CREATE TABLE IF NOT EXISTS sessions (
	id           TEXT PRIMARY KEY,
	hash         TEXT NOT NULL UNIQUE,
	token_id     TEXT NOT NULL REFERENCES tokens(id),
	created_at   TEXT NOT NULL,
	expires_at   TEXT NOT NULL,
	last_used_at TEXT
);
CREATE INDEX IF NOT EXISTS sessions_token ON sessions (token_id);
CREATE TABLE IF NOT EXISTS signin_codes (
	hash       TEXT PRIMARY KEY,
	token_id   TEXT NOT NULL REFERENCES tokens(id),
	next       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	used_at    TEXT
);
