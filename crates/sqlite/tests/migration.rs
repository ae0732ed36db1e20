//! A database written by schema version 1 (TEXT ids, rowid tables) is rebuilt on open and keeps
//! every row: ids, versions and values.
#![expect(clippy::unwrap_used)]

use reportroot_model::{TenantId, REPORTS};
use reportroot_sqlite::{Durability, SqliteStorage, SCHEMA_VERSION};
use reportroot_storage::{ListQuery, Precondition, Scope, Storage};
use rusqlite::Connection;
use uuid::Uuid;

/// `(tenant, id, version)` of every row of `table`, read as version 1 stored them.
fn version_1_rows(connection: &Connection, table: &str) -> Vec<(Uuid, Uuid, i64)> {
    let mut statement = connection
        .prepare(&format!(
            "SELECT tenant_id, id, version FROM {table} ORDER BY tenant_id, id"
        ))
        .unwrap();
    statement
        .query_map([], |row| {
            let tenant: String = row.get(0)?;
            let id: String = row.get(1)?;
            Ok((
                Uuid::parse_str(&tenant).unwrap(),
                Uuid::parse_str(&id).unwrap(),
                row.get(2)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_version_1_file_is_rebuilt_with_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let before: Vec<Vec<(Uuid, Uuid, i64)>> = {
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(include_str!("fixtures/schema-v1.sql"))
            .unwrap();
        REPORTS
            .iter()
            .map(|r| version_1_rows(&connection, &r.table_name()))
            .collect()
    };
    assert!(before.iter().all(|rows| !rows.is_empty()));

    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    for (report, rows) in REPORTS.iter().zip(&before) {
        let mut tenants: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        tenants.dedup();
        let mut after = Vec::new();
        for tenant in tenants {
            let listed = storage
                .list(TenantId(tenant), report, &ListQuery::default())
                .await
                .unwrap();
            after.extend(listed.iter().map(|e| (tenant, e.id, e.version)));
            let latest = storage
                .list(
                    TenantId(tenant),
                    report,
                    &ListQuery {
                        scope: Scope::Latest { period: None },
                        ..ListQuery::default()
                    },
                )
                .await
                .unwrap();
            assert!(!latest.is_empty(), "{}", report.entity);
        }
        after.sort();
        assert_eq!(&after, rows, "{}", report.entity);
    }

    // A migrated row is read, updated and deleted by id like any other.
    let report = &REPORTS[1];
    let (tenant, id, version) = before[1][0];
    let tenant = TenantId(tenant);
    let entity = storage.get(tenant, report, id).await.unwrap().unwrap();
    assert_eq!(entity.version, version);
    let updated = storage
        .update(
            tenant,
            report,
            id,
            &[],
            Precondition::Version(entity.version),
        )
        .await
        .unwrap();
    assert_eq!(updated.version, version + 1);
    drop(storage);

    let connection = Connection::open(&path).unwrap();
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let leftovers: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_v1' OR name LIKE '%_by_period'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(leftovers, 0);
    drop(connection);
    // Opening again changes nothing.
    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    assert!(storage.get(tenant, report, id).await.unwrap().is_some());
}
