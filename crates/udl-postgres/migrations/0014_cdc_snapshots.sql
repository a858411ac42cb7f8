-- Snapshots (batch sync): requests to copy a table's existing rows through the change relay,
-- and how far each has come. The relay leading `slot` takes the oldest unfinished one, reads
-- it in primary-key chunks between watermarks, and records a chunk here only once its events
-- are durable in every sink, so a snapshot resumes from `last_key` after a crash.
CREATE TABLE udl_cdc_snapshots (
    id           BIGSERIAL PRIMARY KEY,
    slot         TEXT NOT NULL,
    entity       TEXT NOT NULL,
    -- [{field, op, value}] on fields that leave the store as they are; never a sensitive one.
    conditions   JSONB NOT NULL DEFAULT '[]',
    chunk_rows   INTEGER NOT NULL CHECK (chunk_rows BETWEEN 1 AND 50000),
    state        TEXT NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'done', 'failed')),
    reason       TEXT,
    -- Rows the conditions selected when it was requested (for progress).
    total_rows   BIGINT NOT NULL,
    last_key     JSONB,
    rows_read    BIGINT NOT NULL DEFAULT 0,
    rows_sent    BIGINT NOT NULL DEFAULT 0,
    chunks       BIGINT NOT NULL DEFAULT 0,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ
);
CREATE INDEX udl_cdc_snapshots_unfinished ON udl_cdc_snapshots (slot, id)
    WHERE state IN ('pending', 'running');
