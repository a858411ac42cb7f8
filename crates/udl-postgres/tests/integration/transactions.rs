//! Closure-style transactions: commit on Ok, roll back on Err or panic.

use crate::common;

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt as _;
use udl_core::{AccessContext, Changes, ErrorKind, Filter, Purpose, Role};
use udl_testkit::fixtures::{note, Note};

fn ctx() -> AccessContext {
    AccessContext::new("tx-test", Role::Service, Purpose::Operations).unwrap()
}

async fn count(h: &common::PgHarness) -> u64 {
    h.store
        .repository::<Note>()
        .unwrap()
        .count(&ctx(), &Filter::All)
        .await
        .unwrap()
}

#[tokio::test]
async fn ok_commits_every_write() {
    let h = common::PgHarness::new().await;
    let (a, b) = (note(1), note(2));
    let ids = h
        .store
        .transaction(|tx| {
            let (a, b) = (a.clone(), b.clone());
            async move {
                let notes = tx.repository::<Note>()?;
                notes.create(&ctx(), a).await?;
                notes.create(&ctx(), b.clone()).await?;
                notes
                    .update(&ctx(), &b.id, Changes::new().set("title", "in tx"))
                    .await?;
                Ok(vec![b.id])
            }
        })
        .await
        .expect("transaction commits");
    assert_eq!(ids.len(), 1);
    assert_eq!(count(&h).await, 2);
    let notes = h.store.repository::<Note>().unwrap();
    assert_eq!(
        notes.get(&ctx(), &b.id).await.unwrap().unwrap().title,
        "in tx"
    );
    udl_testkit::Harness::teardown(h).await;
}

#[tokio::test]
async fn err_rolls_back_every_write() {
    let h = common::PgHarness::new().await;
    let first = note(1);
    let err = h
        .store
        .transaction(|tx| {
            let first = first.clone();
            async move {
                let notes = tx.repository::<Note>()?;
                notes.create(&ctx(), first.clone()).await?;
                // Same id again: the second write fails and the whole transaction goes.
                notes.create(&ctx(), first).await?;
                Ok(())
            }
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(count(&h).await, 0);
    udl_testkit::Harness::teardown(h).await;
}

#[tokio::test]
async fn panic_rolls_back_and_propagates() {
    let h = common::PgHarness::new().await;
    let outcome = AssertUnwindSafe(h.store.transaction(|tx| async move {
        let notes = tx.repository::<Note>()?;
        notes.create(&ctx(), note(1)).await?;
        if notes.exists(&ctx(), &uuid::Uuid::nil()).await.is_ok() {
            panic!("fake failure inside the transaction");
        }
        Ok(())
    }))
    .catch_unwind()
    .await;
    assert!(outcome.is_err(), "the panic continues to the caller");
    assert_eq!(
        count(&h).await,
        0,
        "the panicking transaction was rolled back"
    );
    udl_testkit::Harness::teardown(h).await;
}

#[tokio::test]
async fn handle_used_after_the_transaction_is_refused() {
    let h = common::PgHarness::new().await;
    let leaked = h
        .store
        .transaction(|tx| async move { Ok(tx) })
        .await
        .unwrap();
    let notes = leaked.repository::<Note>().unwrap();
    let err = notes.create(&ctx(), note(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("transaction already finished"),
        "{err}"
    );
    assert_eq!(count(&h).await, 0);
    udl_testkit::Harness::teardown(h).await;
}
