//! Fault and latency injection for testing clients (`[chaos]` in the config file): a share of
//! the requests in scope (by path pattern and method) fails with a status drawn from the
//! configured ones, each with Graph's error body (and `Retry-After` on 429 and 503, as Graph
//! sends it), and requests in scope wait a while first. A test can ask for a failure with
//! `Prefer: reportroot.fail=503` (and a delay with `Prefer: reportroot.delay=250`, in
//! milliseconds), honoured only when chaos is on.
//!
//! The decision is made before any handler runs, so an injected failure never writes or
//! half-writes anything. Draws come from a counter hashed with the seed: the same seed and the
//! same sequence of requests give the same failures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;

use crate::error::ApiError;

/// The statuses chaos can answer with.
pub const INJECTABLE: [u16; 5] = [429, 500, 502, 503, 504];

/// The `[chaos]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosConfig {
    /// Share of the requests in scope that fail, 0.0 to 1.0.
    pub failure_rate: f64,
    /// Statuses failures are drawn from (429, 500, 502, 503, 504).
    pub statuses: Vec<u16>,
    /// Extra latency of requests in scope, drawn from `[min, max]` milliseconds.
    pub latency_ms: [u64; 2],
    /// Path patterns in scope, `*` matching any run of characters (`/v1.0/reports/get*`);
    /// empty: every path.
    pub routes: Vec<String>,
    /// Methods in scope (`GET`); empty: every method.
    pub methods: Vec<String>,
    /// Seed of the draws.
    pub seed: u64,
    /// `Retry-After` of injected 429 and 503 answers, seconds.
    pub retry_after_seconds: u64,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        ChaosConfig {
            failure_rate: 0.0,
            statuses: vec![429, 503],
            latency_ms: [0, 0],
            routes: Vec::new(),
            methods: Vec::new(),
            seed: 0,
            retry_after_seconds: 2,
        }
    }
}

/// A configuration chaos cannot run with.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChaosConfigError {
    /// `failure_rate` outside 0..=1.
    #[error("chaos failure_rate must be between 0 and 1, not {0}")]
    Rate(f64),
    /// A status chaos does not inject.
    #[error("chaos cannot inject status {0}: use 429, 500, 502, 503 or 504")]
    Status(u16),
    /// A failure rate with nothing to draw from.
    #[error("chaos failure_rate is above 0 but statuses is empty")]
    NoStatuses,
    /// `latency_ms` with min above max.
    #[error("chaos latency_ms must be [min, max] with min <= max")]
    Latency,
}

impl ChaosConfig {
    /// Checks the values.
    pub fn check(&self) -> Result<(), ChaosConfigError> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err(ChaosConfigError::Rate(self.failure_rate));
        }
        if let Some(bad) = self.statuses.iter().find(|s| !INJECTABLE.contains(s)) {
            return Err(ChaosConfigError::Status(*bad));
        }
        if self.failure_rate > 0.0 && self.statuses.is_empty() {
            return Err(ChaosConfigError::NoStatuses);
        }
        if self.latency_ms[0] > self.latency_ms[1] {
            return Err(ChaosConfigError::Latency);
        }
        Ok(())
    }
}

/// What chaos does to one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injection {
    /// Wait this long first.
    pub delay: Option<Duration>,
    /// Then fail with this status.
    pub fail: Option<StatusCode>,
}

/// The running injector.
pub struct Chaos {
    config: ChaosConfig,
    draws: AtomicU64,
}

impl Chaos {
    /// An injector for a checked configuration.
    pub fn new(config: ChaosConfig) -> Self {
        Chaos {
            config,
            draws: AtomicU64::new(0),
        }
    }

    /// What to do to a request, from the configuration and its `Prefer` overrides.
    pub fn decide(&self, method: &Method, path: &str, headers: &HeaderMap) -> Injection {
        let overrides = Overrides::of(headers);
        let mut injection = Injection::default();
        if self.in_scope(method, path) {
            let n = self.draws.fetch_add(1, Ordering::Relaxed);
            injection = self.draw(n);
        }
        if let Some(delay) = overrides.delay {
            injection.delay = Some(delay);
        }
        if let Some(status) = overrides.fail {
            injection.fail = Some(status);
        }
        injection
    }

    /// The `n`th request in scope's draw: deterministic for a seed.
    fn draw(&self, n: u64) -> Injection {
        let c = &self.config;
        let [min, max] = c.latency_ms;
        let delay = (max > 0).then(|| {
            let span = max - min + 1;
            Duration::from_millis(min + mix(c.seed, n, 0) % span)
        });
        let fails = unit(mix(c.seed, n, 1)) < c.failure_rate && !c.statuses.is_empty();
        let fail = fails
            .then(|| {
                let index = mix(c.seed, n, 2) % c.statuses.len() as u64;
                StatusCode::from_u16(c.statuses[index as usize]).ok()
            })
            .flatten();
        Injection { delay, fail }
    }

