//! PHI get-by-id with every privacy layer (access policy, audit made durable in the local
//! journal with group commit and shipped to PostgreSQL, field decryption) against the same get
//! with them off: the same entity, the same number of rows, on one PostgreSQL, both behind the
//! resilience layer. At 1, 16 and 64 tasks, with the client's CPU time per read on each side
//! and how long audit entries took from their sync to PostgreSQL.

use std::sync::Arc;

use base64::Engine as _;
use udl::postgres::models::{PatientRelationship, RelationshipKind, User, UserStatus};
use udl::postgres::Migration;
use udl::{AccessContext, DataLayer, Purpose, Repository, Result, Role, StoreKind, UdlConfig};
use udl_derive::Entity;
use udl_testkit::servers;
use uuid::Uuid;

use crate::fixture::CONCURRENCY;
use crate::measure::{compare, header, report, throughput, throughput_tallied, CpuTally, Plan};

const ROWS: usize = 2_000;

/// A session note: its body is PHI, encrypted at rest when the privacy layers are on.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "bench_notes")]
struct BenchNote {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(
        pii,
        plaintext = "records are found and access-checked by their patient"
    )]
    patient_id: Uuid,
    #[udl(phi)]
    body: String,
    #[udl(internal)]
    author: String,
    #[udl(version, internal)]
    version: i64,
}

/// The same note as the privacy layers off see it: a PII- or PHI-bearing entity is reached
/// only through them, so the plain side declares nothing sensitive.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "bench_notes")]
struct PlainBenchNote {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(internal)]
    patient_id: Uuid,
    #[udl(internal)]
    body: String,
    #[udl(internal)]
    author: String,
    #[udl(version, internal)]
    version: i64,
}

impl From<BenchNote> for PlainBenchNote {
    fn from(note: BenchNote) -> Self {
        PlainBenchNote {
            id: note.id,
            patient_id: note.patient_id,
            body: note.body,
            author: note.author,
            version: note.version,
        }
    }
}

const PRIVATE_DDL: &str = "CREATE TABLE bench_notes (id UUID PRIMARY KEY, patient_id UUID NOT NULL,
    body BYTEA NOT NULL, author TEXT NOT NULL, version BIGINT NOT NULL)";
const PLAIN_DDL: &str = "CREATE TABLE bench_notes (id UUID PRIMARY KEY, patient_id UUID NOT NULL,
    body TEXT NOT NULL, author TEXT NOT NULL, version BIGINT NOT NULL)";

/// Where the private side's audit journal lives during the run.
fn journal_dir(schema: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("udl-bench-journal-{schema}"))
}

/// Where the private side's audit entries are made durable.
#[derive(Clone, Copy, PartialEq)]
enum Audit {
    /// No privacy layers (the plain side).
    Off,
    /// The local journal, shipped to PostgreSQL.
    Journal,
    /// A PostgreSQL commit per batch.
    Postgres,
}

