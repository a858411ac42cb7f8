//! A MongoDB harness: one fresh database per test, dropped afterwards.

use udl_config::StoreConfig as _;
use udl_mongo::MongoConfig;
use udl_mongo::MongoStore;
use udl_testkit::{servers, Harness, Subject};

pub struct MongoHarness {
    pub store: MongoStore,
}

/// Config for the local MongoDB with a fresh database name and a small pool.
pub fn config(database: &str) -> MongoConfig {
    config_on(&servers::mongo_url(), database)
}

/// Config for the server at `url` with a fresh database name and a small pool.
pub fn config_on(url: &str, database: &str) -> MongoConfig {
    let vars = [
        ("UDL__MONGO__URL", url.to_owned()),
        ("UDL__MONGO__DATABASE", database.to_owned()),
        ("UDL__MONGO__POOL__MIN", "0".to_owned()),
        ("UDL__MONGO__POOL__MAX", "4".to_owned()),
    ];
    MongoConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .expect("test config is valid")
}

impl MongoHarness {
    /// A store on a fresh database of the local MongoDB (collections are created by the first
    /// insert).
    pub async fn new() -> Self {
        Self::on("MongoDB", &servers::mongo_url()).await
    }

    /// The same on FerretDB, the second target.
    pub async fn ferretdb() -> Self {
        Self::on("FerretDB", &servers::ferretdb_url()).await
    }

    async fn on(server: &str, url: &str) -> Self {
        let config = config_on(url, &servers::unique_namespace("t"));
        match MongoStore::connect(&config).await {
            Ok(store) => MongoHarness { store },
            Err(e) => servers::unreachable(server, url, &e),
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
