//! A child process for the audit journal's crash test (`tests/integration/audit_journal.rs`):
//! connects the data layer configured in its environment, makes one audited PHI read (of a
//! consent record that does not exist: a miss is audited like a hit), prints the read's
//! request id once the read has returned, and waits to be killed.

use std::io::Write as _;

use udl::postgres::models::ConsentRecord;
use udl::{AccessContext, DataLayer, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let config = udl::config::load(None)
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))?;
    let data = DataLayer::connect(&config).await?;
    let ctx = AccessContext::system("journal-crash-test");
    let found = data
        .repository::<ConsentRecord>()?
        .get(&ctx, &uuid::Uuid::new_v4())
        .await?;
    assert!(found.is_none());
    let mut out = std::io::stdout();
    writeln!(out, "read {}", ctx.request_id()).expect("stdout");
    out.flush().expect("stdout");
    // Killed here, while the entry may still be on its way to PostgreSQL.
    std::future::pending::<()>().await;
    Ok(())
}
