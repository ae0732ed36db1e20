//! Bulk loads in short transactions, undone as a whole when they fail.
//!
//! Why: one transaction per file held SQLite's single write lock for as long as the file took
//! (7.6 s for 2.5M rows), and every other writer — the server's — timed out behind it. A load
//! now commits a transaction every [`CHUNK_BUDGET`] of work and pauses [`CHUNK_PAUSE`] so that
//! a waiting writer gets the lock (writers poll for it every millisecond, see
//! `crate::wait_for_lock`). It stays all-or-nothing with an undo journal in the same database:
//!
//! - A load that fits in one transaction needs nothing more (SQLite's own atomicity).
//! - Otherwise, before its first commit, the loader creates and locks (`File::lock`) a lock file
//!   next to the database, `<database>.import-<id>.lock`, and registers the load in
//!   `reportroot_imports` in that first transaction. Every transaction also records in
//!   `reportroot_import_undo` what it changed: the ids it inserted and the old version and
//!   values of the rows it updated.
//! - Success deletes the `reportroot_imports` row (the commit point of the whole load), then
//!   the journal in short transactions, then the lock file.
//! - Failure (a bad row found by the parser after chunks were committed, a database error)
//!   replays the journal backwards in short transactions, one entry per transaction together
//!   with the entry's deletion, so an undo interrupted half-way resumes where it stopped.
//! - A loader that died (`kill -9`) is undone by the next [`recover`] (at every open) that can
//!   take its lock file's lock: the operating system releases the lock with the process, so
//!   taking it proves the loader is gone; a running loader's import is never touched.
//!
//! Rows another writer changed after the load wrote them (their version moved on) are left as
//! that writer left them: the later write wins, as it would have after a successful load.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reportroot_model::{Date, Entity, ReportType, Value, REPORTS};
use reportroot_storage::engine::{decode_entity, row_params};
use reportroot_storage::StorageError;
use rusqlite::{Connection, OptionalExtension, Transaction};
use uuid::Uuid;

use crate::{backend, bind};

/// Work per transaction of a load: a concurrent writer waits up to about one of them. Why
/// not shorter: every commit rewrites the pages it dirtied (the history index takes rows all
/// over), and a commit by another process empties the loader's page cache. Measured on the
/// 1.1M-row file (bench/NOTES.md): 50 ms wrote 1.16 GB instead of 0.49 GB (one transaction)
/// and imported at 99k rows/s beside a server taking POSTs; 100 ms wrote 0.92 GB, 116k rows/s,
/// POST max 112 ms.
pub(crate) const CHUNK_BUDGET: Duration = Duration::from_millis(100);

/// Pause between the transactions of a load (and of an undo), without the write lock. Two of
/// the 1 ms polls of a waiting writer (`crate::wait_for_lock`) fit in it, so that writer gets
/// the lock before the load takes it again.
pub(crate) const CHUNK_PAUSE: Duration = Duration::from_millis(2);

/// The tables of the journal, created by the migration.
pub(crate) const JOURNAL_TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS reportroot_imports (\n  import_id BLOB PRIMARY KEY,\n  report TEXT NOT NULL,\n  tenant_id BLOB NOT NULL\n) WITHOUT ROWID",
    // A rowid table: entries are large blobs, and the rowid orders them.
    "CREATE TABLE IF NOT EXISTS reportroot_import_undo (\n  import_id BLOB NOT NULL,\n  inserted BLOB NOT NULL,\n  updated BLOB NOT NULL\n)",
    "CREATE INDEX IF NOT EXISTS reportroot_import_undo_by_import ON reportroot_import_undo (import_id)",
];

/// The lock file that proves a load's process is alive while it holds the lock.
#[derive(Debug)]
pub(crate) struct ImportLock {
    /// The load's id in `reportroot_imports`.
    pub(crate) id: Uuid,
    path: PathBuf,
    /// Holds the lock; closing it (or the process dying) releases it.
    _file: File,
}

fn lock_path(database: &Path, id: Uuid) -> PathBuf {
    let mut name = OsString::from(database.as_os_str());
    name.push(format!(".import-{id}.lock"));
    PathBuf::from(name)
}

fn io_error(path: &Path, error: std::io::Error) -> StorageError {
    StorageError::backend(path.display().to_string(), error)
}

