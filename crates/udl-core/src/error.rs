//! The one error type of udl.
//!
//! Messages are built by udl itself from metadata (store, operation, field and constraint
//! names, SQLSTATE codes), never from values, so no secret or PHI can leak through them.

use std::borrow::Cow;
use std::fmt;

use crate::store_kind::StoreKind;

/// Result with udl's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, independent of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The record does not exist.
    NotFound,
    /// A uniqueness rule or an optimistic-concurrency version check failed.
    Conflict,
    /// The store cannot do this operation (see its capabilities).
    Unsupported,
    /// The caller's input is invalid: unknown field, wrong type, value the store cannot hold.
    InvalidInput,
    /// The store cannot be reached right now.
    Unavailable,
    /// The operation did not finish in time.
    Timeout,
    /// The access context does not allow this.
    PermissionDenied,
    /// Configuration is invalid.
    Config,
    /// Stored data does not match what the entity declares.
    DataCorruption,
    /// A bug or an unexpected store answer.
    Internal,
}

impl ErrorKind {
    /// Whether errors of this kind are, by default, worth retrying.
    pub fn is_temporary_by_default(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }

    /// Whether errors of this kind are about the call, not the store: the store answered, or
    /// would have, and another call would fare no better.
    pub fn is_about_the_call(self) -> bool {
        matches!(
            self,
            ErrorKind::NotFound
                | ErrorKind::Conflict
                | ErrorKind::Unsupported
                | ErrorKind::InvalidInput
                | ErrorKind::PermissionDenied
                | ErrorKind::Config
        )
    }

    /// The kind in snake case, for metric labels and JSON (`not_found`, `timeout`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Config => "config",
            ErrorKind::DataCorruption => "data_corruption",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A udl error: kind, whether it is temporary, whether the request may have been applied,
/// store, operation, safe message and source.
pub struct Error {
    kind: ErrorKind,
    temporary: bool,
    outcome_unknown: bool,
    store: Option<StoreKind>,
    operation: Option<&'static str>,
    message: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// New error; `message` must not contain values, only metadata.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            temporary: kind.is_temporary_by_default(),
            outcome_unknown: false,
            store: None,
            operation: None,
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for an `Unsupported` error naming the store and operation.
    pub fn unsupported(store: StoreKind, operation: &'static str) -> Self {
        Error::new(
            ErrorKind::Unsupported,
            format!("{store} does not support {operation}"),
        )
        .with_store(store)
        .with_operation(operation)
    }

    /// The `Conflict` of an update whose expected version no longer matches.
    pub fn stale_version(store: StoreKind, entity: &str) -> Self {
        Error::new(
            ErrorKind::Conflict,
            format!("{entity} was changed by someone else (version mismatch)"),
        )
        .with_store(store)
        .with_operation("update")
    }

    /// A connection that failed with `io`: `Unavailable`, and outcome-unknown unless the
    /// server refused the connection (then nothing was sent).
    pub fn connection_failed(io: &std::io::Error) -> Self {
        let e = Error::new(
            ErrorKind::Unavailable,
            format!("connection failed ({})", io.kind()),
        );
        if io.kind() == std::io::ErrorKind::ConnectionRefused {
            e
        } else {
            e.with_outcome_unknown()
        }
    }

    /// Shorthand for an `InvalidInput` error.
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Sets the store this error came from.
    pub fn with_store(mut self, store: StoreKind) -> Self {
        self.store = Some(store);
        self
    }

    /// Sets the operation that failed, unless one is already named.
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        self.operation.get_or_insert(operation);
        self
    }

    /// Overrides whether the error is temporary.
    pub fn temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }

    /// Marks the error as one after which the request may have reached the server and been
    /// applied: the connection broke or the answer did not come in time after it was sent.
    /// Backends' classifications set it; an error that certainly left the store untouched
    /// (a refused connection, an open breaker, no free connection) never has it.
    pub fn with_outcome_unknown(mut self) -> Self {
        self.outcome_unknown = true;
        self
    }

    /// Attaches a source. Only attach sources whose text carries no values.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A copy without the source (sources cannot be cloned), for errors shared between
    /// waiters such as the callers of one single-flight load.
    pub fn clone_without_source(&self) -> Self {
        Error {
            kind: self.kind,
            temporary: self.temporary,
            outcome_unknown: self.outcome_unknown,
            store: self.store,
            operation: self.operation,
            message: self.message.clone(),
            source: None,
        }
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether retrying may succeed.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// Whether the request may have been applied although it failed (see
    /// [`Error::with_outcome_unknown`]): a write that fails so is not known to be "not written";
    /// read it back, or repeat it under an idempotency key, before writing it anew.
    pub fn outcome_unknown(&self) -> bool {
        self.outcome_unknown
    }

    /// Whether this error says the store is failing, so it counts against the store's circuit
    /// breaker: temporary, and never a kind that is about the call
    /// ([`ErrorKind::is_about_the_call`]), whatever a backend's classification said (a
    /// temporary `Conflict` from contention is worth retrying, but the store is fine).
    pub fn is_store_failure(&self) -> bool {
        self.temporary && !self.kind.is_about_the_call()
    }

    /// The store, when known.
    pub fn store(&self) -> Option<StoreKind> {
        self.store
    }

    /// The operation, when known.
    pub fn operation(&self) -> Option<&'static str> {
        self.operation
    }

    /// The safe message, without store and operation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(store) = self.store {
            write!(f, "{store} ")?;
        }
        if let Some(op) = self.operation {
            write!(f, "{op} ")?;
        }
        if self.store.is_some() || self.operation.is_some() {
            f.write_str("failed: ")?;
        }
        write!(f, "{:?}: {}", self.kind, self.message)?;
        if self.temporary {
            f.write_str(" (temporary)")?;
        }
        if self.outcome_unknown {
            f.write_str(" (may have been applied)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("temporary", &self.temporary)
            .field("outcome_unknown", &self.outcome_unknown)
            .field("store", &self.store)
            .field("operation", &self.operation)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_store_operation_and_kind() {
        let e = Error::unsupported(StoreKind::POSTGRES, "insert_with_ttl");
        let text = e.to_string();
        assert!(text.contains("postgres"), "{text}");
        assert!(text.contains("insert_with_ttl"), "{text}");
        assert!(text.contains("Unsupported"), "{text}");
        assert!(!e.is_temporary());
    }

    #[test]
    fn unavailable_is_temporary_by_default() {
        assert!(Error::new(ErrorKind::Unavailable, "down").is_temporary());
        assert!(!Error::new(ErrorKind::Conflict, "dup").is_temporary());
    }
}
