//! What the data-layer privacy tests share: a patient entity with encrypted fields, and a data
//! layer over all four real servers in namespaces of the test's own.

use base64::Engine as _;
use chrono::NaiveDate;
use udl::{AccessContext, DataLayer, Entity, Purpose, Repository, Role, StoreKind, UdlConfig};
use udl_testkit::servers;
use uuid::Uuid;

/// A patient's profile: two PHI fields and an e-mail that must be found by equality, cached
/// (sealed) in this process and in Redis.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "patient_profiles", cache = "l1_l2")]
pub struct PatientProfile {
    #[udl(id, internal)]
    pub id: Uuid,
    #[udl(
        pii,
        plaintext = "records are found and access-checked by their patient"
    )]
    pub patient_id: Uuid,
    #[udl(pii, blind_index = "case_insensitive", mask = "email_domain")]
    pub email: String,
    #[udl(phi)]
    pub diagnosis: String,
    #[udl(phi)]
    pub notes: Option<String>,
    #[udl(phi)]
    pub born_on: NaiveDate,
    #[udl(internal)]
    pub clinic: String,
    #[udl(version, internal)]
    pub version: i64,
}

/// The stored form's table in PostgreSQL: ciphertext columns and the e-mail's blind index.
pub const PROFILES_DDL: &str = "CREATE TABLE patient_profiles (
    id UUID PRIMARY KEY, patient_id UUID NOT NULL, email BYTEA NOT NULL, email_bidx BYTEA NOT NULL UNIQUE,
    diagnosis BYTEA NOT NULL, notes BYTEA, born_on BYTEA NOT NULL, clinic TEXT NOT NULL,
    version BIGINT NOT NULL)";

/// Marks every planted value; a fresh one per run so an old run's leftovers cannot match.
pub fn canary() -> String {
    format!("CANARY{}", &Uuid::new_v4().simple().to_string()[..10])
}

/// A profile of a new patient holding canaries.
pub fn profile(canary: &str, n: u32) -> PatientProfile {
    PatientProfile {
        id: Uuid::new_v4(),
        patient_id: Uuid::new_v4(),
        email: format!("{canary}.patient{n}@example.test"),
        diagnosis: format!("{canary} fake diagnosis {n}"),
        notes: n
            .is_multiple_of(2)
            .then(|| format!("{canary} fake note {n}")),
        born_on: NaiveDate::from_ymd_opt(1970, 1, 1 + n).unwrap(),
        clinic: format!("clinic-{n}"),
        version: 1,
    }
}

/// A platform job's context: allowed by the access policy, audited like any other.
pub fn ctx() -> AccessContext {
    AccessContext::system("privacy-test")
}

/// A patient and a clinician treating them, as users with an active care relationship.
pub struct Care {
    pub patient: Uuid,
    pub clinician: Uuid,
}

impl Care {
    /// The clinician treating the patient.
    pub fn treating(&self) -> AccessContext {
        AccessContext::new(
            self.clinician.to_string(),
            Role::Clinician,
            Purpose::Treatment,
        )
        .unwrap()
        .for_patient(self.patient.to_string())
        .unwrap()
    }
}

