//! The conformance suite on ScyllaDB (Apache Cassandra locally): every case that applies to
//! a store read by key passes; the others must be refused as capabilities say.

use crate::common;

udl_testkit::conformance_suite!(common::ScyllaHarness::new);
