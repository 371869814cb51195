-- The registry's first tables. One file serves SQLite and PostgreSQL:
-- only types both read alike (TEXT, BIGINT), times as Unix microseconds (so events of one millisecond still order),
-- flags as 0/1, so the queries above them are written once.
--
-- Tables still to come, designed beside these: certificates (keyed by
-- account and livemode like api_keys), outbox events (appended in the
-- transaction of the change that caused them), idempotency records
-- (account, key, request hash, stored response) and batches.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    plan TEXT NOT NULL,
    rate_limit_per_minute BIGINT NOT NULL,
    batch_size BIGINT NOT NULL,
    public_base_url TEXT,
    email_by_default BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode BIGINT NOT NULL,
    -- SHA-256 of the secret, hex; the secret itself is never stored.
    secret_hash TEXT NOT NULL UNIQUE,
    -- The first characters of the secret, to tell keys apart in lists.
    redacted TEXT NOT NULL,
    -- Space-separated scope names.
    scopes TEXT NOT NULL,
    description TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

-- Lists are newest first, paged by (created_at, id): no offset scans.
CREATE INDEX api_keys_by_account ON api_keys (account_id, livemode, created_at, id);

-- Append-only: no statement of the registry updates or deletes a row.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    -- NULL for a failed authentication whose key names no account.
    account_id TEXT,
    livemode BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    target TEXT,
    request_id TEXT,
    ip TEXT,
    status BIGINT,
    -- JSON object of field -> [before, after], or NULL.
    changes TEXT
);

CREATE INDEX audit_events_by_account ON audit_events (account_id, livemode, at, id);

-- Fixed one-minute windows per key, counted in the database so that a
-- limit holds across server processes sharing it.
CREATE TABLE rate_windows (
    bucket TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
