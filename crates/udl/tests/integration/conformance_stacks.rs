//! The conformance suite through every stack shape `DataLayer` hands out, on every backend:
//! with and without the privacy layers, with and without the tiered cache (the suite's entity
//! declares one), always over the store's resilience layer.

use std::sync::Arc;

use base64::Engine as _;
use udl::{DataLayer, Entity, RecordStore, StoreKind};

use crate::common;
use common::connect_migrated;
use udl_testkit::fixtures::{Note, NOTES_POSTGRES_DDL};
use udl_testkit::{servers, Harness, Subject};
use uuid::Uuid;

/// One data layer in namespaces of its own, and the store the suite runs on.
struct Stack {
    data: DataLayer,
    store: StoreKind,
    namespace: String,
}

/// A data layer for `store` (PostgreSQL is always configured: the privacy layers keep their
/// keys and audit log there), with `[privacy]` and Redis when asked.
async fn stack(store: StoreKind, privacy: bool, cache: bool) -> Stack {
    let namespace = servers::unique_namespace("cs");
    let mut vars = vec![
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", namespace.clone()),
        ("UDL__POSTGRES__POOL__MIN", "0".to_owned()),
    ];
    match store {
        StoreKind::MONGO => {
            vars.push(("UDL__MONGO__URL", servers::mongo_url()));
            vars.push(("UDL__MONGO__DATABASE", namespace.clone()));
        }
        StoreKind::SCYLLA => {
            vars.push(("UDL__SCYLLA__NODES", servers::scylla_node()));
            vars.push(("UDL__SCYLLA__KEYSPACE", namespace.clone()));
            vars.push(("UDL__SCYLLA__CONSISTENCY", "one".to_owned()));
        }
        _ => {}
    }
    if cache {
        vars.push(("UDL__REDIS__URL", servers::redis_url()));
        vars.push(("UDL__REDIS__KEY_PREFIX", format!("{namespace}:")));
    }
    if privacy {
        let key = [Uuid::new_v4().into_bytes(), Uuid::new_v4().into_bytes()].concat();
        let ring = format!(
            "1:{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        vars.push(("UDL__PRIVACY__KEY_RING", ring));
    }
    let config =
        udl::config::from_sources(None, vars.into_iter().map(|(k, v)| (k.to_owned(), v))).unwrap();
    let data = connect_migrated(&config, "notes", NOTES_POSTGRES_DDL).await;
    if store == StoreKind::SCYLLA {
        let table = udl::scylla::cql::create_table(Note::meta());
        udl::scylla::ScyllaMigrator::new(vec![udl::scylla::CqlMigration::new(
            1,
            "notes",
            vec![table.into()],
        )])
        .unwrap()
        .up(data.scylla().unwrap())
        .await
        .unwrap();
    }
    Stack {
        data,
        store,
        namespace,
    }
}

impl Harness for Stack {
    fn subject(&self) -> Subject {
        let store: Arc<dyn RecordStore> = self.data.records_for(Note::meta(), self.store).unwrap();
        Subject {
            store,
            refuses_nul_in_text: self.store == StoreKind::POSTGRES,
        }
    }

    async fn teardown(self) {
        let pg = self.data.postgres().unwrap();
        let sql = format!("DROP SCHEMA \"{}\" CASCADE", self.namespace);
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pg.pool())
            .await;
        if let Ok(mongo) = self.data.mongo() {
            let _ = mongo.database().drop().await;
        }
        if let Ok(scylla) = self.data.scylla() {
            let cql = format!("DROP KEYSPACE IF EXISTS \"{}\"", scylla.keyspace());
            let _ = scylla.session().get_session().query_unpaged(cql, ()).await;
        }
        if let Ok(redis) = self.data.redis() {
            let mut conn = redis.connection();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.namespace))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
            }
        }
    }
}

/// One module of conformance tests per (store, privacy, cache) shape.
macro_rules! shapes {
    ($($name:ident: $store:expr, privacy = $privacy:expr, cache = $cache:expr;)*) => {
        $(
            mod $name {
                async fn setup() -> super::Stack {
                    use udl::StoreKind;
                    super::stack($store, $privacy, $cache).await
                }
                udl_testkit::conformance_suite!(setup);
            }
        )*
    };
}

shapes! {
    postgres_resilience: StoreKind::POSTGRES, privacy = false, cache = false;
    postgres_cache: StoreKind::POSTGRES, privacy = false, cache = true;
    postgres_privacy: StoreKind::POSTGRES, privacy = true, cache = false;
    postgres_privacy_cache: StoreKind::POSTGRES, privacy = true, cache = true;
    mongo_resilience: StoreKind::MONGO, privacy = false, cache = false;
    mongo_cache: StoreKind::MONGO, privacy = false, cache = true;
    mongo_privacy: StoreKind::MONGO, privacy = true, cache = false;
    mongo_privacy_cache: StoreKind::MONGO, privacy = true, cache = true;
    scylla_resilience: StoreKind::SCYLLA, privacy = false, cache = false;
    scylla_cache: StoreKind::SCYLLA, privacy = false, cache = true;
    scylla_privacy: StoreKind::SCYLLA, privacy = true, cache = false;
    scylla_privacy_cache: StoreKind::SCYLLA, privacy = true, cache = true;
}
