//! SQLite backend: one writer connection (SQLite allows one writer at a time anyway) and a
//! small pool of reader connections, in WAL mode so that readers never wait for the writer.
//! Writes run on tokio's blocking pool, bounded reads in place while they are quick
//! ([`in_place`]), reads that may scan on threads of the lowest priority ([`scan_thread`]).
//! New ids are UUIDv7: time-ordered, so inserts append to the primary-key index instead of
//! touching random pages of it.

mod import;
mod in_place;
mod refreshes;
mod scan_thread;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use crate::refreshes::{table_sql, SideTable};
use async_trait::async_trait;
use reportroot_model::{Date, Entity, ReportType, TenantId, Value, REPORTS};
use reportroot_storage::accounts::{tenant_backfill, KnownTenants, ACCOUNT_TABLES};
use reportroot_storage::changes::ChangeSql;
use reportroot_storage::days::DaysBatch;
use reportroot_storage::directory::{SqlRunner, SqlValue, DIRECTORY_TABLES};
use reportroot_storage::engine::{
    decode_entity, key_params, ColumnReader, Load, Outcome, Param, ReadCost, SqlBackend, Step,
    TableSet, Write, WritePlan, WriteRequest,
};
use reportroot_storage::query_sql::CompiledSql;
use reportroot_storage::sql::{retired_indexes, Dialect, TableSql};
use reportroot_storage::{LoadAborted, RowChunks, SchemaChange, StorageError, UpsertCounts};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OptionalExtension, ToSql, Transaction, TransactionBehavior};

use crate::import::{ImportLock, Journal};
use uuid::Uuid;

/// The newest schema version this binary knows. Report tables themselves are derived from the
/// registry and created idempotently at every start, so a new registry entry needs no bump.
/// Version 2 stores ids as 16-byte BLOBs in `WITHOUT ROWID` tables (version 1: TEXT ids in
/// rowid tables, and one more index); opening a version 1 file rebuilds its tables. Version 3
/// adds the undo journal of imports (`import.rs`): a version 2 binary would neither undo an
/// interrupted import nor know that readers see one in progress, so it must refuse the file.
/// Version 4 lets counts and durations be `NULL` (Graph's empty CSV cells): SQLite cannot drop
/// a `NOT NULL`, so opening an older file rebuilds the report tables that have one on such a
/// column, as for version 2 (a version 3 binary would fail reading a `NULL` count).
/// Version 5 adds the directory (app registrations, secret hashes, signing keys:
/// `reportroot_storage::directory`); a version 4 binary would serve without them.
/// Version 6 adds the `_ahead_` partial index of per-day reports (rows dated after their
/// refresh date), which bounds `reportDate` filters to a range of the natural-key index.
/// Version 7 replaces the activity date's history index with the series index
/// (`reportroot_storage::sql::series_index`), which a version 6 binary would not keep up,
/// and adds the dashboard's accounts (users, grants, sessions, tenant names:
/// `reportroot_storage::accounts`), the tenant names filled from the rows already stored; a
/// version 6 binary would write rows without noting their tenant.
/// Version 8 adds the per-day summaries (`reportroot_storage::days`), built from the rows by
/// the migration; a version 7 binary would write rows without keeping them up.
/// Version 9 adds
/// - the `_by_period_day` index of per-day reports with a period
///   (`reportroot_storage::sql::period_pages_index`), built by the migration: a `$filter` page
///   of one period reads a page of entries, and the report functions read a period's latest
///   refresh from it, so those reports' side tables of refresh dates are dropped (a version 8
///   binary would read stale ones);
/// - the tenants' change versions (`reportroot_storage::changes`), raised by every write; a
///   version 8 binary would write rows without raising them, and a server's answer cache would
///   miss such a write (no backfill: a missing row is version 0).
///
/// Version 10 adds `_by_dimension_day` to per-day reports split by a dimension (`siteType`;
/// `reportroot_storage::sql::dimension_pages_index`), built by the migration: the skip-scan of
/// a page that pins a dimension value visits the value's refresh dates, read from it, where a
/// value no row has visited every refresh date of the tenant. A version 9 binary would work
/// with it; the version says it was built.
///
/// Version 11 adds `_days_late` to the per-day summaries, the partial index of their late rows
/// (`reportroot_storage::days`: a date's latest refresh more than the longest period after
/// it, which Graph never writes), built by the migration: a closed `reportDate` range's
/// refresh dates end at its ceiling plus that period, or at a late row's pick in the range.
/// A version 10 binary would work with it; the version says it was built.
///
/// Version 12 adds every report's `_pages` index (`reportroot_storage::sql::
/// sqlite_pages_index`: the natural key, then every other column), built by the migration:
/// a history page's skip-scan reads its rows from it alone. A version 11 binary would work
/// with it; the version says it was built.
pub const SCHEMA_VERSION: i64 = 12;

/// Page size of new database files. Measured (1.1M-row import; single-row POSTs on 100
/// tenants, before the refresh-date table): 8 KiB ~207k rows/s, ~7.7k POST/s; 16 KiB ~248k
/// rows/s, ~7.2k POST/s (every commit writes whole pages to the WAL). Existing files keep
/// theirs.
const NEW_FILE_PAGE_SIZE: u32 = 16 * 1024;

/// Reader connections: enough to keep both cores busy while one waits on I/O; requests beyond
/// this wait for a free connection instead of opening (and closing) more.
const MAX_READERS: usize = 4;

/// Reader connections that reads which may scan hold at most, so that bounded reads always
/// find one. Why: a scan at the lowest priority holds its connection for up to the read time
/// limit, and with the API's scan limits lifted (`--scans 64`) four scans held all four:
/// another tenant's indexed pages waited for them (p99 1.9 s, bench/isolation.sh).
const MAX_SCAN_READERS: usize = MAX_READERS / 2;

/// How hard SQLite pushes commits to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL`: every commit survives a crash or `kill -9` of the process (WAL is
    /// written before the answer); the last commits may be lost on power failure.
    #[default]
    Process,
    /// `synchronous=FULL`: every commit is also fsynced, surviving power failure.
    Power,
}

/// The SQLite implementation of [`Storage`].
#[derive(Clone)]
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    durability: Durability,
    /// Stopped and joined when the storage is dropped, so that the last connection's close
    /// checkpoints the whole WAL into the file.
    #[expect(dead_code, reason = "held for its Drop, which stops the thread")]
    checkpointer: Checkpointer,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    reader_slots: Arc<tokio::sync::Semaphore>,
    /// Reads that may scan take one of these before a reader slot: [`MAX_SCAN_READERS`].
    scan_slots: Arc<tokio::sync::Semaphore>,
    /// Writers queue here, not on the writer's mutex, so that waiting holds no thread.
    writer_slot: tokio::sync::Semaphore,
    tables: TableSet,
    /// Tenants noted in `reportroot_tenants` by this process.
    known_tenants: KnownTenants,
    /// What the open did to the schema.
    schema_change: SchemaChange,
    /// How long a read may run ([`reportroot_storage::READ_TIME_LIMIT`] unless changed).
    read_time_limit: Duration,
    /// Whether bounded reads run in place on the runtime's workers now ([`in_place`]).
    in_place: in_place::InPlace,
}

