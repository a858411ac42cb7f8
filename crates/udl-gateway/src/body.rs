//! Request bodies and conditional headers, read without echoing what the caller sent: a JSON
//! syntax error reports its line and column only (serde's own messages can quote the input).

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::Value as Json;

use crate::problem::Problem;

/// The body as JSON (an empty body is `{}`).
pub fn json_body(bytes: &Bytes) -> Result<Json, Problem> {
    if bytes.is_empty() {
        return Ok(Json::Object(Default::default()));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::bad_request(format!(
            "the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// The version an `If-Match: "<version>"` header expects, if one was sent.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Problem> {
    let Some(value) = headers.get("if-match") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| Problem::bad_request("If-Match must be an ETag this API returned"))
}

/// The ETag of a record at `version`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}
