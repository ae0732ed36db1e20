//! The per-day summaries (`reportroot_storage::days`) on every backend: SQLite always,
//! PostgreSQL when `REPORTROOT_TEST_POSTGRES_URL` is set and Citus when
//! `REPORTROOT_TEST_CITUS_URL` is. After a random mix of inserts, patches (moving rows
//! between dates, periods and refreshes), deletes, bulk loads and a load undone after several
//! transactions, each summary equals its `GROUP BY` recomputation; `$count` from the summary
//! equals the plain `COUNT(*)` over random filters; the daily series from the summary equals
//! the calendar statement's rows.
#![expect(clippy::unwrap_used)]

use std::io::Write as _;
use std::time::Duration;

use reportroot_model::{find_report, Date, Period, ReportType, TenantId, Value, ValueKind};
use reportroot_odata::query::parse_filter;
use reportroot_postgres::PostgresStorage;
use reportroot_sqlite::{Durability, SqliteStorage};
use reportroot_storage::directory::SqlValue;
use reportroot_storage::engine::{ReadCost, SqlBackend};
use reportroot_storage::query_sql::{compile_count, SqlParam};
use reportroot_storage::series::{compile_series, Interval, SeriesQuery};
use reportroot_storage::sql::Dialect;
use reportroot_storage::{
    ListQuery, LoadAborted, NewEntity, Precondition, RowChunks, Scope, Storage, StorageError,
};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// A small deterministic generator (xorshift), so that a failure can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The per-day reports exercised: without and with a dimension.
fn reports() -> [&'static ReportType; 2] {
    [
        find_report("office365ActiveUserCounts").unwrap(),
        find_report("oneDriveUsageAccountCounts").unwrap(),
    ]
}

fn day(offset: u64) -> Date {
    Date::parse("2025-01-01").unwrap().add_days(offset as i64)
}

/// A random row of `report`: refresh dates over 40 days, activity dates up to 9 days before.
fn random_row(report: &ReportType, random: &mut Random) -> Vec<Value> {
    let refresh = random.below(40) + 10;
    let activity = refresh - random.below(10);
    let refresh_index = report.refresh_date_index();
    report
        .properties
        .iter()
        .enumerate()
        .map(|(i, property)| match property.kind {
            ValueKind::Date if i == refresh_index => Value::Date(day(refresh)),
            ValueKind::Date => Value::Date(day(activity)),
            ValueKind::Period => Value::Text(random.pick(&Period::ALL).stored().to_owned()),
            ValueKind::Text => Value::Text((*random.pick(&["OneDrive", "SharePoint"])).into()),
            ValueKind::Count | ValueKind::Count32 if random.below(10) == 0 => Value::Null,
            _ => Value::Int(random.below(1000) as i64),
        })
        .collect()
}

/// A change of one property of a stored row: often a key (date, period, dimension, refresh).
fn random_change(report: &ReportType, random: &mut Random) -> (usize, Value) {
    let fresh = random_row(report, random);
    let index = random.below(report.properties.len() as u64) as usize;
    (index, fresh[index].clone())
}

/// The tenant as an SQL literal of `dialect`.
fn tenant_literal(dialect: Dialect, tenant: TenantId) -> String {
    match dialect {
        Dialect::Sqlite => format!("X'{}'", tenant.0.simple()),
        Dialect::Postgres => format!("'{}'::uuid", tenant.0),
    }
}

/// Rows of the summary that its recomputation lacks, plus the reverse.
async fn mismatches<B: SqlBackend>(backend: &B, report: &ReportType, tenant: TenantId) -> i64 {
    let days = backend.tables().get(report).unwrap().days.as_ref().unwrap();
    let t = tenant_literal(backend.dialect(), tenant);
    let stored = format!(
        "SELECT tenant_id, {}, row_count, pick_id, pick_refresh FROM {} WHERE tenant_id = {t}",
        days.key_columns.join(", "),
        days.table
    );
    let recount = days.recount(Some(&t));
    let mut total = 0;
    for (a, b) in [(&stored, &recount), (&recount, &stored)] {
        let rows = backend
            .query(
                format!("SELECT COUNT(*) FROM ({a} EXCEPT {b}) e"),
                Vec::new(),
            )
            .await
            .unwrap();
        match rows[0][0] {
            SqlValue::Int(n) => total += n,
            ref other => panic!("a count: {other:?}"),
        }
    }
    total
}

/// Every row of a tenant's report.
async fn all_rows<B: SqlBackend>(
    backend: &B,
    tenant: TenantId,
    report: &'static ReportType,
) -> Vec<reportroot_model::Entity> {
    Storage::list(backend, tenant, report, &ListQuery::default())
        .await
        .unwrap()
}

