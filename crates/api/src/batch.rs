//! JSON batching: `POST /$batch` with up to 20 requests, run in dependency order with the
//! caller's token. Per-request failures stay in their own `status`; only a malformed batch
//! (too many requests, duplicate ids, unknown or cyclic `dependsOn`) fails as a whole.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

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
    #[serde(default)]
    body: Option<Value>,
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

/// `POST /$batch`.
pub(crate) async fn run_batch(state: &Arc<AppState>, call: &Call) -> Result<Response, ApiError> {
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
    let mut answers: Vec<Option<Value>> = vec![None; items.len()];
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
            run_item(state, call, item).await
        };
        let response = render_error(response, &uuid::Uuid::new_v4().to_string(), &item.id);
        succeeded[i] = response.status().is_success() || response.status().is_redirection();
        answers[i] = Some(describe(&item.id, response).await);
    }
    let body = json!({ "responses": answers.into_iter().flatten().collect::<Vec<_>>() });
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    ))
}

async fn run_item(state: &Arc<AppState>, call: &Call, item: &BatchItem) -> Response {
    let Ok(method) = Method::from_bytes(item.method.to_ascii_uppercase().as_bytes()) else {
        return ApiError::bad_request(format!("Invalid method '{}'.", item.method)).into_response();
    };
    let url = item.url.trim_start_matches('/');
    if url
        .split(['?', '/'])
        .next()
        .is_some_and(|s| s.eq_ignore_ascii_case("$batch"))
    {
        return ApiError::bad_request("A batch cannot contain a batch.").into_response();
    }
    let uri = format!("/{}/{url}", call.version.segment());
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in &item.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            request = request.header(name, value);
        }
    }
    // Requests inside run with the caller's token, hence the caller's tenant.
    if let Some(authorization) = call.headers.get(header::AUTHORIZATION) {
        request = request.header(header::AUTHORIZATION, authorization.clone());
    }
    let body = match &item.body {
        Some(value) => Body::from(serde_json::to_vec(value).unwrap_or_default()),
        None => Body::empty(),
    };
    let request = match request.body(body) {
        Ok(request) => request,
        Err(error) => {
            return ApiError::bad_request(format!("Invalid request: {error}.")).into_response()
        }
    };
    match Box::pin(crate::handle(state, request)).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn describe(id: &str, response: Response) -> Value {
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        if let Ok(value) = value.to_str() {
            headers.insert(name.as_str().to_owned(), Value::from(value));
        }
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let mut answer = json!({ "id": id, "status": status, "headers": headers });
    if !bytes.is_empty() {
        answer["body"] = if is_json {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        } else {
            match std::str::from_utf8(&bytes) {
                Ok(text) => Value::from(text),
                Err(_) => Value::from(base64::engine::general_purpose::STANDARD.encode(&bytes)),
            }
        };
    }
    answer
}
