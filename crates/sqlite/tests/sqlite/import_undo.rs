//! A load that spans several transactions and then fails is undone: rows it inserted are
//! deleted, rows it updated get their old values and versions back, and its journal and lock
//! file are gone. Rows another writer changed after the load wrote them keep that change.
#![expect(clippy::unwrap_used)]

use std::time::Duration;

use reportroot_model::{find_report, Date, Entity, ReportType, TenantId, Value};
use reportroot_sqlite::{Durability, SqliteStorage};
use reportroot_storage::{ListQuery, LoadAborted, RowChunks, Storage, StorageError};
use rusqlite::Connection;

fn activations() -> &'static ReportType {
    find_report("office365ActivationsUserCounts").unwrap()
}

fn row(product: usize, assigned: i64) -> Vec<Value> {
    vec![
        Value::Date(Date::parse("2025-01-31").unwrap()),
        Value::Text(format!("P{product}")),
        Value::Int(assigned),
        Value::Int(1),
        Value::Int(0),
    ]
}

fn product(entity: &Entity) -> &Value {
    &entity.values[1]
}

/// What another writer does while the load waits for its second chunk: counts the rows it
/// sees, and changes P50 (updated by the load) and P500 (inserted by the load) as an API
/// PATCH would.
fn meddle(connection: &Connection, tenant: TenantId) -> i64 {
    let table = activations().table_name();
    let count = || -> i64 {
        connection
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE tenant_id = ?1"),
                [tenant.0],
                |row| row.get(0),
            )
            .unwrap()
    };
    // Chunk 1 is committed soon (the load never waits for this producer with the lock).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count() < 1100 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen = count();
    connection
        .execute(
            &format!(
                "UPDATE {table} SET version = version + 1, assigned = 42 \
                 WHERE tenant_id = ?1 AND product_type IN ('P50', 'P500')"
            ),
            [tenant.0],
        )
        .unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_failing_after_several_transactions_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    let report = activations();
    let tenant = TenantId(uuid::Uuid::new_v4());
    storage
        .upsert_many(tenant, report, (0..100).map(|n| row(n, 7)).collect())
        .await
        .unwrap();
    let before = storage
        .list(tenant, report, &ListQuery::default())
        .await
        .unwrap();

    // Chunk 1 updates P0–P99 and inserts P100–P1099; then, while the producer is slow, another
    // writer changes two rows; chunk 2 updates P0–P1099 again, and the parser finds a bad row.
    let other = Connection::open(&path).unwrap();
    other.busy_timeout(Duration::from_secs(10)).unwrap();
    // Each raise of the tenant's change version logs P0's count as it is then: the load's
    // raises see 8 or 9, the undo's last one 7 again (an API answer cached before the undo
    // would otherwise outlive it).
    let table = report.table_name();
    other
        .execute_batch(&format!(
            "CREATE TABLE raises (n INTEGER PRIMARY KEY, p0 INTEGER); \
             CREATE TRIGGER log_raise AFTER UPDATE ON reportroot_tenant_changes BEGIN \
             INSERT INTO raises (p0) SELECT assigned FROM {table} WHERE product_type = 'P0'; END;"
        ))
        .unwrap();
    let version_before = storage.tenant_version(tenant).await.unwrap();
    let (seen_sender, seen) = std::sync::mpsc::channel();
    let chunk = |assigned: i64| (0..1100).map(|n| row(n, assigned)).collect::<Vec<_>>();
    let items: Vec<Result<Vec<Vec<Value>>, LoadAborted>> = vec![
        Ok(chunk(8)),
        Ok(chunk(9)),
        Err(LoadAborted("bad row".into())),
    ];
    let chunks: RowChunks = Box::new(items.into_iter().enumerate().map(move |(i, item)| {
        if i == 1 {
            let _ = seen_sender.send(meddle(&other, tenant));
        }
        item
    }));
    let loaded = storage.upsert_stream(tenant, report, chunks).await;
    assert!(
        matches!(&loaded, Err(StorageError::Aborted(why)) if why == "bad row"),
        "{loaded:?}"
    );
    assert_eq!(
        seen.try_recv().unwrap(),
        1100,
        "chunk 1 was committed before chunk 2 came"
    );

    let after = storage
        .list(tenant, report, &ListQuery::default())
        .await
        .unwrap();
    let p = |n: usize| Value::Text(format!("P{n}"));
    // P500, inserted by the load and then changed by the other writer, stays as it left it;
    // so does P50 (version 1, 2 by the load, 3 by the other writer).
    let kept: Vec<&Entity> = after.iter().filter(|e| *product(e) == p(500)).collect();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].version, &kept[0].values[2]), (2, &Value::Int(42)));
    let p50 = after.iter().find(|e| *product(e) == p(50)).unwrap();
    assert_eq!((p50.version, &p50.values[2]), (3, &Value::Int(42)));
    // Everything else is as before the load.
    let rest: Vec<&Entity> = after
        .iter()
        .filter(|e| *product(e) != p(500) && *product(e) != p(50))
        .collect();
    let before_rest: Vec<&Entity> = before.iter().filter(|e| *product(e) != p(50)).collect();
    assert!(
        rest == before_rest,
        "{} other rows after, {} before",
        rest.len(),
        before_rest.len()
    );

    let connection = Connection::open(&path).unwrap();
    let raises: Vec<i64> = connection
        .prepare("SELECT p0 FROM raises ORDER BY n")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        raises.iter().any(|p0| [8, 9].contains(p0)),
        "the load's transactions raise the version: {raises:?}"
    );
    assert_eq!(
        raises.last(),
        Some(&7),
        "the undo raises the version: {raises:?}"
    );
    assert_eq!(
        storage.tenant_version(tenant).await.unwrap(),
        version_before + raises.len() as i64
    );
    let journal: (i64, i64) = connection
        .query_row(
            "SELECT (SELECT count(*) FROM reportroot_imports), \
             (SELECT count(*) FROM reportroot_import_undo)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(journal, (0, 0), "no registration or journal left");
    let locks = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".lock")
        })
        .count();
    assert_eq!(locks, 0, "no lock file left");
}
