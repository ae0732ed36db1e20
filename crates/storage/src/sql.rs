//! SQL derived from the registry, shared by the backends: table and index definitions and the
//! fixed statements of each report type, in either dialect.

use reportroot_model::{Grain, ReportType, ValueKind};

use crate::days::DaysSql;

/// The SQL dialect a statement is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `?N` placeholders, TEXT dates, 16-byte BLOB ids, tables clustered by
    /// `(tenant_id, id)` (`WITHOUT ROWID`).
    Sqlite,
    /// PostgreSQL: `$N` placeholders, DATE, UUID and BIGINT columns.
    Postgres,
}

impl Dialect {
    /// The placeholder of the `n`th parameter (1-based).
    pub fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    pub(crate) fn column_type(self, kind: ValueKind) -> &'static str {
        match (self, kind) {
            (Dialect::Sqlite, ValueKind::Count | ValueKind::Count32) => "INTEGER",
            (Dialect::Sqlite, _) => "TEXT",
            // Int32 counts too: backends read every count as i64.
            (Dialect::Postgres, ValueKind::Count | ValueKind::Count32) => "BIGINT",
            (Dialect::Postgres, ValueKind::Date) => "DATE",
            (Dialect::Postgres, _) => "TEXT",
        }
    }

    /// A column's type in `CREATE TABLE`: [`Dialect::column_type`], with text the API orders
    /// ordinally (dimension values, durations) in PostgreSQL's `"C"` collation. Why: queries
    /// compare and order such text `COLLATE "C"` (.NET's ordinal order), and an index holding
    /// the database's collation (`C.UTF-8`, `en_US.UTF-8`) cannot deliver that order: pages of
    /// the reports split by `siteType` or `productType` sorted each refresh date's rows again
    /// (an incremental sort). SQLite's `BINARY` collation already is that order.
    pub(crate) fn column_definition(self, kind: ValueKind) -> &'static str {
        match (self, kind) {
            (Dialect::Postgres, ValueKind::Text | ValueKind::Duration) => "TEXT COLLATE \"C\"",
            _ => self.column_type(kind),
        }
    }

    /// The SQL of the date `days` days after the date `expr` (a column or a parameter).
    pub(crate) fn date_plus_days(self, expr: &str, days: u16) -> String {
        match self {
            Dialect::Sqlite => format!("date({expr}, '+{days} days')"),
            Dialect::Postgres => format!("{expr} + {days}"),
        }
    }

    pub(crate) fn id_type(self) -> &'static str {
        match self {
            // 16 bytes instead of 36 characters: the tenant leads every index entry.
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "UUID",
        }
    }
}

/// The fixed statements of one report type's table. Parameter 1 is always the tenant id.
#[derive(Debug, Clone)]
pub struct TableSql {
    /// The table name.
    pub table: String,
    /// `CREATE TABLE IF NOT EXISTS` and `CREATE INDEX IF NOT EXISTS` statements.
    pub create: Vec<String>,
    /// The selected columns, in the order backends read them: id, version, then properties.
    pub columns: String,
    /// `SELECT` one entity: `(tenant, id)`.
    pub select_by_id: String,
    /// `INSERT` an entity: `(tenant, id, values...)`, version 1.
    pub insert: String,
    /// [`TableSql::insert`] that inserts nothing when the natural key (or id) is taken.
    pub insert_if_new: String,
    /// Bump the version and set every property: `(tenant, id, old version, values...)`.
    pub update: String,
    /// `DELETE` one entity: `(tenant, id)`.
    pub delete: String,
    /// The id of the entity with a natural key: `(tenant, key values...)`.
    pub id_by_natural_key: String,
    /// `SELECT` the entity with a natural key: `(tenant, key values...)`.
    pub select_by_natural_key: String,
    /// Insert, or update when the natural key exists and a value differs: `(tenant, new id,
    /// values...)`. Returns the row's version: 1 when inserted, more when updated, no row when
    /// the stored values were already the same.
    pub upsert: String,
    /// PostgreSQL: [`TableSql::upsert`] of many rows in one statement, `(tenant, ids[],
    /// one array per property…)` (`unnest`), returning `id, version` of the rows inserted or
    /// changed (an inserted row's id is the new one). A natural key may appear once per
    /// statement. Why besides the one-row form: a statement per row cost a round trip each,
    /// and on Citus a coordinator-to-worker hop each (~2k rows/s); SQLite, in-process, has
    /// neither, nor arrays (`None`).
    pub upsert_many: Option<String>,
    /// The report function's rows: `(tenant)`, or `(tenant, period)` for periodic reports.
    pub latest: String,
    /// Periodic reports, on a backend that keeps refresh dates apart from the rows (see
    /// [`PeriodRefreshes::note`]): records that a refresh date has rows of a period, `(tenant,
    /// period, refresh date)`; run after every insert or update.
    pub note_refresh: Option<String>,
    /// The per-day summary of a per-day report (`crate::days`), whose table
    /// [`TableSql::create`] also creates.
    pub days: Option<DaysSql>,
    /// Raises the tenant's change version (`crate::changes`): `(tenant)`, run in the same
    /// transaction as every write of the report's rows.
    pub note_change: String,
}

