//! Graph's report throttling, on demand (`--throttle graph`): each report API (function) is
//! limited per app per tenant — 14 CSV requests or 100 beta JSON requests in 10 minutes — and
//! CSV requests also per tenant for all apps, 40 in 10 minutes (Graph's `throttling-limits`
//! page, `throttling` in the reports catalog). The windows slide: a request is admitted when
//! fewer than the limit were admitted in the window before it, and one refused is told in
//! `Retry-After` when the oldest of those leaves the window.
//!
//! Where the counters are is the storage's choice: on PostgreSQL and Citus they are shared by
//! every instance on the database (`reportroot_storage::throttle`), on SQLite they are this
//! process's own (a bounded map). Shared, a window far from its limit is counted in leases:
//! one statement admits several requests, which this instance then admits from memory
//! (`reportroot_storage::throttle::leases`), and a refusal stands without asking again until
//! its `Retry-After`; within [`ThrottleLimits::exact_below`] of a limit every request is one
//! statement, decided exactly. No instance ever admits past a limit for another.
//!
//! A shared decision that fails (the database is down, or slower than [`STORE_TIMEOUT`]) admits
//! the request: fail open. Why: the throttle imitates Graph for clients under test, it does not
//! protect reportroot (its own limits do), so a broken counter store must not answer errors
//! Graph would not; the request then meets the database on its own and fails or succeeds as
//! it would unthrottled. Each such decision is logged and counted
//! (`reportroot_throttle_store_failures_total`).

mod admitted;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reportroot_model::TenantId;
use reportroot_storage::throttle::leases::Ask;
use reportroot_storage::throttle::{
    LeasePolicy, Leases, ThrottleCounters, Verdict, Window, WindowRequest,
};
use reportroot_storage::Storage;

use admitted::Admitted;
use serde::Deserialize;
use uuid::Uuid;

use crate::metrics::Metrics;

/// How long a shared decision may take before the request is admitted without it.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// The limits, as Graph has them by default; each can be changed in the config file's
/// `[throttle]` table (small windows make client tests fast).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleLimits {
    /// Length of the sliding window, seconds.
    pub window_seconds: u64,
    /// CSV requests per report API per app per tenant in a window.
    pub csv_per_app: usize,
    /// CSV requests per report API per tenant, all apps together, in a window.
    pub csv_per_tenant: usize,
    /// JSON requests (beta) per report API per app per tenant in a window.
    pub json_per_app: usize,
    /// Shared counters (PostgreSQL, Citus): a window with fewer admissions than this left is
    /// decided one request, one statement, at a time — exactly; with more left, an instance
    /// leases several at once. In memory (SQLite), a limit above it counts requests in runs
    /// of 1/1024 of a window (bounded memory) instead of one time each. The default, 1000,
    /// keeps Graph's own limits always exact.
    pub exact_below: usize,
    /// Shared counters: how many instances are expected to share them; a lease takes at most
    /// 1/(2 × instances) of what a window has left.
    pub instances: usize,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            window_seconds: 600,
            csv_per_app: 14,
            csv_per_tenant: 40,
            json_per_app: 100,
            exact_below: 1000,
            instances: 4,
        }
    }
}

/// The answer format a report request is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// CSV (every v1.0 call, and beta without JSON asked for).
    Csv,
    /// JSON (beta with `$format=application/json` or `Accept: application/json`).
    Json,
}

/// Which limit refused a request, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// CSV per app per tenant.
    CsvPerApp,
    /// CSV per tenant, all apps.
    CsvPerTenant,
    /// JSON per app per tenant.
    JsonPerApp,
}

impl Limit {
    /// The label value in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Limit::CsvPerApp => "csv_per_app",
            Limit::CsvPerTenant => "csv_per_tenant",
            Limit::JsonPerApp => "json_per_app",
        }
    }
}

/// A refused request: which limit, and how long until one more fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// The limit reached.
    pub limit: Limit,
    /// When to retry.
    pub retry_after: Duration,
}

/// Who a window counts: one app (or `None`: every app together) of a tenant, on one report API
/// in one format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    tenant: TenantId,
    app: Option<Uuid>,
    report: &'static str,
    kind: Kind,
    /// Whether this is the tenant-wide window (all apps).
    tenant_wide: bool,
}

/// Most windows kept; past it, empty ones are dropped, and if none is, all (a burst of new
/// tenants and apps should not grow memory without bound; forgetting errs on admitting).
const MAX_WINDOWS: usize = 100_000;

