//! PostgreSQL backend: a connection pool, prepared statements, and the same uniqueness,
//! versions and transactions as SQLite. Every key starts with the tenant id, so each table can
//! be distributed by tenant on Citus and every query touches one shard (see docs/citus.md).

pub mod citus;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use reportroot_model::{Date, Entity, ReportType, Value, REPORTS};
use reportroot_storage::accounts::{tenant_backfill, KnownTenants, ACCOUNT_TABLES};
use reportroot_storage::changes::CHANGES_TABLE;
use reportroot_storage::days::DaysBatch;
use reportroot_storage::directory::{SqlRunner, SqlValue, DIRECTORY_TABLES};
use reportroot_storage::engine::{
    decode_entity, ColumnReader, Load, Outcome, Param, ReadCost, SqlBackend, Step, TableSet,
    WritePlan, WriteRequest,
};
use reportroot_storage::query_sql::CompiledSql;
use reportroot_storage::sql::{ordinal_text_migration, retired_indexes, Dialect, TableSql};
use reportroot_storage::throttle::{
    THROTTLE_TABLE, THROTTLE_TABLE_OUTDATED_SQL, THROTTLE_TABLE_SQL,
};
use reportroot_storage::{BackendError, LoadAborted, SchemaChange, StorageError, UpsertCounts};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

/// Kept here too: the CLI and older callers named it from this crate.
pub use reportroot_storage::error_chain;

/// The newest schema version this binary knows (report tables are derived from the registry
/// and created idempotently, as in SQLite). Version 2 lets counts and durations be `NULL`
/// (Graph's empty CSV cells): a version 1 database drops their `NOT NULL`. Version 3 adds the
/// directory's tables (`reportroot_storage::directory`), created like the report tables.
/// Version 4 adds the `_ahead_` partial index of per-day reports (rows dated after their
/// refresh date), created like the others, which bounds `reportDate` filters to a range of
/// the natural-key index. Version 5 replaces the activity date's history index with the series
/// index (`reportroot_storage::sql::series_index`) and adds the dashboard's accounts (users,
/// grants, sessions, tenant names: `reportroot_storage::accounts`), the tenant names filled
/// from the rows already stored. The throttle counters' table (`reportroot_storage::throttle`)
/// needs no version: it is created at every start like the others, and older binaries ignore
/// it. Version 6 adds the per-day summaries (`reportroot_storage::days`), built from the rows
/// by the migration; a version 5 binary would write rows without keeping them up.
/// Version 7 adds the tenants' change versions (`reportroot_storage::changes`), raised by
/// every write (on Citus distributed by tenant with the report tables); a version 6 binary
/// would write rows without raising them, and other instances' answer caches would miss such
/// a write (no backfill: a missing row is version 0).
/// Version 8 gives per-day reports `_by_period_day` (`reportroot_storage::sql::
/// period_pages_index`) in place of `_by_period`, its prefix: pages of one period read in
/// order, and the latest refresh of a period is one seek of it as it was of `_by_period`.
/// Version 9 gives the text columns the API orders ordinally (dimension values such as
/// `siteType`, durations), in the report tables and the per-day summaries, the `"C"`
/// collation (`reportroot_storage::sql::ordinal_text_migration`): their indexes then deliver
/// the `COLLATE "C"` order of pages and series, which they sorted again before.
/// Version 10 gives per-day reports split by a dimension (`siteType`) `_by_dimension_day`
/// (`reportroot_storage::sql::dimension_pages_index`), created like the others: a page of one
/// dimension value reads that value's entries in order, where a value no row has walked the
/// tenant's history. It also gives the per-day summaries `_days_picks`, their picks by date
/// (`reportroot_storage::days`), which a closed `reportDate` range reads alone to bound the
/// refresh dates. An older binary would work with both; the version says they were built.
/// Version 11 replaces `_days_picks` with `_days_late`, the partial index of the summaries'
/// late rows (`reportroot_storage::days`: a date's latest refresh more than the longest period
/// after it, which Graph never writes): a closed range's refresh dates end at its ceiling plus
/// that period, or at a late row's pick in the range, found with one seek. A version 10 binary
/// would work with it (its exact bound then reads the summary's rows, slower); the version
/// says it was built and `_days_picks` dropped. It also gives the summaries `_days_series`,
/// their picks in the daily series' order (`reportroot_storage::days`).
pub const SCHEMA_VERSION: i64 = 11;

/// Serialises schema changes between instances starting at once.
const MIGRATION_LOCK: i64 = 0x7265_706f_7274;

