//! The SQL engine both backends share. It owns what does not depend on the database: which
//! statement each operation runs and its parameters in order, how a row decodes into an
//! [`Entity`], what a unique-constraint violation means, how a PATCH merges and when a write's
//! precondition fails. It implements [`Storage`] once for every [`SqlBackend`]; a backend only
//! connects, binds [`Param`]s in its dialect, runs statements and reads columns
//! ([`ColumnReader`]), and keeps what is truly its own (SQLite's refresh-date table and import
//! journal, PostgreSQL's row locks, each one's bulk load).
//!
//! Writes are written without I/O ([`WritePlan`]): the plan says which statement to run next
//! ([`Step`]) and learns what it did ([`Outcome`]), so the same decisions drive SQLite's
//! blocking connection and PostgreSQL's async client.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use reportroot_model::{Date, Entity, Period, ReportType, TenantId, Value, ValueKind, REPORTS};
use reportroot_odata::query::Expr;
use uuid::Uuid;

use crate::accounts::{Accounts, KnownTenants};
use crate::changes::ChangeSql;
use crate::directory::{Directory, SqlRunner};
use crate::list_sql_cache::ListSqlCache;
use crate::query_cost::{count_may_scan, list_may_scan};
use crate::query_sql::{
    compile_count_with, compile_days_count, compile_list_with, CompiledSql, SqlParam,
};
use crate::series::{
    compile_days_series, compile_series, Interval, SeriesQuery, SERIES_MAX_POINTS,
};
use crate::sql::{natural_key_label, Dialect, PeriodRefreshes, RowsByPeriod, TableSql};
use crate::{
    BackendError, ListQuery, NewEntity, Precondition, RowChunks, Scope, Storage, StorageError,
    UpsertCounts,
};

/// The statements of every registered report, found by the report's entity name.
///
/// Why by name: the registry's reports are equal when their names are (`ReportType`'s
/// `PartialEq`); a report the registry does not know is an error, never another report's table.
#[derive(Debug, Clone)]
pub struct TableSet {
    tables: Vec<TableSql>,
    by_entity: HashMap<&'static str, usize>,
    refreshes: &'static dyn PeriodRefreshes,
    changes: ChangeSql,
    /// Page statements compiled once for every tenant ([`TableSet::list_sql`]).
    list_sql: Arc<ListSqlCache>,
    dialect: Dialect,
}

impl TableSet {
    /// The statements of every report of the registry, in `dialect`, with the latest refresh
    /// date of a period read from the rows ([`RowsByPeriod`]).
    pub fn new(dialect: Dialect) -> Self {
        TableSet::with_refreshes(dialect, &RowsByPeriod)
    }

    /// The statements of every report of the registry, in `dialect`, with the latest refresh
    /// date of a period found as `refreshes` does.
    pub fn with_refreshes(dialect: Dialect, refreshes: &'static dyn PeriodRefreshes) -> Self {
        TableSet {
            refreshes,
            changes: ChangeSql::new(dialect),
            tables: REPORTS
                .iter()
                .map(|report| TableSql::with_refreshes(report, dialect, refreshes))
                .collect(),
            by_entity: REPORTS
                .iter()
                .enumerate()
                .map(|(index, report)| (report.entity, index))
                .collect(),
            list_sql: Arc::default(),
            dialect,
        }
    }

    /// The statements of `report`; an error if the registry has no such report.
    pub fn get(&self, report: &ReportType) -> Result<&TableSql, StorageError> {
        self.index_of(report).map(|index| &self.tables[index])
    }

    /// The report's position in the registry (and in `tables`).
    fn index_of(&self, report: &ReportType) -> Result<usize, StorageError> {
        self.by_entity.get(report.entity).copied().ok_or_else(|| {
            StorageError::Backend(BackendError::message(format!(
                "report type '{}' is not in the registry",
                report.entity
            )))
        })
    }

    /// The statement of a page of `report` for `tenant` ([`compile_list_with`]), compiled
    /// once for every tenant ([`ListSqlCache`]).
    pub fn list_sql(
        &self,
        report: &ReportType,
        tenant: Uuid,
        query: &ListQuery,
    ) -> Result<CompiledSql, StorageError> {
        let index = self.index_of(report)?;
        let table = &self.tables[index];
        Ok(self.list_sql.get_or_compile(index, tenant, query, || {
            compile_list_with(
                report,
                self.dialect,
                self.refreshes(report),
                &table.columns,
                tenant,
                query,
            )
        }))
    }

    /// How these statements find a period's latest refresh date of `report`
    /// ([`crate::sql::period_refreshes`]).
    pub fn refreshes(&self, report: &ReportType) -> &'static dyn PeriodRefreshes {
        crate::sql::period_refreshes(report, self.refreshes)
    }

    /// The statements of the tenants' change versions (`crate::changes`).
    pub fn changes(&self) -> &ChangeSql {
        &self.changes
    }

    /// Every report's statements, in registry order.
    pub fn iter(&self) -> impl Iterator<Item = &TableSql> {
        self.tables.iter()
    }
}

