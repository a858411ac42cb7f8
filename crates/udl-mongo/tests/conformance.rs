//! The conformance suite on MongoDB (FerretDB locally).

mod common;

udl_testkit::conformance_suite!(common::MongoHarness::new);
