//! A Bot API error response: status, description and optional `retry_after`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error the simulated server answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) description: String,
    pub(crate) retry_after: Option<u32>,
    /// An error of the HTTP layer (td's `HttpConnectionBase`): a status line, no body, and
    /// the connection closed.
    pub(crate) bare: bool,
}

pub(crate) const NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";
pub(crate) const QUERY_TOO_OLD: &str =
    "Bad Request: query is too old and response timeout expired or query ID is invalid";
pub(crate) const CONFLICT_POLL: &str =
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
pub(crate) const CONFLICT_WEBHOOK: &str = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";

impl ApiError {
    pub(crate) fn new(code: u16, description: impl Into<String>) -> Self {
        Self { code, description: description.into(), retry_after: None, bare: false }
    }

    /// An error of the HTTP layer: `status` with an empty body, then the connection closes
    /// (501 for a method other than GET and POST, 413 for too many parameters).
    pub(crate) fn http(status: StatusCode) -> Self {
        Self { bare: true, ..Self::new(status.as_u16(), status.canonical_reason().unwrap_or_default()) }
    }

    /// 400 `Bad Request: {what}`.
    pub(crate) fn bad_request(what: impl std::fmt::Display) -> Self {
        Self::new(400, format!("Bad Request: {what}"))
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(401, "Unauthorized")
    }

    pub(crate) fn method_not_found() -> Self {
        Self::new(404, "Not Found: method not found")
    }

    pub(crate) fn too_large() -> Self {
        Self::new(413, "Request Entity Too Large")
    }

    pub(crate) fn conflict(description: &str) -> Self {
        Self::new(409, description)
    }

    pub(crate) fn retry_after(secs: u32) -> Self {
        Self { retry_after: Some(secs), ..Self::new(429, format!("Too Many Requests: retry after {secs}")) }
    }

    /// An injected server error; the description is the status's reason phrase.
    pub(crate) fn server(code: u16) -> Self {
        let reason =
            StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("Server Error");
        Self::new(code, reason)
    }

    pub(crate) fn body(&self) -> Value {
        let mut body = json!({ "ok": false, "error_code": self.code, "description": self.description });
        if let Some(secs) = self.retry_after {
            body["parameters"] = json!({ "retry_after": secs });
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.bare {
            return (status, [(header::CONNECTION, "close")], axum::body::Body::empty()).into_response();
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// `{"ok":true,"result":…}`.
pub(crate) fn ok_response(result: Value) -> Response {
    axum::Json(json!({ "ok": true, "result": result })).into_response()
}

/// `{"ok":true,"result":…,"description":…}`, as `answer_query` with a description writes
/// it (e.g. `Webhook was set`).
pub(crate) fn ok_with_description(result: Value, description: &str) -> Response {
    axum::Json(json!({ "ok": true, "result": result, "description": description })).into_response()
}
