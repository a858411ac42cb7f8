-- Who may see whose data: care relationships and the patient's consents.
CREATE TABLE patient_relationships (
    id          UUID PRIMARY KEY,
    patient_id  UUID NOT NULL REFERENCES users (id),
    actor_id    UUID NOT NULL REFERENCES users (id),
    kind        TEXT NOT NULL CHECK (kind IN ('therapist','psychiatrist','care_coordinator','caregiver')),
    valid_from  TIMESTAMPTZ NOT NULL,
    valid_until TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    CHECK (valid_until IS NULL OR valid_until > valid_from)
);
CREATE INDEX patient_relationships_patient_idx ON patient_relationships (patient_id, actor_id);
CREATE INDEX patient_relationships_actor_idx ON patient_relationships (actor_id);

CREATE TABLE consent_records (
    id           UUID PRIMARY KEY,
    patient_id   UUID NOT NULL REFERENCES users (id),
    grantee_id   UUID REFERENCES users (id),
    grantee_role TEXT,
    purpose      TEXT NOT NULL CHECK (purpose IN ('treatment','payment','operations','patient_request','research','emergency','system')),
    scope        TEXT NOT NULL,
    granted_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    version      BIGINT NOT NULL DEFAULT 1,
    CHECK (grantee_id IS NOT NULL OR grantee_role IS NOT NULL)
);
CREATE INDEX consent_records_patient_idx ON consent_records (patient_id, purpose);