/// The PostgreSQL implementation of [`Storage`].
#[derive(Clone)]
pub struct PostgresStorage {
    /// Writes, migrations, loads and the directory's statements: no time limit.
    pool: Pool,
    /// Bounded reads of report rows (pages, rows by id, summaries, series): connections
    /// that start with the read time limit, read-only transactions and generic plans
    /// ([`reads_pool`] with [`Plans::Generic`]).
    reads: Pool,
    /// Reads that may scan ([`ReadCost::MayScan`]): the same, with plans made for their
    /// parameters ([`Plans::Custom`]).
    scans: Pool,
    /// How `reads` plans: [`Plans::Generic`], or [`Plans::Custom`] on Citus.
    bounded_plans: Plans,
    /// The configuration the pools connect with (the reads' with their options added).
    config: tokio_postgres::Config,
    /// Connections of the pool of writes and of bounded reads ([`scan_connections`] for scans).
    max_connections: usize,
    tables: Arc<TableSet>,
    /// `host:port` of the server(s), for connection errors.
    target: String,
    /// What [`PostgresStorage::connect`] did to the schema.
    schema_change: SchemaChange,
    /// How migrations distribute the tables on a Citus database.
    citus: citus::CitusOptions,
    /// `statement_timeout` of reads ([`reportroot_storage::READ_TIME_LIMIT`] unless changed).
    read_time_limit: std::time::Duration,
    /// Tenants noted in `reportroot_tenants` by this process.
    known_tenants: Arc<KnownTenants>,
}

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::backend("", error)
}

/// The servers a configuration names, `host:port` (or a socket path), for messages.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts = config.get_hosts();
    if hosts.is_empty() {
        return "(no host given)".into();
    }
    hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            // One port for every host, or one each; 5432 when none is given.
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => {
                    format!("{}/.s.PGSQL.{port}", path.display())
                }
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A pool of at most `max_connections` connections of `config` (opened as needed).
fn new_pool(config: tokio_postgres::Config, max_connections: usize) -> Result<Pool, StorageError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_connections)
        .build()
        .map_err(backend)
}

/// The pool of reads: its connections start (PostgreSQL's `options` startup parameter, after
/// any the URL gives) with `statement_timeout` set to `limit`, read-only transactions and no
/// parallel workers ([`reads_options`]), so that a read is its one statement, cannot write,
/// and runs in one backend.
fn reads_pool(
    config: &tokio_postgres::Config,
    max_connections: usize,
    limit: std::time::Duration,
    plans: Plans,
) -> Result<Pool, StorageError> {
    let mut config = config.clone();
    config.options(reads_options(config.get_options(), limit, plans));
    new_pool(config, max_connections)
}

/// The size of the scans' pool: a quarter of the others (at least one). The API's scan limits
/// admit few scans at once (by default half the cores), so more would stay idle, and every
/// pool counts against the server's `max_connections` once per instance.
fn scan_connections(max_connections: usize) -> usize {
    (max_connections / 4).max(1)
}

/// How a read connection plans its prepared statements (PostgreSQL's `plan_cache_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plans {
    /// One plan per statement, made without the parameters' values
    /// (`force_generic_plan`), for bounded reads.
    ///
    /// Why: under PostgreSQL's default (`auto`) a page's statement was planned again at
    /// every execution, because the generic plan's estimate (a `reportDate` floor is a third
    /// of the rows to the planner) looked far costlier than the custom plans' — though both
    /// read the same index in order and stop after the page. Planning took 0.4–1 ms, the
    /// execution 0.06–0.15 ms (`EXPLAIN ANALYZE`, 10-year tenant); with generic plans the
    /// pages ran at 17–22k req/s where they ran at 5–13k (bench/RESULTS.md, "PostgreSQL:
    /// one statement per read, no parallel workers, generic plans"). `tests/plans.rs` checks
    /// the generic plans of the page shapes.
    /// Not on Citus, which cannot distribute some of them ([`PostgresStorage::connect_with`]).
    Generic,
    /// PostgreSQL's default (`auto`), for scans: a scan's generic plan read the whole
    /// natural-key index in order (296 ms) where its custom plan read the table (90 ms).
    Custom,
}

