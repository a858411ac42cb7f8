//! The conformance suite on both MongoDB targets: the real server (a one-member replica set)
//! and FerretDB.

mod mongodb {
    udl_testkit::conformance_suite!(crate::common::MongoHarness::new);
}

mod ferretdb {
    udl_testkit::conformance_suite!(crate::common::MongoHarness::ferretdb);
}
