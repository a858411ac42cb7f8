-- Retention: the change history becomes partitioned by month (so whole months can be detached
-- and dropped, as the access log's already are) and records whose data it is; deletion receipts,
-- legal holds, the anchors that keep the access log's chain verifiable once its oldest months
-- are gone, and the history of scheduled and manual job runs.

ALTER TABLE phi_change_history RENAME TO phi_change_history_unpartitioned;
ALTER INDEX phi_change_history_record_idx RENAME TO phi_change_history_unpartitioned_record_idx;
ALTER INDEX phi_change_history_pkey RENAME TO phi_change_history_unpartitioned_pkey;

CREATE TABLE phi_change_history (
    id          UUID NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    store       TEXT NOT NULL,
    entity      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    field       TEXT NOT NULL,
    operation   TEXT NOT NULL CHECK (operation IN ('insert', 'update', 'delete')),
    before      BYTEA,
    after       BYTEA,
    -- Whose data changed, when the change named the patient (legal holds on a subject).
    patient_id  TEXT,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- The month holding `day`, as a partition named phi_change_history_yYYYYmMM, made once.
CREATE FUNCTION udl_change_history_partition(day DATE) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first_day DATE := date_trunc('month', day)::date;
    name TEXT := format('phi_change_history_y%sm%s', to_char(first_day, 'YYYY'), to_char(first_day, 'MM'));
BEGIN
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF phi_change_history FOR VALUES FROM (%L) TO (%L)',
                   name, first_day, (first_day + INTERVAL '1 month')::date);
    EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON %I
                    FOR EACH STATEMENT EXECUTE FUNCTION udl_refuse_change()', name);
END $$;

SELECT udl_change_history_partition(m::date)
FROM (SELECT DISTINCT date_trunc('month', occurred_at) AS m FROM phi_change_history_unpartitioned
      UNION SELECT date_trunc('month', now()) UNION SELECT date_trunc('month', now() + INTERVAL '1 month')) months;

INSERT INTO phi_change_history (id, occurred_at, actor_id, actor_role, purpose, request_id, store,
                                entity, record_id, field, operation, before, after)
SELECT id, occurred_at, actor_id, actor_role, purpose, request_id, store, entity, record_id, field,
       operation, before, after
FROM phi_change_history_unpartitioned;
DROP TABLE phi_change_history_unpartitioned;

CREATE INDEX phi_change_history_record_idx ON phi_change_history (entity, record_id, occurred_at);
CREATE INDEX phi_change_history_patient_idx ON phi_change_history (patient_id) WHERE patient_id IS NOT NULL;
CREATE TRIGGER phi_change_history_no_update BEFORE UPDATE OR DELETE ON phi_change_history
    FOR EACH ROW EXECUTE FUNCTION udl_refuse_change();
CREATE TRIGGER phi_change_history_no_truncate BEFORE TRUNCATE ON phi_change_history
    FOR EACH STATEMENT EXECUTE FUNCTION udl_refuse_change();

-- What each purge deleted (or held back): class, store, range, how many, under which policy,
-- by which job, when. Append-only: a receipt is evidence.
CREATE TABLE deletion_receipts (
    id          UUID PRIMARY KEY,
    recorded_at TIMESTAMPTZ NOT NULL,
    job         TEXT NOT NULL,
    data_class  TEXT NOT NULL,
    store       TEXT NOT NULL,
    policy      TEXT NOT NULL,
    range_from  TIMESTAMPTZ,
    range_to    TIMESTAMPTZ,
    deleted     BIGINT NOT NULL CHECK (deleted >= 0),
    held_back   BIGINT NOT NULL CHECK (held_back >= 0),
    -- Ids of the legal holds that kept something back.
    holds       JSONB NOT NULL,
    -- What was removed (partitions, steps), never a record's content.
    detail      JSONB NOT NULL
);
CREATE INDEX deletion_receipts_by_time ON deletion_receipts (recorded_at);
CREATE TRIGGER deletion_receipts_no_update BEFORE UPDATE OR DELETE ON deletion_receipts
    FOR EACH ROW EXECUTE FUNCTION udl_refuse_change();
CREATE TRIGGER deletion_receipts_no_truncate BEFORE TRUNCATE ON deletion_receipts
    FOR EACH STATEMENT EXECUTE FUNCTION udl_refuse_change();

-- A legal hold suspends deletion of what it covers: one subject's data (a patient), a whole
-- data class, or one subject within one class. Released, never deleted.
CREATE TABLE legal_holds (
    id          UUID PRIMARY KEY,
    subject     TEXT CHECK (length(subject) BETWEEN 1 AND 256),
    data_class  TEXT CHECK (length(data_class) BETWEEN 1 AND 64),
    reason      TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 1024),
    placed_by   TEXT NOT NULL,
    placed_at   TIMESTAMPTZ NOT NULL,
    released_by TEXT,
    released_at TIMESTAMPTZ,
    CHECK (subject IS NOT NULL OR data_class IS NOT NULL)
);
CREATE INDEX legal_holds_active ON legal_holds (data_class, subject) WHERE released_at IS NULL;
CREATE FUNCTION legal_holds_release_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR OLD.released_at IS NOT NULL OR NEW.released_at IS NULL
       OR (NEW.id, NEW.subject, NEW.data_class, NEW.reason, NEW.placed_by, NEW.placed_at)
          IS DISTINCT FROM (OLD.id, OLD.subject, OLD.data_class, OLD.reason, OLD.placed_by, OLD.placed_at) THEN
        RAISE EXCEPTION 'a legal hold is only ever released' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER legal_holds_release_only BEFORE UPDATE OR DELETE ON legal_holds
    FOR EACH ROW EXECUTE FUNCTION legal_holds_release_only();
CREATE TRIGGER legal_holds_no_truncate BEFORE TRUNCATE ON legal_holds
    FOR EACH STATEMENT EXECUTE FUNCTION udl_refuse_change();

-- The access log's entries dropped with their month, as runs of consecutive `seq` with the hash
-- of each run's last entry: the first entry after a run still links to that hash, so the chain
-- verifies across what retention removed (and a deletion outside retention still shows).
CREATE TABLE phi_access_log_retired (
    from_seq       BIGINT PRIMARY KEY CHECK (from_seq > 0),
    to_seq         BIGINT NOT NULL,
    last_hash      BYTEA NOT NULL,
    partition_name TEXT NOT NULL,
    receipt_id     UUID NOT NULL,
    retired_at     TIMESTAMPTZ NOT NULL,
    CHECK (to_seq >= from_seq)
);
CREATE TRIGGER phi_access_log_retired_no_update BEFORE UPDATE OR DELETE ON phi_access_log_retired
    FOR EACH ROW EXECUTE FUNCTION udl_refuse_change();
CREATE TRIGGER phi_access_log_retired_no_truncate BEFORE TRUNCATE ON phi_access_log_retired
    FOR EACH STATEMENT EXECUTE FUNCTION udl_refuse_change();

-- Every job run, scheduled or manual: one row per scheduled slot (two processes never both run
-- it), its outcome, counts and duration.
CREATE TABLE job_runs (
    id          UUID PRIMARY KEY,
    job         TEXT NOT NULL,
    slot        TIMESTAMPTZ,
    trigger     TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    dry_run     BOOLEAN NOT NULL,
    runner      TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    outcome     TEXT NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'skipped')),
    counts      JSONB NOT NULL,
    error       TEXT,
    UNIQUE (job, slot)
);
CREATE INDEX job_runs_by_job ON job_runs (job, started_at DESC);
