-- Billing: subscriptions and their invoices. Amounts in minor units (cents).
CREATE TABLE subscriptions (
    id                   UUID PRIMARY KEY,
    user_id              UUID NOT NULL REFERENCES users (id),
    plan                 TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('trialing','active','past_due','cancelled')),
    current_period_start TIMESTAMPTZ NOT NULL,
    current_period_end   TIMESTAMPTZ NOT NULL,
    cancel_at            TIMESTAMPTZ,
    external_ref         TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    version              BIGINT NOT NULL DEFAULT 1,
    CHECK (current_period_end > current_period_start)
);
CREATE INDEX subscriptions_user_idx ON subscriptions (user_id);

CREATE TABLE invoices (
    id              UUID PRIMARY KEY,
    subscription_id UUID NOT NULL REFERENCES subscriptions (id),
    user_id         UUID NOT NULL REFERENCES users (id),
    amount_cents    BIGINT NOT NULL CHECK (amount_cents >= 0),
    currency        TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status          TEXT NOT NULL CHECK (status IN ('draft','open','paid','void','uncollectible')),
    issued_at       TIMESTAMPTZ NOT NULL,
    paid_at         TIMESTAMPTZ,
    version         BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX invoices_subscription_idx ON invoices (subscription_id);
CREATE INDEX invoices_user_status_idx ON invoices (user_id, status);
