//! Throttle counters shared by every instance on one PostgreSQL (or Citus) database, for the
//! API's `--throttle graph`. SQLite keeps none: there the API counts in memory (one process
//! serves a SQLite file; a write per report call would also queue behind imports on SQLite's
//! single write lock).
//!
//! One row per window: a tenant's report API in one format, for CSV all apps together, for
//! JSON one app (JSON has no tenant-wide limit). The row holds the times (ms since the Unix
//! epoch, oldest first) and apps of the requests admitted in the window, so at most the
//! larger limit of entries (40 for CSV, 100 for JSON with Graph's limits). One statement
//! decides and counts: an `INSERT … ON CONFLICT DO UPDATE` whose new values are computed from
//! the row as it is when its lock is taken, so that concurrent decisions by several instances
//! serialise on the row and none sees a stale count — exactly the sliding windows of the
//! in-memory throttle, in one round trip (the statement is prepared once per connection).
//!
//! The table is `UNLOGGED`: counters are worth no WAL flush per request, and after a crash
//! (or on a promoted standby) they start empty, as a restarted process's memory would.
//! On Citus it is distributed by `tenant_id` and co-located with the report tables rather
//! than a reference table: every decision names one tenant, so it is routed to one shard
//! and touches one worker, whereas a write to a reference table is a two-phase commit on
//! every node.

use reportroot_model::TenantId;
use uuid::Uuid;

use crate::directory::{SqlRunner, SqlValue};
use crate::StorageError;

/// The counters' table.
pub const THROTTLE_TABLE: &str = "reportroot_throttle";

/// The counters' table, created at every start like the directory's (PostgreSQL only).
/// `newest` is the latest time the row saw, for [`ThrottleCounters::forget`]; `refused` and
/// `retry_ms` are the last decision, which is how the statement returns it.
pub const THROTTLE_TABLE_SQL: &str = "CREATE UNLOGGED TABLE IF NOT EXISTS reportroot_throttle (\
     tenant_id UUID NOT NULL, window_key TEXT NOT NULL, times BIGINT[] NOT NULL, \
     apps UUID[] NOT NULL, newest BIGINT NOT NULL, refused SMALLINT NOT NULL, \
     retry_ms BIGINT NOT NULL, PRIMARY KEY (tenant_id, window_key))";

/// One decision to make: may `app` of `tenant` make one more request counted in `window`?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRequest {
    /// The tenant.
    pub tenant: TenantId,
    /// Names the window within the tenant (report API and format, and the app for windows
    /// of one app).
    pub window: String,
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
}

/// What [`ThrottleCounters::admit`] decided.
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

/// The statement [`ThrottleCounters::admit`] runs (public for tests that `EXPLAIN` it); its
/// parameters are those of [`WindowRequest`] in order: tenant, window, now, app, window
/// length, per-app limit, total limit.
///
/// The decision is computed over the row `t` as locked. `width_bucket` of `now - window` over
/// the ascending times counts those at or before it: the expired prefix, sliced off.
pub fn admit_sql() -> String {
    let expired = format!("width_bucket({NOW} - {WINDOW}, t.times)");
    let live = |column: &str| format!("t.{column}[{expired} + 1:]");
    let app_positions = format!("array_positions({}, {APP})", live("apps"));
    let app_full = format!("cardinality({app_positions}) >= {PER_APP}");
    let total_full = format!("cardinality(t.times) - {expired} >= {TOTAL}");
    let admitted = format!("NOT ({app_full}) AND NOT ({total_full})");
    let append = |column: &str, value: &str| {
        format!(
            "CASE WHEN {admitted} THEN array_append({live}, {value}) ELSE {live} END",
            live = live(column)
        )
    };
    format!(
        "INSERT INTO reportroot_throttle AS t \
         (tenant_id, window_key, times, apps, newest, refused, retry_ms) \
         VALUES ($1::text::uuid, $2::text, ARRAY[{NOW}], ARRAY[{APP}], {NOW}, 0, 0) \
         ON CONFLICT (tenant_id, window_key) DO UPDATE SET \
         times = {times}, apps = {apps}, newest = greatest({NOW}, t.newest), \
         refused = CASE WHEN {app_full} THEN 1 WHEN {total_full} THEN 2 ELSE 0 END, \
         retry_ms = CASE WHEN {app_full} THEN t.times[{expired} + ({app_positions})[1]] + {WINDOW} - {NOW} \
         WHEN {total_full} THEN t.times[{expired} + 1] + {WINDOW} - {NOW} ELSE 0 END \
         RETURNING refused::bigint, retry_ms",
        // Times stay ascending even if instances' clocks disagree a little.
        times = append("times", &format!("greatest({NOW}, t.newest)")),
        apps = append("apps", APP),
    )
}

impl<'a> ThrottleCounters<'a> {
    /// The counters stored where `runner` runs statements (a PostgreSQL database).
    pub fn new(runner: &'a dyn SqlRunner) -> Self {
        ThrottleCounters { runner }
    }

    /// Counts one request in its window, or refuses it (counting nothing) when a limit is
    /// reached. One statement, one round trip.
    pub async fn admit(&self, request: &WindowRequest) -> Result<Verdict, StorageError> {
        let params = vec![
            SqlValue::Text(request.tenant.0.to_string()),
            SqlValue::Text(request.window.clone()),
            SqlValue::Int(request.now_ms),
            request
                .app
                .map_or(SqlValue::Null, |app| SqlValue::Text(app.to_string())),
            SqlValue::Int(request.window_ms),
            SqlValue::Int(request.per_app.max(1)),
            SqlValue::Int(request.total.max(1)),
        ];
        let rows = self.runner.query(admit_sql(), params).await?;
        let malformed =
            || StorageError::Backend("the throttle statement returned no verdict".into());
        let row = rows.first().ok_or_else(malformed)?;
        let (refused, retry_ms) = match row.as_slice() {
            [SqlValue::Int(refused), SqlValue::Int(retry)] => (*refused, *retry),
            _ => return Err(malformed()),
        };
        // A retry in the past (a clock that jumped) still waits a moment.
        let retry_ms = retry_ms.max(1);
        Ok(match refused {
            0 => Verdict::Admitted,
            1 => Verdict::PerAppFull { retry_ms },
            _ => Verdict::TotalFull { retry_ms },
        })
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
        for n in 1..=7 {
            assert!(sql.contains(&format!("${n}")), "${n} in {sql}");
        }
        assert!(!sql.contains("$8"));
    }
}
