//! Chat archives on the real server: newest first, paged by cursor within a month partition,
//! kept for the configured retention.

mod common;

use chrono::{TimeZone, Utc};
use udl_core::{AccessContext, Purpose, Role};
use udl_scylla::models::{self, month_of, ArchiveRole, ArchivedMessage, ChatArchive};
use uuid::Uuid;

fn ctx() -> AccessContext {
    AccessContext::new("scylla-test", Role::Service, Purpose::Operations).unwrap()
}

#[tokio::test]
async fn a_month_reads_newest_first_across_many_pages() {
    let store = common::store_with(&[("UDL__SCYLLA__CHAT_ARCHIVE_RETENTION", "30d")]).await;
    models::migrator().up(&store).await.unwrap();
    let archive = ChatArchive::new(&store).unwrap();
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

    // Retention is a TTL on the row; the text never shows in Debug output.
    let cql = format!(
        "SELECT TTL(text) FROM \"{}\".chat_archive WHERE conversation_id = ? AND month = '2026-11' LIMIT 1",
        store.keyspace()
    );
    let rows = store
        .session()
        .execute_unpaged(cql.as_str(), (conversation,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (ttl,) = rows.single_row::<(Option<i32>,)>().unwrap();
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
    assert_eq!(err.kind(), udl_core::ErrorKind::InvalidInput);
    common::drop_keyspace(&store).await;
}
