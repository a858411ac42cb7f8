-- Runtime configuration and metadata, keyed by name.
CREATE TABLE app_config (
    key         TEXT PRIMARY KEY CHECK (key ~ '^[a-z0-9_.:-]{1,128}$'),
    value       JSONB NOT NULL,
    description TEXT,
    updated_at  TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);