/// The names of a periodic report's table that its refresh-date statements use.
#[derive(Debug, Clone, Copy)]
pub struct PeriodColumns<'a> {
    /// The report's table.
    pub table: &'a str,
    /// The period column.
    pub period: &'a str,
    /// The refresh-date column.
    pub refresh: &'a str,
}

/// How a backend finds the latest refresh date of a periodic report's period (what the report
/// functions read): the one part of the layout the backends choose differently, so each
/// provides its own; everything else of [`TableSql`] is shared.
pub trait PeriodRefreshes: std::fmt::Debug + Send + Sync {
    /// Statements creating what [`PeriodRefreshes::latest`] reads, run after the table's.
    fn create(&self, columns: PeriodColumns<'_>) -> Vec<String>;
    /// A statement run after every insert or update with `(tenant, period, refresh date)`,
    /// for a backend that keeps the refresh dates apart from the rows.
    fn note(&self, columns: PeriodColumns<'_>) -> Option<String>;
    /// A subquery: the latest refresh date of the rows of `tenant` and `period` (SQL
    /// expressions, usually placeholders).
    fn latest(&self, columns: PeriodColumns<'_>, tenant: &str, period: &str) -> String;
}

/// The latest refresh date read from the rows themselves, through an index of every row by
/// `(tenant, period, refresh date)`: PostgreSQL's layout for reports without days (per-day
/// reports read their `_by_period_day`, [`period_refreshes`]), and the default of
/// [`TableSql::new`] (plain SQL that either backend runs).
#[derive(Debug, Clone, Copy, Default)]
pub struct RowsByPeriod;

impl PeriodRefreshes for RowsByPeriod {
    fn create(&self, columns: PeriodColumns<'_>) -> Vec<String> {
        let PeriodColumns {
            table,
            period,
            refresh,
        } = columns;
        vec![format!(
            "CREATE INDEX IF NOT EXISTS {table}_by_period ON {table} (tenant_id, {period}, {refresh})"
        )]
    }

    fn note(&self, _: PeriodColumns<'_>) -> Option<String> {
        None
    }

    fn latest(&self, columns: PeriodColumns<'_>, tenant: &str, p: &str) -> String {
        let PeriodColumns {
            table,
            period,
            refresh,
        } = columns;
        format!(
            "(SELECT MAX({refresh}) FROM {table} WHERE tenant_id = {tenant} AND {period} = {p})"
        )
    }
}

/// The latest refresh date read from the rows through the `_by_period_day` index
/// ([`period_pages_index`]), which the report's schema creates anyway: nothing of its own to
/// create or note. Why: the side table SQLite kept instead cost a statement per written row,
/// and PostgreSQL's `_by_period` `(tenant, period, refresh date)` is a prefix of this index
/// (one seek of either: `Index Only Scan Backward`, 4 buffers, 0.05 ms on 1.12M rows).
#[derive(Debug, Clone, Copy, Default)]
struct RowsByPeriodDay;

impl PeriodRefreshes for RowsByPeriodDay {
    fn create(&self, _: PeriodColumns<'_>) -> Vec<String> {
        Vec::new()
    }

    fn note(&self, _: PeriodColumns<'_>) -> Option<String> {
        None
    }

    fn latest(&self, columns: PeriodColumns<'_>, tenant: &str, period: &str) -> String {
        RowsByPeriod.latest(columns, tenant, period)
    }
}

/// How `report`'s statements find a period's latest refresh date: as `given`
/// (the backend's way), except for per-day reports, whose `_by_period_day`
/// ([`period_pages_index`]) leads with (period, refresh date): one seek of it, and nothing
/// more kept or indexed at write time for them (`RowsByPeriodDay`).
pub fn period_refreshes<'a>(
    report: &ReportType,
    given: &'a dyn PeriodRefreshes,
) -> &'a dyn PeriodRefreshes {
    if period_pages_index(report).is_some() {
        &RowsByPeriodDay
    } else {
        given
    }
}

/// The partial index of rows whose activity date (`column`) is after their refresh date.
pub fn ahead_index(report: &ReportType, column: &str) -> String {
    format!("{}_ahead_{column}", report.table_name())
}

/// SQLite's index of pages in the default order, `{table}_pages`: the natural key's columns,
/// then every other column (the primary key's `id` comes with every entry of a `WITHOUT
/// ROWID` table's index), so that a page is read from it alone. Named where a statement must
/// read this index and no other (`query_sql`'s skip-scan reads it in its order without an
/// `ORDER BY`).
///
/// Why: the `UNIQUE` constraint's index holds the natural key only, so every row of a page
/// was a second seek, into the table by `(tenant_id, id)`; every comparison in those seeks is
/// SQLite's general record comparison (the keys lead with a BLOB, the tenant). On 1 tenant ×
/// 10 years, `reportDate ge 2020-01-01&$top=10`, a page's instructions under callgrind (the
/// whole request) 327k → 270k. Its cost: the index is about the table's size again (1.12M
/// rows: 362 → 431 MB), and every write updates one more index (bench/RESULTS.md, "A page
/// read from one index"). PostgreSQL reads the heap by the natural key's index and has no
/// such index.
pub fn sqlite_pages_index(report: &ReportType) -> (String, Vec<String>) {
    let keys = report.natural_key_indexes();
    let rest = (0..report.properties.len()).filter(|i| !keys.contains(i));
    let columns = keys
        .iter()
        .map(|&i| report.properties[i].column_name().to_owned())
        .chain(std::iter::once("version".to_owned()))
        .chain(rest.map(|i| report.properties[i].column_name().to_owned()))
        .collect();
    (sqlite_pages_index_name(report), columns)
}

/// The name of [`sqlite_pages_index`], without its columns (each skip-scan page names it).
pub fn sqlite_pages_index_name(report: &ReportType) -> String {
    format!("{}_pages", report.table_name())
}

/// The index a series (`crate::series`) reads, by name and columns after `tenant_id`, derived
/// from the grain:
/// - per-day reports: `(dimension, activity date, refresh date, period)` (without the
///   dimension or period when the report has none), `{table}_by_day`. A point is one backward
///   seek: the latest refresh of a date, for a dimension value. It also serves `$filter` on
///   the activity date (with the refresh date inside, `$count` of a date range reads it alone),
///   so it replaced the history index `(tenant_id, report_date, report_period)` of schema
///   versions before 7 (SQLite) and 5 (PostgreSQL): no import pays for one more index.
/// - per-dimension reports: `(dimension, refresh date)`, `{table}_by_dimension`, which also
///   lists the dimension values (a loose index scan); their tables are small.
/// - per-period reports: none of their own; the natural key `(refresh date, period)` (SQLite)
///   or `_by_period` (PostgreSQL) serves them.
pub fn series_index(report: &ReportType) -> Option<(String, Vec<String>)> {
    let table = report.table_name();
    let column = |i: usize| report.properties[i].column_name().to_owned();
    let dimension = report
        .dimension
        .and_then(|d| report.property_index(d))
        .map(column);
    let refresh = column(report.refresh_date_index());
    match report.grain {
        Grain::PerDay => {
            let mut columns: Vec<String> = dimension.into_iter().collect();
            columns.extend(report.activity_date_index().map(column));
            columns.push(refresh);
            columns.extend(report.period_index().map(column));
            Some((format!("{table}_by_day"), columns))
        }
        Grain::PerDimension => Some((
            format!("{table}_by_dimension"),
            dimension.into_iter().chain([refresh]).collect(),
        )),
        Grain::PerPeriod => None,
    }
}

/// The index of a per-day report's rows of one period in the default order, by name and
/// columns after `tenant_id`: the period, then the natural key's other columns in its order
/// (refresh date, activity date, dimension), `{table}_by_period_day`. `None` for other
/// reports. Why: a `$filter` of one period (`reportPeriod eq '7'`, with or without a
/// `reportDate` floor) in the default order read the natural key from the refresh floor and
/// kept 7 of every refresh's 307 rows (D7, D30, D90, D180): ~600 index entries for a page of
/// 11 (p99 28–77 ms at 32 connections, 1,000 tenants × 1 year); through this index a page is
/// a page of entries (100 tenants × 1 year, 32 connections, load 7–9 on 2 cores: 1.7k → 8.6k
/// req/s, p99 67 → 20 ms; a narrow range 0.65k → 7.0k req/s). Its cost, files +27 %; imports
/// pay nothing, as the side table of refresh dates it replaces for these reports
/// ([`period_refreshes`]) cost as much: fresh imports of 1.12M rows, medians of 10 runs
/// interleaved (load ~1.5): without the index 184k rows/s, with it and the side table 146k,
/// with it alone 190k.
///
/// PostgreSQL has it too since schema version 8, in place of `_by_period` `(tenant, period,
/// refresh date)`, its prefix, which still serves the latest refresh of a period
/// ([`period_refreshes`]). Why: through `_by_period` PostgreSQL sorted each refresh date's
/// rows by date (an incremental sort), and a narrow range (`reportDate ge 2026-10-01 and
/// reportPeriod eq '7'`, 1 tenant × 10 years, 1.12M rows) chose the series index and a
/// top-N sort of 441 rows (496 buffers, 0.93 ms; through this index 0.17 ms, in order).
/// Served (`bench/history.sh`, 32 connections, load 5–8 on 2 cores shared with other work):
/// that narrow range 2.5–2.6k → 5.1–5.7k req/s, p99 20.6–22 → 9.4–10.8 ms (one at a time,
/// 200 requests' mean, 0.88 → 0.5 ms); a wide range of a period 5.1–5.5k → 5.5–5.7k req/s
/// (p99 ~10 ms either way), the whole period 8.1k → 8.5–8.7k (p99 6.9 → 6.5–6.8 ms, as
/// `$top=10`). Its cost: the index is 53 MB where `_by_period` was 12 MB (deduplicated: one
/// entry per refresh date and period), of 208 MB of indexes, and a fresh load of 112k rows
/// (`reportroot seed`, 1 year, medians of 9 interleaved runs) 91k → 88k rows/s.
pub fn period_pages_index(report: &ReportType) -> Option<(String, Vec<String>)> {
    if report.grain != Grain::PerDay {
        return None;
    }
    let period = report.period_index()?;
    Some(natural_key_led_by(report, period, "by_period_day"))
}

/// An index `{table}_{name}` of the natural key's columns with `lead` moved first, by name and
/// columns after `tenant_id`: the rows of one value of `lead` in the natural key's order.
fn natural_key_led_by(report: &ReportType, lead: usize, name: &str) -> (String, Vec<String>) {
    let columns = std::iter::once(lead)
        .chain(
            report
                .natural_key_indexes()
                .into_iter()
                .filter(|&i| i != lead),
        )
        .map(|i| report.properties[i].column_name().to_owned())
        .collect();
    (format!("{}_{name}", report.table_name()), columns)
}

/// The index of a per-day report's rows of one dimension value in the default order,
/// by name and columns after `tenant_id`: the dimension, then the natural key's other columns
/// in its order (refresh date, activity date, period), `{table}_by_dimension_day`. `None` for
/// reports not split by a dimension, or not per day (a per-dimension report's series index,
/// `(dimension, refresh date)`, is already its pages' order).
///
/// Why: a page that pins the dimension (`siteType eq 'Team'`) read the natural-key index in
/// order with the value as a filter, and PostgreSQL 15 has no skip-scan of a B-tree: a value
/// no row has, or one only the latest refreshes have, walked the tenant's whole history (1
/// tenant × 10 years of `oneDriveUsageFileCounts`, 1.12M rows: 30–105 ms, 62–69 req/s at 32
/// connections, p99 0.5–0.7 s). Through this index such a page is one descent and a page of
/// entries. SQLite's skip-scan of these pages (`query_sql::skip_scan`) visited every refresh
/// date of the tenant (16–31 ms, 108–112 req/s); it now visits the value's refresh dates, read
/// from this index. Its cost: 86 MB in PostgreSQL for those 1.12M rows, and fresh loads of
/// these four reports 50–54k → 45–46k rows/s (PostgreSQL, two runs each, interleaved).
pub fn dimension_pages_index(report: &ReportType) -> Option<(String, Vec<String>)> {
    if report.grain != Grain::PerDay {
        return None;
    }
    let dimension = report.dimension.and_then(|d| report.property_index(d))?;
    Some(natural_key_led_by(report, dimension, "by_dimension_day"))
}

/// The indexes older schema versions had and migrations drop as they are no longer created:
/// the activity date's history index, replaced by the series index ([`series_index`]), and
/// `_by_period` of per-day reports, replaced by [`period_pages_index`] (whose prefix it is).
pub fn retired_indexes(report: &ReportType) -> Vec<String> {
    let table = report.table_name();
    let history = report
        .activity_date_index()
        .map(|i| format!("{table}_history_{}", report.properties[i].column_name()));
    let by_period = period_pages_index(report).map(|_| format!("{table}_by_period"));
    let picks = (report.grain == Grain::PerDay).then(|| crate::days::retired_picks_index(report));
    history.into_iter().chain(by_period).chain(picks).collect()
}

/// The `ALTER TABLE` statements that give an older PostgreSQL schema's ordinally ordered text
/// columns, in the report's table and its per-day summary, the `"C"` collation
/// `Dialect::column_definition` now creates them with (schema version 9). The rows stay;
/// PostgreSQL rebuilds the indexes that hold those columns.
pub fn ordinal_text_migration(report: &ReportType) -> Vec<String> {
    let ordinal: Vec<String> = report
        .properties
        .iter()
        .filter(|p| matches!(p.kind, ValueKind::Text | ValueKind::Duration))
        .map(|p| p.column_name().to_owned())
        .collect();
    let alter = |table: &str, columns: &[&String]| {
        (!columns.is_empty()).then(|| {
            let changes: Vec<String> = columns
                .iter()
                .map(|c| format!("ALTER COLUMN {c} TYPE TEXT COLLATE \"C\""))
                .collect();
            format!("ALTER TABLE {table} {}", changes.join(", "))
        })
    };
    let all: Vec<&String> = ordinal.iter().collect();
    let summary = DaysSql::new(report, Dialect::Postgres).and_then(|days| {
        let keys: Vec<&String> = ordinal
            .iter()
            .filter(|c| days.key_columns.contains(c))
            .collect();
        alter(&days.table, &keys)
    });
    alter(report.table_name(), &all)
        .into_iter()
        .chain(summary)
        .collect()
}

/// A subquery giving the latest refresh date of the tenant's rows (of the period, when
/// `period` names its parameter, as `refreshes` finds it).
pub fn latest_refresh(
    report: &ReportType,
    refreshes: &dyn PeriodRefreshes,
    tenant: &str,
    period: Option<&str>,
) -> String {
    let table = report.table_name();
    let refresh = report.properties[report.refresh_date_index()].column_name();
    let period_column = report
        .period_index()
        .map(|i| report.properties[i].column_name());
    match (period_column, period) {
        (Some(column), Some(p)) => refreshes.latest(
            PeriodColumns {
                table,
                period: column,
                refresh,
            },
            tenant,
            p,
        ),
        _ => format!("(SELECT MAX({refresh}) FROM {table} WHERE tenant_id = {tenant})"),
    }
}

/// The names a report's statements are written with.
struct Columns {
    table: String,
    /// Every property's column, in registry order.
    properties: Vec<String>,
    /// The natural key's columns.
    key: Vec<String>,
    refresh: String,
    period: Option<String>,
}

impl Columns {
    fn new(report: &ReportType) -> Columns {
        let properties: Vec<String> = report
            .properties
            .iter()
            .map(|p| p.column_name().to_owned())
            .collect();
        Columns {
            table: report.table_name().to_owned(),
            key: report
                .natural_key_indexes()
                .into_iter()
                .map(|i| properties[i].clone())
                .collect(),
            refresh: properties[report.refresh_date_index()].clone(),
            period: report.period_index().map(|i| properties[i].clone()),
            properties,
        }
    }