impl ImportLock {
    /// Creates and locks the lock file of a new load.
    pub(crate) fn create(database: &Path) -> Result<Self, StorageError> {
        let id = Uuid::now_v7();
        let path = lock_path(database, id);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        file.lock().map_err(|e| io_error(&path, e))?;
        Ok(ImportLock {
            id,
            path,
            _file: file,
        })
    }

    /// The lock of load `id` if its process is gone (nobody holds it), `None` if it runs.
    /// A missing file (a database copied without its lock files) counts as gone.
    fn take_if_abandoned(database: &Path, id: Uuid) -> Result<Option<Self>, StorageError> {
        let path = lock_path(database, id);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ImportLock {
                id,
                path,
                _file: file,
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(io_error(&path, e)),
        }
    }

    /// Removes the lock file, then releases the lock. Call only once the load is committed or
    /// undone in the database: a process that finds the file gone does nothing harmful then.
    pub(crate) fn release(self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove an import lock file");
        }
    }
}

/// What one transaction of a load changed, as the undo needs it.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// Inserted ids, 16 bytes each.
    inserted: Vec<u8>,
    /// Updated rows before the update: see [`encode_row`].
    updated: Vec<u8>,
}

impl Journal {
    pub(crate) fn inserted(&mut self, id: Uuid) {
        self.inserted.extend_from_slice(id.as_bytes());
    }

    pub(crate) fn updated(&mut self, old: &Entity) {
        encode_row(old, &mut self.updated);
    }

    /// Records this transaction's changes under load `id`.
    pub(crate) fn write(&self, tx: &Transaction<'_>, id: Uuid) -> Result<(), StorageError> {
        if self.inserted.is_empty() && self.updated.is_empty() {
            return Ok(());
        }
        tx.prepare_cached(
            "INSERT INTO reportroot_import_undo (import_id, inserted, updated) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute((id, &self.inserted, &self.updated)))
        .map(|_| ())
        .map_err(backend)
    }
}

/// Appends `row` as: id (16 bytes), version (i64 LE), then each value: `i` and an i64 LE,
/// `t` and a u32 LE length and UTF-8, `d` and 10 bytes of ISO date, or `n` alone for null.
fn encode_row(row: &Entity, out: &mut Vec<u8>) {
    out.extend_from_slice(row.id.as_bytes());
    out.extend_from_slice(&row.version.to_le_bytes());
    for value in &row.values {
        match value {
            Value::Null => out.push(b'n'),
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Text(text) => {
                out.push(b't');
                let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&length.to_le_bytes());
                out.extend_from_slice(&text.as_bytes()[..length as usize]);
            }
            Value::Date(date) => {
                out.push(b'd');
                out.extend_from_slice(&date.iso_bytes());
            }
        }
    }
}

/// Reads the rows [`encode_row`] wrote, `values` values each.
fn decode_rows(bytes: &[u8], values: usize) -> Result<Vec<Entity>, StorageError> {
    let mut reader = Reader(bytes);
    let mut rows = Vec::new();
    while !reader.0.is_empty() {
        let id = Uuid::from_slice(reader.take(16)?).map_err(backend)?;
        let version = i64::from_le_bytes(reader.array()?);
        let mut row = Vec::with_capacity(values);
        for _ in 0..values {
            row.push(reader.value()?);
        }
        rows.push(Entity {
            id,
            version,
            values: row,
        });
    }
    Ok(rows)
}

/// A cursor over an encoded journal entry.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if self.0.len() < n {
            return Err(StorageError::Backend(
                "the import undo journal is corrupt".into(),
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StorageError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn value(&mut self) -> Result<Value, StorageError> {
        let corrupt = || StorageError::Backend("the import undo journal is corrupt".into());
        match self.array::<1>()? {
            [b'n'] => Ok(Value::Null),
            [b'i'] => Ok(Value::Int(i64::from_le_bytes(self.array()?))),
            [b't'] => {
                let length = u32::from_le_bytes(self.array()?) as usize;
                let text = std::str::from_utf8(self.take(length)?).map_err(|_| corrupt())?;
                Ok(Value::Text(text.to_owned()))
            }
            [b'd'] => {
                let text = std::str::from_utf8(self.take(10)?).map_err(|_| corrupt())?;
                Date::parse(text).map(Value::Date).ok_or_else(corrupt)
            }
            _ => Err(corrupt()),
        }
    }
}

/// Registers a new load in its first transaction.
pub(crate) fn register(
    tx: &Transaction<'_>,
    lock: &ImportLock,
    report: &ReportType,
    tenant: &Uuid,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO reportroot_imports (import_id, report, tenant_id) VALUES (?1, ?2, ?3)",
        (lock.id, report.table_name(), tenant),
    )
    .map(|_| ())
    .map_err(backend)
}

