//! The integration tests, as one test binary: every test binary links all of the crate's
//! dependencies, so one per crate keeps the build's disk use and link time small.

mod changes;
mod common;
mod conformance;
mod migrations;
mod models;
mod mongo;
mod transactions;
mod vector_follows;
