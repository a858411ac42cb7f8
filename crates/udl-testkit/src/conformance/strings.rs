//! Hostile, large and NUL-bearing text.

use super::prelude::*;

/// Hostile strings are stored, read back unchanged and matched by equality, as single
/// records and in bulk.
pub async fn hostile_strings_round_trip_and_match(s: Subject) {
    let r = repo(&s);
    let mut created = Vec::new();
    for (i, text) in hostile_strings().into_iter().enumerate() {
        let mut n = note(i as i64);
        n.title = text.clone();
        n.body = text.clone();
        n.attrs = serde_json::json!({ "text": text, "k'\"ey; --": [text] });
        r.create(&ctx(), n.clone()).await.expect("create hostile");
        created.push(n);
    }
    for n in &created {
        let back = r.get(&ctx(), &n.id).await.unwrap().unwrap();
        assert!(back == *n, "hostile value changed: {:?}", n.title);
        if s.store
            .capabilities()
            .supports(Capability::SecondaryFilters)
        {
            let found = ranks(&r, field("title").eq(n.title.as_str())).await;
            assert_eq!(found, vec![n.rank], "equality on {:?}", n.title);
        }
    }
    if s.store.capabilities().supports(Capability::BulkInsert) {
        let bulk: Vec<Note> = created
            .iter()
            .map(|n| Note {
                id: uuid::Uuid::new_v4(),
                rank: n.rank + 1000,
                ..n.clone()
            })
            .collect();
        r.create_many(&ctx(), bulk.clone())
            .await
            .expect("bulk hostile");
        for n in &bulk {
            assert!(
                r.get(&ctx(), &n.id).await.unwrap().unwrap() == *n,
                "bulk changed {:?}",
                n.title
            );
        }
    }
}

/// A 1 MB string is stored and read back unchanged.
pub async fn one_megabyte_string_round_trips(s: Subject) {
    let r = repo(&s);
    let mut n = note(1);
    n.body = "fake clinical note ✓ ".repeat((1 << 20) / 16);
    assert!(n.body.len() >= 1 << 20);
    r.create(&ctx(), n.clone()).await.unwrap();
    let back = r.get(&ctx(), &n.id).await.unwrap().unwrap();
    assert_eq!(back.body.len(), n.body.len());
    assert!(back == n);
}

/// A NUL character is either kept (stores that can hold it) or refused with `InvalidInput`
/// and nothing written, alone or in a batch.
pub async fn nul_in_text_is_refused_or_kept(s: Subject) {
    let r = repo(&s);
    let mut n = note(1);
    n.body = "before\0after".into();
    let single = r.create(&ctx(), n.clone()).await;
    let mut batch = notes(3);
    batch[1].title = "nul\0inside".into();
    let bulk = if s.store.capabilities().supports(Capability::BulkInsert) {
        Some(r.create_many(&ctx(), batch.clone()).await)
    } else {
        None
    };
    if s.refuses_nul_in_text {
        let err = single.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(!err.to_string().contains("before"), "{err}");
        if let Some(bulk) = bulk {
            assert_eq!(bulk.unwrap_err().kind(), ErrorKind::InvalidInput);
        }
        assert_eq!(
            r.count(&ctx(), &Filter::All).await.unwrap(),
            0,
            "nothing may be written"
        );
        let err = r
            .count(&ctx(), &field("title").eq("a\0b"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    } else {
        single.expect("store keeps NUL");
        assert!(r.get(&ctx(), &n.id).await.unwrap().unwrap() == n);
    }
}
