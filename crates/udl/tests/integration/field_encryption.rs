//! Field encryption and blind indexes through `DataLayer` on the real servers: entities round
//! trip on PostgreSQL, MongoDB and ScyllaDB and through the Redis cache; equality filters find
//! encrypted fields by their blind index; and read back with each store's own driver, no
//! canary value appears in the clear anywhere (rows, documents, CQL rows, Redis keys and
//! values, logs, metrics).

use udl::{field, Changes, ErrorKind, Filter, Page, SortKey, StoreKind};

use crate::common;
use common::*;

#[tokio::test]
async fn encrypted_entities_round_trip_and_are_found_by_blind_index_on_every_store() {
    let w = world(true).await;
    let canary = canary();
    for store in [StoreKind::POSTGRES, StoreKind::MONGO, StoreKind::SCYLLA] {
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

        if store == StoreKind::SCYLLA {
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
        if store == StoreKind::POSTGRES {
            let err = repo.create(&ctx(), twin).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
            assert!(!err.to_string().contains(&canary), "{err}");
        }
    }
    w.finish().await;
}

#[tokio::test]
async fn no_canary_is_stored_logged_or_measured_in_the_clear() {
    udl_testkit::logs::capture();
    let w = world(true).await;
    let canary = canary();
    for store in [StoreKind::POSTGRES, StoreKind::MONGO, StoreKind::SCYLLA] {
        let repo = w.repo(store);
        let p = profile(&canary, 2);
        repo.create(&ctx(), p.clone()).await.unwrap();
        assert!(repo.get(&ctx(), &p.id).await.unwrap() == Some(p));
    }
    let cached = w.repo(StoreKind::POSTGRES);
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
    let stats = w.cache_stats();
    // Profiles declare a cache: the PostgreSQL profile of the loop above and this one were
    // each loaded once, then served sealed from the cache.
    assert_eq!(stats.loads, 2, "the sealed entity was cached: {stats:?}");
    assert!(stats.l1_hits >= 1, "{stats:?}");

    let pg = w.data.postgres().unwrap();
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(p)::text FROM patient_profiles p")
            .fetch_all(pg.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    assert_absent(
        &canary,
        w.postgres_contents().await.as_bytes(),
        "PostgreSQL",
    );
    assert_eq!(w.documents("patient_profiles").await.len(), 1);
    assert_absent(&canary, &w.mongo_contents().await, "MongoDB");
    let rows = w.scylla_contents().await;
    assert!(
        rows.contains("0x"),
        "blobs are rendered as hex: {}",
        rows.len()
    );
    assert_absent(&canary, rows.as_bytes(), "ScyllaDB");
    assert_absent(&canary, &w.redis_contents().await, "Redis");
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
    let repo = w.repo(StoreKind::POSTGRES);
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
        .repository_in::<PatientProfile>(StoreKind::POSTGRES)
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("[privacy]"), "{err}");
    w.finish().await;
}
