//! The dashboard: a landing page at `/` and, under `/dashboard/`, pages that draw every
//! report's stored history as charts and tables. The pages are one small script app built
//! into the binary ([`assets`]); their data comes from the OData API itself (the report
//! series function, with the session cookie), so what a page shows is what the API answers.
//! Besides the files, this module serves the registry facts the pages are drawn from
//! ([`registry`]), the operator view's numbers of every tenant in one answer ([`operator`]) and
//! the CSV upload ([`upload`]).
//!
//! Sign-in, sessions and the `/dashboard/api/me` answer live in the accounts module; paths
//! this module does not know are left to it (and to the API's router).

mod assets;
mod operator;
mod pages;
mod registry;
mod upload;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, request::Parts, HeaderValue, Method, StatusCode};
use axum::response::Response;

use crate::error::ApiError;
use crate::AppState;

/// Answers the dashboard's own paths; `None` for every other path.
pub(crate) async fn route(
    state: &Arc<AppState>,
    parts: &Parts,
    body: &mut Option<Body>,
    segments: &[String],
) -> Option<Result<Response, ApiError>> {
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let read = parts.method == Method::GET || parts.method == Method::HEAD;
    let answer = match segments.as_slice() {
        [] => only_read(read, || Ok(pages::landing(&parts.headers))),
        ["dashboard", "assets", name] => {
            let served = assets::serve(name, parts.uri.query(), &parts.headers);
            only_read(read, || served.ok_or_else(|| not_found(parts)))
        }
        ["dashboard", "api", "registry"] => only_read(read, || Ok(registry_answer(parts))),
        ["dashboard", "api", "operator"] => {
            if read {
                operator::operator(state, parts).await
            } else {
                Err(ApiError::method_not_allowed("GET"))
            }
        }
        ["dashboard", "api", "import"] => {
            if parts.method != Method::POST {
                Err(ApiError::method_not_allowed("POST"))
            } else {
                upload::import(state, parts, body).await
            }
        }
        ["dashboard"] | ["dashboard", "operator" | "import"] | ["dashboard", "reports", _] => {
            pages::app(state, parts, &segments).await
        }
        _ => return None,
    };
    Some(answer.map(|mut response| {
        assets::secure(&mut response);
        response
    }))
}

/// `f()` for GET and HEAD, else `405`.
fn only_read(
    read: bool,
    f: impl FnOnce() -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    if read {
        f()
    } else {
        Err(ApiError::method_not_allowed("GET"))
    }
}

fn not_found(parts: &Parts) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        format!("No dashboard file at '{}'.", parts.uri.path()),
    )
}

/// The registry JSON, revalidated by its ETag.
fn registry_answer(parts: &Parts) -> Response {
    let bytes = registry::registry_json();
    let tag = crate::etag::of_bytes(bytes);
    let mut response = assets::cached(
        bytes,
        "application/json; charset=utf-8",
        &tag,
        "no-cache",
        &parts.headers,
    );
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}