/// Copies committed WAL frames into the database file every [`CHECKPOINT_EVERY`] on its own
/// thread and connection. Why: SQLite's automatic checkpoint runs inside the commit that
/// crosses the threshold, so one request in a thousand paid for copying megabytes (POST p99
/// 16 ms); a passive checkpoint beside the writer never blocks it (POST p99 10 → 7 ms).
/// The writer still checkpoints itself past [`WRITER_CHECKPOINT_PAGES`] if this falls behind.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
const WRITER_CHECKPOINT_PAGES: u32 = 20_000;

impl Checkpointer {
    fn start(connection: Connection) -> Result<Self, StorageError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(PASSIVE);")
                    {
                        tracing::warn!(%error, "background checkpoint failed");
                    }
                }
            })
            .map_err(backend)?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A failure whose cause says what happened (a statement's error names the statement's
/// trouble; the trait method the caller called says what was being done).
fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::backend("", error)
}

/// A failure while doing `context`.
fn failed<E: std::error::Error + Send + Sync + 'static>(
    context: &'static str,
) -> impl FnOnce(E) -> StorageError {
    move |error| StorageError::backend(context, error)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the connection usable; SQLite rolls back.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Turns `sqlite://file.db`, `sqlite:file.db` or a plain path into a path.
pub fn path_from_url(url: &str) -> PathBuf {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(path)
}

/// Deletes a database file and the write-ahead log and shared-memory files SQLite keeps beside
/// it; a file that is not there is not an error.
pub fn remove_database(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.to_path_buf().into_os_string();
        file.push(suffix);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StorageError> {
        Self::open_with_writer_cache(path, durability, WRITER_CACHE_KIB)
    }

    /// [`SqliteStorage::open`] with a writer page cache of `cache_kib`: bulk loads (import,
    /// seed) insert into several large indexes at once and gain from a big one.
    pub fn open_with_writer_cache(
        path: impl AsRef<Path>,
        durability: Durability,
        cache_kib: u32,
    ) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let writer = open_connection(&path, durability, cache_kib)?;
        let schema_change = migrate(&writer)?;
        import::recover(&writer, &path)?;
        // Statement journals (multi-index UPDATEs) in memory, never in temp files; set after the
        // migration, whose index builds would otherwise sort in memory too.
        writer
            .execute_batch(&format!(
                "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES};"
            ))
            .map_err(backend)?;
        optimize_statistics(&writer, true)?;
        // Checkpoints copy WAL frames straight into the file: no page cache to speak of.
        let checkpointer = Checkpointer::start(open_connection(&path, durability, 256)?)?;
        let storage = SqliteStorage {
            inner: Arc::new(Inner {
                path,
                durability,
                checkpointer,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                reader_slots: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
                scan_slots: Arc::new(tokio::sync::Semaphore::new(MAX_SCAN_READERS)),
                writer_slot: tokio::sync::Semaphore::new(1),
                tables: TableSet::with_refreshes(Dialect::Sqlite, &SideTable),
                known_tenants: KnownTenants::default(),
                schema_change,
                read_time_limit: reportroot_storage::READ_TIME_LIMIT,
                in_place: in_place::InPlace::new(),
            }),
        };
        Ok(storage)
    }

    /// The storage with reads stopped after `limit` instead of
    /// [`reportroot_storage::READ_TIME_LIMIT`] (tests make it tiny to see the limit work).
    /// Call before sharing the storage: later it changes nothing.
    pub fn with_read_time_limit(mut self, limit: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.read_time_limit = limit;
        }
        self
    }

    /// What opening the file did to its schema.
    pub fn schema_change(&self) -> SchemaChange {
        self.inner.schema_change
    }

    /// Runs `work` on a reader connection: in place on the runtime's worker when the read is
    /// bounded and such reads are quick ([`in_place`]), else on another thread: a thread of
    /// the lowest CPU priority when it may scan ([`scan_thread`]).
    async fn read<T: Send + 'static>(
        &self,
        cost: ReadCost,
        work: impl FnOnce(&Connection, &Inner) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        // Owned permits, moved into the work: a scan's thread keeps its slots until it ends,
        // also when the request that started it is dropped (a client gone), so that dropped
        // requests cannot pile up scan threads beyond the slots.
        let scan_slot = match cost {
            ReadCost::MayScan => Some(slot(&self.inner.scan_slots).await?),
            ReadCost::Bounded => None,
        };
        let reader_slot = slot(&self.inner.reader_slots).await?;
        let inner = Arc::clone(&self.inner);
        let run = move || {
            let _slots = (scan_slot, reader_slot);
            let connection = lock(&inner.readers).pop();
            let connection = match connection {
                Some(c) => c,
                None => open_connection(&inner.path, inner.durability, READER_CACHE_KIB)?,
            };
            // Timed from here: opening a connection (the first reads) is not a sign of I/O.
            let started = Instant::now();
            let limit = inner.read_time_limit;
            let (result, checks) =
                with_time_limit(&connection, limit, || work(&connection, &inner));
            lock(&inner.readers).push(connection);
            if cost == ReadCost::Bounded {
                let took = started.elapsed();
                inner
                    .in_place
                    .finished(started, took, || in_place::held_its_worker(checks));
            }
            result
        };
        if cost == ReadCost::MayScan {
            return scan_thread::run(run).await;
        }
        if self.inner.in_place.allowed(Instant::now()) {
            return run();
        }
        if tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(run)
        } else {
            tokio::task::spawn_blocking(run).await.map_err(backend)?
        }
    }

    /// Runs `step` in write transactions until it returns false, pausing between them so
    /// that other writers get in.
    async fn repeat_write(
        &self,
        step: impl Fn(&Transaction<'_>, &Inner) -> Result<bool, StorageError> + Clone + Send + 'static,
    ) -> Result<(), StorageError> {
        loop {
            let step = step.clone();
            if !self.write_transaction(step).await? {
                return Ok(());
            }
            tokio::task::spawn_blocking(|| std::thread::sleep(import::CHUNK_PAUSE))
                .await
                .map_err(backend)?;
        }
    }

    /// Writes `chunks` in transactions of about [`import::CHUNK_BUDGET`] each, pausing between
    /// them. Sets `import` (the lock, registration and journal of an undoable load, see
    /// `import.rs`) once the load needs more than one transaction; a load that fits in one
    /// needs none of that.
    async fn load_chunks(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        chunks: RowChunks,
        import: &mut Option<ImportLock>,
    ) -> Result<UpsertCounts, StorageError> {
        let mut state = LoadState {
            rows: PendingRows::relay(chunks)?,
            counts: UpsertCounts::default(),
            last_was_known: false,
        };
        let mut pause = false;
        loop {
            // Without the write lock: pause (a waiting writer gets in), and wait for rows.
            let (back, has_rows) = tokio::task::spawn_blocking(move || {
                if pause {
                    std::thread::sleep(import::CHUNK_PAUSE);
                }
                let has_rows = state.rows.wait();
                (state, has_rows)
            })
            .await
            .map_err(backend)?;
            state = back;
            if !has_rows? {
                return Ok(state.counts);
            }
            pause = true;
            let id = import.as_ref().map(|lock| lock.id);
            let (back, created, more) = self
                .write_transaction(move |tx, inner| {
                    load_step(tx, inner, report, tenant.0, state, id)
                })
                .await?;
            state = back;
            if created.is_some() {
                *import = created;
            }
            if !more {
                self.write_transaction(|tx, _| optimize_statistics(tx, false))
                    .await?;
                return Ok(state.counts);
            }
        }
    }

    /// Runs `work` in a transaction on the writer connection on the blocking pool, and
    /// commits it when `work` succeeds.
    async fn write_transaction<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Transaction<'_>, &Inner) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        self.with_writer(move |transaction, inner| {
            let result = work(&transaction, inner)?;
            commit(transaction)?;
            Ok(result)
        })
        .await
    }

    /// Hands `work` a transaction on the writer connection, on the blocking pool; `work`
    /// commits it, or drops it to roll back.
    async fn with_writer<T: Send + 'static>(
        &self,
        work: impl FnOnce(Transaction<'_>, &Inner) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let inner = Arc::clone(&self.inner);
        let _slot = self.inner.writer_slot.acquire().await.map_err(backend)?;
        tokio::task::spawn_blocking(move || {
            let mut connection = lock(&inner.writer);
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(failed("cannot begin a write transaction"))?;
            work(transaction, &inner)
        })
        .await
        .map_err(backend)?
    }
}

