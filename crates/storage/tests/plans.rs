//! Query plans of history pages: a `$top` page in the default order, or in an order an index
//! delivers, reads the index in that order and stops after the page, whatever the `reportDate`
//! range. Checked with `EXPLAIN` on both backends over a year of one tenant's per-day history
//! (the SQL is the storage crate's own, on the schema the backends create, with statistics);
//! PostgreSQL when `REPORTROOT_TEST_POSTGRES_URL` is set, both the plan for the parameters'
//! values and the generic plan that reportroot's connections for bounded reads run; and on
//! PostgreSQL every report's pages, on a synthetic history of each.
#![expect(clippy::unwrap_used)]

use std::io::Write as _;

use reportroot_model::{find_report, ReportType, ValueKind};
use reportroot_odata::query::{parse_filter, parse_order_by};
use reportroot_sqlite::{Durability, SqliteStorage};
use reportroot_storage::query_sql::{
    compile_count, compile_days_count, compile_list, CompiledSql, SqlParam,
};
use reportroot_storage::series::{compile_days_series, compile_series, Interval, SeriesQuery};
use reportroot_storage::sql::{Dialect, TableSql};
use reportroot_storage::{ListQuery, Scope};
use uuid::Uuid;

mod support;
use support::sqlite_params;

/// Refresh dates of the synthetic history: one a day from 2024-01-01.
const REFRESHES: u32 = 400;

/// `(name, $filter, $orderby)` of each page that must not sort; `$top=10` each.
const PAGES: &[(&str, &str, &str)] = &[
    ("$top=10", "", ""),
    ("wide range", "reportDate ge 2024-02-01", ""),
    ("narrow range", "reportDate ge 2025-01-15", ""),
    (
        "wide range of a period",
        "reportDate ge 2024-02-01 and reportPeriod eq '7'",
        "",
    ),
    (
        "narrow range of a period",
        "reportDate ge 2025-01-15 and reportPeriod eq '7'",
        "",
    ),
    ("a period", "reportPeriod eq '7'", ""),
    (
        "closed range",
        "reportDate ge 2024-02-01 and reportDate le 2024-06-30",
        "",
    ),
    (
        "closed range of a period",
        "reportDate ge 2024-02-01 and reportDate le 2024-06-30 and reportPeriod eq '7'",
        "",
    ),
    ("reportDate desc", "", "reportDate desc"),
    ("reportPeriod", "", "reportPeriod"),
];

/// Pages of one period, which PostgreSQL reads through `_by_period_day`
/// (`reportroot_storage::sql::period_pages_index`): the page's own entries, where the natural
/// key's order kept 7 of every refresh date's 307 rows (SQLite) and `_by_period` left each
/// refresh date's rows to sort by date (PostgreSQL before schema version 8). SQLite reads
/// them so without a `reportDate` floor, and with one as a skip-scan ([`SKIP_SCANS`]).
const OF_A_PERIOD: &[&str] = &[
    "a period",
    "wide range of a period",
    "narrow range of a period",
];

/// Pages of an open `reportDate` floor in the default order, which SQLite reads as a
/// skip-scan of the natural-key index (`reportroot_storage::query_sql`'s `skip_scan`): one
/// seek per refresh date from the floor, then the page's own entries. Read from the refresh
/// floor in the natural key's order, they read all of the first refresh dates' 307 entries,
/// most dated before the floor (~600 entries for a page of 11, ~20 times the first page's
/// virtual-machine steps).
/// With a pinned period, the period's refresh dates (from `_by_period_day`), each one's
/// entries from the floor: on the bench database SQLite read `_pages` from the refresh floor
/// instead, every entry of the first refresh dates (307 each, 7 of the period).
const SKIP_SCANS: &[&str] = &[
    "wide range",
    "narrow range",
    "wide range of a period",
    "narrow range of a period",
];

/// Pages whose order an index delivers only up to a key, the rest sorted within each value
/// (SQLite's `RIGHT PART OF ORDER BY`, PostgreSQL's incremental sort). None since an explicit
/// `$orderby`'s ties are broken by the natural key's other columns in its direction
/// (`effective_order`): `reportDate desc` is `_by_day` read backwards; before, its `id`
/// tie-break was sorted within each date's rows.
const PARTLY_SORTED: &[&str] = &[];

/// Pages that still sort (issue 16), listed so that the test fails when one starts reading
/// in order (then drop it from the list). SQLite: none since an open `reportDate` range is
/// kept off the series index (`+report_date`); before, with statistics it sorted a narrow
/// range's matches. PostgreSQL: none since `reportDate desc` breaks its ties by the natural
/// key (a full sort in this small synthetic history before, with the `id` tie-break); its
/// pages of a period sorted each refresh date's rows by date until schema version 8.
const STILL_SORTED_SQLITE: &[&str] = &[];
/// See [`STILL_SORTED_SQLITE`].
const STILL_SORTED_POSTGRES: &[&str] = &[];

