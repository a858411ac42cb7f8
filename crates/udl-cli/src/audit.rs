//! `udl audit verify`: walks the PHI access log's hash chain and reports the first broken link.

use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use udl::privacy::audit::{verify_log, ChainProblem};
use udl::{Error, ErrorKind, Result, UdlConfig};

/// A `--from`/`--to` bound: an RFC 3339 time or a date (its midnight, UTC).
pub fn parse_time(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| "expected a date (2026-11-01) or an RFC 3339 time".to_owned())
}

/// The PostgreSQL store, where the audit log and the data keys live.
pub async fn postgres_store(config: &UdlConfig) -> Result<udl::postgres::PgStore> {
    let pg_config = config.postgres.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            "the audit log and the data keys live in PostgreSQL: set UDL__POSTGRES__URL",
        )
    })?;
    udl::postgres::PgStore::connect(pg_config).await
}

/// Verifies the entries logged in `[from, to)`; exit 0 when the chain holds, 1 when it breaks.
pub async fn verify(
    config: &UdlConfig,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<ExitCode> {
    let pg = postgres_store(config).await?;
    let report = verify_log(&pg, from, to).await?;
    let range = match report.range {
        Some((first, last)) => format!("seq {first}..={last}"),
        None => "no entries in that range".to_owned(),
    };
    if let Some((last, tip)) = report.tail_missing {
        println!(
            "audit chain BROKEN at the end: the newest entry is seq {last}, but the chain reached seq {tip} (entries deleted); {} entries before verified ({range})",
            report.checked
        );
        return Ok(ExitCode::FAILURE);
    }
    match report.broken {
        None => {
            println!(
                "audit chain intact: {} entries checked ({range})",
                report.checked
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(broken) => {
            let what = match broken.problem {
                ChainProblem::Altered => "its content was altered",
                ChainProblem::Unlinked => {
                    "it does not follow the entry before it (deleted or replaced entries)"
                }
            };
            println!(
                "audit chain BROKEN at seq {} (entry {}, logged {}): {what}; {} entries before it verified ({range})",
                broken.seq,
                broken.id,
                broken.occurred_at.to_rfc3339(),
                report.checked
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