/// Commits a write transaction.
fn commit(transaction: Transaction<'_>) -> Result<(), StorageError> {
    transaction
        .commit()
        .map_err(failed("cannot commit a write transaction"))
}

/// A permit of `slots`, owned (it may outlive the request that waited for it).
async fn slot(
    slots: &Arc<tokio::sync::Semaphore>,
) -> Result<tokio::sync::OwnedSemaphorePermit, StorageError> {
    Arc::clone(slots).acquire_owned().await.map_err(backend)
}

/// Runs `work` with the reader's statements interrupted once they run past `limit`
/// ([`reportroot_storage::READ_TIME_LIMIT`] unless changed; checked every
/// [`in_place::PROGRESS_EVERY`] virtual-machine instructions), which turns their failure into
/// [`StorageError::QueryTimeout`]. Also answers how many times the check ran: the read's
/// work in SQLite's own units, which [`in_place`] tells heavy reads by.
fn with_time_limit<T>(
    connection: &Connection,
    limit: Duration,
    work: impl FnOnce() -> Result<T, StorageError>,
) -> (Result<T, StorageError>, u32) {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
    let deadline = Instant::now() + limit;
    let progress = Arc::new((AtomicBool::new(false), AtomicU32::new(0)));
    let seen = Arc::clone(&progress);
    connection.progress_handler(
        in_place::PROGRESS_EVERY,
        Some(move || {
            seen.1.fetch_add(1, Relaxed);
            let late = Instant::now() > deadline;
            if late {
                seen.0.store(true, Relaxed);
            }
            late
        }),
    );
    let result = work();
    connection.progress_handler(0, None::<fn() -> bool>);
    let checks = progress.1.load(Relaxed);
    match result {
        Err(_) if progress.0.load(Relaxed) => (Err(StorageError::QueryTimeout), checks),
        other => (other, checks),
    }
}

/// Brings the planner's statistics (`sqlite_stat1`) up to date where SQLite judges them
/// missing or stale: at start-up (`at_open`: every table not analysed yet) and after a bulk
/// load. `analysis_limit` samples about a thousand rows per index, so that this costs
/// milliseconds rather than the ~4 s a full `ANALYZE` takes on 1.12M rows (measured on a
/// loaded 2-core machine). Plans of `$filter` pages do not depend on it (see
/// `reportroot_storage::query_sql`), but other shapes pick indexes better with statistics.
fn optimize_statistics(connection: &Connection, at_open: bool) -> Result<(), StorageError> {
    let mask = if at_open { "0x10002" } else { "0xfffe" };
    connection
        .execute_batch(&format!(
            "PRAGMA analysis_limit = 1000; PRAGMA optimize = {mask};"
        ))
        .map_err(failed("cannot update the planner's statistics"))
}

/// Page cache of the writer, which bulk imports lean on, and of each reader (KiB).
/// (16 MiB for serving: with 16 KiB pages a 32 MiB writer cache took peak RSS under the
/// bench's load to ~102 MiB, over the 100 MiB goal; bulk loads ask for more.)
const WRITER_CACHE_KIB: u32 = 16 * 1024;
const READER_CACHE_KIB: u32 = 4 * 1024;

/// How often a connection polls for a lock another connection holds, and how many times.
const BUSY_POLL: Duration = Duration::from_millis(1);
const BUSY_POLLS: i32 = 5000;

/// The busy handler of every connection: poll every millisecond, for at least 5 s in all.
/// Why not `busy_timeout`: SQLite's default handler sleeps longer and longer between tries (up
/// to 100 ms), so a writer waiting behind a loop of short transactions (an import) almost
/// never finds the lock free; polling every millisecond finds it in the importer's pause
/// between two transactions ([`import::CHUNK_PAUSE`]).
fn wait_for_lock(attempts: i32) -> bool {
    if attempts >= BUSY_POLLS {
        return false;
    }
    std::thread::sleep(BUSY_POLL);
    true
}

fn open_connection(
    path: &Path,
    durability: Durability,
    cache_kib: u32,
) -> Result<Connection, StorageError> {
    let connection =
        Connection::open(path).map_err(failed("cannot open the SQLite database file"))?;
    // First of all: every statement after this one may meet another process's lock (switching
    // to WAL, reading the schema), and would fail at once without a busy handler.
    connection
        .busy_handler(Some(wait_for_lock))
        .map_err(backend)?;
    let synchronous = match durability {
        Durability::Process => "NORMAL",
        Durability::Power => "FULL",
    };
    connection
        .execute_batch(&format!(
            "PRAGMA page_size = {NEW_FILE_PAGE_SIZE}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
             PRAGMA cache_size = -{cache_kib};"
        ))
        .map_err(backend)?;
    connection.set_prepared_statement_cache_capacity(64);
    // Keep cached plans: without this, SQLite re-prepares a statement whenever a new parameter
    // value might change the plan, which profiles showed as a quarter of a report request.
    connection
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(backend)?;
    Ok(connection)
}

