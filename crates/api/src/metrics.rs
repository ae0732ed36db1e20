//! Prometheus metrics, served on a listener of their own (`--metrics-listen`), off the public
//! port. Each [`AppState`](crate::AppState) has its own registry rather than a process-global
//! recorder: tests run many servers in one process, and a server without metrics pays nothing
//! but a branch per request.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use reportroot_storage::PoolStatus;

use crate::routes::resolve;

mod series;
use crate::timed_storage::StorageMetrics;
use series::{method_label, SeriesHandles, SeriesRef, NEXT_METRICS_ID};

/// Latency buckets, seconds: report answers from the cache take well under a millisecond,
/// large JSON pages and imports seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A metric that could not be created or registered (a programming error: names clash).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// The metrics of one server.
pub struct Metrics {
    /// Which `Metrics` this is, for the per-thread [`SERIES`] handles (unique in the process).
    id: u64,
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGauge,
    cache_bytes: IntGauge,
    throttled: IntCounterVec,
    injected: IntCounterVec,
    storage_latency: Histogram,
    /// Storage operations, shared with the [`crate::timed_storage::TimedStorage`].
    pub(crate) storage: StorageMetrics,
    throttle_store_failures: IntCounter,
    throttle_local_decisions: IntCounter,
    pool_connections: IntGaugeVec,
    pool_max: IntGaugeVec,
    pool_waiting: IntGaugeVec,
}

/// Counters the answer cache keeps whether or not metrics are on (an atomic add per lookup).
#[derive(Clone)]
pub(crate) struct CacheCounters {
    /// Lookups answered from the cache.
    pub hits: IntCounter,
    /// Lookups that found nothing fresh.
    pub misses: IntCounter,
    /// Reads of a tenant's change version (at most one per tenant per check interval).
    pub version_checks: IntCounter,
}

impl CacheCounters {
    pub fn new() -> Self {
        // Why expect: creating a counter fails only for an invalid name, and these are constant.
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("a valid name");
        CacheCounters {
            hits: counter(
                "reportroot_answer_cache_hits_total",
                "Report-function answers served from the answer cache.",
            ),
            misses: counter(
                "reportroot_answer_cache_misses_total",
                "Report-function answers not in the answer cache (rendered).",
            ),
            version_checks: counter(
                "reportroot_answer_cache_version_checks_total",
                "Reads of a tenant's change version by the answer cache (one per tenant and check interval at most).",
            ),
        }
    }
}

