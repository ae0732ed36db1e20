//! SQLite's history page in the default order from an open `reportDate` floor, as a
//! skip-scan of the pages index (`crate::sql::sqlite_pages_index`: the natural key, then every other
//! column, so that the rows are read from the index alone): for each refresh date from the floor, one seek to
//! `(tenant, refresh date, floor)` and a read in order from there, until the page is full.
//!
//! Why: the default order is the natural key's (refresh date, dimension if any, activity date,
//! period), and the first refresh dates after the floor `F` hold mostly activity dates before
//! `F` (the refresh `F` has 4 matching rows of its 307, `F + 1` 8, …). Read from the refresh
//! floor in order (`Builder::refresh_floor`), a page of 11 rows read ~600 index entries; here
//! it reads its own entries and one seek per refresh date it passes (measurements at
//! [`history_page`]).
//!
//! A `$filter` that pins the dimension (`siteType eq 'OneDrive'`) is read the same way, with or
//! without a floor: each refresh date's seek goes to `(tenant, refresh date, value)`, and the
//! refresh dates visited are the value's own, read from `_by_dimension_day`
//! (`crate::sql::dimension_pages_index`), so a value no row has costs one seek rather than a
//! scan (measurements at [`pinned`]); a pinned period's refresh dates are read from
//! `_by_period_day` (`crate::sql::period_pages_index`) the same way.

use reportroot_model::{ReportType, Value};
use reportroot_odata::query::{CompareOp, Expr, Literal, Operand, PropertyRef};
use uuid::Uuid;

use super::{activity_ceiling, activity_floor, closed_range, Builder, CompiledSql, SqlParam};
use crate::sql::{
    dimension_pages_index, period_pages_index, sqlite_pages_index_name, Dialect, PeriodRefreshes,
};
use crate::{ListQuery, Scope};

/// The name of the refresh dates' recursive CTE and of its one column: names no report
/// column has, so that the page's `SELECT` list and `$filter` read the report's columns.
const REFRESHES: &str = "skip_scan";
const REFRESH: &str = "skip_scan_refresh";

