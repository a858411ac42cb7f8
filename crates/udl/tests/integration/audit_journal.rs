//! The local audit journal on the real servers: PHI reads are durable once synced to it and
//! reach PostgreSQL's chain moments later; a read survives its process being killed right after
//! it returned; a journal that cannot be written or a full backlog refuse PHI reads while other
//! reads continue; and `verify_journals` finds edits and entries missing from PostgreSQL.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use udl::privacy::audit::{verify_journals, verify_log, AuditWriter, JournalConfig};
use udl::{AccessContext, Entity, ErrorKind, StoreKind};
use udl_testkit::wait::until;
use uuid::Uuid;

use crate::common;
use common::*;

/// An entity without PHI: its accesses are not audited.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "journal_notices")]
struct JournalNotice {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(public)]
    text: String,
}

const DEADLINE: Duration = Duration::from_secs(20);

fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("udl-journal-it-{}", Uuid::new_v4()))
}

/// A world whose PHI accesses are made durable in a journal under `dir`, refused once more
/// than `max_unshipped` entries wait to ship.
async fn journaled_world(dir: &Path, max_unshipped: usize) -> World {
    world_with(
        true,
        udl_testkit::servers::postgres_url(),
        vec![
            ("UDL__PRIVACY__AUDIT_JOURNAL_DIR", dir.display().to_string()),
            (
                "UDL__PRIVACY__AUDIT_MAX_UNSHIPPED",
                max_unshipped.to_string(),
            ),
        ],
    )
    .await
}

/// Waits until everything `w`'s journal synced has reached PostgreSQL.
async fn shipped(w: &World) {
    let writer = w.data.audit_writer().unwrap();
    until("the journal to ship", DEADLINE, || async {
        (writer.unshipped() == 0).then_some(())
    })
    .await;
}

/// Holds the PHI access log's tip locked (so no batch can ship) until dropped or released.
struct ShippingBlocked {
    conn: sqlx::PgConnection,
}

impl ShippingBlocked {
    async fn new(w: &World) -> Self {
        use sqlx::Connection as _;
        let pg = w.data.postgres().unwrap();
        let mut conn = sqlx::PgConnection::connect_with(&pg.pool().connect_options())
            .await
            .unwrap();
        sqlx::raw_sql("BEGIN; SELECT * FROM phi_access_log_head FOR UPDATE")
            .execute(&mut conn)
            .await
            .unwrap();
        ShippingBlocked { conn }
    }