fn key_ring() -> String {
    let key: [u8; 32] = rand_bytes();
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn rand_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    out[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    out
}

/// The data layer of `config` once PostgreSQL has the platform's tables and the test's own
/// (`name`, created by `ddl`): the privacy layers load their keys from those tables.
pub async fn connect_migrated(
    config: &UdlConfig,
    name: &'static str,
    ddl: &'static str,
) -> DataLayer {
    let pg = match udl::postgres::PgStore::connect(
        config.store::<udl::postgres::PostgresConfig>().unwrap(),
    )
    .await
    {
        Ok(pg) => pg,
        Err(e) => servers::unreachable("PostgreSQL", &servers::postgres_url(), &e),
    };
    let mut migrations = udl::postgres::models::migrations();
    let next = migrations.len() as i64 + 1;
    migrations.push(udl::postgres::Migration::new(next, name, ddl));
    udl::postgres::Migrator::new(migrations)
        .unwrap()
        .up(&pg)
        .await
        .unwrap();
    pg.pool().close().await;
    match DataLayer::connect(config).await {
        Ok(data) => data,
        Err(e) => servers::unreachable("the servers", "scripts/services up", &e),
    }
}

pub struct World {
    pub data: DataLayer,
    pub namespace: String,
    /// The key ring `[privacy]` was given.
    pub key_ring: String,
    /// The configuration it was given, as `UDL__...` variables (for a child process).
    pub vars: Vec<(String, String)>,
}

/// Every store in namespaces of its own, with the privacy layers when `with_privacy`.
pub async fn world(with_privacy: bool) -> World {
    world_on(with_privacy, servers::postgres_url()).await
}

/// [`world`] with PostgreSQL reached at `postgres_url` (a proxy, say).
pub async fn world_on(with_privacy: bool, postgres_url: String) -> World {
    world_with(with_privacy, postgres_url, Vec::new()).await
}

/// [`world_on`] with more configuration (`UDL__...` variables).
pub async fn world_with(
    with_privacy: bool,
    postgres_url: String,
    more: Vec<(&'static str, String)>,
) -> World {
    let namespace = servers::unique_namespace("fe");
    let ring = key_ring();
    let mut vars = vec![
        ("UDL__POSTGRES__URL", postgres_url),
        ("UDL__POSTGRES__POOL__MIN", "0".to_owned()),
        ("UDL__POSTGRES__SCHEMA", namespace.clone()),
        ("UDL__MONGO__URL", servers::mongo_url()),
        ("UDL__MONGO__DATABASE", namespace.clone()),
        ("UDL__REDIS__URL", servers::redis_url()),
        ("UDL__REDIS__KEY_PREFIX", format!("{namespace}:")),
        ("UDL__SCYLLA__NODES", servers::scylla_node()),
        ("UDL__SCYLLA__KEYSPACE", namespace.clone()),
        ("UDL__SCYLLA__CONSISTENCY", "one".to_owned()),
        ("UDL__RETENTION__CHAT_ARCHIVE", "30d".to_owned()),
    ];
    if with_privacy {
        vars.push(("UDL__PRIVACY__KEY_RING", ring.clone()));
        vars.push(("UDL__PRIVACY__AUDIT_TIMEOUT", "2s".to_owned()));
        // Every access decided afresh, so consents granted or revoked mid-test count at once.
        vars.push(("UDL__PRIVACY__POLICY_CACHE_TTL", "1ms".to_owned()));
    }
    vars.extend(more);
    let vars: Vec<(String, String)> = vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let config = udl::config::from_sources(None, vars.clone()).unwrap();
    let data = connect_migrated(&config, "profiles", PROFILES_DDL).await;
    let stored = udl::privacy::stored_form(PatientProfile::meta()).unwrap();
    let table = udl::scylla::cql::create_table(stored);
    let mut migrations = udl::scylla::models::migrations();
    let next = migrations.len() as i64 + 1;
    migrations.push(udl::scylla::CqlMigration::new(
        next,
        "profiles",
        vec![table.into()],
    ));
    udl::scylla::ScyllaMigrator::new(migrations)
        .unwrap()
        .up(data.scylla().unwrap())
        .await
        .unwrap();
    World {
        data,
        namespace,
        key_ring: ring,
        vars,
    }
}

impl World {
    /// Runs `sql` with the append-only triggers off, as a superuser could.
    pub async fn tamper(&self, sql: String) {
        let mut conn = self
            .data
            .postgres()
            .unwrap()
            .pool()
            .acquire()
            .await
            .unwrap();
        for step in [
            "SET session_replication_role = replica".to_owned(),
            sql,
            "SET session_replication_role = origin".to_owned(),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(step))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }

    /// Every value of every string, hash, list, set and sorted set under the test's prefix.
    pub async fn redis_contents(&self) -> Vec<u8> {
        let mut redis = self.data.redis().unwrap().connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.namespace))
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(!keys.is_empty(), "the cache wrote to Redis");
        let mut out = Vec::new();
        for key in keys {
            out.extend_from_slice(key.as_bytes());
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            let command = match kind.as_str() {
                "string" => redis::cmd("GET").arg(&key).clone(),
                "hash" => redis::cmd("HGETALL").arg(&key).clone(),
                "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
                "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
                "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).clone(),
                other => panic!("unexpected Redis type {other} at {key}"),
            };
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "string" => vec![command.query_async(&mut redis).await.unwrap()],
                _ => command.query_async(&mut redis).await.unwrap(),
            };
            values.iter().for_each(|v| out.extend_from_slice(v));
        }
        out
    }

    /// Every row of every table of the test's PostgreSQL schema, as JSON text (the audit log,
    /// the change history, the data keys and the token vault included).
    pub async fn postgres_contents(&self) -> String {
        let pg = self.data.postgres().unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_all(pg.pool())
        .await
        .unwrap();
        assert!(
            tables.iter().any(|t| t.starts_with("phi_access_log_y")),
            "the audit log's partitions are read too: {tables:?}"
        );
        let mut out = String::new();
        for table in tables {
            let sql = format!(
                "SELECT coalesce(string_agg(row_to_json(t)::text, ''), '') FROM \"{table}\" t"
            );
            let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(pg.pool())
                .await
                .unwrap();
            out.push_str(&rows);
        }
        out
    }

    /// Every document of every collection of the test's MongoDB database, as BSON.
    pub async fn mongo_contents(&self) -> Vec<u8> {
        let names = self
            .data
            .mongo()
            .unwrap()
            .database()
            .list_collection_names()
            .await
            .unwrap();
        let mut raw = Vec::new();
        for name in names {
            for doc in self.documents(&name).await {
                doc.to_writer(&mut raw).unwrap();
            }
        }
        raw
    }

    /// Every row of every table of the test's keyspace, as CQL JSON (blobs in hex).
    pub async fn scylla_contents(&self) -> String {
        let scylla = self.data.scylla().unwrap();
        let session = scylla.session().get_session();
        let tables = session
            .query_unpaged(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
                (scylla.keyspace(),),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap();
        let tables: Vec<(String,)> = tables.rows().unwrap().collect::<Result<_, _>>().unwrap();
        let mut out = String::new();
        for (table,) in tables {
            let cql = format!("SELECT JSON * FROM \"{}\".\"{table}\"", scylla.keyspace());
            let rows = session
                .query_unpaged(cql, ())
                .await
                .unwrap()
                .into_rows_result()
                .unwrap();
            for row in rows.rows::<(String,)>().unwrap() {
                out.push_str(&row.unwrap().0);
            }
        }
        out
    }

    /// The PHI access log's entries for the request of `request`, in chain order.
    pub async fn entries_of(
        &self,
        request: &AccessContext,
    ) -> Vec<udl::postgres::models::PhiAccessLogEntry> {
        // The log is read as stored, as an auditor's tool would (reading it is not itself a
        // PHI access of the patient's records).
        let log = Repository::<udl::postgres::models::PhiAccessLogEntry>::unaudited(
            self.data.unaudited_records(StoreKind::POSTGRES).unwrap(),
        )
        .unwrap();
        let filter = udl::field("request_id").eq(request.request_id());
        let sort = [udl::SortKey::asc("seq")];
        log.list(&ctx(), &filter, &sort, udl::Page::first(100))
            .await
            .unwrap()
            .items
    }

    /// Every document of `collection` as MongoDB holds it, read past udl.
    pub async fn documents(&self, collection: &str) -> Vec<mongodb::bson::Document> {
        use futures_util::TryStreamExt as _;
        let database = self.data.mongo().unwrap().database();
        database
            .collection(collection)
            .find(mongodb::bson::doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    }

    /// A user with `role` (their e-mail sealed by the privacy layers).
    pub async fn user(&self, role: Role) -> Uuid {
        let id = Uuid::new_v4();
        let now = chrono::Utc::now();
        let user = udl::postgres::models::User {
            id,
            email: format!("user-{id}@example.test"),
            display_name: "Fake User".into(),
            role,
            status: udl::postgres::models::UserStatus::Active,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let users = self
            .data
            .repository::<udl::postgres::models::User>()
            .unwrap();
        users.create(&ctx(), user).await.unwrap();
        id
    }

    /// A new patient and a clinician treating them since an hour ago.
    pub async fn care(&self) -> Care {
        let care = Care {
            patient: self.user(Role::Patient).await,
            clinician: self.user(Role::Clinician).await,
        };
        let now = chrono::Utc::now();
        let relationship = udl::postgres::models::PatientRelationship {
            id: Uuid::new_v4(),
            patient_id: care.patient,
            actor_id: care.clinician,
            kind: udl::postgres::models::RelationshipKind::Therapist,
            valid_from: now - chrono::Duration::hours(1),
            valid_until: None,
            created_at: now,
            version: 1,
        };
        let relationships = self
            .data
            .repository::<udl::postgres::models::PatientRelationship>()
            .unwrap();
        relationships.create(&ctx(), relationship).await.unwrap();
        care
    }

    /// Profiles in `store`, through every layer: policy and audit, encryption, the cache.
    pub fn repo(&self, store: StoreKind) -> Repository<PatientProfile> {
        self.data.repository_in(store).unwrap()
    }

    /// Where reads of profiles in PostgreSQL (which declare a cache) were answered so far.
    pub fn cache_stats(&self) -> udl::cache::CacheStats {
        self.data.cache_stats(StoreKind::POSTGRES).unwrap()
    }

    pub async fn finish(self) {
        let pg = self.data.postgres().unwrap();
        let sql = format!("DROP SCHEMA \"{}\" CASCADE", self.namespace);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pg.pool())
            .await
            .unwrap();
        self.data.mongo().unwrap().database().drop().await.unwrap();
        let scylla = self.data.scylla().unwrap();
        scylla
            .session()
            .get_session()
            .query_unpaged(
                format!("DROP KEYSPACE IF EXISTS \"{}\"", scylla.keyspace()),
                (),
            )
            .await
            .unwrap();
        let mut redis = self.data.redis().unwrap().connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.namespace))
            .query_async(&mut redis)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut redis)
                .await
                .unwrap();
        }
    }
}