    fn in_scope(&self, method: &Method, path: &str) -> bool {
        let c = &self.config;
        let method_ok = c.methods.is_empty()
            || c.methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method.as_str()));
        method_ok && (c.routes.is_empty() || c.routes.iter().any(|p| glob(p, path)))
    }

    /// The answer of an injected failure: Graph's body for the status, with `Retry-After` on
    /// 429 and 503.
    pub fn error(&self, status: StatusCode) -> ApiError {
        injected_error(status, self.config.retry_after_seconds)
    }
}

/// Graph's error for an injected `status`.
pub fn injected_error(status: StatusCode, retry_after_seconds: u64) -> ApiError {
    let note = "(injected by reportroot chaos)";
    let mut error = match status.as_u16() {
        429 => return ApiError::too_many_requests(retry_after_seconds),
        503 => ApiError::unavailable(format!("The service is temporarily unavailable {note}.")),
        502 => ApiError::new(status, "BadGateway", format!("Bad gateway {note}.")),
        504 => ApiError::new(
            status,
            "GatewayTimeout",
            format!("The gateway timed out {note}."),
        ),
        _ => ApiError::internal(format!("An unexpected error occurred {note}.")),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        error.set_retry_after(retry_after_seconds);
    }
    error
}

/// What a request's `Prefer` header asks of chaos.
#[derive(Debug, Default, PartialEq, Eq)]
struct Overrides {
    fail: Option<StatusCode>,
    delay: Option<Duration>,
}

impl Overrides {
    fn of(headers: &HeaderMap) -> Self {
        let mut overrides = Overrides::default();
        let preferences = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|p| p.trim().split_once('='));
        for (name, value) in preferences {
            let value = value.trim().trim_matches('"');
            if name.trim().eq_ignore_ascii_case("reportroot.fail") {
                overrides.fail = value
                    .parse::<u16>()
                    .ok()
                    .filter(|s| INJECTABLE.contains(s))
                    .and_then(|s| StatusCode::from_u16(s).ok());
            } else if name.trim().eq_ignore_ascii_case("reportroot.delay") {
                overrides.delay = value.parse().ok().map(Duration::from_millis);
            }
        }
        overrides
    }
}

/// splitmix64 of the seed, the draw number and which value of the draw.
fn mix(seed: u64, n: u64, which: u64) -> u64 {
    let mut z = seed
        .wrapping_add(n.wrapping_mul(3).wrapping_add(which))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A draw as a number in [0, 1).
fn unit(draw: u64) -> f64 {
    (draw >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("/v1.0/reports/*", "/v1.0/reports/getX(period='D7')"));
        assert!(glob("*", "/anything"));
        assert!(glob("/a/*/c*", "/a/b/cd"));
        assert!(!glob("/v1.0/reports/*", "/beta/reports/x"));
        assert!(glob("/exact", "/exact"));
        assert!(!glob("/exact", "/exact/more"));
        assert!(!glob("/a*a", "/a"));
    }

    fn chaos(rate: f64, seed: u64) -> Chaos {
        Chaos::new(ChaosConfig {
            failure_rate: rate,
            statuses: vec![429, 500, 503],
            latency_ms: [5, 10],
            routes: vec!["/v1.0/*".into()],
            methods: vec!["GET".into()],
            seed,
            retry_after_seconds: 1,
        })
    }

    #[test]
    fn draws_are_deterministic_and_near_the_rate() {
        let run = |seed| {
            let c = chaos(0.3, seed);
            (0..1000)
                .map(|_| c.decide(&Method::GET, "/v1.0/reports", &HeaderMap::new()))
                .collect::<Vec<_>>()
        };
        let first = run(7);
        assert_eq!(first, run(7));
        assert_ne!(first, run(8));
        let failed = first.iter().filter(|i| i.fail.is_some()).count();
        assert!((240..360).contains(&failed), "{failed} of 1000");
        assert!(first.iter().all(|i| i
            .delay
            .is_some_and(|d| (5..=10).contains(&(d.as_millis() as u64)))));
    }

    #[test]
    fn out_of_scope_requests_are_left_alone_but_prefer_is_honoured() {
        let c = chaos(1.0, 1);
        assert_eq!(
            c.decide(&Method::GET, "/beta/reports", &HeaderMap::new()),
            Injection::default()
        );
        assert_eq!(
            c.decide(&Method::POST, "/v1.0/reports", &HeaderMap::new()),
            Injection::default()
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "prefer",
            "odata.maxpagesize=5, reportroot.fail=504, reportroot.delay=3"
                .parse()
                .expect("header"),
        );
        let injection = c.decide(&Method::GET, "/beta/reports", &headers);
        assert_eq!(injection.fail, Some(StatusCode::GATEWAY_TIMEOUT));
        assert_eq!(injection.delay, Some(Duration::from_millis(3)));
    }

    #[test]
    fn checks_the_configuration() {
        let bad = ChaosConfig {
            statuses: vec![418],
            ..ChaosConfig::default()
        };
        assert_eq!(bad.check(), Err(ChaosConfigError::Status(418)));
        let rate = ChaosConfig {
            failure_rate: 1.5,
            ..ChaosConfig::default()
        };
        assert!(rate.check().is_err());
        assert!(ChaosConfig::default().check().is_ok());
    }
}
