//! The local Cassandra and FerretDB answer the Rust drivers the later backends are built on.

use mongodb::bson::{doc, Document};
use scylla::client::session_builder::SessionBuilder;
use udl_testkit::servers;

#[tokio::test]
async fn cassandra_answers_cql_through_the_scylla_driver() {
    let node = servers::scylla_node();
    let session = match SessionBuilder::new().known_node(&node).build().await {
        Ok(s) => s,
        Err(e) => servers::unreachable("Cassandra", &node, &e),
    };
    let result = session
        .query_unpaged("SELECT release_version FROM system.local", &[])
        .await
        .expect("query system.local");
    let rows = result.into_rows_result().expect("rows");
    let (version,) = rows.single_row::<(String,)>().expect("one row");
    assert!(
        version.starts_with("5.0"),
        "expected Cassandra 5.0, got {version}"
    );
}

#[tokio::test]
async fn mongodb_is_the_writable_primary_of_a_replica_set() {
    let url = servers::mongo_url();
    let client = match mongodb::Client::with_uri_str(&url).await {
        Ok(c) => c,
        Err(e) => servers::unreachable("MongoDB", &url, &e),
    };
    let hello = match client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await
    {
        Ok(reply) => reply,
        Err(e) => servers::unreachable("MongoDB", &url, &e),
    };
    assert_eq!(
        hello.get_bool("isWritablePrimary").ok(),
        Some(true),
        "{hello}"
    );
    assert_eq!(hello.get_str("setName").ok(), Some("rs0"), "{hello}");
    let build = client
        .database("admin")
        .run_command(doc! {"buildInfo": 1})
        .await
        .unwrap();
    assert!(
        build.get_str("version").unwrap().starts_with("6.0"),
        "{build}"
    );
    answers_ping_insert_and_find("MongoDB", &url).await;
}

#[tokio::test]
async fn ferretdb_answers_ping_insert_and_find_through_the_mongodb_driver() {
    answers_ping_insert_and_find("FerretDB", &servers::ferretdb_url()).await;
}

async fn answers_ping_insert_and_find(server: &str, url: &str) {
    let client = match mongodb::Client::with_uri_str(url).await {
        Ok(c) => c,
        Err(e) => servers::unreachable(server, url, &e),
    };
    let db_name = servers::unique_namespace("smoke");
    let db = client.database(&db_name);
    let pong = match db.run_command(doc! {"ping": 1}).await {
        Ok(reply) => reply,
        Err(e) => servers::unreachable(server, url, &e),
    };
    assert_eq!(
        pong.get_f64("ok")
            .ok()
            .or(pong.get_i32("ok").ok().map(f64::from)),
        Some(1.0)
    );

    let notes = db.collection::<Document>("notes");
    notes
        .insert_one(doc! {"_id": "fake-1", "title": "smoke test", "n": 7})
        .await
        .expect("insert");
    let found = notes
        .find_one(doc! {"n": 7})
        .await
        .expect("find")
        .expect("inserted document is found");
    assert_eq!(found.get_str("title").unwrap(), "smoke test");
    db.drop().await.expect("drop test database");
}
