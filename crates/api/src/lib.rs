//! The HTTP layer of reportroot: Microsoft Graph's `/reports` API (entity sets, report
//! functions, `$metadata`) served with axum over any [`Storage`] backend.

pub mod auth;
mod batch;
pub mod context;
pub mod download;
mod entities;
pub mod error;
mod functions;
mod paging;
mod report_cache;
pub mod routes;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use reportroot_storage::Storage;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::TokenVerifier;
use crate::error::ApiError;
use crate::routes::{resolve, ApiVersion, Target};

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The base URL clients reach this server at, without a trailing slash; it prefixes
    /// `@odata.context`, `Location` and links.
    pub public_url: String,
    /// Accepted token audiences.
    pub audiences: Vec<String>,
    /// The token-signing secret.
    pub secret: Vec<u8>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Rows per page of a collection answer.
    pub page_size: u64,
    /// How long a report download URL stays valid.
    pub download_ttl_seconds: u64,
}

impl ApiConfig {
    /// Defaults for a server reached at `public_url`, signing with `secret`.
    pub fn new(public_url: impl Into<String>, secret: Vec<u8>) -> Self {
        ApiConfig {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            audiences: vec![
                auth::GRAPH_AUDIENCE.to_owned(),
                auth::GRAPH_APP_ID.to_owned(),
            ],
            secret,
            max_body_bytes: 1024 * 1024,
            page_size: 1000,
            download_ttl_seconds: 300,
        }
    }
}

/// Everything a request handler needs.
pub struct AppState {
    /// The storage backend.
    pub storage: Arc<dyn Storage>,
    /// Settings.
    pub config: ApiConfig,
    verifier: TokenVerifier,
    downloads: download::DownloadSigner,
    skiptokens: download::Signer,
    report_cache: report_cache::ReportCache,
}

impl AppState {
    /// Builds the state.
    pub fn new(storage: Arc<dyn Storage>, config: ApiConfig) -> Arc<Self> {
        let verifier = TokenVerifier::new(&config.secret, &config.audiences);
        let downloads = download::DownloadSigner::new(&config.secret);
        let skiptokens = paging::skiptoken_signer(&config.secret);
        Arc::new(AppState {
            storage,
            config,
            verifier,
            downloads,
            skiptokens,
            report_cache: report_cache::ReportCache::default(),
        })
    }
}

/// The parts of a request a handler looks at, with the body already read.
#[derive(Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    pub body: bytes::Bytes,
    pub version: ApiVersion,
}

impl Call {
    /// `<public url>/<version>`.
    pub fn base(&self, state: &AppState) -> String {
        format!("{}/{}", state.config.public_url, self.version.segment())
    }
}

/// The whole application as a router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("An unexpected error occurred.").into_response()
        }))
        .layer(axum::middleware::from_fn(context::request_context))
}

/// Serves `router` on `listener` until `shutdown` resolves, letting requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match handle(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn decode_segments(path: &str) -> Vec<String> {
    path.split('/')
        .skip(1)
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, ApiError> {
    let limit = state.config.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BadRequest",
            format!("The request body is larger than the limit of {limit} bytes."),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

pub(crate) async fn handle(state: &Arc<AppState>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let segments = decode_segments(parts.uri.path());
    if segments.len() == 1 && segments[0] == "healthz" {
        return Ok((StatusCode::OK, "ok").into_response());
    }
    if let [reports, download, token] = segments.as_slice() {
        if reports == "reports" && download == "download" {
            return functions::download(state, &parts.method, &parts.headers, token).await;
        }
    }
    let resolved = resolve(&segments)?;
    let query = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let body = read_body(state, &parts.headers, body).await?;
    let call = Call {
        method: parts.method,
        headers: parts.headers,
        query,
        body,
        version: resolved.version,
    };
    // $metadata is public, as in Graph; everything else needs a token.
    if resolved.target == Target::Metadata {
        return metadata(&call);
    }
    let caller = state.verifier.caller(&call.headers)?;
    match resolved.target {
        Target::Metadata => metadata(&call),
        Target::Collection(report) => entities::collection(state, &call, caller, report).await,
        Target::Entity(report, id) => entities::entity(state, &call, caller, report, &id).await,
        Target::ReportRoot => {
            caller.require_read()?;
            let context = format!("{}/$metadata#reports/$entity", call.base(state));
            Ok(entities::json_response(
                StatusCode::OK,
                serde_json::to_vec(&serde_json::json!({ "@odata.context": context }))
                    .unwrap_or_default(),
            ))
        }
        Target::Function(report, args) => {
            functions::call_function(state, &call, caller, report, args.as_deref()).await
        }
        Target::Count(report) => entities::count(state, &call, caller, report).await,
        Target::Batch => batch::run_batch(state, &call).await,
    }
}

/// `GET /$metadata`: public, as in Graph.
fn metadata(call: &Call) -> Result<Response, ApiError> {
    use reportroot_odata::csdl::{metadata_xml, FunctionReturn};
    if call.method != Method::GET {
        return Err(ApiError::method_not_allowed("GET"));
    }
    let returns = match call.version {
        ApiVersion::V1 => FunctionReturn::Stream,
        ApiVersion::Beta => FunctionReturn::Collection,
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/xml"),
            (axum::http::HeaderName::from_static("odata-version"), "4.0"),
        ],
        metadata_xml(returns),
    )
        .into_response())
}
