//! The HTTP layer of reportroot: Microsoft Graph's `/reports` API (entity sets, report
//! functions, `$metadata`) served with axum over any [`Storage`] backend.

pub mod auth;
mod batch;
mod body;
pub mod chaos;
pub mod client_secrets;
pub mod context;
mod dashboard;
pub mod download;
mod entities;
pub mod error;
mod etag;
mod functions;
pub mod metrics;
pub mod oauth;
mod paging;
mod report_cache;
pub mod routes;
pub mod scan_limit;
mod series;
pub mod server;
pub mod session;
pub mod signing;
pub mod throttle;
mod timed_storage;
pub mod tls;
pub mod trusted_issuers;

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

/// The answer cache's default budget. Why 128 MiB: answers now live until their tenant's
/// rows change, and the whole family's report functions over 1,000 tenants are 61,000
/// answers of ~2 KiB each as kept (a beta JSON answer of ~1.4 KB, its headers, key and
/// bookkeeping), ~120 MiB; 32 MiB held a quarter of them.
pub const DEFAULT_ANSWER_CACHE_BYTES: usize = 128 * 1024 * 1024;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The base URL clients reach this server at, without a trailing slash; it prefixes
    /// `@odata.context`, `Location` and links of requests that did not come through a
    /// listener with a base URL of its own (see [`server::request_base_url`]).
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
    /// Most bytes of rendered report answers kept (0: none).
    pub answer_cache_bytes: usize,
    /// How long a kept answer is served without reading the tenant's change version, and how
    /// often that version is read at most per tenant: writes by other instances or processes
    /// show within it. 1 s (tests make it short).
    pub answer_check_interval: std::time::Duration,
    /// Longest a request may take: its body must have arrived by then (else `408`), and a
    /// read-only request must have been answered (else `503` with `Retry-After`).
    pub request_timeout: std::time::Duration,
    /// Connection limit and header-read and idle timeouts of the listener.
    pub connections: server::ConnectionLimits,
    /// Resources the token endpoint issues tokens for besides Graph (App ID URIs such as
    /// `api://reportroot`); tokens for them are accepted too.
    pub app_id_uris: Vec<String>,
    /// Whether HS256 tokens signed with `secret` are accepted (`reportroot token`).
    pub accept_hs256: bool,
    /// External issuers whose RS256 tokens are accepted (`--trust-issuer`), each checked with
    /// [`trusted_issuers::check_url`].
    pub trusted_issuers: Vec<String>,
    /// A token naming a key a trusted issuer does not (yet) publish refetches its keys at
    /// most this often.
    pub jwks_refetch_interval: std::time::Duration,
    /// Graph's report throttling with these limits (`--throttle graph`); `None`: off.
    pub throttle: Option<throttle::ThrottleLimits>,
    /// Fault and latency injection (`[chaos]`); `None`: off.
    pub chaos: Option<chaos::ChaosConfig>,
    /// Whether Prometheus metrics are kept (for `--metrics-listen`).
    pub metrics: bool,
    /// "Sign in with Entra ID" on the dashboard (`--dashboard-oidc-*`); `None`: off.
    pub dashboard_oidc: Option<session::DashboardOidcConfig>,
    /// Queries that may read a tenant's whole history running at once.
    pub scans: scan_limit::ScanLimits,
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
            answer_cache_bytes: DEFAULT_ANSWER_CACHE_BYTES,
            answer_check_interval: report_cache::CHECK_INTERVAL,
            request_timeout: std::time::Duration::from_secs(30),
            connections: server::ConnectionLimits::default(),
            app_id_uris: vec!["api://reportroot".to_owned()],
            accept_hs256: true,
            trusted_issuers: Vec::new(),
            jwks_refetch_interval: std::time::Duration::from_secs(60),
            throttle: None,
            chaos: None,
            metrics: false,
            dashboard_oidc: None,
            scans: scan_limit::ScanLimits::default(),
        }
    }

    /// Every accepted `aud`: the configured audiences and the App ID URIs.
    pub fn accepted_audiences(&self) -> Vec<String> {
        let mut audiences = self.audiences.clone();
        audiences.extend(self.app_id_uris.iter().cloned());
        audiences
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
    keys: Arc<signing::KeyRing>,
    failed_logins: oauth::failed_logins::FailedLogins,
    /// Failed dashboard sign-ins, counted apart from the token endpoint's.
    dashboard_logins: oauth::failed_logins::FailedLogins,
    /// "Sign in with Entra ID", when configured.
    oidc: Option<session::oidc::Oidc>,
    /// Client-secret checks running at once (each is ~20 ms of a core and 19 MiB).
    secret_checks: tokio::sync::Semaphore,
    throttle: Option<throttle::Throttle>,
    chaos: Option<chaos::Chaos>,
    metrics: Option<metrics::Metrics>,
    scans: scan_limit::ScanSlots,
}

