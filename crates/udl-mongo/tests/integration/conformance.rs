//! The conformance suite on MongoDB (FerretDB locally).

use crate::common;

udl_testkit::conformance_suite!(common::MongoHarness::new);