/// Brings the schema up to date and says what it did. When it already is, only reads (no
/// write lock: `export` or a second server never waits for, or fails on, a busy writer).
/// Otherwise changes it in one `BEGIN IMMEDIATE` transaction, which waits for the write lock
/// in the busy handler. (A deferred `BEGIN` that reads, then writes, cannot wait: SQLite
/// fails it at once with SQLITE_BUSY when another connection writes meanwhile.)
fn migrate(connection: &Connection) -> Result<SchemaChange, StorageError> {
    if let Some(current) = current_schema(connection)? {
        return Ok(current);
    }
    let tx = Transaction::new_unchecked(connection, TransactionBehavior::Immediate)
        .map_err(failed("cannot begin the schema migration"))?;
    // Another process may have migrated while this one waited for the lock.
    if let Some(current) = current_schema(&tx)? {
        return Ok(current);
    }
    let version = user_version(&tx)?;
    let mut fresh = version == 0;
    for report in REPORTS {
        fresh &= !table_exists(&tx, report.table_name())?;
    }
    let script = migration_script(&tx, version)?;
    tx.execute_batch(&script)
        .map_err(failed("cannot migrate the schema"))?;
    tx.commit()
        .map_err(failed("cannot commit the schema migration"))?;
    Ok(if fresh {
        SchemaChange::Created(SCHEMA_VERSION)
    } else if version < SCHEMA_VERSION {
        SchemaChange::Upgraded {
            from: version,
            to: SCHEMA_VERSION,
        }
    } else {
        SchemaChange::Completed(SCHEMA_VERSION)
    })
}

fn user_version(connection: &Connection) -> Result<i64, StorageError> {
    connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(backend)
}

/// Every `CREATE … IF NOT EXISTS` of the current schema.
fn schema_statements() -> impl Iterator<Item = String> {
    REPORTS
        .iter()
        .flat_map(|report| table_sql(report).create)
        .chain(import::JOURNAL_TABLES.iter().map(|s| (*s).to_owned()))
        .chain(DIRECTORY_TABLES.iter().map(|s| (*s).to_owned()))
        .chain(ACCOUNT_TABLES.iter().map(|s| (*s).to_owned()))
        .chain([ChangeSql::new(Dialect::Sqlite).create])
}

/// `UpToDate` if the file has this binary's version and every table and index (and not the
/// index version 2 dropped); `None` if something is to be done. Fails on a newer version.
fn current_schema(connection: &Connection) -> Result<Option<SchemaChange>, StorageError> {
    let version = user_version(connection)?;
    if version > SCHEMA_VERSION {
        return Err(StorageError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < SCHEMA_VERSION {
        return Ok(None);
    }
    let names: HashSet<String> = connection
        .prepare("SELECT name FROM sqlite_master")
        .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
        .map_err(backend)?;
    // `CREATE TABLE IF NOT EXISTS <name> …`: the sixth word.
    let complete = schema_statements().all(|statement| {
        statement
            .split_whitespace()
            .nth(5)
            .is_some_and(|name| names.contains(name))
    }) && !names.iter().any(|name| name.ends_with("_by_period"))
        && !REPORTS
            .iter()
            .flat_map(retired_indexes)
            .any(|name| names.contains(&name));
    Ok(complete.then_some(SchemaChange::UpToDate(SCHEMA_VERSION)))
}

/// The statements that take a file from `version` to [`SCHEMA_VERSION`], for one transaction.
fn migration_script(connection: &Connection, version: i64) -> Result<String, StorageError> {
    let mut script = String::new();
    let mut rebuilt = Vec::new();
    // Version 1 tables are rebuilt for BLOB ids; tables of versions 2 and 3 for nullable counts
    // (if one of their count or duration columns is `NOT NULL`).
    for report in REPORTS {
        let table = report.table_name();
        if !table_exists(connection, table)? {
            continue;
        }
        let suffix = match version {
            1 => "v1",
            2 | 3 if has_required_counts(connection, report)? => "v3",
            _ => continue,
        };
        tracing::info!(%table, "rebuilding for schema version {SCHEMA_VERSION}");
        script.push_str(&format!(
            "ALTER TABLE {table} RENAME TO {table}_{suffix};\n"
        ));
        for index in named_indexes(connection, table)? {
            script.push_str(&format!("DROP INDEX {index};\n"));
        }
        rebuilt.push((report, suffix));
    }
    // Per-day summaries new to this file (version 8), built from the rows at the end.
    let mut summaries = Vec::new();
    for report in REPORTS {
        if let Some(days) = table_sql(report).days {
            if table_exists(connection, report.table_name())?
                && !table_exists(connection, &days.table)?
            {
                summaries.push(days.backfill);
            }
        }
    }
    // Side tables derived from existing rows (a refresh-date table new to this file).
    let mut backfills = Vec::new();
    for report in REPORTS {
        let table = report.table_name();
        let refreshes = format!("{table}_refreshes");
        let sql = table_sql(report);
        if sql.note_refresh.is_none() {
            // Per-day reports read the latest refresh from their rows (schema 9).
            script.push_str(&format!("DROP TABLE IF EXISTS {refreshes};\n"));
        } else if table_exists(connection, table)? && !table_exists(connection, &refreshes)? {
            backfills.push(report);
        }
        script.push_str(&format!("DROP INDEX IF EXISTS {table}_by_period;\n"));
        for index in retired_indexes(report) {
            script.push_str(&format!("DROP INDEX IF EXISTS {index};\n"));
        }
        for statement in sql.create {
            script.push_str(&statement);
            script.push_str(";\n");
        }
    }
    for (report, suffix) in rebuilt {
        let table = report.table_name();
        let columns = report
            .properties
            .iter()
            .map(|p| p.column_name())
            .collect::<Vec<_>>()
            .join(", ");
        // Hyphenated lower-case UUID text sorts as its bytes do: ids and keyset cursors keep
        // their order.
        let ids = if suffix == "v1" {
            "unhex(replace(tenant_id, '-', '')), unhex(replace(id, '-', ''))"
        } else {
            "tenant_id, id"
        };
        script.push_str(&format!(
            "INSERT INTO {table} (tenant_id, id, version, {columns}) \
             SELECT {ids}, version, {columns} \
             FROM {table}_{suffix} ORDER BY tenant_id, id;\nDROP TABLE {table}_{suffix};\n"
        ));
    }
    for report in backfills {
        let table = report.table_name();
        let column = |i: usize| report.properties[i].column_name();
        let (period, refresh) = (
            column(report.period_index().unwrap_or_default()),
            column(report.refresh_date_index()),
        );
        script.push_str(&format!(
            "INSERT OR IGNORE INTO {table}_refreshes (tenant_id, {period}, {refresh}) \
             SELECT DISTINCT tenant_id, {period}, {refresh} FROM {table};\n"
        ));
    }
    for statement in import::JOURNAL_TABLES
        .iter()
        .chain(&DIRECTORY_TABLES)
        .chain(&ACCOUNT_TABLES)
    {
        script.push_str(statement);
        script.push_str(";\n");
    }
    script.push_str(&ChangeSql::new(Dialect::Sqlite).create);
    script.push_str(";\n");
    for backfill in summaries {
        script.push_str(&backfill);
        script.push_str(";\n");
    }
    // Tenants that have rows before the tenant names existed (after every rebuild above).
    if version < 7 {
        for statement in tenant_backfill(Dialect::Sqlite) {
            script.push_str(&statement);
            script.push_str(";\n");
        }
    }
    script.push_str(&format!("PRAGMA user_version = {SCHEMA_VERSION};\n"));
    Ok(script)
}

fn table_exists(connection: &Connection, table: &str) -> Result<bool, StorageError> {
    connection
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
        .map_err(backend)
}

/// Whether `report`'s table declares a count or duration column `NOT NULL` (before version 4).
fn has_required_counts(connection: &Connection, report: &ReportType) -> Result<bool, StorageError> {
    let mut statement = connection
        .prepare("SELECT name FROM pragma_table_info(?1) WHERE \"notnull\" <> 0")
        .map_err(backend)?;
    let required: HashSet<String> = statement
        .query_map([report.table_name()], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(backend)?;
    Ok(report
        .properties
        .iter()
        .any(|p| p.kind.is_nullable() && required.contains(p.column_name())))
}

/// The indexes created by name (not those of constraints) on `table`.
fn named_indexes(connection: &Connection, table: &str) -> Result<Vec<String>, StorageError> {
    let mut statement = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL")
        .map_err(backend)?;
    let names = statement
        .query_map([table], |row| row.get(0))
        .map_err(backend)?;
    names.collect::<Result<_, _>>().map_err(backend)
}

/// A statement parameter as SQLite stores it: ids as 16-byte BLOBs, dates as `YYYY-MM-DD`
/// text (kept here, so that binding copies nothing).
enum Bind<'a> {
    Param(Param<'a>),
    Date([u8; 10]),
}

impl<'a> Bind<'a> {
    fn of(param: impl Into<Param<'a>>) -> Self {
        match param.into() {
            Param::Date(date) => Bind::Date(date.iso_bytes()),
            other => Bind::Param(other),
        }
    }
}

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Bind::Param(Param::Null) => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Bind::Param(Param::Uuid(id)) => ToSqlOutput::Borrowed(ValueRef::Blob(id.as_bytes())),
            Bind::Param(Param::Int(i)) => ToSqlOutput::from(*i),
            Bind::Param(Param::Text(text)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()))
            }
            Bind::Param(Param::Date(date)) => ToSqlOutput::from(date.to_string()),
            Bind::Date(text) => ToSqlOutput::Borrowed(ValueRef::Text(text)),
        })
    }
}

