//! `udl hold` (legal holds: place, release, list) and `udl retention receipts` (what each purge
//! deleted or held back). A hold's subject is a patient id; listings show it, as the holds'
//! keepers need it, and nothing here reads patient data.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use udl::jobs::retention::{interaction_logs, DataClass, HoldScope, LegalHolds, Receipts};
use udl::{Error, ErrorKind, Result, UdlConfig};

/// A `--class` argument.
pub fn data_class(text: &str) -> std::result::Result<DataClass, String> {
    DataClass::from_text(text)
        .ok_or_else(|| "expected a data class: phi_access_log or phi_change_history".to_owned())
}

/// `udl hold place`.
pub async fn place(
    config: &UdlConfig,
    patient: Option<String>,
    class: Option<DataClass>,
    reason: &str,
    actor: &str,
) -> Result<ExitCode> {
    let scope = match (patient, class) {
        (Some(patient), Some(class)) => HoldScope::SubjectInClass(patient, class),
        (Some(patient), None) => HoldScope::Subject(patient),
        (None, Some(class)) => HoldScope::Class(class),
        (None, None) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a legal hold covers a --patient, a --class, or both",
            ))
        }
    };
    let (pg, mongo) = crate::jobs::stores(config).await?;
    let holds = LegalHolds::new(pg);
    let id = holds.place(scope, reason, actor).await?;
    println!("legal hold {id} placed");
    // MongoDB's TTL monitor would not wait for the next purge: the hold applies there now.
    if let Some(mongo) = mongo {
        let (suspended, _) = interaction_logs()
            .apply_holds(&mongo, &holds.list(false).await?)
            .await?;
        println!("{suspended} interaction logs kept past their retention while it stands");
    }
    Ok(ExitCode::SUCCESS)
}

/// `udl hold release`.
pub async fn release(config: &UdlConfig, id: uuid::Uuid, actor: &str) -> Result<ExitCode> {
    let pg = crate::audit::postgres_store(config).await?;
    LegalHolds::new(pg).release(id, actor).await?;
    println!("legal hold {id} released");
    Ok(ExitCode::SUCCESS)
}

/// `udl hold list [--all]`.
pub async fn list(config: &UdlConfig, all: bool) -> Result<ExitCode> {
    let pg = crate::audit::postgres_store(config).await?;
    let holds = LegalHolds::new(pg).list(all).await?;
    if holds.is_empty() {
        println!("no legal holds");
    }
    for hold in holds {
        let class = hold.data_class.map_or("every class", |c| c.as_str());
        let subject = hold.subject.as_deref().unwrap_or("every subject");
        let state = match hold.released_at {
            Some(at) => format!("released {}", at.format("%Y-%m-%d %H:%M UTC")),
            None => "active".to_owned(),
        };
        println!(
            "{}  {state:<28} {class:<20} {subject:<38} placed {} by {}: {}",
            hold.id,
            hold.placed_at.format("%Y-%m-%d %H:%M UTC"),
            hold.placed_by,
            hold.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `udl retention receipts [--since]`.
pub async fn receipts(config: &UdlConfig, since: Option<DateTime<Utc>>) -> Result<ExitCode> {
    let pg = crate::audit::postgres_store(config).await?;
    let receipts = Receipts::new(pg).since(since).await?;
    if receipts.is_empty() {
        println!("no deletion receipts");
    }
    for r in receipts {
        let range = match (r.range_from, r.range_to) {
            (Some(from), Some(to)) => {
                format!("{} .. {}", from.format("%Y-%m-%d"), to.format("%Y-%m-%d"))
            }
            _ => "-".to_owned(),
        };
        let holds = if r.holds.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = r.holds.iter().map(uuid::Uuid::to_string).collect();
            format!(" held by {}", ids.join(", "))
        };
        println!(
            "{} {} {}/{} [{range}] deleted {} held back {}{holds} ({}; {}) {}",
            r.recorded_at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.id,
            r.store,
            r.data_class,
            r.deleted,
            r.held_back,
            r.policy,
            r.job,
            r.detail
        );
    }
    Ok(ExitCode::SUCCESS)
}
