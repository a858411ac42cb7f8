-- A user's display name (PII) and the kind of a care relationship (PHI) are stored sealed by
-- the privacy layer, as every PII and PHI field is unless it says why not. Values written
-- before this migration move to `*_plaintext`, which `udl keys rotate` seals and then empties;
-- a row always holds its value in one of the two forms.
ALTER TABLE users RENAME COLUMN display_name TO display_name_plaintext;
ALTER TABLE users ALTER COLUMN display_name_plaintext DROP NOT NULL;
ALTER TABLE users ADD COLUMN display_name BYTEA;
ALTER TABLE users ADD CONSTRAINT users_display_name_present
    CHECK (display_name IS NOT NULL OR display_name_plaintext IS NOT NULL);
ALTER TABLE patient_relationships RENAME COLUMN kind TO kind_plaintext;
ALTER TABLE patient_relationships ALTER COLUMN kind_plaintext DROP NOT NULL;
ALTER TABLE patient_relationships ADD COLUMN kind BYTEA;
ALTER TABLE patient_relationships ADD CONSTRAINT patient_relationships_kind_present
    CHECK (kind IS NOT NULL OR kind_plaintext IS NOT NULL);
