//! The per-thread handles of the request series (`reportroot_http_requests_total` and
//! `reportroot_http_request_duration_seconds` by route, method and status), and the method
//! label.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicU64;

use axum::http::{Method, StatusCode};
use prometheus::{Histogram, IntCounter};

/// The next `id` of a [`super::Metrics`].
pub(super) static NEXT_METRICS_ID: AtomicU64 = AtomicU64::new(0);

/// Series handles a thread keeps at most (of every server in the process): more than the
/// routes × methods × statuses a server answers, and the map is emptied when it is full.
const MAX_SERIES_HANDLES: usize = 1024;

thread_local! {
    /// Each thread's handles of the request series it has counted. Why: the label look-up
    /// (`with_label_values`: hashing three labels, a lock, comparing them, an `Arc` clone),
    /// done twice per request, was the largest part of what metrics cost (perf, report
    /// functions at ~20k req/s: `with_label_values` 0.7 % of the server's samples and 0.5 %
    /// more `memcmp`); here it is one foldhash look-up without a lock.
    static SERIES: RefCell<hashbrown::HashMap<SeriesKey, SeriesHandles>> =
        RefCell::new(hashbrown::HashMap::new());
}

/// Counts one request of `series` that took `seconds`, with the handles `make` gives the
/// first time this thread sees the series.
pub(super) fn observe(series: &SeriesRef<'_>, seconds: f64, make: impl FnOnce() -> SeriesHandles) {
    SERIES.with_borrow_mut(|handles| {
        if let Some(known) = handles.get(series) {
            known.observe(seconds);
            return;
        }
        if handles.len() >= MAX_SERIES_HANDLES {
            handles.clear();
        }
        let made = make();
        made.observe(seconds);
        handles.insert(series.owned(), made);
    });
}

/// The request counter and latency histogram of one label set.
pub(super) struct SeriesHandles {
    pub(super) requests: IntCounter,
    pub(super) latency: Histogram,
}

impl SeriesHandles {
    fn observe(&self, seconds: f64) {
        self.requests.inc();
        self.latency.observe(seconds);
    }
}

/// Which server's series, and its labels.
#[derive(PartialEq, Eq)]
struct SeriesKey {
    metrics: u64,
    status: StatusCode,
    method: &'static str,
    route: String,
}

/// A [`SeriesKey`] borrowing its route, to look one up without allocating.
pub(super) struct SeriesRef<'a> {
    pub(super) metrics: u64,
    pub(super) status: StatusCode,
    pub(super) method: &'static str,
    pub(super) route: &'a str,
}

impl SeriesRef<'_> {
    fn owned(&self) -> SeriesKey {
        SeriesKey {
            metrics: self.metrics,
            status: self.status,
            method: self.method,
            route: self.route.to_owned(),
        }
    }
}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_series(self.metrics, self.status, self.method, &self.route, state);
    }
}

impl Hash for SeriesRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_series(self.metrics, self.status, self.method, self.route, state);
    }
}

/// One hash for both forms of a key, as [`hashbrown::Equivalent`] requires.
fn hash_series<H: Hasher>(
    metrics: u64,
    status: StatusCode,
    method: &str,
    route: &str,
    state: &mut H,
) {
    metrics.hash(state);
    status.hash(state);
    method.hash(state);
    route.hash(state);
}

impl hashbrown::Equivalent<SeriesKey> for SeriesRef<'_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        self.metrics == key.metrics
            && self.status == key.status
            && self.method == key.method
            && self.route == key.route
    }
}

/// The method label: the standard methods by name, any other as `other`, so that a client's
/// made-up methods cannot multiply series.
pub(super) fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}
