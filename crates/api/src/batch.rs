//! JSON batching: `POST /$batch` with up to 20 requests, run in dependency order as the caller
//! (an item's own `Authorization` header is ignored). Per-request failures stay in their own
//! `status`; only a malformed batch (too many requests, duplicate ids, unknown or cyclic
//! `dependsOn`) fails as a whole. A batch cannot contain a batch, however its url is spelled,
//! so one batch is at most [`MAX_REQUESTS`] plain requests.
//!
//! Item urls are taken as Graph takes them: relative to the version, with or without a leading
//! `/`, and with characters a URI may not hold (spaces in `$filter`) percent-encoded here.
//! Answers keep Graph's shape: `id`, `status`, `headers` (Graph's capitalisation), `body` (the
//! item's JSON bytes as they were rendered, so properties keep their order).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::auth::Caller;
use crate::context::render_error;
use crate::entities::json_response;
use crate::error::ApiError;
use crate::{AppState, Call};

/// Graph's limit of requests in one batch.
pub const MAX_REQUESTS: usize = 20;

#[derive(Deserialize)]
struct BatchBody {
    requests: Vec<BatchItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchItem {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: HashMap<String, String>,
    /// Kept as its bytes: re-serialising a parsed value would drop duplicate keys that the
    /// item's handler must see and refuse, as it does for the same request made directly.
    #[serde(default)]
    body: Option<Box<RawValue>>,
    #[serde(default)]
    depends_on: Vec<String>,
}

/// The order to run the items in: dependencies first; `None` on a cycle.
fn run_order(items: &[BatchItem], index: &HashMap<&str, usize>) -> Option<Vec<usize>> {
    // 0 = unvisited, 1 = on the stack, 2 = done.
    fn visit(
        i: usize,
        items: &[BatchItem],
        index: &HashMap<&str, usize>,
        state: &mut [u8],
        order: &mut Vec<usize>,
    ) -> bool {
        match state[i] {
            1 => return false,
            2 => return true,
            _ => {}
        }
        state[i] = 1;
        for dependency in &items[i].depends_on {
            if !visit(index[dependency.as_str()], items, index, state, order) {
                return false;
            }
        }
        state[i] = 2;
        order.push(i);
        true
    }
    let mut state = vec![0u8; items.len()];
    let mut order = Vec::with_capacity(items.len());
    for i in 0..items.len() {
        if !visit(i, items, index, &mut state, &mut order) {
            return None;
        }
    }
    Some(order)
}

fn parse_batch(body: &[u8]) -> Result<Vec<BatchItem>, ApiError> {
    let batch: BatchBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "The batch body must be {{\"requests\": [...]}} with id, method and url in each: {e}."
        ))
    })?;
    let items = batch.requests;
    if items.is_empty() {
        return Err(ApiError::bad_request("The batch contains no requests."));
    }
    if items.len() > MAX_REQUESTS {
        return Err(ApiError::bad_request(format!(
            "A batch holds at most {MAX_REQUESTS} requests; this one has {}.",
            items.len()
        )));
    }
    Ok(items)
}

/// The caller a batch's items run as: the batch's own, resolved once from the outer request
/// (its token, or its session with the session's headers), never from an item's headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchCaller(pub Caller);

/// `POST /$batch`.
pub(crate) async fn run_batch(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
) -> Result<Response, ApiError> {
    if call.method != Method::POST {
        return Err(ApiError::method_not_allowed("POST"));
    }
    let items = parse_batch(&call.body)?;
    let mut index = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if index.insert(item.id.as_str(), i).is_some() {
            return Err(ApiError::bad_request(format!(
                "The batch request id '{}' is used more than once.",
                item.id
            )));
        }
    }
    for item in &items {
        if let Some(unknown) = item
            .depends_on
            .iter()
            .find(|d| !index.contains_key(d.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "Request '{}' depends on '{unknown}', which is not in the batch.",
                item.id
            )));
        }
    }
    let order = run_order(&items, &index)
        .ok_or_else(|| ApiError::bad_request("The dependsOn references form a cycle."))?;
    let mut answers: Vec<Option<ItemAnswer>> = (0..items.len()).map(|_| None).collect();
    let mut succeeded = vec![false; items.len()];
    for i in order {
        let item = &items[i];
        let failed_dependency = item
            .depends_on
            .iter()
            .any(|d| !succeeded[index[d.as_str()]]);
        let response = if failed_dependency {
            ApiError::new(
                StatusCode::FAILED_DEPENDENCY,
                "failedDependency",
                "A request this one depends on failed.",
            )
            .into_response()
        } else {
            run_item(state, call, caller, item).await
        };
        let client_request_id = item_client_request_id(call, item);
        let response = render_error(
            response,
            &uuid::Uuid::new_v4().to_string(),
            &client_request_id,
        );
        succeeded[i] = response.status().is_success() || response.status().is_redirection();
        answers[i] = Some(describe(&item.id, response).await);
    }
    let body = BatchAnswer {
        responses: answers.into_iter().flatten().collect(),
    };
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    ))
}