/// A statement parameter as the backends bind it, borrowed from the caller (no copy of a
/// value's text).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<'a> {
    /// SQL `NULL`.
    Null,
    /// A tenant or entity id.
    Uuid(Uuid),
    /// An integer: a count, a version, a limit.
    Int(i64),
    /// Text.
    Text(&'a str),
    /// A date (SQLite binds `YYYY-MM-DD` text, PostgreSQL a `DATE`).
    Date(Date),
}

impl<'a> From<&'a Value> for Param<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Null => Param::Null,
            Value::Int(i) => Param::Int(*i),
            Value::Text(text) => Param::Text(text),
            Value::Date(date) => Param::Date(*date),
        }
    }
}

impl<'a> From<&Param<'a>> for Param<'a> {
    fn from(param: &Param<'a>) -> Self {
        *param
    }
}

impl<'a> From<&'a SqlParam> for Param<'a> {
    fn from(param: &'a SqlParam) -> Self {
        match param {
            SqlParam::Uuid(id) => Param::Uuid(*id),
            SqlParam::Int(i) => Param::Int(*i),
            SqlParam::Value(value) => Param::from(value),
        }
    }
}

/// The first column of a property in the rows of [`TableSql::columns`]: `id` and `version`
/// come first.
pub const FIRST_PROPERTY_COLUMN: usize = 2;

/// Reads the columns of one result row, in a backend's types.
pub trait ColumnReader {
    /// The backend's error for a column that cannot be read as asked.
    type Error;
    /// A UUID column.
    fn uuid(&self, column: usize) -> Result<Uuid, Self::Error>;
    /// An integer column, `None` when `NULL`.
    fn int(&self, column: usize) -> Result<Option<i64>, Self::Error>;
    /// A text column, `None` when `NULL`.
    fn text(&self, column: usize) -> Result<Option<String>, Self::Error>;
    /// A date column, `None` when `NULL`; `name` is the property's, for errors.
    fn date(&self, column: usize, name: &str) -> Result<Option<Date>, Self::Error>;
    /// The error for a `NULL` in a column the schema declares `NOT NULL`.
    fn unexpected_null(&self, column: usize, name: &str) -> Self::Error;
}

/// Decodes a row of [`TableSql::columns`] (id, version, then every property) into an entity
/// of `report`. Counts and durations may be `NULL` ([`Value::Null`]); other columns may not.
pub fn decode_entity<R: ColumnReader>(report: &ReportType, row: &R) -> Result<Entity, R::Error> {
    let mut values = Vec::with_capacity(report.properties.len());
    for (i, property) in report.properties.iter().enumerate() {
        let column = FIRST_PROPERTY_COLUMN + i;
        let value = match property.kind {
            ValueKind::Count | ValueKind::Count32 => row.int(column)?.map(Value::Int),
            ValueKind::Text | ValueKind::Period | ValueKind::Duration => {
                row.text(column)?.map(Value::Text)
            }
            ValueKind::Date => row.date(column, property.name)?.map(Value::Date),
        };
        values.push(match value {
            Some(value) => value,
            None if property.kind.is_nullable() => Value::Null,
            None => return Err(row.unexpected_null(column, property.name)),
        });
    }
    let version = row
        .int(1)?
        .ok_or_else(|| row.unexpected_null(1, "version"))?;
    Ok(Entity {
        id: row.uuid(0)?,
        version,
        values,
    })
}

/// What a unique-constraint violation on writing an entity's values means: another entity
/// (`key_owner`) holds the same natural key, or, when none is found, the constraint itself.
pub fn key_conflict(report: &ReportType, key_owner: Option<Uuid>) -> StorageError {
    match key_owner {
        Some(existing) => StorageError::DuplicateKey {
            existing,
            key: natural_key_label(report),
        },
        None => StorageError::Backend(BackendError::message("unique constraint violated")),
    }
}

/// The stored entity a write acts on: [`StorageError::NotFound`] when there is none,
/// [`StorageError::PreconditionFailed`] when `If-Match` names another version.
pub fn checked_current(
    found: Option<Entity>,
    precondition: Precondition,
) -> Result<Entity, StorageError> {
    let current = found.ok_or(StorageError::NotFound)?;
    precondition.check(&current)?;
    Ok(current)
}

/// A PATCH: the current values with `changes` (property index, new value) applied.
pub fn merge(current: &Entity, changes: &[(usize, Value)]) -> Vec<Value> {
    let mut values = current.values.clone();
    for (index, value) in changes {
        values[*index] = value.clone();
    }
    values
}

