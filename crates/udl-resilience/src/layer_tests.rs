//! The layer's policies over a scripted in-memory store (generic code; the real-server fault
//! tests live with the backends). Tokio's paused clock makes every timeout and pause virtual.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use udl_core::{Purpose, Role};

use super::*;

/// Answers `fetch` and `insert` from a script, counting calls; a `None` entry hangs.
struct Scripted {
    answers: Mutex<VecDeque<Option<Result<Option<Record>>>>>,
    calls: AtomicUsize,
}

impl Scripted {
    fn new(answers: Vec<Option<Result<Option<Record>>>>) -> Arc<Self> {
        Arc::new(Scripted {
            answers: Mutex::new(answers.into()),
            calls: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn next(&self) -> Result<Option<Record>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = self.answers.lock().unwrap().pop_front().flatten();
        match answer {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}

#[async_trait]
impl RecordStore for Scripted {
    fn kind(&self) -> StoreKind {
        StoreKind::MEMORY
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }
    async fn insert(&self, _: &AccessContext, _: &'static EntityMeta, _: Record) -> Result<()> {
        self.next().await.map(drop)
    }
    async fn insert_many(
        &self,
        _: &AccessContext,
        _: &'static EntityMeta,
        _: Vec<Record>,
    ) -> Result<u64> {
        unreachable!("not scripted")
    }
    async fn fetch(
        &self,
        _: &AccessContext,
        _: &'static EntityMeta,
        _: &Value,
    ) -> Result<Option<Record>> {
        self.next().await
    }
    async fn update(
        &self,
        _: &AccessContext,
        _: &'static EntityMeta,
        _: &Value,
        _: &ValidChanges,
    ) -> Result<bool> {
        unreachable!("not scripted")
    }
    async fn delete(&self, _: &AccessContext, _: &'static EntityMeta, _: &Value) -> Result<bool> {
        unreachable!("not scripted")
    }
    async fn list(
        &self,
        _: &AccessContext,
        _: &'static EntityMeta,
        _: &Query,
    ) -> Result<Vec<Record>> {
        unreachable!("not scripted")
    }
    async fn count(&self, _: &AccessContext, _: &'static EntityMeta, _: &Filter) -> Result<u64> {
        unreachable!("not scripted")
    }
    async fn exists(&self, _: &AccessContext, _: &'static EntityMeta, _: &Value) -> Result<bool> {
        unreachable!("not scripted")
    }
}

static ENTITY: EntityMeta = EntityMeta {
    name: "scripted",
    fields: &[udl_core::FieldMeta::of::<i64>("id")],
    id_field: "id",
    version_field: None,
    indexes: &[],
    partition_key: &[],
    clustering_key: &[],
    store: None,
    cache: udl_core::CachePolicy::NONE,
};

fn ctx() -> AccessContext {
    AccessContext::new("resilience-test", Role::Service, Purpose::Operations).unwrap()
}

fn down() -> Option<Result<Option<Record>>> {
    Some(Err(Error::new(ErrorKind::Unavailable, "scripted outage")))
}

fn found() -> Option<Result<Option<Record>>> {
    Some(Ok(Some(Record::with_capacity(0))))
}

fn layer(inner: &Arc<Scripted>, config: ResilienceConfig) -> Arc<ResilientStore> {
    ResilientStore::new(
        Arc::clone(inner) as Arc<dyn RecordStore>,
        config,
        Arc::new(udl_metrics::Metrics::new()),
    )
}

#[tokio::test(start_paused = true)]
async fn every_call_is_measured_by_outcome_and_every_retry_counted() {
    let inner = Scripted::new(vec![down(), found(), down()]);
    let config = ResilienceConfig {
        backoff: Backoff {
            max_attempts: 2,
            ..Backoff::default()
        },
        ..ResilienceConfig::default()
    };
    let store = layer(&inner, config);
    store.fetch(&ctx(), &ENTITY, &Value::Int(1)).await.unwrap();
    store
        .insert(&ctx(), &ENTITY, Record::with_capacity(0))
        .await
        .unwrap_err();
    let text = store.metrics().render();
    for line in [
        r#"udl_operation_duration_seconds_count{store="memory",operation="get",outcome="ok"} 1"#,
        r#"udl_operation_duration_seconds_count{store="memory",operation="create",outcome="unavailable"} 1"#,
        r#"udl_retries_total{store="memory",operation="get"} 1"#,
        r#"udl_breaker_state{store="memory"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn reads_are_retried_after_temporary_errors_only() {
    let inner = Scripted::new(vec![down(), found()]);
    let store = layer(&inner, ResilienceConfig::default());
    assert!(store
        .fetch(&ctx(), &ENTITY, &Value::Int(1))
        .await
        .unwrap()
        .is_some());
    assert_eq!(inner.calls(), 2);

    let invalid = Some(Err(Error::invalid("scripted refusal")));
    let inner = Scripted::new(vec![invalid, found()]);
    let store = layer(&inner, ResilienceConfig::default());
    let err = store
        .fetch(&ctx(), &ENTITY, &Value::Int(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(inner.calls(), 1, "a permanent error is not retried");
}

#[tokio::test(start_paused = true)]
async fn writes_with_an_idempotency_key_are_retried() {
    let inner = Scripted::new(vec![down(), found()]);
    let store = layer(&inner, ResilienceConfig::default());
    let ctx = ctx().with_idempotency_key("fake-order-42").unwrap();
    store
        .insert(&ctx, &ENTITY, Record::with_capacity(0))
        .await
        .unwrap();
    assert_eq!(inner.calls(), 2, "the marked write was repeated once");
}

#[tokio::test(start_paused = true)]
async fn writes_are_attempted_once() {
    let inner = Scripted::new(vec![down(), found()]);
    let store = layer(&inner, ResilienceConfig::default());
    let err = store
        .insert(&ctx(), &ENTITY, Record::with_capacity(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(inner.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_store_times_out_on_every_attempt() {
    let inner = Scripted::new(vec![None, None, None]);
    let config = ResilienceConfig {
        timeout: Duration::from_secs(1),
        ..ResilienceConfig::default()
    };
    let store = layer(&inner, config);
    let started = tokio::time::Instant::now();
    let err = store
        .fetch(&ctx(), &ENTITY, &Value::Int(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    assert_eq!(inner.calls(), 3, "three attempts in all");
    // Three timeouts plus two pauses of at most 25 ms and 50 ms.
    assert!(started.elapsed() <= Duration::from_millis(3_075));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_fast_without_calling_the_store() {
    let inner = Scripted::new(vec![down(), down(), down(), found()]);
    let config = ResilienceConfig {
        backoff: Backoff {
            max_attempts: 1,
            ..Backoff::default()
        },
        breaker: BreakerConfig {
            consecutive_failures: 3,
            ..BreakerConfig::default()
        },
        ..ResilienceConfig::default()
    };
    let store = layer(&inner, config);
    for _ in 0..3 {
        assert!(store.fetch(&ctx(), &ENTITY, &Value::Int(1)).await.is_err());
    }
    let err = store
        .fetch(&ctx(), &ENTITY, &Value::Int(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("circuit breaker"), "{err}");
    assert_eq!(inner.calls(), 3, "refused before reaching the store");
    assert_eq!(store.breaker().state(), crate::BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn the_bulkhead_bounds_calls_in_flight() {
    let inner = Scripted::new(vec![None, found()]);
    let config = ResilienceConfig {
        max_concurrent: 1,
        max_wait: Duration::from_millis(100),
        timeout: Duration::from_secs(60),
        ..ResilienceConfig::default()
    };
    let store = layer(&inner, config);
    let busy = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.fetch(&ctx(), &ENTITY, &Value::Int(1)).await })
    };
    tokio::task::yield_now().await;
    let err = store
        .fetch(&ctx(), &ENTITY, &Value::Int(2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.to_string().contains("in flight"), "{err}");
    assert_eq!(inner.calls(), 1, "the second call never reached the store");
    busy.abort();
}

#[tokio::test(start_paused = true)]
async fn errors_about_the_call_never_count_against_the_breaker_even_when_marked_temporary() {
    // A backend's classification may call a refusal temporary; the breaker must not open for
    // everyone because one caller sent something invalid.
    let refusal = || Some(Err(Error::invalid("scripted refusal").temporary(true)));
    let inner = Scripted::new(
        std::iter::repeat_with(refusal)
            .take(12)
            .chain([found()])
            .collect(),
    );
    let config = ResilienceConfig {
        breaker: BreakerConfig {
            consecutive_failures: 2,
            ..BreakerConfig::default()
        },
        ..ResilienceConfig::default()
    };
    let store = layer(&inner, config);
    for _ in 0..4 {
        let err = store
            .fetch(&ctx(), &ENTITY, &Value::Int(1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
    assert_eq!(
        inner.calls(),
        4 + 4 * 2,
        "retried, as the backend said it may be"
    );
    assert_eq!(store.breaker().state(), crate::BreakerState::Closed);
    assert!(store.fetch(&ctx(), &ENTITY, &Value::Int(1)).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn an_oversized_id_is_refused_before_the_store_or_the_breaker_sees_it() {
    let inner = Scripted::new(vec![found()]);
    let config = ResilienceConfig {
        limits: QueryLimits {
            max_value_bytes: 64,
            ..QueryLimits::default()
        },
        ..ResilienceConfig::default()
    };
    let store = layer(&inner, config);
    let huge = Value::Text("f".repeat(65));
    let err = store.fetch(&ctx(), &ENTITY, &huge).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("65 bytes"), "{err}");
    assert_eq!(err.operation(), Some(op::GET));
    assert_eq!(inner.calls(), 0);
    assert!(store.fetch(&ctx(), &ENTITY, &Value::Int(1)).await.is_ok());
}

fn sent_record() -> Record {
    let mut r = Record::with_capacity(1);
    r.set("id", Value::Int(7));
    r
}

#[tokio::test(start_paused = true)]
async fn a_repeated_create_that_meets_its_own_earlier_write_succeeds() {
    let broke = Some(Err(
        Error::new(ErrorKind::Unavailable, "scripted EOF").with_outcome_unknown()
    ));
    let conflict = Some(Err(Error::new(ErrorKind::Conflict, "scripted duplicate")));
    let stored = Some(Ok(Some(sent_record())));
    let inner = Scripted::new(vec![broke, conflict, stored]);
    let store = layer(&inner, ResilienceConfig::default());
    let ctx = ctx().with_idempotency_key("fake-create-7").unwrap();
    store.insert(&ctx, &ENTITY, sent_record()).await.unwrap();
    assert_eq!(inner.calls(), 3, "create, create again, read back");
}

#[tokio::test(start_paused = true)]
async fn a_repeated_create_that_meets_another_record_reports_a_conflict_that_may_be_its_own() {
    let broke = Some(Err(
        Error::new(ErrorKind::Unavailable, "scripted EOF").with_outcome_unknown()
    ));
    let conflict = Some(Err(Error::new(ErrorKind::Conflict, "scripted duplicate")));
    let mut other = sent_record();
    other.set("id", Value::Int(8));
    let inner = Scripted::new(vec![broke, conflict, Some(Ok(Some(other)))]);
    let store = layer(&inner, ResilienceConfig::default());
    let ctx = ctx().with_idempotency_key("fake-create-7").unwrap();
    let err = store
        .insert(&ctx, &ENTITY, sent_record())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.outcome_unknown());
    assert!(err.to_string().contains("may have been applied"), "{err}");

    // A conflict on the first attempt is the caller's: no read-back, no doubt.
    let conflict = Some(Err(Error::new(ErrorKind::Conflict, "scripted duplicate")));
    let inner = Scripted::new(vec![conflict]);
    let store = layer(&inner, ResilienceConfig::default());
    let err = store
        .insert(&ctx, &ENTITY, sent_record())
        .await
        .unwrap_err();
    assert!(!err.outcome_unknown());
    assert_eq!(inner.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_timed_out_may_have_been_applied_one_refused_early_was_not() {
    let inner = Scripted::new(vec![None]);
    let config = ResilienceConfig {
        timeout: Duration::from_secs(1),
        ..ResilienceConfig::default()
    };
    let store = layer(&inner, config);
    let err = store
        .insert(&ctx(), &ENTITY, sent_record())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.outcome_unknown());

    let inner = Scripted::new(vec![down(), down(), down(), down(), down()]);
    let config = ResilienceConfig {
        backoff: Backoff {
            max_attempts: 1,
            ..Backoff::default()
        },
        breaker: BreakerConfig {
            consecutive_failures: 1,
            ..BreakerConfig::default()
        },
        ..ResilienceConfig::default()
    };
    let store = layer(&inner, config);
    let _ = store.fetch(&ctx(), &ENTITY, &Value::Int(1)).await;
    let refused = store
        .insert(&ctx(), &ENTITY, sent_record())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("circuit breaker"), "{refused}");
    assert!(!refused.outcome_unknown());
}