/// A PostgreSQL page whose plan depends on the statistics' sample of this small history:
/// either `_by_period_day` in order, or `_by_day` from the `reportDate` floor and a sort of
/// the rows dated since the floor (what the planner picks when it estimates them at a few:
/// 8 here). Both are bounded by the range, never a sort of the history. ANALYZE samples 30,000
/// of the 122,800 rows, and a CI run on a fresh cluster got the second plan where local runs
/// got the first; on the 1.12M-row bench database it is `_by_period_day` (0.17 ms).
const PLAN_MAY_VARY_POSTGRES: &[&str] = &["narrow range of a period"];

fn report() -> &'static ReportType {
    find_report("office365ActiveUserCounts").unwrap()
}

fn page(report: &ReportType, filter: &str, order: &str) -> ListQuery {
    ListQuery {
        scope: Scope::All,
        filter: (!filter.is_empty()).then(|| parse_filter(report, filter).unwrap()),
        order_by: if order.is_empty() {
            Vec::new()
        } else {
            parse_order_by(report, order).unwrap()
        },
        after: None,
        skip: 0,
        limit: Some(10),
    }
}

/// The `SELECT` list of synthetic rows: every refresh date holds each period's days (and
/// each dimension value `s.v`, for a report split by one).
fn synthetic_values(report: &ReportType, dialect: Dialect) -> String {
    let refresh = report.refresh_date_index();
    let dimension = report.dimension.and_then(|d| report.property_index(d));
    report
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| match (p.kind, dialect) {
            _ if Some(i) == dimension => "s.v".to_owned(),
            (ValueKind::Date, Dialect::Sqlite) if i == refresh => {
                "date('2024-01-01', r.n || ' days')".to_owned()
            }
            (ValueKind::Date, Dialect::Sqlite) => {
                "date('2024-01-01', (r.n - k.n) || ' days')".to_owned()
            }
            (ValueKind::Date, Dialect::Postgres) if i == refresh => {
                "DATE '2024-01-01' + r.n".to_owned()
            }
            (ValueKind::Date, Dialect::Postgres) => "DATE '2024-01-01' + r.n - k.n".to_owned(),
            (ValueKind::Period, Dialect::Sqlite) => "CAST(p.d AS TEXT)".to_owned(),
            (ValueKind::Period, Dialect::Postgres) => "p.d::text".to_owned(),
            (kind, _) if kind.is_count() => "(r.n * 7 + k.n) % 97".to_owned(),
            _ => "'x'".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn columns(report: &ReportType) -> String {
    report
        .properties
        .iter()
        .map(|p| p.column_name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn sqlite_pages_read_in_index_order() {
    let report = report();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.db");
    drop(SqliteStorage::open(&path, Durability::Process).unwrap());
    let connection = rusqlite::Connection::open(&path).unwrap();
    let tenant = Uuid::new_v4();
    let insert = format!(
        "WITH RECURSIVE r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n < {last}), \
         k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 179), \
         p(d) AS (VALUES (7), (30), (90), (180)) \
         INSERT INTO {table} (tenant_id, id, version, {columns}) \
         SELECT ?1, randomblob(16), 1, {values} FROM r, p, k WHERE k.n < p.d",
        last = REFRESHES - 1,
        table = report.table_name(),
        columns = columns(report),
        values = synthetic_values(report, Dialect::Sqlite),
    );
    connection
        .execute(&insert, [tenant.as_bytes().to_vec()])
        .unwrap();
    // The per-day summary of these rows, as the migration builds it.
    let tables = TableSql::new(report, Dialect::Sqlite);
    let days = tables.days.as_ref().unwrap();
    connection.execute_batch(&days.backfill).unwrap();
    // What the backend runs after imports and at start-up.
    connection.execute_batch("ANALYZE").unwrap();
    let plan = |compiled: &CompiledSql| -> String {
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {}", compiled.sql))
            .unwrap();
        let rows = statement
            .query_map(sqlite_params(compiled), |row| row.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    };
    // The virtual machine's steps to answer a statement: how much of the database it read.
    let steps = |compiled: &CompiledSql| -> i32 {
        let mut statement = connection.prepare(&compiled.sql).unwrap();
        let mut rows = statement.query(sqlite_params(compiled)).unwrap();
        while rows.next().unwrap().is_some() {}
        drop(rows);
        statement.get_status(rusqlite::StatementStatus::VmStep)
    };
    let columns = TableSql::new(report, Dialect::Sqlite).columns;
    for (name, filter, order) in PAGES {
        let query = page(report, filter, order);
        let compiled = compile_list(report, Dialect::Sqlite, &columns, tenant, &query);
        let plan = plan(&compiled);
        let sorted = if PARTLY_SORTED.contains(name) {
            plan.contains("USE TEMP B-TREE FOR ORDER BY")
        } else {
            plan.contains("TEMP B-TREE")
        };
        assert_eq!(
            sorted,
            STILL_SORTED_SQLITE.contains(name),
            "{name}: {}\n{plan}",
            compiled.sql
        );
    }
    // A page of one period costs about what the first page of the history does (a page of
    // the natural key's entries); in the natural key's order it read ~60 times as many.
    let first_page = steps(&compile_list(
        report,
        Dialect::Sqlite,
        &columns,
        tenant,
        &page(report, "", ""),
    ));
    for name in OF_A_PERIOD.iter().filter(|name| !SKIP_SCANS.contains(name)) {
        let (_, filter, order) = PAGES.iter().find(|p| p.0 == *name).unwrap();
        let compiled = compile_list(
            report,
            Dialect::Sqlite,
            &columns,
            tenant,
            &page(report, filter, order),
        );
        let plan = plan(&compiled);
        let steps = steps(&compiled);
        assert!(
            plan.contains("_by_period_day (tenant_id=? AND report_period=?")
                && steps < 3 * first_page,
            "{name}: {steps} steps, the first page {first_page}\n{plan}"
        );
    }
    // A skip-scan page costs about what the first page does, and so does the next page from
    // its cursor (the rest of the cursor's refresh date, then the next ones). A period's
    // page reads every period's entries from the floor, about four times its own (599 steps
    // here, the first page 181; `_by_period_day` took fewer steps in this small history,
    // but on the 1.12M-row bench database, with its statistics, SQLite read `_pages` from
    // the refresh floor: 1.24M instructions a request under callgrind, 314k as a skip-scan).
    let table = report.table_name();
    let natural = report.natural_key_indexes();
    for name in SKIP_SCANS {
        let (_, filter, order) = PAGES.iter().find(|p| p.0 == *name).unwrap();
        let allowed = if name.ends_with("of a period") { 4 } else { 3 } * first_page;
        let mut query = page(report, filter, order);
        let compiled = compile_list(report, Dialect::Sqlite, &columns, tenant, &query);
        let first_plan = plan(&compiled);
        let first_steps = steps(&compiled);
        assert!(
            first_plan.contains("CO-ROUTINE skip_scan")
                && first_plan.contains(&format!(
                    "SEARCH {table} USING COVERING INDEX {table}_pages \
                     (tenant_id=? AND report_refresh_date=? AND report_date>?)"
                ))
                && !first_plan.contains("TEMP B-TREE")
                && first_steps < allowed,
            "{name}: {first_steps} steps, the first page {first_page}: {}\n{first_plan}",
            compiled.sql
        );
        // The cursor of the page's last row: its natural key (`columns` are `id, version`,
        // then the properties) and its id.
        let mut statement = connection.prepare(&compiled.sql).unwrap();
        let last = statement
            .query_map(sqlite_params(&compiled), |row| {
                let values = natural
                    .iter()
                    .map(|&i| row.get::<_, String>(i + 2))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((values, row.get::<_, Vec<u8>>(0)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .last()
            .unwrap();
        query.after = Some(reportroot_storage::Cursor {
            values: natural
                .iter()
                .zip(last.0)
                .map(|(&i, text)| match report.properties[i].kind {
                    ValueKind::Date => {
                        reportroot_model::Value::Date(reportroot_model::Date::parse(&text).unwrap())
                    }
                    _ => reportroot_model::Value::Text(text),
                })
                .collect(),
            id: Uuid::from_slice(&last.1).unwrap(),
        });
        let next = compile_list(report, Dialect::Sqlite, &columns, tenant, &query);
        let next_plan = plan(&next);
        let next_steps = steps(&next);
        assert!(
            next_plan.contains(&format!(
                "SEARCH {table} USING COVERING INDEX {table}_pages \
                 (tenant_id=? AND report_refresh_date=? AND (report_date,report_period)>(?,?))"
            )) && !next_plan.contains("TEMP B-TREE")
                && next_steps < allowed,
            "{name}, the next page: {next_steps} steps, the first page {first_page}: {}\n{next_plan}",
            next.sql
        );
    }
    // The report function's latest refresh of a period: one seek of `_by_period_day` (no
    // side table is written for per-day reports); its rows, a range of the same index (~7
    // rows here: about what a page of the history costs).
    let latest = reportroot_storage::engine::latest_query(
        &tables,
        tenant,
        Some(reportroot_model::Period::D7),
    );
    let latest_plan = plan(&latest);
    assert!(
        latest_plan.contains(&format!(
            "SEARCH {} USING COVERING INDEX {}_by_period_day (tenant_id=? AND report_period=?)",
            report.table_name(),
            report.table_name()
        )) && !latest_plan.contains("SCAN")
            && steps(&latest) < 2 * first_page,
        "{} steps, the first page {first_page}: {}\n{latest_plan}",
        steps(&latest),
        latest.sql
    );
    // `$count` of a range reads a range of an index that holds both dates (the natural key's
    // or the series index, equally wide), not the table.
    let filter = parse_filter(report, "reportDate ge 2024-02-01").unwrap();
    let count = compile_count(report, Dialect::Sqlite, tenant, &Scope::All, Some(&filter));
    let count_plan = plan(&count);
    assert!(
        count_plan.starts_with(&format!(
            "SEARCH {} USING COVERING INDEX",
            report.table_name()
        )),
        "{}\n{count_plan}",
        count.sql
    );
    // `$count` of the whole history from the summary: a range of its primary key.
    for filter in [
        "reportDate ge 2024-02-01",
        "reportDate ge 2024-02-01 and reportPeriod eq '7'",
    ] {
        let filter = parse_filter(report, filter).unwrap();
        let count =
            compile_days_count(report, Dialect::Sqlite, days, tenant, Some(&filter)).unwrap();
        let count_plan = plan(&count);
        assert_eq!(
            count_plan,
            format!(
                "SEARCH {} USING PRIMARY KEY (tenant_id=? AND report_date>?)",
                days.table
            ),
            "{}",
            count.sql
        );
    }
    // The daily series from the summary: one range of its primary key (each row checked
    // against its date's other periods by a seek of the same key), then one seek of the
    // report's primary key per point; nothing sorted, nothing of the series index.
    let series = days_series_sql(report, Dialect::Sqlite, tenant);
    let series_plan = plan(&series);
    assert!(
        series_plan.contains(
            "SEARCH s USING PRIMARY KEY (tenant_id=? AND report_date>? AND report_date<?)"
        ) && series_plan.contains("SEARCH o USING PRIMARY KEY (tenant_id=? AND report_date=?)")
            && series_plan.contains("SEARCH t USING PRIMARY KEY (tenant_id=? AND id=?)")
            && !series_plan.contains("SCAN")
            && !series_plan.contains("_by_day")
            && !series_plan.contains("TEMP B-TREE"),
        "{}\n{series_plan}",
        series.sql
    );
    // A series by week or month: per bucket, one seek of the series index and one of the
    // primary key; the only sort is of the answer's rows.
    for interval in [Interval::Day, Interval::Month] {
        let series = series_sql(report, Dialect::Sqlite, tenant, interval);
        let series_plan = plan(&series);
        let plan = &series_plan;
        assert!(
            plan.contains(&format!(
                "SEARCH x USING COVERING INDEX {}_by_day",
                report.table_name()
            )) && plan.contains("SEARCH t USING PRIMARY KEY")
                && !plan.contains("SCAN x")
                && !plan.contains("SCAN t")
                && plan.matches("TEMP B-TREE").count() == 1,
            "{interval:?}: {}\n{plan}",
            series.sql
        );
    }
}

/// The series statement over the synthetic history's second year.
fn series_sql(
    report: &ReportType,
    dialect: Dialect,
    tenant: Uuid,
    interval: Interval,
) -> CompiledSql {
    let query = SeriesQuery {
        from: reportroot_model::Date::parse("2024-06-01").unwrap(),
        to: reportroot_model::Date::parse("2025-01-31").unwrap(),
        interval,
        period: None,
    };
    let columns = TableSql::new(report, dialect).columns;
    compile_series(report, dialect, &columns, tenant, &query, 20_000)
}

/// The daily series from the summary over the synthetic history's second year.
fn days_series_sql(report: &ReportType, dialect: Dialect, tenant: Uuid) -> CompiledSql {
    let query = SeriesQuery {
        from: reportroot_model::Date::parse("2024-06-01").unwrap(),
        to: reportroot_model::Date::parse("2025-01-31").unwrap(),
        interval: Interval::Day,
        period: None,
    };
    let tables = TableSql::new(report, dialect);
    let days = tables.days.as_ref().unwrap();
    compile_days_series(
        report,
        dialect,
        days,
        &tables.columns,
        tenant,
        &query,
        20_000,
    )
}

#[tokio::test]
async fn postgres_pages_read_in_index_order() {
    let Some(url) = std::env::var("REPORTROOT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED PostgreSQL plans: REPORTROOT_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let report = report();
    let (admin, client, name) = own_database(&url).await;
    let tenant = Uuid::new_v4();
    let insert = format!(
        "INSERT INTO {table} (tenant_id, id, version, {columns}) \
         SELECT '{tenant}'::uuid, gen_random_uuid(), 1, {values} \
         FROM generate_series(0, {last}) r(n), (VALUES (7), (30), (90), (180)) p(d), \
         generate_series(0, 179) k(n) WHERE k.n < p.d; ANALYZE {table}",
        last = REFRESHES - 1,
        table = report.table_name(),
        columns = columns(report),
        values = synthetic_values(report, Dialect::Postgres),
    );
    client.batch_execute(&insert).await.unwrap();
    let tables = TableSql::new(report, Dialect::Postgres);
    let days = tables.days.as_ref().unwrap();
    client
        .batch_execute(&format!("{}; ANALYZE {}", days.backfill, days.table))
        .await
        .unwrap();
    // What autovacuum does after a load: index-only scans need the visibility map.
    client
        .batch_execute(&format!("VACUUM {}", report.table_name()))
        .await
        .unwrap();
    let columns = TableSql::new(report, Dialect::Postgres).columns;
    for (label, filter, order) in PAGES {
        let query = page(report, filter, order);
        let compiled = compile_list(report, Dialect::Postgres, &columns, tenant, &query);
        // What the server runs: the statement's generic plan (pages are bounded reads).
        let generic = explain_generic(&client, &compiled).await;
        assert_page_plan(report, label, "generic plan", &compiled.sql, &generic);
        // The plan PostgreSQL makes for the parameters' values (a scan's, and the statement's
        // first executions under `plan_cache_mode = auto`).
        let plan = explain(&client, &compiled).await;
        if PLAN_MAY_VARY_POSTGRES.contains(label) && sorts(label, &plan) {
            let from_floor = format!("using {}_by_day", report.table_name());
            assert!(
                plan.contains(&from_floor) && plan.contains("(report_date >= "),
                "{label}: a sort, but not of the rows since the floor: {}\n{plan}",
                compiled.sql
            );
            continue;
        }
        assert_page_plan(report, label, "plan for the values", &compiled.sql, &plan);
        // The rows dated after their refresh (none here) are looked up in their partial
        // index, not by filtering the natural key's entries of the whole range.
        if compiled.sql.contains(" > a.") {
            let ahead = format!("using {}_ahead_report_date", report.table_name());
            assert!(plan.contains(&ahead), "{label}: {}\n{plan}", compiled.sql);
        }
        // A closed range's late rows (none here) too, in the summary's partial index, not
        // by reading the summary's rows of the range; in either plan.
        if compiled.sql.contains("d.pick_refresh > ") {
            let late = format!(" {}_days_late ", report.table_name());
            assert!(
                plan.contains(&late) && generic.contains(&late),
                "{label}: {}\n{plan}\n{generic}",
                compiled.sql
            );
        }
    }
    // The report function's latest refresh of a period: one backward seek of `_by_period_day`
    // (it replaced `_by_period`, its prefix, which this look-up read).
    let latest = reportroot_storage::engine::latest_query(
        &tables,
        tenant,
        Some(reportroot_model::Period::D7),
    );
    let latest_plan = explain(&client, &latest).await;
    assert!(
        latest_plan.contains(&format!(
            "Index Only Scan Backward using {}_by_period_day",
            report.table_name()
        )) && !latest_plan.contains("Seq Scan"),
        "{}\n{latest_plan}",
        latest.sql
    );
    let filter = parse_filter(report, "reportDate ge 2024-02-01").unwrap();
    let count = compile_count(
        report,
        Dialect::Postgres,
        tenant,
        &Scope::All,
        Some(&filter),
    );
    let plan = explain(&client, &count).await;
    assert!(
        plan.contains("Index Only Scan") && !plan.contains("Seq Scan"),
        "{}\n{plan}",
        count.sql
    );
    // `$count` of the whole history from the summary; the daily series from its picks.
    let filter = parse_filter(report, "reportDate ge 2024-02-01").unwrap();
    let count = compile_days_count(report, Dialect::Postgres, days, tenant, Some(&filter)).unwrap();
    // (A sequential scan of a one-tenant summary is the planner's right choice.)
    let plan = explain(&client, &count)
        .await
        .replace(&days.table, "SUMMARY");
    assert!(
        plan.contains("on SUMMARY") && !plan.contains(report.table_name()),
        "{}\n{plan}",
        count.sql
    );
    let series = days_series_sql(report, Dialect::Postgres, tenant);
    // The summary's rows of the range, then one primary-key seek of the report per point. In
    // the generic plan, which the server runs (a bounded read), the first entry of each date
    // in the summary's `_series` index, in the answer's order: nothing sorted. (For the
    // values, this small summary, 1,600 rows, may be read whole and sorted.)
    let table = report.table_name();
    for (plan, generic) in [
        (explain(&client, &series).await, false),
        (explain_generic(&client, &series).await, true),
    ] {
        let plan = plan.replace(&days.table, "SUMMARY");
        let in_order = plan.contains("using SUMMARY_series on SUMMARY") && !plan.contains("Sort");
        assert!(
            plan.contains("on SUMMARY")
                && (in_order || !generic)
                && plan.contains(&format!("Index Scan using {table}_pkey on {table} t"))
                && !plan.contains(&format!("Seq Scan on {table}"))
                && !plan.contains("_by_day"),
            "{}\n{plan}",
            series.sql
        );
    }
    for interval in [Interval::Day, Interval::Month] {
        let series = series_sql(report, Dialect::Postgres, tenant, interval);
        let plan = explain(&client, &series).await;
        assert!(
            plan.contains(&format!(
                "Scan Backward using {}_by_day",
                report.table_name()
            )) && plan.contains(&format!("Index Scan using {}_pkey", report.table_name()))
                && !plan.contains("Seq Scan on office365")
                && plan.matches("Sort  (").count() == 1,
            "{interval:?}: {}\n{plan}",
            series.sql
        );
    }
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .ok();
}

/// Every report's pages on SQLite: `$top=10` in the default order, a `reportDate` range, one
/// period and one dimension value (where the report has them) read an index in order: no
/// temporary B-tree (a sort) and no scan of the whole table.
#[test]
fn sqlite_pages_of_every_report_read_in_index_order() {
    let dir = tempfile::tempdir().unwrap();
    let (connection, tenant) = sqlite_family(dir.path());
    let mut checked = 0;
    connection.execute_batch("ANALYZE").unwrap();
    for report in reportroot_model::REPORTS {
        let columns = TableSql::new(report, Dialect::Sqlite).columns;
        let whole_table = format!("SCAN {}\n", report.table_name());
        for filter in &family_page_filters(report) {
            let query = page(report, filter, "");
            let compiled = compile_list(report, Dialect::Sqlite, &columns, tenant, &query);
            let mut statement = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {}", compiled.sql))
                .unwrap();
            let plan: String = statement
                .query_map(sqlite_params(&compiled), |row| row.get::<_, String>(3))
                .unwrap()
                .map(|line| line.unwrap() + "\n")
                .collect();
            assert!(
                !plan.contains("TEMP B-TREE") && !plan.contains(&whole_table),
                "{} {filter:?}: {}\n{plan}",
                report.entity,
                compiled.sql
            );
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked} pages");
}

/// A SQLite file of reportroot's schema holding a tenant's synthetic history of every report
/// (as [`synthetic_history`] in PostgreSQL), without statistics.
fn sqlite_family(dir: &std::path::Path) -> (rusqlite::Connection, Uuid) {
    let path = dir.join("family.db");
    drop(SqliteStorage::open(&path, Durability::Process).unwrap());
    let connection = rusqlite::Connection::open(&path).unwrap();
    let tenant = Uuid::new_v4();
    for report in reportroot_model::REPORTS {
        let per_day = report.activity_date_index().is_some();
        let last = if per_day { 119 } else { 2999 };
        let mut from = vec!["r"];
        let mut conditions = vec!["1"];
        if report.period_index().is_some() {
            from.push("p");
        }
        from.push("k");
        if per_day {
            conditions.push("k.n < p.d");
        }
        if report.dimension.is_some() {
            from.push("s");
        }
        let insert = format!(
            "WITH RECURSIVE r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n < {last}), \
             k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < {days}), \
             p(d) AS (VALUES (7), (30)), s(v) AS (VALUES ('OneDrive'), ('All'), ('bee')) \
             INSERT INTO {table} (tenant_id, id, version, {columns}) \
             SELECT ?1, randomblob(16), 1, {values} FROM {from} WHERE {conditions}",
            days = if per_day { 29 } else { 0 },
            table = report.table_name(),
            columns = columns(report),
            values = synthetic_values(report, Dialect::Sqlite),
            from = from.join(", "),
            conditions = conditions.join(" AND "),
        );
        connection
            .execute(&insert, [tenant.as_bytes().to_vec()])
            .unwrap();
    }
    (connection, tenant)
}

/// On SQLite, a page that pins a dimension value reads only that value's entries: a value no
/// row has, or one only the latest refresh has, costs a few seeks, not a visit of every
/// refresh date of the tenant. Per-day reports' skip-scan visits the value's refresh dates,
/// read from `_by_dimension_day` (`reportroot_storage::sql::dimension_pages_index`);
/// per-dimension reports read their series index `(dimension, refresh date)`. Checked by the
/// virtual-machine steps of the page's statement: visiting the 120 refresh dates of a per-day
/// history took 5,215 (a value no row has) and 5,332 (a page of the latest refresh's); the
/// value's own refresh dates 57 and 218 (per-dimension reports: 17 and 32-34).
#[test]
fn sqlite_pages_of_a_rare_dimension_value_read_only_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (connection, tenant) = sqlite_family(dir.path());
    let mut checked = 0;
    for report in reportroot_model::REPORTS {
        let Some(dimension) = report.dimension else {
            continue;
        };
        let table = report.table_name();
        let column = report.properties[report.property_index(dimension).unwrap()].column_name();
        let refresh = report.properties[report.refresh_date_index()].column_name();
        connection
            .execute_batch(&format!(
                "UPDATE {table} SET {column} = 'Latest' WHERE {column} = 'bee' \
                 AND {refresh} = (SELECT MAX({refresh}) FROM {table}); ANALYZE {table}"
            ))
            .unwrap();
        let columns = TableSql::new(report, Dialect::Sqlite).columns;
        for value in ["Team", "Latest"] {
            let filter = format!("{dimension} eq '{value}'");
            let compiled = compile_list(
                report,
                Dialect::Sqlite,
                &columns,
                tenant,
                &page(report, &filter, ""),
            );
            let mut statement = connection.prepare(&compiled.sql).unwrap();
            let rows = statement
                .query_map(sqlite_params(&compiled), |_| Ok(()))
                .unwrap()
                .count();
            let steps = statement.get_status(rusqlite::StatementStatus::VmStep);
            assert_eq!(rows == 0, value == "Team", "{} {filter}", report.entity);
            assert!(
                steps < 500,
                "{} {filter:?}: {steps} steps\n{}",
                report.entity,
                compiled.sql
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}

/// The `$filter`s of the family's plan tests for `report` (`""` is the page without one):
/// an open and a closed `reportDate` range, one period and one dimension value, where the
/// report has them.
fn family_page_filters(report: &ReportType) -> Vec<String> {
    let mut filters = vec![String::new()];
    filters.extend(
        report
            .activity_date_index()
            .map(|_| "reportDate ge 2024-03-01".to_owned()),
    );
    filters.extend(
        report
            .activity_date_index()
            .map(|_| "reportDate ge 2024-03-01 and reportDate le 2024-03-31".to_owned()),
    );
    filters.extend(
        report
            .period_index()
            .map(|_| "reportPeriod eq '7'".to_owned()),
    );
    filters.extend(report.dimension.map(|d| format!("{d} eq 'OneDrive'")));
    filters
}

/// [`own_database`] on the PostgreSQL of `REPORTROOT_TEST_POSTGRES_URL`; `None` (the test
/// says SKIPPED) when it is not set.
async fn own_test_database() -> Option<(tokio_postgres::Client, tokio_postgres::Client, String)> {
    let Some(url) = std::env::var("REPORTROOT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED PostgreSQL plans: REPORTROOT_TEST_POSTGRES_URL is not set"
        );
        return None;
    };
    Some(own_database(&url).await)
}

/// A database of its own, with reportroot's schema (its statistics are the test's): the
/// server's client, a client of the new database, and its name.
async fn own_database(url: &str) -> (tokio_postgres::Client, tokio_postgres::Client, String) {
    let (admin, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let name = format!("reportroot_plans_{}", Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let own = format!("{}/{name}", url.rsplit_once('/').unwrap().0);
    drop(
        reportroot_postgres::PostgresStorage::connect(&own, 1)
            .await
            .unwrap(),
    );
    let (client, connection) = tokio_postgres::connect(&own, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    (admin, client, name)
}

/// Every report's pages, in the generic plans the server runs: `$top=10` in the default order,
/// a `reportDate` range, one period and one dimension value (where the report has them) read
/// an index in order and stop after the page: no sort and no sequential scan. The reports
/// split by a text dimension (`siteType`, `productType`) order it `COLLATE "C"`, which their
/// indexes hold since schema version 9 (before, each refresh date's rows were sorted again).
#[tokio::test]
async fn postgres_pages_of_every_report_read_in_index_order() {
    let Some((admin, client, name)) = own_test_database().await else {
        return;
    };
    let tenant = Uuid::new_v4();
    let mut checked = 0;
    for report in reportroot_model::REPORTS {
        client
            .batch_execute(&synthetic_history(report, tenant))
            .await
            .unwrap();
        let columns = TableSql::new(report, Dialect::Postgres).columns;
        for filter in &family_page_filters(report) {
            let query = page(report, filter, "");
            let compiled = compile_list(report, Dialect::Postgres, &columns, tenant, &query);
            if report.dimension.is_some() {
                assert!(compiled.sql.contains("COLLATE \"C\""), "{}", compiled.sql);
            }
            let plan = explain_generic(&client, &compiled).await;
            assert!(
                !plan.contains("Sort") && !plan.contains("Seq Scan"),
                "{} {filter:?}: {}\n{plan}",
                report.entity,
                compiled.sql
            );
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked} pages");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .ok();
}

/// On PostgreSQL, a page that pins a dimension value reads only that value's entries, in
/// order: a value no row has, or one only the latest refresh has, costs one descent of an
/// index, not a walk of the tenant's history (PostgreSQL 15 has no skip-scan of a B-tree).
/// Per-day reports read `_by_dimension_day` (`reportroot_storage::sql::dimension_pages_index`),
/// per-dimension reports their series index `(dimension, refresh date)`. Checked by the
/// buffers the generic plan's execution touches: the synthetic history has ~13,000 rows a
/// report (3,000 for a per-dimension one), 100-300 index pages; walked, the page touched them
/// all.
#[tokio::test]
async fn postgres_pages_of_a_rare_dimension_value_read_only_its_entries() {
    let Some((admin, client, name)) = own_test_database().await else {
        return;
    };
    let tenant = Uuid::new_v4();
    let mut checked = 0;
    for report in reportroot_model::REPORTS {
        let Some(dimension) = report.dimension else {
            continue;
        };
        let table = report.table_name();
        let column = report.properties[report.property_index(dimension).unwrap()].column_name();
        let refresh = report.properties[report.refresh_date_index()].column_name();
        // A value of the latest refresh's rows alone: read in the natural key's order, it is
        // found at the end of the history.
        client
            .batch_execute(&format!(
                "{}; UPDATE {table} SET {column} = 'Latest' WHERE {column} = 'bee' \
                 AND {refresh} = (SELECT MAX({refresh}) FROM {table}); ANALYZE {table}",
                synthetic_history(report, tenant)
            ))
            .await
            .unwrap();
        let columns = TableSql::new(report, Dialect::Postgres).columns;
        for value in ["Team", "Latest"] {
            let filter = format!("{dimension} eq '{value}'");
            let compiled = compile_list(
                report,
                Dialect::Postgres,
                &columns,
                tenant,
                &page(report, &filter, ""),
            );
            let plan = explain_generic_with(&client, &compiled, "(ANALYZE, BUFFERS)").await;
            let buffers: u32 = plan
                .lines()
                .find_map(|line| line.trim().strip_prefix("Buffers: shared hit="))
                .map(|n| n.split(' ').next().unwrap().parse().unwrap())
                .unwrap_or(0);
            assert!(
                buffers <= 8 && !plan.contains("Sort"),
                "{} {filter:?}: {buffers} buffers\n{}\n{plan}",
                report.entity,
                compiled.sql
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .ok();
}

/// A tenant's synthetic history of `report` in PostgreSQL, with statistics: a refresh a day,
/// and for each its periods (7 and 30), the period's days (per-day reports) and three
/// dimension values (reports split by one).
fn synthetic_history(report: &ReportType, tenant: Uuid) -> String {
    let per_day = report.activity_date_index().is_some();
    let mut from = vec![format!(
        "generate_series(0, {}) r(n)",
        if per_day { 119 } else { 2999 }
    )];
    let mut conditions = vec!["TRUE".to_owned()];
    if report.period_index().is_some() {
        from.push("(VALUES (7), (30)) p(d)".to_owned());
    }
    if per_day {
        from.push("generate_series(0, 29) k(n)".to_owned());
        conditions.push("k.n < p.d".to_owned());
    } else {
        // Other dates (a per-refresh report's own) on the refresh date.
        from.push("(VALUES (0)) k(n)".to_owned());
    }
    if report.dimension.is_some() {
        from.push("(VALUES ('OneDrive'), ('All'), ('bee')) s(v)".to_owned());
    }
    format!(
        "INSERT INTO {table} (tenant_id, id, version, {columns}) \
         SELECT '{tenant}'::uuid, gen_random_uuid(), 1, {values} FROM {from} WHERE {conditions}; \
         ANALYZE {table}",
        table = report.table_name(),
        columns = columns(report),
        values = synthetic_values(report, Dialect::Postgres),
        from = from.join(", "),
        conditions = conditions.join(" AND "),
    )
}

/// Whether a PostgreSQL page plan sorts (for [`PARTLY_SORTED`] pages, other than the
/// incremental sort within each date).
fn sorts(label: &str, plan: &str) -> bool {
    if PARTLY_SORTED.contains(&label) {
        plan.replace("Incremental Sort", "").contains("Sort")
    } else {
        plan.contains("Sort")
    }
}

/// A PostgreSQL page plan (`which` of the two) sorts only if the page is listed in
/// [`STILL_SORTED_POSTGRES`], and a page of one period reads `_by_period_day`.
fn assert_page_plan(report: &ReportType, label: &str, which: &str, sql: &str, plan: &str) {
    assert_eq!(
        sorts(label, plan),
        STILL_SORTED_POSTGRES.contains(&label),
        "{label}, {which}: {sql}\n{plan}"
    );
    if OF_A_PERIOD.contains(&label) {
        let index = format!("Index Scan using {}_by_period_day", report.table_name());
        assert!(plan.contains(&index), "{label}, {which}: {sql}\n{plan}");
    }
}

/// `EXPLAIN` of the generic plan of a compiled statement: what reportroot's connections for
/// bounded reads run (`plan_cache_mode = force_generic_plan`, crates/postgres `Plans`). The
/// statement is prepared as the server prepares it (parameter types inferred), and executed
/// with the parameters as typed literals.
async fn explain_generic(client: &tokio_postgres::Client, compiled: &CompiledSql) -> String {
    explain_generic_with(client, compiled, "").await
}

/// [`explain_generic`] with `EXPLAIN`'s options (`"(ANALYZE, BUFFERS)"`).
async fn explain_generic_with(
    client: &tokio_postgres::Client,
    compiled: &CompiledSql,
    options: &str,
) -> String {
    let arguments: Vec<String> = compiled.params.iter().map(literal).collect();
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan; DEALLOCATE ALL; \
             PREPARE generic_plan AS {}",
            compiled.sql
        ))
        .await
        .unwrap();
    let rows = client
        .query(
            &format!(
                "EXPLAIN {options} EXECUTE generic_plan({})",
                arguments.join(", ")
            ),
            &[],
        )
        .await
        .unwrap();
    client
        .batch_execute("DEALLOCATE ALL; RESET plan_cache_mode")
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A parameter as a typed SQL literal.
fn literal(param: &SqlParam) -> String {
    match param {
        SqlParam::Uuid(id) => format!("'{id}'::uuid"),
        SqlParam::Int(n) => format!("{n}::bigint"),
        SqlParam::Value(reportroot_model::Value::Date(d)) => format!("DATE '{d}'"),
        SqlParam::Value(reportroot_model::Value::Int(n)) => format!("{n}::bigint"),
        SqlParam::Value(v) => format!("'{v}'::text"),
    }
}

/// `EXPLAIN` of a compiled statement with its parameters inlined as typed literals (a
/// parameterless plan: what the server's first executions get).
async fn explain(client: &tokio_postgres::Client, compiled: &CompiledSql) -> String {
    let mut sql = compiled.sql.clone();
    // Highest first, so that `$1` does not replace the start of `$10`.
    for (n, param) in compiled.params.iter().enumerate().rev() {
        sql = sql.replace(&format!("${}", n + 1), &literal(param));
    }
    let rows = client.query(&format!("EXPLAIN {sql}"), &[]).await.unwrap();
    rows.iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}
