//! Per-request context: `request-id` and `client-request-id` on every answer, `OData-Version`
//! on OData JSON, and the error envelope rendered with those ids.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use reportroot_odata::error::{error_json, InnerError};
use uuid::Uuid;

use crate::error::PendingError;

/// `Content-Type` of OData JSON answers, as Graph sends it.
pub const ODATA_JSON: &str =
    "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8";

/// Longest `client-request-id` echoed back.
const MAX_CLIENT_REQUEST_ID: usize = 128;

/// The middleware itself. Every request runs in a `request` span carrying its method, path,
/// request-id and client-request-id, to which the router adds the matched route and the
/// caller's tenant, and this adds the status and latency: every log line of a request (an
/// error's internal cause, say) names its request-id. The span's closing event is at `debug`,
/// so that the default `info` level logs no line per request.
pub async fn request_context(request: Request, next: Next) -> Response {
    use tracing::field::Empty;
    use tracing::Instrument;
    let request_id = Uuid::new_v4().to_string();
    let client_request_id = request
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_CLIENT_REQUEST_ID)
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        client_request_id = %client_request_id,
        route = Empty,
        tenant = Empty,
        status = Empty,
        latency_ms = Empty,
    );
    let started = std::time::Instant::now();
    let answer = next.run(request).instrument(span.clone()).await;
    // Recorded only for the closing event: the fields are formatted into the span's text on
    // every record, work no log line reads at the default `info` level.
    if tracing::enabled!(tracing::Level::DEBUG) {
        span.record("status", answer.status().as_u16());
        span.record("latency_ms", started.elapsed().as_secs_f64() * 1000.0);
        span.in_scope(|| tracing::debug!("request finished"));
    }
    let mut response = render_error(answer, &request_id, &client_request_id);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&client_request_id) {
        headers.insert("client-request-id", value);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        headers.insert("odata-version", HeaderValue::from_static("4.0"));
    }
    response
}

/// Renders the envelope of a response that carries an [`ApiError`], with the request's ids.
pub fn render_error(mut response: Response, request_id: &str, client_request_id: &str) -> Response {
    let Some(error) = response.extensions_mut().remove::<PendingError>() else {
        return response;
    };
    let date = utc_timestamp();
    let status = response.status();
    let body = if error.status_in_inner_error {
        throttling_json(&error, status, &date, request_id, client_request_id)
    } else {
        error_json(
            error.code,
            &error.message,
            InnerError {
                date: &date,
                request_id,
                client_request_id,
            },
        )
    };
    let headers = std::mem::take(response.headers_mut());
    let mut rendered = Response::new(body.into());
    *rendered.status_mut() = status;
    *rendered.headers_mut() = headers;
    rendered
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
    rendered
}

/// Graph's throttling envelope (its documented 429 sample): `innerError` also carries the
/// status as `code` and `status`, and a `message`; the client-request-id is added as on every
/// other error. serde_json's sorted keys give the sample's order.
fn throttling_json(
    error: &PendingError,
    status: axum::http::StatusCode,
    date: &str,
    request_id: &str,
    client_request_id: &str,
) -> Vec<u8> {
    let status = status.as_u16().to_string();
    serde_json::to_vec(&serde_json::json!({
        "error": {
            "code": error.code,
            "message": error.message,
            "innerError": {
                "code": status,
                "date": date,
                "message": "Please retry after",
                "request-id": request_id,
                "client-request-id": client_request_id,
                "status": status,
            }
        }
    }))
    .unwrap_or_default()
}

/// UTC now as Graph writes it in `innerError.date`: `2026-01-01T00:00:00`.
pub fn utc_timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}