impl AppState {
    /// Builds the state.
    pub fn new(storage: Arc<dyn Storage>, config: ApiConfig) -> Arc<Self> {
        let report_cache =
            report_cache::ReportCache::new(config.answer_cache_bytes, config.answer_check_interval);
        let metrics = config
            .metrics
            .then(|| metrics::Metrics::new(&report_cache.counters))
            .and_then(|made| {
                made.map_err(|error| tracing::error!(%error, "metrics are off"))
                    .ok()
            });
        // With metrics on, every storage operation is timed (sign-in's reads of the directory
        // and the throttle's decisions aside: see `timed_storage`).
        let storage: Arc<dyn Storage> = match &metrics {
            Some(metrics) => Arc::new(timed_storage::TimedStorage::new(
                storage,
                metrics.storage.clone(),
            )),
            None => storage,
        };
        let keys = Arc::new(signing::KeyRing::default());
        let trusted = config
            .trusted_issuers
            .iter()
            .filter_map(|issuer| {
                trusted_issuers::TrustedIssuer::new(issuer, config.jwks_refetch_interval)
                    .map_err(|error| {
                        // Unreachable from the CLI, which checks the URLs first.
                        tracing::error!(%issuer, error = %auth::error_chain(&error), "issuer not trusted");
                    })
                    .ok()
            })
            .collect();
        let audiences = config.accepted_audiences();
        let verifier = TokenVerifier::new(auth::VerifierSettings {
            hs256_secret: config.accept_hs256.then_some(config.secret.as_slice()),
            audiences: &audiences,
            own_keys: Arc::clone(&keys),
            storage: Arc::clone(&storage),
            trusted,
        });
        let oidc = config.dashboard_oidc.clone().and_then(|oidc| {
            session::oidc::Oidc::new(oidc, &config.secret, config.jwks_refetch_interval)
                .map_err(|error| {
                    // Unreachable from the CLI, which checks the URL first.
                    tracing::error!(error = %auth::error_chain(&error), "sign-in with Entra ID is off");
                })
                .ok()
        });
        let downloads = download::DownloadSigner::new(&config.secret);
        let skiptokens = paging::skiptoken_signer(&config.secret);
        Arc::new(AppState {
            storage,
            verifier,
            downloads,
            skiptokens,
            report_cache,
            keys,
            failed_logins: oauth::failed_logins::FailedLogins::default(),
            dashboard_logins: oauth::failed_logins::FailedLogins::default(),
            oidc,
            secret_checks: tokio::sync::Semaphore::new(2),
            throttle: config.throttle.clone().map(throttle::Throttle::new),
            chaos: config.chaos.clone().map(chaos::Chaos::new),
            metrics,
            scans: scan_limit::ScanSlots::new(config.scans),
            config,
        })
    }

    /// Creates the first token-signing key if there is none, and reads the keys: done at start
    /// so that the first sign-in does not wait for RSA key generation.
    pub async fn ensure_signing_key(&self) -> Result<(), signing::SigningError> {
        self.keys.ensure(self.storage.as_ref()).await
    }

    /// The base URL (`scheme://host:port`) a request reached this server at.
    pub(crate) fn base_url(&self, parts: &axum::http::request::Parts) -> String {
        server::request_base_url(&parts.extensions, &self.config).to_owned()
    }
}

impl AppState {
    /// Bytes of rendered report answers held in the answer cache now.
    pub fn answer_cache_bytes(&self) -> usize {
        self.report_cache.bytes()
    }

