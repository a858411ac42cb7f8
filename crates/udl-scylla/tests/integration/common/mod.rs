//! ScyllaDB test helpers: a keyspace per test on the local node.

use udl_config::StoreConfig as _;
use udl_scylla::ScyllaConfig;
use udl_scylla::ScyllaStore;
use udl_testkit::servers;

/// The test configuration for `nodes` and `keyspace`.
pub fn config(nodes: &str, keyspace: &str) -> ScyllaConfig {
    config_with(nodes, keyspace, &[])
}

/// The test configuration plus `extra` variables.
pub fn config_with(nodes: &str, keyspace: &str, extra: &[(&str, &str)]) -> ScyllaConfig {
    let mut vars = vec![
        ("UDL__SCYLLA__NODES", nodes.to_owned()),
        ("UDL__SCYLLA__KEYSPACE", keyspace.to_owned()),
        // One local node: LOCAL_QUORUM of RF 1 is one replica anyway; ONE says so plainly.
        ("UDL__SCYLLA__CONSISTENCY", "one".to_owned()),
        ("UDL__SCYLLA__POOL__ACQUIRE_TIMEOUT", "3s".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    ScyllaConfig::from_sources(None, vars.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .expect("test config is valid")
}

/// A store on the local node with a keyspace of its own.
pub async fn store() -> ScyllaStore {
    store_with(&[]).await
}

/// A store with extra configuration and a keyspace of its own.
pub async fn store_with(extra: &[(&str, &str)]) -> ScyllaStore {
    let node = servers::scylla_node();
    match ScyllaStore::connect(&config_with(&node, &servers::unique_namespace("t"), extra)).await {
        Ok(s) => s,
        Err(e) => servers::unreachable("Cassandra", &node, &e),
    }
}

/// Removes the test's keyspace (a durable schema change: given a minute, whatever the store's
/// own request timeout).
pub async fn drop_keyspace(store: &ScyllaStore) {
    let cql = format!("DROP KEYSPACE IF EXISTS \"{}\"", store.keyspace());
    let mut statement = scylla::statement::unprepared::Statement::new(cql);
    statement.set_request_timeout(Some(std::time::Duration::from_secs(60)));
    store
        .session()
        .get_session()
        .query_unpaged(statement, ())
        .await
        .unwrap();
}

/// The conformance fixture: a keyspace of its own holding the `conformance_notes` table.
pub struct ScyllaHarness {
    pub store: ScyllaStore,
}

impl ScyllaHarness {
    /// A fresh keyspace with the table the suite's entity needs.
    pub async fn new() -> Self {
        use udl_core::Entity as _;
        let store = store().await;
        let table = udl_scylla::cql::create_table(udl_testkit::fixtures::Note::meta());
        udl_scylla::ScyllaMigrator::new(vec![udl_scylla::CqlMigration::new(
            1,
            "conformance",
            vec![table.into()],
        )])
        .expect("one migration")
        .up(&store)
        .await
        .expect("create the conformance table");
        ScyllaHarness { store }
    }
}

impl udl_testkit::Harness for ScyllaHarness {
    fn subject(&self) -> udl_testkit::Subject {
        udl_testkit::Subject {
            store: self.store.records(),
            refuses_nul_in_text: false,
        }
    }

    async fn teardown(self) {
        drop_keyspace(&self.store).await;
    }
}