    /// Ends the sessions waiting behind the lock (as if their process had died with them), then
    /// lets shipping go on.
    async fn release_killing_waiters(mut self) {
        sqlx::raw_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))",
        )
        .execute(&mut self.conn)
        .await
        .unwrap();
        self.release().await;
    }

    async fn release(mut self) {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut self.conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn phi_reads_reach_the_postgresql_chain_from_the_journal() {
    let dir = scratch_dir();
    let w = journaled_world(&dir, 100_000).await;
    let care = w.care().await;
    let repo = w.repo(StoreKind::POSTGRES);
    let p = PatientProfile {
        patient_id: care.patient,
        ..profile(&canary(), 1)
    };
    repo.create(&care.treating(), p.clone()).await.unwrap();
    let readers: Vec<AccessContext> = (0..32).map(|_| care.treating()).collect();
    let reads = readers.iter().map(|ctx| repo.get(ctx, &p.id));
    for read in futures_util::future::join_all(reads).await {
        assert!(read.unwrap() == Some(p.clone()));
    }
    shipped(&w).await;
    for ctx in &readers {
        let entries = w.entries_of(ctx).await;
        assert_eq!(entries.len(), 1, "one entry per read");
        assert_eq!(entries[0].operation, "get");
    }
    let pg = w.data.postgres().unwrap();
    let report = verify_log(pg, None, None).await.unwrap();
    // The care setup's 2 users and relationship, the insert, 32 reads.
    assert_eq!((report.checked, report.intact()), (36, true), "{report:?}");
    let journals = verify_journals(pg, &dir).await.unwrap();
    assert_eq!(journals.len(), 1, "{journals:?}");
    let journal = &journals[0];
    assert!(journal.live && journal.intact(), "{journal:?}");
    assert_eq!((journal.shipped_through, journal.unshipped()), (36, 0));
    assert!(w.data.audit_writer().unwrap().shipping_lag(0.99).is_some());
    let metrics = w.data.metrics().render();
    let shipped_count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("udl_audit_ship_lag_seconds_count "))
        .unwrap_or_else(|| panic!("no shipping lag in the metrics: {metrics}"));
    assert_eq!(shipped_count.trim(), "36", "{metrics}");
    assert!(
        metrics.lines().any(|l| l == "udl_audit_unshipped 0"),
        "{metrics}"
    );
    w.finish().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn with_shipping_blocked_reads_wait_in_the_journal_up_to_its_bound() {
    let dir = scratch_dir();
    let w = journaled_world(&dir, 5).await;
    let care = w.care().await;
    let repo = w.repo(StoreKind::POSTGRES);
    let notices = w
        .data
        .repository_in::<JournalNotice>(StoreKind::MONGO)
        .unwrap();
    let p = PatientProfile {
        patient_id: care.patient,
        ..profile(&canary(), 1)
    };
    repo.create(&care.treating(), p.clone()).await.unwrap();
    let notice = JournalNotice {
        id: Uuid::new_v4(),
        text: "fake: open late".into(),
    };
    notices
        .create(&care.treating(), notice.clone())
        .await
        .unwrap();
    shipped(&w).await;

    let blocked = ShippingBlocked::new(&w).await;
    let readers: Vec<AccessContext> = (0..5).map(|_| care.treating()).collect();
    for ctx in &readers {
        assert!(repo.get(ctx, &p.id).await.unwrap() == Some(p.clone()));
    }
    assert_eq!(w.data.audit_writer().unwrap().unshipped(), 5);
    assert!(
        w.entries_of(&readers[0]).await.is_empty(),
        "not shipped yet"
    );
    let err = repo.get(&care.treating(), &p.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("audit_max_unshipped"), "{err}");
    assert!(
        notices.get(&care.treating(), &notice.id).await.unwrap() == Some(notice.clone()),
        "an entity without PHI is read as ever"
    );

    blocked.release().await;
    shipped(&w).await;
    for ctx in &readers {
        assert_eq!(w.entries_of(ctx).await.len(), 1);
    }
    assert!(repo.get(&care.treating(), &p.id).await.unwrap() == Some(p));
    let report = verify_log(w.data.postgres().unwrap(), None, None)
        .await
        .unwrap();
    assert!(report.intact(), "{report:?}");
    w.finish().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_journal_that_cannot_be_written_refuses_phi_reads_only() {
    let not_a_dir = scratch_dir();
    std::fs::write(&not_a_dir, b"a file where the journal directory should be").unwrap();
    let w = journaled_world(&not_a_dir.join("journals"), 100_000).await;
    let repo = w.repo(StoreKind::POSTGRES);
    let notices = w
        .data
        .repository_in::<JournalNotice>(StoreKind::MONGO)
        .unwrap();
    let err = repo.get(&ctx(), &Uuid::new_v4()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("local audit journal"), "{err}");
    let notice = JournalNotice {
        id: Uuid::new_v4(),
        text: "fake: closed today".into(),
    };
    notices.create(&ctx(), notice.clone()).await.unwrap();
    assert!(notices.get(&ctx(), &notice.id).await.unwrap() == Some(notice));
    w.finish().await;
    let _ = std::fs::remove_file(not_a_dir);
}

/// The child program that reads once and waits to be killed, built with the tests.
fn child_program() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join("audited_read_then_wait")
}

fn journal_config(dir: &Path) -> JournalConfig {
    JournalConfig {
        dir: dir.to_owned(),
        max_unshipped: 100_000,
        max_unshipped_age: Duration::from_secs(600),
    }
}

/// The ids of the access-log entries of request `request_id`.
async fn entries_of_request(w: &World, request_id: &str) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM phi_access_log WHERE request_id = $1")
        .bind(request_id)
        .fetch_all(w.data.postgres().unwrap().pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_read_survives_its_process_killed_right_after_it_returned() {
    let dir = scratch_dir();
    // The test's own accesses go straight to PostgreSQL; only the child uses the journal.
    let w = world(true).await;
    let blocked = ShippingBlocked::new(&w).await;
    // Only the test's configuration: none of the caller's `UDL__*` variables.
    let mut child = Command::new(child_program())
        .env_clear()
        .envs(w.vars.iter().map(|(k, v)| (k, v)))
        .env("UDL__PRIVACY__AUDIT_JOURNAL_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child program is built with the tests (cargo test builds examples)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let request_id = line
        .strip_prefix("read ")
        .unwrap_or_else(|| panic!("the child did not read: {line:?}"))
        .trim()
        .to_owned();
    blocked.release_killing_waiters().await;
    assert!(
        entries_of_request(&w, &request_id).await.is_empty(),
        "the child died before shipping"
    );
    let pg = w.data.postgres().unwrap();
    let left = verify_journals(pg, &dir).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left[0].live && left[0].intact(), "{left:?}");
    assert_eq!(left[0].unshipped(), 1);

    // The next process on the directory ships what the dead one left, then removes it.
    let next = AuditWriter::journaled(pg.clone(), Duration::from_secs(5), journal_config(&dir));
    until("the dead child's entry in PostgreSQL", DEADLINE, || async {
        (entries_of_request(&w, &request_id).await.len() == 1).then_some(())
    })
    .await;
    until("the shipped journal to be removed", DEADLINE, || async {
        let journals = verify_journals(pg, &dir).await.unwrap();
        journals.is_empty().then_some(())
    })
    .await;
    assert!(verify_log(pg, None, None).await.unwrap().intact());
    drop(next);
    w.finish().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Two processes' journals (two writers, each with a journal and a chain connection of its own,
/// under one directory) ship into one chain at once: neither forks it, nothing ships twice.
#[tokio::test]
async fn journals_of_two_processes_ship_into_one_chain() {
    let dir = scratch_dir();
    let w = world(true).await;
    let pg = w.data.postgres().unwrap();
    let writers: Vec<_> = (0..2)
        .map(|_| AuditWriter::journaled(pg.clone(), Duration::from_secs(10), journal_config(&dir)))
        .collect();
    let appends = (0..400).map(|n| writers[n % 2].append(fake_access(n)));
    for appended in futures_util::future::join_all(appends).await {
        appended.unwrap();
    }
    for writer in &writers {
        assert_eq!(writer.flush(DEADLINE).await, 0);
    }
    let report = verify_log(pg, None, None).await.unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!((report.checked, report.range), (400, Some((1, 400))));
    let journals = verify_journals(pg, &dir).await.unwrap();
    assert_eq!(journals.len(), 2, "{journals:?}");
    for journal in &journals {
        assert!(journal.live && journal.intact(), "{journal:?}");
        assert_eq!((journal.shipped_through, journal.unshipped()), (200, 0));
    }
    drop(writers);
    w.finish().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// PostgreSQL unreachable: PHI reads that need nothing from it (a platform job's, of data in
/// MongoDB) keep going on the journal alone, and their entries ship once it is back.
#[tokio::test]
async fn with_postgresql_unreachable_reads_wait_in_the_journal_and_ship_when_it_returns() {
    let dir = scratch_dir();
    let postgres = udl_testkit::servers::postgres_url();
    let address = url_host_port(&postgres);
    let proxy = udl_testkit::toxiproxy::Proxy::to(&address);
    let w = world_with(
        true,
        postgres.replacen(&address, proxy.listen(), 1),
        vec![("UDL__PRIVACY__AUDIT_JOURNAL_DIR", dir.display().to_string())],
    )
    .await;
    let profiles = w.repo(StoreKind::MONGO);
    let p = profile(&canary(), 1);
    profiles.create(&ctx(), p.clone()).await.unwrap();
    shipped(&w).await;

    proxy.set_enabled(false);
    let readers: Vec<AccessContext> = (0..3).map(|_| ctx()).collect();
    for reader in &readers {
        assert!(profiles.get(reader, &p.id).await.unwrap() == Some(p.clone()));
    }
    assert_eq!(w.data.audit_writer().unwrap().unshipped(), 3);

    proxy.set_enabled(true);
    shipped(&w).await;
    for reader in &readers {
        assert_eq!(w.entries_of(reader).await.len(), 1);
    }
    let report = verify_log(w.data.postgres().unwrap(), None, None)
        .await
        .unwrap();
    assert!(report.intact(), "{report:?}");
    w.finish().await;
    let _ = std::fs::remove_dir_all(dir);
}
