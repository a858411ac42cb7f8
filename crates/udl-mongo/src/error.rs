//! The one function that classifies every MongoDB driver error.
//!
//! Server messages can quote values (`dup key: { email: "…" }`), so they are never copied:
//! udl errors carry the numeric code and code name only.

use mongodb::error::{ErrorKind as Mongo, WriteFailure};
use udl_core::{Error, ErrorKind, StoreKind};

/// Duplicate key.
pub const DUPLICATE_KEY: i32 = 11000;

/// Maps a driver error to a udl error of the right kind and temporariness.
pub fn classify(err: &mongodb::error::Error, operation: &'static str) -> Error {
    let labelled_temporary = err.contains_label("RetryableWriteError")
        || err.contains_label("TransientTransactionError");
    let e = match err.kind.as_ref() {
        Mongo::Write(WriteFailure::WriteError(w)) => {
            by_code(w.code, w.code_name.as_deref().unwrap_or(""))
        }
        // The write was made on the primary; whether it survives is what is not known.
        Mongo::Write(WriteFailure::WriteConcernError(w)) => {
            by_code(w.code, &w.code_name).with_outcome_unknown()
        }
        Mongo::Command(c) => by_code(c.code, &c.code_name),
        Mongo::InsertMany(many) => {
            let codes: Vec<i32> = many.write_errors.iter().flatten().map(|w| w.code).collect();
            match codes.first() {
                Some(&code) => by_code(code, ""),
                None => Error::new(ErrorKind::Unavailable, "write concern not satisfied"),
            }
        }
        Mongo::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            Error::new(ErrorKind::Timeout, "the server did not answer in time")
                .with_outcome_unknown()
        }
        Mongo::Io(io) => Error::connection_failed(io),
        Mongo::ServerSelection { .. } => Error::new(
            ErrorKind::Unavailable,
            "no server available within the selection timeout",
        ),
        Mongo::ConnectionPoolCleared { .. } => {
            Error::new(ErrorKind::Unavailable, "connection pool was cleared").with_outcome_unknown()
        }
        Mongo::DnsResolve { .. } => Error::new(ErrorKind::Unavailable, "DNS resolution failed"),
        Mongo::Authentication { .. } => {
            Error::new(ErrorKind::PermissionDenied, "authentication failed")
        }
        Mongo::InvalidArgument { .. } => Error::new(ErrorKind::InvalidInput, "invalid argument"),
        Mongo::BsonSerialization(_) => {
            Error::new(ErrorKind::InvalidInput, "value cannot be encoded as BSON")
        }
        Mongo::BsonDeserialization(_) | Mongo::InvalidResponse { .. } => {
            Error::new(ErrorKind::DataCorruption, "server answer cannot be decoded")
        }
        Mongo::InvalidTlsConfig { .. } => {
            Error::new(ErrorKind::Config, "invalid TLS configuration")
        }
        Mongo::IncompatibleServer { .. } | Mongo::SessionsNotSupported => {
            Error::new(ErrorKind::Unsupported, "server does not support this")
        }
        Mongo::Transaction { .. } => {
            Error::new(ErrorKind::Conflict, "transaction failed").temporary(true)
        }
        Mongo::Shutdown => {
            Error::new(ErrorKind::Unavailable, "client was shut down").temporary(false)
        }
        _ => Error::new(ErrorKind::Internal, "unexpected driver error"),
    };
    let e = if labelled_temporary {
        e.temporary(true)
    } else {
        e
    };
    e.with_store(StoreKind::MONGO).with_operation(operation)
}

fn by_code(code: i32, name: &str) -> Error {
    let (kind, temporary, what) = match code {
        DUPLICATE_KEY | 11001 => (ErrorKind::Conflict, false, "duplicate key"),
        112 => (ErrorKind::Conflict, true, "write conflict"),
        13 | 18 | 8000 => (ErrorKind::PermissionDenied, false, "not authorized"),
        50 | 262 => (
            ErrorKind::Timeout,
            true,
            "operation exceeded its time limit",
        ),
        2 | 9 | 14 | 52 | 55 | 10334 | 17280 | 121 => (
            ErrorKind::InvalidInput,
            false,
            "value rejected by the server",
        ),
        26 => (ErrorKind::NotFound, false, "namespace not found"),
        115 | 238 => (
            ErrorKind::Unsupported,
            false,
            "not supported by this server",
        ),
        6 | 7 | 89 | 91 | 189 | 9001 | 10107 | 11600 | 11602 | 13435 | 13436 => (
            ErrorKind::Unavailable,
            true,
            "server unavailable or stepping down",
        ),
        _ => (ErrorKind::Internal, false, "server error"),
    };
    let named = if name.is_empty() {
        String::new()
    } else {
        format!(" {name}")
    };
    Error::new(kind, format!("{what} (code {code}{named})")).temporary(temporary)
}
