//! The per-day summary of a per-day report, kept at write time: one row per tenant, activity
//! date (and dimension value) and period, `{table}_days`, derived from the registry like the
//! report's table. It holds
//!
//! - `row_count`: the report's rows with that date (dimension value) and period, over every
//!   refresh. `$count` over the whole history with a filter on these columns only sums it
//!   (`query_sql::compile_days_count`): ~15k summary rows instead of ~1M index entries on a
//!   10-year tenant.
//! - `pick_id`, `pick_refresh`: the row of the latest refresh that reports the date in that
//!   period. The daily series (`crate::series`) picks, per date (and dimension value), the
//!   latest of these (ties among periods to the greatest period, as its index order does)
//!   and reads the row by primary key: one range scan of the summary and one seek per point.
//!
//! Every write keeps it in the same transaction with the statements below, the same text in
//! either dialect: an insert adds (`INSERT … ON CONFLICT … DO UPDATE`, which also moves the
//! pick to a later refresh); a delete removes (the summary row goes with its last report row,
//! and the pick is found again with one seek of the series index when it was the deleted
//! row); an update that changes the date, period, dimension or refresh date removes, then
//! adds. Bulk loads add their inserted rows grouped, one statement per summary row.
//!
//! Concurrent writers of one date and period serialise on the summary row's lock
//! (PostgreSQL; SQLite has one writer). Under READ COMMITTED a statement that waits for a row
//! lock re-checks the locked row's newest version but keeps its snapshot for everything else,
//! so `remove` finding the pick again in the report's rows must not be the statement that
//! waits: a row of another writer, committed while it waited, would not be seen (the pick
//! would go to an older refresh, or to a row that writer deleted). Hence a removal starts with
//! `lock`, a no-op `UPDATE` of the summary row: the wait happens there, and `drop_last` and
//! `remove` then run with snapshots taken after the other writer committed (each statement
//! takes its own). Every writer of the date and period holds that lock until it commits: an
//! insert's `add` takes it (`ON CONFLICT … DO UPDATE` locks the existing row; a new summary
//! row's insert makes a concurrent insert of the same key wait for its commit), and so does a
//! removal's `lock`. A row inserted by a writer that has not reached its `add` yet is not seen
//! by `remove`, but that `add` then compares its refresh with the pick as committed (it reads
//! the locked row's newest version) and moves the pick when later. An `add` racing with a
//! removal of another row is right either way: `remove` only moves a pick that is the row it
//! removes, judged on the locked row's newest version. Counts are always right (the increments
//! are row-locked). `tests/days.rs` runs the racing removal on two PostgreSQL connections.

use std::collections::HashMap;

use reportroot_model::{Grain, Period, ReportType, Value};
use uuid::Uuid;

use crate::query_sql::SqlParam;
use crate::sql::Dialect;

/// The summary statements of one per-day report. Parameter 1 is always the tenant id, then
/// the key values (activity date, dimension, period: [`DaysSql::key_values`]).
#[derive(Debug, Clone)]
pub struct DaysSql {
    /// The summary table: `{table}_days`.
    pub table: String,
    /// `CREATE TABLE IF NOT EXISTS`, then the partial index of its late rows ([`late_rows`])
    /// and (PostgreSQL) the index of the picks in the daily series' order.
    pub create: Vec<String>,
    /// Adds rows: `(tenant, keys…, count, id, refresh date)`: the count is added, and the pick
    /// moves to `id` if its refresh date is later.
    pub add: String,
    /// Locks the summary row and changes nothing: `(tenant, keys…)`. Run first when a row
    /// is removed, so that a concurrent writer's wait ends here and the statements after it
    /// read what that writer committed (see the module docs).
    pub lock: String,
    /// Drops the summary row whose last report row is removed: `(tenant, keys…)`. Run
    /// after [`DaysSql::lock`], before [`DaysSql::remove`].
    pub drop_last: String,
    /// Counts one row less and finds the pick again if it was the removed row: `(tenant,
    /// keys…, removed id)`. Run after the report row is deleted (or changed).
    pub remove: String,
    /// Builds the summary of every tenant from the report's rows (a migration), no parameters.
    pub backfill: String,
    /// The summary's key columns after `tenant_id`, in order.
    pub key_columns: Vec<String>,
    /// The property positions of the key columns.
    keys: Vec<usize>,
    recount: Recount,
    refresh: usize,
}

