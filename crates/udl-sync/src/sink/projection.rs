//! Projections: read models in another store kept current from PostgreSQL's changes, for
//! eventual consistency where a service reads a shape PostgreSQL does not keep. A projection
//! sees the sanitized events only (never a value the declarations keep back), applies them
//! idempotently by event id (a replay or a late batch changes nothing), and reports its lag
//! as `udl_projection_lag_seconds{projection}`.

use std::sync::Arc;

use async_trait::async_trait;
use udl_core::Result;
use udl_metrics::Metrics;
use udl_redis::{PlanChange, UserPlan, UserPlans};

use crate::event::{ChangeEvent, ChangeKind};

/// A read model kept from one entity's change events.
#[async_trait]
pub trait Projection: Send + Sync {
    /// Its name in configuration and metrics.
    fn name(&self) -> &'static str;
    /// The entity whose events it follows.
    fn entity(&self) -> &'static str;
    /// Applies `events` (that entity's, in commit order); idempotent by event id.
    async fn apply(&self, events: &[&ChangeEvent]) -> Result<()>;
}

/// A projection as a sink of the relay.
pub struct ProjectionSink {
    projection: Box<dyn Projection>,
    metrics: Arc<Metrics>,
}

impl ProjectionSink {
    /// `projection`, reporting its lag in `metrics`.
    pub fn new(projection: Box<dyn Projection>, metrics: Arc<Metrics>) -> Self {
        ProjectionSink {
            projection,
            metrics,
        }
    }

    pub(crate) async fn write(&self, events: &[&ChangeEvent]) -> Result<()> {
        let entity = self.projection.entity();
        let mine: Vec<&ChangeEvent> = events
            .iter()
            .copied()
            .filter(|e| e.entity == entity)
            .collect();
        let Some(last) = mine.last() else {
            return Ok(());
        };
        self.projection.apply(&mine).await?;
        let lag = (chrono::Utc::now() - last.time).num_milliseconds().max(0) as f64 / 1000.0;
        self.metrics.set_projection_lag(self.projection.name(), lag);
        Ok(())
    }
}

/// `user_plans`: each user's current plan in Redis, from `subscriptions`.
pub struct UserPlansProjection(UserPlans);

impl UserPlansProjection {
    /// The projection into `plans`.
    pub fn new(plans: UserPlans) -> Self {
        UserPlansProjection(plans)
    }
}

/// The plan change one `subscriptions` event makes; `None` for an event without the fields
/// (it is skipped, and said so by id).
fn plan_change(event: &ChangeEvent) -> Option<PlanChange> {
    let text = |name: &str| {
        event
            .data
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let subscription_id = text("id")?;
    Some(match event.kind {
        ChangeKind::Deleted => PlanChange::Removed {
            event_id: event.id.clone(),
            subscription_id,
        },
        // An outbox event is no row of the table.
        ChangeKind::Emitted => return None,
        ChangeKind::Created | ChangeKind::Updated | ChangeKind::Snapshot => PlanChange::Set {
            event_id: event.id.clone(),
            user_id: text("user_id")?,
            plan: UserPlan {
                subscription_id,
                plan: text("plan")?,
                status: text("status")?,
                current_period_end: text("current_period_end")?,
            },
        },
    })
}

#[async_trait]
impl Projection for UserPlansProjection {
    fn name(&self) -> &'static str {
        "user_plans"
    }

    fn entity(&self) -> &'static str {
        "subscriptions"
    }

    async fn apply(&self, events: &[&ChangeEvent]) -> Result<()> {
        let mut changes = Vec::with_capacity(events.len());
        for event in events {
            match plan_change(event) {
                Some(change) => changes.push(change),
                None => {
                    tracing::warn!(event = %event.id, "user_plans: a subscriptions event without the plan's fields; skipped")
                }
            }
        }
        self.0.apply(&changes).await
    }
}
