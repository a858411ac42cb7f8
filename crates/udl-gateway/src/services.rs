//! The Redis structures and analytics writes services need, beside entities: sessions and the
//! JWT revocation list, rate-limit checks, the embedding and generation caches, usage events
//! and metric points. Each needs its operation in the service's allow-list.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use udl::redis::{GenerationKey, RateLimit};
use udl::scylla::{Delivery, Event, EventTable, Point};
use udl::Sensitivity;

use crate::access::Caller;
use crate::body::json_body;
use crate::problem::Problem;
use crate::state::Gateway;

type Answer = Result<Response, Problem>;

fn ok(body: Json) -> Answer {
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// The body as `T`; a mismatch names no value (serde's messages can quote the input).
fn typed<T: DeserializeOwned>(body: &Bytes) -> Result<T, Problem> {
    serde_json::from_value(json_body(body)?).map_err(|_| {
        Problem::bad_request(
            "the body does not match this operation's schema (see /v1/openapi.json)",
        )
    })
}

async fn allowed(gw: &Gateway, caller: &Caller, operation: &str) -> Result<(), Problem> {
    caller.allow(gw, operation, operation).await
}

#[derive(Deserialize)]
struct NewSession {
    #[serde(default)]
    data: Json,
}

/// `POST /v1/sessions`: a session for the token's subject.
pub async fn create_session(State(gw): State<Arc<Gateway>>, caller: Caller, body: Bytes) -> Answer {
    allowed(&gw, &caller, "sessions").await?;
    let new: NewSession = typed(&body)?;
    let session = gw
        .ready()?
        .sessions
        .create(&caller.claims.sub, new.data)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": session.id, "user_id": session.user_id})),
    )
        .into_response())
}