/// A count read from the database (never negative) as the trait returns it.
pub fn count_from(count: i64) -> u64 {
    u64::try_from(count).unwrap_or_default()
}

/// The parameters of [`TableSql::select_by_id`] and [`TableSql::delete`].
pub fn id_params(tenant: Uuid, id: Uuid) -> Vec<Param<'static>> {
    vec![Param::Uuid(tenant), Param::Uuid(id)]
}

/// The parameters of [`TableSql::id_by_natural_key`] and [`TableSql::select_by_natural_key`]:
/// the tenant, then the natural key's values of `values`.
pub fn key_params<'a>(report: &ReportType, tenant: Uuid, values: &'a [Value]) -> Vec<Param<'a>> {
    let mut params = vec![Param::Uuid(tenant)];
    params.extend(
        report
            .natural_key_indexes()
            .into_iter()
            .map(|i| Param::from(&values[i])),
    );
    params
}

/// The parameters of [`TableSql::insert`], [`TableSql::upsert`] (`version` `None`) and
/// [`TableSql::update`] (`version` the stored one): tenant, id, version, then every value.
pub fn row_params(
    tenant: Uuid,
    id: Uuid,
    version: Option<i64>,
    values: &[Value],
) -> Vec<Param<'_>> {
    let mut params = Vec::with_capacity(values.len() + 3);
    params.extend([Param::Uuid(tenant), Param::Uuid(id)]);
    params.extend(version.map(Param::Int));
    params.extend(values.iter().map(Param::from));
    params
}

/// The statement of a report function's rows: [`TableSql::latest`] with the tenant, and the
/// period for periodic reports.
pub fn latest_query(table: &TableSql, tenant: Uuid, period: Option<Period>) -> CompiledSql {
    let mut params = vec![SqlParam::Uuid(tenant)];
    params.extend(period.map(|p| SqlParam::Value(Value::Text(p.stored().to_owned()))));
    CompiledSql {
        sql: table.latest.clone(),
        params,
    }
}

/// The statement of one entity by id.
pub fn by_id_query(table: &TableSql, tenant: Uuid, id: Uuid) -> CompiledSql {
    CompiledSql {
        sql: table.select_by_id.clone(),
        params: vec![SqlParam::Uuid(tenant), SqlParam::Uuid(id)],
    }
}

/// A write of one entity, as [`Storage`] asks for it.
#[derive(Debug, Clone)]
pub enum Write {
    /// Create an entity with this id.
    Insert {
        /// The new entity's id.
        id: Uuid,
        /// Its values, in registry order.
        values: Vec<Value>,
    },
    /// Change some properties (PATCH).
    Update {
        /// The entity.
        id: Uuid,
        /// (property index, new value).
        changes: Vec<(usize, Value)>,
        /// `If-Match`.
        precondition: Precondition,
    },
    /// Replace every value of an entity read in the same transaction (a bulk load's update).
    Replace {
        /// The stored entity.
        current: Entity,
        /// Its new values.
        values: Vec<Value>,
    },
    /// Delete an entity.
    Delete {
        /// The entity.
        id: Uuid,
        /// `If-Match`.
        precondition: Precondition,
    },
}

/// A [`Write`] for a tenant and report, as [`SqlBackend::write`] receives it.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// The tenant written.
    pub tenant: Uuid,
    /// The report type written.
    pub report: &'static ReportType,
    /// What to write.
    pub write: Write,
}

/// The next thing a [`WritePlan`] needs run.
#[derive(Debug)]
pub enum Step<'a> {
    /// Read at most one entity of the plan's report. `for_update`: the row is about to be
    /// written in the same transaction (PostgreSQL locks it).
    ReadEntity {
        /// The statement.
        sql: &'a str,
        /// Its parameters.
        params: Vec<Param<'a>>,
        /// Whether the read row is written next.
        for_update: bool,
    },
    /// Read at most one id (the first column).
    ReadId {
        /// The statement.
        sql: &'a str,
        /// Its parameters.
        params: Vec<Param<'a>>,
    },
    /// Run a statement that writes: report the rows changed, or a unique violation.
    Execute {
        /// The statement.
        sql: &'a str,
        /// Its parameters.
        params: Vec<Param<'a>>,
    },
    /// Nothing more to run: take the result with [`WritePlan::finish`].
    Finished,
}

/// What running a [`Step`] did.
#[derive(Debug)]
pub enum Outcome {
    /// The entity read, if any.
    Entity(Option<Entity>),
    /// The id read, if any.
    Id(Option<Uuid>),
    /// The rows a write changed.
    Changed(u64),
    /// A write violated a unique constraint (the primary key or the natural key). In
    /// PostgreSQL the transaction can run nothing more: later steps run outside it.
    UniqueViolation,
}

