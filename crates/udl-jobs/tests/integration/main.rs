//! The integration tests, as one test binary, against the local PostgreSQL.

mod common;
mod retention;
mod runner;