/// One key ring for the run: every private data layer opens the same sealed values.
fn key_ring() -> &'static str {
    static RING: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RING.get_or_init(|| {
        let key: Vec<u8> = Uuid::new_v4().as_bytes().repeat(2);
        format!(
            "1:{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    })
}

fn config(schema: &str, audit: Audit) -> Result<UdlConfig> {
    let mut vars = vec![
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", schema.to_owned()),
        ("UDL__POSTGRES__POOL__MIN", CONCURRENCY.to_string()),
        ("UDL__POSTGRES__POOL__MAX", CONCURRENCY.to_string()),
    ];
    if audit != Audit::Off {
        vars.push(("UDL__PRIVACY__KEY_RING", key_ring().to_owned()));
    }
    if audit == Audit::Journal {
        let journal = journal_dir(schema).display().to_string();
        vars.push(("UDL__PRIVACY__AUDIT_JOURNAL_DIR", journal));
    }
    udl::config::from_sources(None, vars.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))
}

/// Migrations of `schema`'s platform tables and the note table in `ddl`, then a data layer.
async fn connect(schema: &str, audit: Audit, ddl: &'static str) -> Result<DataLayer> {
    let config = config(schema, audit)?;
    let pg = udl::postgres::PgStore::connect(
        config
            .store::<udl::postgres::PostgresConfig>()
            .expect("configured"),
    )
    .await?;
    let mut migrations = udl::postgres::models::migrations();
    migrations.push(Migration::new(
        migrations.len() as i64 + 1,
        "bench_notes",
        ddl,
    ));
    udl::postgres::Migrator::new(migrations)?.up(&pg).await?;
    DataLayer::connect(&config).await
}

/// A clinician treating one patient, in `data`'s PostgreSQL (`data` has the privacy layers,
/// which seal the users' e-mails and names and the relationship's kind).
async fn care(data: &DataLayer) -> Result<AccessContext> {
    let system = AccessContext::system("bench");
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for role in [Role::Patient, Role::Clinician] {
        let id = Uuid::new_v4();
        let user = User {
            id,
            email: format!("bench-{id}@example.test"),
            display_name: "Fake Bench User".into(),
            role,
            status: UserStatus::Active,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        data.repository::<User>()?.create(&system, user).await?;
        ids.push(id);
    }
    let relationship = PatientRelationship {
        id: Uuid::new_v4(),
        patient_id: ids[0],
        actor_id: ids[1],
        kind: RelationshipKind::Therapist,
        valid_from: now - chrono::Duration::hours(1),
        valid_until: None,
        created_at: now,
        version: 1,
    };
    data.repository::<PatientRelationship>()?
        .create(&system, relationship)
        .await?;
    AccessContext::new(ids[1].to_string(), Role::Clinician, Purpose::Treatment)?
        .for_patient(ids[0].to_string())
}

fn notes(patient: Uuid) -> Vec<BenchNote> {
    (0..ROWS)
        .map(|n| BenchNote {
            id: Uuid::new_v4(),
            patient_id: patient,
            body: format!("fake session note {n} {}", "x".repeat(200)),
            author: "fake-clinician".into(),
            version: 1,
        })
        .collect()
}

/// Runs the scenario and prints its line.
pub async fn run(plan: &Plan) -> Result<()> {
    let (private_schema, plain_schema) = (
        servers::unique_namespace("bench"),
        servers::unique_namespace("bench"),
    );
    let outcome = compare_sides(plan, &private_schema, &plain_schema).await;
    for schema in [private_schema, plain_schema] {
        let config = config(&schema, Audit::Off)?;
        let pg = udl::postgres::PgStore::connect(
            config
                .store::<udl::postgres::PostgresConfig>()
                .expect("configured"),
        )
        .await?;
        let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(pg.pool())
            .await;
        let _ = std::fs::remove_dir_all(journal_dir(&schema));
    }
    outcome
}

async fn compare_sides(plan: &Plan, private_schema: &str, plain_schema: &str) -> Result<()> {
    let private = connect(private_schema, Audit::Journal, PRIVATE_DDL).await?;
    let plain = connect(plain_schema, Audit::Off, PLAIN_DDL).await?;
    let committing = connect(private_schema, Audit::Postgres, PRIVATE_DDL).await?;
    let clinician = Arc::new(care(&private).await?);
    let patient: Uuid = clinician.patient().expect("named").parse().expect("a uuid");
    let private_repo: Repository<BenchNote> = private.repository_in(StoreKind::POSTGRES)?;
    let committing_repo: Repository<BenchNote> = committing.repository_in(StoreKind::POSTGRES)?;
    let plain_repo: Repository<PlainBenchNote> =
        Repository::new(plain.unaudited_records(StoreKind::POSTGRES)?)?;
    let seeded = notes(patient);
    let ids: Arc<Vec<Uuid>> = Arc::new(seeded.iter().map(|n| n.id).collect());
    private_repo.create_many(&clinician, seeded.clone()).await?;
    plain_repo
        .create_many(&clinician, seeded.into_iter().map(Into::into).collect())
        .await?;

    if !plan.wants("phi_get_private_vs_plain") {
        return Ok(());
    }
    println!(
        "privacy: PHI get by id, {}s per side per round, {} rounds; udl = policy + audit \
         (local journal, shipped to PostgreSQL) + decryption + resilience, raw = resilience only",
        plan.window.as_secs(),
        plan.rounds
    );
    header();
    let private_op = get_op(private_repo, Arc::clone(&ids), Arc::clone(&clinician));
    let committing_op = get_op(committing_repo, Arc::clone(&ids), Arc::clone(&clinician));
    let plain_op = get_op(plain_repo, ids, clinician);
    for tasks in [1, CONCURRENCY, 64] {
        let (private_cpu, plain_cpu) = (Arc::default(), Arc::default());
        let (u, r) = compare(
            plan.rounds,
            || {
                throughput_tallied(
                    tasks,
                    plan.window,
                    private_op.clone(),
                    Arc::clone(&private_cpu),
                )
            },
            || throughput_tallied(tasks, plan.window, plain_op.clone(), Arc::clone(&plain_cpu)),
        )
        .await;
        let name = match tasks {
            CONCURRENCY => "phi_get_private_vs_plain".to_owned(),
            _ => format!("phi_get_{tasks}_tasks"),
        };
        report(&name, u, r);
        let audit = private.audit_writer()?;
        let lag = |q| {
            audit
                .shipping_lag(q)
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
        };
        println!(
            "  {tasks} tasks: client CPU per read udl {:.1} us, raw {:.1} us; audit entry \
             synced -> in PostgreSQL p50 {:.1} ms, p99 {:.1} ms",
            lock(&private_cpu).micros_per_op(),
            lock(&plain_cpu).micros_per_op(),
            lag(0.5),
            lag(0.99)
        );
    }
    // For comparison: each batch of entries committed in PostgreSQL instead (on this machine's
    // local PostgreSQL, which runs without fsync, that commit costs no disk flush).
    let (u, r) = compare(
        plan.rounds,
        || throughput(CONCURRENCY, plan.window, committing_op.clone()),
        || throughput(CONCURRENCY, plan.window, plain_op.clone()),
    )
    .await;
    report("phi_get_pg_commit", u, r);
    private.shutdown(std::time::Duration::from_secs(10)).await;
    Ok(())
}

/// A closed-loop get through `repo` of one of `ids` (spread by the call's number), as `ctx`.
fn get_op<T: udl::Entity<Id = Uuid> + Send + Sync + 'static>(
    repo: Repository<T>,
    ids: Arc<Vec<Uuid>>,
    ctx: Arc<AccessContext>,
) -> impl Fn(u64) -> futures_util::future::BoxFuture<'static, ()> + Clone + Send + Sync + 'static {
    move |i| {
        let (repo, ids, ctx) = (repo.clone(), Arc::clone(&ids), Arc::clone(&ctx));
        Box::pin(async move {
            let id = ids[(i as usize * 7919) % ids.len()];
            assert!(repo.get(&ctx, &id).await.expect("get").is_some());
        })
    }
}

fn lock(tally: &std::sync::Mutex<CpuTally>) -> std::sync::MutexGuard<'_, CpuTally> {
    tally.lock().expect("tally lock")
}
