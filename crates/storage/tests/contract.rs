//! One contract for every backend: each test runs on SQLite, on PostgreSQL when
//! `REPORTROOT_TEST_POSTGRES_URL` is set and on Citus when `REPORTROOT_TEST_CITUS_URL` is
//! (otherwise it says it was skipped).
#![expect(clippy::unwrap_used)]

use std::io::Write;
use std::sync::Arc;

use reportroot_model::{find_report, Date, Entity, Period, ReportType, TenantId, Value};
use reportroot_odata::query::{parse_filter, parse_order_by};
use reportroot_postgres::PostgresStorage;
use reportroot_sqlite::{Durability, SqliteStorage};
use reportroot_storage::{
    effective_order, Cursor, ListQuery, LoadAborted, NewEntity, Precondition, RowChunks, Scope,
    Storage, StorageError,
};
use uuid::Uuid;

struct Backend {
    storage: Arc<dyn Storage>,
    _dir: Option<tempfile::TempDir>,
}

fn env_url(variable: &str) -> Option<String> {
    std::env::var(variable).ok().filter(|u| !u.is_empty())
}

/// The servers speaking PostgreSQL's protocol to run on: `(name, URL)` of PostgreSQL and
/// Citus, those whose URL is set (the others announced as skipped).
fn server_urls(what: &str) -> Vec<(&'static str, String)> {
    let mut urls = Vec::new();
    for (name, variable, script) in [
        (
            "postgres",
            "REPORTROOT_TEST_POSTGRES_URL",
            "scripts/postgres.sh",
        ),
        ("citus", "REPORTROOT_TEST_CITUS_URL", "scripts/citus.sh"),
    ] {
        match env_url(variable) {
            Some(url) => urls.push((name, url)),
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {what} on {name}: {variable} is not set ({script} starts one)"
                );
            }
        }
    }
    urls
}

/// Opens a database of a test's own; on Citus with 2 shards a table (the migration creates
/// them; Citus's 32 would make each such test create thousands).
async fn connect_own(url: &str) -> Result<PostgresStorage, StorageError> {
    let options = reportroot_postgres::citus::CitusOptions {
        shard_count: Some(2),
    };
    PostgresStorage::connect_with(url, 1, options).await
}

/// Marks the schema of the database at `own` (`old` a client of it) as version `from` and
/// opens it again: the storage, after checking that it upgraded from that version.
async fn reopened_at_version(
    old: &tokio_postgres::Client,
    own: &str,
    from: i64,
    name: &str,
) -> PostgresStorage {
    old.batch_execute(&format!("UPDATE reportroot_schema SET version = {from}"))
        .await
        .unwrap();
    let storage = connect_own(own).await.unwrap();
    assert!(
        matches!(
            storage.schema_change(),
            reportroot_storage::SchemaChange::Upgraded { from: f, .. } if f == from
        ),
        "{name}: {:?}",
        storage.schema_change()
    );
    storage
}