/// How long a lease's admissions are handed out: a sixtieth of the window, but at least a
/// second and at most a quarter of the window. Why: they count in the window from the end of
/// that time, so a lease holds its unused admissions, and shifts the window of those used, by
/// up to as much; a sixtieth of Graph's 10 minutes (10 s) keeps that shift under 2 % of the
/// window while a busy window costs one statement per 10 s instead of per second (measured on
/// PostgreSQL, bench/ops.sh: ~270 lease statements a second at 1 s cost 10 % of the
/// report-function throughput). Leases are only taken with at least
/// [`ThrottleLimits::exact_below`] left, so Graph's own limits stay exact whatever this is.
fn lease_ms(window_ms: i64) -> i64 {
    (window_ms / 60).max(LEASE_MIN_MS).min(window_ms / 4).max(1)
}

/// The shortest lease, when the window is long enough for it ([`lease_ms`]).
const LEASE_MIN_MS: i64 = 1_000;

/// The throttle's state: the admitted requests' times per window (when counted here), what
/// this instance holds of the shared counters, and when it last swept them.
pub struct Throttle {
    limits: ThrottleLimits,
    window: Duration,
    /// foldhash, not std's SipHash: hashing the key is on every counted request's path, and
    /// the keys come from verified tokens and the route (and the map is bounded).
    windows: Mutex<hashbrown::HashMap<Key, Admitted>>,
    leases: Leases,
    lease: LeasePolicy,
    last_sweep_ms: AtomicI64,
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(limits: ThrottleLimits) -> Self {
        let window = Duration::from_secs(limits.window_seconds.max(1));
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let lease = LeasePolicy {
            exact_below: as_i64(limits.exact_below),
            share: as_i64(limits.instances.max(1)).saturating_mul(2),
            lease_ms: lease_ms(window_ms),
        };
        Throttle {
            window,
            limits,
            windows: Mutex::new(hashbrown::HashMap::new()),
            leases: Leases::new(),
            lease,
            last_sweep_ms: AtomicI64::new(0),
        }
    }

    /// Counts a request of `app` in `tenant` on the report API `report` (its function name),
    /// or refuses it when a limit is reached: in `storage`'s shared counters if it has them,
    /// else here. `metrics` times the shared decisions and counts their failures.
    pub async fn admit(
        &self,
        storage: &Arc<dyn Storage>,
        metrics: Option<&Metrics>,
        tenant: TenantId,
        app: Option<Uuid>,
        report: &'static str,
        kind: Kind,
    ) -> Result<(), Throttled> {
        let Some(counters) = storage.throttle_counters() else {
            return self.admit_at(Instant::now(), tenant, app, report, kind);
        };
        let request = self.window_request(tenant, app, report, kind);
        let (per_app_limit, _) = self.per_app_limit(kind);
        if request.per_app == 0 || request.total == 0 {
            let limit = match request.per_app {
                0 => per_app_limit,
                _ => Limit::CsvPerTenant,
            };
            let retry_after = self.window;
            return Err(Throttled { limit, retry_after });
        }
        let ask = match self.leases.local(&request) {
            Ok(verdict) => {
                if let Some(metrics) = metrics {
                    metrics.throttle_decided_locally();
                }
                return answer(Ok(verdict), per_app_limit);
            }
            Err(ask) => ask,
        };
        self.sweep(storage, request.now_ms);
        let verdict = self.ask_store(&counters, metrics, &request, ask).await;
        answer(verdict, per_app_limit)
    }

