//! Retention of the PHI access log and change history on PostgreSQL: months go exactly when
//! all of them is past retention (a second before, nothing; a second after, the month), a legal
//! hold keeps a month and its receipt says so, reads leave out what is past retention, and the
//! audit chain still verifies once its oldest months are gone.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use udl_config::{RetentionConfig, SIX_YEARS};
use udl_core::{AccessContext, Purpose, Role};
use udl_jobs::retention::{
    DataClass, HoldScope, LegalHolds, Receipts, RetentionPolicy, RetentionPurge,
};
use udl_jobs::{Counts, NoProgress};
use udl_postgres::models::AccessOutcome;
use udl_postgres::PgStore;
use udl_privacy::audit::{new_entry, report, verify_log, AuditWriter};

use crate::common::{drop_schema, migrated_store, runner_at, table_exists};

/// Fake patients (test data only).
const PATIENT_A: &str = "00000000-0000-4000-8000-00000000a11a";
const PATIENT_B: &str = "00000000-0000-4000-8000-00000000b22b";

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

fn keep(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap()
}

async fn log_access(writer: &AuditWriter, when: DateTime<Utc>, patient: &str) {
    let ctx = AccessContext::new("test-clinician", Role::Clinician, Purpose::Treatment)
        .expect("valid context");
    let mut entry = new_entry(&ctx, "session_notes", "get", AccessOutcome::Allowed);
    entry.occurred_at = when;
    entry.patient_id = Some(patient.to_owned());
    writer.append(entry).await.expect("logged");
}

async fn purge(store: &PgStore, now: DateTime<Utc>, dry_run: bool) -> Counts {
    let (runner, _) = runner_at(store, now);
    let job = RetentionPurge::new(store.clone(), RetentionConfig::default());
    runner
        .run(&job, dry_run, Arc::new(NoProgress))
        .await
        .expect("the purge runs")
        .counts
}

fn count(counts: &Counts, key: &str) -> u64 {
    counts
        .get(key)
        .copied()
        .unwrap_or_else(|| panic!("no count {key} in {counts:?}"))
}

