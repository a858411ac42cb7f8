//! The chat archive on the real ScyllaDB, through the data layer: newest first, paged by
//! cursor within a month partition, kept for the configured retention, texts sealed.

use crate::common;

use chrono::{TimeZone, Utc};
use common::{ctx, world};
use udl::scylla::models::{month_of, ArchiveRole, ArchivedMessage};
use uuid::Uuid;

#[tokio::test]
async fn a_month_reads_newest_first_across_many_pages() {
    let w = world(true).await;
    let store = w.data.scylla().unwrap();
    let archive = w.data.chat_archive().unwrap();
    let conversation = Uuid::new_v4();
    // 230 messages from Nov 30 22:00, a minute apart: 120 in November, 110 in December,
    // two of them in the same millisecond.
    let start = Utc.with_ymd_and_hms(2026, 11, 30, 22, 0, 0).unwrap();
    let mut sent = Vec::new();
    for i in 0..230 {
        let at = start + chrono::Duration::minutes(i);
        let text = format!("fake message {i}");
        sent.push(ArchivedMessage::new(
            conversation,
            at,
            ArchiveRole::Patient,
            text,
        ));
    }
    let twin = ArchivedMessage::new(
        conversation,
        start,
        ArchiveRole::Assistant,
        "fake twin".into(),
    );
    sent.push(twin);
    for m in &sent {
        archive.append(&ctx(), m.clone()).await.unwrap();
    }
    archive
        .append(
            &ctx(),
            ArchivedMessage::new(Uuid::new_v4(), start, ArchiveRole::System, "other".into()),
        )
        .await
        .unwrap();

    let mut november: Vec<ArchivedMessage> = sent
        .iter()
        .filter(|m| m.month == "2026-11")
        .cloned()
        .collect();
    november.sort_by_key(|m| std::cmp::Reverse((m.sent_at, m.id)));
    assert_eq!(november.len(), 121);

    let mut walked = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = archive
            .page(&ctx(), conversation, "2026-11", 25, cursor)
            .await
            .unwrap();
        pages += 1;
        walked.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert!(
        walked == november,
        "every November message once, newest first"
    );
    let december = archive
        .page(
            &ctx(),
            conversation,
            &month_of(start + chrono::Duration::days(1)),
            500,
            None,
        )
        .await
        .unwrap();
    assert_eq!(december.items.len(), 110);

    // Retention is a TTL on the row; the stored text is ciphertext; the text never shows in
    // Debug output.
    let cql = format!(
        "SELECT TTL(text), text FROM \"{}\".chat_archive_sealed \
         WHERE conversation_id = ? AND month = '2026-11' LIMIT 1",
        store.keyspace()
    );
    let rows = store
        .session()
        .execute_unpaged(cql.as_str(), (conversation,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (ttl, stored) = rows.single_row::<(Option<i32>, Vec<u8>)>().unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains("fake message"),
        "the archived text is stored sealed"
    );
    let thirty_days = 30 * 86_400;
    assert!(
        ttl.is_some_and(|t| t <= thirty_days && t > thirty_days - 600),
        "{ttl:?}"
    );
    assert!(!format!("{:?}", sent[0]).contains("fake message"));

    let wrong_month = ArchivedMessage {
        month: "2026-01".into(),
        ..sent[0].clone()
    };
    let err = archive.append(&ctx(), wrong_month).await.unwrap_err();
    assert_eq!(err.kind(), udl::ErrorKind::InvalidInput);
    w.finish().await;
}

#[tokio::test]
async fn without_privacy_the_archive_is_refused_rather_than_kept_in_the_clear() {
    let w = world(false).await;
    let err = w.data.chat_archive().err().expect("refused");
    assert_eq!(err.kind(), udl::ErrorKind::Config, "{err}");
    let err = udl::scylla::models::ChatArchive::new(
        w.data.scylla().unwrap(),
        w.data.unaudited_records(udl::StoreKind::SCYLLA).unwrap(),
    )
    .err()
    .expect("a store without the privacy layers is refused");
    assert_eq!(err.kind(), udl::ErrorKind::Config, "{err}");
    assert!(
        err.to_string().contains("no access policy or audit"),
        "{err}"
    );
    w.finish().await;
}