    /// Asks the shared counters, within [`STORE_TIMEOUT`], and keeps what they grant; the
    /// error (logged and counted) when they fail.
    async fn ask_store(
        &self,
        counters: &ThrottleCounters<'_>,
        metrics: Option<&Metrics>,
        request: &WindowRequest,
        ask: Ask,
    ) -> Result<Verdict, String> {
        let started = Instant::now();
        let decision = tokio::time::timeout(STORE_TIMEOUT, counters.admit(request, ask.want));
        let verdict = match decision.await {
            Ok(Ok(decision)) => {
                self.leases.settle(request, ask, &decision);
                Ok(decision.verdict)
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {} ms", STORE_TIMEOUT.as_millis())),
        };
        if let Some(metrics) = metrics {
            metrics.storage.observe("throttle_admit", started, &verdict);
        }
        if let Err(error) = &verdict {
            if let Some(metrics) = metrics {
                metrics.throttle_store_failed();
            }
            tracing::warn!(%error, "the shared throttle counters failed: request admitted");
        }
        verdict
    }

    /// The per-app limit of `kind`, and its label.
    fn per_app_limit(&self, kind: Kind) -> (Limit, usize) {
        match kind {
            Kind::Csv => (Limit::CsvPerApp, self.limits.csv_per_app),
            Kind::Json => (Limit::JsonPerApp, self.limits.json_per_app),
        }
    }

    /// The shared counters' window of a request: for CSV the tenant's report API (all apps,
    /// with the per-app limit checked on the apps recorded in it); for JSON, which has no
    /// tenant-wide limit, the app's own.
    fn window_request(
        &self,
        tenant: TenantId,
        app: Option<Uuid>,
        report: &'static str,
        kind: Kind,
    ) -> WindowRequest {
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let (_, per_app) = self.per_app_limit(kind);
        let (window, total) = match kind {
            Kind::Csv => (Window::Csv(report), self.limits.csv_per_tenant),
            Kind::Json => (Window::Json(report), per_app),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        WindowRequest {
            tenant,
            window,
            app,
            now_ms: i64::try_from(now.as_millis()).unwrap_or(i64::MAX),
            window_ms: i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX),
            per_app: as_i64(per_app),
            total: as_i64(total),
            lease: self.lease,
        }
    }

    /// Once a window, deletes the shared windows whose requests have all left, in the
    /// background (one statement; every instance does it, which is harmless).
    fn sweep(&self, storage: &Arc<dyn Storage>, now_ms: i64) {
        let window_ms = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < window_ms
            || self
                .last_sweep_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let storage = Arc::clone(storage);
        tokio::spawn(async move {
            let Some(counters) = storage.throttle_counters() else {
                return;
            };
            match counters.forget(now_ms.saturating_sub(window_ms)).await {
                Ok(forgotten) => tracing::debug!(forgotten, "throttle windows swept"),
                Err(error) => tracing::warn!(%error, "cannot sweep the throttle counters"),
            }
        });
    }

    fn admit_at(
        &self,
        now: Instant,
        tenant: TenantId,
        app: Option<Uuid>,
        report: &'static str,
        kind: Kind,
    ) -> Result<(), Throttled> {
        let per_app = Key {
            tenant,
            app,
            report,
            kind,
            tenant_wide: false,
        };
        let (app_limit, app_label) = match kind {
            Kind::Csv => (self.limits.csv_per_app, Limit::CsvPerApp),
            Kind::Json => (self.limits.json_per_app, Limit::JsonPerApp),
        };
        // Graph has no tenant-wide limit for JSON ("n/a").
        let tenant_wide = (kind == Kind::Csv).then_some(Key {
            app: None,
            tenant_wide: true,
            ..per_app
        });
        let exact_below = self.limits.exact_below;
        let Ok(mut windows) = self.windows.lock() else {
            return Ok(());
        };
        if windows.len() >= MAX_WINDOWS {
            self.forget_idle(&mut windows, now);
        }
        // One hash per window on the way (the entries are looked up once, checked, and
        // recorded), not two: this runs under the mutex for every counted request.
        let Some(key) = tenant_wide else {
            let admitted = windows.entry(per_app).or_default();
            admitted
                .check(self.window, app_limit, now)
                .map_err(|retry_after| Throttled {
                    limit: app_label,
                    retry_after,
                })?;
            admitted.record(self.window, app_limit, exact_below, now);
            return Ok(());
        };
        let limits = (app_limit, app_label, self.limits.csv_per_tenant);
        if let [Some(app), Some(tenant)] = windows.get_many_mut([&per_app, &key]) {
            return self.admit_both(app, tenant, limits, now);
        }
        // A new window (the first request of the app or of the tenant): make both entries.
        windows.entry(key).or_default();
        windows.entry(per_app).or_default();
        let [Some(app), Some(tenant)] = windows.get_many_mut([&per_app, &key]) else {
            return Ok(()); // both were just made
        };
        self.admit_both(app, tenant, limits, now)
    }

    /// A CSV request against its app's window and its tenant's: refused by the first limit
    /// reached, else recorded in both. `limits`: the app's limit and its label, the tenant's.
    fn admit_both(
        &self,
        app: &mut Admitted,
        tenant: &mut Admitted,
        (app_limit, app_label, tenant_limit): (usize, Limit, usize),
        now: Instant,
    ) -> Result<(), Throttled> {
        app.check(self.window, app_limit, now)
            .map_err(|retry_after| Throttled {
                limit: app_label,
                retry_after,
            })?;
        tenant
            .check(self.window, tenant_limit, now)
            .map_err(|retry_after| Throttled {
                limit: Limit::CsvPerTenant,
                retry_after,
            })?;
        let exact_below = self.limits.exact_below;
        tenant.record(self.window, tenant_limit, exact_below, now);
        app.record(self.window, app_limit, exact_below, now);
        Ok(())
    }

    /// Drops windows with nothing left in them, or all if that frees nothing.
    fn forget_idle(&self, windows: &mut hashbrown::HashMap<Key, Admitted>, now: Instant) {
        windows.retain(|_, admitted| {
            admitted
                .newest()
                .is_some_and(|t| now.duration_since(t) < self.window)
        });
        if windows.len() >= MAX_WINDOWS {
            windows.clear();
        }
    }
}

/// What a shared decision tells the request: admitted (also when the decision failed: fail
/// open), or refused by the limit `per_app_limit` or the tenant's.
fn answer(verdict: Result<Verdict, String>, per_app_limit: Limit) -> Result<(), Throttled> {
    let wait = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(1));
    let refused = |limit, retry_ms| {
        Err(Throttled {
            limit,
            retry_after: wait(retry_ms),
        })
    };
    match verdict {
        Ok(Verdict::Admitted) | Err(_) => Ok(()),
        Ok(Verdict::PerAppFull { retry_ms }) => refused(per_app_limit, retry_ms),
        Ok(Verdict::TotalFull { retry_ms }) => refused(Limit::CsvPerTenant, retry_ms),
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1: clients read it as an integer.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    rounded_up.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(csv_per_app: usize, csv_per_tenant: usize) -> Throttle {
        Throttle::new(ThrottleLimits {
            window_seconds: 10,
            csv_per_app,
            csv_per_tenant,
            json_per_app: 3,
            ..ThrottleLimits::default()
        })
    }

    #[test]
    fn leases_last_a_sixtieth_of_long_windows_and_a_quarter_of_short_ones() {
        assert_eq!(lease_ms(600_000), 10_000, "Graph's 10 minutes");
        assert_eq!(lease_ms(60_000), 1_000);
        assert_eq!(lease_ms(3_000), 750, "a quarter of a short window");
        assert_eq!(lease_ms(1_000), 250);
        assert_eq!(lease_ms(2), 1);
    }

    #[test]
    fn csv_per_app_window_slides() {
        let t = throttle(2, 40);
        let tenant = TenantId(Uuid::new_v4());
        let app = Some(Uuid::new_v4());
        let start = Instant::now();
        let report = "getOffice365ActiveUserCounts";
        assert!(t.admit_at(start, tenant, app, report, Kind::Csv).is_ok());
        let later = start + Duration::from_secs(4);
        assert!(t.admit_at(later, tenant, app, report, Kind::Csv).is_ok());
        let refused = t
            .admit_at(later, tenant, app, report, Kind::Csv)
            .expect_err("third in the window");
        assert_eq!(refused.limit, Limit::CsvPerApp);
        assert_eq!(refused.retry_after, Duration::from_secs(6));
        // Another report API, another app: counted apart.
        assert!(t
            .admit_at(later, tenant, app, "getTeamsUserActivityCounts", Kind::Csv)
            .is_ok());
        assert!(t
            .admit_at(later, tenant, Some(Uuid::new_v4()), report, Kind::Csv)
            .is_ok());
        // The first request leaves the window after 10 s.
        let after = start + Duration::from_secs(10);
        assert!(t.admit_at(after, tenant, app, report, Kind::Csv).is_ok());
    }

    #[test]
    fn the_tenant_limit_counts_every_app() {
        let t = throttle(14, 3);
        let tenant = TenantId(Uuid::new_v4());
        let now = Instant::now();
        let report = "getOffice365ActiveUserCounts";
        for _ in 0..3 {
            assert!(t
                .admit_at(now, tenant, Some(Uuid::new_v4()), report, Kind::Csv)
                .is_ok());
        }
        let refused = t
            .admit_at(now, tenant, Some(Uuid::new_v4()), report, Kind::Csv)
            .expect_err("fourth app");
        assert_eq!(refused.limit, Limit::CsvPerTenant);
        // JSON has no tenant-wide limit.
        assert!(t
            .admit_at(now, tenant, Some(Uuid::new_v4()), report, Kind::Json)
            .is_ok());
    }

    #[test]
    fn json_has_its_own_per_app_limit() {
        let t = throttle(1, 1);
        let tenant = TenantId(Uuid::new_v4());
        let now = Instant::now();
        let report = "getOffice365ActiveUserCounts";
        for _ in 0..3 {
            assert!(t.admit_at(now, tenant, None, report, Kind::Json).is_ok());
        }
        let refused = t
            .admit_at(now, tenant, None, report, Kind::Json)
            .expect_err("fourth");
        assert_eq!(refused.limit, Limit::JsonPerApp);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(2100)), 3);
        assert_eq!(retry_after_seconds(Duration::from_secs(6)), 6);
    }
}
