//! The one function that classifies every Redis client error. Redis replies can echo keys
//! or values, so only the error category is kept.

use redis::{ErrorKind as R, RedisError, ServerErrorKind as S};
use udl_core::{Error, ErrorKind, StoreKind};

/// Maps a Redis error to a udl error of the right kind and temporariness.
pub fn classify(err: &RedisError, operation: &'static str) -> Error {
    let e = if err.is_timeout() {
        Error::new(ErrorKind::Timeout, "Redis did not answer in time").with_outcome_unknown()
    } else if err.is_connection_refusal() {
        Error::new(ErrorKind::Unavailable, "Redis connection failed")
    } else if err.is_io_error() || err.is_connection_dropped() {
        Error::new(ErrorKind::Unavailable, "Redis connection failed").with_outcome_unknown()
    } else {
        match err.kind() {
            R::AuthenticationFailed => {
                Error::new(ErrorKind::PermissionDenied, "authentication failed")
            }
            R::UnexpectedReturnType | R::Parse => {
                Error::new(ErrorKind::DataCorruption, "unexpected reply type")
            }
            R::Server(
                S::BusyLoading | S::TryAgain | S::ClusterDown | S::MasterDown | S::ReadOnly,
            ) => Error::new(
                ErrorKind::Unavailable,
                "Redis is not ready for this command",
            ),
            R::Server(S::NoPerm) => Error::new(ErrorKind::PermissionDenied, "not permitted"),
            R::InvalidClientConfig => {
                Error::new(ErrorKind::Config, "invalid Redis client configuration")
            }
            R::Io => {
                Error::new(ErrorKind::Unavailable, "Redis connection failed").with_outcome_unknown()
            }
            _ => Error::new(ErrorKind::Internal, "Redis error"),
        }
    };
    e.with_store(StoreKind::REDIS).with_operation(operation)
}