/// Where a [`WritePlan`] is.
#[derive(Debug)]
enum Stage {
    /// Insert and replace: run the write. Update and delete: read the current entity.
    Start,
    /// The current entity is read and checked; run the `UPDATE` to these values.
    Updating { current: Entity, values: Vec<Value> },
    /// The current entity is read and checked; run the `DELETE`.
    Deleting { current: Entity },
    /// An insert hit a unique constraint: is it the id?
    CheckingId { id: Uuid, values: Vec<Value> },
    /// A write hit a unique constraint that is not the id: who has these values' natural key?
    CheckingKey { values: Vec<Value> },
    /// The row is written: run the statements that follow it ([`WritePlan::summary`]).
    Summarizing { written: Entity },
    /// Done.
    Finished(Result<Entity, StorageError>),
}

/// The statements of one entity write and the decisions between them, without I/O: a
/// backend runs [`WritePlan::step`] and reports with [`WritePlan::advance`] until
/// [`Step::Finished`], in one transaction (see [`Outcome::UniqueViolation`]).
#[derive(Debug)]
pub struct WritePlan<'t> {
    table: &'t TableSql,
    report: &'static ReportType,
    tenant: Uuid,
    write: Write,
    stage: Stage,
    /// The statements still to run after the row is written: the per-day summary's
    /// (`crate::days`), then the raise of the tenant's change version (`crate::changes`).
    summary: VecDeque<(&'t str, Vec<SqlParam>)>,
}

impl<'t> WritePlan<'t> {
    /// The plan of `request` over `table`, the statements of its report.
    pub fn new(table: &'t TableSql, request: WriteRequest) -> Self {
        WritePlan {
            table,
            report: request.report,
            tenant: request.tenant,
            write: request.write,
            stage: Stage::Start,
            summary: VecDeque::new(),
        }
    }

