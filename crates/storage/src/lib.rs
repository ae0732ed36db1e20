//! The storage layer's contract. The HTTP layer only ever sees `Arc<dyn Storage>`; every
//! backend (SQLite, PostgreSQL) gets [`Storage`] from the shared SQL engine
//! ([`engine::SqlBackend`]) and provides only what differs between databases. Every operation
//! is scoped to one tenant: no method can read or write another tenant's rows.

pub mod accounts;
pub mod changes;
pub mod csv_import;
pub mod days;
pub mod directory;
pub mod engine;
pub mod list_sql_cache;
pub mod query_cost;
pub mod query_sql;
pub mod series;
mod side_rows;
pub mod sql;
pub mod throttle;

/// The order a list query is answered in: its `$orderby`, else the scope's default, with the
/// id last for a total order (what a `$skiptoken` records the position in).
pub use query_sql::effective_order;

use async_trait::async_trait;
use reportroot_model::{Entity, Period, ReportType, TenantId, Value};
use reportroot_odata::query::{Expr, OrderKey};
use uuid::Uuid;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The tenant already has an entity with this id.
    #[error("An entity with id '{0}' already exists.")]
    DuplicateId(Uuid),
    /// The tenant already has an entity with the same natural key.
    #[error("An entity with the same {key} already exists: id '{existing}'.")]
    DuplicateKey {
        /// The existing entity's id.
        existing: Uuid,
        /// The natural key's property names, for the message.
        key: String,
    },
    /// No such entity for this tenant.
    #[error("The entity was not found.")]
    NotFound,
    /// `If-Match` named another version.
    #[error("The entity has changed since it was read (current eTag {current}).")]
    PreconditionFailed {
        /// The current eTag.
        current: String,
    },
    /// The database's schema is newer than this binary understands.
    #[error("The database schema version {found} is newer than this reportroot supports ({supported}); upgrade reportroot.")]
    SchemaTooNew {
        /// The database's version.
        found: i64,
        /// This binary's newest version.
        supported: i64,
    },
    /// The rows given to [`Storage::upsert_stream`] ended with [`LoadAborted`]; nothing of
    /// the load was written.
    #[error("the load was stopped and rolled back: {0}")]
    Aborted(String),
    /// A read ran past the backend's statement time limit (a `$filter` no index serves,
    /// over a long history) and was stopped; see [`READ_TIME_LIMIT`].
    #[error("The query took longer than {} ms and was stopped; narrow $filter (e.g. by reportDate) or ask for fewer rows.", READ_TIME_LIMIT.as_millis())]
    QueryTimeout,
    /// A series would answer more than [`series::SERIES_MAX_POINTS`] rows.
    #[error("The series has more than {} points; narrow the range from/to or use a longer interval ('week' or 'month').", series::SERIES_MAX_POINTS)]
    TooManyPoints,
    /// Anything else the database reported, with what was being done and why it failed.
    #[error(transparent)]
    Backend(BackendError),
}

impl StorageError {
    /// A database failure while doing `context` ("cannot open the database file"), caused by
    /// `cause`.
    pub fn backend(
        context: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StorageError::Backend(BackendError::new(context, cause))
    }
}

/// A database failure: what was being done, and the error that stopped it.
///
/// `Display` reads `database error: <context>: <cause>: <its cause>…`, because most callers
/// print only `Display` (a log line, the CLI's message) and a driver's own text is often
/// vague ("db error") while the useful part sits in its causes. `source()` still returns the
/// cause, for code that inspects it.
#[derive(Debug)]
pub struct BackendError {
    context: String,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// A failure while doing `context` (may be empty when the cause says it all).
    pub fn new(
        context: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        BackendError {
            context: context.into(),
            cause: Some(cause.into()),
        }
    }

    /// A failure described by text alone, without an underlying error.
    pub fn message(text: impl Into<String>) -> Self {
        BackendError {
            context: text.into(),
            cause: None,
        }
    }

    /// What was being done.
    pub fn context(&self) -> &str {
        &self.context
    }
}

impl From<String> for BackendError {
    fn from(text: String) -> Self {
        BackendError::message(text)
    }
}