#[tokio::test]
async fn access_log_months_go_exactly_at_retention_unless_held_and_the_chain_still_verifies() {
    let store = migrated_store().await;
    let writer = AuditWriter::start(store.clone(), Duration::from_secs(5));
    // March 2019: both patients; April 2019: patient A; and today. One March entry reaches
    // the log after an April one (as a journal shipping late across a month's end would), so
    // March's chain positions are not one run.
    let march_entry = at(2019, 3, 10);
    for (when, patient) in [
        (march_entry, PATIENT_A),
        (at(2019, 3, 20), PATIENT_B),
        (at(2019, 4, 2), PATIENT_A),
        (at(2019, 3, 31), PATIENT_A),
        (at(2019, 4, 29), PATIENT_A),
        (Utc::now(), PATIENT_A),
    ] {
        log_access(&writer, when, patient).await;
    }
    let march_table = "phi_access_log_y2019m03";
    assert!(table_exists(&store, march_table).await);

    // Reads: the March 10 entry is there until exactly six years after it.
    let policy = RetentionPolicy::of(&RetentionConfig::default(), DataClass::PhiAccessLog);
    let second = chrono::Duration::seconds(1);
    for (now, expected) in [
        (march_entry + keep(SIX_YEARS) - second, 5),
        (march_entry + keep(SIX_YEARS) + second, 4),
    ] {
        let floor = policy.kept_since(now);
        let accounting = report::accounting(&store, PATIENT_A, Some(floor), None)
            .await
            .expect("accounting");
        assert_eq!(accounting.disclosures.len(), expected, "as of {now}");
    }

    // The whole of March is past retention from April 1st + 6 years on.
    let march_gone_at = Utc.with_ymd_and_hms(2019, 4, 1, 0, 0, 0).unwrap() + keep(SIX_YEARS);
    let counts = purge(&store, march_gone_at - second, false).await;
    assert_eq!(count(&counts, "phi_access_log.months_dropped"), 0);
    assert!(table_exists(&store, march_table).await);

    // A dry run a second later says what would go and changes nothing.
    let counts = purge(&store, march_gone_at + second, true).await;
    assert_eq!(count(&counts, "phi_access_log.months_dropped"), 1);
    assert_eq!(count(&counts, "phi_access_log.records_deleted"), 3);
    assert!(table_exists(&store, march_table).await);
    let receipts = Receipts::new(store.clone());
    assert!(
        receipts.since(None).await.unwrap().is_empty(),
        "a dry run leaves no receipt"
    );

    // A hold on patient B keeps March (B was accessed then) and the receipt says so.
    let holds = LegalHolds::new(store.clone());
    let hold = holds
        .place(
            HoldScope::SubjectInClass(PATIENT_B.into(), DataClass::PhiAccessLog),
            "matter 2026-TEST-1",
            "test-counsel",
        )
        .await
        .expect("hold placed");
    let counts = purge(&store, march_gone_at + second, false).await;
    assert_eq!(count(&counts, "phi_access_log.months_dropped"), 0);
    assert_eq!(count(&counts, "phi_access_log.months_held"), 1);
    assert_eq!(count(&counts, "phi_access_log.records_held_back"), 3);
    assert!(table_exists(&store, march_table).await);
    let held = receipts.since(None).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].deleted, held[0].held_back), (0, 3));
    assert_eq!(held[0].holds, vec![hold]);
    assert_eq!(held[0].data_class, "phi_access_log");
    assert_eq!(held[0].policy, "phi_access_log: keep 6years");

    // Released, the month goes: one receipt for the drop, the chain verifies across it.
    holds.release(hold, "test-counsel").await.expect("released");
    let counts = purge(&store, march_gone_at + second, false).await;
    assert_eq!(count(&counts, "phi_access_log.months_dropped"), 1);
    assert_eq!(count(&counts, "phi_access_log.records_deleted"), 3);
    assert!(!table_exists(&store, march_table).await);
    let all = receipts.since(None).await.unwrap();
    let dropped = all.last().expect("a receipt for the drop");
    assert_eq!((dropped.deleted, dropped.held_back), (3, 0));
    assert_eq!(
        dropped.range_from,
        Some(Utc.with_ymd_and_hms(2019, 3, 1, 0, 0, 0).unwrap())
    );
    assert_eq!(dropped.range_to, Some(march_gone_at - keep(SIX_YEARS)));
    assert_eq!(dropped.detail["partition"], march_table);
    let report = verify_log(&store, None, None).await.expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!((report.checked, report.retired), (3, 3));

    // Running it again changes nothing.
    let counts = purge(&store, march_gone_at + second, false).await;
    assert_eq!(count(&counts, "phi_access_log.months_dropped"), 0);
    assert_eq!(receipts.since(None).await.unwrap().len(), all.len());

    // An entry of March logged late brings the month back; the next purge drops it again, with
    // a receipt of its own, and the chain still verifies.
    drop(writer);
    let writer = AuditWriter::start(store.clone(), Duration::from_secs(5));
    log_access(&writer, at(2019, 3, 30), PATIENT_A).await;
    assert!(table_exists(&store, march_table).await);
    let counts = purge(&store, march_gone_at + second, false).await;
    assert_eq!(count(&counts, "phi_access_log.records_deleted"), 1);
    assert_eq!(receipts.since(None).await.unwrap().len(), all.len() + 1);
    let report = verify_log(&store, None, None).await.expect("verify");
    assert!(report.intact(), "{report:?}");
    // (The late entry came after the newest one left, so the walk counts the three before.)
    assert_eq!((report.checked, report.retired), (3, 3));

    // Years later every month has gone, today's too: still intact, nothing left unlinked.
    let counts = purge(&store, Utc::now() + keep(SIX_YEARS) * 2, false).await;
    assert!(count(&counts, "phi_access_log.months_dropped") >= 2);
    let report = verify_log(&store, None, None).await.expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.checked, 0);

    // The chain goes on from where it was (a new writer: the old one remembers this month's
    // partition, which only a clock standing years ahead could have dropped).
    drop(writer);
    let writer = AuditWriter::start(store.clone(), Duration::from_secs(5));
    log_access(&writer, Utc::now(), PATIENT_A).await;
    let report = verify_log(&store, None, None).await.expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!((report.checked, report.retired), (1, 7));
    drop(writer);
    drop_schema(&store).await;
}

