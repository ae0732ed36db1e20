//! Dropping the storage stops and joins the background checkpointer (whose open connection
//! would otherwise keep the WAL alive), so every committed row ends up in the database file
//! itself and no WAL is left behind.
#![expect(clippy::unwrap_used)]

use reportroot_model::{Date, TenantId, Value, REPORTS};
use reportroot_sqlite::{Durability, SqliteStorage};
use reportroot_storage::Storage;
use uuid::Uuid;

#[tokio::test]
async fn closing_leaves_everything_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    let report = &REPORTS[0];
    let rows: Vec<Vec<Value>> = (0..5_000)
        .map(|n| {
            vec![
                Value::Date(Date::parse("2025-01-31").unwrap()),
                Value::Text(format!("PRODUCT {n}")),
                Value::Int(n),
                Value::Int(1),
                Value::Int(0),
            ]
        })
        .collect();
    let tenant = TenantId(Uuid::new_v4());
    storage.upsert_many(tenant, report, rows).await.unwrap();
    drop(storage);

    let wal = dir.path().join("c.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the WAL was left behind"
    );
    let connection = rusqlite::Connection::open(&path).unwrap();
    let count: i64 = connection
        .query_row(
            &format!("SELECT COUNT(*) FROM {}", report.table_name()),
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(count, 5_000);
}
