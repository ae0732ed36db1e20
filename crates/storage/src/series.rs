//! `reportroot.series`: a report's history as a chart reads it, one row per date (or per week
//! or month) and dimension value, in one statement for either backend.
//!
//! The statement walks a calendar of buckets (a recursive CTE: days, ISO weeks or months in
//! `[from, to]`) and, for each bucket (and dimension value), picks one row with an ordered
//! `LIMIT 1` read of the report's series index (see [`crate::sql::series_index`]):
//! the latest date of the bucket, and for a per-day report the latest refresh that reports
//! that date. Each point costs two index seeks, however much history the tenant has; nothing
//! is summed (user counts are not additive).
//!
//! The daily series of a per-day report reads its per-day summary instead
//! ([`compile_days_series`], see `crate::days`): one range scan and one seek per point.

use reportroot_model::{Date, Grain, Period, ReportType, Value};
use uuid::Uuid;

use crate::days::DaysSql;
use crate::query_sql::{CompiledSql, SqlParam};
use crate::sql::Dialect;

/// Most rows one series answers. Why 20,000: it is 54 years of days, or ten years of days for
/// a report with five dimension values; a chart shows far fewer points. At two index seeks
/// per point it reads in a fraction of [`crate::READ_TIME_LIMIT`], and its JSON (~250 bytes a
/// row) stays around 5 MB.
pub const SERIES_MAX_POINTS: u64 = 20_000;

/// How a series buckets dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interval {
    /// Every date.
    #[default]
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    /// Calendar months.
    Month,
}

impl Interval {
    /// Parses the parameter's value: `day`, `week` or `month`.
    pub fn parse(text: &str) -> Option<Interval> {
        match text {
            "day" => Some(Interval::Day),
            "week" => Some(Interval::Week),
            "month" => Some(Interval::Month),
            _ => None,
        }
    }

    /// The last date of the bucket holding `date`.
    pub fn bucket_end(self, date: Date) -> Date {
        match self {
            Interval::Day => date,
            Interval::Week => date.add_days(6 - i64::from(date.weekday_from_monday())),
            Interval::Month => {
                let (year, month) = match date.month() {
                    12 => (date.year() + 1, 1),
                    m => (date.year(), m + 1),
                };
                Date::from_ymd(year, month, 1).map_or(date, |next| next.add_days(-1))
            }
        }
    }

    /// The number of buckets `[from, to]` touches (0 when `from` is after `to`).
    pub fn buckets(self, from: Date, to: Date) -> u64 {
        if from > to {
            return 0;
        }
        let days = u64::try_from(to.days_since(from)).unwrap_or_default();
        match self {
            Interval::Day => days + 1,
            Interval::Week => {
                let first_monday = from.add_days(-i64::from(from.weekday_from_monday()));
                u64::try_from(to.days_since(first_monday) / 7 + 1).unwrap_or_default()
            }
            Interval::Month => {
                let months = |d: Date| i64::from(d.year()) * 12 + i64::from(d.month());
                u64::try_from(months(to) - months(from) + 1).unwrap_or_default()
            }
        }
    }
}

/// Which points of a report's history a series reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesQuery {
    /// The first date (activity date of per-day reports, refresh date of the others).
    pub from: Date,
    /// The last date, inclusive.
    pub to: Date,
    /// The buckets.
    pub interval: Interval,
    /// The period of a per-period report's rows (`None` for the other grains).
    pub period: Option<Period>,
}

/// The date a series runs along: the activity date of per-day reports, else the refresh date.
pub fn axis_index(report: &ReportType) -> usize {
    report
        .activity_date_index()
        .unwrap_or_else(|| report.refresh_date_index())
}

