//! The tiered cache over PostgreSQL (source) and Redis (L2, L3, invalidation), both real.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use udl_cache::{CacheConfig, CachedStore};
use udl_config::StoreConfig as _;
use udl_core::Entity as _;
use udl_core::{
    AccessContext, Changes, EntityMeta, Filter, Page, Purpose, Query, Record, RecordStore,
    Repository, Result, Role, StoreLayer, Value,
};
use udl_derive::Entity;
use udl_postgres::{Migration, Migrator, PgStore};
use udl_redis::RedisConfig;
use udl_redis::RedisStore;
use udl_resilience::BreakerConfig;
use udl_testkit::fixtures::{note, Note, NOTES_POSTGRES_DDL};
use udl_testkit::private_redis::PrivateRedis;
use udl_testkit::servers;
use udl_testkit::toxiproxy::Proxy;
use uuid::Uuid;

#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "articles", cache = "l1_l2")]
struct Article {
    #[udl(id, public)]
    id: Uuid,
    #[udl(public)]
    title: String,
    #[udl(internal)]
    views: i64,
    #[udl(version, internal)]
    version: i64,
}

fn article(title: &str) -> Article {
    Article {
        id: Uuid::new_v4(),
        title: title.into(),
        views: 0,
        version: 1,
    }
}

/// Counts what reaches the source store.
struct Counting {
    inner: Arc<dyn RecordStore>,
    fetches: AtomicUsize,
    lists: AtomicUsize,
}

#[async_trait]
impl StoreLayer for Counting {
    fn inner(&self) -> &dyn RecordStore {
        &*self.inner
    }

    async fn fetch(
        &self,
        c: &AccessContext,
        e: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        // Slow enough that concurrent misses overlap.
        tokio::task::yield_now().await;
        self.inner.fetch(c, e, id).await
    }

    async fn list(
        &self,
        c: &AccessContext,
        e: &'static EntityMeta,
        q: &Query,
    ) -> Result<Vec<Record>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(c, e, q).await
    }
}

fn ctx() -> AccessContext {
    AccessContext::new("cache-test", Role::Service, Purpose::Operations).unwrap()
}

struct World {
    pg: PgStore,
    source: Arc<Counting>,
    redis_url: String,
    cluster: bool,
    prefix: String,
}

async fn world(redis_url: &str) -> World {
    let schema = servers::unique_namespace("c");
    let vars = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", schema),
        ("UDL__POSTGRES__POOL__MIN", "0".into()),
        ("UDL__POSTGRES__POOL__MAX", "4".into()),
    ];
    let config =
        udl_postgres::PostgresConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
            .unwrap();
    let pg = match PgStore::connect(&config).await {
        Ok(pg) => pg,
        Err(e) => servers::unreachable("PostgreSQL", &servers::postgres_url(), &e),
    };
    let articles = "CREATE TABLE articles (id UUID PRIMARY KEY, title TEXT NOT NULL, views BIGINT NOT NULL, version BIGINT NOT NULL)";
    Migrator::new(vec![
        Migration::new(1, "articles", articles),
        Migration::new(2, "notes", NOTES_POSTGRES_DDL),
    ])
    .unwrap()
    .up(&pg)
    .await
    .unwrap();
    let source = Arc::new(Counting {
        inner: pg.records(),
        fetches: AtomicUsize::new(0),
        lists: AtomicUsize::new(0),
    });
    World {
        pg,
        source,
        redis_url: redis_url.to_owned(),
        cluster: false,
        prefix: format!("{}:", servers::unique_namespace("c")),
    }
}

/// The same world with Redis as a three-node cluster.
async fn world_on_cluster() -> World {
    World {
        cluster: true,
        ..world(&servers::redis_cluster_url()).await
    }
}