/// Commits load `id`: once its registration is gone, nothing undoes it.
pub(crate) fn unregister(tx: &Transaction<'_>, id: Uuid) -> Result<(), StorageError> {
    tx.execute("DELETE FROM reportroot_imports WHERE import_id = ?1", [id])
        .map(|_| ())
        .map_err(backend)
}

/// Entries deleted per purge transaction (each holds one load transaction's ids, ~200 KiB).
const PURGE_BATCH: usize = 32;

const ORPHAN_ENTRIES: &str = "SELECT u.rowid FROM reportroot_import_undo u WHERE NOT EXISTS \
     (SELECT 1 FROM reportroot_imports i WHERE i.import_id = u.import_id)";

/// Deletes some journal entries of loads that are committed (or undone); true if more remain.
pub(crate) fn purge_step(tx: &Transaction<'_>) -> Result<bool, StorageError> {
    let deleted = tx
        .execute(
            &format!(
                "DELETE FROM reportroot_import_undo WHERE rowid IN ({ORPHAN_ENTRIES} LIMIT {PURGE_BATCH})"
            ),
            [],
        )
        .map_err(backend)?;
    Ok(deleted == PURGE_BATCH)
}

/// `UPDATE` back to an old version and values: `(tenant, id, old version, values...)`; only
/// if the row is still at the version the load gave it.
fn restore_sql(report: &ReportType) -> String {
    let sets = report
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{} = ?{}", p.column_name(), i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "UPDATE {} SET version = ?3, {sets} WHERE tenant_id = ?1 AND id = ?2 AND version = ?3 + 1",
        report.table_name()
    )
}

