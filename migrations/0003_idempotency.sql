-- Idempotency keys: the first answer to a `POST` that carried an
-- `Idempotency-Key`, kept 24 hours per account, environment and key so a
-- retry is answered the same instead of being done twice. Same rules as
-- 0001: TEXT and BIGINT only, times in Unix microseconds, flags as 0/1.
--
-- A row is claimed (`in_progress`) before the request's work starts and
-- finished (`done`, with the answer) by the work's own transaction, so a
-- certificate and the answer that reports it commit together or not at
-- all.

CREATE TABLE idempotency_keys (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode BIGINT NOT NULL,
    -- The client's key: 1 to 255 printable ASCII characters.
    idempotency_key TEXT NOT NULL,
    -- Hex SHA-256 of the request's method, path and body: the same key
    -- with another request is refused, never answered with this one.
    fingerprint TEXT NOT NULL,
    -- in_progress | done
    state TEXT NOT NULL,
    -- Random, per claim: only the request holding the claim can finish
    -- it, so a request that lost an abandoned claim to a retry cannot
    -- commit its work too.
    claim TEXT NOT NULL,
    -- When the current claim was taken (an old one counts as abandoned).
    claimed_at BIGINT NOT NULL,
    -- The answer, once done: HTTP status and JSON body.
    status BIGINT,
    body TEXT,
    -- When the key was first used: it is kept 24 hours from then.
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, livemode, idempotency_key)
);

-- Rows past their 24 hours are purged by age.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
