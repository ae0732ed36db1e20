//! Throttle counters shared by every instance on one PostgreSQL (or Citus) database, for the
//! API's `--throttle graph`. SQLite keeps none: there the API counts in memory (one process
//! serves a SQLite file; a write per report call would also queue behind imports on SQLite's
//! single write lock).
//!
//! One row per window: a tenant's report API in one format, for CSV all apps together, for
//! JSON one app (JSON has no tenant-wide limit). The row holds one entry per decision that
//! admitted something in the window, oldest first: its time (ms since the Unix epoch), its
//! app and how many it admitted (`counts`), with running sums (`upto` over all entries,
//! `app_upto` over the app's own) so that the live total and an app's live count are two
//! array subscripts, not a scan. One statement decides and counts: an `INSERT … ON CONFLICT
//! DO UPDATE` whose new values are computed from the row as it is when its lock is taken, so
//! that concurrent decisions by several instances serialise on the row and none sees a stale
//! count, in one round trip (the statement is prepared once per connection).
//!
//! **Leases** ([`leases`]): a decision may admit more than the request that asked — a lease
//! of admissions the instance then hands out from memory, without a round trip, for
//! [`LeasePolicy::lease_ms`] — when the window has much left: at least
//! [`LeasePolicy::exact_below`], and then at most a [`LeasePolicy::share`]th of what is left.
//! Below that a decision admits one request only: near the limit every decision is the exact,
//! per-request one. A lease's entry is stamped with the end of its use (`now + lease_ms`), not
//! its start, so it counts in the window for as long as any request admitted from it would:
//! whatever instances lease, no sliding window ever holds more admitted requests than the
//! limit. The cost: admissions leased and not used stay counted (until their window passes
//! them), so an instance can refuse a request another could have admitted. A lease never
//! outlives its `lease_ms`; unused admissions are not returned (that would be a second
//! statement), they expire with their window.
//!
//! The table is `UNLOGGED`: counters are worth no WAL flush per request, and after a crash
//! (or on a promoted standby) they start empty, as a restarted process's memory would.
//! On Citus it is distributed by `tenant_id` and co-located with the report tables rather
//! than a reference table: every decision names one tenant, so it is routed to one shard
//! and touches one worker, whereas a write to a reference table is a two-phase commit on
//! every node.

pub mod leases;

use std::sync::LazyLock;

use reportroot_model::TenantId;
use uuid::Uuid;

use crate::directory::{SqlRunner, SqlValue};
use crate::StorageError;

pub use leases::Leases;

/// The counters' table.
pub const THROTTLE_TABLE: &str = "reportroot_throttle";

/// The counters' table, created at every start like the directory's (PostgreSQL only).
/// `newest` is the latest time the row saw, for [`ThrottleCounters::forget`]; `refused`,
/// `retry_ms` and `granted` are the last decision, which is how the statement returns it.
pub const THROTTLE_TABLE_SQL: &str = "CREATE UNLOGGED TABLE IF NOT EXISTS reportroot_throttle (\
     tenant_id UUID NOT NULL, window_key TEXT NOT NULL, times BIGINT[] NOT NULL, \
     apps UUID[] NOT NULL, counts BIGINT[] NOT NULL, upto BIGINT[] NOT NULL, \
     app_upto BIGINT[] NOT NULL, newest BIGINT NOT NULL, refused SMALLINT NOT NULL, \
     retry_ms BIGINT NOT NULL, granted BIGINT NOT NULL, PRIMARY KEY (tenant_id, window_key))";

/// Whether the counters' table is there in the shape of an older release (one entry per
/// request, no `counts`): one row, `true`, if so. The migration then drops it before
/// [`THROTTLE_TABLE_SQL`] creates it anew — counters are disposable, as after a crash; an
/// instance of the older release still running fails open on the new table.
pub const THROTTLE_TABLE_OUTDATED_SQL: &str = "SELECT true FROM information_schema.tables t \
     WHERE t.table_schema = current_schema() AND t.table_name = 'reportroot_throttle' \
     AND NOT EXISTS (SELECT 1 FROM information_schema.columns c \
     WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name \
     AND c.column_name = 'counts')";