/// Chunks of `rows`, each after a pause longer than a SQLite load transaction's budget (so
/// that the load spans several and keeps an undo journal), failing at the end if `fail`.
fn slow_chunks(rows: Vec<Vec<Value>>, fail: bool) -> RowChunks {
    let mut chunks: Vec<Result<Vec<Vec<Value>>, LoadAborted>> =
        rows.chunks(10).map(|c| Ok(c.to_vec())).collect();
    if fail {
        chunks.push(Err(LoadAborted("a bad row at the end".into())));
    }
    Box::new(chunks.into_iter().inspect(|_| {
        std::thread::sleep(Duration::from_millis(120));
    }))
}

/// One random write of `report` for `tenant`; errors a client could cause are fine.
async fn random_write<B: SqlBackend>(
    backend: &B,
    tenant: TenantId,
    report: &'static ReportType,
    random: &mut Random,
) {
    let result = match random.below(10) {
        0..=3 => Storage::insert(
            backend,
            tenant,
            report,
            NewEntity {
                id: None,
                values: random_row(report, random),
            },
        )
        .await
        .map(drop),
        4..=6 => {
            let rows = all_rows(backend, tenant, report).await;
            if rows.is_empty() {
                return;
            }
            let id = random.pick(&rows).id;
            if random.below(3) == 0 {
                Storage::delete(backend, tenant, report, id, Precondition::None).await
            } else {
                let changes: Vec<_> = (0..1 + random.below(2))
                    .map(|_| random_change(report, random))
                    .collect();
                Storage::update(backend, tenant, report, id, &changes, Precondition::None)
                    .await
                    .map(drop)
            }
        }
        _ => {
            // A bulk load: new rows and rows of stored keys with other counts.
            let mut rows: Vec<Vec<Value>> = (0..30).map(|_| random_row(report, random)).collect();
            for stored in all_rows(backend, tenant, report).await.iter().take(10) {
                let mut values = stored.values.clone();
                if let Some(i) = report
                    .properties
                    .iter()
                    .position(|p| p.kind == ValueKind::Count)
                {
                    values[i] = Value::Int(random.below(1000) as i64);
                }
                rows.push(values);
            }
            let chunks: RowChunks = Box::new(std::iter::once(Ok(rows)));
            Storage::upsert_stream(backend, tenant, report, chunks)
                .await
                .map(drop)
        }
    };
    match result {
        Ok(())
        | Err(StorageError::DuplicateKey { .. })
        | Err(StorageError::DuplicateId(_))
        | Err(StorageError::NotFound) => {}
        Err(other) => panic!("{other}"),
    }
}

/// The whole check on one backend.
async fn summaries_hold<B: SqlBackend>(name: &str, backend: &B, seed: u64) {
    let mut random = Random(seed);
    let tenants = [TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4())];
    for report in reports() {
        for _ in 0..150 {
            let tenant = *random.pick(&tenants);
            random_write(backend, tenant, report, &mut random).await;
        }
        // Loads of several transactions: one kept, one undone at its end.
        for fail in [false, true] {
            let rows: Vec<_> = (0..40).map(|_| random_row(report, &mut random)).collect();
            let result =
                Storage::upsert_stream(backend, tenants[0], report, slow_chunks(rows, fail)).await;
            assert_eq!(result.is_err(), fail, "{name}: {result:?}");
        }
        for tenant in tenants {
            assert_eq!(
                mismatches(backend, report, tenant).await,
                0,
                "{name}: the summary of {} differs from its recount",
                report.entity
            );
            counts_agree(name, backend, report, tenant, &mut random).await;
            series_agree(name, backend, report, tenant, &mut random).await;
        }
    }
    // The check can fail: a summary row off by one is found.
    let report = reports()[0];
    let days = backend.tables().get(report).unwrap().days.as_ref().unwrap();
    let t = tenant_literal(backend.dialect(), tenants[0]);
    let first = days.key_columns[0].clone();
    backend
        .execute(
            format!(
                "UPDATE {} SET row_count = row_count + 1 WHERE tenant_id = {t} AND {first} = \
                 (SELECT MIN({first}) FROM {} WHERE tenant_id = {t})",
                days.table, days.table
            ),
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(mismatches(backend, report, tenants[0]).await > 0, "{name}");
}

/// A random filter over the summary's keys (or, sometimes, another property).
fn random_filter(report: &ReportType, random: &mut Random) -> String {
    let date = || "reportDate";
    let term = |random: &mut Random| -> String {
        let op = random.pick(&["eq", "ne", "gt", "ge", "lt", "le"]);
        match random.below(6) {
            0 => format!("reportPeriod eq '{}'", random.pick(&Period::ALL).stored()),
            1 if report.dimension.is_some() => {
                format!("siteType {op} 'OneDrive'")
            }
            2 => format!("reportRefreshDate {op} {}", day(random.below(50))),
            _ => format!("{} {op} {}", date(), day(random.below(50))),
        }
    };
    let first = term(random);
    match random.below(4) {
        0 => first,
        1 => format!("{first} and {}", term(random)),
        2 => format!("({first} or {}) and {}", term(random), term(random)),
        _ => format!("not ({first}) or {}", term(random)),
    }
}

