//! Graph's report throttling, on demand (`--throttle graph`): each report API (function) is
//! limited per app per tenant — 14 CSV requests or 100 beta JSON requests in 10 minutes — and
//! CSV requests also per tenant for all apps, 40 in 10 minutes (Graph's `throttling-limits`
//! page, `throttling` in the reports catalog). The windows slide: a request is admitted when
//! fewer than the limit were admitted in the window before it, and one refused is told in
//! `Retry-After` when the oldest of those leaves the window.
//!
//! The counters are this process's own (a bounded map): several instances over one PostgreSQL
//! database each count their own requests.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reportroot_model::TenantId;
use serde::Deserialize;
use uuid::Uuid;

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
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            window_seconds: 600,
            csv_per_app: 14,
            csv_per_tenant: 40,
            json_per_app: 100,
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

/// The throttle's state: the admitted requests' times per window.
pub struct Throttle {
    limits: ThrottleLimits,
    window: Duration,
    windows: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(limits: ThrottleLimits) -> Self {
        Throttle {
            window: Duration::from_secs(limits.window_seconds.max(1)),
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `app` in `tenant` on the report API `report` (its function name),
    /// or refuses it when a limit is reached.
    pub fn admit(
        &self,
        tenant: TenantId,
        app: Option<Uuid>,
        report: &'static str,
        kind: Kind,
    ) -> Result<(), Throttled> {
        self.admit_at(Instant::now(), tenant, app, report, kind)
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
        let Ok(mut windows) = self.windows.lock() else {
            return Ok(());
        };
        if windows.len() >= MAX_WINDOWS {
            self.forget_idle(&mut windows, now);
        }
        self.check(&mut windows, per_app, app_limit, now)
            .map_err(|retry_after| Throttled {
                limit: app_label,
                retry_after,
            })?;
        if let Some(key) = tenant_wide {
            self.check(&mut windows, key, self.limits.csv_per_tenant, now)
                .map_err(|retry_after| Throttled {
                    limit: Limit::CsvPerTenant,
                    retry_after,
                })?;
            windows.entry(key).or_default().push_back(now);
        }
        windows.entry(per_app).or_default().push_back(now);
        Ok(())
    }

    /// Drops the times that left `key`'s window; `Err(wait)` when `limit` remain in it.
    fn check(
        &self,
        windows: &mut HashMap<Key, VecDeque<Instant>>,
        key: Key,
        limit: usize,
        now: Instant,
    ) -> Result<(), Duration> {
        let Some(times) = windows.get_mut(&key) else {
            return if limit == 0 { Err(self.window) } else { Ok(()) };
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < limit {
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        Err(self.window.saturating_sub(now.duration_since(oldest)))
    }

    /// Drops windows with nothing left in them, or all if that frees nothing.
    fn forget_idle(&self, windows: &mut HashMap<Key, VecDeque<Instant>>, now: Instant) {
        windows.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < self.window)
        });
        if windows.len() >= MAX_WINDOWS {
            windows.clear();
        }
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
        })
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
