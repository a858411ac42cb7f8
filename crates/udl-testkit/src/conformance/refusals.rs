//! Bad input and what a store cannot do are refused before anything is sent.

use super::prelude::*;

/// Unknown field names in filters, sorts and updates are `InvalidInput` and never echoed.
pub async fn unknown_fields_are_invalid_input(s: Subject) {
    let r = repo(&s);
    let n = note(1);
    r.create(&ctx(), n.clone()).await.unwrap();
    let hostile = "title\" = '' OR 1=1; --";
    let errors = [
        r.count(&ctx(), &field(hostile).eq("x")).await.unwrap_err(),
        r.list(
            &ctx(),
            &Filter::All,
            &[SortKey::asc(hostile)],
            Page::first(5),
        )
        .await
        .unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new().set(hostile, "x"))
            .await
            .unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new().set("$set", "x"))
            .await
            .unwrap_err(),
        r.count(&ctx(), &field("attrs.nested").eq("x"))
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(!err.to_string().contains("1=1"), "{err}");
    }
    assert!(r.get(&ctx(), &n.id).await.unwrap().unwrap() == n);
}

/// Values of the wrong kind, updates of the id or version, bad page sizes, NaN vector
/// components and filters on vectors are refused.
pub async fn wrong_value_kind_is_invalid_input(s: Subject) {
    let r = repo(&s);
    let n = note(1);
    r.create(&ctx(), n.clone()).await.unwrap();
    let errors = [
        r.count(&ctx(), &field("rank").eq("one")).await.unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new().set("active", 1_i64))
            .await
            .unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new().set("title", Value::Null))
            .await
            .unwrap_err(),
        r.update(
            &ctx(),
            &n.id,
            Changes::new().set("id", uuid::Uuid::new_v4()),
        )
        .await
        .unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new().set("version", 9_i64))
            .await
            .unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new()).await.unwrap_err(),
        r.list(&ctx(), &Filter::All, &[], Page::first(0))
            .await
            .unwrap_err(),
        r.list(&ctx(), &Filter::All, &[], Page::first(1_000_000))
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    assert!(r.get(&ctx(), &n.id).await.unwrap().unwrap() == n);
    let mut nan = note(2);
    nan.embedding = Some(vec![0.5, f32::NAN]);
    let err = r.create(&ctx(), nan.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        r.get(&ctx(), &nan.id).await.unwrap().is_none(),
        "nothing stored"
    );
    let err = r
        .count(&ctx(), &field("embedding").eq(vec![0.5_f32]))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "vectors are not filterable"
    );
}

/// Operations outside the store's capabilities are `Unsupported`, naming store and operation;
/// operations inside them work.
pub async fn capability_refusals_name_store_and_operation(s: Subject) {
    let r = repo(&s);
    let caps = s.store.capabilities();
    let n = note(1);
    let ttl = r
        .create_with_ttl(&ctx(), n.clone(), Duration::from_secs(3600))
        .await;
    if caps.supports(Capability::Ttl) {
        ttl.expect("TTL insert on a store that declares TTL");
        assert!(r.exists(&ctx(), &n.id).await.unwrap());
    } else {
        let err = ttl.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        let text = err.to_string();
        assert!(
            text.contains(s.store.kind().name()) && text.contains("create_with_ttl"),
            "{text}"
        );
        assert!(
            !r.exists(&ctx(), &n.id).await.unwrap(),
            "refused insert must write nothing"
        );
    }
    if !caps.supports(Capability::VectorSearch) {
        let err = s
            .store
            .nearest(&ctx(), Note::meta(), "score", &[0.5], 3, &Filter::All)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("nearest"), "{err}");
    }
    assert_ne!(
        s.store.kind(),
        StoreKind::MEMORY,
        "conformance must run on a real store"
    );
}