/// Binds `params` in order, without collecting them.
fn bind<'a, P>(params: &'a [P]) -> impl rusqlite::Params + 'a
where
    &'a P: Into<Param<'a>>,
{
    rusqlite::params_from_iter(params.iter().map(Bind::of))
}

/// The columns of a result row, for [`decode_entity`].
pub(crate) struct Columns<'r, 's>(&'r rusqlite::Row<'s>);

impl ColumnReader for Columns<'_, '_> {
    type Error = rusqlite::Error;

    fn uuid(&self, column: usize) -> rusqlite::Result<Uuid> {
        self.0.get(column)
    }

    /// Read by its `ValueRef` rather than `Row::get`'s generic conversion: every page decodes
    /// several counts a row (`Row::get` was 6.7 % of a page's instructions under callgrind).
    fn int(&self, column: usize) -> rusqlite::Result<Option<i64>> {
        match self.0.get_ref(column)? {
            ValueRef::Integer(i) => Ok(Some(i)),
            ValueRef::Null => Ok(None),
            other => Err(rusqlite::Error::InvalidColumnType(
                column,
                self.0
                    .as_ref()
                    .column_name(column)
                    .map_or_else(|_| String::new(), str::to_owned),
                other.data_type(),
            )),
        }
    }

    fn text(&self, column: usize) -> rusqlite::Result<Option<String>> {
        self.0.get(column)
    }

    fn date(&self, column: usize, name: &str) -> rusqlite::Result<Option<Date>> {
        let text = match self.0.get_ref(column)? {
            ValueRef::Null => return Ok(None),
            value => value.as_str()?,
        };
        Date::parse(text).map(Some).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(column, name.to_owned(), rusqlite::types::Type::Text)
        })
    }

    fn unexpected_null(&self, column: usize, name: &str) -> rusqlite::Error {
        rusqlite::Error::InvalidColumnType(column, name.to_owned(), rusqlite::types::Type::Null)
    }
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation)
}

/// Records the row's (period, refresh date) for the report functions (see
/// [`TableSql::note_refresh`]); nothing for reports without a period.
fn note_refresh(
    connection: &Connection,
    table: &TableSql,
    report: &ReportType,
    tenant: &Uuid,
    values: &[Value],
) -> Result<(), StorageError> {
    let (Some(sql), Some(period)) = (&table.note_refresh, report.period_index()) else {
        return Ok(());
    };
    let params = [
        Bind::of(Param::Uuid(*tenant)),
        Bind::of(&values[period]),
        Bind::of(&values[report.refresh_date_index()]),
    ];
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute(rusqlite::params_from_iter(params)))
        .map(|_| ())
        .map_err(backend)
}

/// Runs one step of a [`WritePlan`] in the caller's transaction.
fn run_step(
    connection: &Connection,
    report: &ReportType,
    step: Step<'_>,
) -> Result<Outcome, StorageError> {
    match step {
        Step::ReadEntity { sql, params, .. } => connection
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(bind(&params), |row| decode_entity(report, &Columns(row)))
                    .optional()
            })
            .map(Outcome::Entity)
            .map_err(backend),
        Step::ReadId { sql, params } => connection
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row(bind(&params), |row| row.get(0)).optional())
            .map(Outcome::Id)
            .map_err(backend),
        Step::Execute { sql, params } => {
            let mut statement = connection.prepare_cached(sql).map_err(backend)?;
            match statement.execute(bind(&params)) {
                Ok(changed) => Ok(Outcome::Changed(changed as u64)),
                Err(error) if is_unique_violation(&error) => Ok(Outcome::UniqueViolation),
                Err(error) => Err(backend(error)),
            }
        }
        Step::Finished => Ok(Outcome::Changed(0)),
    }
}

/// Runs the [`WritePlan`] of `request` in the caller's transaction, then records the refresh
/// date of the values it stored.
fn write_entity(
    connection: &Connection,
    table: &TableSql,
    request: WriteRequest,
) -> Result<Entity, StorageError> {
    let tenant = request.tenant;
    let mut plan = WritePlan::new(table, request);
    loop {
        let outcome = match plan.step() {
            Step::Finished => break,
            step => run_step(connection, plan.report(), step)?,
        };
        plan.advance(outcome);
    }
    let report = plan.report();
    let stores_values = plan.stores_values();
    let written = plan.finish()?;
    if stores_values {
        note_refresh(connection, table, report, &tenant, &written.values)?;
    }
    Ok(written)
}