#[tokio::test]
async fn change_history_and_ledger_months_go_at_retention_and_a_class_hold_keeps_its_class() {
    let store = migrated_store().await;
    for partition in [
        "SELECT udl_change_history_partition('2019-03-01')",
        "SELECT udl_redaction_ledger_partition('2019-03-01')",
    ] {
        sqlx::query(partition)
            .execute(store.pool())
            .await
            .expect("partition");
    }
    sqlx::query(
        "INSERT INTO phi_change_history (id, occurred_at, actor_id, actor_role, purpose,
             request_id, store, entity, record_id, field, operation, before, after, patient_id)
         VALUES (gen_random_uuid(), '2019-03-15T08:00:00Z', 'test-clinician', 'clinician',
                 'treatment', 'req-1', 'mongodb', 'session_notes', 'note-1', 'body', 'update',
                 '\\x00', '\\x01', $1)",
    )
    .bind(PATIENT_A)
    .execute(store.pool())
    .await
    .expect("a history row");
    let table = "phi_change_history_y2019m03";
    let gone_at = Utc.with_ymd_and_hms(2019, 4, 1, 0, 0, 0).unwrap() + keep(SIX_YEARS);
    let second = chrono::Duration::seconds(1);

    let holds = LegalHolds::new(store.clone());
    let hold = holds
        .place(
            HoldScope::Class(DataClass::PhiChangeHistory),
            "matter 2026-TEST-2",
            "test-counsel",
        )
        .await
        .expect("hold placed");
    let counts = purge(&store, gone_at + second, false).await;
    assert_eq!(count(&counts, "phi_change_history.months_held"), 1);
    assert_eq!(count(&counts, "phi_change_history.records_held_back"), 1);
    assert!(table_exists(&store, table).await);
    // The hold is on the change history alone: the redaction ledger's month went.
    assert_eq!(count(&counts, "redaction_ledger.months_dropped"), 1);
    assert!(!table_exists(&store, "udl_redaction_ledger_y2019m03").await);

    holds.release(hold, "test-counsel").await.expect("released");
    let counts = purge(&store, gone_at - second, false).await;
    assert_eq!(count(&counts, "phi_change_history.months_dropped"), 0);
    assert!(table_exists(&store, table).await);
    let counts = purge(&store, gone_at + second, false).await;
    assert_eq!(count(&counts, "phi_change_history.months_dropped"), 1);
    assert_eq!(count(&counts, "phi_change_history.records_deleted"), 1);
    assert!(!table_exists(&store, table).await);
    let receipts = Receipts::new(store.clone()).since(None).await.unwrap();
    assert_eq!(
        receipts
            .iter()
            .map(|r| (r.data_class.as_str(), r.deleted, r.held_back))
            .collect::<Vec<_>>(),
        [
            ("phi_change_history", 0, 1),
            ("redaction_ledger", 0, 0),
            ("phi_change_history", 1, 0)
        ]
    );
    drop_schema(&store).await;
}

#[tokio::test]
async fn legal_holds_are_released_never_deleted() {
    let store = migrated_store().await;
    let holds = LegalHolds::new(store.clone());
    let id = holds
        .place(
            HoldScope::Subject(PATIENT_A.into()),
            "matter 2026-TEST-3",
            "test-counsel",
        )
        .await
        .expect("placed");
    assert!(holds
        .place(HoldScope::Subject(PATIENT_A.into()), "  ", "test-counsel")
        .await
        .is_err());
    for sql in [
        "DELETE FROM legal_holds",
        "UPDATE legal_holds SET reason = 'changed'",
        "TRUNCATE legal_holds",
    ] {
        assert!(
            sqlx::raw_sql(sql).execute(store.pool()).await.is_err(),
            "{sql} was allowed"
        );
    }
    holds.release(id, "test-counsel").await.expect("released");
    assert!(
        holds.release(id, "test-counsel").await.is_err(),
        "released twice"
    );
    assert!(holds.list(false).await.unwrap().is_empty());
    let all = holds.list(true).await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].released_at.is_some());
    assert!(
        !format!("{:?}", all[0]).contains(PATIENT_A),
        "Debug leaves the subject out"
    );
    drop_schema(&store).await;
}
