//! SQLite's side table of refresh dates: how this backend finds the latest report of a period.

use reportroot_model::ReportType;
use reportroot_storage::sql::{Dialect, PeriodColumns, PeriodRefreshes, TableSql};

/// Keeps the refresh dates each period has in a small side table, `{table}_refreshes`, noted
/// after every insert or update.
///
/// Why not an index of every row, as PostgreSQL has: an index entry per row was an eighth of
/// a bulk import, and almost every row repeats the previous row's (period, refresh date).
/// Rows deleted later may leave a stale entry, so a lookup checks that the date still has
/// rows (see [`SideTable::latest`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SideTable;

impl PeriodRefreshes for SideTable {
    fn create(&self, columns: PeriodColumns<'_>) -> Vec<String> {
        let PeriodColumns {
            table,
            period,
            refresh,
        } = columns;
        vec![format!(
            "CREATE TABLE IF NOT EXISTS {table}_refreshes (\n  tenant_id BLOB NOT NULL,\n  {period} TEXT NOT NULL,\n  {refresh} TEXT NOT NULL,\n  PRIMARY KEY (tenant_id, {period}, {refresh})\n) WITHOUT ROWID"
        )]
    }

    fn note(&self, columns: PeriodColumns<'_>) -> Option<String> {
        let PeriodColumns {
            table,
            period,
            refresh,
        } = columns;
        Some(format!(
            "INSERT OR IGNORE INTO {table}_refreshes (tenant_id, {period}, {refresh}) VALUES (?1, ?2, ?3)"
        ))
    }

    /// The newest noted date that still has rows of the period.
    fn latest(&self, columns: PeriodColumns<'_>, tenant: &str, p: &str) -> String {
        let PeriodColumns {
            table,
            period,
            refresh,
        } = columns;
        format!(
            "(SELECT r.{refresh} FROM {table}_refreshes r WHERE r.tenant_id = {tenant} AND r.{period} = {p} \
             AND EXISTS (SELECT 1 FROM {table} x WHERE x.tenant_id = {tenant} AND x.{refresh} = r.{refresh} \
             AND x.{period} = {p}) ORDER BY r.{refresh} DESC LIMIT 1)"
        )
    }
}

/// Every statement of `report` as this backend runs it.
pub fn table_sql(report: &ReportType) -> TableSql {
    TableSql::with_refreshes(report, Dialect::Sqlite, &SideTable)
}
