//! TLS to the local node (Cassandra serves TLS and plaintext on one port): with the test CA the
//! store connects and the node reports the connection as TLS; without it the node's
//! certificate is not trusted and nothing is sent.

use crate::common;

use udl_core::ErrorKind;
use udl_scylla::ScyllaStore;
use udl_testkit::servers;

#[tokio::test]
async fn the_store_talks_tls_to_a_verified_node_and_refuses_an_unverified_one() {
    let node = servers::scylla_node();
    let ca = servers::test_ca_cert().display().to_string();
    let verified = common::config_with(
        &node,
        &servers::unique_namespace("tls"),
        &[
            ("UDL__SCYLLA__TLS", "true"),
            ("UDL__SCYLLA__TLS_CA_CERT", &ca),
        ],
    );
    let store = match ScyllaStore::connect(&verified).await {
        Ok(s) => s,
        Err(e) => servers::unreachable("Cassandra over TLS", &node, &e),
    };
    let rows = store
        .session()
        .get_session()
        .query_unpaged(
            "SELECT ssl_enabled, ssl_protocol FROM system_views.clients",
            (),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let clients: Vec<(Option<bool>, Option<String>)> =
        rows.rows().unwrap().map(|r| r.unwrap()).collect();
    assert!(
        clients.iter().any(|(tls, protocol)| *tls == Some(true)
            && protocol.as_deref().is_some_and(|p| p.starts_with("TLSv1."))),
        "the node sees a TLS client: {clients:?}"
    );
    common::drop_keyspace(&store).await;

    let unverified = common::config_with(
        &node,
        &servers::unique_namespace("tls"),
        &[("UDL__SCYLLA__TLS", "true")],
    );
    let err = ScyllaStore::connect(&unverified)
        .await
        .err()
        .expect("a certificate from an unknown CA is refused");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}
