//! The conformance suite on PostgreSQL.

use crate::common;

udl_testkit::conformance_suite!(common::PgHarness::new);