/// When a decision may admit more than one request (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasePolicy {
    /// A window with fewer admissions left than this (per app or in total) is decided one
    /// request at a time: exactly.
    pub exact_below: i64,
    /// Above that, a lease takes at most this fraction (1/`share`) of what is left, so that
    /// the instances sharing a window (`share` = 2 × their number) leave each other room.
    pub share: i64,
    /// How long a lease's admissions may be handed out, milliseconds; they count in the
    /// window as of the end of that time.
    pub lease_ms: i64,
}

impl LeasePolicy {
    /// No leases: every decision admits one request.
    pub const EXACT: LeasePolicy = LeasePolicy {
        exact_below: i64::MAX,
        share: 1,
        lease_ms: 0,
    };
}

/// Which window of its tenant a request counts in: a report API (its function name) in one
/// format. A value, not the window's name: most decisions are made from a lease in memory,
/// and the name ([`WindowRequest::window_key`]) is only built for a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// The report API's CSV requests of all apps together (the per-app limit is checked on
    /// the app's own entries in it).
    Csv(&'static str),
    /// The report API's JSON requests of the requesting app alone
    /// ([`WindowRequest::app`]).
    Json(&'static str),
}

/// One decision to make: may `app` of `tenant` make one more request counted in `window`?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRequest {
    /// The tenant.
    pub tenant: TenantId,
    /// The window within the tenant.
    pub window: Window,
    /// The requesting app (`None`: a token without one; all such requests count as one app).
    pub app: Option<Uuid>,
    /// Now, milliseconds since the Unix epoch (instances' clocks should agree: a skew
    /// shifts the window by as much).
    pub now_ms: i64,
    /// The window's length, milliseconds.
    pub window_ms: i64,
    /// Requests of `app` admitted in a window, at most (at least 1).
    pub per_app: i64,
    /// Requests of all apps admitted in a window, at most (at least 1).
    pub total: i64,
    /// When a decision may lease more than this request.
    pub lease: LeasePolicy,
}

/// What one request is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted.
    Admitted,
    /// Refused, not counted: `app` reached [`WindowRequest::per_app`].
    PerAppFull {
        /// Milliseconds until the oldest of the app's requests leaves the window.
        retry_ms: i64,
    },
    /// Refused, not counted: all apps together reached [`WindowRequest::total`].
    TotalFull {
        /// Milliseconds until the oldest request leaves the window.
        retry_ms: i64,
    },
}

impl WindowRequest {
    /// The window's name in the counters' table: `{report}/csv`, or `{report}/json/{app}`
    /// (`-` for requests without an app).
    pub fn window_key(&self) -> String {
        match (self.window, self.app) {
            (Window::Csv(report), _) => format!("{report}/csv"),
            (Window::Json(report), Some(app)) => format!("{report}/json/{app}"),
            (Window::Json(report), None) => format!("{report}/json/-"),
        }
    }
}

impl Verdict {
    /// The same verdict with another wait (a refusal told again later).
    pub fn with_retry(self, retry_ms: i64) -> Verdict {
        match self {
            Verdict::Admitted => Verdict::Admitted,
            Verdict::PerAppFull { .. } => Verdict::PerAppFull { retry_ms },
            Verdict::TotalFull { .. } => Verdict::TotalFull { retry_ms },
        }
    }
}

/// What [`ThrottleCounters::admit`] decided: the request's verdict, and how many admissions
/// it counted (0 when refused; 1 for the request; more: a lease, the rest to hand out until
/// `now_ms + lease_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The request's verdict.
    pub verdict: Verdict,
    /// Admissions counted, the request's included.
    pub granted: i64,
}

/// The shared counters, over a backend's [`SqlRunner`].
pub struct ThrottleCounters<'a> {
    runner: &'a dyn SqlRunner,
}

/// The statement's parameters, each cast where it appears so that PostgreSQL infers no
/// other type (`cardinality` is an `integer`; the ids are bound as text).
const NOW: &str = "$3::bigint";
const APP: &str = "$4::text::uuid";
const WINDOW: &str = "$5::bigint";
const PER_APP: &str = "$6::bigint";
const TOTAL: &str = "$7::bigint";
const WANT: &str = "$8::bigint";
const EXACT_BELOW: &str = "$9::bigint";
const SHARE: &str = "$10::bigint";
const LEASE_MS: &str = "$11::bigint";