    /// `column = ?first AND …` over the natural key.
    fn key_match(&self, dialect: Dialect, first: usize) -> String {
        self.key
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = {}", dialect.param(first + i)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// `?first, ?first+1, …`, one per property.
    fn values_from(&self, dialect: Dialect, first: usize) -> String {
        (0..self.properties.len())
            .map(|i| dialect.param(first + i))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl TableSql {
    /// Derives every statement of `report` in `dialect`, with the latest refresh date of a
    /// period read from the rows ([`RowsByPeriod`]).
    pub fn new(report: &ReportType, dialect: Dialect) -> TableSql {
        TableSql::with_refreshes(report, dialect, &RowsByPeriod)
    }

    /// Derives every statement of `report` in `dialect`, with the latest refresh date of a
    /// period found as `refreshes` does.
    pub fn with_refreshes(
        report: &ReportType,
        dialect: Dialect,
        refreshes: &dyn PeriodRefreshes,
    ) -> TableSql {
        let refreshes = period_refreshes(report, refreshes);
        let names = Columns::new(report);
        let p = |n: usize| dialect.param(n);
        let table = &names.table;
        let columns = format!("id, version, {}", names.properties.join(", "));
        let (mut create, note_refresh) = schema(report, dialect, refreshes, &names);
        let days = DaysSql::new(report, dialect);
        create.extend(days.iter().flat_map(|d| d.create.iter().cloned()));
        let insert = format!(
            "INSERT INTO {table} (tenant_id, id, version, {}) VALUES ({}, {}, 1, {})",
            names.properties.join(", "),
            p(1),
            p(2),
            names.values_from(dialect, 3)
        );
        let by_tenant = |rest: &str| format!("WHERE tenant_id = {} AND {rest}", p(1));
        TableSql {
            upsert: upsert(dialect, &names),
            upsert_many: (dialect == Dialect::Postgres).then(|| upsert_many(report, &names)),
            insert_if_new: format!("{insert} ON CONFLICT DO NOTHING"),
            insert,
            select_by_id: format!(
                "SELECT {columns} FROM {table} {}",
                by_tenant(&format!("id = {}", p(2)))
            ),
            update: update(dialect, &names),
            delete: format!(
                "DELETE FROM {table} {}",
                by_tenant(&format!("id = {}", p(2)))
            ),
            id_by_natural_key: format!(
                "SELECT id FROM {table} {}",
                by_tenant(&names.key_match(dialect, 2))
            ),
            select_by_natural_key: format!(
                "SELECT {columns} FROM {table} {}",
                by_tenant(&names.key_match(dialect, 2))
            ),
            latest: latest(report, dialect, refreshes, &names, &columns),
            note_refresh,
            days,
            note_change: crate::changes::ChangeSql::new(dialect).bump,
            columns,
            create,
            table: names.table.clone(),
        }
    }
}

/// The table and its indexes, and for periodic reports what `refreshes` needs (with the
/// statement that notes a refresh date, if it keeps them apart).
fn schema(
    report: &ReportType,
    dialect: Dialect,
    refreshes: &dyn PeriodRefreshes,
    names: &Columns,
) -> (Vec<String>, Option<String>) {
    let Columns { table, refresh, .. } = names;
    let mut create = vec![table_definition(report, dialect, names)];
    // Queries over history filter on the activity date (`reportDate ge 2025-01-01`), usually
    // with a period; the refresh date already leads the natural-key index, which serves
    // `reportRefreshDate` filters and the default order.
    let period_suffix = names
        .period
        .as_ref()
        .map(|c| format!(", {c}"))
        .unwrap_or_default();
    let activity = report.activity_date_index().map(|i| &names.properties[i]);
    for (property, column) in report.properties.iter().zip(&names.properties) {
        if property.kind == ValueKind::Date && column != refresh && Some(column) != activity {
            create.push(format!(
                "CREATE INDEX IF NOT EXISTS {table}_history_{column} ON {table} (tenant_id, {column}{period_suffix})"
            ));
        }
    }
    if let Some((name, columns)) = series_index(report) {
        create.push(format!(
            "CREATE INDEX IF NOT EXISTS {name} ON {table} (tenant_id, {})",
            columns.join(", ")
        ));
    }
    let pages = period_pages_index(report).into_iter();
    for (name, columns) in pages.chain(dimension_pages_index(report)) {
        create.push(format!(
            "CREATE INDEX IF NOT EXISTS {name} ON {table} (tenant_id, {})",
            columns.join(", ")
        ));
    }
    if dialect == Dialect::Sqlite {
        let (name, columns) = sqlite_pages_index(report);
        create.push(format!(
            "CREATE INDEX IF NOT EXISTS {name} ON {table} (tenant_id, {})",
            columns.join(", ")
        ));
    }
    // Rows whose activity date is after their refresh date: none in Graph's data, so the
    // index is empty and costs imports nothing; `$filter` reads it to bound the refresh
    // date from a `reportDate` floor without ever dropping such a row (see
    // `query_sql::Builder::refresh_floor`).
    if let Some(activity) = report.activity_date_index() {
        let column = &names.properties[activity];
        create.push(format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} (tenant_id, {column}, {refresh}) WHERE {column} > {refresh}",
            ahead_index(report, column)
        ));
    }
    // The latest refresh date of a period, for the report functions: as the backend keeps
    // it (an index of every row, or a side table).
    let Some(period) = &names.period else {
        return (create, None);
    };
    let columns = PeriodColumns {
        table,
        period,
        refresh,
    };
    create.extend(refreshes.create(columns));
    (create, refreshes.note(columns))
}

/// `CREATE TABLE` of a report.
fn table_definition(report: &ReportType, dialect: Dialect, names: &Columns) -> String {
    let mut definition = format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  tenant_id {id} NOT NULL,\n  id {id} NOT NULL,\n  version BIGINT NOT NULL,\n",
        names.table,
        id = dialect.id_type()
    );
    for (property, column) in report.properties.iter().zip(&names.properties) {
        // Counts and durations may be empty (Graph's CSV leaves the cell empty).
        let not_null = if property.kind.is_nullable() {
            ""
        } else {
            " NOT NULL"
        };
        definition.push_str(&format!(
            "  {column} {}{not_null},\n",
            dialect.column_definition(property.kind)
        ));
    }
    // The tenant leads every key so that PostgreSQL tables can be distributed by tenant.
    // In SQLite the table itself is the `(tenant_id, id)` index (`WITHOUT ROWID`): one
    // B-tree fewer for every imported row to go into.
    let without_rowid = match dialect {
        Dialect::Sqlite => " WITHOUT ROWID",
        Dialect::Postgres => "",
    };
    definition.push_str(&format!(
        "  PRIMARY KEY (tenant_id, id),\n  UNIQUE (tenant_id, {})\n){without_rowid}",
        names.key.join(", "),
    ));
    definition
}

/// Insert, or update when the natural key exists and a value differs.
fn upsert(dialect: Dialect, names: &Columns) -> String {
    let Columns {
        table, properties, ..
    } = names;
    let differs = match dialect {
        Dialect::Sqlite => "IS NOT",
        Dialect::Postgres => "IS DISTINCT FROM",
    };
    let joined = |f: &dyn Fn(&String) -> String, by: &str| {
        properties.iter().map(f).collect::<Vec<_>>().join(by)
    };
    format!(
        "INSERT INTO {table} (tenant_id, id, version, {cols}) VALUES ({}, {}, 1, {}) \
         ON CONFLICT (tenant_id, {keys}) DO UPDATE SET version = {table}.version + 1, {sets} \
         WHERE {changed} RETURNING version",
        dialect.param(1),
        dialect.param(2),
        names.values_from(dialect, 3),
        cols = properties.join(", "),
        keys = names.key.join(", "),
        sets = joined(&|c| format!("{c} = excluded.{c}"), ", "),
        changed = joined(&|c| format!("{table}.{c} {differs} excluded.{c}"), " OR "),
    )
}

/// [`TableSql::upsert_many`]: the rows as arrays, one per column, typed as the columns are.
fn upsert_many(report: &ReportType, names: &Columns) -> String {
    let Columns {
        table, properties, ..
    } = names;
    let dialect = Dialect::Postgres;
    let arrays: Vec<String> = report
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| format!("${}::{}[]", i + 3, dialect.column_type(p.kind)))
        .collect();
    let joined = |f: &dyn Fn(&String) -> String, by: &str| {
        properties.iter().map(f).collect::<Vec<_>>().join(by)
    };
    format!(
        "INSERT INTO {table} (tenant_id, id, version, {cols}) \
         SELECT $1, given.id, 1, {given_cols} FROM unnest($2::uuid[], {arrays}) AS given(id, {cols}) \
         ON CONFLICT (tenant_id, {keys}) DO UPDATE SET version = {table}.version + 1, {sets} \
         WHERE {changed} RETURNING id, version",
        cols = properties.join(", "),
        given_cols = joined(&|c| format!("given.{c}"), ", "),
        arrays = arrays.join(", "),
        keys = names.key.join(", "),
        sets = joined(&|c| format!("{c} = excluded.{c}"), ", "),
        changed = joined(
            &|c| format!("{table}.{c} IS DISTINCT FROM excluded.{c}"),
            " OR "
        ),
    )
}