impl From<&str> for BackendError {
    fn from(text: &str) -> Self {
        BackendError::message(text)
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("database error: ")?;
        match &self.cause {
            None => f.write_str(&self.context),
            Some(cause) if self.context.is_empty() => f.write_str(&error_chain(cause.as_ref())),
            Some(cause) => write!(f, "{}: {}", self.context, error_chain(cause.as_ref())),
        }
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

/// An error and its causes, `error: cause: cause`. Why: tokio-postgres says only "error
/// connecting to server" or "db error" and keeps what happened (the OS error, the server's
/// message) in `source()`. A cause whose text is already shown is skipped (deadpool's errors
/// repeat their source's).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let shown = cause.to_string();
        if !text.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        source = cause.source();
    }
    text
}

/// What opening a database did to its schema, for `reportroot migrate` to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChange {
    /// The database had no schema; this version was created.
    Created(i64),
    /// The schema was upgraded between these versions.
    Upgraded {
        /// The version found.
        from: i64,
        /// The version it is now.
        to: i64,
    },
    /// The version was current but tables or indexes were missing (a report new to the
    /// registry, say) and were added.
    Completed(i64),
    /// Nothing was changed.
    UpToDate(i64),
}

impl std::fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaChange::Created(version) => write!(f, "created schema version {version}"),
            SchemaChange::Upgraded { from, to } => {
                write!(f, "upgraded from version {from} to {to}")
            }
            SchemaChange::Completed(version) => {
                write!(f, "added missing tables to schema version {version}")
            }
            SchemaChange::UpToDate(version) => {
                write!(f, "schema is up to date (version {version})")
            }
        }
    }
}

/// Why the producer of a [`RowChunks`] stream stopped it (a bad row, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadAborted(pub String);

/// Rows in registry order, arriving in chunks (a file being parsed, say) for
/// [`Storage::upsert_stream`]; the iterator may block while the next chunk is produced.
pub type RowChunks = Box<dyn Iterator<Item = Result<Vec<Vec<Value>>, LoadAborted>> + Send>;

/// The `If-Match` condition of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No condition, or `If-Match: *`.
    None,
    /// The entity's current version must be this one.
    Version(i64),
}

