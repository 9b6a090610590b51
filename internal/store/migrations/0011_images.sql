-- Image records: every image berth builds or uses, by reference (tag), with when it was last
-- used (each ensure, cache hit and container start). The engine is the truth for what exists,
-- its ID, size and labels; the columns below are what berth last saw of them. The collector
-- evicts the least recently used removable images first.
CREATE TABLE IF NOT EXISTS images (
	ref          TEXT PRIMARY KEY,
	image_id     TEXT NOT NULL DEFAULT '',
	kind         TEXT NOT NULL DEFAULT '',
	size         INTEGER NOT NULL DEFAULT 0,
	labels       TEXT NOT NULL DEFAULT '{}',
	created_at   TEXT NOT NULL DEFAULT '',
	last_used_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_last_used ON images (last_used_at);
