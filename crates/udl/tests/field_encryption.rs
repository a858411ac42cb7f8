//! Field encryption and blind indexes through `DataLayer` on the real servers: entities round
//! trip on PostgreSQL, MongoDB and ScyllaDB and through the Redis cache; equality filters find
//! encrypted fields by their blind index; and read back with each store's own driver, no
//! canary value appears in the clear anywhere (rows, documents, CQL rows, Redis keys and
//! values, logs, metrics).

use udl::{field, Changes, ErrorKind, Filter, Page, SortKey, StoreKind};

mod common;
use common::*;

#[tokio::test]
async fn encrypted_entities_round_trip_and_are_found_by_blind_index_on_every_store() {
    let w = world(true).await;
    let canary = canary();
    for store in [StoreKind::Postgres, StoreKind::Mongo, StoreKind::Scylla] {
        let repo = w.repo(store);
        let (a, b) = (profile(&canary, 1), profile(&canary, 2));
        repo.create(&ctx(), a.clone()).await.unwrap();
        repo.create(&ctx(), b.clone()).await.unwrap();
        assert!(
            repo.get(&ctx(), &a.id).await.unwrap() == Some(a.clone()),
            "{store}"
        );
        assert!(
            repo.get(&ctx(), &b.id).await.unwrap() == Some(b.clone()),
            "{store}"
        );

        let changes = Changes::new()
            .set("diagnosis", format!("{canary} revised"))
            .set("notes", Option::<String>::None)
            .set("email", format!("{canary}.moved@example.test"));
        assert!(
            repo.update(&ctx(), &b.id, changes).await.unwrap(),
            "{store}"
        );
        let updated = repo.get(&ctx(), &b.id).await.unwrap().unwrap();
        assert_eq!(updated.diagnosis, format!("{canary} revised"), "{store}");
        assert_eq!(updated.notes, None);
        assert_eq!(updated.email, format!("{canary}.moved@example.test"));

        if store == StoreKind::Scylla {
            // ScyllaDB serves only key lookups, and the blind index is not a key.
            let by_email = field("email").eq(a.email.clone());
            let err = repo.count(&ctx(), &by_email).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
            continue;
        }
        // Equality goes through the blind index, which ignores case and surrounding spaces.
        let shouted = format!("  {}  ", a.email.to_uppercase());
        let found = repo
            .list(&ctx(), &field("email").eq(shouted), &[], Page::first(10))
            .await
            .unwrap();
        assert!(found.items == vec![a.clone()], "{store}");
        let either = field("email").is_in([a.email.clone(), updated.email.clone()]);
        assert_eq!(repo.count(&ctx(), &either).await.unwrap(), 2, "{store}");
        let not_a = field("email").ne(a.email.clone());
        assert_eq!(repo.count(&ctx(), &not_a).await.unwrap(), 1, "{store}");
        assert_eq!(
            repo.count(&ctx(), &field("notes").is_null()).await.unwrap(),
            2
        );

        for refused in [
            field("email").starts_with(canary.clone()),
            field("diagnosis").eq(a.diagnosis.clone()),
            Filter::Not(Box::new(field("born_on").gt(a.born_on))),
        ] {
            let err = repo.count(&ctx(), &refused).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{store}: {err}");
            assert!(err.to_string().contains("encrypted"), "{err}");
            assert!(!err.to_string().contains(&canary), "{err}");
        }
        let err = repo
            .list(
                &ctx(),
                &Filter::All,
                &[SortKey::asc("email")],
                Page::first(10),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        // The unique index moved to the blind index: the same e-mail, another case, conflicts.
        let twin = PatientProfile {
            email: a.email.to_uppercase(),
            ..profile(&canary, 3)
        };
        if store == StoreKind::Postgres {
            let err = repo.create(&ctx(), twin).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
            assert!(!err.to_string().contains(&canary), "{err}");
        }
    }
    w.finish().await;
}

/// Every value of every string, hash, list, set and sorted set under the test's prefix.
async fn redis_contents(w: &World) -> Vec<u8> {
    let mut redis = w.data.redis().unwrap().connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", w.namespace))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the cache wrote to Redis");
    let mut out = Vec::new();
    for key in keys {
        out.extend_from_slice(key.as_bytes());
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        let command = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&key).clone(),
            "hash" => redis::cmd("HGETALL").arg(&key).clone(),
            "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
            "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
            "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).clone(),
            other => panic!("unexpected Redis type {other} at {key}"),
        };
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![command.query_async(&mut redis).await.unwrap()],
            _ => command.query_async(&mut redis).await.unwrap(),
        };
        values.iter().for_each(|v| out.extend_from_slice(v));
    }
    out
}

