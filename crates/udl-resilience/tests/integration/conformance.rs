//! The conformance suite through the resilience layer, on a real store (MongoDB via FerretDB):
//! every policy on, every behaviour unchanged.

use std::sync::Arc;

use udl_config::StoreConfig as _;
use udl_mongo::MongoStore;
use udl_resilience::{ResilienceConfig, ResilientStore};
use udl_testkit::{servers, Harness, Subject};

struct LayeredMongo {
    store: MongoStore,
}

async fn layered() -> LayeredMongo {
    let vars = [
        ("UDL__MONGO__URL", servers::mongo_url()),
        ("UDL__MONGO__DATABASE", servers::unique_namespace("r")),
    ];
    let config = udl_mongo::MongoConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .expect("test config is valid");
    match MongoStore::connect(&config).await {
        Ok(store) => LayeredMongo { store },
        Err(e) => servers::unreachable("FerretDB/MongoDB", &servers::mongo_url(), &e),
    }
}

impl Harness for LayeredMongo {
    fn subject(&self) -> Subject {
        Subject {
            store: ResilientStore::new(
                self.store.records(),
                ResilienceConfig::default(),
                Arc::new(udl_metrics::Metrics::new()),
            ),
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

udl_testkit::conformance_suite!(layered);
