-- The server processes sharing the registry, each writing `seen_at`
-- every few seconds while it runs. Work a process claimed and never
-- finished (an idempotency key left in progress by a `kill -9`) is taken
-- over as soon as its process is seen to be gone, instead of after the
-- claim's long timeout. Same rules as 0001: TEXT and BIGINT only, times
-- in Unix microseconds.

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);

-- The process that holds a claim; NULL for claims older than this table.
ALTER TABLE idempotency_keys ADD COLUMN instance TEXT;