/// `GET /v1/sessions/{id}`: the session while it is alive (touching it), 404 after.
pub async fn get_session(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer {
    allowed(&gw, &caller, "sessions").await?;
    match gw.ready()?.sessions.validate(&id).await? {
        Some(s) => ok(json!({"id": s.id, "user_id": s.user_id, "data": s.data})),
        None => Err(Problem::no_route("no live session with that id")),
    }
}

/// `DELETE /v1/sessions/{id}`.
pub async fn delete_session(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer {
    allowed(&gw, &caller, "sessions").await?;
    let sessions = &gw.ready()?.sessions;
    if let Some(session) = sessions.validate(&id).await? {
        sessions.destroy(&session).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct Revocation {
    jti: String,
    exp: i64,
}

/// `POST /v1/revoked-tokens`: revokes a JWT id until its expiry.
pub async fn revoke_token(State(gw): State<Arc<Gateway>>, caller: Caller, body: Bytes) -> Answer {
    allowed(&gw, &caller, "sessions").await?;
    let revocation: Revocation = typed(&body)?;
    let exp = DateTime::<Utc>::from_timestamp(revocation.exp, 0)
        .ok_or_else(|| Problem::bad_request("exp must be seconds since the epoch"))?;
    gw.ready()?
        .sessions
        .revoke_token(&revocation.jti, exp)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/revoked-tokens/{jti}`.
pub async fn token_revoked(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(jti): Path<String>,
) -> Answer {
    allowed(&gw, &caller, "sessions").await?;
    ok(json!({"revoked": gw.ready()?.sessions.is_revoked(&jti).await?}))
}

#[derive(Deserialize)]
struct RateCheck {
    subject: String,
    limit: u32,
    period_ms: u64,
}

/// `POST /v1/rate-limits/check`: one request of `subject` under `limit` per `period_ms`.
pub async fn check_rate(State(gw): State<Arc<Gateway>>, caller: Caller, body: Bytes) -> Answer {
    allowed(&gw, &caller, "rate_limit").await?;
    let check: RateCheck = typed(&body)?;
    let limit = RateLimit {
        limit: check.limit,
        period: Duration::from_millis(check.period_ms),
    };
    // The service's own namespace: a caller cannot spend the gateway's or another's budget.
    let subject = format!("app:{}:{}", caller.service.name, check.subject);
    let decision = gw.ready()?.limiter.check(&subject, limit).await?;
    ok(
        json!({"allowed": decision.allowed, "retry_after_ms": decision.retry_after.as_millis() as u64}),
    )
}

#[derive(Deserialize)]
struct EmbeddingLookup {
    model: String,
    dimension: usize,
    texts: Vec<String>,
}

/// `POST /v1/embedding-cache/get`: cached embeddings by text (null where absent).
pub async fn get_embeddings(State(gw): State<Arc<Gateway>>, caller: Caller, body: Bytes) -> Answer {
    allowed(&gw, &caller, "cache").await?;
    let lookup: EmbeddingLookup = typed(&body)?;
    let texts: Vec<&str> = lookup.texts.iter().map(String::as_str).collect();
    let found = gw
        .ready()?
        .embeddings
        .get_many(&lookup.model, lookup.dimension, &texts)
        .await?;
    ok(json!({"vectors": found}))
}

#[derive(Deserialize)]
struct EmbeddingEntry {
    text: String,
    vector: Vec<f32>,
}

#[derive(Deserialize)]
struct EmbeddingStore {
    model: String,
    entries: Vec<EmbeddingEntry>,
}

/// `POST /v1/embedding-cache/put`.
pub async fn put_embeddings(State(gw): State<Arc<Gateway>>, caller: Caller, body: Bytes) -> Answer {
    allowed(&gw, &caller, "cache").await?;
    let store: EmbeddingStore = typed(&body)?;
    let entries: Vec<(&str, &[f32])> = store
        .entries
        .iter()
        .map(|e| (e.text.as_str(), e.vector.as_slice()))
        .collect();
    gw.ready()?
        .embeddings
        .set_many(&store.model, &entries)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct Generation {
    model: String,
    prompt: String,
    #[serde(default)]
    params: Json,
    response: Option<String>,
    classification: Option<String>,
}

impl Generation {
    fn key(&self) -> GenerationKey<'_> {
        GenerationKey {
            model: &self.model,
            prompt: &self.prompt,
            params: &self.params,
        }
    }
}

/// `POST /v1/generation-cache/get`: a cached LLM response, or null.
pub async fn get_generation(State(gw): State<Arc<Gateway>>, caller: Caller, body: Bytes) -> Answer {
    allowed(&gw, &caller, "cache").await?;
    let generation: Generation = typed(&body)?;
    ok(json!({"response": gw.ready()?.generations.get(&generation.key()).await?}))
}

/// `POST /v1/generation-cache/put`: caches a response unless it is classified PII or PHI
/// (`classification` is required: what is not declared is not cached).
pub async fn put_generation(State(gw): State<Arc<Gateway>>, caller: Caller, body: Bytes) -> Answer {
    allowed(&gw, &caller, "cache").await?;
    let generation: Generation = typed(&body)?;
    let classification = match generation.classification.as_deref() {
        Some("public") => Sensitivity::Public,
        Some("internal") => Sensitivity::Internal,
        Some("pii") => Sensitivity::Pii,
        Some("phi") => Sensitivity::Phi,
        _ => {
            return Err(Problem::bad_request(
                "classification must be public, internal, pii or phi",
            ))
        }
    };
    let response = generation
        .response
        .as_deref()
        .ok_or_else(|| Problem::bad_request("response is required"))?;
    let stored = gw
        .ready()?
        .generations
        .put(&generation.key(), response, classification)
        .await?;
    ok(json!({"stored": stored}))
}

#[derive(Deserialize)]
struct NewEvent {
    at: DateTime<Utc>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Events {
    #[serde(default)]
    table: Option<String>,
    stream: String,
    events: Vec<NewEvent>,
}

fn delivered(delivery: Delivery) -> Answer {
    let how = match delivery {
        Delivery::Written => "written",
        Delivery::Spooled => "spooled",
    };
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"delivery": how}))).into_response())
}

/// `POST /v1/analytics/events`: usage (default) or log events, spooled while ScyllaDB is down.
/// Attributes are free text, so they must never carry PHI: analytics is outside the audit.
pub async fn append_events(State(gw): State<Arc<Gateway>>, caller: Caller, body: Bytes) -> Answer {
    allowed(&gw, &caller, "analytics").await?;
    let events: Events = typed(&body)?;
    let table = match events.table.as_deref() {
        None | Some("usage") => EventTable::Usage,
        Some("logs") => EventTable::Logs,
        Some(_) => return Err(Problem::bad_request("table must be usage or logs")),
    };
    let list: Vec<Event> = events
        .events
        .into_iter()
        .map(|e| Event::new(e.at, e.attributes))
        .collect();
    let analytics = gw.ready()?.data.analytics()?;
    delivered(
        analytics
            .append_events(table, &events.stream, &list)
            .await?,
    )
}

#[derive(Deserialize)]
struct Points {
    series: String,
    points: Vec<NewPoint>,
}

#[derive(Deserialize)]
struct NewPoint {
    at: DateTime<Utc>,
    value: f64,
}

/// `POST /v1/analytics/points`: metric points of one series.
pub async fn write_points(State(gw): State<Arc<Gateway>>, caller: Caller, body: Bytes) -> Answer {
    allowed(&gw, &caller, "analytics").await?;
    let points: Points = typed(&body)?;
    let list: Vec<Point> = points
        .points
        .iter()
        .map(|p| Point {
            at: p.at,
            value: p.value,
        })
        .collect();
    let analytics = gw.ready()?.data.analytics()?;
    delivered(analytics.write_points(&points.series, &list).await?)
}

/// These routes in the OpenAPI document.
pub fn openapi_paths() -> Map<String, Json> {
    let post = |id: &str, summary: &str| {
        json!({"post": {"operationId": id, "summary": summary,
            "parameters": [{"$ref": "#/components/parameters/purpose"}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": {"description": "Done"}, "default": {"description": "Refused or failed"}}}})
    };
    let mut paths = Map::new();
    paths.insert(
        "/v1/sessions".into(),
        post("create_session", "Start a session for the token's subject"),
    );
    paths.insert("/v1/sessions/{id}".into(), json!({
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "get": {"operationId": "get_session", "summary": "A live session", "responses": {"200": {"description": "The session"}}},
        "delete": {"operationId": "delete_session", "summary": "End a session", "responses": {"204": {"description": "Ended"}}}}));
    paths.insert(
        "/v1/revoked-tokens".into(),
        post(
            "revoke_token",
            "Revoke a JWT id until its expiry ({jti, exp})",
        ),
    );
    paths.insert("/v1/revoked-tokens/{jti}".into(), json!({
        "parameters": [{"name": "jti", "in": "path", "required": true, "schema": {"type": "string"}}],
        "get": {"operationId": "token_revoked", "summary": "Whether a JWT id is revoked", "responses": {"200": {"description": "{revoked}"}}}}));
    paths.insert(
        "/v1/rate-limits/check".into(),
        post(
            "check_rate",
            "One request under a limit ({subject, limit, period_ms})",
        ),
    );
    paths.insert(
        "/v1/embedding-cache/get".into(),
        post(
            "get_embeddings",
            "Cached embeddings ({model, dimension, texts})",
        ),
    );
    paths.insert(
        "/v1/embedding-cache/put".into(),
        post(
            "put_embeddings",
            "Cache embeddings ({model, entries: [{text, vector}]})",
        ),
    );
    paths.insert(
        "/v1/generation-cache/get".into(),
        post(
            "get_generation",
            "A cached LLM response ({model, prompt, params})",
        ),
    );
    paths.insert(
        "/v1/generation-cache/put".into(),
        post(
            "put_generation",
            "Cache an LLM response ({model, prompt, params, response, classification})",
        ),
    );
    paths.insert(
        "/v1/analytics/events".into(),
        post(
            "append_events",
            "Usage or log events ({table, stream, events: [{at, attributes}]})",
        ),
    );
    paths.insert(
        "/v1/analytics/points".into(),
        post(
            "write_points",
            "Metric points ({series, points: [{at, value}]})",
        ),
    );
    paths
}
