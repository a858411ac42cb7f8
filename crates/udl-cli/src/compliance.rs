//! `udl compliance report`: the accounting of disclosures for one patient, or a summary of every
//! PHI access by actor, purpose and outcome, as JSON or as an HTML page on standard output.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use udl::privacy::audit::report;
use udl::{Error, ErrorKind, Result, UdlConfig};

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

/// Prints the report for `patient` (or the summary when `None`) over `[from, to)`.
pub async fn report(
    config: &UdlConfig,
    patient: Option<&str>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    format: Format,
) -> Result<ExitCode> {
    let pg = crate::audit::audit_store(config).await?;
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
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}