/// The statement of a series over `report`'s table, selecting `columns` (the table's
/// [`crate::sql::TableSql::columns`]), at most `limit` rows. Parameters: tenant, from, to,
/// then the period of a per-period report.
pub fn compile_series(
    report: &ReportType,
    dialect: Dialect,
    columns: &str,
    tenant: Uuid,
    query: &SeriesQuery,
    limit: u64,
) -> CompiledSql {
    let table = report.table_name();
    let column = |i: usize| report.properties[i].column_name();
    let axis = column(axis_index(report));
    let refresh = column(report.refresh_date_index());
    let dimension = report
        .dimension
        .and_then(|d| report.property_index(d))
        .map(column);
    let period = report.period_index().map(column);
    let mut params = vec![
        SqlParam::Uuid(tenant),
        SqlParam::Value(Value::Date(query.from)),
        SqlParam::Value(Value::Date(query.to)),
    ];
    let p = |n: usize| dialect.param(n);
    let (t, from, to) = (p(1), p(2), p(3));
    let dates = DateSql {
        dialect,
        interval: query.interval,
    };

    let mut conditions = vec![
        format!("x.tenant_id = {t}"),
        format!("x.{axis} >= b.first_day"),
        format!("x.{axis} <= b.last_day"),
    ];
    if let Some(dimension) = &dimension {
        conditions.push(format!("x.{dimension} = d.v"));
    }
    // The latest date of the bucket; for a per-day report, the latest refresh that reports
    // it, and among that refresh's periods (which repeat the day's figures) the one the index
    // has last, so that the pick is one backward index seek.
    let mut order = vec![format!("x.{axis} DESC")];
    match (report.grain, &period) {
        (Grain::PerPeriod, Some(period)) => {
            params.push(SqlParam::Value(Value::Text(
                query.period.unwrap_or(Period::D7).stored().to_owned(),
            )));
            conditions.push(format!("x.{period} = {}", p(params.len())));
        }
        (Grain::PerDay, period) => {
            order.push(format!("x.{refresh} DESC"));
            order.extend(period.iter().map(|c| format!("x.{c} DESC")));
        }
        _ => {}
    }
    let pick = format!(
        "(SELECT x.id FROM {table} x WHERE {} ORDER BY {} LIMIT 1)",
        conditions.join(" AND "),
        order.join(", ")
    );

    let first_end = dates.least(&dates.bucket_end(&from), &to);
    let next = dates.next_day("last_day");
    let next_end = dates.least(&dates.bucket_end(&next), &to);
    let mut with = format!(
        "WITH RECURSIVE buckets(first_day, last_day) AS (\
         SELECT {}, {} UNION ALL SELECT {}, {} FROM buckets WHERE last_day < {to})",
        dates.cast(&from),
        dates.cast(&first_end),
        dates.cast(&next),
        dates.cast(&next_end),
    );
    let mut sources = "buckets b".to_owned();
    if let Some(dimension) = &dimension {
        // The tenant's dimension values, one index seek each (a loose index scan).
        with.push_str(&format!(
            ", dims(v) AS (SELECT MIN({dimension}) FROM {table} WHERE tenant_id = {t} \
             UNION ALL SELECT (SELECT MIN(y.{dimension}) FROM {table} y WHERE y.tenant_id = {t} \
             AND y.{dimension} > dims.v) FROM dims WHERE dims.v IS NOT NULL)"
        ));
        sources.push_str(" CROSS JOIN dims d");
    }
    let selected = prefixed_columns(columns);
    let sort = answer_order("t", axis, dimension, dialect);
    params.push(SqlParam::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    // CROSS JOIN keeps SQLite's join order: buckets, then the row each one picks by its
    // primary key (PostgreSQL plans the same nested loop on its own).
    let sql = format!(
        "{with} SELECT {selected} FROM (SELECT {pick} AS pick FROM {sources}) s \
         CROSS JOIN {table} t WHERE t.tenant_id = {t} AND t.id = s.pick \
         ORDER BY {} LIMIT {}",
        sort.join(", "),
        p(params.len())
    );
    CompiledSql { sql, params }
}

/// The daily series of a per-day report read from its per-day summary ([`DaysSql`]): one
/// range scan of the summary over `[from, to]` gives, per date (and dimension value) and
/// period, the row of the latest refresh; the latest of those per date (ties to the greatest
/// period, as [`compile_series`]'s index order breaks them) is read by primary key. The same
/// rows as [`compile_series`] with [`Interval::Day`], with one seek per point instead of two
/// and no calendar. Parameters: tenant, from, to, limit.
pub fn compile_days_series(
    report: &ReportType,
    dialect: Dialect,
    days: &DaysSql,
    columns: &str,
    tenant: Uuid,
    query: &SeriesQuery,
    limit: u64,
) -> CompiledSql {
    let table = report.table_name();
    let column = |i: usize| report.properties[i].column_name();
    let axis = column(axis_index(report));
    let dimension = report
        .dimension
        .and_then(|d| report.property_index(d))
        .map(column);
    let period = report.period_index().map(column);
    let p = |n: usize| dialect.param(n);
    let t = p(1);
    let range = format!(
        "s.tenant_id = {t} AND s.{axis} >= {} AND s.{axis} <= {}",
        p(2),
        p(3)
    );
    let mut group = vec![axis];
    group.extend(dimension.iter().copied());
    // Per date (and dimension value), the summary row of the latest refresh, ties to the
    // greatest period.
    let (picks, picked) = match dialect {
        // An anti-join on the summary's key: on 14.6k summary rows (10 years) 7 ms of CPU
        // against 16 ms for `ROW_NUMBER()` and its sort, and read in key order, so nothing
        // is sorted (measured with sqlite3, 1.12M rows).
        Dialect::Sqlite => {
            let same = group
                .iter()
                .map(|c| format!(" AND o.{c} = s.{c}"))
                .collect::<String>();
            let later = match &period {
                Some(c) => format!(
                    "(o.pick_refresh > s.pick_refresh OR (o.pick_refresh = s.pick_refresh AND o.{c} > s.{c}))"
                ),
                None => "o.pick_refresh > s.pick_refresh".to_owned(),
            };
            (
                format!("{} s", days.table),
                format!(
                    "{range} AND NOT EXISTS (SELECT 1 FROM {} o WHERE o.tenant_id = s.tenant_id{same} AND {later})",
                    days.table
                ),
            )
        }
        // `DISTINCT ON`, the first entry of each date in the summary's `_series` index
        // (`crate::days`), read alone: PostgreSQL estimates the anti-join's rows high and
        // then hashes the whole report table instead of one primary-key seek per point (131
        // ms against ~50 ms, 10 years), and `ROW_NUMBER()` over that index took 8.8 ms of
        // the series' 30 against 4.2 ms of 25 (`EXPLAIN ANALYZE`, 14.6k summary rows).
        Dialect::Postgres => {
            let mut latest = vec!["s.pick_refresh DESC".to_owned()];
            latest.extend(period.iter().map(|c| format!("s.{c} DESC")));
            let listed = group
                .iter()
                .map(|c| format!("s.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!(
                    "(SELECT DISTINCT ON ({listed}) s.pick_id, {listed} FROM {} s \
                     WHERE {range} ORDER BY {listed}, {}) s",
                    days.table,
                    latest.join(", "),
                ),
                "TRUE".to_owned(),
            )
        }
    };
    let selected = prefixed_columns(columns);
    // The summary's columns, equal to the picked rows' (SQLite reads them in order).
    let sort = answer_order("s", axis, dimension, dialect);
    // CROSS JOIN keeps SQLite's join order: the summary's picks, then each row by its key.
    let sql = format!(
        "SELECT {selected} FROM {picks} CROSS JOIN {table} t WHERE {picked} \
         AND t.tenant_id = {t} AND t.id = s.pick_id ORDER BY {} LIMIT {}",
        sort.join(", "),
        p(4),
    );
    CompiledSql {
        sql,
        params: vec![
            SqlParam::Uuid(tenant),
            SqlParam::Value(Value::Date(query.from)),
            SqlParam::Value(Value::Date(query.to)),
            SqlParam::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    }
}

/// The table's columns (`a, b, …`) as the picked rows `t` give them.
fn prefixed_columns(columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The answer's order, on `source`'s columns: by date, then dimension value in ordinal order,
/// as `$orderby` sorts strings.
fn answer_order(
    source: &str,
    axis: &str,
    dimension: Option<&str>,
    dialect: Dialect,
) -> Vec<String> {
    let mut sort = vec![format!("{source}.{axis}")];
    sort.extend(dimension.map(|d| match dialect {
        Dialect::Postgres => format!("{source}.{d} COLLATE \"C\""),
        Dialect::Sqlite => format!("{source}.{d}"),
    }));
    sort
}

/// Date arithmetic of the bucket calendar, in a dialect.
struct DateSql {
    dialect: Dialect,
    interval: Interval,
}

impl DateSql {
    fn cast(&self, date: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => date.to_owned(),
            Dialect::Postgres => format!("CAST({date} AS DATE)"),
        }
    }

    fn next_day(&self, date: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("date({date}, '+1 day')"),
            Dialect::Postgres => format!("({date} + 1)"),
        }
    }

    fn least(&self, a: &str, b: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("min({a}, {b})"),
            Dialect::Postgres => format!("LEAST({a}, {b})"),
        }
    }

    /// The last day of the bucket holding `date`.
    fn bucket_end(&self, date: &str) -> String {
        match (self.dialect, self.interval) {
            (_, Interval::Day) => date.to_owned(),
            // The Sunday on or after the date.
            (Dialect::Sqlite, Interval::Week) => format!("date({date}, 'weekday 0')"),
            (Dialect::Postgres, Interval::Week) => {
                format!("(CAST({date} AS DATE) + (7 - CAST(EXTRACT(ISODOW FROM CAST({date} AS DATE)) AS INTEGER)))")
            }
            (Dialect::Sqlite, Interval::Month) => {
                format!("date({date}, 'start of month', '+1 month', '-1 day')")
            }
            (Dialect::Postgres, Interval::Month) => format!(
                "CAST(date_trunc('month', CAST({date} AS TIMESTAMP)) + INTERVAL '1 month' - INTERVAL '1 day' AS DATE)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("date")
    }

    #[test]
    fn buckets_follow_the_calendar() {
        let (from, to) = (date("2024-01-31"), date("2024-03-04"));
        assert_eq!(Interval::Day.buckets(from, to), 34);
        // Weeks of Mon 29 Jan … Mon 4 Mar: 6.
        assert_eq!(Interval::Week.buckets(from, to), 6);
        assert_eq!(Interval::Month.buckets(from, to), 3);
        assert_eq!(Interval::Day.buckets(to, from), 0);
        assert_eq!(Interval::Week.bucket_end(from), date("2024-02-04"));
        assert_eq!(Interval::Month.bucket_end(from), date("2024-01-31"));
        assert_eq!(
            Interval::Month.bucket_end(date("2024-12-05")),
            date("2024-12-31")
        );
        assert_eq!(
            Interval::Month.bucket_end(date("2024-02-05")),
            date("2024-02-29")
        );
    }
}
