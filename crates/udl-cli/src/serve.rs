//! `udl serve`: the long-running daemon. It answers `/health/live` (the process is up),
//! `/health/ready` (every store's round trip: 200 ready, 200 degraded, 503 down, with the
//! per-store detail as JSON), `/metrics` (Prometheus) and, with `[gateway]`, the HTTP/JSON API
//! under `/v1` (see `udl-gateway`), over TLS or mutual TLS when `gateway.tls` says so. It also
//! connects the data layer (again and again until every store answers), which replays the
//! analytics spool when `scylla.spool_dir` is set, runs the change relay when `[cdc]` is
//! configured, and runs the scheduled jobs (`[jobs]`) when PostgreSQL is. On SIGTERM or SIGINT
//! it stops accepting, lets requests in flight finish within `serve.shutdown_grace`, gives the
//! spool a last replay, and closes its connections.

use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio_rustls::TlsAcceptor;
use udl::health::{HealthMonitor, Overall};
use udl::jobs::{JobRunner, Scheduler, SystemClock};
use udl::{DataLayer, Error, ErrorKind, Metrics, Result, UdlConfig};
use udl_gateway::Gateway;

/// Pause between attempts to connect the data layer while a store is unreachable.
const RECONNECT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Pause after a failed accept (such as running out of file descriptors).
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Longest a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What every request handler shares.
struct Daemon {
    config: UdlConfig,
    monitor: HealthMonitor,
    metrics: Arc<Metrics>,
    data: Arc<tokio::sync::OnceCell<DataLayer>>,
}

impl Daemon {
    /// With `[cdc]`, runs the change relay (streaming or standing by) until `stop`.
    async fn run_relay(&self, stop: tokio::sync::watch::Receiver<bool>) {
        let (Some(_), Some(data)) = (&self.config.cdc, self.data.get()) else {
            return;
        };
        let outcome = match data.configured_relay(&self.config).await {
            Ok(relay) => relay.run(stop).await,
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            tracing::error!(error = %e, "the change relay stopped");
        }
    }

    /// With PostgreSQL configured and `jobs.scheduler` on, runs the scheduled jobs until
    /// `stop` (each slot once across every `udl serve`).
    async fn run_jobs(&self, stop: tokio::sync::watch::Receiver<bool>) {
        let (true, Some(data)) = (self.config.jobs.scheduler, self.data.get()) else {
            return;
        };
        let Ok(pg) = data.postgres() else { return };
        let runner = JobRunner::new(pg.clone(), Arc::new(SystemClock))
            .reporting_to(Arc::clone(&self.metrics));
        let jobs = crate::jobs::available(&self.config, pg, data.mongo().ok());
        match Scheduler::new(Arc::new(runner), &self.config.jobs, jobs) {
            Ok(scheduler) => {
                tracing::info!(jobs = ?scheduler.job_names(), "job scheduler running");
                scheduler.run(stop).await;
            }
            Err(e) => tracing::error!(error = %e, "the job scheduler did not start"),
        }
    }

    /// Connects the data layer, retrying until every configured store answers.
    async fn connect(&self) {
        loop {
            match DataLayer::connect_with_metrics(&self.config, Arc::clone(&self.metrics)).await {
                Ok(data) => {
                    self.monitor.adopt(&data).await;
                    let _ = self.data.set(data);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "data layer not connected yet; trying again");
                    tokio::time::sleep(RECONNECT_EVERY).await;
                }
            }
        }
    }
}

const JSON: &str = "application/json";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn live() -> Response {
    answer(StatusCode::OK, JSON, r#"{"status":"live"}"#.into())
}

async fn ready(State(daemon): State<Arc<Daemon>>) -> Response {
    let mut report = daemon
        .monitor
        .check(daemon.config.serve.health_timeout)
        .await;
    if let Some(data) = daemon.data.get() {
        report = report.with_breakers(data);
    }
    let status = match report.overall {
        Overall::Ready | Overall::Degraded => StatusCode::OK,
        Overall::Down => StatusCode::SERVICE_UNAVAILABLE,
    };
    answer(status, JSON, report.to_json())
}

async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    // Scrapes are rare (every 15 s or so), so each refreshes store_up and the pools.
    daemon
        .monitor
        .check(daemon.config.serve.health_timeout)
        .await;
    answer(StatusCode::OK, OPENMETRICS, daemon.metrics.render())
}

