//! Legal holds: a hold on a subject (a patient), on a data class, or on a subject within a class
//! suspends deletion of what it covers until it is released. Holds are released, never deleted
//! (the table refuses it). The subject is an identifier; `Debug` leaves it out.

use std::fmt;

use chrono::{DateTime, Utc};
use udl_core::{Error, ErrorKind, Result};
use udl_postgres::PgStore;
use uuid::Uuid;

use super::DataClass;

/// What a hold covers.
#[derive(Clone, PartialEq, Eq)]
pub enum HoldScope {
    /// Everything about one subject (patient id), in every class.
    Subject(String),
    /// A whole data class.
    Class(DataClass),
    /// One subject within one class.
    SubjectInClass(String, DataClass),
}

impl fmt::Debug for HoldScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldScope::Subject(_) => f.write_str("Subject(..)"),
            HoldScope::Class(c) => write!(f, "Class({})", c.as_str()),
            HoldScope::SubjectInClass(_, c) => write!(f, "SubjectInClass(.., {})", c.as_str()),
        }
    }
}

/// One hold.
#[derive(Clone, PartialEq, Eq)]
pub struct LegalHold {
    /// Its id (receipts name it).
    pub id: Uuid,
    /// The subject it covers, if any.
    pub subject: Option<String>,
    /// The class it covers, if any (none: every class).
    pub data_class: Option<DataClass>,
    /// Why (a case or matter reference; never patient data).
    pub reason: String,
    /// Who placed it.
    pub placed_by: String,
    /// When.
    pub placed_at: DateTime<Utc>,
    /// When it was released, if it was.
    pub released_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for LegalHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegalHold")
            .field("id", &self.id)
            .field("subject", &self.subject.as_ref().map(|_| ".."))
            .field("data_class", &self.data_class)
            .field("placed_at", &self.placed_at)
            .field("released_at", &self.released_at)
            .finish_non_exhaustive()
    }
}

impl LegalHold {
    /// Whether it holds all of `class`.
    pub fn holds_class(&self, class: DataClass) -> bool {
        self.subject.is_none() && self.data_class == Some(class)
    }

    /// The subject it holds within `class`, if it is a subject hold covering `class`.
    pub fn subject_in(&self, class: DataClass) -> Option<&str> {
        match self.data_class {
            Some(c) if c != class => None,
            _ => self.subject.as_deref(),
        }
    }
}

fn classify(e: sqlx::Error) -> Error {
    udl_postgres::classify(&e, "legal holds")
}

fn class_named(name: &str) -> Result<DataClass> {
    DataClass::from_text(name).ok_or_else(|| {
        Error::new(
            ErrorKind::DataCorruption,
            "a legal hold names a data class udl does not know",
        )
    })
}

type HoldRow = (
    Uuid,
    Option<String>,
    Option<String>,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

fn hold(row: HoldRow) -> Result<LegalHold> {
    Ok(LegalHold {
        id: row.0,
        subject: row.1,
        data_class: row.2.as_deref().map(class_named).transpose()?,
        reason: row.3,
        placed_by: row.4,
        placed_at: row.5,
        released_at: row.6,
    })
}

/// The legal holds kept in PostgreSQL.
#[derive(Clone)]
pub struct LegalHolds {
    pg: PgStore,
}

impl LegalHolds {
    /// Holds in `pg`.
    pub fn new(pg: PgStore) -> Self {
        LegalHolds { pg }
    }

    /// Places a hold on `scope` for `reason`, by `actor`; its id.
    pub async fn place(&self, scope: HoldScope, reason: &str, actor: &str) -> Result<Uuid> {
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 1024 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a legal hold needs a reason of 1 to 1024 bytes (a case reference, never patient data)",
            ));
        }
        let (subject, class) = match &scope {
            HoldScope::Subject(s) => (Some(s.as_str()), None),
            HoldScope::Class(c) => (None, Some(c.as_str())),
            HoldScope::SubjectInClass(s, c) => (Some(s.as_str()), Some(c.as_str())),
        };
        if subject.is_some_and(|s| s.is_empty() || s.len() > 256) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a legal hold's subject must be 1 to 256 bytes",
            ));
        }
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO legal_holds (id, subject, data_class, reason, placed_by, placed_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(subject)
        .bind(class)
        .bind(reason)
        .bind(actor)
        .bind(Utc::now())
        .execute(self.pg.pool())
        .await
        .map_err(classify)?;
        Ok(id)
    }

    /// Releases hold `id`, by `actor`; not found when there is no such active hold.
    pub async fn release(&self, id: Uuid, actor: &str) -> Result<()> {
        let released = sqlx::query(
            "UPDATE legal_holds SET released_at = $2, released_by = $3
             WHERE id = $1 AND released_at IS NULL",
        )
        .bind(id)
        .bind(Utc::now())
        .bind(actor)
        .execute(self.pg.pool())
        .await
        .map_err(classify)?;
        if released.rows_affected() == 0 {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no active legal hold {id}"),
            ));
        }
        Ok(())
    }

    /// Every hold not released, oldest first; with `released`, also the released ones.
    pub async fn list(&self, released: bool) -> Result<Vec<LegalHold>> {
        let rows: Vec<HoldRow> = sqlx::query_as(
            "SELECT id, subject, data_class, reason, placed_by, placed_at, released_at
             FROM legal_holds WHERE $1 OR released_at IS NULL ORDER BY placed_at, id",
        )
        .bind(released)
        .fetch_all(self.pg.pool())
        .await
        .map_err(classify)?;
        rows.into_iter().map(hold).collect()
    }
}
