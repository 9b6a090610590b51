-- Marks the schema as berth's. Real tables come in later migrations, one area a file.
CREATE TABLE IF NOT EXISTS berth_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
