//! SQLite's skip-scan of history pages (`query_sql::skip_scan`): the same rows in the same
//! order as the page's `ORDER BY` over every match, for many `$filter`s, `$skip`s and keyset
//! cursors over a synthetic history with dense and sparse refresh dates, rows dated after
//! their refresh, null counts, and a report with a dimension (`siteType`, which comes before
//! the activity date in the natural key).
#![expect(clippy::unwrap_used)]

use reportroot_model::{find_report, Date, ReportType, Value, ValueKind};
use reportroot_odata::query::{parse_filter, parse_order_by};
use reportroot_sqlite::{Durability, SqliteStorage};
use reportroot_storage::days::DaysSql;
use reportroot_storage::query_sql::{compile_list, CompiledSql};
use reportroot_storage::sql::Dialect;
use reportroot_storage::{Cursor, ListQuery, Scope};
use uuid::Uuid;

mod support;
use support::sqlite_params;

/// Refresh dates 2024-01-01 + n for n < 150, but none in 40..=55 (a gap), only the period
/// 7 every third day from 100 (sparse refreshes: 7 rows), and rows dated one to three days
/// after their refresh date on every tenth refresh.
const REFRESHES: u32 = 150;

/// A report's `SELECT` list of synthetic rows over `r` (refresh), `p` (period), `k` (days
/// before the refresh) and `s` (dimension value): counts null on one row in five.
fn synthetic_values(report: &ReportType) -> String {
    let refresh = report.refresh_date_index();
    let dimension = report.dimension.and_then(|d| report.property_index(d));
    report
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| match p.kind {
            ValueKind::Date if i == refresh => "date('2024-01-01', r.n || ' days')".to_owned(),
            ValueKind::Date => "date('2024-01-01', (r.n - k.n) || ' days')".to_owned(),
            ValueKind::Period => "CAST(p.d AS TEXT)".to_owned(),
            _ if Some(i) == dimension => "s.v".to_owned(),
            kind if kind.is_count() => {
                format!("CASE WHEN (r.n + k.n + {i}) % 5 = 0 THEN NULL ELSE (r.n * 7 + k.n * 3 + {i}) % 97 END")
            }
            _ => "'x'".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A database holding a tenant's synthetic history of `report` (and another tenant's, a
/// shorter one, which no page may show).
fn database(
    report: &ReportType,
    tenant: Uuid,
    other: Uuid,
) -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skip.db");
    drop(SqliteStorage::open(&path, Durability::Process).unwrap());
    let connection = rusqlite::Connection::open(&path).unwrap();
    let columns: Vec<String> = report
        .properties
        .iter()
        .map(|p| p.column_name().to_owned())
        .collect();
    let dimensions = if report.dimension.is_some() {
        "VALUES ('All'), ('OneDrive'), ('Bee')"
    } else {
        "VALUES ('-')"
    };
    // Rows of `report` for each combination of the CTEs' `r`, `k`, `p` and `s` that `rest`
    // (the CTEs before `s`, the `WHERE` after the `FROM`) keeps, for `who`.
    let insert = |who: Uuid, ctes: &str, rest: &str| {
        let sql = format!(
            "WITH RECURSIVE {ctes}, s(v) AS ({dimensions}) \
             INSERT INTO {table} (tenant_id, id, version, {columns}) \
             SELECT ?1, randomblob(16), 1, {values} FROM r, p, k, s {rest}",
            table = report.table_name(),
            columns = columns.join(", "),
            values = synthetic_values(report),
        );
        connection.execute(&sql, [who.as_bytes().to_vec()]).unwrap();
    };
    for (who, last) in [(tenant, REFRESHES - 1), (other, 60)] {
        insert(
            who,
            &format!(
                "r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n < {last}), \
                 k(n) AS (SELECT -3 UNION ALL SELECT n + 1 FROM k WHERE n < 179), \
                 p(d) AS (VALUES (7), (30), (90), (180))"
            ),
            "WHERE k.n < p.d AND (r.n < 40 OR r.n > 55) \
             AND (r.n < 100 OR r.n % 3 <> 0 OR p.d = 7) \
             AND (k.n >= 0 OR (r.n % 10 = 0 AND p.d = 7))",
        );
    }
    // Late rows (reported more than the longest period after their date, which Graph never
    // does): 2024-05-25's of 2023-07-10, among other rows of that date, and of 2023-04-21,
    // before any other row.
    insert(
        tenant,
        "r(n) AS (VALUES (145)), k(n) AS (VALUES (320), (400)), p(d) AS (VALUES (7))",
        "",
    );
    // The per-day summary, which the storage keeps at every write, built as a migration does.
    let days = DaysSql::new(report, Dialect::Sqlite).unwrap();
    connection.execute_batch(&days.backfill).unwrap();
    connection.execute_batch("ANALYZE").unwrap();
    (dir, connection)
}

/// A row as a page lists it: its natural key's values (as a cursor holds them) and its id.
type Row = (Vec<Value>, Uuid);

struct Pages<'a> {
    report: &'static ReportType,
    connection: &'a rusqlite::Connection,
    tenant: Uuid,
    /// `id, <natural key>`: what the tests read of a row.
    columns: String,
}

