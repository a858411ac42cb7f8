//! The integration tests, as one test binary: every test binary links all of the crate's
//! dependencies, so one per crate keeps the build's disk use and link time small.

mod audit_journal;
mod cli;
mod compliance_browser;
mod gateway;
mod gateway_client;
mod gateway_clients;
mod jobs;
mod keys;
mod serve;
