//! `udl audit verify`: walks the PHI access log's hash chain and reports the first broken link,
//! then checks every local audit journal (`privacy.audit_journal_dir`): its own chain, and that
//! each entry it has shipped is in the log.

use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use udl::privacy::audit::journal::JournalProblem;
use udl::privacy::audit::{verify_journals, verify_log, ChainProblem, JournalReport};
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
    let pg_config = config
        .store::<udl::postgres::PostgresConfig>()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "the audit log and the data keys live in PostgreSQL: set UDL__POSTGRES__URL",
            )
        })?;
    udl::postgres::PgStore::connect(pg_config).await
}

/// Verifies the entries logged in `[from, to)` and the local journals; exit 0 when everything
/// holds, 1 when something breaks.
pub async fn verify(
    config: &UdlConfig,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<ExitCode> {
    let pg = postgres_store(config).await?;
    let log_intact = verify_chain(&pg, from, to).await?;
    let journals_intact = match config
        .privacy
        .as_ref()
        .and_then(|p| p.audit_journal_dir.as_ref())
    {
        Some(dir) => {
            let reports = verify_journals(&pg, dir).await?;
            if reports.is_empty() {
                println!("no audit journals in {}", dir.display());
            }
            // Every journal is printed, also after a broken one.
            let intact: Vec<bool> = reports.iter().map(print_journal).collect();
            intact.into_iter().all(|ok| ok)
        }
        None => true,
    };
    Ok(if log_intact && journals_intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints what was found in one journal; whether it is intact.
fn print_journal(report: &JournalReport) -> bool {
    let name = format!(
        "audit journal {} ({})",
        report.journal,
        report.dir.display()
    );
    let state = if report.live { ", in use" } else { "" };
    if let Some(broken) = &report.broken {
        let what = match broken.problem {
            JournalProblem::Altered => "its content was altered",
            JournalProblem::Unlinked => {
                "it does not follow the line before it (removed or replaced lines)"
            }
        };
        println!(
            "{name} BROKEN at line {} ({}): {what}; {} lines before it verified",
            broken.n,
            broken.segment.display(),
            report.lines
        );
    }
    if let Some((n, id)) = report.missing {
        println!(
            "{name} BROKEN: line {n} (entry {id}) is recorded as shipped but is not in the PostgreSQL access log"
        );
    }
    if let (Some(torn), false) = (&report.torn, report.live) {
        println!(
            "{name} ends in a line cut short by a crash ({} bytes at offset {} of {}); no access waited on it, and the next process to start on the directory cuts it off",
            torn.bytes,
            torn.offset,
            torn.segment.display()
        );
    }
    if report.intact() {
        println!(
            "{name} intact{state}: {} lines checked, shipped through line {}, {} not yet in PostgreSQL",
            report.lines,
            report.shipped_through,
            report.unshipped()
        );
    }
    report.intact()
}

/// Walks the log's chain over `[from, to)` and prints what it found; whether it holds.
async fn verify_chain(
    pg: &udl::postgres::PgStore,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<bool> {
    let report = verify_log(pg, from, to).await?;
    let range = match report.range {
        Some((first, last)) => format!("seq {first}..={last}"),
        None => "no entries in that range".to_owned(),
    };
    if let Some((last, tip)) = report.tail_missing {
        println!(
            "audit chain BROKEN at the end: the newest entry is seq {last}, but the chain reached seq {tip} (entries deleted); {} entries before verified ({range})",
            report.checked
        );
        return Ok(false);
    }
    match report.broken {
        None => {
            let retired = match report.retired {
                0 => String::new(),
                n => format!("; {n} entries removed by retention crossed by their anchors"),
            };
            println!(
                "audit chain intact: {} entries checked ({range}){retired}",
                report.checked
            );
            Ok(true)
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
            Ok(false)
        }
    }
}
