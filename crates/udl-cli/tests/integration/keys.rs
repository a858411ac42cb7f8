//! `udl keys rotate` end to end against the local PostgreSQL, FerretDB and Cassandra: a new key
//! version,
//! plaintext from before encryption sealed, every older value re-encrypted with a progress bar
//! and a final count, and a resumed run that finds nothing left to do.

use std::process::{Command, Output};

use futures_util::TryStreamExt as _;
use udl::mongo::models::{Conversation, ConversationStatus, Message, MessageRole};
use udl::postgres::models::{User, UserStatus};
use udl::privacy::FieldCipher;
use udl::scylla::models::{month_of, ArchiveRole, ArchivedMessage};
use udl::{field, AccessContext, DataLayer, Json, Page, Role};
use udl_testkit::servers;
use uuid::Uuid;

fn udl(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_udl"));
    cmd.args(args);
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("UDL")) {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.output().expect("udl runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ctx() -> AccessContext {
    AccessContext::system("keys-test")
}

fn user(n: usize) -> User {
    let now = chrono::Utc::now();
    User {
        id: Uuid::new_v4(),
        email: format!("fake.user{n}@example.test"),
        display_name: format!("Fake User {n}"),
        role: Role::Patient,
        status: UserStatus::Active,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn conversation(n: usize) -> Conversation {
    let now = chrono::Utc::now();
    Conversation {
        id: Uuid::new_v4(),
        patient_id: Uuid::new_v4(),
        title: None,
        messages: Json(vec![Message {
            role: MessageRole::Patient,
            text: format!("fake message {n}"),
            at: now,
        }]),
        status: ConversationStatus::Active,
        started_at: now,
        updated_at: now,
        version: 1,
    }
}

/// The key versions of every sealed e-mail (PostgreSQL), conversation (MongoDB) and archived
/// message (ScyllaDB).
async fn versions(data: &DataLayer) -> Vec<u32> {
    let pg = data.postgres().unwrap();
    let emails: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT email FROM users WHERE email IS NOT NULL")
            .fetch_all(pg.pool())
            .await
            .unwrap();
    let docs: Vec<mongodb::bson::Document> = data
        .mongo()
        .unwrap()
        .database()
        .collection("conversations")
        .find(mongodb::bson::doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let messages = docs
        .iter()
        .map(|d| d.get_binary_generic("messages").unwrap().clone());
    let archived: Vec<Vec<u8>> = archived_texts(data)
        .await
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    emails
        .into_iter()
        .chain(messages)
        .chain(archived)
        .map(|sealed| FieldCipher::version_of(&sealed).unwrap())
        .collect()
}

/// Every archived message's stored text and the time it has left to live.
async fn archived_texts(data: &DataLayer) -> Vec<(Vec<u8>, Option<i32>)> {
    let scylla = data.scylla().unwrap();
    let cql = format!(
        "SELECT text, TTL(text) FROM \"{}\".chat_archive_sealed",
        scylla.keyspace()
    );
    scylla
        .session()
        .get_session()
        .query_unpaged(cql, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(Vec<u8>, Option<i32>)>()
        .unwrap()
        .map(|row| row.unwrap())
        .collect()
}

#[test]
fn rotate_reencrypts_every_value_and_seals_leftover_plaintext_then_resumes_to_nothing() {
    let namespace = servers::unique_namespace("keys");
    let env: Vec<(String, String)> = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", namespace.clone()),
        ("UDL__MONGO__URL", servers::mongo_url()),
        ("UDL__MONGO__DATABASE", namespace.clone()),
        ("UDL__SCYLLA__NODES", servers::scylla_node()),
        ("UDL__SCYLLA__KEYSPACE", namespace.clone()),
        ("UDL__SCYLLA__CONSISTENCY", "one".to_owned()),
        ("UDL__RETENTION__CHAT_ARCHIVE", "30d".to_owned()),
        (
            "UDL__PRIVACY__KEY_RING",
            crate::cli::FAKE_KEY_RING.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let migrated = udl(&["migrate", "up"], &env);
    assert_eq!(migrated.status.code(), Some(0), "{:?}", text(&migrated));

    let config = udl::config::from_sources(None, env.clone()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let legacy_id = Uuid::new_v4();
    let conversation_id = Uuid::new_v4();
    let sent_at = chrono::Utc::now();
    runtime.block_on(async {
        let data = DataLayer::connect(&config).await.unwrap();
        let users = data.repository::<User>().unwrap();
        for n in 0..3 {
            users.create(&ctx(), user(n)).await.unwrap();
        }
        let conversations = data.repository::<Conversation>().unwrap();
        for n in 0..5 {
            conversations.create(&ctx(), conversation(n)).await.unwrap();
        }
        let archive = data.chat_archive().unwrap();
        for n in 0..3 {
            let message = ArchivedMessage::new(
                conversation_id,
                sent_at,
                ArchiveRole::Patient,
                format!("fake archived message {n}"),
            );
            archive.append(&ctx(), message).await.unwrap();
        }
        // Two messages of the first, plaintext archive (migration 4).
        let scylla = data.scylla().unwrap();
        let plaintext = format!(
            "INSERT INTO \"{}\".chat_archive (id, conversation_id, month, sent_at, role, text) \
             VALUES (?, ?, ?, ?, 'patient', 'fake plaintext message') USING TTL 2592000",
            scylla.keyspace()
        );
        for _ in 0..2 {
            scylla
                .session()
                .get_session()
                .query_unpaged(
                    plaintext.clone(),
                    (Uuid::new_v4(), conversation_id, month_of(sent_at), sent_at),
                )
                .await
                .unwrap();
        }
        // An account from before e-mails and names were encrypted (migrations 10 and 11 kept
        // them as plaintext).
        sqlx::query(
            "INSERT INTO users (id, email_plaintext, display_name_plaintext, role, status, created_at, \
             updated_at) VALUES ($1, 'Fake.Legacy@Example.test', 'Fake Legacy', 'patient', \
             'active', now(), now())",
        )
        .bind(legacy_id)
        .execute(data.postgres().unwrap().pool())
        .await
        .unwrap();
        assert_eq!(versions(&data).await, vec![1; 11]);
    });

    let rotated = udl(&["keys", "rotate", "--batch", "2"], &env);
    let (out, err) = text(&rotated);
    assert_eq!(rotated.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("key version 2 added"), "{out}");
    assert!(
        out.contains("re-encrypted 11 records with key version 2 (14 scanned, 0 changed meanwhile and already current; plaintext sealed: 2 values, 2 archived messages)"),
        "{out}"
    );
    assert!(
        err.contains("users.display_name_plaintext (postgres)")
            && err.contains("users (postgres)")
            && err.contains("] 4/4"),
        "{err}"
    );
    assert!(
        err.contains("conversations (mongo)") && err.contains("] 5/5"),
        "{err}"
    );
    assert!(
        err.contains("chat_archive, plaintext (scylla)") && err.contains("2 read"),
        "{err}"
    );
    assert!(
        err.contains("chat_archive_sealed (scylla)") && err.contains("5 read"),
        "{err}"
    );
    assert!(
        err.contains("`VACUUM FULL users, patient_relationships`")
            && err.contains("`nodetool clearsnapshot`"),
        "where plaintext copies remain is said: {err}"
    );
    assert!(
        !out.contains("fake") && !err.contains("fake"),
        "no value is printed"
    );

    runtime.block_on(async {
        let data = DataLayer::connect(&config).await.unwrap();
        assert_eq!(versions(&data).await, vec![2; 14]);
        let thirty_days = 30 * 86_400;
        for (_, ttl) in archived_texts(&data).await {
            assert!(
                ttl.is_some_and(|t| t <= thirty_days && t > thirty_days - 600),
                "rewritten rows keep their time to live: {ttl:?}"
            );
        }
        let month = month_of(sent_at);
        let page = data
            .chat_archive()
            .unwrap()
            .page(&ctx(), conversation_id, &month, 10, None)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 5, "the archive reads back after rotation");
        let moved = page
            .items
            .iter()
            .filter(|m| m.text == "fake plaintext message")
            .count();
        assert_eq!(moved, 2, "the plaintext archive's messages were moved");
        let scylla = data.scylla().unwrap();
        let left = scylla
            .session()
            .get_session()
            .query_unpaged(
                format!(
                    "SELECT COUNT(*) FROM \"{}\".chat_archive",
                    scylla.keyspace()
                ),
                (),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .single_row::<(i64,)>()
            .unwrap();
        assert_eq!(left, (0,), "the plaintext archive is emptied");
        let users = data.repository::<User>().unwrap();
        let legacy = users
            .list(
                &ctx(),
                &field("email").eq("fake.legacy@example.test"),
                &[],
                Page::first(2),
            )
            .await
            .unwrap();
        assert_eq!(
            legacy.items.len(),
            1,
            "the sealed address is found by its index"
        );
        assert_eq!(legacy.items[0].id, legacy_id);
        assert_eq!(legacy.items[0].email, "Fake.Legacy@Example.test");
        assert_eq!(legacy.items[0].display_name, "Fake Legacy");
    });

    let resumed = udl(&["keys", "rotate", "--resume"], &env);
    let (out, err) = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{out}{err}");
    assert!(!out.contains("added"), "{out}");
    assert!(
        !err.contains("note:"),
        "nothing was sealed this time: {err}"
    );
    assert!(
        out.contains("re-encrypted 0 records with key version 2")
            && out.contains("plaintext sealed: 0 values, 0 archived messages"),
        "{out}"
    );

    runtime.block_on(async {
        let data = DataLayer::connect(&config).await.unwrap();
        let pg = data.postgres().unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{namespace}\" CASCADE"
        )))
        .execute(pg.pool())
        .await
        .unwrap();
        data.mongo().unwrap().database().drop().await.unwrap();
        let scylla = data.scylla().unwrap();
        scylla
            .session()
            .get_session()
            .query_unpaged(format!("DROP KEYSPACE \"{}\"", scylla.keyspace()), ())
            .await
            .unwrap();
    });
}