/// The `client-request-id` an item's error envelope carries: the item's own header, else the
/// batch's, else a new GUID (Graph puts a GUID there, never the item id).
fn item_client_request_id(call: &Call, item: &BatchItem) -> String {
    item.headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("client-request-id"))
        .map(|(_, value)| value.as_str())
        .or_else(|| {
            call.headers
                .get("client-request-id")
                .and_then(|v| v.to_str().ok())
        })
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Characters percent-encoded in an item url before it is parsed: those a URI cannot hold.
/// `%` is kept, so already-encoded urls pass unchanged.
const NOT_IN_URI: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The request URI of an item url, relative to the batch's version as in Graph. A leading
/// segment naming the batch's own version is dropped: Microsoft's JavaScript client makes
/// item urls from absolute ones by cutting only the scheme and host (`/v1.0/reports/...`).
fn item_uri(call: &Call, url: &str) -> Result<Uri, ApiError> {
    let relative = url.trim().trim_start_matches('/');
    let version = call.version.segment();
    let relative = match relative.get(..version.len() + 1) {
        Some(prefix) if prefix.eq_ignore_ascii_case(&format!("{version}/")) => {
            &relative[version.len() + 1..]
        }
        _ => relative,
    };
    let encoded = utf8_percent_encode(relative, NOT_IN_URI);
    format!("/{}/{encoded}", call.version.segment())
        .parse::<Uri>()
        .map_err(|error| ApiError::bad_request(format!("Invalid request url '{url}': {error}.")))
}

/// Request headers an item may not set: the caller's identity and the framing are the batch's.
fn is_reserved_header(name: &HeaderName) -> bool {
    [
        header::AUTHORIZATION,
        header::COOKIE,
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
    ]
    .contains(name)
}

async fn run_item(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
    item: &BatchItem,
) -> Response {
    match build_item_request(call, caller, item) {
        Ok(request) => match Box::pin(crate::handle(state, request, crate::Nesting::InBatch)).await
        {
            Ok(response) => response,
            Err(error) => error.into_response(),
        },
        Err(error) => error.into_response(),
    }
}

fn build_item_request(
    call: &Call,
    caller: Caller,
    item: &BatchItem,
) -> Result<Request<Body>, ApiError> {
    let method = Method::from_bytes(item.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| ApiError::bad_request(format!("Invalid method '{}'.", item.method)))?;
    let mut request = Request::builder()
        .method(method)
        .uri(item_uri(call, &item.url)?);
    for (name, value) in &item.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            if !is_reserved_header(&name) {
                request = request.header(name, value);
            }
        }
    }
    // Items always run as the caller: the batch's, never one of their own.
    request = request.extension(BatchCaller(caller));
    // Items answer with the batch's base URL (its listener's).
    request = request.extension(crate::server::ListenerUrl(call.base_url.clone()));
    let body = match &item.body {
        Some(raw) => Body::from(raw.get().as_bytes().to_vec()),
        None => Body::empty(),
    };
    request
        .body(body)
        .map_err(|error| ApiError::bad_request(format!("Invalid request: {error}.")))
}

/// The batch answer, fields in Graph's order.
#[derive(Serialize)]
struct BatchAnswer {
    responses: Vec<ItemAnswer>,
}

/// One item's answer: `id`, `status`, `headers`, `body`, in Graph's order.
#[derive(Serialize)]
struct ItemAnswer {
    id: String,
    status: u16,
    headers: HeaderList,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Box<RawValue>>,
}

/// Response headers as a JSON object, in the order given.
struct HeaderList(Vec<(String, String)>);

impl Serialize for HeaderList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A header name as Graph writes it in batch answers: `Content-Type`, `OData-Version`, `ETag`.
/// Why: Microsoft's JavaScript client reads `headers["Content-Type"]` case-sensitively.
fn graph_header_name(name: &HeaderName) -> String {
    match name.as_str() {
        "odata-version" => "OData-Version".to_owned(),
        "etag" => "ETag".to_owned(),
        "www-authenticate" => "WWW-Authenticate".to_owned(),
        other => other
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

async fn describe(id: &str, response: Response) -> ItemAnswer {
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut headers: Vec<(String, String)> = Vec::new();
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        headers.push(("Cache-Control".to_owned(), "no-cache".to_owned()));
    }
    if is_json {
        headers.push(("OData-Version".to_owned(), "4.0".to_owned()));
    }
    for (name, value) in response.headers() {
        if let Ok(value) = value.to_str() {
            headers.push((graph_header_name(name), value.to_owned()));
        }
    }
    // Item answers are bounded: a page, an entity or an error (a batch holds no batch).
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body = (!bytes.is_empty()).then(|| item_body(&bytes, is_json));
    ItemAnswer {
        id: id.to_owned(),
        status,
        headers: HeaderList(headers),
        body: body.flatten(),
    }
}

/// An item's body in the batch answer: JSON as rendered; text as a string; other bytes base64.
fn item_body(bytes: &[u8], is_json: bool) -> Option<Box<RawValue>> {
    if is_json {
        if let Ok(text) = std::str::from_utf8(bytes) {
            if let Ok(raw) = RawValue::from_string(text.to_owned()) {
                return Some(raw);
            }
        }
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => Value::from(text),
        Err(_) => Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)),
    };
    serde_json::value::to_raw_value(&text).ok()
}