impl Precondition {
    /// Fails with [`StorageError::PreconditionFailed`] unless `current` satisfies it.
    pub fn check(self, current: &Entity) -> Result<(), StorageError> {
        match self {
            Precondition::Version(expected) if expected != current.version => {
                Err(StorageError::PreconditionFailed {
                    current: current.etag(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// A row to create: the values of every property in registry order, and an optional id.
#[derive(Debug, Clone)]
pub struct NewEntity {
    /// A client-chosen id; a new GUID is made when absent.
    pub id: Option<Uuid>,
    /// One value per property, in registry order.
    pub values: Vec<Value>,
}

/// What a bulk upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    /// New rows.
    pub inserted: u64,
    /// Rows whose values changed.
    pub updated: u64,
    /// Rows already stored with the same values.
    pub unchanged: u64,
}

/// One connection pool of a backend, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Which pool (`postgres`; SQLite's `sqlite_readers` and `sqlite_writer`).
    pub pool: &'static str,
    /// Connections lent out now.
    pub in_use: usize,
    /// Connections open and waiting in the pool.
    pub idle: usize,
    /// Most connections the pool opens.
    pub max: usize,
    /// Tasks waiting for a connection, when the pool knows.
    pub waiting: Option<usize>,
}

/// The backend-independent contract of a report store.
#[async_trait]
pub trait Storage: Send + Sync {
    /// The app registrations and signing keys kept in the same database.
    fn directory(&self) -> directory::Directory<'_>;

    /// Throttle counters shared by every instance on this database, or `None` when the
    /// backend keeps none (SQLite: the API counts in memory).
    fn throttle_counters(&self) -> Option<throttle::ThrottleCounters<'_>> {
        None
    }

    /// The backend's connection pools as they are now, for metrics.
    fn pool_status(&self) -> Vec<PoolStatus> {
        Vec::new()
    }

    /// The dashboard's users, sessions and tenant names kept in the same database.
    fn accounts(&self) -> accounts::Accounts<'_>;

    /// Creates an entity; the natural key and the id must be new for the tenant.
    async fn insert(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        entity: NewEntity,
    ) -> Result<Entity, StorageError>;

    /// Reads one entity.
    async fn get(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
    ) -> Result<Option<Entity>, StorageError>;

    /// Reads a page of the tenant's entities.
    async fn list(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        query: &ListQuery,
    ) -> Result<Vec<Entity>, StorageError>;

    /// Counts the tenant's entities in `scope` that match `filter`.
    async fn count(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        scope: Scope,
        filter: Option<&Expr>,
    ) -> Result<u64, StorageError>;

    /// Changes some properties of an entity and returns it whole, with a new version.
    async fn update(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
        changes: &[(usize, Value)],
        precondition: Precondition,
    ) -> Result<Entity, StorageError>;

    /// Deletes an entity.
    async fn delete(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
        precondition: Precondition,
    ) -> Result<(), StorageError>;

    /// The rows a report function returns: those of the latest refresh date (that has rows of
    /// `period`, when given), in the function's order.
    async fn latest_report(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        period: Option<Period>,
    ) -> Result<Vec<Entity>, StorageError>;

    /// The tenant's history as a chart reads it (`reportroot.series`): one row per date of
    /// the report's axis (or per week or month: the row of its latest date) and dimension
    /// value, in `[from, to]`, ascending by date, then dimension value. For a per-day report,
    /// each date's row is the one of the latest refresh that reports it, whatever its period.
    /// [`StorageError::TooManyPoints`] past [`series::SERIES_MAX_POINTS`] rows.
    async fn series(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        query: &series::SeriesQuery,
    ) -> Result<Vec<Entity>, StorageError>;

    /// The tenant's change version ([`changes`]): raised by every write of its report rows
    /// (through any instance or process), 0 before the first. One primary-key lookup.
    async fn tenant_version(&self, tenant: TenantId) -> Result<i64, StorageError>;

    /// Inserts or updates rows by natural key, all in one transaction.
    async fn upsert_many(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        rows: Vec<Vec<Value>>,
    ) -> Result<UpsertCounts, StorageError> {
        self.upsert_stream(tenant, report, Box::new(std::iter::once(Ok(rows))))
            .await
    }

    /// [`Storage::upsert_many`] of rows that arrive while they are written, all or nothing: if
    /// a chunk is [`LoadAborted`] ([`StorageError::Aborted`]) or writing fails, nothing of the
    /// load remains. A large file is parsed on one core while it is written on another, and
    /// its parsed rows are never all in memory at once.
    ///
    /// How is the backend's choice: PostgreSQL writes one transaction (its row locks let other
    /// writers on); SQLite, which has one write lock per file, commits in short transactions
    /// so that other writers get in between, and undoes what was committed if the load fails
    /// (readers may see the rows appear progressively meanwhile).
    async fn upsert_stream(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        chunks: RowChunks,
    ) -> Result<UpsertCounts, StorageError>;
}

/// How long one read statement (a page, a count) may run before the backend stops it
/// (SQLite: a progress handler on the reader connection; PostgreSQL: `statement_timeout` in
/// the read's transaction). Why: a filter on an unindexed count scans the tenant's history
/// (`teams gt 100` on 1.12M rows: 550 ms unloaded, 4–6 s on a loaded 2-core machine) and
/// holds one of SQLite's four reader connections meanwhile; the limit bounds how long any
/// tenant's scan can keep a reader from the others. Pages an index serves take milliseconds.
pub const READ_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Which rows a listing starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every row of the tenant.
    #[default]
    All,
    /// The rows a report function returns: the latest refresh date (that has rows of the
    /// period, when given).
    Latest {
        /// The report period, for periodic reports.
        period: Option<Period>,
    },
}

/// The position of the last row of a page: its order-key values (without `id`) and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Values of the order keys other than `id`, in order.
    pub values: Vec<Value>,
    /// The row's id.
    pub id: Uuid,
}

/// Which rows of a collection to read, in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListQuery {
    /// All rows, or the latest report's.
    pub scope: Scope,
    /// `$filter`.
    pub filter: Option<Expr>,
    /// `$orderby`; empty means the default order (see [`query_sql::effective_order`]).
    pub order_by: Vec<OrderKey>,
    /// Keyset paging: only rows after this one.
    pub after: Option<Cursor>,
    /// Rows to skip.
    pub skip: u64,
    /// At most this many rows.
    pub limit: Option<u64>,
}
