-- Every change to a PHI field, on any store: who, when, why, and the value before and after,
-- both encrypted by the privacy layer (bound to this table and the entry's id). Append-only.
CREATE TABLE phi_change_history (
    id          UUID PRIMARY KEY,
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
    after       BYTEA
);
CREATE INDEX phi_change_history_record_idx ON phi_change_history (entity, record_id, occurred_at);

CREATE FUNCTION udl_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;
CREATE TRIGGER phi_change_history_no_update BEFORE UPDATE OR DELETE ON phi_change_history
    FOR EACH ROW EXECUTE FUNCTION udl_refuse_change();
CREATE TRIGGER phi_change_history_no_truncate BEFORE TRUNCATE ON phi_change_history
    FOR EACH STATEMENT EXECUTE FUNCTION udl_refuse_change();