/// How many a decision admits when `left` remain (per app and in total, the lesser):
/// none when nothing is left, a lease of at most `want` and a `share`th of it far from the
/// limit, else one.
fn grant(left: &str) -> String {
    format!(
        "(CASE WHEN {left} <= 0 THEN 0 WHEN {left} >= {EXACT_BELOW} \
         THEN least({WANT}, greatest(1, ({left}) / {SHARE})) ELSE 1 END)"
    )
}

/// The time an entry admitting `granted` is stamped with: a lease counts from the end of
/// its use.
fn stamp(granted: &str) -> String {
    format!("(CASE WHEN {granted} > 1 THEN {NOW} + {LEASE_MS} ELSE {NOW} END)")
}

/// The statement [`ThrottleCounters::admit`] runs (public for tests that `EXPLAIN` it); its
/// parameters are those of [`WindowRequest`] in order — tenant, window, now, app, window
/// length, per-app limit, total limit — then the lease asked for and [`LeasePolicy`]'s
/// `exact_below`, `share` and `lease_ms`.
///
/// The decision is computed over the row `t` as locked. `width_bucket` of `now - window` over
/// the ascending times counts those at or before it: the expired prefix, sliced off. Only
/// subscripts and array functions, no subquery: Citus routes the statement as it is.
pub fn admit_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(build_admit_sql);
    &SQL
}

fn build_admit_sql() -> String {
    let expired = format!("width_bucket({NOW} - {WINDOW}, t.times)");
    let live = |column: &str| format!("t.{column}[{expired} + 1:]");
    // The app's live entries: the first and the last (absolute subscripts).
    let positions = format!("array_positions({}, {APP})", live("apps"));
    let first = format!("({expired} + ({positions})[1])");
    let last = format!("({expired} + ({positions})[cardinality({positions})])");
    let app_live =
        format!("coalesce(t.app_upto[{last}] - t.app_upto[{first}] + t.counts[{first}], 0)");
    let total_live = format!(
        "coalesce(t.upto[cardinality(t.upto)] - t.upto[{expired} + 1] + t.counts[{expired} + 1], 0)"
    );
    let app_full = format!("{app_live} >= {PER_APP}");
    let total_full = format!("{total_live} >= {TOTAL}");
    let granted = grant(&format!(
        "least({PER_APP} - {app_live}, {TOTAL} - {total_live})"
    ));
    // Times stay ascending even if instances' clocks disagree a little, or a lease was
    // stamped ahead.
    let at = format!("greatest({}, t.newest)", stamp(&granted));
    let append = |column: &str, value: &str| {
        format!(
            "CASE WHEN {granted} > 0 THEN array_append({live}, {value}) ELSE {live} END",
            live = live(column)
        )
    };
    let first_granted = grant(&format!("least({PER_APP}, {TOTAL})"));
    let first_at = stamp(&first_granted);
    format!(
        "INSERT INTO reportroot_throttle AS t \
         (tenant_id, window_key, times, apps, counts, upto, app_upto, newest, refused, retry_ms, granted) \
         VALUES ($1::text::uuid, $2::text, ARRAY[{first_at}], ARRAY[{APP}], ARRAY[{first_granted}], \
         ARRAY[{first_granted}], ARRAY[{first_granted}], {first_at}, 0, 0, {first_granted}) \
         ON CONFLICT (tenant_id, window_key) DO UPDATE SET \
         times = {times}, apps = {apps}, counts = {counts}, upto = {upto}, app_upto = {app_upto}, \
         newest = {at}, \
         refused = CASE WHEN {app_full} THEN 1 WHEN {total_full} THEN 2 ELSE 0 END, \
         retry_ms = CASE WHEN {app_full} THEN t.times[{first}] + {WINDOW} - {NOW} \
         WHEN {total_full} THEN t.times[{expired} + 1] + {WINDOW} - {NOW} ELSE 0 END, \
         granted = {granted} \
         RETURNING refused::bigint, retry_ms, granted",
        times = append("times", &at),
        apps = append("apps", APP),
        counts = append("counts", &granted),
        upto = append(
            "upto",
            &format!("coalesce(t.upto[cardinality(t.upto)], 0) + {granted}")
        ),
        app_upto = append(
            "app_upto",
            &format!("coalesce(t.app_upto[{last}], 0) + {granted}")
        ),
    )
}

