-- Batches: many certificates issued (or revoked) from one request, in the
-- background. Same rules as 0001: TEXT and BIGINT only, times in Unix
-- microseconds, flags as 0/1.
--
-- The queue is these tables, in the registry's own database: no broker.
-- A row is issued exactly once because its item is marked done, with
-- `status = 'pending'` in the UPDATE's condition, in the transaction that
-- writes its certificate: a second worker's UPDATE finds it done and
-- writes nothing, and a crash keeps both or neither.

CREATE TABLE batches (
    -- `batch_` and 128 random bits.
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode BIGINT NOT NULL,
    -- issue | revoke
    kind TEXT NOT NULL,
    -- issue: the template every row is issued with.
    template_id TEXT,
    -- issue: whether the certificates are e-mailed.
    send_email BIGINT NOT NULL,
    -- revoke: the reason every revocation records.
    reason TEXT,
    -- Who asked (key id, request id, address): each row's audit entry
    -- names them. JSON.
    actor TEXT NOT NULL,
    total BIGINT NOT NULL,
    -- Counts of rows done, kept with the rows in the same transactions,
    -- so reading a batch counts nothing.
    completed BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    -- processing | completed
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);

-- Workers look for batches still processing, oldest first.
CREATE INDEX batches_processing ON batches (status, created_at);
CREATE INDEX batches_by_account ON batches (account_id, livemode, created_at, id);

CREATE TABLE batch_items (
    batch_id TEXT NOT NULL REFERENCES batches (id),
    -- 1-based: the recipient's place in the JSON array, or the CSV data
    -- row's (the header not counted).
    row_number BIGINT NOT NULL,
    -- JSON: the row as given (recipient, fields, metadata; or the id to
    -- revoke).
    input TEXT NOT NULL,
    -- pending | completed | failed
    status TEXT NOT NULL,
    certificate_id TEXT,
    -- JSON {code, param, message} of a failed row.
    error TEXT,
    -- The process working on the row (`instances.id`) and since when: a
    -- row claimed by a process seen to be gone is claimed again.
    claimed_by TEXT,
    claimed_at BIGINT,
    done_at BIGINT,
    PRIMARY KEY (batch_id, row_number)
);

CREATE INDEX batch_items_by_status ON batch_items (batch_id, status, row_number);