    /// The report type written.
    pub fn report(&self) -> &'static ReportType {
        self.report
    }

    /// Whether the plan reads a row, then writes it: a backend with row locks runs it in a
    /// transaction; an insert is one statement and needs none.
    pub fn reads_before_writing(&self) -> bool {
        matches!(self.write, Write::Update { .. } | Write::Delete { .. })
    }

    /// Whether the plan must run in one transaction: it reads a row before writing it, or
    /// runs statements after the row (a per-day summary, the tenant's change version).
    pub fn needs_transaction(&self) -> bool {
        self.reads_before_writing() || self.table.days.is_some() || self.notes_change()
    }

    /// Whether a successful write raises the tenant's change version: every write but a bulk
    /// load's [`Write::Replace`], whose load raises it once per transaction instead.
    fn notes_change(&self) -> bool {
        !matches!(self.write, Write::Replace { .. })
    }

    /// Whether a finished plan stored new values (an insert or an update, not a delete).
    pub fn stores_values(&self) -> bool {
        !matches!(self.write, Write::Delete { .. })
    }

    /// The statement to run next.
    pub fn step(&self) -> Step<'_> {
        let table = self.table;
        let tenant = self.tenant;
        match (&self.stage, &self.write) {
            (Stage::Start, Write::Insert { id, values }) => Step::Execute {
                sql: &table.insert,
                params: row_params(tenant, *id, None, values),
            },
            (Stage::Start, Write::Replace { current, values })
            | (Stage::Updating { current, values }, _) => Step::Execute {
                sql: &table.update,
                params: row_params(tenant, current.id, Some(current.version), values),
            },
            (Stage::Start, Write::Update { id, .. } | Write::Delete { id, .. }) => {
                Step::ReadEntity {
                    sql: &table.select_by_id,
                    params: id_params(tenant, *id),
                    for_update: true,
                }
            }
            (Stage::Deleting { current }, _) => Step::Execute {
                sql: &table.delete,
                params: id_params(tenant, current.id),
            },
            (Stage::CheckingId { id, .. }, _) => Step::ReadEntity {
                sql: &table.select_by_id,
                params: id_params(tenant, *id),
                for_update: false,
            },
            (Stage::CheckingKey { values }, _) => Step::ReadId {
                sql: &table.id_by_natural_key,
                params: key_params(self.report, tenant, values),
            },
            (Stage::Summarizing { .. }, _) => match self.summary.front() {
                Some((sql, params)) => Step::Execute {
                    sql,
                    params: params.iter().map(Param::from).collect(),
                },
                None => Step::Finished,
            },
            (Stage::Finished(_), _) => Step::Finished,
        }
    }

    /// Takes in what the last [`WritePlan::step`] did.
    pub fn advance(&mut self, outcome: Outcome) {
        let stage = std::mem::replace(&mut self.stage, Stage::Start);
        if let Stage::Summarizing { written } = stage {
            self.stage = self.summarized(written, outcome);
            return;
        }
        let before = self.row_before(&stage, &outcome);
        self.stage = match (stage, outcome) {
            (Stage::Start, Outcome::Entity(found)) => self.checked(found),
            (Stage::Start, Outcome::Changed(changed)) => self.written(changed),
            (Stage::Start, Outcome::UniqueViolation) => self.conflicted(),
            (Stage::Updating { current, values }, Outcome::Changed(changed)) => {
                updated(&current, values, changed)
            }
            (Stage::Updating { values, .. }, Outcome::UniqueViolation) => {
                Stage::CheckingKey { values }
            }
            (Stage::Deleting { current }, Outcome::Changed(_)) => Stage::Finished(Ok(current)),
            (Stage::CheckingId { id, .. }, Outcome::Entity(Some(_))) => {
                Stage::Finished(Err(StorageError::DuplicateId(id)))
            }
            (Stage::CheckingId { values, .. }, Outcome::Entity(None)) => {
                Stage::CheckingKey { values }
            }
            (Stage::CheckingKey { .. }, Outcome::Id(owner)) => {
                Stage::Finished(Err(key_conflict(self.report, owner)))
            }
            (stage, outcome) => Stage::Finished(Err(StorageError::Backend(BackendError::message(
                format!("unexpected outcome {outcome:?} of a write at {stage:?}"),
            )))),
        };
        if matches!(self.stage, Stage::Finished(Ok(_))) {
            self.summarize(before.flatten());
        }
    }

    /// When `outcome` is a row written at `stage`: the row's id and values before the write
    /// (`None` inside for an insert).
    fn row_before(&self, stage: &Stage, outcome: &Outcome) -> Option<Option<(Uuid, Vec<Value>)>> {
        match (stage, outcome, &self.write) {
            (Stage::Start, Outcome::Changed(1), Write::Insert { .. }) => Some(None),
            (Stage::Start, Outcome::Changed(1), Write::Replace { current, .. })
            | (
                Stage::Updating { current, .. } | Stage::Deleting { current },
                Outcome::Changed(1),
                _,
            ) => Some(Some((current.id, current.values.clone()))),
            _ => None,
        }
    }

    /// After a row is written (`before`: its id and values before, `None` for an insert):
    /// queue the summary's statements that move it from `before` to where it is now, and
    /// the raise of the tenant's change version, and run them before finishing.
    fn summarize(&mut self, before: Option<(Uuid, Vec<Value>)>) {
        let Stage::Finished(Ok(written)) = &self.stage else {
            return;
        };
        if let Some(days) = &self.table.days {
            let after = (!matches!(self.write, Write::Delete { .. })).then_some(written);
            let moved = match (&before, after) {
                (Some((_, old)), Some(new)) => !days.same_place(old, &new.values),
                _ => true,
            };
            if let Some((id, old)) = before.as_ref().filter(|_| moved) {
                self.summary.extend(days.removing(self.tenant, *id, old));
            }
            if let Some(new) = after.filter(|_| moved) {
                self.summary
                    .push_back(days.adding(self.tenant, new.id, &new.values));
            }
        }
        if self.notes_change() {
            self.summary
                .push_back((&self.table.note_change, vec![SqlParam::Uuid(self.tenant)]));
        }
        if self.summary.is_empty() {
            return;
        }
        if let Stage::Finished(Ok(written)) = std::mem::replace(&mut self.stage, Stage::Start) {
            self.stage = Stage::Summarizing { written };
        }
    }

    /// After one of the summary's statements ran.
    fn summarized(&mut self, written: Entity, outcome: Outcome) -> Stage {
        if !matches!(outcome, Outcome::Changed(_)) {
            return Stage::Finished(Err(StorageError::Backend(BackendError::message(format!(
                "unexpected outcome {outcome:?} of a statement after a write"
            )))));
        }
        self.summary.pop_front();
        if self.summary.is_empty() {
            Stage::Finished(Ok(written))
        } else {
            Stage::Summarizing { written }
        }
    }

    /// The written (or deleted) entity, or why the write failed. Call at [`Step::Finished`].
    pub fn finish(self) -> Result<Entity, StorageError> {
        match self.stage {
            Stage::Finished(result) => result,
            stage => Err(StorageError::Backend(BackendError::message(format!(
                "a write was stopped at {stage:?}"
            )))),
        }
    }

    /// After the current entity is read: check it, then update or delete it.
    fn checked(&self, found: Option<Entity>) -> Stage {
        let current = match &self.write {
            Write::Update { precondition, .. } | Write::Delete { precondition, .. } => {
                checked_current(found, *precondition)
            }
            Write::Insert { .. } | Write::Replace { .. } => Err(StorageError::NotFound),
        };
        match (current, &self.write) {
            (Err(error), _) => Stage::Finished(Err(error)),
            (Ok(current), Write::Update { changes, .. }) => Stage::Updating {
                values: merge(&current, changes),
                current,
            },
            (Ok(current), _) => Stage::Deleting { current },
        }
    }

    /// After an insert or a replace ran: the plan's values move to the written entity.
    fn written(&mut self, changed: u64) -> Stage {
        match &mut self.write {
            Write::Insert { id, values } => Stage::Finished(Ok(Entity {
                id: *id,
                version: 1,
                values: std::mem::take(values),
            })),
            Write::Replace { current, values } => updated(current, std::mem::take(values), changed),
            Write::Update { .. } | Write::Delete { .. } => {
                Stage::Finished(Err(StorageError::NotFound))
            }
        }
    }

    /// After an insert or a replace hit a unique constraint.
    fn conflicted(&self) -> Stage {
        match &self.write {
            Write::Insert { id, values } => Stage::CheckingId {
                id: *id,
                values: values.clone(),
            },
            Write::Replace { values, .. } => Stage::CheckingKey {
                values: values.clone(),
            },
            Write::Update { .. } | Write::Delete { .. } => {
                Stage::Finished(Err(StorageError::NotFound))
            }
        }
    }
}

