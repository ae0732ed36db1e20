//! PostgreSQL backend: a connection pool, prepared statements, and the same uniqueness,
//! versions and transactions as SQLite. Every key starts with the tenant id, so each table can
//! be distributed by tenant on Citus and every query touches one shard (see docs/citus.md).

pub mod citus;

use std::str::FromStr;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use reportroot_model::{Date, Entity, Period, ReportType, TenantId, Value, ValueKind, REPORTS};
use reportroot_odata::query::Expr;
use reportroot_storage::directory::{Directory, SqlRunner, SqlValue, DIRECTORY_TABLES};
use reportroot_storage::query_sql::{compile_count, compile_list, SqlParam};
use reportroot_storage::sql::{natural_key_label, Dialect, TableSql};
use reportroot_storage::{
    ListQuery, LoadAborted, NewEntity, Precondition, RowChunks, SchemaChange, Scope, Storage,
    StorageError, UpsertCounts,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

/// The newest schema version this binary knows (report tables are derived from the registry
/// and created idempotently, as in SQLite). Version 2 lets counts and durations be `NULL`
/// (Graph's empty CSV cells): a version 1 database drops their `NOT NULL`. Version 3 adds the
/// directory's tables (`reportroot_storage::directory`), created like the report tables.
pub const SCHEMA_VERSION: i64 = 3;

/// Serialises schema changes between instances starting at once.
const MIGRATION_LOCK: i64 = 0x7265_706f_7274;

/// The PostgreSQL implementation of [`Storage`].
#[derive(Clone)]
pub struct PostgresStorage {
    pool: Pool,
    tables: Vec<TableSql>,
    /// `host:port` of the server(s), for connection errors.
    target: String,
    /// What [`PostgresStorage::connect`] did to the schema.
    schema_change: SchemaChange,
    /// How migrations distribute the tables on a Citus database.
    citus: citus::CitusOptions,
}

fn backend(error: impl std::error::Error + 'static) -> StorageError {
    StorageError::Backend(error_chain(&error))
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

fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// SQL `NULL` for a parameter of any type (a `None::<i64>` would refuse a text column).
#[derive(Debug)]
struct SqlNull;

impl ToSql for SqlNull {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        _: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(tokio_postgres::types::IsNull::Yes)
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

fn value_param(value: &Value) -> Box<dyn ToSql + Sync + Send> {
    match value {
        Value::Null => Box::new(SqlNull),
        Value::Int(i) => Box::new(*i),
        Value::Text(s) => Box::new(s.clone()),
        Value::Date(d) => Box::new(d.as_time()),
    }
}

fn bind_all(params: &[SqlParam]) -> Params {
    params
        .iter()
        .map(|param| match param {
            SqlParam::Uuid(id) => Box::new(*id) as Box<dyn ToSql + Sync + Send>,
            SqlParam::Int(i) => Box::new(*i),
            SqlParam::Value(value) => value_param(value),
        })
        .collect()
}

fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

fn read_entity(report: &ReportType, row: &Row) -> Result<Entity, StorageError> {
    let mut values = Vec::with_capacity(report.properties.len());
    for (i, property) in report.properties.iter().enumerate() {
        let column = i + 2;
        values.push(match property.kind {
            ValueKind::Count | ValueKind::Count32 => row
                .try_get::<_, Option<i64>>(column)
                .map_err(backend)?
                .map_or(Value::Null, Value::Int),
            ValueKind::Duration => row
                .try_get::<_, Option<String>>(column)
                .map_err(backend)?
                .map_or(Value::Null, Value::Text),
            ValueKind::Text | ValueKind::Period => {
                Value::Text(row.try_get(column).map_err(backend)?)
            }
            ValueKind::Date => Value::Date(Date::from_time(row.try_get(column).map_err(backend)?)),
        });
    }
    Ok(Entity {
        id: row.try_get(0).map_err(backend)?,
        version: row.try_get(1).map_err(backend)?,
        values,
    })
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
        let config = tokio_postgres::Config::from_str(url).map_err(backend)?;
        let target = describe_target(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .build()
            .map_err(backend)?;
        let mut storage = PostgresStorage {
            pool,
            tables: REPORTS
                .iter()
                .map(|r| TableSql::new(r, Dialect::Postgres))
                .collect(),
            target,
            schema_change: SchemaChange::UpToDate(SCHEMA_VERSION),
            citus,
        };
        storage.schema_change = storage.migrate().await?;
        Ok(storage)
    }

    /// What [`PostgresStorage::connect`] did to the schema.
    pub fn schema_change(&self) -> SchemaChange {
        self.schema_change
    }

    async fn client(&self) -> Result<Object, StorageError> {
        self.pool.get().await.map_err(|error| {
            StorageError::Backend(format!(
                "cannot connect to PostgreSQL at {}: {}",
                self.target,
                error_chain(&error)
            ))
        })
    }

    fn table(&self, report: &ReportType) -> &TableSql {
        let index = REPORTS
            .iter()
            .position(|r| std::ptr::eq(r, report))
            .unwrap_or_default();
        &self.tables[index]
    }

    async fn migrate(&self) -> Result<SchemaChange, StorageError> {
        let client = self.client().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(backend)?;
        let result = match self.migrate_locked(&client).await {
            // Also when the schema was up to date: Citus may have been added since.
            Ok(change) => {
                let tables: Vec<String> = self.tables.iter().map(|t| t.table.clone()).collect();
                citus::distribute(&client, &tables, self.citus)
                    .await
                    .map(|_| change)
            }
            Err(error) => Err(error),
        };
        let _ = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
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
        for table in &self.tables {
            for statement in &table.create {
                client.batch_execute(statement).await.map_err(backend)?;
            }
        }
        for statement in DIRECTORY_TABLES {
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

async fn select_one<C: GenericClient>(
    client: &C,
    report: &ReportType,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Entity>, StorageError> {
    let statement = client.prepare_cached(sql).await.map_err(backend)?;
    client
        .query_opt(&statement, params)
        .await
        .map_err(backend)?
        .map(|row| read_entity(report, &row))
        .transpose()
}

fn key_params(tenant: Uuid, report: &ReportType, values: &[Value]) -> Params {
    let mut params: Params = vec![Box::new(tenant)];
    params.extend(
        report
            .natural_key_indexes()
            .into_iter()
            .map(|i| value_param(&values[i])),
    );
    params
}

async fn key_conflict<C: GenericClient>(
    client: &C,
    table: &TableSql,
    report: &ReportType,
    tenant: Uuid,
    values: &[Value],
) -> StorageError {
    let params = key_params(tenant, report, values);
    match client
        .query_opt(&table.id_by_natural_key, &refs(&params))
        .await
    {
        Ok(Some(row)) => StorageError::DuplicateKey {
            existing: row.get(0),
            key: natural_key_label(report),
        },
        Ok(None) => StorageError::Backend("unique constraint violated".into()),
        Err(error) => backend(error),
    }
}

fn row_params(tenant: Uuid, id: Uuid, version: Option<i64>, values: &[Value]) -> Params {
    let mut params: Params = vec![Box::new(tenant), Box::new(id)];
    if let Some(version) = version {
        params.push(Box::new(version));
    }
    params.extend(values.iter().map(value_param));
    params
}

#[async_trait]
impl SqlRunner for PostgresStorage {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn execute(&self, sql: String, params: Vec<SqlValue>) -> Result<u64, StorageError> {
        let client = self.client().await?;
        let params: Params = params.into_iter().map(directory_param).collect();
        client.execute(&sql, &refs(&params)).await.map_err(backend)
    }

    async fn query(
        &self,
        sql: String,
        params: Vec<SqlValue>,
    ) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        use tokio_postgres::types::Type;
        let client = self.client().await?;
        let params: Params = params.into_iter().map(directory_param).collect();
        let rows = client.query(&sql, &refs(&params)).await.map_err(backend)?;
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
}

fn directory_param(value: SqlValue) -> Box<dyn ToSql + Sync + Send> {
    match value {
        SqlValue::Null => Box::new(SqlNull),
        SqlValue::Int(n) => Box::new(n),
        SqlValue::Text(text) => Box::new(text),
    }
}

#[async_trait]
impl Storage for PostgresStorage {
    fn directory(&self) -> Directory<'_> {
        Directory::new(self)
    }

    async fn insert(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        entity: NewEntity,
    ) -> Result<Entity, StorageError> {
        let client = self.client().await?;
        let table = self.table(report);
        let id = entity.id.unwrap_or_else(Uuid::now_v7);
        let params = row_params(tenant.0, id, None, &entity.values);
        let statement = client
            .prepare_cached(&table.insert)
            .await
            .map_err(backend)?;
        match client.execute(&statement, &refs(&params)).await {
            Ok(_) => Ok(Entity {
                id,
                version: 1,
                values: entity.values,
            }),
            Err(error) if is_unique_violation(&error) => {
                let taken =
                    select_one(&client, report, &table.select_by_id, &[&tenant.0, &id]).await?;
                if taken.is_some() {
                    Err(StorageError::DuplicateId(id))
                } else {
                    Err(key_conflict(&client, table, report, tenant.0, &entity.values).await)
                }
            }
            Err(error) => Err(backend(error)),
        }
    }

    async fn get(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
    ) -> Result<Option<Entity>, StorageError> {
        let client = self.client().await?;
        select_one(
            &client,
            report,
            &self.table(report).select_by_id,
            &[&tenant.0, &id],
        )
        .await
    }

    async fn list(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        query: &ListQuery,
    ) -> Result<Vec<Entity>, StorageError> {
        let client = self.client().await?;
        let compiled = compile_list(
            report,
            Dialect::Postgres,
            &self.table(report).columns,
            tenant.0,
            query,
        );
        let params = bind_all(&compiled.params);
        let statement = client
            .prepare_cached(&compiled.sql)
            .await
            .map_err(backend)?;
        client
            .query(&statement, &refs(&params))
            .await
            .map_err(backend)?
            .iter()
            .map(|row| read_entity(report, row))
            .collect()
    }

    async fn count(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        scope: Scope,
        filter: Option<&Expr>,
    ) -> Result<u64, StorageError> {
        let client = self.client().await?;
        let compiled = compile_count(report, Dialect::Postgres, tenant.0, &scope, filter);
        let params = bind_all(&compiled.params);
        let statement = client
            .prepare_cached(&compiled.sql)
            .await
            .map_err(backend)?;
        let row = client
            .query_one(&statement, &refs(&params))
            .await
            .map_err(backend)?;
        let count: i64 = row.try_get(0).map_err(backend)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn update(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
        changes: &[(usize, Value)],
        precondition: Precondition,
    ) -> Result<Entity, StorageError> {
        let mut client = self.client().await?;
        let table = self.table(report);
        let transaction = client.transaction().await.map_err(backend)?;
        let locked = format!("{} FOR UPDATE", table.select_by_id);
        let current = select_one(&transaction, report, &locked, &[&tenant.0, &id])
            .await?
            .ok_or(StorageError::NotFound)?;
        precondition.check(&current)?;
        let mut values = current.values.clone();
        for (index, value) in changes {
            values[*index] = value.clone();
        }
        let params = row_params(tenant.0, id, Some(current.version), &values);
        let statement = transaction
            .prepare_cached(&table.update)
            .await
            .map_err(backend)?;
        match transaction.execute(&statement, &refs(&params)).await {
            Ok(1) => {
                transaction.commit().await.map_err(backend)?;
                Ok(Entity {
                    id,
                    version: current.version + 1,
                    values,
                })
            }
            Ok(_) => Err(StorageError::PreconditionFailed {
                current: current.etag(),
            }),
            Err(error) if is_unique_violation(&error) => {
                // The failed transaction can run nothing more; look the key up outside it.
                drop(transaction);
                Err(key_conflict(&client, table, report, tenant.0, &values).await)
            }
            Err(error) => Err(backend(error)),
        }
    }

    async fn delete(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
        precondition: Precondition,
    ) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let table = self.table(report);
        let transaction = client.transaction().await.map_err(backend)?;
        let locked = format!("{} FOR UPDATE", table.select_by_id);
        let current = select_one(&transaction, report, &locked, &[&tenant.0, &id])
            .await?
            .ok_or(StorageError::NotFound)?;
        precondition.check(&current)?;
        transaction
            .execute(&table.delete, &[&tenant.0, &id])
            .await
            .map_err(backend)?;
        transaction.commit().await.map_err(backend)
    }

    async fn latest_report(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        period: Option<Period>,
    ) -> Result<Vec<Entity>, StorageError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.table(report).latest)
            .await
            .map_err(backend)?;
        let period_text = period.map(|p| p.stored().to_owned());
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant.0];
        if let Some(period) = &period_text {
            params.push(period);
        }
        client
            .query(&statement, &params)
            .await
            .map_err(backend)?
            .iter()
            .map(|row| read_entity(report, row))
            .collect()
    }

    async fn upsert_stream(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        mut chunks: RowChunks,
    ) -> Result<UpsertCounts, StorageError> {
        let mut client = self.client().await?;
        let table = self.table(report);
        let transaction = client.transaction().await.map_err(backend)?;
        let upsert = transaction
            .prepare_cached(&table.upsert)
            .await
            .map_err(backend)?;
        let mut counts = UpsertCounts::default();
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
            for values in rows {
                let params = row_params(tenant.0, Uuid::now_v7(), None, &values);
                let version: Option<i64> = transaction
                    .query_opt(&upsert, &refs(&params))
                    .await
                    .map_err(backend)?
                    .map(|row| row.get(0));
                match version {
                    None => counts.unchanged += 1,
                    Some(1) => counts.inserted += 1,
                    Some(_) => counts.updated += 1,
                }
            }
        }
        transaction.commit().await.map_err(backend)?;
        Ok(counts)
    }
}
