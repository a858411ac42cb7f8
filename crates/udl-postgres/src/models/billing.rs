//! Subscriptions and invoices.

use chrono::{DateTime, Utc};
use udl_core::text_enum;
use udl_derive::Entity;
use uuid::Uuid;

text_enum! {
    /// Subscription state.
    pub enum SubscriptionStatus {
        Trialing => "trialing", Active => "active", PastDue => "past_due", Cancelled => "cancelled",
    }
}

text_enum! {
    /// Invoice state.
    pub enum InvoiceStatus {
        Draft => "draft", Open => "open", Paid => "paid", Void => "void", Uncollectible => "uncollectible",
    }
}

/// A user's paid plan.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "subscriptions", store = "postgres")]
pub struct Subscription {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// Paying user.
    #[udl(internal)]
    pub user_id: Uuid,
    /// Plan name.
    #[udl(internal)]
    pub plan: String,
    /// State.
    #[udl(internal)]
    pub status: SubscriptionStatus,
    /// Start of the current billing period.
    #[udl(internal)]
    pub current_period_start: DateTime<Utc>,
    /// End of the current billing period.
    #[udl(internal)]
    pub current_period_end: DateTime<Utc>,
    /// Scheduled cancellation.
    #[udl(internal)]
    pub cancel_at: Option<DateTime<Utc>>,
    /// Payment provider's reference.
    #[udl(internal)]
    pub external_ref: Option<String>,
    /// Creation time.
    #[udl(internal)]
    pub created_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}

/// One bill of a subscription. Amounts are in minor units.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "invoices", store = "postgres")]
pub struct Invoice {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// Subscription billed.
    #[udl(internal)]
    pub subscription_id: Uuid,
    /// Paying user.
    #[udl(internal)]
    pub user_id: Uuid,
    /// Amount in minor units (cents).
    #[udl(internal)]
    pub amount_cents: i64,
    /// ISO 4217 code.
    #[udl(internal)]
    pub currency: String,
    /// State.
    #[udl(internal)]
    pub status: InvoiceStatus,
    /// Issue time.
    #[udl(internal)]
    pub issued_at: DateTime<Utc>,
    /// Payment time.
    #[udl(internal)]
    pub paid_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}
