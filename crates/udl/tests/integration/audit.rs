//! The PHI access audit through `DataLayer` on the real servers: one entry per access on every
//! store and cache path, a chain that `verify_log` walks and that catches edits and deletions,
//! and PHI reads that fail closed while the audit log cannot be written.

use udl::postgres::models::AccessOutcome;
use udl::privacy::audit::{verify_log, ChainProblem};
use udl::{field, Entity, ErrorKind, Purpose, Role, StoreKind};
use uuid::Uuid;

use crate::common;
use common::*;

/// An entity without PHI: its accesses are not audited.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "clinic_notices")]
struct ClinicNotice {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(public)]
    text: String,
}

/// The entries logged for one request.
#[tokio::test]
async fn every_phi_access_on_every_store_and_cache_path_leaves_exactly_one_entry() {
    let w = world(true).await;
    let canary = canary();
    let care = w.care().await;
    let clinician = || care.treating();
    let cached = w.repo(StoreKind::POSTGRES);
    // Profiles declare a cache, so every store's path goes through it; PostgreSQL's is read
    // twice: the first read misses, the second hits.
    let paths = [
        ("cache miss", cached.clone()),
        ("cache hit", cached),
        ("mongo", w.repo(StoreKind::MONGO)),
        ("scylla", w.repo(StoreKind::SCYLLA)),
    ];
    let mut stored = None;
    for (n, (path, repo)) in (1..).zip(paths) {
        // The cache's two paths share one record: the first read misses, the second hits.
        let p = match (path, &stored) {
            ("cache hit", Some(p)) => Clone::clone(p),
            _ => {
                let p = PatientProfile {
                    patient_id: care.patient,
                    ..profile(&canary, n)
                };
                let write = clinician();
                repo.create(&write, p.clone()).await.unwrap();
                let logged = w.entries_of(&write).await;
                assert_eq!(logged.len(), 1, "{path}: one entry for the insert");
                assert_eq!(logged[0].operation, "create");
                p
            }
        };
        stored = Some(p.clone());
        let read = clinician();
        assert!(repo.get(&read, &p.id).await.unwrap() == Some(p.clone()));
        let logged = w.entries_of(&read).await;
        assert_eq!(logged.len(), 1, "{path}: exactly one entry per read");
        let e = &logged[0];
        assert_eq!(
            (e.actor_id.clone(), e.actor_role, e.purpose, e.outcome),
            (
                care.clinician.to_string(),
                Role::Clinician,
                Purpose::Treatment,
                AccessOutcome::Allowed
            ),
            "{path}"
        );
        assert_eq!(e.patient_id, Some(care.patient.to_string()));
        assert_eq!(
            (e.entity.as_str(), e.operation.as_str()),
            ("patient_profiles", "get")
        );
        assert_eq!(
            e.record_ids,
            serde_json::json!([p.id.to_string()]),
            "{path}"
        );
        let fields = e.fields.to_string();
        assert!(
            fields.contains("diagnosis") && fields.contains("email"),
            "{fields}"
        );
    }
    let stats = w.cache_stats();
    assert_eq!((stats.loads, stats.l1_hits), (1, 1), "{stats:?}");

    // A read that finds nothing and a refused filter are accesses too.
    let miss = clinician();
    let repo = w.repo(StoreKind::POSTGRES);
    assert!(repo.get(&miss, &Uuid::new_v4()).await.unwrap().is_none());
    assert_eq!(w.entries_of(&miss).await.len(), 1);
    let refused = clinician();
    repo.count(&refused, &field("diagnosis").eq("x"))
        .await
        .unwrap_err();
    let logged = w.entries_of(&refused).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].outcome, AccessOutcome::Error);

    // Entities without PHI are not audited.
    let notices = w
        .data
        .repository_in::<ClinicNotice>(StoreKind::MONGO)
        .unwrap();
    let plain = clinician();
    let notice = ClinicNotice {
        id: Uuid::new_v4(),
        text: "closed on Friday".into(),
    };
    notices.create(&plain, notice.clone()).await.unwrap();
    assert!(notices.get(&plain, &notice.id).await.unwrap() == Some(notice));
    assert!(w.entries_of(&plain).await.is_empty());

    let report = verify_log(w.data.postgres().unwrap(), None, None)
        .await
        .unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(
        report.checked, 12,
        "the care setup's 2 users and relationship, 3 inserts, 4 reads, a miss, a refusal: \
         {report:?}"
    );
    w.finish().await;
}