/// The page as a skip-scan, when the query has its shape: SQLite, the whole history, the
/// default order, a `$filter` with an activity-date floor (`reportDate ge/gt`) or a pinned
/// dimension value (`siteType eq 'OneDrive'`), no ceiling but a closed range's (`reportDate
/// ge … and reportDate le …`, not one date: `_by_day` holds those rows in order), and a report
/// whose natural key leads with the refresh date; a pinned period (`reportPeriod eq '7'`)
/// visits only the period's refresh dates (a period alone, without a floor, is read from
/// `_by_period_day` entry for entry). `None` otherwise: the caller compiles the page as
/// before.
///
/// The statement, `t` the report's table read `INDEXED BY` its pages index (a keyset
/// cursor adds the first `SELECT`: the rest of the cursor's refresh date, one range of that
/// index from the cursor):
///
/// ```sql
/// WITH RECURSIVE skip_scan(skip_scan_refresh) AS (
///   SELECT (SELECT MIN(refresh) FROM t WHERE tenant_id = ?1 AND refresh >= <refresh floor>)
///   -- (without a floor: every refresh date, from the first; with a pinned value, the
///   -- value's refresh dates: `FROM t INDEXED BY t_by_dimension_day WHERE tenant_id = ?1
///   -- AND dimension = <value> AND …`, here and below; a pinned period's likewise from
///   -- `t_by_period_day`)
///   UNION ALL
///   SELECT (SELECT MIN(refresh) FROM t WHERE tenant_id = ?1 AND refresh > skip_scan_refresh)
///   FROM skip_scan WHERE skip_scan_refresh IS NOT NULL)
/// [SELECT … FROM t WHERE tenant_id = ?1 AND refresh = <cursor's> AND ([dimension,] activity,
///  period) > (<cursor's>) AND <$filter> UNION ALL]
/// SELECT … FROM skip_scan CROSS JOIN t WHERE tenant_id = ?1 AND refresh = skip_scan_refresh
///   [AND dimension = <pinned value>] [AND activity >= <floor>] AND <$filter>
/// LIMIT ? OFFSET ?
/// ```
///
/// (with a cursor, the refresh dates start after the cursor's instead of at the floor).
/// The order is the natural key's without an `ORDER BY` (which would make SQLite read every
/// match to sort them): SQLite runs the CTE as a co-routine, one refresh date at a time, each
/// the least after the last, so ascending; `CROSS JOIN` keeps it the outer loop (SQLite never
/// reorders a `CROSS JOIN`); the inner loop is one range of the pages index, named
/// (`INDEXED BY`), read in its order: left to choose, SQLite 3.50 read a cursor's refresh
/// date through `_by_period_day` (a covering index), in period order. The `$filter` is
/// written with `+column` throughout, so that only the seek's own terms constrain the index.
/// `tests/plans.rs` checks the plan, `tests/skip_scan.rs` the rows against `ORDER BY`.
///
/// Why, measured on 1 tenant × 10 years of `office365ActiveUserCounts` (1.12M rows, bench
/// database of `bench/history.sh`), `reportDate ge 2020-01-01&$top=10`:
/// - the statement alone (bundled SQLite, prepared once, 400 runs, load ~6 on 2 cores): read
///   from the refresh floor 0.56 ms and 4,472 virtual-machine steps; this skip-scan 0.10 ms,
///   339 steps (`$top=10` of the whole history: 0.09 ms, 212); with `$skip=1000` 6.2 → 1.0 ms.
///   A priority queue of single rows (a recursive CTE popping the least of "the next refresh
///   date" and "the next row of this refresh date", each row one `ORDER BY … LIMIT 1` seek)
///   took 0.26 ms (1,211 steps), and 6.4 ms with `$skip=1000`: every row a seek and a queue
///   entry. Pages of one period keep `_by_period_day` (0.09 ms, 386 steps).
/// - the server (release builds, wrk, 32 connections, before → after; the load is the
///   1-minute average on 2 cores shared with builds, the benchmark's own included): at load
///   2–6, 3.2k → 14.2k req/s, p99 14.9 → 4.3 ms, from 2026-10-01 2.2k → 14.4k req/s, p99
///   25 → 4.2 ms, as `$top=10` (17k req/s, p99 4 ms); at load 5–10, 2.2k → 10.4k req/s, p99
///   31 → 18.5 ms (`$top=10`: 12.7k, 18 ms). One request at a time (200 in a row, mean):
///   0.48 → 0.20 ms (`$top=10`: 0.17 ms).
pub(super) fn history_page(
    report: &ReportType,
    refreshes: &dyn PeriodRefreshes,
    columns: &str,
    tenant: Uuid,
    query: &ListQuery,
) -> Option<CompiledSql> {
    let shape = Shape::of(report, query)?;
    let mut b = Builder {
        report,
        dialect: Dialect::Sqlite,
        refreshes,
        sql: String::new(),
        params: Vec::new(),
        unindexed: None,
        all_unindexed: true,
        indexed_by: None,
    };
    let table = report.table_name();
    // The loops' reads, in the natural key's order whatever the statistics say.
    let indexed = format!("{table} INDEXED BY {}", sqlite_pages_index_name(report));
    let column = |i: usize| report.properties[i].column_name();
    let refresh = column(report.refresh_date_index());
    let activity = column(shape.activity);
    let t = b.bind(SqlParam::Uuid(tenant));
    let filter = b.expr(shape.filter);
    // The pinned dimension value, written without `+`: with the refresh date, a seek of the
    // natural-key index, whose next column the dimension is.
    let dimension = shape.dimension.map(|(i, value)| {
        let v = b.bind(SqlParam::Value(value.clone()));
        format!("{} = {v} AND ", column(i))
    });
    // The refresh dates to visit: the tenant's, or with a pinned value only the value's (its
    // range of `_by_dimension_day`), so that a value no row has visits none, and a value of
    // the last refreshes alone only those; likewise a pinned period's (`_by_period_day`).
    let refreshes_of = match (&dimension, dimension_pages_index(report), shape.period) {
        (Some(dimension), Some((index, _)), _) => {
            format!("{table} INDEXED BY {index} WHERE tenant_id = {t} AND {dimension}")
        }
        (None, _, Some((period, value))) => match period_pages_index(report) {
            Some((index, _)) => {
                let v = b.bind(SqlParam::Value(value.clone()));
                format!(
                    "{table} INDEXED BY {index} WHERE tenant_id = {t} AND {} = {v} AND ",
                    column(period)
                )
            }
            None => format!("{table} WHERE tenant_id = {t} AND "),
        },
        _ => format!("{table} WHERE tenant_id = {t} AND "),
    };
    let dimension = dimension.unwrap_or_default();
    // A closed range: each refresh date's seek ends at the ceiling, and the refresh dates 180
    // days after it, or at a late row's (`Builder::refresh_ceiling_value`).
    let (below, last) = match (shape.floor, shape.ceiling) {
        (Some(floor), Some(ceiling)) => {
            let c = b.bind(SqlParam::Value(ceiling.clone()));
            let last = b.refresh_ceiling_value(&t, floor, ceiling)?;
            (
                format!(" AND {activity} <= {c}"),
                format!(" AND {refresh} <= {last}"),
            )
        }
        _ => (String::new(), String::new()),
    };
    // A refresh date's rows from the floor: its range of the natural-key index. (The
    // cursor's refresh date is read from the cursor on instead: given both ranges, SQLite
    // took the floor's and read the entries up to the cursor.)
    let matching = match shape.floor {
        Some(floor) => {
            let f = b.bind(SqlParam::Value(floor.clone()));
            format!("{dimension}{activity} >= {f}{below} AND {filter}")
        }
        None => format!("{dimension}{filter}"),
    };
    let next = format!("(SELECT MIN({refresh}) FROM {refreshes_of}{refresh} > {REFRESH}{last})");
    let (start, cursor_rest) = match &query.after {
        Some(cursor) => {
            let r0 = b.bind(SqlParam::Value(cursor.values[0].clone()));
            let rest_columns: Vec<String> =
                shape.rest.iter().map(|&i| column(i).to_owned()).collect();
            let rest_values: Vec<String> = cursor.values[1..shape.rest.len() + 1]
                .iter()
                .map(|v| b.bind(SqlParam::Value(v.clone())))
                .collect();
            let rest = format!(
                "SELECT {columns} FROM {indexed} WHERE tenant_id = {t} AND {refresh} = {r0} \
                 AND {dimension}({}) > ({}) AND {filter} UNION ALL ",
                rest_columns.join(", "),
                rest_values.join(", ")
            );
            (format!("{refresh} > {r0}"), rest)
        }
        None => match shape.floor {
            Some(floor) => {
                let floor = b.refresh_floor_value(&t, floor)?;
                (format!("{refresh} >= {floor}"), String::new())
            }
            // From the first refresh date: the dimension's seek bounds each one's read.
            None => (format!("{refresh} IS NOT NULL"), String::new()),
        },
    };
    let limit = query
        .limit
        .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let l = b.bind(SqlParam::Int(limit));
    let o = b.bind(SqlParam::Int(i64::try_from(query.skip).unwrap_or(i64::MAX)));
    b.sql = format!(
        "WITH RECURSIVE {REFRESHES}({REFRESH}) AS (\
         SELECT (SELECT MIN({refresh}) FROM {refreshes_of}{start}{last}) \
         UNION ALL SELECT {next} FROM {REFRESHES} WHERE {REFRESH} IS NOT NULL) \
         {cursor_rest}SELECT {columns} FROM {REFRESHES} CROSS JOIN {indexed} \
         WHERE tenant_id = {t} AND {refresh} = {REFRESH} AND {matching} \
         LIMIT {l} OFFSET {o}"
    );
    Some(CompiledSql {
        sql: b.sql,
        params: b.params,
    })
}

