//! `/v1/{entity}`: each registered entity's records over HTTP, through the same stack as
//! `DataLayer::repository` (access policy and audit, encryption, cache, resilience). Field names
//! are checked against the entity's declaration; values are never echoed in errors.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};
use udl::{EntityMeta, Records, Value};

use crate::access::Caller;
use crate::body::{etag, if_match, json_body};
use crate::json_record::{
    changes_from_json, id_from_path, record_from_json, record_to_json, replacement,
};
use crate::problem::Problem;
use crate::query_json::{filter_from_json, page_from_json, sort_from_json};
use crate::state::Gateway;

type Answer = Result<Response, Problem>;

impl Gateway {
    /// The registered entity served as `name`, with its records, once `caller` may use
    /// `operation` on it.
    async fn records(
        &self,
        caller: &Caller,
        name: &str,
        operation: &str,
    ) -> Result<Records, Problem> {
        let ready = self.ready()?;
        let entity = crate::catalog::served_entity(&ready.data, name)
            .ok_or_else(|| Problem::no_route("no entity of that name is served"))?;
        caller.allow(self, operation, entity.name).await?;
        ready.data.records(entity).map_err(Problem::from)
    }

    /// The records of entity `name` and the id `segment` names in them, once `caller` may use
    /// `operation` on it: what every `/v1/{entity}/{id}` route starts with.
    async fn record_at(
        &self,
        caller: &Caller,
        name: &str,
        segment: &str,
        operation: &str,
    ) -> Result<(Records, Value), Problem> {
        let records = self.records(caller, name, operation).await?;
        let id = id_from_path(records.entity(), segment)?;
        Ok((records, id))
    }
}

fn json_answer(status: StatusCode, body: Json) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn with_etag(mut response: Response, entity: &EntityMeta, record: &udl::Record) -> Response {
    let version = entity.version_field.and_then(|f| match record.get(f) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    });
    if let Some(tag) = version.and_then(|v| HeaderValue::from_str(&etag(v)).ok()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// `GET /v1/{entity}/{id}`.
pub async fn get(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Answer {
    let (records, id) = gw.record_at(&caller, &name, &id, "read").await?;
    let entity = records.entity();
    let record = records.get(&caller.ctx, &id).await?.ok_or_else(|| {
        Problem::from(udl::Error::new(
            udl::ErrorKind::NotFound,
            format!("no {} with that id", entity.name),
        ))
    })?;
    let response = json_answer(StatusCode::OK, record_to_json(entity, &record));
    Ok(with_etag(response, entity, &record))
}

/// `PUT /v1/{entity}/{id}`: replaces every field but the id and version.
pub async fn put(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let (records, id) = gw.record_at(&caller, &name, &id, "update").await?;
    let entity = records.entity();
    let mut record = record_from_json(entity, &json_body(&body)?)?;
    if record.get(entity.id_field).is_some_and(|sent| *sent != id) {
        return Err(Problem::bad_request(
            "the body's id differs from the path's",
        ));
    }
    record.set(entity.id().name, id.clone());
    if let Some(version) = entity.version_field {
        // The store manages the version; a full record must still carry one to validate.
        record.set(version, Value::Int(0));
    }
    record.validate(entity)?;
    let changes = replacement(entity, record, if_match(&headers)?);
    updated(records.update(&caller.ctx, &id, changes).await?, entity)
}

/// `PATCH /v1/{entity}/{id}`: sets the fields the body names.
pub async fn patch(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let (records, id) = gw.record_at(&caller, &name, &id, "update").await?;
    let entity = records.entity();
    let changes = changes_from_json(entity, &json_body(&body)?, if_match(&headers)?)?;
    updated(records.update(&caller.ctx, &id, changes).await?, entity)
}

fn updated(matched: bool, entity: &EntityMeta) -> Answer {
    if matched {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(udl::Error::new(
            udl::ErrorKind::NotFound,
            format!("no {} with that id", entity.name),
        )
        .into())
    }
}

/// `DELETE /v1/{entity}/{id}`.
pub async fn delete(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Answer {
    let (records, id) = gw.record_at(&caller, &name, &id, "delete").await?;
    updated(records.delete(&caller.ctx, &id).await?, records.entity())
}

/// `POST /v1/{entity}` (create) and `POST /v1/{entity}:{list|count|nearest}`.
pub async fn post(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(target): Path<String>,
    body: Bytes,
) -> Answer {
    let (name, action) = match target.split_once(':') {
        Some((name, action)) => (name, action),
        None => (target.as_str(), "create"),
    };
    let operation = match action {
        "create" => "create",
        "list" | "count" => "list",
        "nearest" => "search",
        _ => {
            return Err(Problem::no_route(
                "unknown action; use :list, :count or :nearest",
            ))
        }
    };
    let records = gw.records(&caller, name, operation).await?;
    let body = json_body(&body)?;
    match action {
        "create" => create(&records, &caller, &body).await,
        "list" => list(&records, &caller, &body).await,
        "count" => {
            let filter = filter_from_json(records.entity(), body.get("filter"))?;
            let count = records.count(&caller.ctx, &filter).await?;
            Ok(json_answer(StatusCode::OK, json!({ "count": count })))
        }
        _ => nearest(&records, &caller, &body).await,
    }
}

async fn create(records: &Records, caller: &Caller, body: &Json) -> Answer {
    let entity = records.entity();
    let record = record_from_json(entity, body)?;
    let id = record.get(entity.id_field).cloned().unwrap_or(Value::Null);
    records.create(&caller.ctx, record).await?;
    Ok(json_answer(
        StatusCode::CREATED,
        json!({ "id": id.to_json() }),
    ))
}

async fn list(records: &Records, caller: &Caller, body: &Json) -> Answer {
    let entity = records.entity();
    let filter = filter_from_json(entity, body.get("filter"))?;
    let sort = sort_from_json(entity, body.get("sort"))?;
    let page = records
        .list(&caller.ctx, &filter, &sort, page_from_json(body)?)
        .await?;
    let items: Vec<Json> = page
        .items
        .iter()
        .map(|r| record_to_json(entity, r))
        .collect();
    let next = page.next.map(|c| c.as_str().to_owned());
    Ok(json_answer(
        StatusCode::OK,
        json!({ "items": items, "next": next }),
    ))
}

async fn nearest(records: &Records, caller: &Caller, body: &Json) -> Answer {
    let entity = records.entity();
    let field = body
        .get("field")
        .and_then(Json::as_str)
        .ok_or_else(|| Problem::bad_request("nearest needs field (the vector field's name)"))?;
    let vector: Vec<f32> = body
        .get("vector")
        .and_then(Json::as_array)
        .and_then(|items| items.iter().map(|x| x.as_f64().map(|f| f as f32)).collect())
        .ok_or_else(|| Problem::bad_request("nearest needs vector, an array of numbers"))?;
    let k = body.get("k").and_then(Json::as_u64).unwrap_or(10);
    let k = usize::try_from(k).map_err(|_| Problem::bad_request("k is too large"))?;
    let filter = filter_from_json(entity, body.get("filter"))?;
    let found = records
        .nearest(&caller.ctx, field, &vector, k, &filter)
        .await?;
    let items: Vec<Json> = found
        .iter()
        .map(|(r, score)| json!({ "record": record_to_json(entity, r), "score": score }))
        .collect();
    Ok(json_answer(StatusCode::OK, json!({ "items": items })))
}
