//! Errors of the token and discovery endpoints, in Entra ID's body: `error`,
//! `error_description` starting with the AADSTS code and ending with the trace and
//! correlation ids and the time, `error_codes`, `timestamp`, `trace_id`, `correlation_id`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One Entra ID error.
#[derive(Debug, Clone)]
pub struct EntraError {
    /// HTTP status.
    pub status: StatusCode,
    /// OAuth's error code (`invalid_client`, …).
    pub error: &'static str,
    /// The AADSTS number.
    pub code: u32,
    /// The message after `AADSTS<code>: `.
    pub message: String,
    /// Seconds to wait, for `429`.
    pub retry_after: Option<u64>,
}

impl EntraError {
    /// An error with the given status, OAuth code, AADSTS number and message.
    pub fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        message: impl Into<String>,
    ) -> Self {
        EntraError {
            status,
            error,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `400 invalid_request`.
    pub fn invalid_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", code, message)
    }

    /// `400 invalid_request` AADSTS900144: a required parameter is missing.
    pub fn missing(parameter: &str) -> Self {
        Self::invalid_request(
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    /// `503 temporarily_unavailable` AADSTS90033: the database or the keys failed (the cause
    /// is logged, not sent).
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        )
    }

    /// `401 invalid_client`.
    pub fn invalid_client(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
    }

    /// The answer, with the request's trace and correlation ids.
    pub fn render(&self, ids: &TraceIds) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            error_description: String,
            error_codes: [u32; 1],
            timestamp: &'a str,
            trace_id: &'a str,
            correlation_id: &'a str,
        }
        let timestamp = entra_timestamp();
        let body = Body {
            error: self.error,
            error_description: format!(
                "AADSTS{}: {}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
                self.code, self.message, ids.trace_id, ids.correlation_id, timestamp
            ),
            error_codes: [self.code],
            timestamp: &timestamp,
            trace_id: &ids.trace_id,
            correlation_id: &ids.correlation_id,
        };
        let mut response = json_response(self.status, &body, ids);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The ids Entra ID puts in every answer: its own trace id (also the `x-ms-request-id`
/// header) and the client's `client-request-id` as correlation id.
#[derive(Debug, Clone)]
pub struct TraceIds {
    /// A new id for this request.
    pub trace_id: String,
    /// The client's `client-request-id` (MSAL sends one), or a new id.
    pub correlation_id: String,
}

impl TraceIds {
    /// The ids of a request with these headers.
    pub fn of(headers: &axum::http::HeaderMap) -> Self {
        let correlation_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| uuid::Uuid::parse_str(v).ok())
            .unwrap_or_else(uuid::Uuid::new_v4);
        TraceIds {
            trace_id: uuid::Uuid::new_v4().to_string(),
            correlation_id: correlation_id.to_string(),
        }
    }
}

/// A JSON answer as Entra sends it: never cached, with its request id.
pub fn json_response(status: StatusCode, body: &impl Serialize, ids: &TraceIds) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&ids.trace_id) {
        headers.insert("x-ms-request-id", value);
    }
    response
}

/// UTC now as Entra writes it: `2026-01-09 02:02:12Z` (Graph's `innerError.date`, with a space
/// and a zone).
fn entra_timestamp() -> String {
    format!("{}Z", crate::context::utc_timestamp().replacen('T', " ", 1))
}
