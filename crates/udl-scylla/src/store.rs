//! The ScyllaDB store: one driver session configured for production topologies, health.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Replication, ScyllaConfig};
use chrono::{DateTime, Utc};
use scylla::client::caching_session::{CachingSession, CachingSessionBuilder};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::{OpenSsl010Config, TlsContext};
use scylla::client::session_builder::SessionBuilder;
use scylla::client::PoolSize;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::TranslationError;
use scylla::policies::address_translator::{AddressTranslator, UntranslatedPeer};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use udl_core::{Error, ErrorKind, Result, StoreKind};

use crate::error::{classify, unexpected_shape};
use crate::session::ScyllaSession;

/// TLS for `scylla.tls`: TLS 1.2 or newer, the node's certificate verified against the
/// system's CAs and `tls_ca_cert`, and its IP address against the certificate.
fn tls_context(config: &ScyllaConfig) -> Result<TlsContext> {
    use openssl::ssl::{SslConnector, SslMethod, SslVersion};
    let problem = |what: String| {
        Error::new(ErrorKind::Config, format!("scylla TLS: {what}")).with_store(StoreKind::SCYLLA)
    };
    let mut ssl = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| problem(format!("OpenSSL could not start ({e})")))?;
    ssl.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(|e| problem(format!("cannot require TLS 1.2 ({e})")))?;
    if let Some(ca) = &config.tls_ca_cert {
        ssl.set_ca_file(ca).map_err(|e| {
            problem(format!(
                "cannot load the CA certificate {} ({e})",
                ca.display()
            ))
        })?;
    }
    Ok(TlsContext::OpenSsl010Config(OpenSsl010Config::new(ssl)))
}

/// Prepared statements kept per session.
const PREPARED_CACHE: usize = 512;

/// `scylla.address_map`: announced addresses in the map are dialled at their mapped
/// address; any other is dialled as announced (the node answering a contact point already
/// announces the address it was reached at).
struct AddressMap(std::collections::HashMap<SocketAddr, SocketAddr>);

#[async_trait::async_trait]
impl AddressTranslator for AddressMap {
    async fn translate_address(
        &self,
        peer: &UntranslatedPeer,
    ) -> std::result::Result<SocketAddr, TranslationError> {
        let announced = peer.untranslated_address();
        Ok(self.0.get(&announced).copied().unwrap_or(announced))
    }
}

/// The longest TTL CQL takes: 20 years.
const MAX_TTL: Duration = Duration::from_secs(630_720_000);

/// A connected ScyllaDB store.
#[derive(Clone)]
pub struct ScyllaStore {
    handle: ScyllaSession,
    replication: Replication,
    time_bucket: Duration,
    analytics_ttl: Duration,
    chat_archive_retention: Option<Duration>,
    meter: udl_metrics::StoreMeter,
}

fn consistency(level: &str) -> Consistency {
    match level {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        // The config accepts only known levels; local_quorum is also its default.
        _ => Consistency::LocalQuorum,
    }
}

fn unavailable(message: &'static str) -> Error {
    Error::new(ErrorKind::Unavailable, message)
        .with_store(StoreKind::SCYLLA)
        .with_operation("connect")
}