/// Bump the version and set every property, if the version is still the one read.
fn update(dialect: Dialect, names: &Columns) -> String {
    let p = |n: usize| dialect.param(n);
    let sets = names
        .properties
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = {}", p(4 + i)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "UPDATE {} SET version = version + 1, {sets} WHERE tenant_id = {} AND id = {} AND version = {}",
        names.table,
        p(1),
        p(2),
        p(3)
    )
}

/// The report function's rows, in the function's order (id last, for a total order).
fn latest(
    report: &ReportType,
    dialect: Dialect,
    refreshes: &dyn PeriodRefreshes,
    names: &Columns,
    columns: &str,
) -> String {
    let p = |n: usize| dialect.param(n);
    let order = report
        .function
        .order_by
        .iter()
        .filter_map(|key| {
            let column = &names.properties[report.property_index(key.property)?];
            let direction = if key.descending { "DESC" } else { "ASC" };
            Some(format!("{column} {direction}"))
        })
        .chain(std::iter::once("id".to_owned()))
        .collect::<Vec<_>>()
        .join(", ");
    let period_filter = names
        .period
        .as_ref()
        .map(|c| format!(" AND {c} = {}", p(2)))
        .unwrap_or_default();
    let latest = latest_refresh(
        report,
        refreshes,
        &p(1),
        names.period.as_ref().map(|_| p(2)).as_deref(),
    );
    format!(
        "SELECT {columns} FROM {} WHERE tenant_id = {}{period_filter} AND {} = {latest} ORDER BY {order}",
        names.table,
        p(1),
        names.refresh,
    )
}

