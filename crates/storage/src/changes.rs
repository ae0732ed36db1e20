//! Each tenant's change version: `reportroot_tenant_changes (tenant_id, version)`, raised by
//! one in the same transaction as every write that changes the tenant's report rows (a POST,
//! PATCH or DELETE, each transaction of a bulk load or import, each step of an import's undo).
//! A tenant without a row has version 0.
//!
//! Why: the API keeps rendered report answers ([`Storage::tenant_version`]'s caller). Writes
//! through the same instance tell it at once; writes by another instance on the same
//! PostgreSQL, or a CLI `import` into the same SQLite file, do not. With this version an
//! answer lives until the tenant's rows change, and checking costs one primary-key lookup per
//! tenant per second instead of recomputing every answer each second.
//!
//! On Citus the table is distributed by `tenant_id` and co-located with the report tables,
//! so the raise runs on the write's own shard group.
//!
//! [`Storage::tenant_version`]: crate::Storage::tenant_version

use crate::sql::Dialect;

/// The table's name.
pub const CHANGES_TABLE: &str = "reportroot_tenant_changes";

/// The statements of the change versions in one dialect.
#[derive(Debug, Clone)]
pub struct ChangeSql {
    /// `CREATE TABLE IF NOT EXISTS`.
    pub create: String,
    /// Raises the tenant's version by one (from 0 when it has no row): `(tenant)`.
    pub bump: String,
    /// The tenant's version, 0 without a row (always one row): `(tenant)`.
    pub read: String,
}

impl ChangeSql {
    /// The statements in `dialect`.
    pub fn new(dialect: Dialect) -> ChangeSql {
        let id = dialect.id_type();
        let without_rowid = match dialect {
            Dialect::Sqlite => " WITHOUT ROWID",
            Dialect::Postgres => "",
        };
        let p = dialect.param(1);
        ChangeSql {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {CHANGES_TABLE} (tenant_id {id} NOT NULL PRIMARY KEY, \
                 version BIGINT NOT NULL){without_rowid}"
            ),
            bump: format!(
                "INSERT INTO {CHANGES_TABLE} (tenant_id, version) VALUES ({p}, 1) \
                 ON CONFLICT (tenant_id) DO UPDATE SET version = {CHANGES_TABLE}.version + 1"
            ),
            // An aggregate: one row even for a tenant without one, still one index seek.
            read: format!(
                "SELECT COALESCE(MAX(version), 0) FROM {CHANGES_TABLE} WHERE tenant_id = {p}"
            ),
        }
    }
}
