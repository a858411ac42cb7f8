-- E-mail addresses are stored sealed by the privacy layer: ciphertext in `email`, a keyed
-- blind index in `email_bidx` (unique: one account per address, compared without case).
-- Addresses written before this migration move to `email_plaintext`, which `udl keys rotate`
-- seals and then empties; a row always holds its address in one of the two forms.
ALTER TABLE users RENAME COLUMN email TO email_plaintext;
ALTER TABLE users ALTER COLUMN email_plaintext DROP NOT NULL;
ALTER TABLE users ADD COLUMN email BYTEA, ADD COLUMN email_bidx BYTEA;
CREATE UNIQUE INDEX users_email_bidx ON users (email_bidx);
ALTER TABLE users ADD CONSTRAINT users_email_present
    CHECK ((email IS NOT NULL AND email_bidx IS NOT NULL) OR email_plaintext IS NOT NULL);
