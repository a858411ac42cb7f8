//! `udl audit verify` over the local audit journals: an intact journal, an edited line, a
//! shipped entry missing from PostgreSQL, and a torn tail left by a crash.

use std::path::{Path, PathBuf};
use std::time::Duration;

use udl::privacy::audit::{AuditWriter, JournalConfig};
use udl_testkit::servers;

use crate::cli::{fake_read, tamper, udl, FAKE_KEY_RING};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The only journal directory under `root`, and its first segment.
fn journal_files(root: &Path) -> (PathBuf, PathBuf) {
    let dir = std::fs::read_dir(root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let segment = dir.join(format!("{:020}.jnl", 1));
    assert!(segment.exists(), "{segment:?}");
    (dir, segment)
}

#[test]
fn audit_verify_checks_each_journal_and_names_what_is_wrong() {
    let schema = servers::unique_namespace("cli");
    let root = std::env::temp_dir().join(servers::unique_namespace("udl_journal"));
    let url = servers::postgres_url();
    let root_text = root.display().to_string();
    let env = [
        ("UDL__POSTGRES__URL", url.as_str()),
        ("UDL__POSTGRES__SCHEMA", schema.as_str()),
        ("UDL__PRIVACY__KEY_RING", FAKE_KEY_RING),
        ("UDL__PRIVACY__AUDIT_JOURNAL_DIR", root_text.as_str()),
    ];
    let migrated = udl(&["migrate", "up"], &env);
    assert_eq!(migrated.status.code(), Some(0), "{}", stdout(&migrated));
    let config = udl::config::from_sources(
        None,
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (pg, writer) = runtime.block_on(async {
        let pg = udl::postgres::PgStore::connect(
            config.store::<udl::postgres::PostgresConfig>().unwrap(),
        )
        .await
        .unwrap();
        let journal = JournalConfig {
            dir: root.clone(),
            max_unshipped: 1000,
            max_unshipped_age: Duration::from_secs(600),
        };
        let writer = AuditWriter::journaled(pg.clone(), Duration::from_secs(5), journal);
        for n in 0..5 {
            writer.append(fake_read(n)).await.unwrap();
        }
        assert_eq!(writer.flush(Duration::from_secs(20)).await, 0);
        (pg, writer)
    });
    let (dir, segment) = journal_files(&root);
    let intact = udl(&["audit", "verify"], &env);
    assert_eq!(intact.status.code(), Some(0), "{}", stdout(&intact));
    assert!(
        stdout(&intact).contains(
            "intact, in use: 5 lines checked, shipped through line 5, 0 not yet in PostgreSQL"
        ),
        "{}",
        stdout(&intact)
    );

    let summary = udl(&["compliance", "report", "--actor", "auditor-fake-1"], &env);
    assert_eq!(summary.status.code(), Some(0), "{}", stdout(&summary));
    let json: serde_json::Value = serde_json::from_str(&stdout(&summary)).unwrap();
    let journal = &json["journals"][0];
    assert_eq!(
        (
            &journal["shipped_through"],
            &journal["behind"],
            &json["total"]
        ),
        (&5.into(), &0.into(), &5.into()),
        "{json}"
    );
    assert_eq!(journal["path"], dir.display().to_string());

    let original = std::fs::read_to_string(&segment).unwrap();
    std::fs::write(&segment, original.replacen("note-2", "note-7", 1)).unwrap();
    let edited = udl(&["audit", "verify"], &env);
    assert_eq!(edited.status.code(), Some(1), "{}", stdout(&edited));
    assert!(
        stdout(&edited).contains("BROKEN at line 3") && stdout(&edited).contains("altered"),
        "{}",
        stdout(&edited)
    );
    std::fs::write(&segment, &original).unwrap();

    // A copy of the journal that no process holds, ending in a line a crash cut short.
    let copy = root.join(uuid::Uuid::new_v4().to_string());
    std::fs::create_dir(&copy).unwrap();
    let torn = format!("{original}{{\"n\":6,\"prev\":\"ab");
    std::fs::write(copy.join(segment.file_name().unwrap()), torn).unwrap();
    let cut_short = udl(&["audit", "verify"], &env);
    assert_eq!(cut_short.status.code(), Some(1), "{}", stdout(&cut_short));
    assert!(
        stdout(&cut_short).contains("ends in a line cut short by a crash"),
        "{}",
        stdout(&cut_short)
    );
    std::fs::remove_dir_all(&copy).unwrap();

    let fourth: uuid::Uuid = runtime.block_on(async {
        let id =
            sqlx::query_scalar("SELECT id FROM phi_access_log WHERE request_id = 'req-fake-3'")
                .fetch_one(pg.pool())
                .await
                .unwrap();
        tamper(
            &pg,
            "DELETE FROM phi_access_log WHERE request_id = 'req-fake-3'",
        )
        .await;
        id
    });
    let missing = udl(&["audit", "verify"], &env);
    assert_eq!(missing.status.code(), Some(1), "{}", stdout(&missing));
    assert!(
        stdout(&missing).contains(&format!(
            "line 4 (entry {fourth}) is recorded as shipped but is not in the PostgreSQL access log"
        )),
        "{}",
        stdout(&missing)
    );
    drop(writer);
    runtime.block_on(async {
        let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pg.pool())
            .await
            .unwrap();
    });
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(root);
}