/// What a page needs to be a skip-scan (see [`history_page`]).
struct Shape<'q> {
    filter: &'q Expr,
    /// The activity-date floor of the `$filter`, if it has one.
    floor: Option<&'q Value>,
    /// Its activity-date ceiling (`reportDate le …`), if it has one; only with a floor.
    ceiling: Option<&'q Value>,
    /// The dimension and the value the `$filter` pins it to (`siteType eq 'OneDrive'`).
    dimension: Option<(usize, &'q Value)>,
    /// The period and the value the `$filter` pins it to (`reportPeriod eq '7'`).
    period: Option<(usize, &'q Value)>,
    activity: usize,
    /// The natural key after the refresh date, in its order (it holds the activity date).
    rest: Vec<usize>,
}

impl<'q> Shape<'q> {
    fn of(report: &ReportType, query: &'q ListQuery) -> Option<Shape<'q>> {
        let filter = query.filter.as_ref()?;
        if query.scope != Scope::All || !query.order_by.is_empty() {
            return None;
        }
        let activity = report.activity_date_index()?;
        let floor = activity_floor(report, filter);
        let dimension = report
            .dimension
            .and_then(|d| report.property_index(d))
            .and_then(|d| pinned(filter, d).map(|v| (d, v)));
        let period = report
            .period_index()
            .and_then(|p| pinned(filter, p).map(|v| (p, v)));
        // A ceiling is read with a floor only (and not as one date, `reportDate eq`): the
        // refresh dates then end 180 days after it, or at a late row's
        // (`Builder::refresh_ceiling_value`).
        let ceiling = closed_range(report, filter).map(|(_, ceiling)| ceiling);
        if floor.is_none() && dimension.is_none()
            || activity_ceiling(report, filter) && ceiling.is_none()
        {
            return None;
        }
        let natural = report.natural_key_indexes();
        let (&first, rest) = natural.split_first()?;
        if first != report.refresh_date_index() || !rest.contains(&activity) {
            return None;
        }
        // A cursor of this order holds the natural key's values (never null), then the id.
        if let Some(cursor) = &query.after {
            let values = cursor.values.get(..natural.len())?;
            if values.iter().any(|v| matches!(v, Value::Null)) {
                return None;
            }
        }
        Some(Shape {
            filter,
            floor,
            ceiling,
            dimension,
            period,
            activity,
            rest: rest.to_vec(),
        })
    }
}

/// The value of property `index` when the filter's top-level conjuncts pin it (`siteType eq
/// 'OneDrive'`, `reportPeriod eq '7'`).
///
/// A dimension: left to choose, SQLite read those pages through the series index, which
/// leads with the dimension, and sorted every match (a third of the history with three
/// values), or, with one value, read the natural-key index in order and tested every entry
/// (a value no row has: 0.56 s for 1.12M rows). As a skip-scan of every refresh date of the
/// tenant, such a value still took 16–31 ms (108 req/s at 32 connections, 1 tenant × 10 years
/// of `oneDriveUsageFileCounts`), as did a value of the latest refresh alone (112 req/s);
/// visiting the value's refresh dates, 0.5–0.9 ms (20.1k and 16.1k req/s, p99 3.7 and 4.4 ms;
/// with a 2020 floor 127 → 14.9k req/s).
///
/// A period, with a `reportDate` floor: read through `_by_period_day` (the period's entries
/// in the natural key's order, each row a second seek into the table), or, as SQLite chose on
/// the bench database once `_pages` existed, `_pages` from the refresh floor, every entry of
/// the first refresh dates (307 each, 7 of the period); as a skip-scan of the period's
/// refresh dates, each one's entries from the floor, all periods' (about four times the
/// page) and covering. Measurements in bench/RESULTS.md ("Page statements compiled
/// once; pages of one period as a skip-scan").
pub(super) fn pinned(filter: &Expr, index: usize) -> Option<&Value> {
    match filter {
        Expr::And(a, b) => pinned(a, index).or_else(|| pinned(b, index)),
        Expr::Compare {
            op: CompareOp::Eq,
            left,
            right,
        } => match (left, right) {
            (Operand::Property(PropertyRef::Index(p)), Operand::Literal(Literal::Value(v)))
            | (Operand::Literal(Literal::Value(v)), Operand::Property(PropertyRef::Index(p)))
                if *p == index =>
            {
                Some(v)
            }
            _ => None,
        },
        _ => None,
    }
}