impl<'a> ThrottleCounters<'a> {
    /// The counters stored where `runner` runs statements (a PostgreSQL database).
    pub fn new(runner: &'a dyn SqlRunner) -> Self {
        ThrottleCounters { runner }
    }

    /// Counts one request in its window — with `want` above 1, up to that many admissions
    /// as [`request.lease`](WindowRequest::lease) allows — or refuses it (counting nothing)
    /// when a limit is reached. One statement, one round trip.
    pub async fn admit(
        &self,
        request: &WindowRequest,
        want: i64,
    ) -> Result<Decision, StorageError> {
        let lease = request.lease;
        let params = vec![
            SqlValue::Text(request.tenant.0.to_string()),
            SqlValue::Text(request.window_key()),
            SqlValue::Int(request.now_ms),
            request
                .app
                .map_or(SqlValue::Null, |app| SqlValue::Text(app.to_string())),
            SqlValue::Int(request.window_ms),
            SqlValue::Int(request.per_app.max(1)),
            SqlValue::Int(request.total.max(1)),
            SqlValue::Int(want.max(1)),
            SqlValue::Int(lease.exact_below.max(0)),
            SqlValue::Int(lease.share.max(1)),
            SqlValue::Int(lease.lease_ms.max(0)),
        ];
        let rows = self.runner.query(admit_sql().to_owned(), params).await?;
        let malformed =
            || StorageError::Backend("the throttle statement returned no verdict".into());
        let row = rows.first().ok_or_else(malformed)?;
        let (refused, retry_ms, granted) = match row.as_slice() {
            [SqlValue::Int(refused), SqlValue::Int(retry), SqlValue::Int(granted)] => {
                (*refused, *retry, *granted)
            }
            _ => return Err(malformed()),
        };
        // A retry in the past (a clock that jumped) still waits a moment.
        let retry_ms = retry_ms.max(1);
        let verdict = match refused {
            0 => Verdict::Admitted,
            1 => Verdict::PerAppFull { retry_ms },
            _ => Verdict::TotalFull { retry_ms },
        };
        Ok(Decision { verdict, granted })
    }

    /// Deletes the windows nothing was counted in since `before` (ms since the epoch): those
    /// whose requests have all left. The number deleted.
    pub async fn forget(&self, before: i64) -> Result<u64, StorageError> {
        let sql = "DELETE FROM reportroot_throttle WHERE newest < $1".to_owned();
        self.runner.execute(sql, vec![SqlValue::Int(before)]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_names_every_parameter() {
        let sql = admit_sql();
        for n in 1..=11 {
            assert!(sql.contains(&format!("${n}::")), "${n} in {sql}");
        }
        assert!(!sql.contains("$12"));
        assert!(!sql.to_lowercase().contains("select"), "no subquery: {sql}");
    }

    #[test]
    fn window_keys_name_the_report_format_and_json_app() {
        let app = Uuid::from_u128(7);
        let request = |window, app| WindowRequest {
            tenant: TenantId(Uuid::nil()),
            window,
            app,
            now_ms: 0,
            window_ms: 600_000,
            per_app: 14,
            total: 40,
            lease: LeasePolicy::EXACT,
        };
        let csv = Window::Csv("getOffice365ActiveUserCounts");
        let json = Window::Json("getOffice365ActiveUserCounts");
        // CSV: one window for all apps; JSON: one per app, `-` for requests without one.
        assert_eq!(
            request(csv, Some(app)).window_key(),
            "getOffice365ActiveUserCounts/csv"
        );
        assert_eq!(
            request(json, Some(app)).window_key(),
            format!("getOffice365ActiveUserCounts/json/{app}")
        );
        assert_eq!(
            request(json, None).window_key(),
            "getOffice365ActiveUserCounts/json/-"
        );
    }
}