    /// The Prometheus text exposition of this server's metrics, if they are on.
    pub fn render_metrics(&self) -> Option<String> {
        let metrics = self.metrics.as_ref()?;
        Some(metrics.render(self.answer_cache_bytes(), &self.storage.pool_status()))
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
    /// What absolute URLs start with: [`server::request_base_url`] of the request.
    pub base_url: Arc<str>,
}

impl Call {
    /// `<base url>/<version>`.
    pub fn base(&self, _state: &AppState) -> String {
        format!("{}/{}", self.base_url, self.version.segment())
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
    let limits = state.config.connections.clone();
    server::serve_connections(listener, router(state), limits, shutdown).await
}

/// Serves every listener (plain HTTP or HTTPS) with one router and one shutdown.
pub async fn serve_listeners(
    listeners: Vec<server::Listener>,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.connections.clone();
    server::serve_listeners(listeners, router(state), limits, shutdown).await
}

/// Serves the Prometheus metrics of `state` (`GET /metrics`) on `listener`, a port apart from
/// the API's, until `shutdown` resolves.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", axum::routing::get(metrics_text))
        .with_state(state);
    server::serve_connections(listener, app, server::ConnectionLimits::default(), shutdown).await
}

/// `GET /metrics` of the metrics listener.
async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    match state.render_metrics() {
        Some(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are off").into_response(),
    }
}

/// When a request must be done by, set on each request from the wire.
#[derive(Clone, Copy)]
struct Deadline(tokio::time::Instant);

/// Runs a request within the request timeout. The body must arrive by the deadline (else
/// `408`); a read-only request must be answered by it (else `503` with `Retry-After`). A write
/// is not cut short once its body is in: dropping it mid-way could leave a commit behind an
/// error answer, and the storage layer bounds its own waits.
async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let timer = state
        .metrics
        .as_ref()
        .map(|m| m.start(request.method(), request.uri()));
    let response = dispatch_timed(&state, request).await;
    if let Some(timer) = timer {
        timer.finish(&response);
    }
    response
}

/// [`dispatch`] without the metrics.
async fn dispatch_timed(state: &Arc<AppState>, mut request: Request) -> Response {
    let timeout = state.config.request_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    request.extensions_mut().insert(Deadline(deadline));
    let read_only = [Method::GET, Method::HEAD, Method::OPTIONS].contains(request.method());
    let handled = handle(state, request, Nesting::TopLevel);
    let result = if read_only {
        match tokio::time::timeout_at(deadline, handled).await {
            Ok(result) => result,
            Err(_) => Err(timed_out(ApiError::unavailable(format!(
                "The request did not complete within {} seconds; try again later.",
                timeout.as_secs()
            )))),
        }
    } else {
        handled.await
    };
    match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// A timeout's answer ends its connection: what is left of the request on it is unknown.
fn timed_out(error: ApiError) -> ApiError {
    error.closing_connection()
}

/// Reads the body by the request's deadline, if it has one.
pub(crate) async fn read_body_by_deadline(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: Body,
) -> Result<bytes::Bytes, ApiError> {
    let read = body::read(state.config.max_body_bytes, &parts.headers, body);
    let Some(Deadline(deadline)) = parts.extensions.get::<Deadline>().copied() else {
        return read.await;
    };
    tokio::time::timeout_at(deadline, read).await.map_err(|_| {
        timed_out(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "requestTimeout",
            format!(
                "The request body did not arrive within {} seconds.",
                state.config.request_timeout.as_secs()
            ),
        ))
    })?
}

pub(crate) fn decode_segments(path: &str) -> Vec<String> {
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

/// Whether a request came on the wire or from inside a `$batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nesting {
    /// A request of its own.
    TopLevel,
    /// An item of a `$batch`, which may not itself be a batch.
    InBatch,
}

