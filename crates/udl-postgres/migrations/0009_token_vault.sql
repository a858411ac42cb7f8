-- Deterministic tokens for PHI that must be joinable without being readable (a patient id in
-- analytics). The original is kept only encrypted, bound to its token; detokenizing goes
-- through the privacy layer's policy and the access audit.
CREATE TABLE udl_token_vault (
    token      TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    sealed     BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER udl_token_vault_no_update BEFORE UPDATE ON udl_token_vault
    FOR EACH ROW EXECUTE FUNCTION udl_refuse_change();
