//! The gateway's cost: get-by-id of a configuration entry over HTTP (keep-alive connections,
//! a load generator in this process) against the same read made in process through
//! `DataLayer`, same entity, same rows, same concurrency: 64 connections (throughput and its
//! ratio, p50/p99 of each side, where queueing on a small machine dominates latency) and one
//! connection (the gateway's own added latency per request, without queueing).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use udl::postgres::models::AppConfigEntry;
use udl::{AccessContext, DataLayer, Entity as _, Purpose, Result, Role, Value};
use udl_gateway::dev_issuer::{DevIssuer, TokenRequest};
use udl_testkit::servers;

use crate::measure::Plan;

/// Connections of the load generator (and tasks of the in-process side) of each measurement.
const CONCURRENCIES: [usize; 2] = [64, 1];
const ROWS: usize = 1_000;
const SERVICE_TOKEN: &str = "bench-service-token-000000000000000000000001";

/// Operations per second and every latency of one side's window.
struct Run {
    ops_per_s: f64,
    latencies: Vec<Duration>,
}

impl Run {
    fn quantile(&mut self, q: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 * q) as usize)
            .min(self.latencies.len().saturating_sub(1));
        self.latencies.get(i).copied().unwrap_or_default()
    }
}

/// Runs `op` from `tasks` tasks for `window`, each with its own state from `state`.
async fn closed_loop<S, F, Fut>(
    tasks: usize,
    window: Duration,
    state: impl Fn(usize) -> S,
    op: F,
) -> Run
where
    S: Send + 'static,
    F: Fn(S, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = S> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + window;
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let op = Arc::clone(&op);
            let mut s = state(task);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = task as u64;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    s = op(s, n).await;
                    latencies.push(began.elapsed());
                    n += tasks as u64;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in handles {
        latencies.extend(t.await.expect("benchmark task"));
    }
    Run {
        ops_per_s: latencies.len() as f64 / started.elapsed().as_secs_f64(),
        latencies,
    }
}

/// The rounds of one side as one run: mean throughput, every latency.
fn merge(runs: Vec<Run>) -> Run {
    Run {
        ops_per_s: runs.iter().map(|r| r.ops_per_s).sum::<f64>() / runs.len() as f64,
        latencies: runs.into_iter().flat_map(|r| r.latencies).collect(),
    }
}

/// Prints throughput and ratio, each side's p50/p99, and the difference.
fn report(connections: usize, mut g: Run, mut d: Run) {
    let (g50, g99) = (g.quantile(0.5), g.quantile(0.99));
    let (d50, d99) = (d.quantile(0.5), d.quantile(0.99));
    let us = |x: Duration| x.as_secs_f64() * 1e6;
    let name = format!("get_by_id_{connections}");
    println!(
        "{:<24} {:>12} {:>12} {:>6}",
        "scenario", "http_ops/s", "direct_ops/s", "ratio"
    );
    println!(
        "{name:<24} {:>12.0} {:>12.0} {:>6.3}",
        g.ops_per_s,
        d.ops_per_s,
        g.ops_per_s / d.ops_per_s
    );
    println!("http   p50 {:>8.0} us  p99 {:>8.0} us", us(g50), us(g99));
    println!("direct p50 {:>8.0} us  p99 {:>8.0} us", us(d50), us(d99));
    println!(
        "gateway adds {:.0} us per request at p50 ({:.0} us at p99)",
        us(g50) - us(d50),
        us(g99) - us(d99)
    );
}

/// One keep-alive connection: sends a request, reads exactly one response.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(address: &str) -> Connection {
        let stream = TcpStream::connect(address)
            .await
            .expect("the gateway listens");
        stream.set_nodelay(true).expect("nodelay");
        Connection {
            stream,
            buffer: Vec::with_capacity(4096),
        }
    }

    /// Sends `request`, returns the status after reading the whole response.
    async fn exchange(&mut self, request: &[u8]) -> u16 {
        self.stream.write_all(request).await.expect("request sent");
        self.buffer.clear();
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while self.buffer.len() < end + 4 + length {
                    self.read_more().await;
                }
                return head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            }
            self.read_more().await;
        }
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.expect("response read");
        assert!(n > 0, "the gateway closed the connection");
        self.buffer.extend_from_slice(&chunk[..n]);
    }
}

fn key(n: u64) -> String {
    format!("bench.gateway.{:04}", n % ROWS as u64)
}