/// The `options` of a read connection: those the URL gives (PostgreSQL takes the last of a
/// repeated setting, so ours win), then the time limit, read-only transactions and no
/// parallel workers.
///
/// Why no parallel workers: the reads that would get them are the scans (a `$filter` on a
/// count no index serves), and with PostgreSQL's default of 2 workers per query one admitted
/// scan ran in 3 processes, every core of the 2-core bench machine, beside the other tenants'
/// pages (bench/RESULTS.md, "PostgreSQL: one statement per read, …": the other tenant's p99
/// went from 17.4 to 9.5 ms beside the scans). The scan limits count queries, so a query must
/// cost one backend. Bounded reads, index ranges that stop early, gain nothing from workers.
fn reads_options(given: Option<&str>, limit: std::time::Duration, plans: Plans) -> String {
    // 0 would turn the limit off: at least a millisecond.
    let limit = limit.as_millis().max(1);
    let plan_cache_mode = match plans {
        Plans::Generic => "force_generic_plan",
        Plans::Custom => "auto",
    };
    let ours = format!(
        "-c statement_timeout={limit} -c default_transaction_read_only=on \
         -c max_parallel_workers_per_gather=0 -c plan_cache_mode={plan_cache_mode}"
    );
    match given {
        Some(given) if !given.trim().is_empty() => format!("{given} {ours}"),
        _ => ours,
    }
}

fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// An engine parameter bound as PostgreSQL takes it (dates as `DATE`, `NULL` for any type).
#[derive(Debug)]
struct Bind<'a>(Param<'a>);

impl ToSql for Bind<'_> {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // Each value checks the column type itself: this wrapper accepts every type.
        match self.0 {
            Param::Null => Ok(tokio_postgres::types::IsNull::Yes),
            Param::Uuid(id) => id.to_sql_checked(ty, out),
            Param::Int(i) => i.to_sql_checked(ty, out),
            Param::Text(text) => text.to_sql_checked(ty, out),
            Param::Date(date) => date.as_time().to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Rows per multi-row upsert statement ([`TableSql::upsert_many`]): their parameters are
/// held at once (a seed hands over a whole tenant's history as one chunk).
const UPSERT_MANY_ROWS: usize = 4096;

/// Summary rows added per pipeline: the statements' parameters of this many are held at once.
const PIPELINE_ROWS: usize = 1024;

/// Consecutive runs of a chunk's rows, at most `max` long, in which no natural key appears
/// twice (one `INSERT … ON CONFLICT DO UPDATE` may not change a row twice): a key seen again
/// starts the next run, so the later row is written after the earlier, as one by one.
struct KeyDistinctBatches<'r> {
    keys: Vec<usize>,
    rows: &'r [Vec<Value>],
    max: usize,
}

impl<'r> KeyDistinctBatches<'r> {
    fn new(report: &ReportType, rows: &'r [Vec<Value>], max: usize) -> Self {
        let keys = report.natural_key_indexes();
        KeyDistinctBatches { keys, rows, max }
    }
}

impl<'r> Iterator for KeyDistinctBatches<'r> {
    type Item = &'r [Vec<Value>];

    fn next(&mut self) -> Option<Self::Item> {
        if self.rows.is_empty() {
            return None;
        }
        let mut seen = std::collections::HashSet::new();
        let end = self
            .rows
            .iter()
            .take(self.max)
            .position(|row| !seen.insert(self.keys.iter().map(|&k| &row[k]).collect::<Vec<_>>()))
            .unwrap_or(self.rows.len().min(self.max));
        let (batch, rest) = self.rows.split_at(end);
        self.rows = rest;
        Some(batch)
    }
}

/// Upserts a batch of rows with distinct natural keys in one statement, and counts them:
/// returned with version 1, inserted (noted for the summary); returned with more, updated;
/// not returned, unchanged.
async fn upsert_batch(
    transaction: &tokio_postgres::Transaction<'_>,
    upsert: &tokio_postgres::Statement,
    tenant: Uuid,
    batch: &[Vec<Value>],
    table: &TableSql,
    counts: &mut UpsertCounts,
    days: &mut DaysBatch,
) -> Result<(), StorageError> {
    let ids: Vec<Uuid> = batch.iter().map(|_| Uuid::now_v7()).collect();
    let width = batch.first().map_or(0, Vec::len);
    let columns: Vec<Vec<Bind<'_>>> = (0..width)
        .map(|c| batch.iter().map(|row| Bind(Param::from(&row[c]))).collect())
        .collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant, &ids];
    params.extend(columns.iter().map(|c| c as &(dyn ToSql + Sync)));
    let written = transaction.query(upsert, &params).await.map_err(backend)?;
    let position: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    for row in &written {
        let (id, version): (Uuid, i64) = (row.get(0), row.get(1));
        match (version, position.get(&id)) {
            (1, Some(&i)) => {
                counts.inserted += 1;
                if let Some(summary) = &table.days {
                    days.inserted(summary, id, &batch[i]);
                }
            }
            // Same natural key: the summary does not change.
            _ => counts.updated += 1,
        }
    }
    counts.unchanged += (batch.len() - written.len()) as u64;
    Ok(())
}

