//! The journal on disk without PostgreSQL: what the appender syncs reads back as a chain, a
//! torn tail and edits are found, and a directory that cannot be written refuses entries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use udl_core::AccessContext;
use udl_postgres::models::AccessOutcome;

use super::append::Refusal;
use super::files::{cut, journal_dir, journals, read_journal, JournalProblem};
use super::group::GroupJournal;
use super::{JournalConfig, ShipQueue};
use crate::audit::new_entry;

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("udl-journal-test-{}", uuid::Uuid::new_v4()))
}

fn config(dir: PathBuf, max_unshipped: usize) -> JournalConfig {
    JournalConfig {
        dir,
        max_unshipped,
        max_unshipped_age: Duration::from_secs(600),
    }
}

/// Appends `count` entries at once (from as many tasks) and waits for each answer.
async fn append(journal: &Arc<GroupJournal>, count: usize) -> Vec<Result<(), Refusal>> {
    let ctx = AccessContext::system("journal-test");
    let mut accesses = Vec::new();
    for i in 0..count {
        let mut entry = new_entry(&ctx, "fake_notes", "get", AccessOutcome::Allowed);
        entry.record_ids = serde_json::json!([format!("fake-note-{i}")]);
        let journal = Arc::clone(journal);
        accesses.push(tokio::spawn(async move { journal.append(entry).await }));
        // Each entry is handed in before the next, so their order in the journal is known.
        tokio::task::yield_now().await;
    }
    let mut results = Vec::new();
    for access in accesses {
        results.push(access.await.expect("answered"));
    }
    results
}

