//! A snapshot (batch sync): rows that were in PostgreSQL before capture began are copied to
//! the sinks through the change relay, in primary-key chunks between watermarks, while the
//! relay goes on streaming; each row becomes a `ce.<entity>.snapshot` event, sanitized like
//! a captured change. `udl cdc snapshot app_config --where 'key>=feature.'` does the same from
//! the command line, with a progress bar. Needs `[postgres]`, `[privacy]` and a sink.

use udl::postgres::models::AppConfigEntry;
use udl::sync::snapshot::Condition;
use udl::sync::RelayState;
use udl::{AccessContext, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let config = udl_examples::config()?;
    let data = udl_examples::connect().await?;
    let ctx = AccessContext::system("example");
    let flags: Vec<AppConfigEntry> = (0..250)
        .map(|n| AppConfigEntry {
            key: format!("feature.{n:03}"),
            value: serde_json::json!(n % 2 == 0),
            description: None,
            updated_at: chrono::Utc::now(),
            version: 1,
        })
        .collect();
    data.repository::<AppConfigEntry>()?
        .create_many(&ctx, flags)
        .await?;

    let relay = data.configured_relay(&config).await?;
    let mut state = relay.state();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { relay.run(stopped).await });
    state.wait_for(|s| *s == RelayState::Running).await.ok();

    let only_features: Vec<Condition> = vec!["key>=feature."
        .parse()
        .map_err(|e: String| udl::Error::new(udl::ErrorKind::InvalidInput, e))?];
    let id = data
        .request_snapshot(&config, "app_config", &only_features, 100)
        .await?;
    let done = loop {
        let progress = data.snapshot_progress(id).await?;
        if progress.ended() {
            break progress;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    println!(
        "snapshot {id}: {} ({} rows in {} chunks, {} sent)",
        done.state, done.rows_read, done.chunks, done.rows_sent
    );
    assert_eq!((done.state.as_str(), done.rows_read), ("done", 250));

    stop.send(true).ok();
    running.await.expect("the relay task")?;
    let settings = udl::relay_settings(&config, data.postgres()?.schema());
    udl::sync::slot::drop_capture(data.postgres()?, &settings.slot, &settings.publication).await
}
