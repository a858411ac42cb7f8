//! udl's HTTP/JSON API for services in any language (`udl serve` with `[gateway]`): every
//! registered entity under `/v1/{entity}`, the Redis structures and analytics writes services
//! need, and an OpenAPI 3.1 document generated from the registry at `/v1/openapi.json`.
//!
//! Every request is authenticated twice: the calling service (client certificate or service
//! token, with an allow-list of entities, operations, roles and purposes) and the end user (a
//! short-lived EdDSA or ES256 JWT, checked against the revocation list). The access context is
//! built from those alone, so the access policy and the audit see who really asked; every
//! refusal is audited. The gateway protects itself with rate limits per service and per end
//! user, a body size limit, a time limit, and bounded concurrency answered by 503 and
//! `Retry-After`.

mod access;
mod body;
mod catalog;
pub mod dev_issuer;
mod entities;
mod json_record;
mod jwt;
mod limits;
mod openapi;
mod problem;
mod query_json;
mod services;
mod state;
mod tls;

pub use access::{IDEMPOTENCY_KEY, PATIENT, PURPOSE, REQUEST_ID, ROLE, SERVICE_TOKEN};
pub use jwt::{Claims, JwtVerifier};
pub use problem::Problem;
pub use state::Gateway;
pub use tls::{acceptor, client_names, ClientCertificateNames};

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::Router;

/// The `/v1` routes of `gateway`.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let limits = limits::Limits::new(&gateway.config);
    let body_limit = gateway.config.max_body_bytes;
    Router::new()
        .route("/v1/openapi.json", get(openapi_json))
        .route("/v1/sessions", post(services::create_session))
        .route(
            "/v1/sessions/{id}",
            get(services::get_session).delete(services::delete_session),
        )
        .route("/v1/revoked-tokens", post(services::revoke_token))
        .route("/v1/revoked-tokens/{jti}", get(services::token_revoked))
        .route("/v1/rate-limits/check", post(services::check_rate))
        .route("/v1/embedding-cache/get", post(services::get_embeddings))
        .route("/v1/embedding-cache/put", post(services::put_embeddings))
        .route("/v1/generation-cache/get", post(services::get_generation))
        .route("/v1/generation-cache/put", post(services::put_generation))
        .route("/v1/analytics/events", post(services::append_events))
        .route("/v1/analytics/points", post(services::write_points))
        .route("/v1/{target}", post(entities::post))
        .route(
            "/v1/{entity}/{id}",
            get(entities::get)
                .put(entities::put)
                .patch(entities::patch)
                .delete(entities::delete),
        )
        .fallback(|| async { Problem::no_route("no such route; see /v1/openapi.json") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(limits, limits::guard))
        .with_state(gateway)
}

/// `GET /v1/openapi.json`: public, so clients can be generated without credentials; it
/// describes declarations, never data.
async fn openapi_json(
    State(gateway): State<Arc<Gateway>>,
) -> Result<axum::Json<serde_json::Value>, Problem> {
    let ready = gateway.ready()?;
    let entities = catalog::served_entities(&ready.data);
    Ok(axum::Json(openapi::document(&entities)))
}
