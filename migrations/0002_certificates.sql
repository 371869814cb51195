-- Certificates and the outbox of their events. Same rules as 0001: TEXT
-- and BIGINT only, times in Unix microseconds, flags as 0/1.
--
-- Every change of a certificate is one transaction writing its row, an
-- audit row and an `events` row, so a crash keeps all three or none and
-- the webhook sender (next) can deliver from `events` at least once.

CREATE TABLE certificates (
    -- `cert_` and 128 random bits: verification URLs are not enumerable.
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode BIGINT NOT NULL,
    -- issued | suspended | revoked; `expired` is computed, never stored.
    status TEXT NOT NULL,
    template_id TEXT NOT NULL,
    -- The template's version (hex SHA-256) when issued or last corrected:
    -- what the transparency log's commitment will bind the record to.
    template_hash TEXT NOT NULL,
    -- 32 random bytes, hex, per certificate, for future commitments that
    -- must not let anyone test guesses of the recipient's data.
    salt TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    recipient_email TEXT,
    -- JSON objects of strings.
    fields TEXT NOT NULL,
    metadata TEXT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    revocation_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Lists are newest first, paged by (created_at, id): no offset scans.
CREATE INDEX certificates_by_account ON certificates (account_id, livemode, created_at, id);
-- The list filters that narrow most, each still in list order.
CREATE INDEX certificates_by_email ON certificates (account_id, livemode, recipient_email, created_at, id);
CREATE INDEX certificates_by_template ON certificates (account_id, livemode, template_id, created_at, id);

-- The outbox: appended in the transaction of the change it reports;
-- `delivered_at` is set once every endpoint had it (webhooks, next).
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    livemode BIGINT NOT NULL,
    -- certificate.issued, certificate.updated, certificate.revoked, …
    type TEXT NOT NULL,
    certificate_id TEXT,
    -- JSON: the certificate object as of the change.
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);

CREATE INDEX events_undelivered ON events (delivered_at, created_at, id);
CREATE INDEX events_by_certificate ON events (certificate_id, created_at);
