//! All-or-nothing bulk inserts.

use super::prelude::*;

/// `create_many` writes every record, or none when one of them conflicts.
pub async fn create_many_is_all_or_nothing(s: Subject) {
    let r = repo(&s);
    if !s.store.capabilities().supports(Capability::BulkInsert) {
        let err = r.create_many(&ctx(), notes(2)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        return;
    }
    let batch = notes(1000);
    assert_eq!(r.create_many(&ctx(), batch.clone()).await.unwrap(), 1000);
    assert_eq!(r.count(&ctx(), &Filter::All).await.unwrap(), 1000);
    assert!(r.get(&ctx(), &batch[999].id).await.unwrap().unwrap() == batch[999]);
    let mut clash = notes(50);
    clash[25].id = batch[0].id;
    let err = r.create_many(&ctx(), clash.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(
        r.count(&ctx(), &Filter::All).await.unwrap(),
        1000,
        "a failed batch writes nothing"
    );
    assert!(r.get(&ctx(), &clash[0].id).await.unwrap().is_none());
    assert_eq!(r.create_many(&ctx(), vec![]).await.unwrap(), 0);
}
