//! The one function that classifies every Scylla driver error. Server messages can quote
//! values, so only the category is kept.

use scylla::errors::{DbError, ExecutionError, PrepareError, RequestAttemptError};
use udl_core::{Error, ErrorKind, StoreKind};

/// Maps a driver error to a udl error of the right kind and temporariness.
pub fn classify(err: &ExecutionError, operation: &'static str) -> Error {
    let e = match err {
        ExecutionError::RequestTimeout(_) => {
            Error::new(ErrorKind::Timeout, "ScyllaDB did not answer in time").with_outcome_unknown()
        }
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => {
            Error::new(ErrorKind::Unavailable, "no ScyllaDB node is reachable")
        }
        ExecutionError::BadQuery(_) => Error::new(ErrorKind::InvalidInput, "invalid CQL request"),
        ExecutionError::LastAttemptError(attempt) => by_attempt(attempt),
        // Preparing right after a node came back can meet connections still being replaced.
        ExecutionError::PrepareError(PrepareError::ConnectionPoolError(_)) => {
            Error::new(ErrorKind::Unavailable, "no ScyllaDB node is reachable")
        }
        ExecutionError::PrepareError(PrepareError::AllAttemptsFailed { first_attempt }) => {
            by_attempt(first_attempt)
        }
        ExecutionError::SchemaAgreementError(_) => Error::new(
            ErrorKind::Unavailable,
            "ScyllaDB nodes did not agree on the schema in time",
        ),
        _ => Error::new(ErrorKind::Internal, "ScyllaDB request failed"),
    };
    e.with_store(StoreKind::Scylla).with_operation(operation)
}

/// A result of another shape than its statement selects (the schema changed under udl).
pub(crate) fn unexpected_shape(operation: &'static str) -> Error {
    Error::new(
        ErrorKind::DataCorruption,
        "ScyllaDB answered with an unexpected result shape",
    )
    .with_store(StoreKind::Scylla)
    .with_operation(operation)
}

fn by_attempt(attempt: &RequestAttemptError) -> Error {
    match attempt {
        RequestAttemptError::DbError(db, _) => by_db_error(db),
        RequestAttemptError::BrokenConnectionError(_) => {
            Error::new(ErrorKind::Unavailable, "ScyllaDB connection failed").with_outcome_unknown()
        }
        RequestAttemptError::UnableToAllocStreamId => {
            Error::new(ErrorKind::Unavailable, "ScyllaDB connection failed")
        }
        _ => Error::new(ErrorKind::Internal, "ScyllaDB request failed"),
    }
}

fn by_db_error(db: &DbError) -> Error {
    match db {
        DbError::Unavailable { .. } | DbError::Overloaded | DbError::IsBootstrapping => Error::new(
            ErrorKind::Unavailable,
            "not enough ScyllaDB replicas available",
        ),
        DbError::ReadTimeout { .. } => Error::new(
            ErrorKind::Timeout,
            "ScyllaDB replicas did not answer in time",
        ),
        // Some replicas may have applied it: CQL's own "unknown outcome".
        DbError::WriteTimeout { .. } => Error::new(
            ErrorKind::Timeout,
            "ScyllaDB replicas did not answer in time",
        )
        .with_outcome_unknown(),
        DbError::SyntaxError | DbError::Invalid => {
            Error::new(ErrorKind::InvalidInput, "invalid CQL statement")
        }
        DbError::AlreadyExists { .. } => Error::new(ErrorKind::Conflict, "already exists"),
        DbError::Unauthorized | DbError::AuthenticationError => {
            Error::new(ErrorKind::PermissionDenied, "not permitted")
        }
        DbError::ConfigError => Error::new(ErrorKind::Config, "server configuration error"),
        _ => Error::new(ErrorKind::Internal, "ScyllaDB error"),
    }
}
