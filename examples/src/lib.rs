//! What every example shares: the configuration from the environment (`UDL__...` variables,
//! or the file in `$UDL_CONFIG`), and the platform's migrations applied to every configured
//! store, as `udl migrate up` would.

use udl::{DataLayer, Error, ErrorKind, Result};

/// The configuration in the environment.
pub fn config() -> Result<udl::UdlConfig> {
    udl::config::load(None).map_err(|e| Error::new(ErrorKind::Config, e.to_string()))
}

/// The data layer of the configuration in the environment, its stores migrated.
pub async fn connect() -> Result<DataLayer> {
    let config = config()?;
    // The privacy layers load their keys from tables the migrations create.
    let mut stores_only = config.clone();
    stores_only.privacy = None;
    let migrating = DataLayer::connect(&stores_only).await?;
    migrating.migrate().await?;
    migrating.shutdown(std::time::Duration::from_secs(1)).await;
    DataLayer::connect(&config).await
}

/// A patient with an obviously fake address and a monthly subscription to `plan`, written
/// through `data` as `ctx`; returns (user id, subscription id).
pub async fn fake_subscriber(
    data: &DataLayer,
    ctx: &udl::AccessContext,
    plan: &str,
) -> Result<(uuid::Uuid, uuid::Uuid)> {
    use udl::postgres::models::{Subscription, SubscriptionStatus, User, UserStatus};
    let (user, subscription) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let now = chrono::Utc::now();
    data.repository::<User>()?
        .create(
            ctx,
            User {
                id: user,
                email: format!("fake-{user}@example.test"),
                display_name: "Fake Subscriber".into(),
                role: udl::Role::Patient,
                status: UserStatus::Active,
                created_at: now,
                updated_at: now,
                version: 1,
            },
        )
        .await?;
    data.repository::<Subscription>()?
        .create(
            ctx,
            Subscription {
                id: subscription,
                user_id: user,
                plan: plan.into(),
                status: SubscriptionStatus::Active,
                current_period_start: now,
                current_period_end: now + chrono::Duration::days(30),
                cancel_at: None,
                external_ref: None,
                created_at: now,
                version: 1,
            },
        )
        .await?;
    Ok((user, subscription))
}
