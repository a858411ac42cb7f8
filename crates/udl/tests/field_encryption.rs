//! Field encryption and blind indexes through `DataLayer` on the real servers: entities round
//! trip on PostgreSQL, MongoDB and ScyllaDB and through the Redis cache; equality filters find
//! encrypted fields by their blind index; and read back with each store's own driver, no
//! canary value appears in the clear anywhere (rows, documents, CQL rows, Redis keys and
//! values, logs, metrics).

use std::sync::Arc;

use base64::Engine as _;
use chrono::NaiveDate;
use futures_util::TryStreamExt as _;
use udl::cache::{CacheConfig, CachedStore};
use udl::{
    field, AccessContext, Changes, DataLayer, Entity, ErrorKind, Filter, Page, Purpose, Repository,
    Role, SortKey, StoreKind, UdlConfig,
};
use udl_testkit::servers;
use uuid::Uuid;

/// A patient's profile: two PHI fields and an e-mail that must be found by equality.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "patient_profiles", crate = "udl")]
struct PatientProfile {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(pii, encrypt, blind_index = "case_insensitive", mask = "email_domain")]
    email: String,
    #[udl(phi, encrypt)]
    diagnosis: String,
    #[udl(phi, encrypt)]
    notes: Option<String>,
    #[udl(phi, encrypt)]
    born_on: NaiveDate,
    #[udl(internal)]
    clinic: String,
    #[udl(version, internal)]
    version: i64,
}

/// The stored form's table in PostgreSQL: ciphertext columns and the e-mail's blind index.
const PROFILES_DDL: &str = "CREATE TABLE patient_profiles (
    id UUID PRIMARY KEY, email BYTEA NOT NULL, email_bidx BYTEA NOT NULL UNIQUE,
    diagnosis BYTEA NOT NULL, notes BYTEA, born_on BYTEA NOT NULL, clinic TEXT NOT NULL,
    version BIGINT NOT NULL)";

/// Marks every planted value; a fresh one per run so an old run's leftovers cannot match.
fn canary() -> String {
    format!("CANARY{}", &Uuid::new_v4().simple().to_string()[..10])
}