/// After an `UPDATE` of `current` to `values`: one row changed, or someone else changed the
/// entity between the read and the write (its version moved on).
fn updated(current: &Entity, values: Vec<Value>, changed: u64) -> Stage {
    Stage::Finished(if changed == 1 {
        Ok(Entity {
            id: current.id,
            version: current.version + 1,
            values,
        })
    } else {
        Err(StorageError::PreconditionFailed {
            current: current.etag(),
        })
    })
}

/// What a read may cost, for a backend that runs the expensive ones apart (SQLite runs reads
/// that may scan on threads of the lowest CPU priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadCost {
    /// An index range that stops after its rows: a page, a row by id, a summary, a series.
    Bounded,
    /// May read the tenant's whole history ([`crate::query_cost`]).
    MayScan,
}

impl ReadCost {
    /// [`ReadCost::MayScan`] when `may_scan`.
    pub fn of(may_scan: bool) -> Self {
        if may_scan {
            ReadCost::MayScan
        } else {
            ReadCost::Bounded
        }
    }
}

/// What a backend does for the engine: run statements its way. The engine's [`Storage`]
/// implementation does the rest.
#[async_trait]
pub trait SqlBackend: SqlRunner {
    /// The statements of every report, in this backend's dialect.
    fn tables(&self) -> &TableSet;

    /// The tenants this backend has seen noted in `reportroot_tenants` (see
    /// [`note_tenant`]).
    fn known_tenants(&self) -> &KnownTenants;

    /// Runs a query of [`TableSql::columns`] rows and decodes them as entities of `report`;
    /// `cost` says whether it may scan (a backend may run such reads apart).
    async fn read_entities(
        &self,
        report: &'static ReportType,
        query: CompiledSql,
        cost: ReadCost,
    ) -> Result<Vec<Entity>, StorageError>;

    /// Runs a query of one integer (a count); `cost` as for [`SqlBackend::read_entities`].
    async fn read_count(&self, query: CompiledSql, cost: ReadCost) -> Result<i64, StorageError>;

    /// Runs the [`WritePlan`] of `request` to its end, in one transaction.
    async fn write(&self, request: WriteRequest) -> Result<Entity, StorageError>;

    /// [`Storage::upsert_stream`]: each backend loads its own way.
    async fn load(&self, load: Load) -> Result<UpsertCounts, StorageError>;

    /// Whether the throttle counters are kept in this database
    /// ([`crate::throttle::ThrottleCounters`], PostgreSQL only).
    fn shares_throttle_counters(&self) -> bool {
        false
    }

    /// [`Storage::pool_status`].
    fn pool_status(&self) -> Vec<crate::PoolStatus> {
        Vec::new()
    }
}

/// The arguments of [`Storage::upsert_stream`], for [`SqlBackend::load`].
pub struct Load {
    /// The tenant loaded.
    pub tenant: TenantId,
    /// The report type loaded.
    pub report: &'static ReportType,
    /// The rows, in chunks.
    pub chunks: RowChunks,
}