/// The natural key's property names, for conflict messages: `(reportRefreshDate, productType)`.
pub fn natural_key_label(report: &ReportType) -> String {
    format!("({})", report.natural_key.join(", "))
}

#[cfg(test)]
mod tests {
    use reportroot_model::find_report;

    use super::*;

    /// PostgreSQL cuts identifiers at 63 bytes (with a NOTICE), and index names share one
    /// namespace with tables: two names equal once cut would make `CREATE INDEX IF NOT EXISTS`
    /// skip the second index silently.
    #[test]
    fn every_postgres_relation_name_is_distinct_within_63_bytes() {
        let mut seen = std::collections::HashMap::new();
        for report in reportroot_model::REPORTS {
            let sql = TableSql::new(report, Dialect::Postgres);
            let days = sql
                .days
                .iter()
                .flat_map(|d| d.create.iter().map(String::as_str));
            for statement in sql.create.iter().map(String::as_str).chain(days) {
                for marker in ["CREATE TABLE IF NOT EXISTS ", "CREATE INDEX IF NOT EXISTS "] {
                    for part in statement.split(marker).skip(1) {
                        let name = part.split([' ', '(']).next().unwrap_or_default();
                        let cut = &name[..name.len().min(63)];
                        if let Some(other) = seen.insert(cut.to_owned(), name.to_owned()) {
                            assert_eq!(other, name, "two relations are {cut} in PostgreSQL");
                        }
                    }
                }
            }
        }
        assert!(seen.len() > 61 * 3, "{} names", seen.len());
        // A migration drops the retired indexes before it creates the others, so a retired
        // name that is a created one once cut must be its replacement: `skype_for_business_
        // participant_activity_minute_counts_by_period` (63 bytes) is its `_by_period_day`.
        for report in reportroot_model::REPORTS {
            let replacement = period_pages_index(report).map(|(name, _)| name);
            for retired in retired_indexes(report) {
                let cut = &retired[..retired.len().min(63)];
                if let Some(created) = seen.get(cut) {
                    assert_eq!(Some(created), replacement.as_ref(), "{retired} is {cut}");
                }
            }
        }
    }

