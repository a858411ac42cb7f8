//! The compliance reports as people see them: rendered by a real headless browser (Debian's
//! `chromium`, installed by `scripts/services up`), their summary figures read back from the
//! rendered page and compared with the access log.

use std::collections::BTreeMap;
use std::process::Command;

use udl::postgres::models::AccessOutcome;
use udl::{Purpose, Role};
use udl_testkit::servers;

use crate::cli::{fake_read, text, udl, FAKE_PATIENT};

/// The page at `path` as the browser's DOM after rendering it.
fn rendered(path: &std::path::Path) -> String {
    let profile = path.with_extension("profile");
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", path.display()))
        .output()
        .expect("chromium runs (scripts/services up installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(profile);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every `data-metric="name">value<` the page shows.
fn metrics(dom: &str) -> BTreeMap<String, i64> {
    let mut found = BTreeMap::new();
    for piece in dom.split("data-metric=\"").skip(1) {
        let (name, rest) = piece.split_once('"').unwrap();
        let value = rest.split_once('>').unwrap().1.split('<').next().unwrap();
        found.insert(name.to_owned(), value.trim().parse().unwrap());
    }
    found
}

#[test]
fn compliance_reports_render_in_headless_chromium_with_the_access_logs_figures() {
    let schema = servers::unique_namespace("cli_report");
    let url = servers::postgres_url();
    let env = [
        ("UDL__POSTGRES__URL", url.as_str()),
        ("UDL__POSTGRES__SCHEMA", schema.as_str()),
    ];
    let migrated = udl(&["migrate", "up"], &env);
    assert_eq!(migrated.status.code(), Some(0), "{:?}", text(&migrated));
    let config = udl::config::from_sources(
        None,
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pg = runtime.block_on(async {
        let pg = udl::postgres::PgStore::connect(
            config.store::<udl::postgres::PostgresConfig>().unwrap(),
        )
        .await
        .unwrap();
        let writer =
            udl::privacy::audit::AuditWriter::start(pg.clone(), std::time::Duration::from_secs(5));
        // Five reads by a clinician (the fifth break-glass), two refused reads by a stranger,
        // one by a patient, spread over three days.
        let mut entries: Vec<_> = (0..5).map(fake_read).collect();
        for n in 0..2 {
            let mut denied = fake_read(n);
            denied.actor_id = "stranger-fake-9".into();
            denied.outcome = AccessOutcome::Denied;
            entries.push(denied);
        }
        let mut own = fake_read(0);
        (own.actor_id, own.actor_role, own.purpose) =
            (FAKE_PATIENT.into(), Role::Patient, Purpose::PatientRequest);
        entries.push(own);
        for (n, mut entry) in entries.into_iter().enumerate() {
            entry.occurred_at -= chrono::Duration::days((n % 3) as i64);
            writer.append(entry).await.unwrap();
        }
        pg
    });

    let dir = std::env::temp_dir().join(&schema);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, patient) in [("accounting", Some(FAKE_PATIENT)), ("summary", None)] {
        let mut args = vec![
            "compliance",
            "report",
            "--actor",
            "auditor-fake-1",
            "--format",
            "html",
        ];
        if let Some(patient) = patient {
            args.extend(["--patient", patient]);
        }
        // The log as the report will see it (reading a report is recorded after it is built).
        let expected = runtime.block_on(log_figures(&pg, patient));
        let out = udl(&args, &env);
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        let path = dir.join(format!("{name}.html"));
        std::fs::write(&path, text(&out).0).unwrap();
        let dom = rendered(&path);
        let shown = metrics(&dom);
        for (metric, value) in &expected {
            assert_eq!(
                shown.get(metric),
                Some(value),
                "{name}: {metric} in {shown:?}"
            );
        }
        assert!(
            dom.contains("<svg") && dom.contains("data-day="),
            "{name}: no chart"
        );
        assert_eq!(
            dom.matches("data-day=").count(),
            3,
            "{name}: one bar per day"
        );
        assert!(!dom.contains("[\""), "{name}: raw JSON arrays in the page");
        assert!(dom.contains("Needs attention"), "{name}");
        assert!(dom.contains("break-glass"), "{name}");
    }
    runtime.block_on(async {
        let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pg.pool())
            .await
            .unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// The figures a report must show, counted from the log itself (for one patient, or all).
async fn log_figures(pg: &udl::postgres::PgStore, patient: Option<&str>) -> BTreeMap<String, i64> {
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT actor_id, actor_role, purpose, outcome, count(*) FROM phi_access_log
         WHERE $1::text IS NULL OR patient_id = $1 GROUP BY 1, 2, 3, 4",
    )
    .bind(patient)
    .fetch_all(pg.pool())
    .await
    .unwrap();
    let mut figures = BTreeMap::new();
    let mut add = |key: String, n: i64| *figures.entry(key).or_insert(0) += n;
    for (actor, role, purpose, outcome, n) in rows {
        add("total".into(), n);
        add(outcome.clone(), n);
        add(format!("actor:{actor}"), n);
        add(format!("role:{role}"), n);
        add(format!("purpose:{purpose}"), n);
        if purpose == "emergency" {
            add("break_glass".into(), n);
        }
    }
    figures
}