fn binds<'a, P>(params: &'a [P]) -> Vec<Bind<'a>>
where
    &'a P: Into<Param<'a>>,
{
    params.iter().map(|p| Bind(p.into())).collect()
}

fn refs<T: ToSql + Sync>(params: &[T]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// The columns of a result row, for [`decode_entity`].
struct Columns<'r>(&'r Row);

impl ColumnReader for Columns<'_> {
    type Error = StorageError;

    fn uuid(&self, column: usize) -> Result<Uuid, StorageError> {
        self.0.try_get(column).map_err(backend)
    }

    fn int(&self, column: usize) -> Result<Option<i64>, StorageError> {
        self.0.try_get(column).map_err(backend)
    }

    fn text(&self, column: usize) -> Result<Option<String>, StorageError> {
        self.0.try_get(column).map_err(backend)
    }

    fn date(&self, column: usize, _: &str) -> Result<Option<Date>, StorageError> {
        let date: Option<time::Date> = self.0.try_get(column).map_err(backend)?;
        Ok(date.map(Date::from_time))
    }

    fn unexpected_null(&self, column: usize, name: &str) -> StorageError {
        StorageError::Backend(BackendError::message(format!(
            "column {column} ({name}) is NULL"
        )))
    }
}

impl PostgresStorage {
    /// Connects to `url` (`postgres://user:pass@host:port/db`) and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self, StorageError> {
        Self::connect_with(url, max_connections, citus::CitusOptions::default()).await
    }

    /// [`PostgresStorage::connect`], distributing the tables with `citus` when the database
    /// has the Citus extension.
    pub async fn connect_with(
        url: &str,
        max_connections: usize,
        citus: citus::CitusOptions,
    ) -> Result<Self, StorageError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|error| StorageError::backend("invalid PostgreSQL URL", error))?;
        let target = describe_target(&config);
        let read_time_limit = reportroot_storage::READ_TIME_LIMIT;
        let mut storage = PostgresStorage {
            pool: new_pool(config.clone(), max_connections)?,
            reads: reads_pool(&config, max_connections, read_time_limit, Plans::Generic)?,
            scans: reads_pool(
                &config,
                scan_connections(max_connections),
                read_time_limit,
                Plans::Custom,
            )?,
            bounded_plans: Plans::Generic,
            config,
            max_connections,
            tables: Arc::new(TableSet::new(Dialect::Postgres)),
            target,
            schema_change: SchemaChange::UpToDate(SCHEMA_VERSION),
            read_time_limit,
            citus,
            known_tenants: Arc::default(),
        };
        storage.schema_change = storage.migrate().await?;
        // Citus could not distribute the generic plans of statements with a subquery ("could
        // not create distributed plan", the report functions' latest refresh); it caches its
        // own plans of single-shard statements.
        let client = storage.client().await?;
        let on_citus = citus::has_citus(&client).await?;
        drop(client);
        if on_citus {
            storage.bounded_plans = Plans::Custom;
            storage.reads = reads_pool(
                &storage.config,
                max_connections,
                read_time_limit,
                Plans::Custom,
            )?;
        }
        Ok(storage)
    }

    /// The storage with reads cancelled after `limit` instead of
    /// [`reportroot_storage::READ_TIME_LIMIT`] (tests make it tiny to see the limit work).
    pub fn with_read_time_limit(mut self, limit: std::time::Duration) -> Self {
        self.read_time_limit = limit;
        // No connection of the old pools is lent out yet: the storage is still being built.
        let n = self.max_connections;
        if let Ok(reads) = reads_pool(&self.config, n, limit, self.bounded_plans) {
            self.reads = reads;
        }
        if let Ok(scans) = reads_pool(&self.config, scan_connections(n), limit, Plans::Custom) {
            self.scans = scans;
        }
        self
    }

    /// What [`PostgresStorage::connect`] did to the schema.
    pub fn schema_change(&self) -> SchemaChange {
        self.schema_change
    }

    async fn client(&self) -> Result<Object, StorageError> {
        self.lend(&self.pool).await
    }

    /// A connection of `pool`, or an error naming the server.
    async fn lend(&self, pool: &Pool) -> Result<Object, StorageError> {
        pool.get().await.map_err(|error| {
            StorageError::backend(
                format!("cannot connect to PostgreSQL at {}", self.target),
                error,
            )
        })
    }

    /// Runs one read under the read time limit and returns its rows: one statement on a
    /// connection of [`reads_pool`], whose session already has the limit. Why not a
    /// transaction with `SET LOCAL statement_timeout` per read (the way before): its
    /// `BEGIN`, `SET` and `COMMIT`, even pipelined into one round trip, are three more
    /// statements for the server to parse and run beside each page's one (paired with the
    /// pipelined transaction on the 10-year tenant: 1.09× the pages per second).
    ///
    /// A single statement sees one snapshot, so the page needs no transaction; and a read
    /// stopped at the limit (or dropped) leaves no transaction open behind it. `cost` picks
    /// the pool: generic plans for bounded reads, custom plans for scans ([`Plans`]).
    async fn limited_rows(
        &self,
        query: &CompiledSql,
        cost: ReadCost,
    ) -> Result<Vec<Row>, StorageError> {
        let pool = match cost {
            ReadCost::Bounded => &self.reads,
            ReadCost::MayScan => &self.scans,
        };
        let client = self.lend(pool).await?;
        let statement = client
            .prepare_cached(&query.sql)
            .await
            .map_err(read_failure)?;
        let params = binds(&query.params);
        client
            .query(&statement, &refs(&params))
            .await
            .map_err(read_failure)
    }

    async fn migrate(&self) -> Result<SchemaChange, StorageError> {
        let client = self.client().await?;
        // Why: PostgreSQL cuts identifiers at 63 bytes, and some of the registry's index names
        // are longer (`skype_for_business_…_ahead_report_date`): each `CREATE` said so in a
        // NOTICE, logged at info, dozens per start. The cut names are distinct (a storage
        // test checks it), so the notices say nothing an operator needs.
        client
            .batch_execute("SET client_min_messages = warning")
            .await
            .map_err(backend)?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(backend)?;
        let result = match self.migrate_locked(&client).await {
            // Also when the schema was up to date: Citus may have been added since.
            Ok(change) => {
                // Report tables and their per-day summaries, co-located by tenant: the
                // summary's statements join the report's rows on the same shard.
                let mut tables: Vec<String> = self
                    .tables
                    .iter()
                    .flat_map(|t| [Some(&t.table), t.days.as_ref().map(|d| &d.table)])
                    .flatten()
                    .cloned()
                    .collect();
                // The change versions too: a write raises its tenant's on the same shard group.
                tables.push(CHANGES_TABLE.to_owned());
                tables.push(THROTTLE_TABLE.to_owned());
                citus::distribute(&client, &tables, self.citus)
                    .await
                    .map(|_| change)
            }
            Err(error) => Err(error),
        };
        let _ = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        let _ = client.batch_execute("RESET client_min_messages").await;
        result
    }

    async fn migrate_locked(&self, client: &Object) -> Result<SchemaChange, StorageError> {
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS reportroot_schema (version BIGINT NOT NULL)")
            .await
            .map_err(backend)?;
        let found: Option<i64> = client
            .query_opt("SELECT max(version) FROM reportroot_schema", &[])
            .await
            .map_err(backend)?
            .and_then(|row| row.get(0));
        if let Some(found) = found.filter(|v| *v > SCHEMA_VERSION) {
            return Err(StorageError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        // Before the creation: a retired index's name, cut at 63 bytes, may be its
        // replacement's (`reportroot_storage::sql::retired_indexes`), which would then be
        // skipped as existing and dropped.
        if found.is_some_and(|from| from < SCHEMA_VERSION) {
            for index in REPORTS.iter().flat_map(retired_indexes) {
                client
                    .batch_execute(&format!("DROP INDEX IF EXISTS {index}"))
                    .await
                    .map_err(backend)?;
            }
        }
        for table in self.tables.iter() {
            for statement in &table.create {
                client.batch_execute(statement).await.map_err(backend)?;
            }
        }
        client
            .batch_execute(&self.tables.changes().create)
            .await
            .map_err(backend)?;
        let outdated = client
            .query_opt(THROTTLE_TABLE_OUTDATED_SQL, &[])
            .await
            .map_err(backend)?;
        if outdated.is_some() {
            client
                .batch_execute(&format!("DROP TABLE {THROTTLE_TABLE}"))
                .await
                .map_err(backend)?;
        }
        let global = DIRECTORY_TABLES.iter().chain(&ACCOUNT_TABLES).copied();
        for statement in global.chain([THROTTLE_TABLE_SQL]) {
            client.batch_execute(statement).await.map_err(backend)?;
        }
        match found {
            None => {
                client
                    .execute(
                        "INSERT INTO reportroot_schema (version) VALUES ($1)",
                        &[&SCHEMA_VERSION],
                    )
                    .await
                    .map_err(backend)?;
                Ok(SchemaChange::Created(SCHEMA_VERSION))
            }
            Some(from) if from < SCHEMA_VERSION => {
                if from < 2 {
                    for report in REPORTS {
                        if let Some(statement) = drop_not_null(report) {
                            client.batch_execute(&statement).await.map_err(backend)?;
                        }
                    }
                }
                if from < 5 {
                    for statement in tenant_backfill(Dialect::Postgres) {
                        client.batch_execute(&statement).await.map_err(backend)?;
                    }
                }
                // The per-day summaries (version 6), created empty above, built from the rows.
                if from < 6 {
                    for days in self.tables.iter().filter_map(|t| t.days.as_ref()) {
                        client
                            .batch_execute(&format!("DELETE FROM {}", days.table))
                            .await
                            .map_err(backend)?;
                        client
                            .batch_execute(&days.backfill)
                            .await
                            .map_err(backend)?;
                    }
                }
                // Ordinal text in the "C" collation (version 9): created so above for new
                // tables; the existing ones keep their rows and rebuild those indexes.
                if from < 9 {
                    for statement in REPORTS.iter().flat_map(ordinal_text_migration) {
                        client.batch_execute(&statement).await.map_err(backend)?;
                    }
                }
                client
                    .execute(
                        "UPDATE reportroot_schema SET version = $1",
                        &[&SCHEMA_VERSION],
                    )
                    .await
                    .map_err(backend)?;
                Ok(SchemaChange::Upgraded {
                    from,
                    to: SCHEMA_VERSION,
                })
            }
            Some(_) => Ok(SchemaChange::UpToDate(SCHEMA_VERSION)),
        }
    }
}

/// A read's failure: [`StorageError::QueryTimeout`] when PostgreSQL cancelled it for the
/// time limit (`query_canceled`).
fn read_failure(error: tokio_postgres::Error) -> StorageError {
    if error.code() == Some(&SqlState::QUERY_CANCELED) {
        StorageError::QueryTimeout
    } else {
        backend(error)
    }
}

/// `ALTER TABLE … ALTER COLUMN … DROP NOT NULL` for every count and duration column of
/// `report` (idempotent: dropping an absent constraint does nothing), or `None` if it has none.
fn drop_not_null(report: &ReportType) -> Option<String> {
    let columns: Vec<String> = report
        .properties
        .iter()
        .filter(|p| p.kind.is_nullable())
        .map(|p| format!("ALTER COLUMN {} DROP NOT NULL", p.column_name()))
        .collect();
    (!columns.is_empty())
        .then(|| format!("ALTER TABLE {} {}", report.table_name(), columns.join(", ")))
}

/// Runs the steps of `plan` on `client` until it finishes (true) or a write violates a
/// unique constraint (false: in a transaction, the rest must run outside it).
async fn run_steps<C: GenericClient>(
    client: &C,
    plan: &mut WritePlan<'_>,
) -> Result<bool, StorageError> {
    loop {
        let outcome = match plan.step() {
            Step::Finished => return Ok(true),
            step => run_step(client, plan.report(), step).await?,
        };
        let violated = matches!(outcome, Outcome::UniqueViolation);
        plan.advance(outcome);
        if violated {
            return Ok(false);
        }
    }
}

/// Runs one step of a [`WritePlan`].
async fn run_step<C: GenericClient>(
    client: &C,
    report: &ReportType,
    step: Step<'_>,
) -> Result<Outcome, StorageError> {
    let (sql, params) = match step {
        Step::ReadEntity {
            sql,
            params,
            for_update,
        } => {
            // Locks the row until the write: a concurrent write waits instead of racing.
            let locked = for_update.then(|| format!("{sql} FOR UPDATE"));
            let row = query_opt(client, locked.as_deref().unwrap_or(sql), &params).await?;
            let entity = row.map(|row| decode_entity(report, &Columns(&row)));
            return entity.transpose().map(Outcome::Entity);
        }
        Step::ReadId { sql, params } => {
            let row = query_opt(client, sql, &params).await?;
            let id = row.map(|row| row.try_get(0)).transpose().map_err(backend)?;
            return Ok(Outcome::Id(id));
        }
        Step::Execute { sql, params } => (sql, params),
        Step::Finished => return Ok(Outcome::Changed(0)),
    };
    let statement = client.prepare_cached(sql).await.map_err(backend)?;
    match client.execute(&statement, &refs(&binds(&params))).await {
        Ok(changed) => Ok(Outcome::Changed(changed)),
        Err(error) if is_unique_violation(&error) => Ok(Outcome::UniqueViolation),
        Err(error) => Err(backend(error)),
    }
}

async fn query_opt<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Option<Row>, StorageError> {
    let statement = client.prepare_cached(sql).await.map_err(backend)?;
    client
        .query_opt(&statement, &refs(&binds(params)))
        .await
        .map_err(backend)
}

#[async_trait]
impl SqlRunner for PostgresStorage {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn execute(&self, sql: String, params: Vec<SqlValue>) -> Result<u64, StorageError> {
        let client = self.client().await?;
        let params: Vec<Bind<'_>> = params.iter().map(directory_param).collect();
        // Prepared once per connection: a statement then costs one round trip, not two.
        let statement = client.prepare_cached(&sql).await.map_err(backend)?;
        client
            .execute(&statement, &refs(&params))
            .await
            .map_err(backend)
    }

    async fn query(
        &self,
        sql: String,
        params: Vec<SqlValue>,
    ) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        use tokio_postgres::types::Type;
        let client = self.client().await?;
        let params: Vec<Bind<'_>> = params.iter().map(directory_param).collect();
        let statement = client.prepare_cached(&sql).await.map_err(backend)?;
        let rows = client
            .query(&statement, &refs(&params))
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let value = if *row.columns()[i].type_() == Type::INT8 {
                            row.try_get::<_, Option<i64>>(i)
                                .map(|n| n.map_or(SqlValue::Null, SqlValue::Int))
                        } else {
                            row.try_get::<_, Option<String>>(i)
                                .map(|t| t.map_or(SqlValue::Null, SqlValue::Text))
                        };
                        value.map_err(backend)
                    })
                    .collect()
            })
            .collect()
    }

    async fn transaction(
        &self,
        statements: Vec<(String, Vec<SqlValue>)>,
        abort_unless_changed: Option<usize>,
    ) -> Result<Vec<u64>, StorageError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(backend)?;
        let mut changed = Vec::with_capacity(statements.len());
        for (i, (sql, params)) in statements.iter().enumerate() {
            let params: Vec<Bind<'_>> = params.iter().map(directory_param).collect();
            let count = transaction
                .execute(sql.as_str(), &refs(&params))
                .await
                .map_err(backend)?;
            changed.push(count);
            if count == 0 && abort_unless_changed == Some(i) {
                return Ok(changed); // dropped: rolled back
            }
        }
        transaction.commit().await.map_err(backend)?;
        Ok(changed)
    }
}

