//! Errors as HTTP answers: a status and an RFC 9457 `application/problem+json` body built from
//! udl's error kind and its message, which udl writes from metadata only (never a value), so
//! nothing a caller sent and nothing stored is echoed back.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use udl::{Error, ErrorKind};

/// A refusal or failure on its way to the caller.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    kind: &'static str,
    detail: String,
    retry_after: Option<Duration>,
}

impl Problem {
    /// A problem with `status`, a stable machine-readable `kind` and a human `detail` (which
    /// must carry no value from the request or a store).
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            kind,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 401: the caller could not be authenticated.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    /// 403: authenticated, not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_denied", detail)
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", detail)
    }

    /// 404 for a path that names nothing udl serves.
    pub fn no_route(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 503 with `Retry-After`: try again later.
    pub fn busy(detail: impl Into<String>, retry_after: Duration) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail).retry_after(retry_after)
    }

    /// The same problem, telling the caller when to come back.
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// How long a caller is told to wait after a store is unavailable.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        let (status, retry) = match e.kind() {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, None),
            ErrorKind::Conflict => (StatusCode::CONFLICT, None),
            ErrorKind::Unsupported => (StatusCode::NOT_IMPLEMENTED, None),
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, None),
            ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, None),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Some(UNAVAILABLE_RETRY)),
            ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, None),
            ErrorKind::Config | ErrorKind::DataCorruption | ErrorKind::Internal => {
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Logged in full (metadata only) for operators; callers learn only that it failed.
            tracing::error!(error = %e, "gateway request failed");
            "the request failed inside udl; its request id is in the log".to_owned()
        } else {
            e.message().to_owned()
        };
        Problem {
            status,
            kind: e.kind().name(),
            detail,
            retry_after: retry,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": format!("https://udl.dev/problems/{}", self.kind),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "kind": self.kind,
            "detail": self.detail,
        });
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
        response
    }
}
