-- Local audit journals: each process makes every PHI access durable in a journal file of its
-- own, then ships the entries, in order, into phi_access_log. This table records how far each
-- journal has shipped (so nothing ships twice), and what it last said it had appended (so the
-- compliance report can say how far behind a journal is).
CREATE TABLE phi_audit_journals (
    journal_id       UUID PRIMARY KEY,
    host             TEXT NOT NULL,
    path             TEXT NOT NULL,
    shipped_through  BIGINT NOT NULL DEFAULT 0,
    shipped_hash     BYTEA,
    appended_through BIGINT NOT NULL DEFAULT 0,
    first_heard_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heard_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Appends one batch to the chain, atomically: moves the chain's tip from `tip_seq` to the
-- batch's last entry and inserts the entries, and, for a batch from a journal, moves that
-- journal's shipped position from `first_n - 1` to `last_n`. Returns -1 when another writer
-- moved the tip first (nothing done: chain the batch again); for a journal already shipped past
-- `first_n - 1`, its shipped position (nothing done: drop what already shipped); otherwise
-- `last_n` (0 for a batch without a journal).
CREATE FUNCTION udl_audit_append(
    journal UUID, journal_host TEXT, journal_path TEXT, first_n BIGINT, last_n BIGINT,
    last_journal_hash BYTEA, appended BIGINT, tip_seq BIGINT, new_seq BIGINT, new_hash BYTEA,
    seqs BIGINT[], ids UUID[], occurred TIMESTAMPTZ[], actor_ids TEXT[], actor_roles TEXT[],
    purposes TEXT[], patient_ids TEXT[], entities TEXT[], record_id_lists JSONB[], field_lists JSONB[],
    operations TEXT[], outcomes TEXT[], request_ids TEXT[], prev_hashes BYTEA[], hashes BYTEA[])
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    shipped BIGINT;
BEGIN
    IF journal IS NOT NULL THEN
        INSERT INTO phi_audit_journals (journal_id, host, path)
        VALUES (journal, journal_host, journal_path) ON CONFLICT (journal_id) DO NOTHING;
        SELECT shipped_through INTO shipped FROM phi_audit_journals
        WHERE journal_id = journal FOR UPDATE;
        IF shipped <> first_n - 1 THEN
            RETURN shipped;
        END IF;
    END IF;
    UPDATE phi_access_log_head SET seq = new_seq, hash = new_hash WHERE seq = tip_seq;
    IF NOT FOUND THEN
        RETURN -1;
    END IF;
    INSERT INTO phi_access_log (seq, id, occurred_at, actor_id, actor_role, purpose, patient_id,
        entity, record_ids, fields, operation, outcome, request_id, prev_hash, hash)
    SELECT * FROM unnest(seqs, ids, occurred, actor_ids, actor_roles, purposes, patient_ids,
        entities, record_id_lists, field_lists, operations, outcomes, request_ids, prev_hashes,
        hashes);
    IF journal IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE phi_audit_journals
    SET shipped_through = last_n, shipped_hash = last_journal_hash,
        appended_through = greatest(appended_through, appended), heard_at = now()
    WHERE journal_id = journal;
    RETURN last_n;
END $$;