impl World {
    fn redis_config(&self) -> RedisConfig {
        let vars = [
            ("UDL__REDIS__URL", self.redis_url.clone()),
            ("UDL__REDIS__CLUSTER", self.cluster.to_string()),
            ("UDL__REDIS__KEY_PREFIX", self.prefix.clone()),
            ("UDL__REDIS__POOL__ACQUIRE_TIMEOUT", "500ms".into()),
        ];
        RedisConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v))).unwrap()
    }

    async fn redis(&self) -> RedisStore {
        match RedisStore::connect(&self.redis_config()).await {
            Ok(r) => r,
            Err(e) => servers::unreachable("Redis", &self.redis_url, &e),
        }
    }

    async fn cache(&self) -> Arc<CachedStore> {
        self.cache_with(CacheConfig::default()).await
    }

    async fn cache_with(&self, config: CacheConfig) -> Arc<CachedStore> {
        CachedStore::new(self.source.clone(), self.redis().await, config)
            .await
            .unwrap()
    }

    fn fetches(&self) -> usize {
        self.source.fetches.load(Ordering::SeqCst)
    }

    async fn finish(self) {
        let sql = format!("DROP SCHEMA \"{}\" CASCADE", self.pg.schema());
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(self.pg.pool())
            .await
            .unwrap();
        // Through the store's own connection, so that on a cluster every node is cleaned.
        if let Ok(redis) = RedisStore::connect(&self.redis_config()).await {
            let mut conn = redis.connection();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _ = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<()>(&mut conn)
                    .await;
            }
        }
    }
}

fn repo<T: udl_core::Entity>(store: &Arc<CachedStore>) -> Repository<T> {
    Repository::new(store.clone() as Arc<dyn RecordStore>).unwrap()
}

#[tokio::test]
async fn concurrent_misses_load_once_then_l1_serves() {
    let w = world(&servers::redis_url()).await;
    let cache = w.cache().await;
    let articles = repo::<Article>(&cache);
    let a = article("Sleep hygiene");
    articles.create(&ctx(), a.clone()).await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (articles, id) = (articles.clone(), a.id);
            tokio::spawn(async move { articles.get(&ctx(), &id).await.unwrap().unwrap() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap() == a);
    }
    assert_eq!(
        w.fetches(),
        1,
        "single-flight: one load for 40 concurrent misses"
    );
    articles.get(&ctx(), &a.id).await.unwrap();
    assert_eq!(w.fetches(), 1, "then served from L1");
    let stats = cache.stats();
    assert_eq!(
        (stats.loads, stats.l2_hits),
        (1, 0),
        "the cache counts the one load: {stats:?}"
    );
    assert!(stats.l1_hits >= 1, "{stats:?}");
    w.finish().await;
}

#[tokio::test]
async fn writes_invalidate_here_in_redis_and_in_other_processes() {
    invalidation_reaches_other_processes(world(&servers::redis_url()).await).await;
}

#[tokio::test]
async fn on_a_cluster_writes_invalidate_in_other_processes() {
    invalidation_reaches_other_processes(world_on_cluster().await).await;
}

async fn invalidation_reaches_other_processes(w: World) {
    let (one, two) = (w.cache().await, w.cache().await);
    let (in_one, in_two) = (repo::<Article>(&one), repo::<Article>(&two));
    let a = article("Grounding");
    in_one.create(&ctx(), a.clone()).await.unwrap();
    in_one.get(&ctx(), &a.id).await.unwrap();
    assert_eq!(w.fetches(), 1);
    in_two.get(&ctx(), &a.id).await.unwrap();
    assert_eq!(w.fetches(), 1, "the second process is served by L2");
    assert_eq!(two.stats().l2_hits, 1);

    let mut heard = two.invalidations();
    let before = *heard.borrow_and_update();
    assert!(in_one
        .update(
            &ctx(),
            &a.id,
            Changes::new().set("title", "Grounding, revised")
        )
        .await
        .unwrap());
    assert_eq!(
        in_one.get(&ctx(), &a.id).await.unwrap().unwrap().title,
        "Grounding, revised"
    );
    tokio::time::timeout(Duration::from_secs(5), heard.wait_for(|n| *n > before))
        .await
        .expect("the other process hears the invalidation")
        .unwrap();
    assert_eq!(
        in_two.get(&ctx(), &a.id).await.unwrap().unwrap().title,
        "Grounding, revised"
    );
    w.finish().await;
}

#[tokio::test]
async fn query_results_are_cached_until_the_entity_changes() {
    query_results_follow_writes(world(&servers::redis_url()).await).await;
}

#[tokio::test]
async fn on_a_cluster_query_results_are_cached_until_the_entity_changes() {
    query_results_follow_writes(world_on_cluster().await).await;
}

async fn query_results_follow_writes(w: World) {
    let cache = w.cache().await;
    let articles = repo::<Article>(&cache);
    articles.create(&ctx(), article("One")).await.unwrap();
    let context = ctx();
    let list = || articles.list(&context, &Filter::All, &[], Page::first(10));
    assert_eq!(list().await.unwrap().items.len(), 1);
    assert_eq!(list().await.unwrap().items.len(), 1);
    assert_eq!(
        w.source.lists.load(Ordering::SeqCst),
        1,
        "second list from L3"
    );
    articles.create(&ctx(), article("Two")).await.unwrap();
    assert_eq!(
        list().await.unwrap().items.len(),
        2,
        "a write makes the old result unreachable"
    );
    assert_eq!(w.source.lists.load(Ordering::SeqCst), 2);
    w.finish().await;
}