async fn counts_agree<B: SqlBackend>(
    name: &str,
    backend: &B,
    report: &'static ReportType,
    tenant: TenantId,
    random: &mut Random,
) {
    for round in 0..30 {
        let text = random_filter(report, random);
        let filter = (round > 0).then(|| parse_filter(report, &text).unwrap());
        let summed = Storage::count(backend, tenant, report, Scope::All, filter.as_ref())
            .await
            .unwrap();
        let plain = compile_count(
            report,
            backend.dialect(),
            tenant.0,
            &Scope::All,
            filter.as_ref(),
        );
        let counted = backend.read_count(plain, ReadCost::Bounded).await.unwrap();
        assert_eq!(summed as i64, counted, "{name}: $count of {text:?}");
    }
}

async fn series_agree<B: SqlBackend>(
    name: &str,
    backend: &B,
    report: &'static ReportType,
    tenant: TenantId,
    random: &mut Random,
) {
    for _ in 0..10 {
        let from = day(random.below(50));
        let query = SeriesQuery {
            from,
            to: from.add_days(random.below(50) as i64),
            interval: Interval::Day,
            period: None,
        };
        let summarized = Storage::series(backend, tenant, report, &query)
            .await
            .unwrap();
        let columns = &backend.tables().get(report).unwrap().columns;
        let calendar = compile_series(report, backend.dialect(), columns, tenant.0, &query, 20_001);
        let walked = backend
            .read_entities(report, calendar, ReadCost::Bounded)
            .await
            .unwrap();
        assert_eq!(summarized, walked, "{name}: series {query:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_equal_their_recount_after_random_writes() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStorage::open(dir.path().join("d.db"), Durability::Process).unwrap();
    summaries_hold("sqlite", &sqlite, 0x5eed_0001).await;
    for (name, variable) in [
        ("postgres", "REPORTROOT_TEST_POSTGRES_URL"),
        ("citus", "REPORTROOT_TEST_CITUS_URL"),
    ] {
        match std::env::var(variable).ok().filter(|u| !u.is_empty()) {
            Some(url) => {
                let postgres = PostgresStorage::connect(&url, 4).await.unwrap();
                summaries_hold(name, &postgres, 0x5eed_0002).await;
            }
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED the summaries on {name}: {variable} is not set"
                );
            }
        }
    }
}

/// A file of schema version 7 (no summaries) gets them built from its rows when opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_builds_the_summaries_from_stored_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let tenant = TenantId(Uuid::new_v4());
    let mut random = Random(0x5eed_0003);
    {
        let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
        for report in reports() {
            let rows: Vec<_> = (0..200).map(|_| random_row(report, &mut random)).collect();
            let chunks: RowChunks = Box::new(std::iter::once(Ok(rows)));
            Storage::upsert_stream(&storage, tenant, report, chunks)
                .await
                .unwrap();
        }
    }
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let tables: Vec<String> = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%\\_days' ESCAPE '\\'")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(tables.len() > 40, "{tables:?}");
        for table in tables {
            connection
                .execute_batch(&format!("DROP TABLE {table}"))
                .unwrap();
        }
        connection.execute_batch("PRAGMA user_version = 7").unwrap();
    }
    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    assert!(
        matches!(
            storage.schema_change(),
            reportroot_storage::SchemaChange::Upgraded { from: 7, .. }
        ),
        "{:?}",
        storage.schema_change()
    );
    for report in reports() {
        assert_eq!(mismatches(&storage, report, tenant).await, 0);
        let total = Storage::count(&storage, tenant, report, Scope::All, None)
            .await
            .unwrap();
        assert!(total > 100, "{total}");
    }
}

/// A row of `report` with fixed counts, reporting `activity` in period 7 of refresh `refresh`.
fn row_at(report: &ReportType, activity: Date, refresh: Date) -> Vec<Value> {
    let refresh_index = report.refresh_date_index();
    report
        .properties
        .iter()
        .enumerate()
        .map(|(i, property)| match property.kind {
            ValueKind::Date if i == refresh_index => Value::Date(refresh),
            ValueKind::Date => Value::Date(activity),
            ValueKind::Period => Value::Text("7".into()),
            ValueKind::Text => Value::Text("OneDrive".into()),
            _ => Value::Int(1),
        })
        .collect()
}

