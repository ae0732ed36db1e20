//! Opening a database while another connection (the server, another command) writes to it
//! waits for the write lock instead of failing with "database is locked".
#![expect(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use reportroot_sqlite::{Durability, SqliteStorage};
use rusqlite::Connection;

/// Holds the write lock of `path` for `hold` in another thread (a write transaction that
/// inserts a row), and returns once the lock is taken.
fn hold_write_lock(path: &Path, hold: Duration) -> std::thread::JoinHandle<()> {
    let holder = Connection::open(path).unwrap();
    holder.busy_timeout(Duration::from_secs(10)).unwrap();
    holder
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS busy_probe (n INTEGER); \
             BEGIN IMMEDIATE; INSERT INTO busy_probe VALUES (1);",
        )
        .unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(hold);
        holder.execute_batch("COMMIT").unwrap();
    })
}

#[test]
fn open_waits_for_a_writer_holding_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    drop(SqliteStorage::open(&path, Durability::Process).unwrap());
    for round in 0..4 {
        let holder = hold_write_lock(&path, Duration::from_millis(400));
        let opened = SqliteStorage::open(&path, Durability::Process);
        assert!(opened.is_ok(), "round {round}: {:?}", opened.err());
        holder.join().unwrap();
    }
}

#[test]
fn open_succeeds_beside_a_loop_of_short_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    drop(SqliteStorage::open(&path, Durability::Process).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let connection = Connection::open(&path).unwrap();
            connection.busy_timeout(Duration::from_secs(10)).unwrap();
            connection
                .execute_batch("CREATE TABLE IF NOT EXISTS busy_probe (n INTEGER)")
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                connection
                    .execute_batch("BEGIN IMMEDIATE; INSERT INTO busy_probe VALUES (1); COMMIT;")
                    .unwrap();
            }
        })
    };
    let mut failures = Vec::new();
    for _ in 0..30 {
        if let Err(error) = SqliteStorage::open(&path, Durability::Process) {
            failures.push(error.to_string());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(failures.is_empty(), "{failures:?}");
}
