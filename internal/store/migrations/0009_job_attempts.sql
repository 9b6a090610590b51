-- A job's attempts: each run of a job that its retry policy ran again, with its reason and
-- times, as a JSON array.
ALTER TABLE jobs ADD COLUMN attempts TEXT NOT NULL DEFAULT '[]';
