-- Data keys for field encryption and blind indexes, stored only wrapped by a key-encryption
-- key that lives in the key provider (KMS, Vault, or the local key ring in development).
CREATE TABLE udl_data_keys (
    purpose      TEXT NOT NULL CHECK (purpose IN ('encryption', 'blind_index', 'masking')),
    version      INTEGER NOT NULL CHECK (version > 0),
    kek_version  INTEGER NOT NULL,
    wrapped      BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (purpose, version)
);