async fn not_found() -> Response {
    answer(
        StatusCode::NOT_FOUND,
        JSON,
        r#"{"error":"not found; try /health/live, /health/ready, /metrics or /v1/openapi.json"}"#
            .into(),
    )
}

/// Every route: health and metrics, and the gateway when `[gateway]` is configured.
fn routes(daemon: &Arc<Daemon>) -> Result<Router> {
    let health = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(daemon));
    let Some(config) = daemon.config.gateway.clone() else {
        return Ok(health.fallback(not_found));
    };
    let gateway = Gateway::new(config, Arc::clone(&daemon.data))?;
    // The gateway's fallback answers unknown paths (as problem+json).
    Ok(udl_gateway::router(Arc::new(gateway)).merge(health))
}

fn io_error(message: &'static str, e: &std::io::Error) -> Error {
    Error::new(ErrorKind::Config, format!("{message}: {}", e.kind())).with_operation("serve")
}

/// Serves one accepted connection (after its TLS handshake, when configured) until it ends or
/// the daemon drains.
fn serve_connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    app: Router,
    graceful: &GracefulShutdown,
) {
    let watcher = graceful.watcher();
    tokio::spawn(async move {
        let outcome = match tls {
            None => {
                let service = TowerToHyperService::new(app);
                let connection =
                    http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                watcher.watch(connection).await
            }
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                let stream = match handshake {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        // An unknown client certificate ends here, before any HTTP is read.
                        tracing::info!(error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => return,
                };
                let names = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(udl_gateway::client_names);
                let app = match names {
                    Some(names) => app.layer(Extension(names)),
                    None => app,
                };
                let service = TowerToHyperService::new(app);
                let connection =
                    http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                watcher.watch(connection).await
            }
        };
        if let Err(e) = outcome {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: UdlConfig) -> Result<ExitCode> {
    let addr = config.serve.addr;
    let tls = match config.gateway.as_ref().and_then(|g| g.tls.as_ref()) {
        Some(tls) => Some(udl_gateway::acceptor(tls)?),
        None => None,
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| io_error("cannot listen on serve.addr", &e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| io_error("cannot read the bound address", &e))?;
    let metrics = Arc::new(Metrics::new());
    let daemon = Arc::new(Daemon {
        monitor: HealthMonitor::new(config.clone()).with_metrics(Arc::clone(&metrics)),
        config,
        metrics,
        data: Arc::new(tokio::sync::OnceCell::new()),
    });
    let app = routes(&daemon)?;
    let (stop_relay, relay_stopped) = tokio::sync::watch::channel(false);
    let mut connecting = {
        let daemon = Arc::clone(&daemon);
        tokio::spawn(async move {
            daemon.connect().await;
            let jobs_stopped = relay_stopped.clone();
            tokio::join!(
                daemon.run_relay(relay_stopped),
                daemon.run_jobs(jobs_stopped)
            );
        })
    };
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| io_error("cannot listen for SIGTERM", &e))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| io_error("cannot listen for SIGINT", &e))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and supervisors read the bound address from this line (serve.addr may say port 0).
    println!("udl serve: listening on {scheme}://{bound}");
    tracing::info!(%bound, "udl serve listening");

    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        match accepted {
            Ok((stream, _peer)) => serve_connection(stream, tls.clone(), app.clone(), &graceful),
            Err(e) => {
                // Out of file descriptors and the like: keep serving the connections we have,
                // and pause rather than spin until accepting works again.
                tracing::warn!(error = %e.kind(), "accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }

    drop(listener);
    println!("udl serve: stopping; draining requests in flight");
    let grace = daemon.config.serve.shutdown_grace;
    let drained = tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_ok();
    if !drained {
        tracing::warn!(
            ?grace,
            "requests still in flight after the shutdown grace period"
        );
    }
    // The relay makes what it holds durable and acknowledges it before stopping; a job run in
    // progress finishes.
    let _ = stop_relay.send(true);
    if daemon.data.get().is_none() || tokio::time::timeout(grace, &mut connecting).await.is_err() {
        connecting.abort();
    }
    if let Some(data) = daemon.data.get() {
        data.shutdown(grace).await;
    }
    daemon.monitor.close().await;
    println!("udl serve: stopped");
    Ok(if drained {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