impl Pages<'_> {
    fn rows(&self, compiled: &CompiledSql) -> Vec<Row> {
        let natural = self.report.natural_key_indexes();
        let mut statement = self.connection.prepare(&compiled.sql).unwrap();
        let rows = statement
            .query_map(sqlite_params(compiled), |row| {
                let id: Vec<u8> = row.get(0)?;
                let mut values = Vec::new();
                for (n, &i) in natural.iter().enumerate() {
                    let text: String = row.get(n + 1)?;
                    values.push(match self.report.properties[i].kind {
                        ValueKind::Date => Value::Date(Date::parse(&text).unwrap()),
                        _ => Value::Text(text),
                    });
                }
                Ok((values, Uuid::from_slice(&id).unwrap()))
            })
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    fn compile(&self, query: &ListQuery) -> CompiledSql {
        compile_list(
            self.report,
            Dialect::Sqlite,
            &self.columns,
            self.tenant,
            query,
        )
    }

    /// Every match in the natural key's order, by an `ORDER BY` (an explicit `$orderby`, which
    /// the skip-scan leaves alone) of the filter alone: as a disjunct, with one that no row
    /// matches, it puts no bound on the refresh dates (only top-level conjuncts do).
    fn expected(&self, filter: &str) -> Vec<Row> {
        let filter = format!("({filter}) or id eq '00000000-0000-0000-0000-000000000000'");
        let names: Vec<&str> = self
            .report
            .natural_key_indexes()
            .iter()
            .map(|&i| self.report.properties[i].name)
            .collect();
        let query = ListQuery {
            scope: Scope::All,
            filter: Some(parse_filter(self.report, &filter).unwrap()),
            order_by: parse_order_by(self.report, &names.join(",")).unwrap(),
            ..ListQuery::default()
        };
        let compiled = self.compile(&query);
        assert!(!compiled.sql.contains("skip_scan"), "{}", compiled.sql);
        assert!(!compiled.sql.contains("_days"), "{}", compiled.sql);
        self.rows(&compiled)
    }

    fn page(
        &self,
        filter: &str,
        after: Option<Cursor>,
        skip: u64,
        limit: Option<u64>,
    ) -> (Vec<Row>, bool) {
        let query = ListQuery {
            scope: Scope::All,
            filter: Some(parse_filter(self.report, filter).unwrap()),
            order_by: Vec::new(),
            after,
            skip,
            limit,
        };
        let compiled = self.compile(&query);
        (
            self.rows(&compiled),
            compiled.sql.starts_with("WITH RECURSIVE skip_scan"),
        )
    }
}

