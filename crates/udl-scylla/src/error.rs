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
    e.with_store(StoreKind::SCYLLA).with_operation(operation)
}

/// A result of another shape than its statement selects (the schema changed under udl).
pub(crate) fn unexpected_shape(operation: &'static str) -> Error {
    Error::new(
        ErrorKind::DataCorruption,
        "ScyllaDB answered with an unexpected result shape",
    )
    .with_store(StoreKind::SCYLLA)
    .with_operation(operation)
}

fn by_attempt(attempt: &RequestAttemptError) -> Error {
    match attempt {
        RequestAttemptError::DbError(DbError::Invalid, message) => {
            missing_schema(message).unwrap_or_else(|| by_db_error(&DbError::Invalid))
        }
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

/// A statement naming a keyspace or table that does not exist: the schema is not migrated
/// (or another keyspace is configured). The server's message is read only for the name, which
/// is ours, never a value.
fn missing_schema(message: &str) -> Option<Error> {
    // ASCII lowercasing keeps byte offsets, so the name is cut from the original (CQL names
    // in quotes keep their case).
    let lower = message.to_ascii_lowercase();
    let after = |prefix: &str| &message[prefix.len()..];
    let (what, name) = if lower.starts_with("unconfigured table ") {
        ("table", after("unconfigured table "))
    } else if let Some(subject_len) = lower.strip_suffix(" does not exist").map(str::len) {
        let subject = &lower[..subject_len];
        let name = |prefix: &str| &message[prefix.len()..subject_len];
        if subject.starts_with("keyspace ") {
            ("keyspace", name("keyspace "))
        } else if subject.starts_with("table ") {
            ("table", name("table "))
        } else {
            return None;
        }
    } else {
        return None;
    };
    let name = name.trim().trim_matches(|c| c == '\'' || c == '"');
    let named = if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        format!("{what} {name}")
    } else {
        what.to_owned()
    };
    Some(Error::new(
        ErrorKind::Config,
        format!("{named} does not exist in ScyllaDB (run `udl migrate up`)"),
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keyspaces_and_tables_are_named_from_the_servers_message() {
        for (message, expected) in [
            (
                "unconfigured table flag_settings",
                "table flag_settings does not exist",
            ),
            (
                "table ks.flag_settings does not exist",
                "table ks.flag_settings does not exist",
            ),
            (
                "Keyspace 't_abc' does not exist",
                "keyspace t_abc does not exist",
            ),
            (
                "keyspace t_abc does not exist",
                "keyspace t_abc does not exist",
            ),
        ] {
            let e = missing_schema(message).unwrap();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(!e.is_temporary());
            assert!(e.message().starts_with(expected), "{message}: {e}");
            assert!(e.message().contains("udl migrate up"));
        }
        assert!(missing_schema("Invalid STRING constant (fake) for \"rank\"").is_none());
        let odd = missing_schema("table 'a b; c' does not exist").unwrap();
        assert!(odd.message().starts_with("table does not exist"), "{odd}");
    }
}
