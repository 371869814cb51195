-- Webhooks: endpoints, one delivery per event and endpoint, and the log of
-- every attempt. Same rules as 0001: TEXT and BIGINT only, times in Unix
-- microseconds, flags as 0/1.
--
-- The worker fans each undelivered `events` row out to the matching
-- enabled endpoints (inserting their deliveries and setting
-- `events.delivered_at` in one transaction), then claims due deliveries
-- with a lease, sends them, and writes each attempt's outcome. A crash at
-- any point leaves either the event undelivered (fanned out again) or the
-- delivery pending (claimed again once its lease ends or its process is
-- gone), never lost.

CREATE TABLE webhook_endpoints (
    -- `we_` and 128 random bits.
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode BIGINT NOT NULL,
    url TEXT NOT NULL,
    -- Space-separated event names, or `*` for all.
    events TEXT NOT NULL,
    description TEXT,
    -- `whsec_` and base64 of 32 random bytes. Stored as it is, unlike an
    -- API key's: every delivery is signed with it (HMAC needs the key
    -- itself). It is shown once, at creation, and never logged.
    secret TEXT NOT NULL,
    disabled BIGINT NOT NULL,
    -- `manual` (PATCH disabled: true) or `failing` (no success for the
    -- configured time); NULL while enabled.
    disabled_reason TEXT,
    disabled_at BIGINT,
    -- When the current run of failed attempts began; NULL after a success.
    failing_since BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX webhook_endpoints_by_account ON webhook_endpoints (account_id, livemode, created_at, id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    -- pending | succeeded | failed (every attempt of the schedule failed)
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    -- The process sending it (`instances.id`) and until when its claim
    -- holds; a claim past its time, or of a gone process, is taken over.
    claimed_by TEXT,
    claimed_until BIGINT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);

-- The worker's question: which pending deliveries are due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, state);

-- Every attempt, for `GET /v1/webhook_endpoints/{id}/deliveries`.
CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    livemode BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- 1 for the first attempt of the delivery.
    attempt BIGINT NOT NULL,
    -- succeeded | failed
    outcome TEXT NOT NULL,
    -- The receiver's status code; NULL when none came (timeout, refused).
    response_status BIGINT,
    -- Why it failed, in words (never the secret); NULL on success.
    error TEXT,
    -- The first bytes of the receiver's answer (at most 1 KiB).
    response_excerpt TEXT,
    duration_us BIGINT NOT NULL,
    at BIGINT NOT NULL
);

CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint_id, at, id);