/// Checks every way of reading `filter`'s matches against `ORDER BY`; whether the page was
/// a skip-scan.
fn check(pages: &Pages<'_>, filter: &str) -> bool {
    let expected = pages.expected(filter);
    let (all, skip_scan) = pages.page(filter, None, 0, None);
    assert_eq!(all, expected, "{filter}: every match");
    for (skip, limit) in [(0, 10), (0, 1), (3, 10), (25, 11), (300, 10), (1000, 50)] {
        let (page, used) = pages.page(filter, None, skip, Some(limit));
        assert_eq!(used, skip_scan, "{filter}");
        let want: Vec<Row> = expected
            .iter()
            .skip(skip as usize)
            .take(limit as usize)
            .cloned()
            .collect();
        assert_eq!(page, want, "{filter}: $skip={skip}&$top={limit}");
    }
    // Keyset paging visits every match once, in order (and with `$skip` on each page): the
    // first pages of 9, every page of 997.
    for (size, skip, most) in [(9, 0, 30), (997, 0, usize::MAX), (997, 2, usize::MAX)] {
        let mut seen = Vec::new();
        let mut after: Option<Cursor> = None;
        let mut expected_rest = expected.clone();
        for _ in 0..most {
            let (page, used) = pages.page(filter, after.clone(), skip, Some(size));
            assert_eq!(used, skip_scan, "{filter}");
            let want: Vec<Row> = expected_rest
                .iter()
                .skip(skip as usize)
                .take(size as usize)
                .cloned()
                .collect();
            assert_eq!(page, want, "{filter}: a page of {size} after {after:?}");
            let Some((values, id)) = page.last().cloned() else {
                break;
            };
            let position = expected_rest.iter().position(|r| r.1 == id).unwrap();
            expected_rest.drain(..=position);
            seen.extend(page);
            after = Some(Cursor { values, id });
        }
        if skip == 0 && most == usize::MAX {
            assert_eq!(seen, expected, "{filter}: keyset paging");
        }
    }
    skip_scan
}