impl DaysSql {
    /// The summary of `report` in `dialect`; `None` unless the report is per-day.
    pub fn new(report: &ReportType, dialect: Dialect) -> Option<DaysSql> {
        if report.grain != Grain::PerDay {
            return None;
        }
        let keys = key_indexes(report)?;
        let column = |i: usize| report.properties[i].column_name().to_owned();
        let key_columns: Vec<String> = keys.iter().map(|&i| column(i)).collect();
        let source = report.table_name().to_owned();
        let table = summary_table(report);
        let refresh = report.refresh_date_index();
        let refresh_column = column(refresh);
        let p = |n: usize| dialect.param(n);
        let id = dialect.id_type();
        let mut create =
            format!("CREATE TABLE IF NOT EXISTS {table} (\n  tenant_id {id} NOT NULL,\n");
        for &i in &keys {
            create.push_str(&format!(
                "  {} {} NOT NULL,\n",
                column(i),
                dialect.column_definition(report.properties[i].kind)
            ));
        }
        let date_type = dialect.column_type(report.properties[refresh].kind);
        let without_rowid = match dialect {
            Dialect::Sqlite => " WITHOUT ROWID",
            Dialect::Postgres => "",
        };
        create.push_str(&format!(
            "  row_count BIGINT NOT NULL,\n  pick_id {id} NOT NULL,\n  pick_refresh {date_type} NOT NULL,\n  \
             PRIMARY KEY (tenant_id, {})\n){without_rowid}",
            key_columns.join(", ")
        ));
        let n = key_columns.len();
        let list = key_columns.join(", ");
        let key_match = |prefix: &str| {
            key_columns
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{prefix}{c} = {}", p(i + 2)))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let values = (1..=n + 1).map(p).collect::<Vec<_>>().join(", ");
        let later = format!("excluded.pick_refresh > {table}.pick_refresh");
        let add = format!(
            "INSERT INTO {table} (tenant_id, {list}, row_count, pick_id, pick_refresh) \
             VALUES ({values}, {}, {}, {}) ON CONFLICT (tenant_id, {list}) DO UPDATE SET \
             row_count = {table}.row_count + excluded.row_count, \
             pick_id = CASE WHEN {later} THEN excluded.pick_id ELSE {table}.pick_id END, \
             pick_refresh = CASE WHEN {later} THEN excluded.pick_refresh ELSE {table}.pick_refresh END",
            p(n + 2),
            p(n + 3),
            p(n + 4),
        );
        let this_row = format!("tenant_id = {} AND {}", p(1), key_match(""));
        let lock = format!("UPDATE {table} SET row_count = row_count WHERE {this_row}");
        let drop_last = format!("DELETE FROM {table} WHERE {this_row} AND row_count <= 1");
        // The latest refresh of the date and period: one backward seek of the series index.
        let latest = |what: &str| {
            format!(
                "(SELECT x.{what} FROM {source} x WHERE x.tenant_id = {} AND {} \
                 ORDER BY x.{refresh_column} DESC LIMIT 1)",
                p(1),
                key_match("x.")
            )
        };
        let was_pick = format!("pick_id = {}", p(n + 2));
        let remove = format!(
            "UPDATE {table} SET row_count = row_count - 1, \
             pick_id = CASE WHEN {was_pick} THEN {} ELSE pick_id END, \
             pick_refresh = CASE WHEN {was_pick} THEN {} ELSE pick_refresh END WHERE {this_row}",
            latest("id"),
            latest(&refresh_column),
        );
        let joined = key_columns
            .iter()
            .map(|c| format!("x.{c} = g.{c}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let g_list = key_columns
            .iter()
            .map(|c| format!("g.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let recount = Recount {
            source: source.clone(),
            list: list.clone(),
            g_list,
            joined,
            refresh: refresh_column,
        };
        let backfill = format!(
            "INSERT INTO {table} (tenant_id, {list}, row_count, pick_id, pick_refresh) {}",
            recount.sql(None)
        );
        // The late rows (`late_rows`), normally none: a closed `reportDate` range bounds the
        // refresh dates by its ceiling plus the longest period, or by the latest late pick in
        // the range if one is later (`query_sql`'s `Builder::refresh_ceiling_value`).
        let late = format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} (tenant_id, {}, pick_refresh) WHERE {}",
            late_index(report),
            key_columns[0],
            late_rows(dialect, &key_columns[0], "")
        );
        // The picks in the daily series' order (PostgreSQL): per date (and dimension value)
        // the latest refresh first, ties to the greatest period, with the picked row's id, so
        // that the series reads the first entry of each date from this index alone
        // (`crate::series`: `DISTINCT ON`). Why: from the summary's key it fetched every
        // summary row from the heap and sorted each date's entries: 10 years, 14.6k rows,
        // 18.9 ms of the series' 40 ms; with this index and `DISTINCT ON` 4.2 ms, the series
        // 25 ms (`EXPLAIN ANALYZE`, 1.12M rows). SQLite's summary is its key's B-tree, read
        // in order by an anti-join.
        let series = (dialect == Dialect::Postgres).then(|| {
            let period = report.period_index().map(column);
            let mut order: Vec<String> = key_columns
                .iter()
                .filter(|c| Some(*c) != period.as_ref())
                .cloned()
                .collect();
            order.push("pick_refresh DESC".to_owned());
            order.extend(period.map(|c| format!("{c} DESC")));
            format!(
                "CREATE INDEX IF NOT EXISTS {table}_series ON {table} (tenant_id, {}) \
                 INCLUDE (pick_id)",
                order.join(", ")
            )
        });
        let create = [create, late].into_iter().chain(series).collect();
        Some(DaysSql {
            table,
            create,
            add,
            lock,
            drop_last,
            remove,
            backfill,
            recount,
            key_columns,
            keys,
            refresh,
        })
    }

    /// A query of what the summary should hold, computed from the report's rows: `tenant_id`,
    /// the key columns, `row_count`, `pick_id`, `pick_refresh` (tests compare it with the
    /// table). `tenant`: an SQL expression restricting it to one tenant (single-shard on Citus).
    pub fn recount(&self, tenant: Option<&str>) -> String {
        self.recount.sql(tenant)
    }

    /// The key values of a row's `values` (registry order).
    pub fn key_values<'s, 'v: 's>(
        &'s self,
        values: &'v [Value],
    ) -> impl Iterator<Item = &'v Value> + 's {
        self.keys.iter().map(move |&i| &values[i])
    }

    /// Whether rows with these two value sets belong to the same summary row and pick.
    pub fn same_place(&self, a: &[Value], b: &[Value]) -> bool {
        self.keys
            .iter()
            .chain([&self.refresh])
            .all(|&i| a[i] == b[i])
    }

    /// The parameters of [`DaysSql::add`]: `count` rows with these key values, the latest
    /// being `id` of refresh date `refresh`.
    pub fn add_params(
        &self,
        tenant: Uuid,
        keys: &[Value],
        count: i64,
        id: Uuid,
        refresh: &Value,
    ) -> Vec<SqlParam> {
        let mut params = vec![SqlParam::Uuid(tenant)];
        params.extend(keys.iter().cloned().map(SqlParam::Value));
        params.extend([
            SqlParam::Int(count),
            SqlParam::Uuid(id),
            SqlParam::Value(refresh.clone()),
        ]);
        params
    }

    /// The statements (and their parameters) that add the row `id` with `values`.
    pub fn adding(&self, tenant: Uuid, id: Uuid, values: &[Value]) -> (&str, Vec<SqlParam>) {
        let keys: Vec<Value> = self.key_values(values).cloned().collect();
        (
            &self.add,
            self.add_params(tenant, &keys, 1, id, &values[self.refresh]),
        )
    }

    /// The statements (and their parameters) that remove the row `id` with `values`, to run
    /// after the row itself is deleted or changed.
    pub fn removing(&self, tenant: Uuid, id: Uuid, values: &[Value]) -> [(&str, Vec<SqlParam>); 3] {
        let mut params = vec![SqlParam::Uuid(tenant)];
        params.extend(self.key_values(values).cloned().map(SqlParam::Value));
        let keys = params.clone();
        params.push(SqlParam::Uuid(id));
        [
            (&self.lock, keys.clone()),
            (&self.drop_last, keys),
            (&self.remove, params),
        ]
    }
}

/// The names [`DaysSql::recount`] is written with.
#[derive(Debug, Clone)]
struct Recount {
    source: String,
    list: String,
    g_list: String,
    joined: String,
    refresh: String,
}

impl Recount {
    /// Per group, the count and the row of its latest refresh (the natural key finds it).
    fn sql(&self, tenant: Option<&str>) -> String {
        let Recount {
            source,
            list,
            g_list,
            joined,
            refresh,
        } = self;
        let (inner, outer) = match tenant {
            Some(t) => (
                format!(" WHERE tenant_id = {t}"),
                format!(" AND x.tenant_id = {t}"),
            ),
            None => (String::new(), String::new()),
        };
        format!(
            "SELECT g.tenant_id, {g_list}, g.n, x.id, g.latest FROM \
             (SELECT tenant_id, {list}, COUNT(*) AS n, MAX({refresh}) AS latest \
             FROM {source}{inner} GROUP BY tenant_id, {list}) g \
             JOIN {source} x ON x.tenant_id = g.tenant_id AND {joined} AND x.{refresh} = g.latest{outer}"
        )
    }
}

/// The summary's key: the activity date, then the dimension and the period where the report
/// has them. `None` for a report without an activity date.
fn key_indexes(report: &ReportType) -> Option<Vec<usize>> {
    let mut keys = vec![report.activity_date_index()?];
    keys.extend(report.dimension.and_then(|d| report.property_index(d)));
    keys.extend(report.period_index());
    Some(keys)
}

/// The name of a per-day report's summary table: `{table}_days`.
pub(crate) fn summary_table(report: &ReportType) -> String {
    format!("{}_days", report.table_name())
}

/// How many days after a date its latest refresh can be, in data as Graph reports it: a
/// refresh reports the dates of its period, and no period is longer (the summary of 10 years
/// of `office365ActiveUserCounts`: at most 179 days, in `D180`).
pub(crate) const REPORTED_WITHIN_DAYS: u16 = Period::LONGEST.days();

/// The condition on a summary row (columns prefixed by `alias`, e.g. `"d."`) that its pick is
/// *late*: more than [`REPORTED_WITHIN_DAYS`] after its date. Graph writes none; a client may
/// POST one. The same text in the partial index `late_index` and in the queries that read it.
pub(crate) fn late_rows(dialect: Dialect, activity: &str, alias: &str) -> String {
    format!(
        "{alias}pick_refresh > {}",
        dialect.date_plus_days(&format!("{alias}{activity}"), REPORTED_WITHIN_DAYS)
    )
}

/// The name of a summary's partial index of its late rows ([`late_rows`]), by tenant and date.
pub(crate) fn late_index(report: &ReportType) -> String {
    format!("{}_late", summary_table(report))
}

/// The name of the index schema version 10 gave PostgreSQL's summaries (retired by 11).
pub(crate) fn retired_picks_index(report: &ReportType) -> String {
    format!("{}_picks", summary_table(report))
}

/// Rows a bulk load inserted, grouped by summary row, for [`DaysSql::add`] once per group.
#[derive(Debug, Default)]
pub struct DaysBatch {
    groups: HashMap<Vec<Value>, (i64, Uuid, Value)>,
}

impl DaysBatch {
    /// Notes an inserted row.
    pub fn inserted(&mut self, days: &DaysSql, id: Uuid, values: &[Value]) {
        let refresh = &values[days.refresh];
        let key: Vec<Value> = days.key_values(values).cloned().collect();
        let group = self
            .groups
            .entry(key)
            .or_insert_with(|| (0, id, refresh.clone()));
        group.0 += 1;
        if refresh_later(refresh, &group.2) {
            group.1 = id;
            group.2 = refresh.clone();
        }
    }

    /// Whether no row was noted.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The [`DaysSql::add`] parameters of every group, emptying the batch.
    pub fn drain(&mut self, days: &DaysSql, tenant: Uuid) -> Vec<Vec<SqlParam>> {
        self.groups
            .drain()
            .map(|(keys, (count, id, refresh))| days.add_params(tenant, &keys, count, id, &refresh))
            .collect()
    }
}

fn refresh_later(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Date(a), Value::Date(b)) => a > b,
        _ => false,
    }
}
