//! What each subcommand does.

use std::process::ExitCode;

use udl::postgres::{models, MigrationState, PgStore};
use udl::{Result, UdlConfig};

/// `udl config check`: the effective configuration, secrets redacted.
pub fn config_check(config: &UdlConfig) -> Result<ExitCode> {
    print!("{config}");
    println!("# config OK");
    Ok(ExitCode::SUCCESS)
}

async fn postgres(config: &UdlConfig) -> Result<PgStore> {
    let data = udl::DataLayer::connect(config).await?;
    data.postgres().cloned()
}

/// `udl migrate up`: applies pending migrations of every configured store.
pub async fn migrate_up(config: &UdlConfig) -> Result<ExitCode> {
    let store = postgres(config).await?;
    let report = models::migrator().up(&store).await?;
    if report.applied.is_empty() {
        println!(
            "postgres: up to date ({} migrations applied earlier)",
            report.already_applied
        );
    } else {
        let list: Vec<String> = report.applied.iter().map(ToString::to_string).collect();
        println!(
            "postgres: applied {} migration(s): {}",
            report.applied.len(),
            list.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `udl migrate status`: every migration and its state; exits 1 when the database has
/// drifted (an applied migration edited, or unknown to this build).
pub async fn migrate_status(config: &UdlConfig) -> Result<ExitCode> {
    let store = postgres(config).await?;
    let status = models::migrator().status(&store).await?;
    println!("postgres (schema {}):", store.schema());
    for line in &status {
        println!("  {line}");
    }
    let drifted = status
        .iter()
        .any(|s| matches!(s.state, MigrationState::Modified | MigrationState::Unknown));
    Ok(if drifted {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