/// Checks each filter (and whether it was a skip-scan); the number of each one's matches.
fn run(entity: &str, filters: &[(&str, bool)]) -> Vec<usize> {
    let report = find_report(entity).unwrap();
    let (tenant, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (_dir, connection) = database(report, tenant, other);
    let natural: Vec<String> = report
        .natural_key_indexes()
        .iter()
        .map(|&i| report.properties[i].column_name().to_owned())
        .collect();
    let pages = Pages {
        report,
        connection: &connection,
        tenant,
        columns: format!("id, {}", natural.join(", ")),
    };
    let mut matches = Vec::new();
    for (filter, skip_scan) in filters {
        assert_eq!(check(&pages, filter), *skip_scan, "{entity}: {filter}");
        matches.push(pages.expected(filter).len());
    }
    // The filters are not all empty: the comparisons compared rows (over two thirds match
    // some; the others are the edges: past the history, in a gap, an empty range).
    let nonempty = matches.iter().filter(|&&n| n > 0).count();
    assert!(
        nonempty * 3 > filters.len() * 2,
        "{nonempty} of {}",
        filters.len()
    );
    matches
}

#[test]
fn skip_scan_pages_are_the_ordered_matches() {
    let filters: &[(&str, bool)] = &[
        ("reportDate ge 2023-06-01", true),
        ("reportDate ge 2024-01-01", true),
        ("reportDate ge 2024-02-10", true),
        ("reportDate gt 2024-02-20", true),
        // In the gap of refresh dates, among the sparse ones, past the last refresh date
        // (only rows dated after their refresh match), past every row.
        ("reportDate ge 2024-02-15", true),
        ("reportDate ge 2024-04-20", true),
        ("reportDate ge 2024-05-29", true),
        ("reportDate ge 2024-06-10", true),
        // Rows dated after their refresh date (2024-01-31 and 2024-05-20 hold such rows up to
        // three days ahead) lower the first refresh date to read.
        ("reportDate ge 2024-02-02", true),
        ("reportDate ge 2024-05-22", true),
        (
            "reportDate gt 2024-05-21 and reportRefreshDate le 2024-05-21",
            true,
        ),
        ("reportDate ge 2024-02-01 and teams gt 50", true),
        ("reportDate ge 2024-02-01 and teams eq null", true),
        ("reportDate ge 2024-02-01 and not (teams gt 20)", true),
        (
            "reportDate ge 2024-02-01 and reportPeriod in ('7', '90')",
            true,
        ),
        (
            "reportDate ge 2024-02-01 and (reportPeriod eq '30' or teams lt 10)",
            true,
        ),
        ("reportDate ge 2024-02-01 and reportPeriod ne '180'", true),
        (
            "reportDate ge 2024-02-01 and reportRefreshDate ge 2024-04-01",
            true,
        ),
        (
            "reportDate ge 2024-02-01 and reportRefreshDate lt 2024-03-01",
            true,
        ),
        (
            "reportDate ge 2024-02-01 and reportDate ge 2024-03-01",
            true,
        ),
        (
            "reportDate ge 2024-03-01 and year(reportDate) eq 2024",
            true,
        ),
        (
            "reportDate ge 2024-02-01 and id ne '00000000-0000-0000-0000-000000000000'",
            true,
        ),
        ("2024-02-01 le reportDate", true),
        // Closed ranges: the refresh dates end 180 days after the ceiling (or at a late
        // row's, below), each refresh date's seek at the ceiling; a range of no row, one past the history,
        // rows dated after their refresh date at either end, a ceiling before the floor.
        (
            "reportDate ge 2024-02-01 and reportDate le 2024-03-01",
            true,
        ),
        (
            "reportDate ge 2024-02-10 and reportDate lt 2024-02-12 and teams gt 20",
            true,
        ),
        (
            "reportDate ge 2024-02-01 and reportDate le 2024-02-01",
            false,
        ),
        (
            "reportDate ge 2024-02-15 and reportDate le 2024-02-16",
            true,
        ),
        (
            "reportDate ge 2024-05-22 and reportDate le 2024-05-23",
            true,
        ),
        (
            "reportDate ge 2024-01-29 and reportDate le 2024-02-02",
            true,
        ),
        (
            "reportDate ge 2024-06-10 and reportDate le 2024-07-01",
            true,
        ),
        (
            "reportDate ge 2024-03-01 and reportDate le 2024-02-01",
            true,
        ),
        (
            "reportDate le 2024-03-01 and reportDate ge 2024-02-01 and reportDate le 2024-04-01",
            true,
        ),
        // Late rows: the refresh dates end at the latest late pick of the range, past the
        // ceiling plus the longest period (2023-07-31 + 180 days = 2024-01-27).
        (
            "reportDate ge 2023-07-01 and reportDate le 2023-07-31",
            true,
        ),
        (
            "reportDate ge 2023-04-01 and reportDate le 2023-04-30",
            true,
        ),
        (
            "reportDate ge 2023-04-21 and reportDate lt 2023-07-11 and reportPeriod ne '30'",
            true,
        ),
        // A pinned period: its refresh dates, from `_by_period_day`.
        ("reportDate ge 2024-02-01 and reportPeriod eq '7'", true),
        ("reportDate ge 2024-05-22 and reportPeriod eq '180'", true),
        ("reportPeriod eq '30' and reportDate gt 2024-06-10", true),
        (
            "reportDate ge 2023-04-01 and reportDate le 2023-07-31 and reportPeriod eq '7'",
            true,
        ),
        (
            "reportDate ge 2024-02-01 and reportPeriod eq '7' and teams gt 50",
            true,
        ),
        // Other shapes keep the page's `ORDER BY` (one date: `_by_day` holds its rows in
        // the page's order; a period alone: `_by_period_day` holds them).
        ("reportDate eq 2024-02-01", false),
        ("reportPeriod eq '7'", false),
        ("reportPeriod eq '90' and teams gt 50", false),
        (
            "reportRefreshDate ge 2024-03-01 and reportPeriod eq '7'",
            false,
        ),
        (
            "reportDate ge 2024-02-01 and reportDate in (2024-02-03, 2024-02-05)",
            false,
        ),
        ("reportDate ge 2024-02-01 or teams gt 90", false),
        ("teams gt 90", false),
    ];
    let matches = run("office365ActiveUserCounts", filters);
    // Only rows dated after their refresh date match these: 2024-05-20's of 05-22 and 05-23.
    let ahead = filters
        .iter()
        .position(|f| f.0.contains("reportRefreshDate le 2024-05-21"))
        .unwrap();
    assert_eq!(matches[ahead], 2);
    // The closed ranges compared rows, and found the late ones: 2023-04's only row is late.
    let count = |filter: &str| matches[filters.iter().position(|f| f.0 == filter).unwrap()];
    assert_eq!(
        count("reportDate ge 2023-04-01 and reportDate le 2023-04-30"),
        1
    );
    assert!(count("reportDate ge 2024-02-01 and reportDate le 2024-03-01") > 1000);
    assert!(count("reportDate ge 2023-07-01 and reportDate le 2023-07-31") > 100);
}

/// A dimension before the activity date in the natural key: each refresh date's rows are
/// read from its first dimension value on (from the pinned value's, when the filter pins
/// one), and the cursor compares the whole rest of the key.
#[test]
fn skip_scan_pages_of_a_report_with_a_dimension() {
    let filters: &[(&str, bool)] = &[
        ("reportDate ge 2024-02-10", true),
        ("reportDate ge 2024-05-29", true),
        ("reportDate ge 2024-02-01 and siteType eq 'OneDrive'", true),
        (
            "reportDate ge 2024-02-01 and siteType ne 'All' and total gt 30",
            true,
        ),
        ("reportDate ge 2024-02-01 and active eq null", true),
        ("reportDate ge 2024-02-01 and reportPeriod eq '7'", true),
        // A pinned dimension without a floor: from the first refresh date, each one's rows
        // of that value (a seek); a value no row has reads nothing but the seeks.
        ("siteType eq 'OneDrive'", true),
        ("'Bee' eq siteType", true),
        ("siteType eq 'All' and total gt 30", true),
        ("siteType eq 'Nobody'", true),
        (
            "siteType eq 'OneDrive' and reportDate ge 2024-02-01 and reportDate le 2024-03-01",
            true,
        ),
        (
            "reportDate ge 2024-02-10 and reportDate le 2024-02-20",
            true,
        ),
        (
            "siteType eq 'OneDrive' and reportDate ge 2023-04-01 and reportDate le 2023-07-31",
            true,
        ),
        ("siteType eq 'OneDrive' and reportDate le 2024-03-01", false),
        ("siteType eq 'OneDrive' and reportPeriod eq '7'", true),
        ("reportPeriod eq '30'", false),
    ];
    run("sharePointSiteUsageFileCounts", filters);
}

/// The skip-scan names the pages index (`sql::sqlite_pages_index`): in a new file, every
/// report's index of that name leads with the tenant and the natural key, in order, and holds
/// every other column (`id` comes with each entry of a `WITHOUT ROWID` table's index), so that
/// a page reads nothing else.
#[test]
fn every_report_has_the_pages_index_by_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("names.db");
    drop(SqliteStorage::open(&path, Durability::Process).unwrap());
    let connection = rusqlite::Connection::open(&path).unwrap();
    for report in reportroot_model::REPORTS {
        let name = reportroot_storage::sql::sqlite_pages_index(report).0;
        let mut statement = connection
            .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
            .unwrap();
        let columns: Vec<String> = statement
            .query_map([&name], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let expected: Vec<String> = std::iter::once("tenant_id".to_owned())
            .chain(
                report
                    .natural_key_indexes()
                    .iter()
                    .map(|&i| report.properties[i].column_name().to_owned()),
            )
            .collect();
        assert_eq!(columns[..expected.len()], expected[..], "{name}");
        for column in report.properties.iter().map(|p| p.column_name()) {
            assert!(columns.iter().any(|c| c == column), "{name}: {column}");
        }
        assert!(columns.iter().any(|c| c == "version"), "{name}");
    }
}
