//! What each subcommand does.

use std::process::ExitCode;

use udl::{
    DataLayer, Error, ErrorKind, MigrationReport, MigrationState, MigrationStatus, Result,
    UdlConfig,
};

/// `udl config check`: the effective configuration, secrets redacted.
pub fn config_check(config: &UdlConfig) -> Result<ExitCode> {
    print!("{config}");
    println!("# config OK");
    Ok(ExitCode::SUCCESS)
}

/// How long a command's stores get to close once it is done.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `work` over `data`, then closes its stores whatever the outcome: the drivers'
/// background tasks must end before the runtime does (the MongoDB driver panics otherwise).
pub async fn closing<T>(
    data: DataLayer,
    work: impl AsyncFnOnce(&DataLayer) -> Result<T>,
) -> Result<T> {
    let outcome = work(&data).await;
    data.shutdown(CLOSE_GRACE).await;
    outcome
}

/// Connects the configured stores, and only them (migrations create the tables the analytics
/// spool, the privacy layers and the cache use), refusing when none of them holds entities
/// (only those have migrations).
async fn migratable(config: &UdlConfig) -> Result<DataLayer> {
    let data = DataLayer::connect_stores(config).await?;
    if data
        .backends()
        .iter()
        .all(|b| b.unaudited_records().is_none())
    {
        data.shutdown(CLOSE_GRACE).await;
        return Err(Error::new(
            ErrorKind::Config,
            "no store with migrations is configured (set UDL__POSTGRES__URL, UDL__MONGO__URL and/or UDL__SCYLLA__NODES)",
        ));
    }
    Ok(data)
}

fn print_report(store: &str, report: &MigrationReport) {
    if report.applied.is_empty() {
        println!(
            "{store}: up to date ({} migrations applied earlier)",
            report.already_applied
        );
    } else {
        let list: Vec<String> = report.applied.iter().map(ToString::to_string).collect();
        println!(
            "{store}: applied {} migration(s): {}",
            report.applied.len(),
            list.join(", ")
        );
    }
}

/// `udl migrate up`: applies pending migrations of every configured store.
pub async fn migrate_up(config: &UdlConfig) -> Result<ExitCode> {
    closing(migratable(config).await?, async |data| {
        for (store, report) in data.migrate().await? {
            print_report(store.name(), &report);
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

fn print_status(heading: String, status: &[MigrationStatus]) -> bool {
    println!("{heading}:");
    for line in status {
        println!("  {line}");
    }
    status
        .iter()
        .any(|s| matches!(s.state, MigrationState::Modified | MigrationState::Unknown))
}

/// `udl migrate status`: every migration and its state; exits 1 when a database has
/// drifted (an applied migration edited, or unknown to this build).
pub async fn migrate_status(config: &UdlConfig) -> Result<ExitCode> {
    closing(migratable(config).await?, async |data| {
        let mut drifted = false;
        for backend in data.backends() {
            let status = backend.migration_status().await?;
            if !status.is_empty() {
                let heading = format!("{} ({})", backend.kind(), backend.location());
                drifted |= print_status(heading, &status);
            }
        }
        Ok(if drifted {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
    .await
}

/// `udl health`: one round trip to every configured store; exits 0 ready, 1 degraded
/// (a store other than PostgreSQL is down), 2 down (PostgreSQL is).
pub async fn health(config: &UdlConfig, timeout: std::time::Duration) -> Result<ExitCode> {
    if config.stores().next().is_none() {
        return Err(Error::new(ErrorKind::Config, "no store is configured"));
    }
    let report = udl::health::check(config, timeout).await;
    println!("{report}");
    Ok(match report.overall {
        udl::health::Overall::Ready => ExitCode::SUCCESS,
        udl::health::Overall::Degraded => ExitCode::FAILURE,
        udl::health::Overall::Down => ExitCode::from(2),
    })
}