async fn setup(schema: &str, issuer: &DevIssuer, dir: &std::path::Path) -> Result<udl::UdlConfig> {
    std::fs::create_dir_all(dir)
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))?;
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, issuer.jwks())
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))?;
    let ring: Vec<u8> = uuid::Uuid::new_v4().as_bytes().repeat(2);
    let vars = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", schema.to_owned()),
        ("UDL__POSTGRES__POOL__MIN", "16".to_owned()),
        ("UDL__POSTGRES__POOL__MAX", "16".to_owned()),
        ("UDL__REDIS__URL", servers::redis_url()),
        ("UDL__REDIS__KEY_PREFIX", format!("{schema}:")),
        (
            "UDL__PRIVACY__KEY_RING",
            format!(
                "1:{}",
                base64::engine::general_purpose::STANDARD.encode(ring)
            ),
        ),
        ("UDL__GATEWAY__MAX_IN_FLIGHT", "1024".to_owned()),
        // The limits are the gateway's own protection, not what is measured here.
        (
            "UDL__GATEWAY__ACTOR_REQUESTS_PER_MINUTE",
            "1000000".to_owned(),
        ),
        ("UDL__GATEWAY__JWT__KEYS_FILE", jwks.display().to_string()),
        ("UDL__GATEWAY__JWT__ISSUER", "bench-auth".to_owned()),
        ("UDL__GATEWAY__JWT__AUDIENCE", "udl".to_owned()),
        (
            "UDL__GATEWAY__SERVICES__BENCH__TOKEN",
            SERVICE_TOKEN.to_owned(),
        ),
        (
            "UDL__GATEWAY__SERVICES__BENCH__ENTITIES",
            "app_config".to_owned(),
        ),
        (
            "UDL__GATEWAY__SERVICES__BENCH__OPERATIONS",
            "read".to_owned(),
        ),
        (
            "UDL__GATEWAY__SERVICES__BENCH__PURPOSES",
            "operations".to_owned(),
        ),
        ("UDL__GATEWAY__SERVICES__BENCH__ROLES", "admin".to_owned()),
        (
            "UDL__GATEWAY__SERVICES__BENCH__REQUESTS_PER_MINUTE",
            "10000000".to_owned(),
        ),
    ];
    udl::config::from_sources(None, vars.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))
}

/// `udl-bench gateway`.
pub async fn run(plan: &Plan) -> Result<()> {
    let schema = servers::unique_namespace("bench_gw");
    let dir = std::env::temp_dir().join(&schema);
    let issuer = DevIssuer::new("bench-auth", "udl")?;
    let config = setup(&schema, &issuer, &dir).await?;
    let migrator = DataLayer::connect_stores(&config).await?;
    migrator.migrate().await?;
    migrator.shutdown(Duration::from_secs(5)).await;
    let data = DataLayer::connect(&config).await?;
    let ctx = AccessContext::new("bench-admin", Role::Admin, Purpose::Operations)?;
    let records = data.records(AppConfigEntry::meta())?;
    for n in 0..ROWS as u64 {
        let entry = AppConfigEntry {
            key: key(n),
            value: serde_json::json!({"enabled": n % 2 == 0, "threshold": n}),
            description: Some("a benchmark setting".into()),
            updated_at: chrono::Utc::now(),
            version: 1,
        };
        records
            .create(&ctx, udl::Entity::into_record(entry))
            .await?;
    }

    let cell = Arc::new(tokio::sync::OnceCell::new_with(Some(data.clone())));
    let gateway = udl_gateway::Gateway::new(config.gateway.clone().expect("configured"), cell)?;
    let router = udl_gateway::router(Arc::new(gateway));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("bound").to_string();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let roles = ["admin"];
    let token = issuer
        .token(&TokenRequest {
            lifetime_secs: 900,
            ..TokenRequest::new("bench-admin", &roles)
        })
        .0;
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..ROWS as u64)
            .map(|n| {
                format!(
                    "GET /v1/app_config/{} HTTP/1.1\r\nHost: {address}\r\nx-udl-service-token: {SERVICE_TOKEN}\r\n\
                     authorization: Bearer {token}\r\nx-udl-purpose: operations\r\n\r\n",
                    key(n)
                )
                .into_bytes()
            })
            .collect(),
    );

    for connections in CONCURRENCIES {
        let http = || {
            let requests = Arc::clone(&requests);
            let address = address.clone();
            async move {
                let mut pool = Vec::with_capacity(connections);
                for _ in 0..connections {
                    pool.push(Connection::open(&address).await);
                }
                let pool = Arc::new(std::sync::Mutex::new(pool));
                closed_loop(
                    connections,
                    plan.window,
                    move |_| {
                        pool.lock()
                            .expect("pool")
                            .pop()
                            .expect("a connection per task")
                    },
                    move |mut c: Connection, n| {
                        let requests = Arc::clone(&requests);
                        async move {
                            let status = c.exchange(&requests[(n % ROWS as u64) as usize]).await;
                            assert_eq!(status, 200, "the gateway answered {status}");
                            c
                        }
                    },
                )
                .await
            }
        };
        let in_process = || {
            let records = records.clone();
            let ctx = ctx.clone();
            closed_loop(
                connections,
                plan.window,
                |_| (),
                move |(), n| {
                    let records = records.clone();
                    let ctx = ctx.clone();
                    async move {
                        let found = records.get(&ctx, &Value::Text(key(n))).await.expect("get");
                        assert!(found.is_some());
                    }
                },
            )
        };
        println!(
            "gateway get-by-id over HTTP (keep-alive, {connections} connection(s)) vs in-process DataLayer"
        );
        // One warm-up each, then alternating rounds.
        http().await;
        in_process().await;
        let (mut over_http, mut direct) = (Vec::new(), Vec::new());
        for round in 0..plan.rounds {
            if round % 2 == 0 {
                over_http.push(http().await);
                direct.push(in_process().await);
            } else {
                direct.push(in_process().await);
                over_http.push(http().await);
            }
        }
        report(connections, merge(over_http), merge(direct));
    }

    server.abort();
    let drop_schema = format!("DROP SCHEMA \"{schema}\" CASCADE");
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop_schema))
        .execute(data.postgres()?.pool())
        .await;
    data.shutdown(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
