//! Multi-document transactions on the real MongoDB replica set: across two collections they
//! commit and abort as told (an `Err`, a panic), `create_many` inside one is all or nothing, a
//! write conflict runs the transaction again, a call the server does not answer in time fails
//! as `Timeout` and aborts it, and FerretDB, which has none, refuses them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::FutureExt as _;
use udl_core::{AccessContext, Changes, Error, ErrorKind, Purpose, Repository, Role};
use udl_derive::Entity;
use udl_testkit::fixtures::{note, Note};
use udl_testkit::Harness;
use uuid::Uuid;

use crate::common::MongoHarness;

/// A second collection for the transactions to span.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "tx_receipts")]
struct Receipt {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(internal)]
    note_id: Uuid,
    #[udl(internal)]
    amount: i64,
}

fn ctx() -> AccessContext {
    AccessContext::new("mongo-tx-test", Role::Service, Purpose::Operations).unwrap()
}

fn receipt(note: &Note) -> Receipt {
    Receipt {
        id: Uuid::new_v4(),
        note_id: note.id,
        amount: 42,
    }
}

async fn present(h: &MongoHarness, note: &Note, receipt: &Receipt) -> (bool, bool) {
    let notes: Repository<Note> = h.store.repository().unwrap();
    let receipts: Repository<Receipt> = h.store.repository().unwrap();
    (
        notes.get(&ctx(), &note.id).await.unwrap().is_some(),
        receipts.get(&ctx(), &receipt.id).await.unwrap().is_some(),
    )
}