fn profile(canary: &str, n: u32) -> PatientProfile {
    PatientProfile {
        id: Uuid::new_v4(),
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

fn ctx() -> AccessContext {
    AccessContext::new("clinician-test", Role::Clinician, Purpose::Treatment).unwrap()
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

struct World {
    data: DataLayer,
    namespace: String,
}

async fn world(with_privacy: bool) -> World {
    let namespace = servers::unique_namespace("fe");
    let mut vars = vec![
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", namespace.clone()),
        ("UDL__MONGO__URL", servers::mongo_url()),
        ("UDL__MONGO__DATABASE", namespace.clone()),
        ("UDL__REDIS__URL", servers::redis_url()),
        ("UDL__REDIS__KEY_PREFIX", format!("{namespace}:")),
        ("UDL__SCYLLA__NODES", servers::scylla_node()),
        ("UDL__SCYLLA__KEYSPACE", namespace.clone()),
        ("UDL__SCYLLA__CONSISTENCY", "one".to_owned()),
    ];
    if with_privacy {
        vars.push(("UDL__PRIVACY__KEY_RING", key_ring()));
    }
    let config =
        UdlConfig::from_sources(None, vars.into_iter().map(|(k, v)| (k.to_owned(), v))).unwrap();
    // The data keys' table must exist before the data layer loads them.
    let pg = match udl::postgres::PgStore::connect(config.postgres.as_ref().unwrap()).await {
        Ok(pg) => pg,
        Err(e) => servers::unreachable("PostgreSQL", &servers::postgres_url(), &e),
    };
    let mut migrations = udl::postgres::models::migrations();
    let next = migrations.len() as i64 + 1;
    migrations.push(udl::postgres::Migration::new(
        next,
        "profiles",
        PROFILES_DDL,
    ));
    udl::postgres::Migrator::new(migrations)
        .unwrap()
        .up(&pg)
        .await
        .unwrap();
    let data = match DataLayer::connect(&config).await {
        Ok(d) => d,
        Err(e) => servers::unreachable("the four servers", "scripts/services up", &e),
    };
    let stored = udl::privacy::stored_form(PatientProfile::meta()).unwrap();
    let table = udl::scylla::cql::create_table(stored);
    udl::scylla::ScyllaMigrator::new(vec![udl::scylla::CqlMigration::new(
        1,
        "profiles",
        vec![table.into()],
    )])
    .unwrap()
    .up(data.scylla().unwrap())
    .await
    .unwrap();
    World { data, namespace }
}

impl World {
    fn repo(&self, store: StoreKind) -> Repository<PatientProfile> {
        self.data.repository(store).unwrap()
    }

    /// Profiles through the privacy layer over the Redis cache over PostgreSQL.
    async fn cached_repo(&self) -> (Arc<CachedStore>, Repository<PatientProfile>) {
        let source = self.data.records(StoreKind::Postgres).unwrap();
        let cache = CachedStore::new(
            source,
            self.data.redis().unwrap().clone(),
            CacheConfig::default(),
        )
        .await
        .unwrap();
        let protected = self
            .data
            .protect(PatientProfile::meta(), cache.clone())
            .unwrap();
        (cache, Repository::new(protected).unwrap())
    }

    async fn finish(self) {
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

#[tokio::test]
async fn encrypted_entities_round_trip_and_are_found_by_blind_index_on_every_store() {
    let w = world(true).await;
    let canary = canary();
    for store in [StoreKind::Postgres, StoreKind::Mongo, StoreKind::Scylla] {
        let repo = w.repo(store);
        let (a, b) = (profile(&canary, 1), profile(&canary, 2));
        repo.create(&ctx(), a.clone()).await.unwrap();
        repo.create(&ctx(), b.clone()).await.unwrap();
        assert!(
            repo.get(&ctx(), &a.id).await.unwrap() == Some(a.clone()),
            "{store}"
        );
        assert!(
            repo.get(&ctx(), &b.id).await.unwrap() == Some(b.clone()),
            "{store}"
        );

        let changes = Changes::new()
            .set("diagnosis", format!("{canary} revised"))
            .set("notes", Option::<String>::None)
            .set("email", format!("{canary}.moved@example.test"));
        assert!(
            repo.update(&ctx(), &b.id, changes).await.unwrap(),
            "{store}"
        );
        let updated = repo.get(&ctx(), &b.id).await.unwrap().unwrap();
        assert_eq!(updated.diagnosis, format!("{canary} revised"), "{store}");
        assert_eq!(updated.notes, None);
        assert_eq!(updated.email, format!("{canary}.moved@example.test"));

        if store == StoreKind::Scylla {
            // ScyllaDB serves only key lookups, and the blind index is not a key.
            let by_email = field("email").eq(a.email.clone());
            let err = repo.count(&ctx(), &by_email).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
            continue;
        }
        // Equality goes through the blind index, which ignores case and surrounding spaces.
        let shouted = format!("  {}  ", a.email.to_uppercase());
        let found = repo
            .list(&ctx(), &field("email").eq(shouted), &[], Page::first(10))
            .await
            .unwrap();
        assert!(found.items == vec![a.clone()], "{store}");
        let either = field("email").is_in([a.email.clone(), updated.email.clone()]);
        assert_eq!(repo.count(&ctx(), &either).await.unwrap(), 2, "{store}");
        let not_a = field("email").ne(a.email.clone());
        assert_eq!(repo.count(&ctx(), &not_a).await.unwrap(), 1, "{store}");
        assert_eq!(
            repo.count(&ctx(), &field("notes").is_null()).await.unwrap(),
            2
        );

        for refused in [
            field("email").starts_with(canary.clone()),
            field("diagnosis").eq(a.diagnosis.clone()),
            Filter::Not(Box::new(field("born_on").gt(a.born_on))),
        ] {
            let err = repo.count(&ctx(), &refused).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{store}: {err}");
            assert!(err.to_string().contains("encrypted"), "{err}");
            assert!(!err.to_string().contains(&canary), "{err}");
        }
        let err = repo
            .list(
                &ctx(),
                &Filter::All,
                &[SortKey::asc("email")],
                Page::first(10),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        // The unique index moved to the blind index: the same e-mail, another case, conflicts.
        let twin = PatientProfile {
            email: a.email.to_uppercase(),
            ..profile(&canary, 3)
        };
        if store == StoreKind::Postgres {
            let err = repo.create(&ctx(), twin).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
            assert!(!err.to_string().contains(&canary), "{err}");
        }
    }
    w.finish().await;
}

/// Every value of every string, hash, list, set and sorted set under the test's prefix.
async fn redis_contents(w: &World) -> Vec<u8> {
    let mut redis = w.data.redis().unwrap().connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", w.namespace))
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

fn assert_absent(canary: &str, haystack: &[u8], place: &str) {
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

#[tokio::test]
async fn no_canary_is_stored_logged_or_measured_in_the_clear() {
    udl_testkit::logs::capture();
    let w = world(true).await;
    let canary = canary();
    for store in [StoreKind::Postgres, StoreKind::Mongo, StoreKind::Scylla] {
        let repo = w.repo(store);
        let p = profile(&canary, 2);
        repo.create(&ctx(), p.clone()).await.unwrap();
        assert!(repo.get(&ctx(), &p.id).await.unwrap() == Some(p));
    }
    let (cache, cached) = w.cached_repo().await;
    let p = profile(&canary, 4);
    cached.create(&ctx(), p.clone()).await.unwrap();
    for _ in 0..2 {
        assert!(cached.get(&ctx(), &p.id).await.unwrap() == Some(p.clone()));
    }
    let by_email = field("email").eq(p.email.clone());
    for _ in 0..2 {
        let page = cached
            .list(&ctx(), &by_email, &[], Page::first(5))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
    }
    let stats = cache.stats();
    assert_eq!(stats.loads, 1, "the sealed entity was cached: {stats:?}");
    assert!(stats.l1_hits >= 1, "{stats:?}");

    let pg = w.data.postgres().unwrap();
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(p)::text FROM patient_profiles p")
            .fetch_all(pg.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    assert_absent(&canary, rows.concat().as_bytes(), "PostgreSQL");

    let collection = w
        .data
        .mongo()
        .unwrap()
        .database()
        .collection::<mongodb::bson::Document>("patient_profiles");
    let docs: Vec<_> = collection
        .find(mongodb::bson::doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(docs.len(), 1);
    let mut raw = Vec::new();
    for doc in &docs {
        doc.to_writer(&mut raw).unwrap();
    }
    assert_absent(&canary, &raw, "MongoDB");

    let scylla = w.data.scylla().unwrap();
    let cql = format!(
        "SELECT JSON * FROM \"{}\".patient_profiles",
        scylla.keyspace()
    );
    let rows = scylla
        .session()
        .get_session()
        .query_unpaged(cql, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let json: Vec<(String,)> = rows
        .rows::<(String,)>()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(json.len(), 1);
    let json: String = json.into_iter().map(|(j,)| j).collect();
    assert!(
        json.contains("0x"),
        "blobs are rendered as hex: {}",
        json.len()
    );
    assert_absent(&canary, json.as_bytes(), "ScyllaDB");

    assert_absent(&canary, &redis_contents(&w).await, "Redis");
    let logs = udl_testkit::logs::captured();
    assert!(logs.contains("udl.store"), "operations were traced");
    assert_absent(&canary, logs.as_bytes(), "the logs");
    assert_absent(&canary, w.data.metrics().render().as_bytes(), "the metrics");
    w.finish().await;
}

#[tokio::test]
async fn a_ciphertext_moved_or_altered_in_the_store_does_not_open() {
    let w = world(true).await;
    let canary = canary();
    let repo = w.repo(StoreKind::Postgres);
    let (a, b) = (profile(&canary, 1), profile(&canary, 2));
    repo.create(&ctx(), a.clone()).await.unwrap();
    repo.create(&ctx(), b.clone()).await.unwrap();
    let pg = w.data.postgres().unwrap();
    sqlx::query("UPDATE patient_profiles SET diagnosis = (SELECT diagnosis FROM patient_profiles WHERE id = $1) WHERE id = $2")
        .bind(a.id)
        .bind(b.id)
        .execute(pg.pool())
        .await
        .unwrap();
    let err = repo.get(&ctx(), &b.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
    assert!(!err.to_string().contains(&canary), "{err}");

    sqlx::query("UPDATE patient_profiles SET email = set_byte(email, 30, get_byte(email, 30) # 1) WHERE id = $1")
        .bind(a.id)
        .execute(pg.pool())
        .await
        .unwrap();
    let err = repo.get(&ctx(), &a.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
    w.finish().await;
}

#[tokio::test]
async fn without_privacy_an_entity_with_encrypted_fields_is_refused() {
    let w = world(false).await;
    let err = w
        .data
        .repository::<PatientProfile>(StoreKind::Postgres)
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("[privacy]"), "{err}");
    w.finish().await;
}
