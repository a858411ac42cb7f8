//! `udl serve`: the long-running daemon. It answers `/health/live` (the process is up),
//! `/health/ready` (every store's round trip: 200 ready, 200 degraded, 503 down, with the
//! per-store detail as JSON) and `/metrics` (Prometheus). It also connects the data layer
//! (again and again until every store answers), which replays the analytics spool when
//! `scylla.spool_dir` is set, and runs the change relay when `[cdc]` is configured. On SIGTERM or SIGINT it stops accepting, lets requests in flight
//! finish within `serve.shutdown_grace`, gives the spool a last replay, and closes its
//! connections.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use udl::health::{HealthMonitor, Overall};
use udl::{DataLayer, Error, ErrorKind, Metrics, Result, UdlConfig};

/// Pause between attempts to connect the data layer while a store is unreachable.
const RECONNECT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Pause after a failed accept (such as running out of file descriptors).
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// What every request handler shares.
struct Daemon {
    config: UdlConfig,
    monitor: HealthMonitor,
    metrics: Arc<Metrics>,
    data: tokio::sync::OnceCell<DataLayer>,
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

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

impl Daemon {
    async fn route(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET {
            return answer(
                StatusCode::METHOD_NOT_ALLOWED,
                JSON,
                r#"{"error":"only GET is served"}"#.into(),
            );
        }
        match request.uri().path() {
            "/health/live" => answer(StatusCode::OK, JSON, r#"{"status":"live"}"#.into()),
            "/health/ready" => {
                let mut report = self.monitor.check(self.config.serve.health_timeout).await;
                if let Some(data) = self.data.get() {
                    report = report.with_breakers(data);
                }
                let status = match report.overall {
                    Overall::Ready | Overall::Degraded => StatusCode::OK,
                    Overall::Down => StatusCode::SERVICE_UNAVAILABLE,
                };
                answer(status, JSON, report.to_json())
            }
            "/metrics" => {
                // Scrapes are rare (every 15 s or so), so each refreshes store_up and the pools.
                self.monitor.check(self.config.serve.health_timeout).await;
                answer(StatusCode::OK, OPENMETRICS, self.metrics.render())
            }
            _ => answer(
                StatusCode::NOT_FOUND,
                JSON,
                r#"{"error":"not found; try /health/live, /health/ready or /metrics"}"#.into(),
            ),
        }
    }
}

fn io_error(message: &'static str, e: &std::io::Error) -> Error {
    Error::new(ErrorKind::Config, format!("{message}: {}", e.kind())).with_operation("serve")
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: UdlConfig) -> Result<ExitCode> {
    let addr = config.serve.addr;
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
        data: tokio::sync::OnceCell::new(),
    });
    let (stop_relay, relay_stopped) = tokio::sync::watch::channel(false);
    let mut connecting = {
        let daemon = Arc::clone(&daemon);
        tokio::spawn(async move {
            daemon.connect().await;
            daemon.run_relay(relay_stopped).await;
        })
    };
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| io_error("cannot listen for SIGTERM", &e))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| io_error("cannot listen for SIGINT", &e))?;
    // Tests and supervisors read the bound address from this line (serve.addr may say port 0).
    println!("udl serve: listening on http://{bound}");
    tracing::info!(%bound, "udl serve listening");

    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: keep serving the connections we have,
                // and pause rather than spin until accepting works again.
                tracing::warn!(error = %e.kind(), "accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let daemon = Arc::clone(&daemon);
        let service = service_fn(move |request| {
            let daemon = Arc::clone(&daemon);
            async move { Ok::<_, Infallible>(daemon.route(request).await) }
        });
        let connection =
            graceful.watch(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
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
    // The relay makes what it holds durable and acknowledges it before stopping.
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