/// Upserts rows one by one in the caller's transaction.
///
/// Why not one `INSERT … ON CONFLICT DO UPDATE` per row: SQLite gives such a statement a
/// statement journal, a copy of every page it touches, which profiles showed as a third of a bulk
/// import. An `INSERT … ON CONFLICT DO NOTHING` needs none; when it inserts nothing, the stored
/// row is read and updated if it differs. A file is usually all new or all known, so after a
/// known row the lookup goes first, saving the failed insert.
struct BulkUpsert<'a> {
    tx: &'a Transaction<'a>,
    table: &'a TableSql,
    report: &'static ReportType,
    tenant: Uuid,
    insert_if_new: rusqlite::CachedStatement<'a>,
    find: rusqlite::CachedStatement<'a>,
    counts: UpsertCounts,
    last_was_known: bool,
    /// The (period, refresh date) last recorded: consecutive rows almost always share it.
    last_noted: Option<(Value, Value)>,
    /// What this transaction changed, for the undo of a load that spans several.
    journal: Journal,
    /// Rows inserted by the fast path, for the per-day summary at the end of the transaction
    /// ([`BulkUpsert::summarize`]); rows written through [`write_entity`] keep it themselves.
    days: DaysBatch,
}

impl<'a> BulkUpsert<'a> {
    fn note_refresh(&mut self, values: &[Value]) -> Result<(), StorageError> {
        let Some(period) = self.report.period_index() else {
            return Ok(());
        };
        let key = (
            values[period].clone(),
            values[self.report.refresh_date_index()].clone(),
        );
        if self.last_noted.as_ref() != Some(&key) {
            note_refresh(self.tx, self.table, self.report, &self.tenant, values)?;
            self.last_noted = Some(key);
        }
        Ok(())
    }

    fn new(
        tx: &'a Transaction<'a>,
        table: &'a TableSql,
        report: &'static ReportType,
        tenant: Uuid,
    ) -> Result<Self, StorageError> {
        Ok(BulkUpsert {
            tx,
            table,
            report,
            tenant,
            insert_if_new: tx.prepare_cached(&table.insert_if_new).map_err(backend)?,
            find: tx
                .prepare_cached(&table.select_by_natural_key)
                .map_err(backend)?,
            counts: UpsertCounts::default(),
            last_was_known: false,
            last_noted: None,
            journal: Journal::default(),
            days: DaysBatch::default(),
        })
    }

    /// Adds the rows inserted since the last call to the per-day summary, one statement per
    /// summary row (a chunk of 307-row refreshes touches a few hundred).
    fn summarize(&mut self) -> Result<(), StorageError> {
        let Some(days) = &self.table.days else {
            return Ok(());
        };
        if self.days.is_empty() {
            return Ok(());
        }
        let mut add = self.tx.prepare_cached(&days.add).map_err(backend)?;
        for params in self.days.drain(days, self.tenant) {
            add.execute(bind(&params)).map_err(backend)?;
        }
        Ok(())
    }

    fn upsert(&mut self, values: Vec<Value>) -> Result<(), StorageError> {
        let tenant = &self.tenant;
        if !self.last_was_known {
            // Bound in place: no per-row vectors on the hottest path of an import.
            let insert = &mut self.insert_if_new;
            let id = Uuid::now_v7();
            insert.raw_bind_parameter(1, tenant).map_err(backend)?;
            insert.raw_bind_parameter(2, id).map_err(backend)?;
            for (i, value) in values.iter().enumerate() {
                insert
                    .raw_bind_parameter(i + 3, Bind::of(value))
                    .map_err(backend)?;
            }
            if insert.raw_execute().map_err(backend)? == 1 {
                self.counts.inserted += 1;
                self.journal.inserted(id);
                if let Some(days) = &self.table.days {
                    self.days.inserted(days, id, &values);
                }
                return self.note_refresh(&values);
            }
        }
        let report = self.report;
        let current = self
            .find
            .query_row(bind(&key_params(report, *tenant, &values)), |row| {
                decode_entity(report, &Columns(row))
            })
            .optional()
            .map_err(backend)?;
        self.last_was_known = current.is_some();
        match current {
            None => {
                let id = Uuid::now_v7();
                self.write(Write::Insert { id, values })?;
                self.counts.inserted += 1;
                self.journal.inserted(id);
            }
            Some(current) if current.values == values => self.counts.unchanged += 1,
            Some(current) => {
                self.journal.updated(&current);
                self.write(Write::Replace { current, values })?;
                self.counts.updated += 1;
            }
        }
        Ok(())
    }

    /// One entity written as a single write is (see [`write_entity`]).
    fn write(&self, write: Write) -> Result<Entity, StorageError> {
        let request = WriteRequest {
            tenant: self.tenant,
            report: self.report,
            write,
        };
        write_entity(self.tx, self.table, request)
    }
}

/// Rows a load inserted or changed so far.
fn changed_rows(counts: &UpsertCounts) -> u64 {
    counts.inserted + counts.updated
}

/// Raises the tenant's change version (`reportroot_storage::changes`) in the caller's
/// transaction: once per transaction of a load that changed rows, and per undo step.
pub(crate) fn note_change(
    connection: &Connection,
    table: &TableSql,
    tenant: &Uuid,
) -> Result<(), StorageError> {
    connection
        .prepare_cached(&table.note_change)
        .and_then(|mut statement| statement.execute([tenant]))
        .map(|_| ())
        .map_err(backend)
}

/// A chunk handed on by [`PendingRows::relay`]: `None` once the producer's rows ended (a
/// closed channel without it means the relay died, and the load must not commit).
type Relayed = Option<Result<Vec<Vec<Value>>, LoadAborted>>;

/// Rows of a load waiting to be written: the rest of the current chunk, then the producer's,
/// which a relay thread receives so that a transaction can take the chunks that are ready
/// without ever waiting for the producer with the write lock held.
struct PendingRows {
    incoming: std::sync::mpsc::Receiver<Relayed>,
    current: std::vec::IntoIter<Vec<Value>>,
}

impl PendingRows {
    /// Starts the relay thread that pulls `chunks` (the iterator may block: a parser on
    /// another thread, say).
    fn relay(chunks: RowChunks) -> Result<Self, StorageError> {
        // A little ahead of the writer, never the whole file.
        let (sender, incoming) = std::sync::mpsc::sync_channel(2);
        std::thread::Builder::new()
            .name("sqlite-load-rows".into())
            .spawn(move || {
                for chunk in chunks {
                    if sender.send(Some(chunk)).is_err() {
                        return; // the load stopped
                    }
                }
                let _ = sender.send(None);
            })
            .map_err(backend)?;
        Ok(PendingRows {
            incoming,
            current: Vec::new().into_iter(),
        })
    }