#[async_trait]
impl<B: SqlBackend> Storage for B {
    fn directory(&self) -> Directory<'_> {
        Directory::new(self)
    }

    fn throttle_counters(&self) -> Option<crate::throttle::ThrottleCounters<'_>> {
        self.shares_throttle_counters()
            .then(|| crate::throttle::ThrottleCounters::new(self))
    }

    fn pool_status(&self) -> Vec<crate::PoolStatus> {
        SqlBackend::pool_status(self)
    }

    fn accounts(&self) -> Accounts<'_> {
        Accounts::new(self)
    }

    async fn insert(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        entity: NewEntity,
    ) -> Result<Entity, StorageError> {
        let write = Write::Insert {
            id: entity.id.unwrap_or_else(Uuid::now_v7),
            values: entity.values,
        };
        let written = self.write(request(tenant, report, write)).await?;
        note_tenant(self, tenant).await;
        Ok(written)
    }

    async fn get(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
    ) -> Result<Option<Entity>, StorageError> {
        let query = by_id_query(self.tables().get(report)?, tenant.0, id);
        Ok(self
            .read_entities(report, query, ReadCost::Bounded)
            .await?
            .pop())
    }

    async fn list(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        query: &ListQuery,
    ) -> Result<Vec<Entity>, StorageError> {
        let compiled = self.tables().list_sql(report, tenant.0, query)?;
        tracing::debug!(sql = %compiled.sql, "list");
        let cost = ReadCost::of(list_may_scan(report, query));
        self.read_entities(report, compiled, cost).await
    }

    async fn count(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        scope: Scope,
        filter: Option<&Expr>,
    ) -> Result<u64, StorageError> {
        let tables = self.tables();
        // The whole history of a per-day report: from its summary when the filter allows.
        let summarized = match (&tables.get(report)?.days, &scope) {
            (Some(days), Scope::All) => {
                compile_days_count(report, self.dialect(), days, tenant.0, filter)
            }
            _ => None,
        };
        // A count from the summary reads summary rows, never the history.
        let (compiled, cost) = match summarized {
            Some(compiled) => (compiled, ReadCost::Bounded),
            None => (
                compile_count_with(
                    report,
                    self.dialect(),
                    tables.refreshes(report),
                    tenant.0,
                    &scope,
                    filter,
                ),
                ReadCost::of(count_may_scan(report, scope, filter)),
            ),
        };
        self.read_count(compiled, cost).await.map(count_from)
    }

    async fn update(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
        changes: &[(usize, Value)],
        precondition: Precondition,
    ) -> Result<Entity, StorageError> {
        let write = Write::Update {
            id,
            changes: changes.to_vec(),
            precondition,
        };
        self.write(request(tenant, report, write)).await
    }

    async fn delete(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
        precondition: Precondition,
    ) -> Result<(), StorageError> {
        let write = Write::Delete { id, precondition };
        self.write(request(tenant, report, write)).await.map(drop)
    }

    async fn latest_report(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        period: Option<Period>,
    ) -> Result<Vec<Entity>, StorageError> {
        let query = latest_query(self.tables().get(report)?, tenant.0, period);
        self.read_entities(report, query, ReadCost::Bounded).await
    }

    async fn tenant_version(&self, tenant: TenantId) -> Result<i64, StorageError> {
        let query = CompiledSql {
            sql: self.tables().changes().read.clone(),
            params: vec![SqlParam::Uuid(tenant.0)],
        };
        self.read_count(query, ReadCost::Bounded).await
    }

    async fn series(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        query: &SeriesQuery,
    ) -> Result<Vec<Entity>, StorageError> {
        if query.interval.buckets(query.from, query.to) > SERIES_MAX_POINTS {
            return Err(StorageError::TooManyPoints);
        }
        let table = self.tables().get(report)?;
        // One row more than allowed tells a series that is too long (dimension values
        // multiply the buckets) without reading all of it.
        let limit = SERIES_MAX_POINTS + 1;
        // Days from the summary; weeks and months from the calendar. Why: a bucket of days
        // would read and sort every summary row of the range (14.6k for 10 years) to return
        // a few hundred points; measured on 1.12M rows (SQLite, release, load ~7): 10 years
        // by week 7.9 ms by the calendar, 26.5 ms from the summary; by month 1.5 vs 19.4 ms.
        let compiled = match (&table.days, query.interval) {
            (Some(days), Interval::Day) => compile_days_series(
                report,
                self.dialect(),
                days,
                &table.columns,
                tenant.0,
                query,
                limit,
            ),
            _ => compile_series(
                report,
                self.dialect(),
                &table.columns,
                tenant.0,
                query,
                limit,
            ),
        };
        tracing::debug!(sql = %compiled.sql, "series");
        let rows = self
            .read_entities(report, compiled, ReadCost::Bounded)
            .await?;
        if rows.len() as u64 > SERIES_MAX_POINTS {
            return Err(StorageError::TooManyPoints);
        }
        Ok(rows)
    }

    async fn upsert_stream(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        chunks: RowChunks,
    ) -> Result<UpsertCounts, StorageError> {
        let counts = self
            .load(Load {
                tenant,
                report,
                chunks,
            })
            .await?;
        note_tenant(self, tenant).await;
        Ok(counts)
    }
}

