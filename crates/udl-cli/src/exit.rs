//! Exit codes of the `udl` command.

use std::process::ExitCode;

use udl::{Error, ErrorKind};

/// The operation failed.
pub fn failed() -> ExitCode {
    ExitCode::FAILURE
}

/// Invalid configuration or command line.
pub fn usage() -> ExitCode {
    ExitCode::from(2)
}

/// A store could not be reached.
pub fn unreachable() -> ExitCode {
    ExitCode::from(3)
}

/// The exit code for an error.
pub fn for_error(e: &Error) -> ExitCode {
    match e.kind() {
        ErrorKind::Config => usage(),
        ErrorKind::Unavailable | ErrorKind::Timeout => unreachable(),
        _ => failed(),
    }
}