/// Whether load `id` is still registered (neither committed nor undone).
fn is_registered(connection: &Connection, id: Uuid) -> Result<bool, StorageError> {
    connection
        .query_row(
            "SELECT 1 FROM reportroot_imports WHERE import_id = ?1",
            [id],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
        .map_err(backend)
}

/// Undoes the newest journal entry of load `id` and deletes it, in the caller's transaction;
/// with no entry left, unregisters the load. Returns whether entries remain. Does nothing
/// (false) for a load that is no longer registered: committed, or undone by another process.
pub(crate) fn undo_step(
    tx: &Transaction<'_>,
    id: Uuid,
    report: &ReportType,
    tenant: &Uuid,
) -> Result<bool, StorageError> {
    if !is_registered(tx, id)? {
        return Ok(false);
    }
    let entry: Option<(i64, Vec<u8>, Vec<u8>)> = tx
        .query_row(
            "SELECT rowid, inserted, updated FROM reportroot_import_undo WHERE import_id = ?1 \
             ORDER BY rowid DESC LIMIT 1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(backend)?;
    let Some((rowid, inserted, updated)) = entry else {
        unregister(tx, id)?;
        return Ok(false);
    };
    // Updates backwards, then inserts: a row inserted and then updated by the same load goes
    // back to version 1 before it is deleted.
    let mut restore = tx.prepare_cached(&restore_sql(report)).map_err(backend)?;
    for row in decode_rows(&updated, report.properties.len())?.iter().rev() {
        let params = row_params(*tenant, row.id, Some(row.version), &row.values);
        restore.execute(bind(&params)).map_err(backend)?;
    }
    // The per-day summary follows each deleted row (restored rows keep their natural key,
    // so their place in it).
    let table = crate::table_sql(report);
    let mut delete = tx
        .prepare_cached(&format!(
            "DELETE FROM {} WHERE tenant_id = ?1 AND id = ?2 AND version = 1 RETURNING {}",
            table.table, table.columns
        ))
        .map_err(backend)?;
    for inserted in inserted.chunks_exact(16) {
        let deleted = delete
            .query_row((tenant, inserted), |row| {
                decode_entity(report, &crate::Columns(row))
            })
            .optional()
            .map_err(backend)?;
        if let (Some(days), Some(row)) = (&table.days, deleted) {
            for (sql, params) in days.removing(*tenant, row.id, &row.values) {
                tx.prepare_cached(sql)
                    .and_then(|mut s| s.execute(bind(&params)))
                    .map_err(backend)?;
            }
        }
    }
    crate::note_change(tx, &table, tenant)?;
    tx.execute(
        "DELETE FROM reportroot_import_undo WHERE rowid = ?1",
        [rowid],
    )
    .map_err(backend)?;
    Ok(true)
}

/// Runs `work` in an immediate transaction on `connection`.
fn in_transaction<T>(
    connection: &Connection,
    work: impl FnOnce(&Transaction<'_>) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    let tx = Transaction::new_unchecked(connection, rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let result = work(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(result)
}

/// Runs `step` in short transactions until it returns false, pausing between them.
fn repeat(
    connection: &Connection,
    mut step: impl FnMut(&Transaction<'_>) -> Result<bool, StorageError>,
) -> Result<(), StorageError> {
    while in_transaction(connection, &mut step)? {
        std::thread::sleep(CHUNK_PAUSE);
    }
    Ok(())
}

/// At open: undoes every load whose process is gone, purges the journal of committed loads
/// and removes lock files left by loads that died before their first commit. Takes no write
/// lock when there is nothing to do.
pub(crate) fn recover(connection: &Connection, database: &Path) -> Result<(), StorageError> {
    let loads: Vec<(Uuid, String, Uuid)> = connection
        .prepare("SELECT import_id, report, tenant_id FROM reportroot_imports")
        .and_then(|mut s| {
            s.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect()
        })
        .map_err(backend)?;
    for (id, table, tenant) in &loads {
        let Some(report) = REPORTS.iter().find(|r| r.table_name() == *table) else {
            tracing::warn!(import = %id, %table, "an interrupted import of an unknown table is left as it is");
            continue;
        };
        let Some(lock) = ImportLock::take_if_abandoned(database, *id)? else {
            continue; // its process still runs
        };
        tracing::warn!(import = %id, %table, "undoing an import that was interrupted");
        repeat(connection, |tx| undo_step(tx, *id, report, tenant))?;
        lock.release();
    }
    let orphans = connection
        .query_row(&format!("SELECT EXISTS ({ORPHAN_ENTRIES})"), [], |row| {
            row.get::<_, bool>(0)
        })
        .map_err(backend)?;
    if orphans {
        repeat(connection, purge_step)?;
    }
    remove_stale_lock_files(connection, database)
}

/// Removes the lock files of loads that died before their first commit registered them.
fn remove_stale_lock_files(connection: &Connection, database: &Path) -> Result<(), StorageError> {
    let (Some(directory), Some(name)) = (database.parent(), database.file_name()) else {
        return Ok(());
    };
    let directory = if directory.as_os_str().is_empty() {
        Path::new(".")
    } else {
        directory
    };
    let prefix = format!("{}.import-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(directory) else {
        return Ok(());
    };
    for entry in entries.filter_map(Result::ok) {
        let file_name = entry.file_name();
        let Some(id) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(".lock"))
            .and_then(|n| Uuid::parse_str(n).ok())
        else {
            continue;
        };
        if !is_registered(connection, id)? {
            if let Some(lock) = ImportLock::take_if_abandoned(database, id)? {
                lock.release();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_rows_round_trip() {
        let row = Entity {
            id: Uuid::now_v7(),
            version: 7,
            values: vec![
                Value::Date(Date::parse("2025-01-31").expect("date")),
                Value::Text("PROJECT, \"PRO\" ü".into()),
                Value::Int(-3),
                Value::Null,
            ],
        };
        let mut bytes = Vec::new();
        encode_row(&row, &mut bytes);
        encode_row(&row, &mut bytes);
        let rows = decode_rows(&bytes, 4).expect("decoded");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].id, row.id);
        assert_eq!(rows[1].version, 7);
        assert_eq!(rows[1].values, row.values);
        assert!(decode_rows(&bytes[..bytes.len() - 1], 4).is_err());
    }
}