impl ScyllaStore {
    /// Connects as configured: token-aware routing that prefers `local_dc` (no failover to
    /// remote data centers, which would silently break LOCAL_* consistency), `pool.max`
    /// connections per host (the driver's pools are fixed-size; each connection multiplexes
    /// thousands of requests), the configured consistency and request timeout, and no driver
    /// retries or speculative execution.
    pub async fn connect(config: &ScyllaConfig) -> Result<Self> {
        let mut balancing = DefaultPolicy::builder().token_aware(true);
        if let Some(dc) = &config.local_dc {
            balancing = balancing
                .prefer_datacenter(dc.clone())
                .permit_dc_failover(false);
        }
        let profile = ExecutionProfile::builder()
            .consistency(consistency(&config.consistency))
            .request_timeout(Some(config.request_timeout))
            .load_balancing_policy(balancing.build())
            .retry_policy(Arc::new(FallthroughRetryPolicy::new()))
            .speculative_execution_policy(None)
            .build();
        let per_host = NonZeroUsize::new(config.pool.max as usize).unwrap_or(NonZeroUsize::MIN);
        let mut builder = SessionBuilder::new()
            .known_nodes(&config.nodes)
            .connection_timeout(config.pool.connect_timeout)
            .pool_size(PoolSize::PerHost(per_host))
            .default_execution_profile_handle(profile.into_handle());
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.user(user, password.expose());
        }
        if config.tls {
            builder = builder.tls_context(Some(tls_context(config)?));
        }
        if !config.address_map.is_empty() {
            builder = builder.address_translator(Arc::new(AddressMap(
                config.address_map.iter().copied().collect(),
            )));
        }
        let connect_bound = config.pool.connect_timeout + config.request_timeout;
        let session = tokio::time::timeout(connect_bound, builder.build())
            .await
            .map_err(|_| unavailable("ScyllaDB did not answer within the connect timeout"))?
            .map_err(|_| {
                unavailable(if config.tls {
                    "no ScyllaDB contact point could be reached over TLS (is the nodes' \
                     certificate signed by a trusted CA? see scylla.tls_ca_cert)"
                } else {
                    "no ScyllaDB contact point could be reached"
                })
            })?;
        let session = CachingSessionBuilder::new(session)
            .max_capacity(PREPARED_CACHE)
            .build();
        Ok(ScyllaStore {
            handle: ScyllaSession::new(Arc::new(session), config.keyspace.clone()),
            replication: config.replication.clone(),
            time_bucket: config.time_bucket,
            analytics_ttl: udl_config::THIRTEEN_MONTHS,
            chat_archive_retention: None,
            meter: udl_metrics::StoreMeter::new(StoreKind::SCYLLA),
        })
    }

    /// The same store, keeping analytics rows `analytics` (per-write TTL) and archived chat
    /// messages `chat_archive` (until deleted when `None`): `[retention]`'s classes. CQL TTLs
    /// are whole seconds up to 20 years; longer is kept 20 years.
    pub fn keeping(mut self, analytics: Duration, chat_archive: Option<Duration>) -> Self {
        self.analytics_ttl = analytics.clamp(Duration::from_secs(1), MAX_TTL);
        self.chat_archive_retention =
            chat_archive.map(|d| d.clamp(Duration::from_secs(1), MAX_TTL));
        self
    }

    /// The same store, its typed APIs' calls measured in `metrics` (build those after this).
    pub fn with_metrics(mut self, metrics: Arc<udl_metrics::Metrics>) -> Self {
        self.meter = self.meter.reporting_to(metrics);
        self
    }

    /// Measures the calls of the typed APIs built on this store.
    pub fn meter(&self) -> &udl_metrics::StoreMeter {
        &self.meter
    }

    /// The session (with its prepared-statement cache), for CQL the typed API does not cover.
    pub fn session(&self) -> &CachingSession {
        self.handle.session()
    }

    /// The generic record store, for `Repository::new(store.records())`.
    pub fn records(&self) -> Arc<dyn udl_core::RecordStore> {
        Arc::new(self.table_records())
    }

    /// The record store as its own type, for ScyllaDB-only maintenance such as
    /// [`crate::ScyllaRecords::rewrite_all`].
    pub fn table_records(&self) -> crate::records::ScyllaRecords {
        crate::records::ScyllaRecords::new(self.handle.clone())
    }

    /// The keyspace udl's tables live in.
    pub fn keyspace(&self) -> &str {
        self.handle.keyspace()
    }

    /// Time span of one time-series partition.
    pub fn time_bucket(&self) -> Duration {
        self.time_bucket
    }

    /// Lifetime of analytics rows.
    pub fn analytics_ttl(&self) -> Duration {
        self.analytics_ttl
    }

    /// The time-series partition (bucket number) holding `at`.
    pub fn bucket_of(&self, at: DateTime<Utc>) -> i64 {
        at.timestamp_millis()
            .div_euclid(self.time_bucket.as_millis() as i64)
    }

    /// Prepares `cql`; owners keep the statement and execute it as often as they like.
    pub async fn prepare(&self, cql: String) -> Result<PreparedStatement> {
        self.handle.prepare(cql).await
    }

    /// Runs `statement` a page at a time, handing each row (decoded as `R`) to `each` until
    /// it returns `false`. Returns whether it was stopped that way.
    pub(crate) async fn scan<R>(
        &self,
        statement: &PreparedStatement,
        values: &impl SerializeRow,
        operation: &'static str,
        mut each: impl FnMut(R) -> bool,
    ) -> Result<bool>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
    {
        let malformed = || unexpected_shape(operation);
        let session = self.session().get_session();
        let mut paging = PagingState::start();
        loop {
            let (result, next) = session
                .execute_single_page(statement, values, paging)
                .await
                .map_err(|e| classify(&e, operation))?;
            let rows = result.into_rows_result().map_err(|_| malformed())?;
            for row in rows.rows::<R>().map_err(|_| malformed())? {
                if !each(row.map_err(|_| malformed())?) {
                    return Ok(true);
                }
            }
            match next {
                PagingStateResponse::HasMorePages { state } => paging = state,
                PagingStateResponse::NoMorePages => return Ok(false),
            }
        }
    }

    /// How long archived chat messages are kept (`None`: until deleted).
    pub fn chat_archive_retention(&self) -> Option<Duration> {
        self.chat_archive_retention
    }

    /// Runs `write(i)` for every index below `count` with at most `in_flight` of them
    /// outstanding, stopping at the first error: the ingest paths' one rule, so memory stays
    /// bounded by the caller's items and a slow cluster slows the caller down instead of
    /// queueing without bound. Returns the sum of what the writes report (rows written).
    /// Indices rather than items: futures borrowing the caller's slice through the closure
    /// stay `Send` for spawned tasks (a closure taking `&Item` runs into rustc's
    /// higher-ranked lifetime limits).
    pub(crate) async fn bounded<F, Fut>(in_flight: usize, count: usize, write: F) -> Result<u64>
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = Result<u64>>,
    {
        use futures_util::{StreamExt as _, TryStreamExt as _};
        futures_util::stream::iter(0..count)
            .map(write)
            .buffer_unordered(in_flight)
            .try_fold(0, |total, n| async move { Ok(total + n) })
            .await
    }

    /// `CREATE KEYSPACE IF NOT EXISTS` with the configured replication.
    pub(crate) fn create_keyspace_cql(&self) -> String {
        let replication = match &self.replication {
            Replication::Simple(n) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {n}}}")
            }
            Replication::PerDataCenter(dcs) => {
                let per_dc: Vec<String> =
                    dcs.iter().map(|(dc, n)| format!("'{dc}': {n}")).collect();
                format!(
                    "{{'class': 'NetworkTopologyStrategy', {}}}",
                    per_dc.join(", ")
                )
            }
        };
        format!(
            "CREATE KEYSPACE IF NOT EXISTS \"{}\" WITH replication = {replication}",
            self.keyspace()
        )
    }

    /// `SELECT now() FROM system.local` within `timeout`: a real round trip to a node.
    pub async fn health(&self, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        // One round trip that also says whether the keyspace udl uses is there.
        let query = self.session().get_session().query_unpaged(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (self.keyspace(),),
        );
        match tokio::time::timeout(timeout, query).await {
            Ok(Ok(result)) => {
                let rows = result.into_rows_result().map(|r| r.rows_num()).unwrap_or(0);
                if rows == 0 {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "keyspace {} does not exist in ScyllaDB (run `udl migrate up`)",
                            self.keyspace()
                        ),
                    )
                    .with_store(StoreKind::SCYLLA)
                    .with_operation("health"));
                }
                Ok(started.elapsed())
            }
            Ok(Err(e)) => Err(classify(&e, "health")),
            Err(_) => Err(Error::new(ErrorKind::Timeout, "health check timed out")
                .with_store(StoreKind::SCYLLA)
                .with_operation("health")),
        }
    }
}
