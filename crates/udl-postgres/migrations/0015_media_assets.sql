-- The rights registry of media the platform shows or cites: where it is, where it came from,
-- under which license until when, and the sha256 of its content as registered.
CREATE TABLE media_assets (
    id                UUID PRIMARY KEY,
    uri               TEXT NOT NULL UNIQUE CHECK (length(uri) BETWEEN 1 AND 2048),
    source            TEXT NOT NULL CHECK (length(source) BETWEEN 1 AND 256),
    license           TEXT NOT NULL CHECK (length(license) BETWEEN 1 AND 256),
    expires_at        TIMESTAMPTZ,
    hash              TEXT NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    status            TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'removed')),
    grace_period_secs BIGINT NOT NULL CHECK (grace_period_secs >= 0),
    disabled_at       TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    version           BIGINT NOT NULL DEFAULT 1
);
-- The nightly prune looks for active assets whose license has expired.
CREATE INDEX media_assets_by_status_expiry ON media_assets (status, expires_at);