/// Records `tenant` in `reportroot_tenants` after a write of its rows (an insert, a load), the
/// first time this process sees it: one `INSERT … ON CONFLICT DO NOTHING`, then nothing.
/// Why after the write and not failing it: the rows are committed by then, and a tenant missed
/// here (the database failed just now) is noted by its next write.
pub async fn note_tenant<B: SqlBackend>(backend: &B, tenant: TenantId) {
    if backend.known_tenants().contains(tenant) {
        return;
    }
    match Accounts::new(backend).note_tenant(tenant).await {
        Ok(()) => backend.known_tenants().insert(tenant),
        Err(error) => tracing::warn!(%error, tenant = %tenant.0, "cannot record the tenant"),
    }
}

fn request(tenant: TenantId, report: &'static ReportType, write: Write) -> WriteRequest {
    WriteRequest {
        tenant: tenant.0,
        report,
        write,
    }
}

#[cfg(test)]
mod tests {
    use reportroot_model::find_report;

    use super::*;

    fn plan_of(tables: &TableSet, write: Write) -> WritePlan<'_> {
        let report = find_report("office365ActiveUserCounts").expect("report");
        let table = tables.get(report).expect("table");
        WritePlan::new(
            table,
            WriteRequest {
                tenant: Uuid::nil(),
                report,
                write,
            },
        )
    }

    fn entity(version: i64, width: usize) -> Entity {
        Entity {
            id: Uuid::from_u128(7),
            version,
            values: vec![Value::Int(1); width],
        }
    }

    #[test]
    fn an_insert_on_a_taken_id_is_a_duplicate_id_and_otherwise_a_duplicate_key() {
        let tables = TableSet::new(Dialect::Sqlite);
        let width = find_report("office365ActiveUserCounts")
            .expect("report")
            .properties
            .len();
        let id = Uuid::from_u128(9);
        let insert = Write::Insert {
            id,
            values: vec![Value::Int(1); width],
        };
        let mut taken = plan_of(&tables, insert.clone());
        assert!(matches!(taken.step(), Step::Execute { .. }));
        taken.advance(Outcome::UniqueViolation);
        assert!(matches!(
            taken.step(),
            Step::ReadEntity {
                for_update: false,
                ..
            }
        ));
        taken.advance(Outcome::Entity(Some(entity(1, width))));
        assert!(matches!(taken.step(), Step::Finished));
        assert!(matches!(taken.finish(), Err(StorageError::DuplicateId(x)) if x == id));

        let mut key = plan_of(&tables, insert);
        key.advance(Outcome::UniqueViolation);
        key.advance(Outcome::Entity(None));
        assert!(matches!(key.step(), Step::ReadId { .. }));
        key.advance(Outcome::Id(Some(Uuid::from_u128(3))));
        assert!(matches!(
            key.finish(),
            Err(StorageError::DuplicateKey { existing, .. }) if existing == Uuid::from_u128(3)
        ));
    }

    #[test]
    fn an_update_merges_checks_the_version_and_bumps_it() {
        let tables = TableSet::new(Dialect::Postgres);
        let width = find_report("office365ActiveUserCounts")
            .expect("report")
            .properties
            .len();
        // A count: the row keeps its place in the per-day summary, which has nothing to do.
        let update = |precondition| Write::Update {
            id: Uuid::from_u128(7),
            changes: vec![(1, Value::Int(5))],
            precondition,
        };
        let mut stale = plan_of(&tables, update(Precondition::Version(2)));
        assert!(stale.reads_before_writing());
        assert!(matches!(
            stale.step(),
            Step::ReadEntity {
                for_update: true,
                ..
            }
        ));
        stale.advance(Outcome::Entity(Some(entity(3, width))));
        assert!(matches!(
            stale.finish(),
            Err(StorageError::PreconditionFailed { .. })
        ));

        let mut fresh = plan_of(&tables, update(Precondition::None));
        fresh.advance(Outcome::Entity(Some(entity(3, width))));
        assert!(matches!(fresh.step(), Step::Execute { .. }));
        fresh.advance(Outcome::Changed(1));
        // Then the raise of the tenant's change version.
        assert!(
            matches!(fresh.step(), Step::Execute { sql, .. } if sql.contains("reportroot_tenant_changes"))
        );
        fresh.advance(Outcome::Changed(1));
        let written = fresh.finish().expect("updated");
        assert_eq!(written.version, 4);
        assert_eq!(written.values[1], Value::Int(5));
        assert_eq!(written.values[2], Value::Int(1));

        let mut missing = plan_of(&tables, update(Precondition::None));
        missing.advance(Outcome::Entity(None));
        assert!(matches!(missing.finish(), Err(StorageError::NotFound)));
    }

    #[test]
    fn backend_errors_keep_their_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = StorageError::backend("cannot connect to PostgreSQL at 127.0.0.1:5432", cause);
        assert_eq!(
            error.to_string(),
            "database error: cannot connect to PostgreSQL at 127.0.0.1:5432: refused"
        );
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(source.to_string(), "refused");
    }
}