#[tokio::test]
async fn a_transaction_across_two_collections_commits_and_aborts_as_told() {
    let h = MongoHarness::new().await;
    // Collections are made outside transactions first (as migrations would).
    let (seed, seed_receipt) = (note(0), receipt(&note(0)));
    h.store
        .repository::<Note>()
        .unwrap()
        .create(&ctx(), seed)
        .await
        .unwrap();
    h.store
        .repository::<Receipt>()
        .unwrap()
        .create(&ctx(), seed_receipt)
        .await
        .unwrap();

    let (kept, kept_receipt) = (note(1), receipt(&note(1)));
    let outside: Repository<Note> = h.store.repository().unwrap();
    let (n, r) = (kept.clone(), kept_receipt.clone());
    h.store
        .transaction(|tx| {
            let (n, r, outside) = (n.clone(), r.clone(), outside.clone());
            async move {
                let notes = tx.unaudited_repository::<Note>()?;
                notes.create(&ctx(), n.clone()).await?;
                tx.unaudited_repository::<Receipt>()?
                    .create(&ctx(), r)
                    .await?;
                assert!(notes.get(&ctx(), &n.id).await?.is_some(), "seen inside");
                assert!(
                    outside.get(&ctx(), &n.id).await?.is_none(),
                    "not seen outside before the commit"
                );
                Ok(())
            }
        })
        .await
        .unwrap();
    assert_eq!(present(&h, &kept, &kept_receipt).await, (true, true));

    let (refused, refused_receipt) = (note(2), receipt(&note(2)));
    let (n, r) = (refused.clone(), refused_receipt.clone());
    let err = h
        .store
        .transaction(|tx| {
            let (n, r) = (n.clone(), r.clone());
            async move {
                tx.unaudited_repository::<Note>()?.create(&ctx(), n).await?;
                tx.unaudited_repository::<Receipt>()?
                    .create(&ctx(), r)
                    .await?;
                Err::<(), _>(Error::new(ErrorKind::Conflict, "fake business rule"))
            }
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("fake business rule"), "{err}");
    assert_eq!(
        present(&h, &refused, &refused_receipt).await,
        (false, false)
    );

    let (panicked, panicked_receipt) = (note(3), receipt(&note(3)));
    let (n, r) = (panicked.clone(), panicked_receipt.clone());
    let caught = std::panic::AssertUnwindSafe(h.store.transaction(|tx| {
        let (n, r) = (n.clone(), r.clone());
        async move {
            tx.unaudited_repository::<Note>()?.create(&ctx(), n).await?;
            tx.unaudited_repository::<Receipt>()?
                .create(&ctx(), r)
                .await?;
            let fail_here = true;
            if fail_here {
                panic!("fake failure mid-transaction");
            }
            Ok(())
        }
    }))
    .catch_unwind()
    .await;
    assert!(caught.is_err(), "the panic continues");
    assert_eq!(
        present(&h, &panicked, &panicked_receipt).await,
        (false, false)
    );
    h.teardown().await;
}

#[tokio::test]
async fn create_many_inside_a_transaction_is_all_or_nothing() {
    let h = MongoHarness::new().await;
    h.store
        .repository::<Note>()
        .unwrap()
        .create(&ctx(), note(0))
        .await
        .unwrap();
    let mut batch: Vec<Note> = (1..=5).map(note).collect();
    batch[3].id = batch[1].id; // a duplicate key in the middle
    let ids: Vec<Uuid> = batch.iter().map(|n| n.id).collect();
    let err = h
        .store
        .transaction(|tx| {
            let batch = batch.clone();
            async move {
                tx.unaudited_repository::<Note>()?
                    .create_many(&ctx(), batch)
                    .await?;
                Ok(())
            }
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let notes: Repository<Note> = h.store.repository().unwrap();
    for id in ids {
        assert!(
            notes.get(&ctx(), &id).await.unwrap().is_none(),
            "nothing kept"
        );
    }
    h.teardown().await;
}

#[tokio::test]
async fn a_write_conflict_runs_the_transaction_again_until_it_commits() {
    let h = MongoHarness::new().await;
    let shared = note(0);
    let notes: Repository<Note> = h.store.repository().unwrap();
    notes.create(&ctx(), shared.clone()).await.unwrap();
    let first_wrote = Arc::new(tokio::sync::Notify::new());
    let second_tried = Arc::new(tokio::sync::Notify::new());
    let second_runs = Arc::new(AtomicUsize::new(0));

    let first = {
        let (store, id) = (h.store.clone(), shared.id);
        let (wrote, tried) = (Arc::clone(&first_wrote), Arc::clone(&second_tried));
        async move {
            store
                .transaction(|tx| {
                    let (wrote, tried) = (Arc::clone(&wrote), Arc::clone(&tried));
                    async move {
                        let notes = tx.unaudited_repository::<Note>()?;
                        notes
                            .update(&ctx(), &id, Changes::new().set("title", "fake first"))
                            .await?;
                        wrote.notify_one();
                        // Commit only once the other transaction has met this one's write.
                        tried.notified().await;
                        Ok(())
                    }
                })
                .await
        }
    };
    let second = {
        let (store, id, runs) = (h.store.clone(), shared.id, Arc::clone(&second_runs));
        let (wrote, tried) = (Arc::clone(&first_wrote), Arc::clone(&second_tried));
        async move {
            store
                .transaction(|tx| {
                    let (wrote, tried, runs) =
                        (Arc::clone(&wrote), Arc::clone(&tried), Arc::clone(&runs));
                    async move {
                        if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                            wrote.notified().await;
                        }
                        let notes = tx.unaudited_repository::<Note>()?;
                        let outcome = notes
                            .update(&ctx(), &id, Changes::new().set("body", "fake second"))
                            .await;
                        if runs.load(Ordering::SeqCst) == 1 {
                            tried.notify_one();
                        }
                        outcome?;
                        Ok(())
                    }
                })
                .await
        }
    };
    let (a, b) = tokio::join!(first, second);
    a.unwrap();
    b.unwrap();
    assert!(
        second_runs.load(Ordering::SeqCst) >= 2,
        "the conflicting transaction ran again"
    );
    let stored = notes.get(&ctx(), &shared.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.title.as_str(), stored.body.as_str()),
        ("fake first", "fake second"),
        "both committed"
    );
    h.teardown().await;
}

#[tokio::test]
async fn a_phi_entity_has_no_raw_repository_inside_a_transaction() {
    let h = MongoHarness::new().await;
    let err = h
        .store
        .transaction(|tx| async move {
            tx.unaudited_repository::<udl_mongo::models::Conversation>()
                .map(drop)
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("conversations"), "{err}");
    h.teardown().await;
}

#[tokio::test]
async fn ferretdb_refuses_transactions() {
    let h = MongoHarness::ferretdb().await;
    let err = h
        .store
        .transaction(|_tx| async { Ok(()) })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    h.teardown().await;
}

#[tokio::test]
async fn a_call_inside_a_transaction_that_gets_no_answer_times_out_and_the_transaction_aborts() {
    // MongoDB reached through a proxy that can be made slow; one call may take 300 ms.
    let proxy = udl_testkit::toxiproxy::Proxy::to("127.0.0.1:27017");
    let database = udl_testkit::servers::unique_namespace("txslow");
    let vars = [
        (
            "UDL__MONGO__URL",
            format!("mongodb://{}/?directConnection=true", proxy.listen()),
        ),
        ("UDL__MONGO__DATABASE", database),
        ("UDL__MONGO__POOL__MIN", "0".to_owned()),
        ("UDL__MONGO__RESILIENCE__TIMEOUT", "300ms".to_owned()),
    ];
    let config = <udl_mongo::MongoConfig as udl_config::StoreConfig>::from_sources(
        None,
        vars.map(|(k, v)| (k.to_owned(), v)),
    )
    .unwrap();
    let store = udl_mongo::MongoStore::connect(&config).await.unwrap();
    let written = note(1);
    let outcome = store
        .transaction(|tx| {
            let (written, proxy) = (written.clone(), &proxy);
            async move {
                let notes: Repository<Note> = tx.unaudited_repository()?;
                notes.create(&ctx(), written.clone()).await?;
                // From here on every answer takes two seconds, far past the call's 300 ms.
                proxy.add_latency(2_000);
                notes.get(&ctx(), &written.id).await
            }
        })
        .await;
    proxy.remove_latency();
    let err = outcome.expect_err("the slow read is cut off, not waited for");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    let notes: Repository<Note> = store.repository().unwrap();
    assert!(
        notes.get(&ctx(), &written.id).await.unwrap().is_none(),
        "the transaction was aborted: its insert is gone"
    );
    store.database().drop().await.unwrap();
}
