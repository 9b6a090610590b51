-- Services: long-running containers behind the proxy, their state machines and history.
CREATE TABLE IF NOT EXISTS services (
	name                 TEXT PRIMARY KEY,
	package              TEXT NOT NULL,
	port                 INTEGER NOT NULL,
	health_path          TEXT NOT NULL DEFAULT '',
	container_json       TEXT NOT NULL,
	image_ref            TEXT NOT NULL DEFAULT '',
	image_state          TEXT NOT NULL,
	image_reason         TEXT NOT NULL DEFAULT '',
	image_changed_at     TEXT NOT NULL,
	container_state      TEXT NOT NULL,
	container_id         TEXT NOT NULL DEFAULT '',
	container_reason     TEXT NOT NULL DEFAULT '',
	container_changed_at TEXT NOT NULL,
	created_at           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS service_events (
	name   TEXT NOT NULL,
	kind   TEXT NOT NULL,
	state  TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS service_events_name ON service_events (name, at);
-- Entities a package owns (connections, secrets), for #{x.Package:Entity} in a service's env.
CREATE TABLE IF NOT EXISTS entities (
	package TEXT NOT NULL,
	name    TEXT NOT NULL,
	value   TEXT NOT NULL,
	PRIMARY KEY (package, name)
);