/// Stores a note, reads it twice through the cache as `seen_as`, and checks both reads went to
/// the source and nothing was kept (`why` names the case).
async fn never_cached(seen_as: &'static EntityMeta, why: &str) {
    let w = world(&servers::redis_url()).await;
    let cache = w.cache().await;
    let n = note(1);
    repo::<Note>(&cache)
        .create(&ctx(), n.clone())
        .await
        .unwrap();
    let records = Arc::clone(&cache) as Arc<dyn RecordStore>;
    for _ in 0..2 {
        let found = records
            .fetch(&ctx(), seen_as, &Value::Uuid(n.id))
            .await
            .unwrap();
        assert!(found.is_some());
    }
    assert_eq!(w.fetches(), 2, "{why}: every read goes to the source");
    assert_eq!(cache.l1_len(), 0, "{why}");
    w.finish().await;
}

#[tokio::test]
async fn entities_that_declare_no_cache_are_never_cached() {
    never_cached(UncachedNote::meta(), "no cache declared").await;
}

/// The conformance notes seen as an entity that declares no cache.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "conformance_notes")]
struct UncachedNote {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(internal)]
    title: String,
}

/// The conformance notes seen as an entity that declares a cache but whose PHI field has not
/// been sealed (the cache would sit above encryption).
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "conformance_notes", cache = "l1_l2")]
struct UnsealedNote {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(phi)]
    body: String,
}

#[tokio::test]
async fn sensitive_fields_not_sealed_are_never_cached() {
    never_cached(UnsealedNote::meta(), "unsealed PHI").await;
}

#[tokio::test]
async fn without_redis_reads_still_come_from_l1_or_the_source() {
    let mut redis = PrivateRedis::start().await;
    let w = world(&redis.url).await;
    let cache = w.cache().await;
    let articles = repo::<Article>(&cache);
    let (a, b) = (article("Cached before"), article("Never cached"));
    articles.create(&ctx(), a.clone()).await.unwrap();
    articles.create(&ctx(), b.clone()).await.unwrap();
    articles.get(&ctx(), &a.id).await.unwrap();
    redis.stop();
    assert!(
        articles.get(&ctx(), &a.id).await.unwrap().unwrap() == a,
        "L1 still serves"
    );
    assert!(
        articles.get(&ctx(), &b.id).await.unwrap().unwrap() == b,
        "misses go to the source"
    );
    assert!(articles
        .update(&ctx(), &b.id, Changes::new().set("views", 3_i64))
        .await
        .unwrap());
    assert_eq!(
        articles.get(&ctx(), &b.id).await.unwrap().unwrap().views,
        3,
        "local invalidation still works"
    );
    assert_eq!(
        articles
            .list(&ctx(), &Filter::All, &[], Page::first(10))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    w.finish().await;
}

#[tokio::test]
async fn a_bulk_insert_replaces_cached_not_found_answers() {
    let w = world(&servers::redis_url()).await;
    let cache = w.cache().await;
    let articles = repo::<Article>(&cache);
    let later = article("Arrives in bulk");
    assert!(articles.get(&ctx(), &later.id).await.unwrap().is_none());
    assert!(articles.get(&ctx(), &later.id).await.unwrap().is_none());
    assert_eq!(w.fetches(), 1, "the miss is cached");
    articles
        .create_many(&ctx(), vec![later.clone(), article("Another")])
        .await
        .unwrap();
    assert!(articles.get(&ctx(), &later.id).await.unwrap().unwrap() == later);
    w.finish().await;
}

#[tokio::test]
async fn l1_entries_expire_after_their_ttl_and_l2_answers() {
    let w = world(&servers::redis_url()).await;
    let config = CacheConfig {
        l1_ttl: Duration::from_millis(200),
        ..CacheConfig::default()
    };
    let cache = CachedStore::new(w.source.clone(), w.redis().await, config)
        .await
        .unwrap();
    let articles = repo::<Article>(&cache);
    let a = article("Breathing exercise");
    articles.create(&ctx(), a.clone()).await.unwrap();
    articles.get(&ctx(), &a.id).await.unwrap();
    articles.get(&ctx(), &a.id).await.unwrap();
    assert_eq!(cache.stats().l1_hits, 1, "fresh entry served from L1");
    // moka has no injectable clock: poll, with a deadline, until a read goes past L1.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cache.stats().l2_hits == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "L1 entry never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(articles.get(&ctx(), &a.id).await.unwrap(), Some(a.clone()));
    }
    assert_eq!(
        w.fetches(),
        1,
        "after L1 expiry, L2 answered, not the source"
    );
    w.finish().await;
}