fn directory_param(value: &SqlValue) -> Bind<'_> {
    Bind(match value {
        SqlValue::Null => Param::Null,
        SqlValue::Int(n) => Param::Int(*n),
        SqlValue::Text(text) => Param::Text(text),
    })
}

#[async_trait]
impl SqlBackend for PostgresStorage {
    fn tables(&self) -> &TableSet {
        &self.tables
    }

    fn known_tenants(&self) -> &KnownTenants {
        &self.known_tenants
    }

    /// `cost` picks the pool (and so the plans: [`Plans`]); the scans' CPU is PostgreSQL's
    /// own processes', which reportroot cannot lower.
    async fn read_entities(
        &self,
        report: &'static ReportType,
        query: CompiledSql,
        cost: ReadCost,
    ) -> Result<Vec<Entity>, StorageError> {
        self.limited_rows(&query, cost)
            .await?
            .iter()
            .map(|row| decode_entity(report, &Columns(row)))
            .collect()
    }

    async fn read_count(&self, query: CompiledSql, cost: ReadCost) -> Result<i64, StorageError> {
        let rows = self.limited_rows(&query, cost).await?;
        let row = rows
            .first()
            .ok_or_else(|| StorageError::Backend("a count query returned no row".into()))?;
        row.try_get(0).map_err(backend)
    }