/// A plain client of the database at `own` (no storage of ours): to change its schema
/// behind the storage's back.
async fn plain_client(own: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(own, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The database name of a URL of [`own_database`].
fn own_name(url: &str) -> &str {
    url.rsplit_once('/').unwrap().1
}

/// A database of its own beside `url`'s (on every node of a Citus cluster), so that other
/// tests keep theirs.
async fn own_database(url: &str, prefix: &str) -> String {
    let name = format!("{prefix}_{}", Uuid::new_v4().simple());
    reportroot_postgres::citus::create_database(url, &name)
        .await
        .unwrap()
}

async fn backends() -> Vec<(&'static str, Backend)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStorage::open(dir.path().join("c.db"), Durability::Process).unwrap();
    let mut all = vec![(
        "sqlite",
        Backend {
            storage: Arc::new(sqlite),
            _dir: Some(dir),
        },
    )];
    for (name, url) in server_urls("contract") {
        all.push((
            name,
            Backend {
                storage: Arc::new(PostgresStorage::connect(&url, 4).await.unwrap()),
                _dir: None,
            },
        ));
    }
    all
}

fn activations() -> &'static ReportType {
    find_report("office365ActivationsUserCounts").unwrap()
}

fn date(text: &str) -> Value {
    Value::Date(Date::parse(text).unwrap())
}

fn row(day: &str, product: &str, assigned: i64) -> Vec<Value> {
    vec![
        date(day),
        Value::Text(product.into()),
        Value::Int(assigned),
        Value::Int(1),
        Value::Int(0),
    ]
}

fn new(values: Vec<Value>) -> NewEntity {
    NewEntity { id: None, values }
}

#[tokio::test]
async fn crud_conflicts_preconditions_and_isolation() {
    for (name, backend) in backends().await {
        let s = &backend.storage;
        let report = activations();
        let (a, b) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
        let created = s
            .insert(a, report, new(row("2025-01-01", "X", 1)))
            .await
            .unwrap();
        assert_eq!(created.version, 1, "{name}");
        assert_eq!(
            s.get(a, report, created.id).await.unwrap().unwrap(),
            created,
            "{name}"
        );
        assert!(
            s.get(b, report, created.id).await.unwrap().is_none(),
            "{name}"
        );

        match s.insert(a, report, new(row("2025-01-01", "X", 2))).await {
            Err(StorageError::DuplicateKey { existing, .. }) => {
                assert_eq!(existing, created.id, "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
        let same_id = NewEntity {
            id: Some(created.id),
            values: row("2025-01-02", "X", 1),
        };
        assert!(
            matches!(
                s.insert(a, report, same_id.clone()).await,
                Err(StorageError::DuplicateId(_))
            ),
            "{name}"
        );
        // Another tenant may use the same key and even the same id.
        s.insert(b, report, same_id).await.unwrap();

        let updated = s
            .update(
                a,
                report,
                created.id,
                &[(2, Value::Int(9))],
                Precondition::Version(1),
            )
            .await
            .unwrap();
        assert_eq!(
            (updated.version, &updated.values[2]),
            (2, &Value::Int(9)),
            "{name}"
        );
        assert!(
            matches!(
                s.update(
                    a,
                    report,
                    created.id,
                    &[(2, Value::Int(10))],
                    Precondition::Version(1)
                )
                .await,
                Err(StorageError::PreconditionFailed { .. })
            ),
            "{name}"
        );
        assert!(
            matches!(
                s.update(
                    b,
                    report,
                    created.id,
                    &[(2, Value::Int(10))],
                    Precondition::None
                )
                .await
                .map(|e| e.values[2].clone()),
                Ok(Value::Int(10))
            ),
            "{name}: b's own row"
        );
        assert!(
            matches!(
                s.update(a, report, Uuid::new_v4(), &[], Precondition::None)
                    .await,
                Err(StorageError::NotFound)
            ),
            "{name}"
        );
        let other = s
            .insert(a, report, new(row("2025-01-03", "X", 1)))
            .await
            .unwrap();
        assert!(
            matches!(
                s.update(
                    a,
                    report,
                    other.id,
                    &[(0, date("2025-01-01"))],
                    Precondition::None
                )
                .await,
                Err(StorageError::DuplicateKey { .. })
            ),
            "{name}"
        );
        assert_eq!(
            s.get(a, report, other.id).await.unwrap().unwrap().values[0],
            date("2025-01-03"),
            "{name}"
        );

        assert!(
            matches!(
                s.delete(a, report, created.id, Precondition::Version(1))
                    .await,
                Err(StorageError::PreconditionFailed { .. })
            ),
            "{name}"
        );
        s.delete(a, report, created.id, Precondition::Version(2))
            .await
            .unwrap();
        assert!(
            matches!(
                s.delete(a, report, created.id, Precondition::None).await,
                Err(StorageError::NotFound)
            ),
            "{name}"
        );
        assert_eq!(
            s.count(a, report, Scope::All, None).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            s.count(b, report, Scope::All, None).await.unwrap(),
            1,
            "{name}"
        );
    }
}

#[tokio::test]
async fn filters_order_keyset_paging_and_latest() {
    for (name, backend) in backends().await {
        let s = &backend.storage;
        let report = activations();
        let t = TenantId(Uuid::new_v4());
        let rows: Vec<Vec<Value>> = (1..=9)
            .flat_map(|d| ["A", "B"].map(|p| row(&format!("2025-01-0{d}"), p, d)))
            .collect();
        let counts = s.upsert_many(t, report, rows.clone()).await.unwrap();
        assert_eq!(counts.inserted, 18, "{name}");
        let mut changed = rows.clone();
        changed[0][3] = Value::Int(42);
        let counts = s.upsert_many(t, report, changed).await.unwrap();
        assert_eq!(
            (counts.inserted, counts.updated, counts.unchanged),
            (0, 1, 17),
            "{name}"
        );

        for (filter, expected) in [
            ("assigned gt 5", 8),
            ("productType eq 'A' and reportRefreshDate le 2025-01-03", 3),
            ("productType in ('B') or activated eq 42", 10),
            ("not (assigned ge 2)", 2),
            ("day(reportRefreshDate) eq 9", 2),
            ("startswith(tolower(productType), 'a')", 9),
        ] {
            let expr = parse_filter(report, filter).unwrap();
            assert_eq!(
                s.count(t, report, Scope::All, Some(&expr)).await.unwrap(),
                expected,
                "{name}: {filter}"
            );
            let listed = s
                .list(
                    t,
                    report,
                    &ListQuery {
                        filter: Some(expr),
                        ..ListQuery::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(listed.len() as u64, expected, "{name}: {filter}");
        }

        // Keyset paging in a descending order visits every row once.
        let order_by = parse_order_by(report, "assigned desc,productType").unwrap();
        let mut seen = Vec::new();
        let mut after: Option<Cursor> = None;
        for _ in 0..=rows.len() {
            let query = ListQuery {
                order_by: order_by.clone(),
                after: after.clone(),
                limit: Some(4),
                ..ListQuery::default()
            };
            let page = s.list(t, report, &query).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(cursor_after(report, &query, last));
            seen.extend(
                page.iter()
                    .map(|e| (e.values[2].clone(), e.values[1].clone())),
            );
        }
        let mut expected: Vec<_> = rows.iter().map(|r| (r[2].clone(), r[1].clone())).collect();
        expected.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        assert_eq!(seen, expected, "{name}");

        // Ids are strings to $filter and $orderby, whatever the column type.
        let by_id = parse_order_by(report, "id desc").unwrap();
        let all = s
            .list(
                t,
                report,
                &ListQuery {
                    order_by: by_id,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        let ids: Vec<String> = all.iter().map(|e| e.id.to_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(ids, sorted, "{name}");
        let some = &ids[5];
        for (filter, expected) in [
            (format!("id eq '{some}'"), 1),
            (format!("id eq '{}'", some.to_uppercase()), 0),
            (format!("id lt '{some}'"), ids.len() as u64 - 6),
            (format!("'{some}' ge id"), ids.len() as u64 - 5),
            ("id gt '0'".to_owned(), ids.len() as u64),
            ("id lt '0'".to_owned(), 0),
            (format!("id ne '{some}'"), ids.len() as u64 - 1),
            (format!("startswith(id, '{}')", &some[..35]), 1),
            (format!("contains(id, '{}')", &some[19..]), 1),
        ] {
            let expr = parse_filter(report, &filter).unwrap();
            assert_eq!(
                s.count(t, report, Scope::All, Some(&expr)).await.unwrap(),
                expected,
                "{name}: {filter}"
            );
        }

        // The latest report, and the latest of a period.
        let latest = s.latest_report(t, report, None).await.unwrap();
        assert_eq!(latest.len(), 2, "{name}");
        assert!(
            latest.iter().all(|e| e.values[0] == date("2025-01-09")),
            "{name}"
        );
        let scoped = s
            .list(
                t,
                report,
                &ListQuery {
                    scope: Scope::Latest { period: None },
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(scoped, latest, "{name}");
        let teams = find_report("teamsDeviceUsageDistributionUserCounts").unwrap();
        let teams_row = |day: &str, period: &str| {
            let mut values = vec![date(day)];
            values.extend((0..8).map(Value::Int));
            values.push(Value::Text(period.into()));
            values
        };
        s.upsert_many(
            t,
            teams,
            vec![teams_row("2025-01-09", "7"), teams_row("2025-01-02", "30")],
        )
        .await
        .unwrap();
        let d30 = s.latest_report(t, teams, Some(Period::D30)).await.unwrap();
        assert_eq!(d30.len(), 1, "{name}");
        assert_eq!(d30[0].values[0], date("2025-01-02"), "{name}");
        // A newer D30 report, then deleted again: the function falls back to the older one.
        let newer = s
            .insert(t, teams, new(teams_row("2025-01-05", "30")))
            .await
            .unwrap();
        let d30 = s.latest_report(t, teams, Some(Period::D30)).await.unwrap();
        assert_eq!(d30[0].values[0], date("2025-01-05"), "{name}");
        s.delete(t, teams, newer.id, Precondition::None)
            .await
            .unwrap();
        let d30 = s.latest_report(t, teams, Some(Period::D30)).await.unwrap();
        assert_eq!(d30.len(), 1, "{name}");
        assert_eq!(d30[0].values[0], date("2025-01-02"), "{name}");
        let counted = s
            .count(
                t,
                teams,
                Scope::Latest {
                    period: Some(Period::D30),
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(counted, 1, "{name}");
        // A PATCH that moves a row to another refresh date and period is found there.
        let moved = s
            .update(
                t,
                teams,
                d30[0].id,
                &[(0, date("2025-01-07")), (9, Value::Text("90".into()))],
                Precondition::None,
            )
            .await
            .unwrap();
        let d90 = s.latest_report(t, teams, Some(Period::D90)).await.unwrap();
        assert_eq!(d90, vec![moved], "{name}");
        assert!(
            s.latest_report(t, teams, Some(Period::D180))
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn streamed_loads_commit_whole_or_not_at_all() {
    for (name, backend) in backends().await {
        let s = &backend.storage;
        let report = activations();
        let t = TenantId(Uuid::new_v4());
        let chunk = |first: i64| -> Vec<Vec<Value>> {
            (first..first + 100)
                .map(|n| row("2025-01-31", &format!("P{n}"), n))
                .collect()
        };
        let aborted: RowChunks = Box::new(
            vec![
                Ok(chunk(0)),
                Ok(chunk(100)),
                Err(LoadAborted("a bad row".into())),
                Ok(chunk(200)),
            ]
            .into_iter(),
        );
        assert!(
            matches!(
                s.upsert_stream(t, report, aborted).await,
                Err(StorageError::Aborted(why)) if why == "a bad row"
            ),
            "{name}"
        );
        assert_eq!(
            s.count(t, report, Scope::All, None).await.unwrap(),
            0,
            "{name}"
        );

        let whole: RowChunks =
            Box::new(vec![Ok(chunk(0)), Ok(chunk(100)), Ok(chunk(50))].into_iter());
        let counts = s.upsert_stream(t, report, whole).await.unwrap();
        assert_eq!(
            (counts.inserted, counts.updated, counts.unchanged),
            (200, 0, 100),
            "{name}"
        );
        assert_eq!(
            s.count(t, report, Scope::All, None).await.unwrap(),
            200,
            "{name}"
        );

        // Known, then new, then known with a changed value, then the same key twice.
        let mut changed = row("2025-01-31", "P1", 1);
        changed[3] = Value::Int(99);
        let mixed: RowChunks = Box::new(
            vec![Ok(vec![
                row("2025-01-31", "P0", 0),
                row("2025-01-31", "NEW", 7),
                changed.clone(),
                row("2025-01-31", "TWICE", 1),
                row("2025-01-31", "TWICE", 2),
            ])]
            .into_iter(),
        );
        let counts = s.upsert_stream(t, report, mixed).await.unwrap();
        assert_eq!(
            (counts.inserted, counts.updated, counts.unchanged),
            (2, 2, 1),
            "{name}"
        );
        let stored = s
            .list(
                t,
                report,
                &ListQuery {
                    filter: Some(parse_filter(report, "productType in ('P1', 'TWICE')").unwrap()),
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        let values: Vec<_> = stored.iter().map(|e| e.values.clone()).collect();
        assert_eq!(
            values,
            vec![changed, row("2025-01-31", "TWICE", 2)],
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    drop(SqliteStorage::open(&path, Durability::Process).unwrap());
    set_user_version(&path);
    assert!(matches!(
        SqliteStorage::open(&path, Durability::Process),
        Err(StorageError::SchemaTooNew { found: 99, .. })
    ));
    for (_, url) in server_urls("schema test") {
        a_newer_postgres_schema_is_refused(&url).await;
    }
}

async fn a_newer_postgres_schema_is_refused(url: &str) {
    let own = own_database(url, "reportroot_schema").await;
    drop(connect_own(&own).await.unwrap());
    let other = plain_client(&own).await;
    other
        .batch_execute("UPDATE reportroot_schema SET version = 99")
        .await
        .unwrap();
    assert!(matches!(
        connect_own(&own).await,
        Err(StorageError::SchemaTooNew { found: 99, .. })
    ));
    reportroot_postgres::citus::drop_database(url, own_name(&own))
        .await
        .unwrap();
}

/// Bumps the schema version the way a newer reportroot would.
fn set_user_version(path: &std::path::Path) {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
}

/// Empty counts (Graph's empty CSV cells) are stored as NULL and read back as null; `$filter`
/// treats them as OData's null (equal to null only, neither greater nor less than anything,
/// `not` and `ne` two-valued); `$orderby` puts them first ascending and last descending on
/// every backend, and keyset paging passes them.
#[tokio::test]
async fn null_counts_filter_order_and_page_alike() {
    for (name, backend) in backends().await {
        let s = &backend.storage;
        let report = activations();
        let t = TenantId(Uuid::new_v4());
        let assigned = [None, Some(3), None, Some(1), Some(5), None];
        let rows: Vec<Vec<Value>> = assigned
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut r = row("2025-01-01", &format!("P{i}"), 0);
                r[2] = a.map_or(Value::Null, Value::Int);
                // Shared computer activation: null where assigned is null, but for P5.
                r[4] = if a.is_none() && i != 5 {
                    Value::Null
                } else {
                    Value::Int(1)
                };
                r
            })
            .collect();
        s.upsert_many(t, report, rows.clone()).await.unwrap();
        // Loading the same rows again changes nothing: null equals null in the upsert.
        let counts = s.upsert_many(t, report, rows.clone()).await.unwrap();
        assert_eq!(counts.unchanged, 6, "{name}");

        for (filter, expected) in [
            ("assigned eq null", 3),
            ("null eq assigned", 3),
            ("assigned ne null", 3),
            ("assigned gt 2", 2),
            ("not (assigned gt 2)", 4),
            ("assigned lt 100", 3),
            ("assigned ne 3", 5),
            ("not (assigned eq 3)", 5),
            ("assigned in (1, 5)", 2),
            ("not (assigned in (1, 5))", 4),
            ("assigned eq sharedComputerActivation", 3),
            ("assigned ne sharedComputerActivation", 3),
            ("assigned ge sharedComputerActivation", 5),
            ("assigned gt sharedComputerActivation", 2),
        ] {
            let expr = parse_filter(report, filter).unwrap();
            assert_eq!(
                s.count(t, report, Scope::All, Some(&expr)).await.unwrap(),
                expected,
                "{name}: {filter}"
            );
        }
        let listed = s
            .list(
                t,
                report,
                &ListQuery {
                    filter: Some(parse_filter(report, "productType eq 'P0'").unwrap()),
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(listed[0].values, rows[0], "{name}");

        for (order, expected) in [
            ("assigned,productType", ["P0", "P2", "P5", "P3", "P1", "P4"]),
            (
                "assigned desc,productType desc",
                ["P4", "P1", "P3", "P5", "P2", "P0"],
            ),
            // P0 and P2 tie on both keys: the natural key's other columns (refresh date,
            // `productType`) break it, in the last key's direction.
            (
                "sharedComputerActivation,assigned desc",
                ["P2", "P0", "P4", "P1", "P3", "P5"],
            ),
        ] {
            let order_by = parse_order_by(report, order).unwrap();
            let products = |page: &[Entity]| -> Vec<String> {
                page.iter().map(|e| e.values[1].to_string()).collect()
            };
            let all = s
                .list(
                    t,
                    report,
                    &ListQuery {
                        order_by: order_by.clone(),
                        ..ListQuery::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(products(&all), expected, "{name}: {order}");
            // Pages of one and of two, each after the previous page's last row.
            for size in [1, 2] {
                let mut seen = Vec::new();
                let mut after: Option<Cursor> = None;
                for _ in 0..=rows.len() {
                    let query = ListQuery {
                        order_by: order_by.clone(),
                        after: after.clone(),
                        limit: Some(size),
                        ..ListQuery::default()
                    };
                    let page = s.list(t, report, &query).await.unwrap();
                    let Some(last) = page.last() else { break };
                    after = Some(cursor_after(report, &query, last));
                    seen.extend(products(&page));
                }
                assert_eq!(seen, expected, "{name}: {order} by {size}");
            }
        }
    }
}

/// The keyset cursor of a page's last row: its values at the listing's order keys
/// (`effective_order`: the `$orderby`, then the natural key's other columns), and its id.
fn cursor_after(report: &ReportType, query: &ListQuery, last: &Entity) -> Cursor {
    Cursor {
        values: effective_order(report, query)
            .iter()
            .filter_map(|k| match k.property {
                reportroot_odata::query::PropertyRef::Index(i) => Some(last.values[i].clone()),
                reportroot_odata::query::PropertyRef::Id => None,
            })
            .collect(),
        id: last.id,
    }
}

/// A PostgreSQL database of schema version 1 (counts `NOT NULL`) is migrated: its rows stay
/// and an empty count is accepted.
#[tokio::test]
async fn a_postgres_database_of_version_1_accepts_null_counts() {
    for (_, url) in server_urls("migration test") {
        a_database_of_version_1_accepts_null_counts(&url).await;
    }
}

async fn a_database_of_version_1_accepts_null_counts(url: &str) {
    let own = own_database(url, "reportroot_nullable").await;
    let report = activations();
    let t = TenantId(Uuid::new_v4());
    let storage = connect_own(&own).await.unwrap();
    storage
        .upsert_many(t, report, vec![row("2025-01-01", "A", 1)])
        .await
        .unwrap();
    drop(storage);
    // Back to version 1: its count columns were NOT NULL.
    let old = plain_client(&own).await;
    // Two batches: Citus refuses DDL on a distributed table in a batch of several commands.
    old.batch_execute(
        "ALTER TABLE office365_activations_user_counts ALTER COLUMN assigned SET NOT NULL, \
         ALTER COLUMN activated SET NOT NULL, ALTER COLUMN shared_computer_activation SET NOT NULL",
    )
    .await
    .unwrap();
    old.batch_execute("UPDATE reportroot_schema SET version = 1")
        .await
        .unwrap();
    let storage = connect_own(&own).await.unwrap();
    let mut empty = row("2025-01-02", "A", 0);
    empty[2] = Value::Null;
    storage
        .upsert_many(t, report, vec![empty.clone()])
        .await
        .unwrap();
    let all = storage
        .list(t, report, &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].values, empty);
    let version: i64 = old
        .query_one("SELECT max(version) FROM reportroot_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, reportroot_postgres::SCHEMA_VERSION);
    drop((storage, old));
    reportroot_postgres::citus::drop_database(url, own_name(&own))
        .await
        .unwrap();
}

/// A PostgreSQL database of schema version 7 (per-day reports indexed by `_by_period`) is
/// migrated: every per-day report of a period gets `_by_period_day` with its columns (also
/// `skype_for_business_participant_activity_minute_counts`, whose cut name is the one its
/// `_by_period` had), and `_by_period` is gone; its rows stay, pages of a period read them.
#[tokio::test]
async fn a_postgres_database_of_version_7_gets_the_period_pages_index() {
    use reportroot_storage::sql::period_pages_index;
    for (name, url) in server_urls("migration 7 -> 8") {
        let own = own_database(&url, "reportroot_pgperiod").await;
        let report = find_report("office365ActiveUserCounts").unwrap();
        let t = TenantId(Uuid::new_v4());
        let storage = connect_own(&own).await.unwrap();
        let mut values = numbered_row(report, 1);
        values[report.period_index().unwrap()] = Value::Text(Period::D7.stored().into());
        storage.upsert_many(t, report, vec![values]).await.unwrap();
        drop(storage);
        let old = plain_client(&own).await;
        // Back to version 7; one statement a batch (Citus refuses DDL of distributed tables
        // in a batch of several).
        let per_day: Vec<_> = reportroot_model::REPORTS
            .iter()
            .filter_map(|r| period_pages_index(r).map(|index| (r, index)))
            .collect();
        assert!(per_day.len() > 10, "{} per-day reports", per_day.len());
        for (report, (index, columns)) in &per_day {
            let table = report.table_name();
            old.batch_execute(&format!("DROP INDEX {index}"))
                .await
                .unwrap();
            old.batch_execute(&format!(
                "CREATE INDEX {table}_by_period ON {table} (tenant_id, {}, {})",
                columns[0], columns[1]
            ))
            .await
            .unwrap();
        }
        let storage = reopened_at_version(&old, &own, 7, name).await;
        for (report, (_, columns)) in &per_day {
            let table = report.table_name();
            let definitions: Vec<String> = old
                .query(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1",
                    &[&table],
                )
                .await
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect();
            let day = format!("USING btree (tenant_id, {})", columns.join(", "));
            let period = format!("USING btree (tenant_id, {}, {})", columns[0], columns[1]);
            assert!(
                definitions.iter().any(|d| d.ends_with(&day))
                    && !definitions.iter().any(|d| d.ends_with(&period)),
                "{name} {table}: {definitions:#?}"
            );
        }
        let filter = parse_filter(report, "reportPeriod eq '7'").unwrap();
        let query = ListQuery {
            filter: Some(filter),
            ..ListQuery::default()
        };
        let rows = storage.list(t, report, &query).await.unwrap();
        assert_eq!(rows.len(), 1, "{name}");
        drop((storage, old));
        reportroot_postgres::citus::drop_database(&url, own_name(&own))
            .await
            .unwrap();
    }
}

/// A PostgreSQL database of schema version 8 (text in the database's collation) is migrated:
/// the dimension and duration columns of every report table, and the dimension of the per-day
/// summaries, are in the `"C"` collation; the rows stay, and pages of a dimension report read
/// them in `siteType`'s ordinal order.
#[tokio::test]
async fn a_postgres_database_of_version_8_gets_ordinal_text_columns() {
    use reportroot_storage::sql::ordinal_text_migration;
    for (name, url) in server_urls("migration 8 -> 9") {
        let own = own_database(&url, "reportroot_pgordinal").await;
        let report = find_report("oneDriveUsageFileCounts").unwrap();
        let site_type = report.property_index("siteType").unwrap();
        let t = TenantId(Uuid::new_v4());
        let storage = connect_own(&own).await.unwrap();
        let rows: Vec<Vec<Value>> = ["b", "B", "a"]
            .iter()
            .map(|site| {
                let mut values = numbered_row(report, 1);
                values[site_type] = Value::Text((*site).into());
                values[report.period_index().unwrap()] = Value::Text(Period::D7.stored().into());
                values
            })
            .collect();
        storage.upsert_many(t, report, rows).await.unwrap();
        drop(storage);
        let old = plain_client(&own).await;
        // Back to version 8: every statement of the migration, in the default collation.
        let statements: Vec<String> = reportroot_model::REPORTS
            .iter()
            .flat_map(ordinal_text_migration)
            .collect();
        assert!(statements.len() > 10, "{statements:#?}");
        for statement in &statements {
            old.batch_execute(&statement.replace("COLLATE \"C\"", "COLLATE \"default\""))
                .await
                .unwrap();
        }
        let collations = || async {
            old.query(
                "SELECT table_name || '.' || column_name || ' ' || coalesce(collation_name, '-') \
                 FROM information_schema.columns WHERE table_schema = 'public' \
                 AND column_name = 'site_type' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect::<Vec<String>>()
        };
        assert!(
            collations().await.iter().all(|c| c.ends_with(" -")),
            "{name}"
        );
        let storage = reopened_at_version(&old, &own, 8, name).await;
        let found = collations().await;
        assert!(
            found.len() >= 8 && found.iter().all(|c| c.ends_with(" C")),
            "{name}: {found:#?}"
        );
        let query = ListQuery {
            order_by: parse_order_by(report, "siteType").unwrap(),
            ..ListQuery::default()
        };
        let listed = storage.list(t, report, &query).await.unwrap();
        let sites: Vec<&Value> = listed.iter().map(|e| &e.values[site_type]).collect();
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(sites, [&text("B"), &text("a"), &text("b")], "{name}");
        drop((storage, old));
        reportroot_postgres::citus::drop_database(&url, own_name(&own))
            .await
            .unwrap();
    }
}

/// A PostgreSQL database of schema version 10 is migrated: the per-day summaries' index of
/// their picks by date (`_days_picks`) is dropped, their partial index of late rows
/// (`_days_late`) built, and a closed range finds a late row.
#[tokio::test]
async fn a_postgres_database_of_version_10_gets_the_late_rows_index() {
    for (name, url) in server_urls("migration 10 -> 11") {
        let own = own_database(&url, "reportroot_pglate").await;
        let report = find_report("office365ActiveUserCounts").unwrap();
        let t = TenantId(Uuid::new_v4());
        let storage = connect_own(&own).await.unwrap();
        let mut late = numbered_row(report, 1);
        late[report.refresh_date_index()] = Value::Date(Date::parse("2025-12-01").unwrap());
        late[report.activity_date_index().unwrap()] =
            Value::Date(Date::parse("2025-01-15").unwrap());
        storage.upsert_many(t, report, vec![late]).await.unwrap();
        drop(storage);
        let old = plain_client(&own).await;
        let summary = format!("{}_days", report.table_name());
        // Back to version 10's indexes of the summary.
        // (One statement at a time: Citus sends each to the shards as it is.)
        for statement in [
            format!("DROP INDEX {summary}_late"),
            format!(
                "CREATE INDEX {summary}_picks ON {summary} (tenant_id, report_date) \
                 INCLUDE (pick_refresh)"
            ),
        ] {
            old.batch_execute(&statement).await.unwrap();
        }
        let indexes = || async {
            old.query(
                "SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1",
                &[&summary],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect::<Vec<String>>()
        };
        assert!(
            indexes().await.contains(&format!("{summary}_picks")),
            "{name}"
        );
        let storage = reopened_at_version(&old, &own, 10, name).await;
        let found = indexes().await;
        assert!(
            found.contains(&format!("{summary}_late"))
                && !found.contains(&format!("{summary}_picks")),
            "{name}: {found:#?}"
        );
        let filter = parse_filter(
            report,
            "reportDate ge 2025-01-01 and reportDate le 2025-01-31",
        )
        .unwrap();
        let query = ListQuery {
            filter: Some(filter),
            ..ListQuery::default()
        };
        assert_eq!(
            storage.list(t, report, &query).await.unwrap().len(),
            1,
            "{name}"
        );
        drop((storage, old));
        reportroot_postgres::citus::drop_database(&url, own_name(&own))
            .await
            .unwrap();
    }
}

/// The dashboard's accounts: users (a name once), grants, sessions found by their digest
/// until they expire or are revoked, a new password or a removal ending them, and the tenants
/// noted by the writes of their rows.
#[tokio::test]
async fn accounts_users_sessions_and_tenant_names() {
    use reportroot_storage::accounts::{Grant, NewSession, User};
    for (name, backend) in backends().await {
        let accounts = backend.storage.accounts();
        let (a, b) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
        let user = User {
            name: format!("u-{}", Uuid::new_v4().simple()),
            operator: false,
            grants: vec![
                Grant {
                    tenant: a,
                    write: true,
                },
                Grant {
                    tenant: b,
                    write: false,
                },
            ],
            created: 5,
        };
        assert!(
            accounts.add_user(&user, "$argon2id$one").await.unwrap(),
            "{name}"
        );
        assert!(
            !accounts.add_user(&user, "$argon2id$two").await.unwrap(),
            "{name}"
        );
        let listed = accounts.users().await.unwrap();
        let found = listed.iter().find(|u| u.name == user.name).unwrap();
        let mut grants = user.grants.clone();
        grants.sort_by_key(|g| g.tenant.0.to_string());
        assert_eq!(found.grants, grants, "{name}");
        assert_eq!(
            accounts.password_hash(&user.name).await.unwrap().as_deref(),
            Some("$argon2id$one"),
            "{name}: the first add stands"
        );
        assert_eq!(accounts.password_hash("nobody-at-all").await.unwrap(), None);

        accounts.rename_tenant(a, "Alpha").await.unwrap();
        let session = |digest: &str, expires| NewSession {
            token_hash: digest.to_owned(),
            user: user.name.clone(),
            csrf_token: "csrf".to_owned(),
            created: 100,
            expires,
        };
        let (live, old) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
        accounts.create_session(&session(&old, 150)).await.unwrap();
        accounts
            .create_session(&session(&live, 1000))
            .await
            .unwrap();
        let read = accounts.session(&live, 120).await.unwrap().unwrap();
        assert_eq!(
            (read.user.as_str(), read.operator),
            (user.name.as_str(), false)
        );
        assert_eq!(read.csrf_token, "csrf");
        let mut tenants = read.tenants.clone();
        tenants.sort_by_key(|(g, _)| g.tenant.0);
        let mut expected = vec![(grants[0].clone(), None), (grants[1].clone(), None)];
        for (grant, display) in &mut expected {
            if grant.tenant == a {
                *display = Some("Alpha".to_owned());
            }
        }
        expected.sort_by_key(|(g, _)| g.tenant.0);
        assert_eq!(tenants, expected, "{name}");
        assert!(
            accounts.session(&old, 150).await.unwrap().is_none(),
            "{name}: expired"
        );
        assert!(accounts.session("unknown", 120).await.unwrap().is_none());
        assert!(accounts.revoke_session(&live).await.unwrap());
        assert!(
            accounts.session(&live, 120).await.unwrap().is_none(),
            "{name}: revoked"
        );

        accounts
            .create_session(&session(&live, 1000))
            .await
            .unwrap();
        assert!(accounts
            .set_password(&user.name, "$argon2id$new")
            .await
            .unwrap());
        assert!(
            accounts.session(&live, 120).await.unwrap().is_none(),
            "{name}: a new password ends sessions"
        );
        assert!(!accounts.set_password("nobody-at-all", "x").await.unwrap());
        accounts
            .create_session(&session(&live, 1000))
            .await
            .unwrap();
        assert!(accounts.remove_user(&user.name).await.unwrap());
        assert!(!accounts.remove_user(&user.name).await.unwrap());
        assert!(
            accounts.session(&live, 120).await.unwrap().is_none(),
            "{name}: removed"
        );
        assert!(accounts
            .users()
            .await
            .unwrap()
            .iter()
            .all(|u| u.name != user.name));

        // Writing rows notes the tenant (granted tenants were noted by add_user).
        let (c, d) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
        let report = activations();
        backend
            .storage
            .insert(c, report, new(row("2025-01-01", "A", 1)))
            .await
            .unwrap();
        backend
            .storage
            .upsert_many(d, report, vec![row("2025-01-01", "A", 1)])
            .await
            .unwrap();
        let known = accounts.tenants().await.unwrap();
        for tenant in [a, b, c, d] {
            assert!(known.iter().any(|t| t.tenant == tenant), "{name}: {tenant}");
        }
        let alpha = known.iter().find(|t| t.tenant == a).unwrap();
        assert_eq!(alpha.display_name.as_deref(), Some("Alpha"));
    }
}

/// A one-tenant session (someone signed in by an external issuer who is no dashboard user):
/// it reads exactly its tenant, read-only, even when a user of the same name exists; it
/// expires and is revoked like any session. (Real ones carry a name with a space, which no
/// user can have; this one borrows a user's name to show that the user's rights stay out.)
#[tokio::test]
async fn tenant_sessions_read_one_tenant_only() {
    use reportroot_storage::accounts::{Grant, NewSession, User};
    for (name, backend) in backends().await {
        let accounts = backend.storage.accounts();
        let (a, b) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
        accounts.rename_tenant(a, "Alpha").await.unwrap();
        assert!(accounts.is_known_tenant(a).await.unwrap(), "{name}");
        assert!(!accounts.is_known_tenant(b).await.unwrap(), "{name}");
        // A user whose name the session also carries, an operator with a grant of b: none of
        // it may reach the one-tenant session.
        let user = User {
            name: format!("u-{}", Uuid::new_v4().simple()),
            operator: true,
            grants: vec![Grant {
                tenant: b,
                write: true,
            }],
            created: 5,
        };
        assert!(accounts.add_user(&user, "$argon2id$x").await.unwrap());
        let session = |digest: &str, expires| NewSession {
            token_hash: digest.to_owned(),
            user: user.name.clone(),
            csrf_token: "csrf".to_owned(),
            created: 100,
            expires,
        };
        let (live, old) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
        accounts
            .create_tenant_session(&session(&old, 150), a)
            .await
            .unwrap();
        accounts
            .create_tenant_session(&session(&live, 1000), a)
            .await
            .unwrap();
        let read = accounts.session(&live, 120).await.unwrap().unwrap();
        assert_eq!(read.user, user.name, "{name}");
        assert!(!read.operator, "{name}: never an operator");
        let only = (
            Grant {
                tenant: a,
                write: false,
            },
            Some("Alpha".to_owned()),
        );
        assert_eq!(read.tenants, vec![only], "{name}");
        assert!(
            accounts.session(&old, 150).await.unwrap().is_none(),
            "{name}: expired"
        );
        assert!(accounts.revoke_session(&live).await.unwrap(), "{name}");
        assert!(
            accounts.session(&live, 120).await.unwrap().is_none(),
            "{name}: revoked"
        );
    }
}

/// A database from before the tenant names: the migration fills them from the stored rows.
#[tokio::test]
async fn the_migration_fills_the_tenant_names_from_stored_rows() {
    let report = activations();
    let tenant = TenantId(Uuid::new_v4());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    storage
        .upsert_many(tenant, report, vec![row("2025-01-01", "A", 1)])
        .await
        .unwrap();
    drop(storage);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE reportroot_tenants; PRAGMA user_version = 6;")
        .unwrap();
    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    let known = storage.accounts().tenants().await.unwrap();
    assert_eq!(known.iter().map(|t| t.tenant).collect::<Vec<_>>(), [tenant]);

    for (name, url) in server_urls("tenant-name migration") {
        let own = own_database(&url, "reportroot_tenants").await;
        let storage = connect_own(&own).await.unwrap();
        storage
            .upsert_many(tenant, report, vec![row("2025-01-01", "A", 1)])
            .await
            .unwrap();
        drop(storage);
        let old = plain_client(&own).await;
        old.batch_execute("DELETE FROM reportroot_tenants")
            .await
            .unwrap();
        old.batch_execute("UPDATE reportroot_schema SET version = 4")
            .await
            .unwrap();
        let storage = connect_own(&own).await.unwrap();
        let known = storage.accounts().tenants().await.unwrap();
        assert_eq!(
            known.iter().map(|t| t.tenant).collect::<Vec<_>>(),
            [tenant],
            "{name}"
        );
        drop((storage, old));
        reportroot_postgres::citus::drop_database(&url, own_name(&own))
            .await
            .unwrap();
    }
}

/// A row of `report` whose natural key differs with `n` (< 50): the activity date and any
/// text (the dimension) follow it.
fn numbered_row(report: &ReportType, n: i64) -> Vec<Value> {
    let refresh = report.refresh_date_index();
    report
        .properties
        .iter()
        .enumerate()
        .map(|(i, property)| match property.kind {
            reportroot_model::ValueKind::Date if i == refresh => date("2025-03-01"),
            reportroot_model::ValueKind::Date => {
                Value::Date(Date::parse("2025-01-01").unwrap().add_days(n))
            }
            reportroot_model::ValueKind::Period => Value::Text("D7".into()),
            reportroot_model::ValueKind::Text => Value::Text(format!("P{n}")),
            _ => Value::Int(n),
        })
        .collect()
}

#[tokio::test]
async fn every_write_raises_the_tenants_change_version_and_a_rejected_one_does_not() {
    let per_day = find_report("office365ActiveUserCounts").unwrap();
    for (name, backend) in backends().await {
        let s = &backend.storage;
        for report in [per_day, activations()] {
            let t = TenantId(Uuid::new_v4());
            let other = TenantId(Uuid::new_v4());
            let what = format!("{name} {}", report.entity);
            let version = || async { s.tenant_version(t).await.unwrap() };
            assert_eq!(version().await, 0, "{what}: no write yet");

            // POST, then rejected POSTs: the same natural key, the same id.
            let first = s
                .insert(t, report, new(numbered_row(report, 1)))
                .await
                .unwrap();
            assert_eq!(version().await, 1, "{what}: insert");
            let same_key = s.insert(t, report, new(numbered_row(report, 1))).await;
            assert!(
                matches!(same_key, Err(StorageError::DuplicateKey { .. })),
                "{what}"
            );
            let same_id = NewEntity {
                id: Some(first.id),
                values: numbered_row(report, 2),
            };
            let same_id = s.insert(t, report, same_id).await;
            assert!(
                matches!(same_id, Err(StorageError::DuplicateId(_))),
                "{what}"
            );
            assert_eq!(version().await, 1, "{what}: rejected inserts");

            // PATCH of a count, of a key; rejected: a stale eTag, a missing id, a taken key.
            let count = report
                .properties
                .iter()
                .position(|p| p.kind == reportroot_model::ValueKind::Count)
                .unwrap();
            s.update(
                t,
                report,
                first.id,
                &[(count, Value::Int(7))],
                Precondition::None,
            )
            .await
            .unwrap();
            assert_eq!(version().await, 2, "{what}: update");
            let moved = numbered_row(report, 3);
            let changes: Vec<(usize, Value)> = moved.into_iter().enumerate().collect();
            let updated = s
                .update(t, report, first.id, &changes, Precondition::None)
                .await
                .unwrap();
            assert_eq!(version().await, 3, "{what}: update of the key");
            let stale = s
                .update(
                    t,
                    report,
                    first.id,
                    &[(count, Value::Int(8))],
                    Precondition::Version(1),
                )
                .await;
            assert!(
                matches!(stale, Err(StorageError::PreconditionFailed { .. })),
                "{what}"
            );
            let missing = s
                .update(
                    t,
                    report,
                    Uuid::new_v4(),
                    &[(count, Value::Int(8))],
                    Precondition::None,
                )
                .await;
            assert!(matches!(missing, Err(StorageError::NotFound)), "{what}");
            let second = s
                .insert(t, report, new(numbered_row(report, 4)))
                .await
                .unwrap();
            assert_eq!(version().await, 4, "{what}: second insert");
            let taken: Vec<(usize, Value)> =
                numbered_row(report, 3).into_iter().enumerate().collect();
            let taken = s
                .update(t, report, second.id, &taken, Precondition::None)
                .await;
            assert!(
                matches!(taken, Err(StorageError::DuplicateKey { .. })),
                "{what}"
            );
            assert_eq!(version().await, 4, "{what}: rejected updates");

            // DELETE; rejected: a stale eTag, a missing id.
            let stale = s
                .delete(t, report, updated.id, Precondition::Version(1))
                .await;
            assert!(
                matches!(stale, Err(StorageError::PreconditionFailed { .. })),
                "{what}"
            );
            let missing = s
                .delete(t, report, Uuid::new_v4(), Precondition::None)
                .await;
            assert!(matches!(missing, Err(StorageError::NotFound)), "{what}");
            assert_eq!(version().await, 4, "{what}: rejected deletes");
            s.delete(t, report, updated.id, Precondition::None)
                .await
                .unwrap();
            assert_eq!(version().await, 5, "{what}: delete");

            // Bulk loads: new rows, changed rows raise it; the same rows again and an
            // aborted load do not.
            let rows: Vec<Vec<Value>> = (10..20).map(|n| numbered_row(report, n)).collect();
            s.upsert_many(t, report, rows.clone()).await.unwrap();
            let after_load = version().await;
            assert!(after_load > 5, "{what}: load");
            s.upsert_many(t, report, rows.clone()).await.unwrap();
            assert_eq!(
                version().await,
                after_load,
                "{what}: a load that changes nothing"
            );
            let mut changed = rows[0].clone();
            changed[count] = Value::Int(99);
            s.upsert_many(t, report, vec![changed]).await.unwrap();
            assert!(
                version().await > after_load,
                "{what}: a load that changes a row"
            );
            let before_abort = version().await;
            let aborted: RowChunks = Box::new(
                vec![
                    Ok(vec![numbered_row(report, 30)]),
                    Err(LoadAborted("a bad row".into())),
                ]
                .into_iter(),
            );
            assert!(s.upsert_stream(t, report, aborted).await.is_err(), "{what}");
            let after_abort = version().await;
            if name == "sqlite" {
                // SQLite commits a load in steps that readers see (when a chunk outlasts its
                // time budget, as on a busy machine) and undoes them in steps; each raises
                // the version, as an answer may have been cached from them. In one step,
                // nothing was committed: the version stays.
                assert!(
                    after_abort == before_abort || after_abort >= before_abort + 2,
                    "{what}: aborted load {before_abort} → {after_abort}"
                );
            } else {
                assert_eq!(after_abort, before_abort, "{what}: aborted load");
            }

            assert_eq!(
                s.tenant_version(other).await.unwrap(),
                0,
                "{what}: other tenant"
            );
        }
    }
}
