//! One error type for every failure a client can cause or see. Handlers return [`ApiError`];
//! the request-context middleware turns it into Graph's envelope with the request's ids.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reportroot_odata::json::BodyError;
use reportroot_storage::StorageError;

/// Seconds a client is asked to wait before retrying a `503`: long enough for a busy SQLite
/// writer (an import chunk, a checkpoint) to have moved on.
const RETRY_AFTER_SECONDS: &str = "2";

/// A failed request: status, Graph error code and message.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Graph's error code, which clients branch on.
    pub code: &'static str,
    /// A message for people.
    pub message: String,
    /// Extra response headers (`WWW-Authenticate`, `Allow`, `Retry-After`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether `innerError` also carries `code`, `message` and `status`, as Graph's throttling
    /// answer (429 `TooManyRequests`) does.
    pub status_in_inner_error: bool,
}

/// Marks a response whose body the middleware must render as the error envelope.
#[derive(Debug, Clone)]
pub(crate) struct PendingError {
    pub code: &'static str,
    pub message: String,
    pub status_in_inner_error: bool,
}

impl ApiError {
    /// An error with no extra headers.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
            status_in_inner_error: false,
        }
    }

    /// 429 `TooManyRequests` with `Retry-After`, in Graph's throttling shape.
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Please retry again later.",
        );
        error.status_in_inner_error = true;
        error.set_retry_after(retry_after_seconds);
        error
    }

    /// Sets `Retry-After` to whole seconds.
    pub fn set_retry_after(&mut self, seconds: u64) {
        self.headers.retain(|(name, _)| name != header::RETRY_AFTER);
        self.headers
            .push((header::RETRY_AFTER, HeaderValue::from(seconds)));
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 400 for a path segment that names nothing.
    pub fn unknown_segment(segment: &str) -> Self {
        Self::bad_request(format!("Resource not found for the segment '{segment}'."))
    }

    /// 404 `itemNotFound`.
    pub fn item_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            format!("The entity with id '{id}' was not found."),
        )
    }

    /// 401 `InvalidAuthenticationToken`, with `WWW-Authenticate: Bearer`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        );
        error
            .headers
            .push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        error
    }

    /// 403 `accessDenied`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "accessDenied", message)
    }

    /// 405, with `Allow`.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadRequest",
            format!("The HTTP method is not allowed here; allowed: {allow}."),
        );
        error
            .headers
            .push((header::ALLOW, HeaderValue::from_static(allow)));
        error
    }

    /// 503 `serviceNotAvailable`, with `Retry-After` as Graph sends it.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            message,
        );
        error.headers.push((
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        ));
        error
    }

    /// The same error, answered as the last on its connection (`Connection: close`).
    pub fn closing_connection(mut self) -> Self {
        self.headers
            .push((header::CONNECTION, HeaderValue::from_static("close")));
        self
    }

    /// 500 `generalException`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            message,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response.extensions_mut().insert(PendingError {
            code: self.code,
            message: self.message,
            status_in_inner_error: self.status_in_inner_error,
        });
        response
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        ApiError::bad_request(error.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match &error {
            StorageError::DuplicateId(_) | StorageError::DuplicateKey { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            StorageError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                "The entity was not found.",
            ),
            StorageError::PreconditionFailed { .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "resourceModified",
                error.to_string(),
            ),
            // 503 rather than 400: the same query may succeed on a less busy server, and
            // Graph asks clients to retry `serviceNotAvailable` later.
            StorageError::QueryTimeout => ApiError::unavailable(error.to_string()),
            StorageError::TooManyPoints => ApiError::bad_request(error.to_string()),
            StorageError::SchemaTooNew { .. }
            | StorageError::Aborted(_)
            | StorageError::Backend(_) => {
                tracing::error!(%error, "storage failure");
                ApiError::unavailable("The storage backend failed; try again later.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_ask_clients_to_retry_later() {
        let error = ApiError::from(StorageError::Backend("database is locked".into()));
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code, "serviceNotAvailable");
        assert!(error
            .headers
            .iter()
            .any(|(name, value)| name == header::RETRY_AFTER && value == RETRY_AFTER_SECONDS));
    }
}
