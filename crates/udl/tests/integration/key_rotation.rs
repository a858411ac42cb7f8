//! Key rotation on the real servers: after a new data key version, re-encryption seals every
//! old value again with it, in batches, and a second run finds nothing left to do; until it has
//! run, the old version is still needed to read, and afterwards it no longer is.

use std::sync::Arc;

use udl::privacy::{
    load_keys, reencrypt, rotate, BlindIndex, EncryptedStore, FieldCipher, FieldKeys, KeyPurpose,
    LocalKeyRing,
};
use udl::{Entity, ErrorKind, Filter, Page, Query, Repository, SortKey, StoreKind, Value};

use crate::common;
use common::*;

/// Field keys holding only the newest encryption key: what a process has once the old
/// version is retired.
async fn newest_only(w: &World, ring: &LocalKeyRing) -> Arc<FieldKeys> {
    let pg = w.data.postgres().unwrap();
    let mut versions = load_keys(pg, ring, KeyPurpose::Encryption).await.unwrap();
    let newest = versions.pop().unwrap();
    let index = load_keys(pg, ring, KeyPurpose::BlindIndex).await.unwrap();
    Arc::new(FieldKeys::new(
        FieldCipher::new([newest]).unwrap(),
        BlindIndex::new(&index[0].1),
    ))
}

/// The key version of every encrypted value stored for `store`.
async fn versions(w: &World, store: StoreKind) -> Vec<u32> {
    let form = udl::privacy::stored_form(PatientProfile::meta()).unwrap();
    let query = Query {
        filter: Filter::All,
        sort: vec![SortKey::asc("id")],
        limit: 1000,
        offset: 0,
    };
    let ctx = udl::AccessContext::system("rotation-test");
    let stored = w
        .data
        .unaudited_records(store)
        .unwrap()
        .list(&ctx, form, &query)
        .await
        .unwrap();
    let mut out = Vec::new();
    for record in stored {
        for field in ["email", "diagnosis", "born_on"] {
            let Some(Value::Bytes(sealed)) = record.get(field) else {
                panic!("{field} is stored sealed")
            };
            out.push(FieldCipher::version_of(sealed).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn reencryption_moves_every_value_to_the_newest_key_and_can_run_again() {
    let w = world(true).await;
    let canary = canary();
    let ring = LocalKeyRing::parse(&w.key_ring).unwrap();
    let pg = w.data.postgres().unwrap();
    for store in [StoreKind::POSTGRES, StoreKind::MONGO] {
        let repo = w.repo(store);
        for n in 0..25 {
            repo.create(&ctx(), profile(&canary, n)).await.unwrap();
        }
        assert!(versions(&w, store).await.iter().all(|v| *v == 1));
    }
    assert_eq!(rotate(pg, &ring, KeyPurpose::Encryption).await.unwrap(), 2);
    let provider = Arc::new(LocalKeyRing::parse(&w.key_ring).unwrap());
    let both = Arc::new(FieldKeys::load(pg, provider).await.unwrap());
    let newest = newest_only(&w, &ring).await;

    for store in [StoreKind::POSTGRES, StoreKind::MONGO] {
        let records = w.data.unaudited_records(store).unwrap();
        let retired: Repository<PatientProfile> =
            Repository::unaudited(EncryptedStore::new(records.clone(), newest.clone())).unwrap();
        let err = retired
            .list(&ctx(), &Filter::All, &[], Page::first(5))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Config,
            "version 1 is still needed: {err}"
        );

        let mut seen = Vec::new();
        let done = reencrypt(&records, &both, PatientProfile::meta(), 10, |p| {
            seen.push(p)
        })
        .await
        .unwrap();
        assert_eq!(
            (done.scanned, done.resealed, done.skipped),
            (25, 25, 0),
            "{store}"
        );
        assert_eq!(
            seen.iter().map(|p| p.scanned).collect::<Vec<_>>(),
            [10, 20, 25]
        );
        assert!(versions(&w, store).await.iter().all(|v| *v == 2), "{store}");

        let again = reencrypt(&records, &both, PatientProfile::meta(), 10, |_| {})
            .await
            .unwrap();
        assert_eq!(
            (again.scanned, again.resealed),
            (25, 0),
            "a second run has nothing to do"
        );

        let all = retired
            .list(&ctx(), &Filter::All, &[], Page::first(100))
            .await
            .unwrap();
        assert_eq!(all.items.len(), 25);
        assert!(all.items.iter().all(|p| p.diagnosis.starts_with(&canary)));

        // The data layer loaded its keys before the rotation: reading values sealed under
        // the new version loads them again, and its new values then use that version.
        let repo = w.repo(store);
        let read = repo
            .list(&ctx(), &Filter::All, &[], Page::first(100))
            .await
            .unwrap();
        assert_eq!(read.items.len(), 25, "{store}");
        repo.create(&ctx(), profile(&canary, 26)).await.unwrap();
        assert_eq!(versions(&w, store).await, vec![2; 26 * 3], "{store}");
    }
    w.finish().await;
}
