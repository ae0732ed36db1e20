//! Request bodies: read within the configured limit, or drained when a request is refused
//! before its body is needed.
//!
//! Why drain: a server that answers without reading the body cannot reuse the connection, and
//! closing a socket with unread bytes makes the kernel send a reset, so a client that writes
//! its whole body before reading (Python's `http.client`) sees a broken pipe instead of the
//! answer. Reading and discarding up to [`DRAIN_LIMIT`] bytes avoids both; past that the
//! answer says `Connection: close`.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;

use crate::error::ApiError;

/// Most bytes read and discarded from a body the server does not use.
pub(crate) const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Reads a whole body of at most `limit` bytes. Over the limit: `413`, the rest drained. A body
/// that breaks off or is malformed (a bad chunk size): `400`.
pub(crate) async fn read(
    limit: usize,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        let drained =
            declared.is_some_and(|n| n <= DRAIN_LIMIT as u64) && drain(body, DRAIN_LIMIT).await;
        return Err(too_large(limit, drained));
    }
    let mut body = body;
    let mut bytes = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(unreadable)?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                let drained = drain(body, DRAIN_LIMIT).await;
                return Err(too_large(limit, drained));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes.freeze())
}

/// Reads and discards the body; `true` when it ended within `limit` bytes.
pub(crate) async fn drain(mut body: Body, limit: usize) -> bool {
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return false;
        };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > limit {
                return false;
            }
        }
    }
    true
}

/// Marks an answer as the last on its connection.
pub(crate) fn close_connection(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

fn too_large(limit: usize, drained: bool) -> ApiError {
    let error = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "BadRequest",
        format!("The request body is larger than the limit of {limit} bytes."),
    );
    if drained {
        error
    } else {
        error.closing_connection()
    }
}

fn unreadable(error: axum::Error) -> ApiError {
    let mut why = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    ApiError::bad_request(format!("The request body could not be read: {why}."))
        .closing_connection()
}