    /// Takes a received chunk: true if rows came, false at their end.
    fn take(&mut self, relayed: Result<Relayed, ()>) -> Result<bool, StorageError> {
        match relayed {
            Ok(Some(Ok(rows))) => {
                self.current = rows.into_iter();
                Ok(true)
            }
            Ok(Some(Err(LoadAborted(why)))) => Err(StorageError::Aborted(why)),
            Ok(None) => Ok(false),
            Err(()) => Err(StorageError::Aborted(
                "the rows stopped before their end".into(),
            )),
        }
    }

    /// Waits for the next chunk unless rows are pending; false at the end of the rows.
    fn wait(&mut self) -> Result<bool, StorageError> {
        while self.current.as_slice().is_empty() {
            let relayed = self.incoming.recv().map_err(|_| ());
            if !self.take(relayed)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Upserts rows until `deadline`, their end, or no chunk is ready; true if rows may
    /// remain. Never waits for the producer: the caller commits and waits without the lock.
    fn feed(&mut self, load: &mut BulkUpsert<'_>, deadline: Instant) -> Result<bool, StorageError> {
        loop {
            while let Some(values) = self.current.next() {
                load.upsert(values)?;
                if self.current.len().is_multiple_of(256) && Instant::now() >= deadline {
                    return Ok(true);
                }
            }
            if Instant::now() >= deadline {
                return Ok(true);
            }
            let relayed = match self.incoming.try_recv() {
                Ok(relayed) => Ok(relayed),
                Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(true),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => Err(()),
            };
            if !self.take(relayed)? {
                return Ok(false);
            }
        }
    }
}

/// A load between two of its transactions.
struct LoadState {
    rows: PendingRows,
    counts: UpsertCounts,
    last_was_known: bool,
}

/// One transaction of a load (see [`SqliteStorage::load`]): rows for about
/// [`import::CHUNK_BUDGET`], and their undo journal when the load spans transactions (`import`
/// is its id, or it is created here when this first transaction does not finish the load).
/// Returns the state, the lock of a load made undoable here, and whether rows may remain.
fn load_step(
    tx: &Transaction<'_>,
    inner: &Inner,
    report: &'static ReportType,
    tenant: Uuid,
    mut state: LoadState,
    import: Option<Uuid>,
) -> Result<(LoadState, Option<ImportLock>, bool), StorageError> {
    let deadline = Instant::now() + import::CHUNK_BUDGET;
    let mut bulk = BulkUpsert::new(tx, inner.tables.get(report)?, report, tenant)?;
    bulk.counts = state.counts;
    bulk.last_was_known = state.last_was_known;
    let more = state.rows.feed(&mut bulk, deadline)?;
    bulk.summarize()?;
    if changed_rows(&bulk.counts) > changed_rows(&state.counts) {
        note_change(tx, bulk.table, &tenant)?;
    }
    state.counts = bulk.counts;
    state.last_was_known = bulk.last_was_known;
    let journal = std::mem::take(&mut bulk.journal);
    drop(bulk);
    let created = match (import, more) {
        // The whole load in this one transaction: SQLite's atomicity is enough.
        (None, false) => None,
        (Some(id), _) => {
            journal.write(tx, id)?;
            None
        }
        (None, true) => {
            let lock = ImportLock::create(&inner.path)?;
            let registered = import::register(tx, &lock, report, &tenant)
                .and_then(|()| journal.write(tx, lock.id));
            if let Err(error) = registered {
                lock.release();
                return Err(error);
            }
            Some(lock)
        }
    };
    Ok((state, created, more))
}

#[async_trait]
impl SqlRunner for SqliteStorage {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&self, sql: String, params: Vec<SqlValue>) -> Result<u64, StorageError> {
        self.write_transaction(move |tx, _| {
            let params = rusqlite::params_from_iter(params.iter().map(directory_param));
            let changed = tx.execute(&sql, params).map_err(backend)?;
            Ok(changed as u64)
        })
        .await
    }

    async fn query(
        &self,
        sql: String,
        params: Vec<SqlValue>,
    ) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        self.read(ReadCost::Bounded, move |connection, _| {
            let mut statement = connection.prepare(&sql).map_err(backend)?;
            let width = statement.column_count();
            let params = rusqlite::params_from_iter(params.iter().map(directory_param));
            let rows = statement
                .query_map(params, |row| {
                    (0..width)
                        .map(|i| {
                            Ok(match row.get_ref(i)? {
                                ValueRef::Integer(n) => SqlValue::Int(n),
                                ValueRef::Text(t) => {
                                    SqlValue::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                _ => SqlValue::Null,
                            })
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn transaction(
        &self,
        statements: Vec<(String, Vec<SqlValue>)>,
        abort_unless_changed: Option<usize>,
    ) -> Result<Vec<u64>, StorageError> {
        self.with_writer(move |transaction, _| {
            let mut changed = Vec::with_capacity(statements.len());
            for (i, (sql, params)) in statements.iter().enumerate() {
                let params = rusqlite::params_from_iter(params.iter().map(directory_param));
                let count = transaction.execute(sql, params).map_err(backend)? as u64;
                changed.push(count);
                if count == 0 && abort_unless_changed == Some(i) {
                    return Ok(changed); // dropped: rolled back
                }
            }
            commit(transaction)?;
            Ok(changed)
        })
        .await
    }
}

fn directory_param(value: &SqlValue) -> rusqlite::types::Value {
    match value {
        SqlValue::Null => rusqlite::types::Value::Null,
        SqlValue::Int(n) => rusqlite::types::Value::Integer(*n),
        SqlValue::Text(text) => rusqlite::types::Value::Text(text.clone()),
    }
}

#[async_trait]
impl SqlBackend for SqliteStorage {
    fn tables(&self) -> &TableSet {
        &self.inner.tables
    }

    /// The reader connections (opened on demand, kept) and the one writer.
    fn pool_status(&self) -> Vec<reportroot_storage::PoolStatus> {
        let readers_in_use =
            MAX_READERS.saturating_sub(self.inner.reader_slots.available_permits());
        let writer_in_use = 1 - self.inner.writer_slot.available_permits().min(1);
        vec![
            reportroot_storage::PoolStatus {
                pool: "sqlite_readers",
                in_use: readers_in_use,
                idle: lock(&self.inner.readers).len(),
                max: MAX_READERS,
                waiting: None,
            },
            reportroot_storage::PoolStatus {
                pool: "sqlite_writer",
                in_use: writer_in_use,
                idle: 1 - writer_in_use,
                max: 1,
                waiting: None,
            },
        ]
    }

    fn known_tenants(&self) -> &KnownTenants {
        &self.inner.known_tenants
    }

    async fn read_entities(
        &self,
        report: &'static ReportType,
        query: CompiledSql,
        cost: ReadCost,
    ) -> Result<Vec<Entity>, StorageError> {
        self.read(cost, move |connection, _| {
            let mut statement = connection.prepare_cached(&query.sql).map_err(backend)?;
            let rows = statement
                .query_map(bind(&query.params), |row| {
                    decode_entity(report, &Columns(row))
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn read_count(&self, query: CompiledSql, cost: ReadCost) -> Result<i64, StorageError> {
        self.read(cost, move |connection, _| {
            connection
                .prepare_cached(&query.sql)
                .and_then(|mut s| s.query_row(bind(&query.params), |row| row.get(0)))
                .map_err(backend)
        })
        .await
    }

    async fn write(&self, request: WriteRequest) -> Result<Entity, StorageError> {
        self.write_transaction(move |tx, inner| {
            write_entity(tx, inner.tables.get(request.report)?, request)
        })
        .await
    }

    /// In short transactions, so that other writers (the server's, another process's) wait
    /// at most about one of them; undone if it fails (see `import.rs`).
    async fn load(&self, load: Load) -> Result<UpsertCounts, StorageError> {
        let Load {
            tenant,
            report,
            chunks,
        } = load;
        let mut import = None;
        let loaded = self.load_chunks(tenant, report, chunks, &mut import).await;
        let Some(lock) = import else {
            return loaded; // one transaction, committed or rolled back
        };
        let id = lock.id;
        let committed = match loaded {
            Ok(counts) => self
                .write_transaction(move |tx, _| import::unregister(tx, id))
                .await
                .map(|()| counts),
            Err(error) => Err(error),
        };
        match committed {
            Ok(counts) => {
                if let Err(error) = self.repeat_write(|tx, _| import::purge_step(tx)).await {
                    tracing::warn!(%error, "the undo journal of a finished import is left for the next open");
                }
                lock.release();
                Ok(counts)
            }
            Err(error) => {
                let undone = self
                    .repeat_write(move |tx, _| import::undo_step(tx, id, report, &tenant.0))
                    .await;
                match undone {
                    Ok(()) => lock.release(),
                    // Dropping the lock lets the next open undo it.
                    Err(undo) => {
                        tracing::error!(import = %id, %undo, "a failed import is not undone yet: the next open of the database undoes it");
                    }
                }
                Err(error)
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A read that may scan runs at the lowest priority; a bounded one on the worker as is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_that_may_scan_run_at_the_lowest_priority() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = SqliteStorage::open(dir.path().join("nice.db"), Durability::Process)
            .expect("a new database");
        let nice_of = |cost| storage.read(cost, |_, _| Ok(scan_thread::current_nice()));
        let worker = scan_thread::current_nice();
        assert_eq!(nice_of(ReadCost::Bounded).await.expect("a read"), worker);
        assert_eq!(nice_of(ReadCost::MayScan).await.expect("a read"), 19);
        // The runtime's own threads keep theirs.
        assert_eq!(nice_of(ReadCost::Bounded).await.expect("a read"), worker);
        let idle_of = |cost| storage.read(cost, |_, _| Ok(scan_thread::in_idle_class()));
        assert!(idle_of(ReadCost::MayScan).await.expect("a read"));
        assert!(!idle_of(ReadCost::Bounded).await.expect("a read"));
    }

    /// The time limit's checks count a read's work: none for a page-sized statement, many
    /// for one that loops (what `in_place` tells heavy reads by).
    #[test]
    fn the_time_limit_counts_a_reads_work() {
        let connection = Connection::open_in_memory().expect("a connection");
        let count = |sql: &'static str| {
            with_time_limit(&connection, Duration::from_secs(60), || {
                connection
                    .query_row(sql, [], |row| row.get::<_, i64>(0))
                    .map_err(backend)
            })
        };
        let (one, checks) = count("SELECT 1");
        assert_eq!((one.expect("a value"), checks), (1, 0));
        let (n, checks) = count(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
             SELECT count(*) FROM n",
        );
        assert_eq!(n.expect("a count"), 100_000);
        assert!(checks >= in_place::HEAVY_READ_CHECKS, "{checks} checks");
        // A statement stopped by the limit is a timeout, its checks counted all the same.
        let (stopped, checks) = with_time_limit(&connection, Duration::ZERO, || {
            connection
                .query_row(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                     SELECT count(*) FROM n",
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .map_err(backend)
        });
        assert!(matches!(stopped, Err(StorageError::QueryTimeout)));
        assert!(checks >= 1);
    }

    /// A scan whose request is dropped (the client went away) keeps its slots until its
    /// thread ends, so dropped requests cannot start more scan threads than there are slots.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_scan_keeps_its_slots_until_its_thread_ends() {
        use std::sync::mpsc;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = SqliteStorage::open(dir.path().join("dropped.db"), Durability::Process)
            .expect("a new database");
        let (started, has_started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let scan = tokio::spawn({
            let storage = storage.clone();
            async move {
                storage
                    .read(ReadCost::MayScan, move |_, _| {
                        started.send(()).expect("the test waits");
                        released.recv().ok();
                        Ok(())
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || has_started.recv().expect("the scan starts"))
            .await
            .expect("waiting");
        scan.abort();
        assert!(scan.await.is_err(), "the request was dropped");
        let free = |slots: &tokio::sync::Semaphore| slots.available_permits();
        assert_eq!(free(&storage.inner.scan_slots), MAX_SCAN_READERS - 1);
        assert_eq!(free(&storage.inner.reader_slots), MAX_READERS - 1);
        release.send(()).expect("the scan's thread waits");
        for _ in 0..1000 {
            if free(&storage.inner.scan_slots) == MAX_SCAN_READERS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(free(&storage.inner.scan_slots), MAX_SCAN_READERS);
        assert_eq!(free(&storage.inner.reader_slots), MAX_READERS);
    }

    /// Scans hold at most half the reader connections: with more scans running than that,
    /// a bounded read still gets one at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scans_leave_reader_connections_to_bounded_reads() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Condvar, Mutex as StdMutex};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = SqliteStorage::open(dir.path().join("slots.db"), Durability::Process)
            .expect("a new database");
        let gate = Arc::new((StdMutex::new(false), Condvar::new()));
        let started = Arc::new(AtomicUsize::new(0));
        let scans: Vec<_> = (0..MAX_READERS)
            .map(|_| {
                let (storage, gate, started) = (storage.clone(), gate.clone(), started.clone());
                tokio::spawn(async move {
                    storage
                        .read(ReadCost::MayScan, move |_, _| {
                            started.fetch_add(1, Ordering::SeqCst);
                            let (open, opened) = &*gate;
                            let guard = open.lock().expect("the gate");
                            drop(opened.wait_while(guard, |open| !*open).expect("the gate"));
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        while started.load(Ordering::SeqCst) < MAX_SCAN_READERS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let bounded = storage.read(ReadCost::Bounded, |_, _| Ok(()));
        tokio::time::timeout(Duration::from_secs(10), bounded)
            .await
            .expect("a bounded read is not kept waiting by scans")
            .expect("a read");
        assert_eq!(started.load(Ordering::SeqCst), MAX_SCAN_READERS);
        *gate.0.lock().expect("the gate") = true;
        gate.1.notify_all();
        for scan in scans {
            scan.await.expect("a scan task").expect("a scan");
        }
        assert_eq!(started.load(Ordering::SeqCst), MAX_READERS);
    }
}