impl Metrics {
    /// Registers every metric; `cache` are the answer cache's counters.
    pub(crate) fn new(cache: &CacheCounters) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let labels = ["route", "method", "status"];
        let requests = IntCounterVec::new(
            Opts::new(
                "reportroot_http_requests_total",
                "HTTP requests answered, by matched route, method and status.",
            ),
            &labels,
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "reportroot_http_request_duration_seconds",
                "Time from a request's arrival to its answer's headers, by matched route, method and status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &labels,
        )?;
        let in_flight = IntGauge::new(
            "reportroot_http_requests_in_flight",
            "HTTP requests being handled now.",
        )?;
        let cache_bytes = IntGauge::new(
            "reportroot_answer_cache_bytes",
            "Bytes of rendered report answers held in the answer cache.",
        )?;
        let throttled = IntCounterVec::new(
            Opts::new(
                "reportroot_throttled_responses_total",
                "429 answers of Graph's report throttling (--throttle graph), by the limit reached.",
            ),
            &["limit"],
        )?;
        let injected = IntCounterVec::new(
            Opts::new(
                "reportroot_injected_faults_total",
                "Faults injected by chaos: failures by status, and delays (status=\"delay\").",
            ),
            &["status"],
        )?;
        let storage_latency = Histogram::with_opts(
            HistogramOpts::new(
                "reportroot_readiness_check_duration_seconds",
                "Time the database took to answer /readyz's check.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let build = IntGaugeVec::new(
            Opts::new(
                "reportroot_build_info",
                "Always 1; the labels say which build is running.",
            ),
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let throttle_store_failures = IntCounter::new(
            "reportroot_throttle_store_failures_total",
            "Throttle decisions the shared counters (PostgreSQL) failed or were too slow to make; each request was admitted.",
        )?;
        let throttle_local_decisions = IntCounter::new(
            "reportroot_throttle_local_decisions_total",
            "Throttle decisions made without a statement on the shared counters (PostgreSQL): from a lease of admissions, or a refusal that still stands.",
        )?;
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "reportroot_db_pool_connections",
                "Database connections of each pool, lent out (in_use) or open and waiting (idle).",
            ),
            &["pool", "state"],
        )?;
        let pool_max = IntGaugeVec::new(
            Opts::new(
                "reportroot_db_pool_max_connections",
                "Most connections each database pool opens.",
            ),
            &["pool"],
        )?;
        let pool_waiting = IntGaugeVec::new(
            Opts::new(
                "reportroot_db_pool_waiting",
                "Tasks waiting for a connection of the pool (pools that know).",
            ),
            &["pool"],
        )?;
        let storage = StorageMetrics::register(&registry)?;
        registry.register(Box::new(throttle_store_failures.clone()))?;
        registry.register(Box::new(throttle_local_decisions.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(pool_waiting.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(cache_bytes.clone()))?;
        registry.register(Box::new(cache.hits.clone()))?;
        registry.register(Box::new(cache.misses.clone()))?;
        registry.register(Box::new(cache.version_checks.clone()))?;
        registry.register(Box::new(throttled.clone()))?;
        registry.register(Box::new(injected.clone()))?;
        registry.register(Box::new(storage_latency.clone()))?;
        registry.register(Box::new(build))?;
        Ok(Metrics {
            id: NEXT_METRICS_ID.fetch_add(1, Ordering::Relaxed),
            registry,
            requests,
            latency,
            in_flight,
            cache_bytes,
            throttled,
            injected,
            storage_latency,
            storage,
            throttle_store_failures,
            throttle_local_decisions,
            pool_connections,
            pool_max,
            pool_waiting,
        })
    }

    /// Counts a throttle decision the shared counters could not make.
    pub(crate) fn throttle_store_failed(&self) {
        self.throttle_store_failures.inc();
    }

    /// Counts a throttle decision made from what this instance holds of the shared counters.
    pub(crate) fn throttle_decided_locally(&self) {
        self.throttle_local_decisions.inc();
    }

    /// Starts timing a request; the guard counts it in flight until finished or dropped.
    pub(crate) fn start(&self, method: &Method, uri: &Uri) -> RequestTimer<'_> {
        self.in_flight.inc();
        RequestTimer {
            metrics: self,
            method: method.clone(),
            uri: uri.clone(),
            started: Instant::now(),
        }
    }

    /// The handles of a request series (created on first use).
    fn series(&self, series: &SeriesRef<'_>) -> SeriesHandles {
        let labels = [series.route, series.method, series.status.as_str()];
        SeriesHandles {
            requests: self.requests.with_label_values(&labels),
            latency: self.latency.with_label_values(&labels),
        }
    }

    /// Counts a 429 of the report throttle.
    pub(crate) fn throttled(&self, limit: &str) {
        self.throttled.with_label_values(&[limit]).inc();
    }

    /// Counts an injected failure (`Some(status)`) or delay (`None`).
    pub(crate) fn injected(&self, status: Option<StatusCode>) {
        let label = status.map_or_else(|| "delay".to_owned(), |s| s.as_u16().to_string());
        self.injected.with_label_values(&[&label]).inc();
    }

    /// Times a readiness check of the database.
    pub(crate) fn observe_readiness(&self, seconds: f64) {
        self.storage_latency.observe(seconds);
    }