/// Handles a request whose body is read only by the handlers that need one. A body left unread
/// (the request was refused before) is drained afterwards, within bounds, so that the
/// keep-alive connection stays usable; when it cannot be, the answer says `Connection: close`.
pub(crate) async fn handle(
    state: &Arc<AppState>,
    request: Request,
    nesting: Nesting,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let deadline = parts.extensions.get::<Deadline>().copied();
    let mut body = Some(body);
    let result = route(state, parts, &mut body, nesting).await;
    let Some(unread) = body else {
        return result;
    };
    let drain = body::drain(unread, body::DRAIN_LIMIT);
    let drained = match deadline {
        Some(Deadline(deadline)) => tokio::time::timeout_at(deadline, drain)
            .await
            .unwrap_or(false),
        None => drain.await,
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    if !drained {
        body::close_connection(&mut response);
    }
    Ok(response)
}

async fn route(
    state: &Arc<AppState>,
    parts: axum::http::request::Parts,
    body: &mut Option<Body>,
    nesting: Nesting,
) -> Result<Response, ApiError> {
    let segments = decode_segments(parts.uri.path());
    if let [one] = segments.as_slice() {
        match one.as_str() {
            "healthz" => return Ok((StatusCode::OK, "ok").into_response()),
            "readyz" => return Ok(readiness(state).await),
            _ => {}
        }
    }
    if let (Some(chaos), Nesting::TopLevel) = (&state.chaos, nesting) {
        inject(state, chaos, &parts).await?;
    }
    if let [reports, download, token] = segments.as_slice() {
        if reports == "reports" && download == "download" {
            return functions::download(state, &parts.method, &parts.headers, token).await;
        }
    }
    if nesting == Nesting::TopLevel {
        if let Some((endpoint, tenant)) = oauth::match_path(&segments) {
            let body = match body.take() {
                Some(unread) => read_body_by_deadline(state, &parts, unread).await?,
                None => bytes::Bytes::new(),
            };
            let source = parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip());
            let base = state.base_url(&parts);
            tracing::Span::current().record("route", format!("/{{tenant}}/{endpoint:?}"));
            return Ok(oauth::serve(state, endpoint, tenant, &parts, &body, source, base).await);
        }
        if let Some(endpoint) = session::match_path(&segments) {
            tracing::Span::current().record("route", format!("/{}", segments.join("/")));
            return session::serve(state, endpoint, &parts, body).await;
        }
    }
    if nesting == Nesting::TopLevel {
        if let Some(answer) = dashboard::route(state, &parts, body, &segments).await {
            return answer;
        }
    }
    let resolved = resolve(&segments)?;
    let route = resolved.target.route();
    let mut answer = serve_resolved(state, parts, body, nesting, resolved, &route).await?;
    if state.metrics.is_some() {
        // The metrics' route label, which they would otherwise work out again from the path.
        answer.extensions_mut().insert(metrics::RouteLabel(route));
    }
    Ok(answer)
}

