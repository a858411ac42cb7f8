-- The redaction ledger: for every change event udl emits, what was done to which field
-- (stripped, tokenized; token references and key versions), never a value. A row holds the
-- entries of one committed transaction (up to a thousand events; a longer one takes several
-- rows), so the ledger costs a row per transaction rather than per change; event ids are
-- `<commit position>-<ordinal>`, so an event's row is found by its position. Each row is
-- sealed by a keyed hash over its content, the table is append-only, and it is partitioned by
-- month like the PHI access log, so retention can detach whole months. Written before the
-- events reach any sink; a replayed transaction writes the same rows, which are kept once.
CREATE TABLE udl_redaction_ledger (
    commit_position BIGINT NOT NULL,
    first_ordinal   INTEGER NOT NULL,
    last_ordinal    INTEGER NOT NULL,
    commit_time     TIMESTAMPTZ NOT NULL,
    -- lz4: a transaction's entries run to kilobytes, and pglz would cost the relay dearly.
    entries         JSONB COMPRESSION lz4 NOT NULL,
    seal            BYTEA NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (commit_position, first_ordinal, commit_time),
    CHECK (first_ordinal <= last_ordinal)
) PARTITION BY RANGE (commit_time);
CREATE TRIGGER udl_redaction_ledger_no_change BEFORE UPDATE OR DELETE ON udl_redaction_ledger
    FOR EACH ROW EXECUTE FUNCTION udl_refuse_change();
CREATE TRIGGER udl_redaction_ledger_no_truncate BEFORE TRUNCATE ON udl_redaction_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION udl_refuse_change();

-- The month holding `day`, as a partition named udl_redaction_ledger_yYYYYmMM, made once.
CREATE FUNCTION udl_redaction_ledger_partition(day DATE) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first_day DATE := date_trunc('month', day)::date;
    name TEXT := format('udl_redaction_ledger_y%sm%s', to_char(first_day, 'YYYY'), to_char(first_day, 'MM'));
BEGIN
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF udl_redaction_ledger FOR VALUES FROM (%L) TO (%L)',
                   name, first_day, (first_day + INTERVAL '1 month')::date);
    EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON %I
                    FOR EACH STATEMENT EXECUTE FUNCTION udl_refuse_change()', name);
END $$;
SELECT udl_redaction_ledger_partition(now()::date);

-- Each change relay's state, as its leader last wrote it: `udl cdc status` reads it beside
-- the slot's own figures. Standbys do not write here.
CREATE TABLE udl_cdc_relays (
    slot           TEXT PRIMARY KEY,
    holder         TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('running', 'halted', 'stopped')),
    reason         TEXT,
    acked_lsn      PG_LSN,
    last_commit_at TIMESTAMPTZ,
    lag_seconds    DOUBLE PRECISION,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