#[tokio::test]
async fn synced_entries_read_back_as_one_chain_and_wait_to_ship() {
    let root = scratch();
    let ship = Arc::new(ShipQueue::default());
    let journal = Arc::new(GroupJournal::new(
        config(root.clone(), 1000),
        Arc::clone(&ship),
    ));
    assert!(append(&journal, 10).await.iter().all(Result::is_ok));
    assert!(append(&journal, 5).await.iter().all(Result::is_ok));
    assert_eq!(ship.len(), 15);
    let ids = journals(&root).unwrap();
    assert_eq!(ids.len(), 1, "one journal per appender");
    let dir = journal_dir(&root, ids[0]);
    let read = read_journal(&dir).unwrap();
    assert_eq!(read.lines.len(), 15);
    assert_eq!(
        read.lines.iter().map(|l| l.n).collect::<Vec<_>>(),
        (1..=15).collect::<Vec<_>>()
    );
    assert!(read.torn.is_none() && read.broken.is_none());
    use std::os::unix::fs::PermissionsExt as _;
    let segment = &super::files::segments(&dir).unwrap()[0].1;
    assert_eq!(
        std::fs::metadata(segment).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    drop(journal);
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn a_full_backlog_refuses_entries_without_writing_them() {
    let root = scratch();
    let ship = Arc::new(ShipQueue::default());
    let journal = Arc::new(GroupJournal::new(
        config(root.clone(), 3),
        Arc::clone(&ship),
    ));
    assert!(append(&journal, 3).await.iter().all(Result::is_ok));
    let refused = append(&journal, 1).await;
    assert_eq!(
        refused[0].unwrap_err().kind,
        udl_core::ErrorKind::Unavailable
    );
    assert!(refused[0]
        .unwrap_err()
        .cause
        .contains("audit_max_unshipped"));
    let dir = journal_dir(&root, journals(&root).unwrap()[0]);
    assert_eq!(read_journal(&dir).unwrap().lines.len(), 3);
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn a_journal_directory_that_cannot_be_made_refuses_entries() {
    let file = scratch();
    std::fs::write(&file, b"not a directory").unwrap();
    let ship = Arc::new(ShipQueue::default());
    let journal = Arc::new(GroupJournal::new(config(file.join("journals"), 1000), ship));
    for answer in append(&journal, 3).await {
        let refusal = answer.unwrap_err();
        assert_eq!(refusal.kind, udl_core::ErrorKind::Unavailable);
        assert!(refusal.cause.contains("local audit journal"));
    }
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_torn_tail_is_found_and_cut_and_an_edit_breaks_the_chain() {
    let root = scratch();
    let ship = Arc::new(ShipQueue::default());
    let journal = Arc::new(GroupJournal::new(config(root.clone(), 1000), ship));
    assert!(append(&journal, 4).await.iter().all(Result::is_ok));
    let dir = journal_dir(&root, journals(&root).unwrap()[0]);
    let segment = super::files::segments(&dir).unwrap()[0].1.clone();
    let on_disk = std::fs::read(&segment).unwrap();
    let lines_end = on_disk.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    assert!(
        on_disk[lines_end..].iter().all(|&b| b == 0) && on_disk.len() > lines_end,
        "the segment is zeroed ahead of its lines"
    );
    let intact = on_disk[..lines_end].to_vec();

    let mut torn = on_disk.clone();
    torn.extend_from_slice(br#"{"n":5,"prev":"ab"#);
    std::fs::write(&segment, &torn).unwrap();
    let read = read_journal(&dir).unwrap();
    assert_eq!(read.lines.len(), 4);
    let tail = read.torn.expect("torn tail found");
    assert_eq!(tail.offset, lines_end as u64);
    cut(&tail).unwrap();
    assert_eq!(std::fs::read(&segment).unwrap(), intact);

    let text = String::from_utf8(intact.clone()).unwrap();
    let edited = text.replacen("fake-note-2", "fake-note-9", 1);
    std::fs::write(&segment, edited).unwrap();
    let broken = read_journal(&dir).unwrap().broken.expect("edit found");
    assert_eq!((broken.n, broken.problem), (3, JournalProblem::Altered));

    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(1);
    std::fs::write(&segment, lines.join("\n") + "\n").unwrap();
    let broken = read_journal(&dir).unwrap().broken.expect("removal found");
    assert_eq!((broken.n, broken.problem), (3, JournalProblem::Unlinked));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_journal_whose_making_was_cut_short_is_found_by_its_name() {
    let root = scratch();
    let unborn = root.join(format!("{}{}", super::files::UNBORN, uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&unborn).unwrap();
    std::fs::create_dir_all(journal_dir(&root, uuid::Uuid::new_v4())).unwrap();
    assert_eq!(super::files::unborn_journals(&root).unwrap(), vec![unborn]);
    assert_eq!(journals(&root).unwrap().len(), 1, "not taken for a journal");
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accesses_that_give_up_leave_their_entries_and_a_leader_behind() {
    let root = scratch();
    let ship = Arc::new(ShipQueue::default());
    let journal = Arc::new(GroupJournal::new(config(root.clone(), 100_000), ship));
    let ctx = AccessContext::system("journal-test");
    let mut accesses = Vec::new();
    for task in 0..32 {
        let (journal, ctx) = (Arc::clone(&journal), ctx.clone());
        accesses.push(tokio::spawn(async move {
            let mut durable = 0;
            for i in 0..20 {
                let entry = new_entry(&ctx, "fake_notes", "get", AccessOutcome::Allowed);
                if (task + i) % 3 == 0 {
                    // Gives up at once: waiting, or even told to lead.
                    let _ = tokio::time::timeout(Duration::ZERO, journal.append(entry)).await;
                } else {
                    journal.append(entry).await.expect("durable");
                    durable += 1;
                }
            }
            durable
        }));
    }
    // A lost lead would leave the accesses behind it waiting forever.
    let answered = tokio::time::timeout(Duration::from_secs(30), async {
        let mut durable = 0;
        for access in accesses {
            durable += access.await.expect("every access is answered");
        }
        durable
    });
    let durable = answered.await.expect("no access is left without a leader");
    let dir = journal_dir(&root, journals(&root).unwrap()[0]);
    let read = read_journal(&dir).unwrap();
    assert!(read.torn.is_none() && read.broken.is_none());
    assert!(
        read.lines.len() >= durable && read.lines.len() <= 32 * 20,
        "{} lines for {durable} durable accesses",
        read.lines.len()
    );
    let last = journal.append(new_entry(&ctx, "fake_notes", "get", AccessOutcome::Allowed));
    tokio::time::timeout(Duration::from_secs(10), last)
        .await
        .expect("the lead is free again")
        .expect("durable");
    let _ = std::fs::remove_dir_all(root);
}
