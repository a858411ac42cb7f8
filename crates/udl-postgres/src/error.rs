//! The one function that classifies every sqlx error.
//!
//! PostgreSQL's own messages can quote values (`invalid input syntax for type integer: "…"`,
//! `Key (email)=(…) already exists`), so they are never copied: the udl error carries the
//! SQLSTATE code and object names only.

use sqlx::error::DatabaseError;
use udl_core::{Error, ErrorKind, StoreKind};

/// Maps an sqlx error to a udl error of the right kind and temporariness, naming `operation`.
pub fn classify(err: &sqlx::Error, operation: &'static str) -> Error {
    let e = match err {
        sqlx::Error::Database(db) => classify_database(db.as_ref()),
        sqlx::Error::PoolTimedOut => Error::new(
            ErrorKind::Timeout,
            "no connection became free within the acquire timeout",
        ),
        sqlx::Error::PoolClosed => {
            Error::new(ErrorKind::Unavailable, "connection pool is closed").temporary(false)
        }
        sqlx::Error::Io(io) => Error::connection_failed(io),
        sqlx::Error::Tls(_) => {
            Error::new(ErrorKind::Unavailable, "TLS handshake failed").temporary(false)
        }
        sqlx::Error::WorkerCrashed => {
            Error::new(ErrorKind::Unavailable, "connection worker crashed").with_outcome_unknown()
        }
        sqlx::Error::Configuration(_) => {
            Error::new(ErrorKind::Config, "invalid connection options")
        }
        sqlx::Error::RowNotFound => Error::new(ErrorKind::NotFound, "no row returned"),
        sqlx::Error::ColumnDecode { index, .. } => Error::new(
            ErrorKind::DataCorruption,
            format!("column {index} does not decode to the declared type"),
        ),
        sqlx::Error::Decode(_) | sqlx::Error::TypeNotFound { .. } => Error::new(
            ErrorKind::DataCorruption,
            "value does not decode to the declared type",
        ),
        sqlx::Error::ColumnNotFound(name) => {
            Error::new(ErrorKind::DataCorruption, format!("column {name} missing"))
        }
        sqlx::Error::Protocol(_) => {
            Error::new(ErrorKind::Internal, "protocol error").with_outcome_unknown()
        }
        _ => Error::new(ErrorKind::Internal, "unexpected driver error"),
    };
    e.with_store(StoreKind::POSTGRES).with_operation(operation)
}

fn classify_database(db: &dyn DatabaseError) -> Error {
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let object = db
        .constraint()
        .or_else(|| db.table())
        .map(|name| format!(" on {name}"))
        .unwrap_or_default();
    let (kind, temporary, what) = match code.as_str() {
        "23505" => (ErrorKind::Conflict, false, "unique constraint violated"),
        "23503" => (
            ErrorKind::Conflict,
            false,
            "referenced record missing or still referenced",
        ),
        "23P01" => (ErrorKind::Conflict, false, "exclusion constraint violated"),
        "23502" => (ErrorKind::InvalidInput, false, "required value missing"),
        "23514" => (ErrorKind::InvalidInput, false, "check constraint violated"),
        "40001" => (ErrorKind::Conflict, true, "serialization failure"),
        "40P01" => (ErrorKind::Conflict, true, "deadlock detected"),
        "57014" => (
            ErrorKind::Timeout,
            true,
            "statement timed out or was cancelled",
        ),
        "55P03" => (ErrorKind::Timeout, true, "lock not available"),
        "25006" => (ErrorKind::PermissionDenied, false, "read-only transaction"),
        "42501" => (ErrorKind::PermissionDenied, false, "insufficient privilege"),
        "42P01" => (
            ErrorKind::Internal,
            false,
            "table missing (run `udl migrate up`)",
        ),
        "42703" => (
            ErrorKind::Internal,
            false,
            "column missing (run `udl migrate up`)",
        ),
        "3D000" => (ErrorKind::Config, false, "database does not exist"),
        c if c.starts_with("22") => (
            ErrorKind::InvalidInput,
            false,
            "value rejected by the database",
        ),
        c if c.starts_with("28") => (ErrorKind::PermissionDenied, false, "authentication failed"),
        c if c.starts_with("08") => (ErrorKind::Unavailable, true, "connection lost"),
        c if c.starts_with("53") => (ErrorKind::Unavailable, true, "server out of resources"),
        c if c.starts_with("57P") => (
            ErrorKind::Unavailable,
            true,
            "server shutting down or starting",
        ),
        _ => (ErrorKind::Internal, false, "database error"),
    };
    Error::new(kind, format!("{what}{object} (SQLSTATE {code})")).temporary(temporary)
}
