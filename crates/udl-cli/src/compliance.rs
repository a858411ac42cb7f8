//! `udl compliance report`: the accounting of disclosures for one patient, or a summary of every
//! PHI access by actor, purpose and outcome, as JSON or as an HTML page on standard output.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use udl::jobs::retention::{DataClass, RetentionPolicy};
use udl::privacy::audit::{report, AuditWriter};
use udl::{AccessContext, Error, ErrorKind, Purpose, Result, Role, UdlConfig};

/// The report's format.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// Machine-readable.
    Json,
    /// A readable page.
    Html,
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|_| Error::new(ErrorKind::Internal, "the report did not serialise"))
}

/// How long the report's own audit entry may take to become durable.
const AUDIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Prints the report for `patient` (or the summary when `None`) over `[from, to)` (within
/// retention), read by `actor` as an auditor; the reading is itself audited before anything is
/// printed.
pub async fn report(
    config: &UdlConfig,
    actor: &str,
    patient: Option<&str>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    format: Format,
) -> Result<ExitCode> {
    let ctx = AccessContext::new(actor, Role::Auditor, Purpose::Operations)?;
    let pg = crate::audit::postgres_store(config).await?;
    // Entries past retention are left out even before their month is dropped.
    let kept_since =
        RetentionPolicy::of(&config.retention, DataClass::PhiAccessLog).kept_since(Utc::now());
    let from = Some(from.map_or(kept_since, |from| from.max(kept_since)));
    let text = match patient {
        Some(patient) => {
            let accounting = report::accounting(&pg, patient, from, to).await?;
            match format {
                Format::Json => json(&accounting)?,
                Format::Html => accounting.to_html(),
            }
        }
        None => {
            let summary = report::summary(&pg, from, to).await?;
            match format {
                Format::Json => json(&summary)?,
                Format::Html => summary.to_html(),
            }
        }
    };
    let audit = AuditWriter::start(pg, AUDIT_TIMEOUT);
    report::record_reading(&audit, &ctx, patient).await?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}