/// A statement parameter for tokio-postgres.
fn bound(param: &SqlParam) -> Box<dyn ToSql + Sync + Send> {
    match param {
        SqlParam::Uuid(id) => Box::new(*id),
        SqlParam::Int(i) => Box::new(*i),
        SqlParam::Value(Value::Date(d)) => Box::new(d.as_time()),
        SqlParam::Value(Value::Text(s)) => Box::new(s.clone()),
        SqlParam::Value(Value::Int(i)) => Box::new(*i),
        SqlParam::Value(Value::Null) => Box::new(None::<String>),
    }
}

/// Whether a backend waits for a lock `blocker` (a backend or, on Citus, a global process
/// id) holds.
async fn is_blocking(client: &tokio_postgres::Client, citus: bool, blocker: i64) -> bool {
    let sql = if citus {
        "SELECT count(*) FROM citus_lock_waits WHERE blocking_gpid = $1"
    } else {
        "SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))"
    };
    let blocker: Box<dyn ToSql + Sync + Send> = if citus {
        Box::new(blocker)
    } else {
        Box::new(blocker as i32)
    };
    let waiting: i64 = client.query_one(sql, &[&*blocker]).await.unwrap().get(0);
    waiting > 0
}

/// The interleaving of two writers of one date and period that READ COMMITTED makes hard:
/// writer B inserts a row of an older refresh than the pick and holds the summary row's lock
/// (its `add`) while writer A deletes the picked row. A must find the pick again among the
/// rows committed by then, B's included: the pick equals the recomputation.
async fn the_pick_survives_a_racing_insert(name: &str, url: &str) {
    let report = find_report("office365ActiveUserCounts").unwrap();
    let storage = std::sync::Arc::new(PostgresStorage::connect(url, 4).await.unwrap());
    let tenant = TenantId(Uuid::new_v4());
    let activity = day(0);
    let mut ids = Vec::new();
    for refresh in [day(1), day(3)] {
        let entity = NewEntity {
            id: None,
            values: row_at(report, activity, refresh),
        };
        ids.push(
            Storage::insert(&*storage, tenant, report, entity)
                .await
                .unwrap()
                .id,
        );
    }
    let (oldest, picked) = (ids[0], ids[1]);
    let tables = storage.tables().get(report).unwrap();
    let days = tables.days.as_ref().unwrap();

    // Writer B: inserts a copy of the oldest row at a refresh between the two, then adds it
    // to the summary (which locks the summary row until B commits).
    let (b, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let citus = name == "citus";
    let blocker: i64 = if citus {
        b.query_one("SELECT citus_backend_gpid()", &[])
            .await
            .unwrap()
            .get(0)
    } else {
        let pid: i32 = b
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        pid.into()
    };
    let middle = Uuid::new_v4();
    let refresh_column = report.properties[report.refresh_date_index()].column_name();
    let copied = tables
        .columns
        .split(", ")
        .map(|c| match c {
            "id" => format!("'{middle}'::uuid"),
            c if c == refresh_column => format!("DATE '{}'", day(2)),
            c => c.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    b.batch_execute(&format!(
        "BEGIN; INSERT INTO {t} (tenant_id, {columns}) SELECT tenant_id, {copied} FROM {t} \
         WHERE tenant_id = '{tenant}'::uuid AND id = '{oldest}'::uuid",
        t = tables.table,
        columns = tables.columns,
        tenant = tenant.0,
    ))
    .await
    .unwrap();
    let (add, params) = days.adding(tenant.0, middle, &row_at(report, activity, day(2)));
    let params: Vec<_> = params.iter().map(bound).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
    assert_eq!(b.execute(add, &refs).await.unwrap(), 1, "{name}");

    // Writer A: deletes the picked row, and waits for B's lock on the summary row.
    let deleting = {
        let storage = storage.clone();
        tokio::spawn(async move {
            Storage::delete(&*storage, tenant, report, picked, Precondition::None).await
        })
    };
    let mut waited = 0;
    while !is_blocking(&b, citus, blocker).await {
        assert!(
            !deleting.is_finished(),
            "{name}: the delete did not wait for B"
        );
        assert!(waited < 200, "{name}: the delete never waited for B's lock");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.batch_execute("COMMIT").await.unwrap();
    deleting.await.unwrap().unwrap();

    let pick: Uuid = b
        .query_one(
            &format!(
                "SELECT pick_id FROM {} WHERE tenant_id = '{}'::uuid",
                days.table, tenant.0
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        mismatches(&*storage, report, tenant).await,
        0,
        "{name}: the pick is {pick}; the latest refresh's row is {middle}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_pick_is_found_again_among_rows_committed_meanwhile() {
    for (name, variable) in [
        ("postgres", "REPORTROOT_TEST_POSTGRES_URL"),
        ("citus", "REPORTROOT_TEST_CITUS_URL"),
    ] {
        match std::env::var(variable).ok().filter(|u| !u.is_empty()) {
            Some(url) => the_pick_survives_a_racing_insert(name, &url).await,
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED the racing pick on {name}: {variable} is not set"
                );
            }
        }
    }
}