    /// The text exposition of every metric, with the cache's bytes and the pools as of now.
    pub fn render(&self, cache_bytes: usize, pools: &[PoolStatus]) -> String {
        self.cache_bytes.set(gauge(cache_bytes));
        for pool in pools {
            let name = pool.pool;
            for (state, value) in [("in_use", pool.in_use), ("idle", pool.idle)] {
                self.pool_connections
                    .with_label_values(&[name, state])
                    .set(gauge(value));
            }
            self.pool_max
                .with_label_values(&[name])
                .set(gauge(pool.max));
            if let Some(waiting) = pool.waiting {
                self.pool_waiting
                    .with_label_values(&[name])
                    .set(gauge(waiting));
            }
        }
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            tracing::error!(%error, "cannot render metrics");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

fn gauge(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The route label of an answer, [`route_label`] of its path, put in the answer's extensions
/// by the router that worked it out anyway (for the logs). Why: working it out again from
/// the path (segments decoded, the path resolved, the label formatted) was the largest part
/// of what metrics cost per request (perf: ~3 % of the server's CPU time per report call).
#[derive(Debug, Clone)]
pub(crate) struct RouteLabel(pub String);

/// A request being timed.
pub(crate) struct RequestTimer<'a> {
    metrics: &'a Metrics,
    method: Method,
    /// The request's URI (cheap to clone: its text is shared): for the route label of the
    /// answers without one.
    uri: Uri,
    started: Instant,
}

impl RequestTimer<'_> {
    /// Counts the request with its answer's status and route.
    pub fn finish(self, answer: &Response) {
        let worked_out;
        let route = match answer.extensions().get::<RouteLabel>() {
            Some(RouteLabel(route)) => route.as_str(),
            None => {
                worked_out = route_label(self.uri.path());
                worked_out.as_str()
            }
        };
        let seconds = self.started.elapsed().as_secs_f64();
        let series = SeriesRef {
            metrics: self.metrics.id,
            status: answer.status(),
            method: method_label(&self.method),
            route,
        };
        series::observe(&series, seconds, || self.metrics.series(&series));
    }
}

impl Drop for RequestTimer<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// The route label of a path: the matched route template (without the version), or a fixed
/// name, so that ids and arguments in paths cannot multiply series.
pub fn route_label(path: &str) -> String {
    let segments = crate::decode_segments(path);
    match segments.as_slice() {
        [one] if one == "healthz" || one == "readyz" => return format!("/{one}"),
        [reports, download, _] if reports == "reports" && download == "download" => {
            return "/reports/download/{token}".to_owned()
        }
        _ => {}
    }
    if let Some((endpoint, _)) = crate::oauth::match_path(&segments) {
        return format!("/{{tenant}}/{endpoint:?}");
    }
    resolve(&segments).map_or_else(|_| "unmatched".to_owned(), |r| r.target.route())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_of(metrics: &Metrics, method: &str) -> usize {
        let pattern = format!("reportroot_http_requests_total{{method=\"{method}\"");
        metrics
            .render(0, &[])
            .lines()
            .filter(|line| line.starts_with(&pattern))
            .map(|line| {
                line.rsplit(' ')
                    .next()
                    .unwrap_or("0")
                    .parse::<usize>()
                    .unwrap_or(0)
            })
            .sum()
    }

    fn answer_one(metrics: &Metrics, method: &Method) {
        let uri: Uri = "/v1.0/reports/getOffice365ActiveUserCounts(period='D7')"
            .parse()
            .expect("a valid URI");
        metrics
            .start(method, &uri)
            .finish(&Response::new(axum::body::Body::empty()));
    }

    #[test]
    fn made_up_methods_share_one_series() {
        let metrics = Metrics::new(&CacheCounters::new()).expect("metrics");
        for name in ["FOO1", "FOO2", "BAR"] {
            let method = Method::from_bytes(name.as_bytes()).expect("a valid method");
            answer_one(&metrics, &method);
        }
        assert_eq!(count_of(&metrics, "other"), 3);
        assert!(!metrics.render(0, &[]).contains("FOO1"));
    }

    #[test]
    fn servers_on_one_thread_count_their_own_requests() {
        let first = Metrics::new(&CacheCounters::new()).expect("metrics");
        let second = Metrics::new(&CacheCounters::new()).expect("metrics");
        answer_one(&first, &Method::GET);
        answer_one(&first, &Method::GET);
        answer_one(&second, &Method::GET);
        assert_eq!(count_of(&first, "GET"), 2);
        assert_eq!(count_of(&second, "GET"), 1);
    }

    #[test]
    fn route_labels_name_templates() {
        assert_eq!(route_label("/healthz"), "/healthz");
        assert_eq!(
            route_label("/v1.0/reports/getOffice365ActiveUserCounts(period='D7')"),
            "/reports/getOffice365ActiveUserCounts(…)"
        );
        assert_eq!(
            route_label("/beta/reports/office365ActiveUserCounts/abc"),
            "/reports/office365ActiveUserCounts/{id}"
        );
        assert_eq!(route_label("/nope/x"), "unmatched");
        assert_eq!(
            route_label("/reports/download/xyz"),
            "/reports/download/{token}"
        );
    }
}
