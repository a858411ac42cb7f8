//! A MongoDB harness: one fresh database per test, dropped afterwards.

use udl_config::{MongoConfig, UdlConfig};
use udl_mongo::MongoStore;
use udl_testkit::{servers, Harness, Subject};

pub struct MongoHarness {
    pub store: MongoStore,
}

/// Config for the local server with a fresh database name and a small pool.
pub fn config(database: &str) -> MongoConfig {
    let vars = [
        ("UDL__MONGO__URL", servers::mongo_url()),
        ("UDL__MONGO__DATABASE", database.to_owned()),
        ("UDL__MONGO__POOL__MIN", "0".to_owned()),
        ("UDL__MONGO__POOL__MAX", "4".to_owned()),
    ];
    UdlConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .expect("test config is valid")
        .mongo
        .expect("mongo section present")
}

impl MongoHarness {
    /// A store on a fresh database (collections are created by the first insert).
    pub async fn new() -> Self {
        let config = config(&servers::unique_namespace("t"));
        match MongoStore::connect(&config).await {
            Ok(store) => MongoHarness { store },
            Err(e) => servers::unreachable("FerretDB/MongoDB", &servers::mongo_url(), &e),
        }
    }
}

impl Harness for MongoHarness {
    fn subject(&self) -> Subject {
        Subject {
            store: self.store.records(),
            refuses_nul_in_text: false,
        }
    }

    async fn teardown(self) {
        self.store
            .database()
            .drop()
            .await
            .expect("drop test database");
    }
}
