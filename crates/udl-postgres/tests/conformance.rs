//! The conformance suite on PostgreSQL.

mod common;

udl_testkit::conformance_suite!(common::PgHarness::new);