#[tokio::test]
async fn concurrent_reads_chain_in_order_and_verify_catches_edits_and_deletions() {
    let w = world(true).await;
    let care = w.care().await;
    let repo = w.repo(StoreKind::POSTGRES);
    let p = PatientProfile {
        patient_id: care.patient,
        ..profile(&canary(), 1)
    };
    repo.create(&care.treating(), p.clone()).await.unwrap();
    let reads = (0..64).map(|_| {
        let (repo, ctx) = (repo.clone(), care.treating());
        async move { repo.get(&ctx, &p.id).await.unwrap().unwrap() }
    });
    futures_util::future::join_all(reads).await;
    let pg = w.data.postgres().unwrap();
    let report = verify_log(pg, None, None).await.unwrap();
    assert_eq!(
        (report.checked, report.range, report.broken),
        // The care setup's 2 users and relationship, the insert, 64 reads.
        (68, Some((1, 68)), None)
    );

    w.tamper("UPDATE phi_access_log SET actor_id = 'someone-else' WHERE seq = 20".into())
        .await;
    let report = verify_log(pg, None, None).await.unwrap();
    let broken = report.broken.unwrap();
    assert_eq!((broken.seq, broken.problem), (20, ChainProblem::Altered));
    assert_eq!(report.checked, 19);

    // A range after the edit still verifies; a deletion inside it is found at the next entry.
    let after: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT occurred_at FROM phi_access_log WHERE seq = 30")
            .fetch_one(pg.pool())
            .await
            .unwrap();
    let report = verify_log(pg, Some(after), None).await.unwrap();
    assert_eq!(report.broken, None, "{report:?}");
    w.tamper("DELETE FROM phi_access_log WHERE seq = 40".into())
        .await;
    let broken = verify_log(pg, Some(after), None)
        .await
        .unwrap()
        .broken
        .unwrap();
    assert_eq!((broken.seq, broken.problem), (41, ChainProblem::Unlinked));

    // Deleting the newest entries leaves no broken link, but the chain's tip remembers them.
    let from_50: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT occurred_at FROM phi_access_log WHERE seq = 50")
            .fetch_one(pg.pool())
            .await
            .unwrap();
    assert!(verify_log(pg, Some(from_50), None).await.unwrap().intact());
    w.tamper("DELETE FROM phi_access_log WHERE seq > 60".into())
        .await;
    let report = verify_log(pg, Some(from_50), None).await.unwrap();
    assert_eq!((report.broken, report.tail_missing), (None, Some((60, 68))));
    w.finish().await;
}

#[tokio::test]
async fn with_the_audit_log_unreachable_phi_reads_fail_and_other_reads_continue() {
    let postgres = udl_testkit::servers::postgres_url();
    let address = url_host_port(&postgres);
    let proxy = udl_testkit::toxiproxy::Proxy::to(&address);
    let proxied = postgres.replacen(&address, proxy.listen(), 1);
    let w = world_on(true, proxied).await;
    let care = w.care().await;
    let clinician = || care.treating();
    let profiles = w.repo(StoreKind::MONGO);
    let notices = w
        .data
        .repository_in::<ClinicNotice>(StoreKind::MONGO)
        .unwrap();
    let p = PatientProfile {
        patient_id: care.patient,
        ..profile(&canary(), 1)
    };
    profiles.create(&clinician(), p.clone()).await.unwrap();
    let notice = ClinicNotice {
        id: Uuid::new_v4(),
        text: "open late".into(),
    };
    notices.create(&clinician(), notice.clone()).await.unwrap();

    proxy.set_enabled(false);
    // The policy cannot be checked for the clinician; a platform job is not asked about, but
    // its access cannot be recorded. Either way the PHI stays where it is.
    let err = profiles.get(&clinician(), &p.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("PHI access was refused"), "{err}");
    let err = profiles.get(&ctx(), &p.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("audit log"), "{err}");
    let err = profiles
        .create(&ctx(), profile(&canary(), 2))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Unavailable,
        "an unaudited write is not sent: {err}"
    );
    assert!(notices.get(&clinician(), &notice.id).await.unwrap() == Some(notice.clone()));

    proxy.set_enabled(true);
    assert!(profiles.get(&clinician(), &p.id).await.unwrap() == Some(p));
    assert_eq!(
        profiles
            .count(&clinician(), &udl::Filter::All)
            .await
            .unwrap(),
        1,
        "the refused write was never sent"
    );
    w.finish().await;
}

/// The audit writer keeps a connection of its own; one that broke while idle (a restarted
/// server, a dropped link) is found by a ping and replaced, so no read fails for it.
#[tokio::test]
async fn an_audit_connection_that_broke_while_idle_is_replaced_unnoticed() {
    let postgres = udl_testkit::servers::postgres_url();
    let address = url_host_port(&postgres);
    let proxy = udl_testkit::toxiproxy::Proxy::to(&address);
    let w = world_on(true, postgres.replacen(&address, proxy.listen(), 1)).await;
    let profiles = w.repo(StoreKind::MONGO);
    let p = profile(&canary(), 1);
    profiles.create(&ctx(), p.clone()).await.unwrap();
    assert!(profiles.get(&ctx(), &p.id).await.unwrap() == Some(p.clone()));

    // Disabling the proxy closes every connection through it, the writer's among them.
    proxy.set_enabled(false);
    proxy.set_enabled(true);
    // Long enough for the writer to count its connection as idle (it pings after 1 s).
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert!(profiles.get(&ctx(), &p.id).await.unwrap() == Some(p));
    w.finish().await;
}

/// Two processes' writers append to one chain at once: neither forks it.
#[tokio::test]
async fn writers_of_two_processes_share_one_chain() {
    use udl::privacy::audit::AuditWriter;
    let w = world(true).await;
    let pg = w.data.postgres().unwrap();
    let writers: Vec<_> = (0..2)
        .map(|_| AuditWriter::start(pg.clone(), std::time::Duration::from_secs(10)))
        .collect();
    let appends = (0..200).map(|n| writers[n % 2].append(fake_access(n)));
    for appended in futures_util::future::join_all(appends).await {
        appended.unwrap();
    }
    let report = verify_log(pg, None, None).await.unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!((report.checked, report.range), (200, Some((1, 200))));
    w.finish().await;
}