/// A cache whose Redis is reached through `proxy`, with a quick breaker and no L1 (so every
/// read asks L2).
async fn cache_behind(proxy: &Proxy) -> (World, Arc<CachedStore>) {
    let w = world(&format!("redis://{}/", proxy.listen())).await;
    let cache = w
        .cache_with(CacheConfig {
            l1_capacity: 0,
            l2_timeout: Duration::from_millis(100),
            redis_breaker: BreakerConfig {
                consecutive_failures: 3,
                open_for: Duration::from_millis(300),
                probes: 1,
                ..BreakerConfig::default()
            },
            ..CacheConfig::default()
        })
        .await;
    (w, cache)
}

/// Creates an article and reads it twice, so that the second read is an L2 hit.
async fn cached_in_l2(cache: &Arc<CachedStore>) -> Article {
    let articles = repo::<Article>(cache);
    let a = article("Breathing exercises");
    articles.create(&ctx(), a.clone()).await.unwrap();
    articles.get(&ctx(), &a.id).await.unwrap();
    articles.get(&ctx(), &a.id).await.unwrap();
    assert_eq!(cache.stats().l2_hits, 1, "L2 serves while Redis is healthy");
    a
}

#[tokio::test]
async fn a_slow_redis_costs_reads_at_most_the_l2_timeout_then_is_skipped() {
    let proxy = Proxy::to("127.0.0.1:6379");
    let (w, cache) = cache_behind(&proxy).await;
    let a = cached_in_l2(&cache).await;
    let articles = repo::<Article>(&cache);

    proxy.add_latency(1_000);
    for _ in 0..3 {
        let started = std::time::Instant::now();
        assert!(articles.get(&ctx(), &a.id).await.unwrap().unwrap() == a);
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "bounded by l2_timeout, not Redis' latency: {:?}",
            started.elapsed()
        );
    }
    assert!(cache.redis_skipped(), "three slow answers open the breaker");
    let fetches = w.fetches();
    assert!(articles.get(&ctx(), &a.id).await.unwrap().unwrap() == a);
    assert_eq!(w.fetches(), fetches + 1, "reads go to the source");

    proxy.remove_latency();
    let l2_hits = cache.stats().l2_hits;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cache.stats().l2_hits == l2_hits {
        assert!(articles.get(&ctx(), &a.id).await.unwrap().unwrap() == a);
        assert!(
            std::time::Instant::now() < deadline,
            "L2 never served again"
        );
    }
    assert!(!cache.redis_skipped());
    w.finish().await;
}

#[tokio::test]
async fn a_write_made_while_redis_is_cut_off_is_not_served_stale_after() {
    let proxy = Proxy::to("127.0.0.1:6379");
    let (w, cache) = cache_behind(&proxy).await;
    let a = cached_in_l2(&cache).await;
    let articles = repo::<Article>(&cache);
    let b = article("Grounding techniques");
    articles.create(&ctx(), b.clone()).await.unwrap();
    articles.get(&ctx(), &b.id).await.unwrap();

    proxy.set_enabled(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cache.redis_skipped() {
        assert!(articles.get(&ctx(), &a.id).await.unwrap().unwrap() == a);
        assert!(
            std::time::Instant::now() < deadline,
            "the breaker never opened"
        );
    }
    // Redis cannot be told of this write, and still holds the old copy in L2.
    assert!(articles
        .update(&ctx(), &a.id, Changes::new().set("views", 7_i64))
        .await
        .unwrap());

    proxy.set_enabled(true);
    // Until Redis answers again, read only another record, so nothing reads `a` through to
    // the source and overwrites its old copy by chance...
    let l2_hits = cache.stats().l2_hits;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cache.stats().l2_hits == l2_hits {
        assert!(articles.get(&ctx(), &b.id).await.unwrap().unwrap() == b);
        assert!(
            std::time::Instant::now() < deadline,
            "L2 never served again"
        );
    }
    // ...then `a` must come back as written, not as Redis held it before the outage.
    assert_eq!(articles.get(&ctx(), &a.id).await.unwrap().unwrap().views, 7);
    w.finish().await;
}