    /// In a transaction: an update or delete reads its row `FOR UPDATE`, and every write
    /// raises the tenant's change version after its row (and per-day summary). What follows a unique violation (finding who holds the key) runs outside
    /// the transaction, which can run nothing more.
    async fn write(&self, request: WriteRequest) -> Result<Entity, StorageError> {
        let mut client = self.client().await?;
        let mut plan = WritePlan::new(self.tables.get(request.report)?, request);
        if plan.needs_transaction() {
            let transaction = client.transaction().await.map_err(backend)?;
            if run_steps(&transaction, &mut plan).await? {
                // A failed plan (not found, precondition) rolls back as the transaction drops.
                let written = plan.finish()?;
                transaction.commit().await.map_err(backend)?;
                return Ok(written);
            }
        }
        while !run_steps(&client, &mut plan).await? {}
        plan.finish()
    }

    fn shares_throttle_counters(&self) -> bool {
        true
    }

    fn pool_status(&self) -> Vec<reportroot_storage::PoolStatus> {
        [
            ("postgres", &self.pool),
            ("postgres_reads", &self.reads),
            ("postgres_scans", &self.scans),
        ]
        .into_iter()
        .map(|(name, pool)| {
            let status = pool.status();
            reportroot_storage::PoolStatus {
                pool: name,
                in_use: status.size.saturating_sub(status.available),
                idle: status.available,
                max: status.max_size,
                waiting: Some(status.waiting),
            }
        })
        .collect()
    }

