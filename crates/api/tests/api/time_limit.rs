//! A read that runs past the storage's time limit (here a millisecond instead of 2 s; on
//! SQLite a microsecond, as its scan of 10,000 rows, read from the `_pages` index, can end
//! within a millisecond) is
//! stopped and answered `503 serviceNotAvailable` with `Retry-After`, on every backend: a
//! `$filter` on a count that no index serves, over 10,000 rows. The connection it ran on
//! serves the next request as before: on PostgreSQL (a pool of one) a write after it is not
//! caught in the stopped read's read-only transaction.
#![expect(clippy::unwrap_used)]

use crate::common;

on_both_backends!(a_scan_past_the_time_limit_is_a_503);

use std::sync::Arc;
use std::time::Duration;

use common::*;
use reportroot_storage::Storage;

const LIMIT: Duration = Duration::from_millis(1);
/// SQLite checks the limit every few thousand instructions of a statement: no scan of 10,000
/// rows ends before its first check, a microsecond after it started.
const SQLITE_LIMIT: Duration = Duration::from_micros(1);

async fn a_scan_past_the_time_limit_is_a_503(backend: Backend) {
    let (storage, db, dir): (Arc<dyn Storage>, Db, Option<tempfile::TempDir>) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("limit.db");
            let storage = reportroot_sqlite::SqliteStorage::open(
                &path,
                reportroot_sqlite::Durability::Process,
            )
            .unwrap()
            .with_read_time_limit(SQLITE_LIMIT);
            (Arc::new(storage), Db::Sqlite(path), Some(dir))
        }
        Backend::Postgres | Backend::Citus => {
            let url = match backend {
                Backend::Postgres => postgres_url(),
                _ => citus_url(),
            };
            let Some(url) = url else {
                announce_skip("the time limit");
                return;
            };
            let storage = reportroot_postgres::PostgresStorage::connect(&url, 1)
                .await
                .unwrap()
                .with_read_time_limit(LIMIT);
            (Arc::new(storage), Db::Postgres(url), None)
        }
    };
    let t = tenant();
    store_daily_rows(storage.as_ref(), t.id, 10_000).await;
    let mut app = spawn_over(storage, db, |_| {}).await;
    app._dir = dir;
    let response = app
        .get(
            "/v1.0/reports/office365ActiveUserCounts?$filter=teams%20gt%20100&$count=true",
            &t.read,
        )
        .await;
    assert!(
        response.headers().contains_key("retry-after"),
        "{}",
        response.status()
    );
    let message = assert_error(response, 503, "serviceNotAvailable").await;
    assert!(message.contains("narrow $filter"), "{message}");
    let body = active_users("2026-01-02", "2026-01-01", "7");
    let created = app
        .post("/v1.0/reports/office365ActiveUserCounts", &t.write, &body)
        .await;
    assert_eq!(created.status(), 201);
}