/// `host:port` of a URL like `postgres://user@host:port/db`.
pub fn url_host_port(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap();
    let authority = rest.split('/').next().unwrap();
    authority.rsplit('@').next().unwrap().to_owned()
}

/// The access-log entry of a fake clinician's read, numbered `n` (seq and hashes unset: the
/// writer assigns them).
pub fn fake_access(n: usize) -> udl::postgres::models::PhiAccessLogEntry {
    udl::postgres::models::PhiAccessLogEntry {
        seq: 0,
        id: Uuid::new_v4(),
        occurred_at: chrono::Utc::now(),
        actor_id: format!("clinician-fake-{n}"),
        actor_role: Role::Clinician,
        purpose: udl::Purpose::Treatment,
        patient_id: None,
        entity: "patient_profiles".into(),
        record_ids: serde_json::json!([]),
        fields: serde_json::json!([]),
        operation: "get".into(),
        outcome: udl::postgres::models::AccessOutcome::Allowed,
        request_id: format!("req-fake-{n}"),
        prev_hash: None,
        hash: Vec::new(),
    }
}

/// Fails naming `place` when `canary`, as text or hex, is anywhere in `haystack`.
pub fn assert_absent(canary: &str, haystack: &[u8], place: &str) {
    let needles = [canary.as_bytes().to_vec(), hex::encode(canary).into_bytes()];
    for needle in needles {
        assert!(
            !haystack
                .windows(needle.len())
                .any(|w| w == needle.as_slice()),
            "canary in the clear in {place}"
        );
    }
}

impl World {
    /// Waits (up to `within`) until the change relay of `slot` has acknowledged the WAL
    /// written so far: it acknowledges only what every sink holds, so every change committed
    /// before the call is in them (batches are written several at once, so a later event
    /// being there says nothing of an earlier one).
    pub async fn wait_acknowledged(&self, slot: &str, within: std::time::Duration) {
        let pg = self.data.postgres().unwrap();
        let written: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(pg.pool())
            .await
            .unwrap();
        udl_testkit::wait::until("the relay acknowledges what was written", within, || async {
            let acked: Option<bool> = sqlx::query_scalar(
                "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
            )
            .bind(slot)
            .bind(&written)
            .fetch_one(pg.pool())
            .await
            .unwrap();
            acked.unwrap_or(false).then_some(())
        })
        .await;
    }
}