/// [`route`] once the path names a report resource: `route` is its route, for the logs.
async fn serve_resolved(
    state: &Arc<AppState>,
    parts: axum::http::request::Parts,
    body: &mut Option<Body>,
    nesting: Nesting,
    resolved: routes::Resolved,
    route: &str,
) -> Result<Response, ApiError> {
    if resolved.target == Target::Batch && nesting == Nesting::InBatch {
        return Err(ApiError::bad_request("A batch cannot contain a batch."));
    }
    // A batch's items run as the batch's caller, resolved once for the batch.
    let inherited = parts.extensions.get::<batch::BatchCaller>().map(|c| c.0);
    let query = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let body = match body.take() {
        Some(unread) => read_body_by_deadline(state, &parts, unread).await?,
        None => bytes::Bytes::new(),
    };
    let call = Call {
        method: parts.method,
        headers: parts.headers,
        query,
        body,
        version: resolved.version,
        base_url: server::request_base_url(&parts.extensions, &state.config).into(),
    };
    // $metadata is public, as in Graph; everything else needs a token.
    if resolved.target == Target::Metadata {
        return metadata(&call);
    }
    let span = tracing::Span::current();
    span.record("route", route);
    let caller = match inherited {
        Some(caller) => caller,
        None => session::api_caller(state, &call.headers, &call.base_url).await?,
    };
    span.record("tenant", tracing::field::display(caller.tenant.0));
    if let (Some(throttle), Target::Function(report, _)) = (&state.throttle, &resolved.target) {
        admit(state, throttle, &call, caller, report).await?;
    }
    match resolved.target {
        Target::Metadata => metadata(&call),
        Target::Collection(report) => entities::collection(state, &call, caller, report).await,
        Target::Entity(report, id) => entities::entity(state, &call, caller, report, &id).await,
        Target::ReportRoot => report_root(state, &call, caller),
        Target::Function(report, args) => {
            functions::call_function(state, &call, caller, report, args.as_deref()).await
        }
        Target::Count(report) => entities::count(state, &call, caller, report).await,
        Target::Series(report, args) => series::series(state, &call, caller, report, &args).await,
        Target::Batch => batch::run_batch(state, &call, caller).await,
    }
}

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /readyz`: 200 when the database answers a read of the directory and of a report
/// table (so it is reachable and migrated), else 503 with the reason. Two indexed reads of a
/// tenant that does not exist: cheap enough for a probe every few seconds.
async fn readiness(state: &AppState) -> Response {
    use reportroot_model::TenantId;
    let nobody = TenantId(uuid::Uuid::nil());
    let started = std::time::Instant::now();
    let check = async {
        state.storage.directory().has_tenant(nobody).await?;
        let report = &reportroot_model::REPORTS[0];
        let scope = reportroot_storage::Scope::All;
        state.storage.count(nobody, report, scope, None).await
    };
    let outcome = tokio::time::timeout(READY_TIMEOUT, check).await;
    if let Some(metrics) = &state.metrics {
        metrics.observe_readiness(started.elapsed().as_secs_f64());
    }
    let reason = match outcome {
        Ok(Ok(_)) => return (StatusCode::OK, "ready").into_response(),
        Ok(Err(error)) => format!("not ready: the database failed: {error}"),
        Err(_) => format!(
            "not ready: the database did not answer within {} seconds",
            READY_TIMEOUT.as_secs()
        ),
    };
    tracing::warn!(%reason, "readiness check failed");
    (StatusCode::SERVICE_UNAVAILABLE, reason).into_response()
}

/// Applies chaos to a request before anything handles it: waits, then fails, as drawn.
async fn inject(
    state: &AppState,
    chaos: &chaos::Chaos,
    parts: &axum::http::request::Parts,
) -> Result<(), ApiError> {
    let injection = chaos.decide(&parts.method, parts.uri.path(), &parts.headers);
    if let Some(delay) = injection.delay {
        if let Some(metrics) = &state.metrics {
            metrics.injected(None);
        }
        tokio::time::sleep(delay).await;
    }
    let Some(status) = injection.fail else {
        return Ok(());
    };
    if let Some(metrics) = &state.metrics {
        metrics.injected(Some(status));
    }
    tracing::debug!(status = status.as_u16(), "chaos injected a failure");
    let mut error = chaos.error(status);
    error.headers.push((
        axum::http::HeaderName::from_static("reportroot-injected"),
        axum::http::HeaderValue::from_static("chaos"),
    ));
    Err(error)
}

/// Counts a report-function call against Graph's limits, or refuses it with 429.
async fn admit(
    state: &AppState,
    throttle: &throttle::Throttle,
    call: &Call,
    caller: auth::Caller,
    report: &'static reportroot_model::ReportType,
) -> Result<(), ApiError> {
    let kind = if functions::answers_json(call) {
        throttle::Kind::Json
    } else {
        throttle::Kind::Csv
    };
    let name = report.function.name;
    let metrics = state.metrics.as_ref();
    throttle
        .admit(
            &state.storage,
            metrics,
            caller.tenant,
            caller.app,
            name,
            kind,
        )
        .await
        .map_err(|refused| {
            if let Some(metrics) = &state.metrics {
                metrics.throttled(refused.limit.label());
            }
            tracing::debug!(limit = refused.limit.label(), "throttled");
            ApiError::too_many_requests(throttle::retry_after_seconds(refused.retry_after))
        })
}

/// `GET /reports`: the singleton, which has nothing but its context.
fn report_root(state: &AppState, call: &Call, caller: auth::Caller) -> Result<Response, ApiError> {
    if call.method != Method::GET {
        return Err(ApiError::method_not_allowed("GET"));
    }
    caller.require_read()?;
    let context = format!("{}/$metadata#reports/$entity", call.base(state));
    Ok(entities::json_response(
        StatusCode::OK,
        serde_json::to_vec(&serde_json::json!({ "@odata.context": context })).unwrap_or_default(),
    ))
}

/// `GET /$metadata`: public, as in Graph.
fn metadata(call: &Call) -> Result<Response, ApiError> {
    use reportroot_odata::csdl::metadata_xml;
    if call.method != Method::GET {
        return Err(ApiError::method_not_allowed("GET"));
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/xml"),
            (axum::http::HeaderName::from_static("odata-version"), "4.0"),
        ],
        metadata_xml(call.version.model()),
    )
        .into_response())
}