    async fn load(&self, load: Load) -> Result<UpsertCounts, StorageError> {
        let Load {
            tenant,
            report,
            mut chunks,
        } = load;
        let mut client = self.client().await?;
        let table = self.tables.get(report)?;
        let transaction = client.transaction().await.map_err(backend)?;
        let upsert_many = table.upsert_many.as_deref().ok_or_else(|| {
            StorageError::Backend(BackendError::from("no multi-row upsert".to_owned()))
        })?;
        let upsert = transaction
            .prepare_cached(upsert_many)
            .await
            .map_err(backend)?;
        let mut counts = UpsertCounts::default();
        let mut days = DaysBatch::default();
        loop {
            // The producer may block (a parser on another thread): wait for it off the runtime.
            let (chunk, rest) = tokio::task::spawn_blocking(move || (chunks.next(), chunks))
                .await
                .map_err(backend)?;
            chunks = rest;
            let rows = match chunk {
                None => break,
                Some(Err(LoadAborted(why))) => return Err(StorageError::Aborted(why)),
                Some(Ok(rows)) => rows,
            };
            for batch in KeyDistinctBatches::new(report, &rows, UPSERT_MANY_ROWS) {
                upsert_batch(
                    &transaction,
                    &upsert,
                    tenant.0,
                    batch,
                    table,
                    &mut counts,
                    &mut days,
                )
                .await?;
            }
        }
        if let Some(summary) = &table.days {
            let add = transaction
                .prepare_cached(&summary.add)
                .await
                .map_err(backend)?;
            // Pipelined as the rows are: one summary row per date and period, ~15k for a
            // 10-year tenant.
            let adds = days.drain(summary, tenant.0);
            for batch in adds.chunks(PIPELINE_ROWS) {
                let bound: Vec<Vec<Bind<'_>>> = batch.iter().map(|p| binds(p)).collect();
                let statements = bound
                    .iter()
                    .map(|b| async { transaction.execute(&add, &refs(b)).await });
                futures_util::future::try_join_all(statements)
                    .await
                    .map_err(backend)?;
            }
        }
        if counts.inserted + counts.updated > 0 {
            transaction
                .execute(table.note_change.as_str(), &[&tenant.0])
                .await
                .map_err(backend)?;
        }
        transaction.commit().await.map_err(backend)?;
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_connections_keep_the_urls_options_and_add_the_limit() {
        use std::time::Duration;
        let two = Duration::from_secs(2);
        let ours = "-c statement_timeout=2000 -c default_transaction_read_only=on \
                    -c max_parallel_workers_per_gather=0 -c plan_cache_mode=";
        let generic = format!("{ours}force_generic_plan");
        assert_eq!(reads_options(None, two, Plans::Generic), generic);
        assert_eq!(reads_options(Some(" "), two, Plans::Generic), generic);
        assert_eq!(
            reads_options(Some("-c search_path=rr"), two, Plans::Custom),
            format!("-c search_path=rr {ours}auto")
        );
        // Never 0, which would be no limit at all.
        let tiny = reads_options(None, Duration::from_micros(10), Plans::Custom);
        assert!(tiny.contains("statement_timeout=1 "), "{tiny}");
    }

    #[test]
    fn a_repeated_natural_key_or_the_size_limit_starts_the_next_batch() {
        let report =
            reportroot_model::find_report("office365ActivationsUserCounts").expect("report");
        let refresh = Value::Date(Date::parse("2025-01-31").expect("date"));
        let row = |product: &str| -> Vec<Value> {
            let mut row = vec![Value::Null; report.properties.len()];
            row[report.refresh_date_index()] = refresh.clone();
            row[1] = Value::Text(product.to_owned());
            row
        };
        let rows: Vec<_> = ["A", "B", "A", "C", "D", "E"].map(row).into();
        let sizes: Vec<usize> = KeyDistinctBatches::new(report, &rows, 3)
            .map(<[_]>::len)
            .collect();
        assert_eq!(sizes, [2, 3, 1], "A again; then at most 3");
    }
}
