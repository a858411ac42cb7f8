-- The PHI access log becomes partitioned by month (so retention can detach whole months) and
-- gains `seq`, which orders its hash chain across every process that writes it. Rows already
-- logged move over in the order they were written.
ALTER TABLE phi_access_log RENAME TO phi_access_log_unpartitioned;
ALTER INDEX phi_access_log_time_idx RENAME TO phi_access_log_unpartitioned_time_idx;
ALTER INDEX phi_access_log_patient_idx RENAME TO phi_access_log_unpartitioned_patient_idx;

CREATE TABLE phi_access_log (
    seq         BIGINT NOT NULL CHECK (seq > 0),
    id          UUID NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    patient_id  TEXT,
    entity      TEXT NOT NULL,
    record_ids  JSONB NOT NULL,
    fields      JSONB NOT NULL,
    operation   TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('allowed','denied','error')),
    request_id  TEXT NOT NULL,
    prev_hash   BYTEA,
    hash        BYTEA NOT NULL,
    PRIMARY KEY (seq, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- The month holding `day`, as a partition named phi_access_log_yYYYYmMM, made once. Partitions
-- refuse truncation themselves: the parent's statement trigger does not cover them.
CREATE FUNCTION udl_access_log_partition(day DATE) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first_day DATE := date_trunc('month', day)::date;
    name TEXT := format('phi_access_log_y%sm%s', to_char(first_day, 'YYYY'), to_char(first_day, 'MM'));
BEGIN
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF phi_access_log FOR VALUES FROM (%L) TO (%L)',
                   name, first_day, (first_day + INTERVAL '1 month')::date);
    EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON %I
                    FOR EACH STATEMENT EXECUTE FUNCTION phi_access_log_append_only()', name);
END $$;

SELECT udl_access_log_partition(m::date)
FROM (SELECT DISTINCT date_trunc('month', occurred_at) AS m FROM phi_access_log_unpartitioned
      UNION SELECT date_trunc('month', now()) UNION SELECT date_trunc('month', now() + INTERVAL '1 month')) months;

INSERT INTO phi_access_log (seq, id, occurred_at, actor_id, actor_role, purpose, patient_id, entity,
                            record_ids, fields, operation, outcome, request_id, prev_hash, hash)
SELECT row_number() OVER (ORDER BY occurred_at, id), id, occurred_at, actor_id, actor_role, purpose,
       patient_id, entity, record_ids, fields, operation, outcome, request_id, prev_hash, hash
FROM phi_access_log_unpartitioned;
DROP TABLE phi_access_log_unpartitioned;

-- The chain's tip: writers append with one statement that moves it from the seq and hash they
-- chained onto (a compare-and-swap, so two processes never fork the chain), and verification
-- compares it with the newest entry, which shows deletions at the end of the log.
CREATE TABLE phi_access_log_head (
    one  BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    seq  BIGINT NOT NULL,
    hash BYTEA
);
INSERT INTO phi_access_log_head (seq, hash)
SELECT COALESCE((SELECT max(seq) FROM phi_access_log), 0),
       (SELECT hash FROM phi_access_log ORDER BY seq DESC LIMIT 1);
CREATE FUNCTION phi_access_log_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq <= OLD.seq THEN
        RAISE EXCEPTION 'the PHI access log head only moves forward' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER phi_access_log_head_forward BEFORE UPDATE ON phi_access_log_head
    FOR EACH ROW EXECUTE FUNCTION phi_access_log_head_forward();
CREATE TRIGGER phi_access_log_head_no_delete BEFORE DELETE OR TRUNCATE ON phi_access_log_head
    FOR EACH STATEMENT EXECUTE FUNCTION phi_access_log_append_only();

-- Few indexes, as every PHI access writes here: time ranges (BRIN: entries arrive in time
-- order) and one patient's accesses (the accounting of disclosures).
CREATE INDEX phi_access_log_time_idx ON phi_access_log USING brin (occurred_at);
CREATE INDEX phi_access_log_patient_idx ON phi_access_log (patient_id, occurred_at);
CREATE TRIGGER phi_access_log_no_update BEFORE UPDATE OR DELETE ON phi_access_log
    FOR EACH ROW EXECUTE FUNCTION phi_access_log_append_only();
CREATE TRIGGER phi_access_log_no_truncate BEFORE TRUNCATE ON phi_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION phi_access_log_append_only();
