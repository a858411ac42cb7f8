//! A projection: each user's current plan kept in Redis from PostgreSQL's `subscriptions` by
//! the change relay (`[cdc] projections = ["user_plans"]`), so a service can gate features on
//! the plan without a database round trip. The read model is current once the relay has made
//! the change durable. Needs `[postgres]`, `[privacy]`, `[redis]` and a sink (`[scylla]` here).

use udl::redis::UserPlans;
use udl::sync::RelayState;
use udl::{AccessContext, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let mut config = udl_examples::config()?;
    // As `[cdc] projections = ["user_plans"]` in the configuration file would.
    config.cdc.get_or_insert_with(Default::default).projections = vec!["user_plans".into()];
    let data = udl_examples::connect().await?;
    let relay = data.configured_relay(&config).await?;
    let mut durable = relay.subscribe();
    let mut state = relay.state();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { relay.run(stopped).await });
    state.wait_for(|s| *s == RelayState::Running).await.ok();

    let ctx = AccessContext::system("billing");
    let (user, subscription) =
        udl_examples::fake_subscriber(&data, &ctx, "therapy-monthly").await?;
    // Durable in every sink, the projection included.
    while durable.recv().await.expect("the relay runs").subject != Some(subscription.to_string()) {}

    let plan = UserPlans::new(data.redis()?.clone())
        .get(&user.to_string())
        .await?
        .expect("the projection has applied the subscription");
    println!("{} until {}", plan.plan, plan.current_period_end);
    assert_eq!(
        (plan.plan.as_str(), plan.status.as_str()),
        ("therapy-monthly", "active")
    );

    stop.send(true).ok();
    running.await.expect("the relay task")?;
    let settings = udl::relay_settings(&config, data.postgres()?.schema());
    udl::sync::slot::drop_capture(data.postgres()?, &settings.slot, &settings.publication).await
}