fn assert_absent(canary: &str, haystack: &[u8], place: &str) {
    let needles = [canary.as_bytes().to_vec(), hex::encode(canary).into_bytes()];
    for needle in needles {
        assert!(
            !haystack
                .windows(needle.len())
                .any(|w| w == needle.as_slice()),
            "canary in the clear in {place}"
        );
    }
}

#[tokio::test]
async fn no_canary_is_stored_logged_or_measured_in_the_clear() {
    udl_testkit::logs::capture();
    let w = world(true).await;
    let canary = canary();
    for store in [StoreKind::Postgres, StoreKind::Mongo, StoreKind::Scylla] {
        let repo = w.repo(store);
        let p = profile(&canary, 2);
        repo.create(&ctx(), p.clone()).await.unwrap();
        assert!(repo.get(&ctx(), &p.id).await.unwrap() == Some(p));
    }
    let (cache, cached) = w.cached_repo().await;
    let p = profile(&canary, 4);
    cached.create(&ctx(), p.clone()).await.unwrap();
    for _ in 0..2 {
        assert!(cached.get(&ctx(), &p.id).await.unwrap() == Some(p.clone()));
    }
    let by_email = field("email").eq(p.email.clone());
    for _ in 0..2 {
        let page = cached
            .list(&ctx(), &by_email, &[], Page::first(5))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
    }
    let stats = cache.stats();
    assert_eq!(stats.loads, 1, "the sealed entity was cached: {stats:?}");
    assert!(stats.l1_hits >= 1, "{stats:?}");

    let pg = w.data.postgres().unwrap();
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(p)::text FROM patient_profiles p")
            .fetch_all(pg.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    // Every table of the schema: the profiles, the audit log, the data keys, ...
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_all(pg.pool())
    .await
    .unwrap();
    assert!(
        tables.iter().any(|t| t.starts_with("phi_access_log_y")),
        "{tables:?}"
    );
    for table in tables {
        let sql =
            format!("SELECT coalesce(string_agg(row_to_json(t)::text, ''), '') FROM \"{table}\" t");
        let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pg.pool())
            .await
            .unwrap();
        assert_absent(
            &canary,
            rows.as_bytes(),
            &format!("PostgreSQL table {table}"),
        );
    }

    let docs = w.documents("patient_profiles").await;
    assert_eq!(docs.len(), 1);
    let mut raw = Vec::new();
    for doc in &docs {
        doc.to_writer(&mut raw).unwrap();
    }
    assert_absent(&canary, &raw, "MongoDB");

    let scylla = w.data.scylla().unwrap();
    let cql = format!(
        "SELECT JSON * FROM \"{}\".patient_profiles",
        scylla.keyspace()
    );
    let rows = scylla
        .session()
        .get_session()
        .query_unpaged(cql, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let json: Vec<(String,)> = rows
        .rows::<(String,)>()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(json.len(), 1);
    let json: String = json.into_iter().map(|(j,)| j).collect();
    assert!(
        json.contains("0x"),
        "blobs are rendered as hex: {}",
        json.len()
    );
    assert_absent(&canary, json.as_bytes(), "ScyllaDB");

    assert_absent(&canary, &redis_contents(&w).await, "Redis");
    let logs = udl_testkit::logs::captured();
    assert!(logs.contains("udl.store"), "operations were traced");
    assert_absent(&canary, logs.as_bytes(), "the logs");
    assert_absent(&canary, w.data.metrics().render().as_bytes(), "the metrics");
    w.finish().await;
}

#[tokio::test]
async fn a_ciphertext_moved_or_altered_in_the_store_does_not_open() {
    let w = world(true).await;
    let canary = canary();
    let repo = w.repo(StoreKind::Postgres);
    let (a, b) = (profile(&canary, 1), profile(&canary, 2));
    repo.create(&ctx(), a.clone()).await.unwrap();
    repo.create(&ctx(), b.clone()).await.unwrap();
    let pg = w.data.postgres().unwrap();
    sqlx::query("UPDATE patient_profiles SET diagnosis = (SELECT diagnosis FROM patient_profiles WHERE id = $1) WHERE id = $2")
        .bind(a.id)
        .bind(b.id)
        .execute(pg.pool())
        .await
        .unwrap();
    let err = repo.get(&ctx(), &b.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
    assert!(!err.to_string().contains(&canary), "{err}");

    sqlx::query("UPDATE patient_profiles SET email = set_byte(email, 30, get_byte(email, 30) # 1) WHERE id = $1")
        .bind(a.id)
        .execute(pg.pool())
        .await
        .unwrap();
    let err = repo.get(&ctx(), &a.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
    w.finish().await;
}

#[tokio::test]
async fn without_privacy_an_entity_with_encrypted_fields_is_refused() {
    let w = world(false).await;
    let err = w
        .data
        .repository::<PatientProfile>(StoreKind::Postgres)
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("[privacy]"), "{err}");
    w.finish().await;
}
