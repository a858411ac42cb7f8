-- Every access to PHI, hash-chained. Append-only: updates, deletes and truncation are refused
-- by the database itself. Its writer (and monthly partitioning) come with the audit layer.
CREATE TABLE phi_access_log (
    id          UUID PRIMARY KEY,
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
    hash        BYTEA NOT NULL
);
CREATE INDEX phi_access_log_time_idx ON phi_access_log (occurred_at);
CREATE INDEX phi_access_log_patient_idx ON phi_access_log (patient_id, occurred_at);

CREATE FUNCTION phi_access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'phi_access_log is append-only' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER phi_access_log_no_update BEFORE UPDATE OR DELETE ON phi_access_log
    FOR EACH ROW EXECUTE FUNCTION phi_access_log_append_only();
CREATE TRIGGER phi_access_log_no_truncate BEFORE TRUNCATE ON phi_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION phi_access_log_append_only();