    #[test]
    fn derives_tables_from_the_registry() {
        let report = find_report("office365ActiveUserCounts").expect("report");
        let sql = TableSql::new(report, Dialect::Postgres);
        assert!(sql.create[0].contains("report_refresh_date DATE NOT NULL"));
        assert!(
            sql.create[0].contains("  exchange BIGINT,\n"),
            "{}",
            sql.create[0]
        );
        assert!(sql.create[0]
            .contains("UNIQUE (tenant_id, report_refresh_date, report_date, report_period)"));
        assert!(sql.latest.contains("report_period = $2"));
        assert!(sql.latest.ends_with("ORDER BY report_date DESC, id"));
        // A period's pages and latest refresh read `_by_period_day`; `_by_period`, its
        // prefix, is retired (schema version 8).
        assert!(sql.create.iter().any(|c| c.contains(
            "office365_active_user_counts_by_period_day ON office365_active_user_counts \
             (tenant_id, report_period, report_refresh_date, report_date)"
        )));
        assert!(!sql.create.iter().any(|c| c.contains("_by_period ")));
        assert!(retired_indexes(report).contains(&"office365_active_user_counts_by_period".into()));
        // Other reports of a period keep `_by_period`.
        let other = reportroot_model::REPORTS
            .iter()
            .find(|r| r.period_index().is_some() && r.grain != Grain::PerDay)
            .expect("a report of periods without days");
        let other_sql = TableSql::new(other, Dialect::Postgres);
        assert!(other_sql.create.iter().any(|c| c.contains("_by_period ON")));
        assert!(!retired_indexes(other)
            .iter()
            .any(|i| i.ends_with("_by_period")));
        let sqlite = TableSql::new(report, Dialect::Sqlite);
        assert!(sqlite.insert.contains("?12"));
        assert!(sqlite.create[0].ends_with(") WITHOUT ROWID"));
        assert!(sqlite.create[0]
            .contains("UNIQUE (tenant_id, report_refresh_date, report_date, report_period)"));
    }
}
