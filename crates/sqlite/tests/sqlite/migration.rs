//! A database written by schema version 1 (TEXT ids, rowid tables) is rebuilt on open and keeps
//! every row: ids, versions and values.
#![expect(clippy::unwrap_used)]

use reportroot_model::{Entity, Period, TenantId, Value, REPORTS};
use reportroot_sqlite::{Durability, SqliteStorage, SCHEMA_VERSION};
use reportroot_storage::{ListQuery, Precondition, Storage};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use uuid::Uuid;

/// A stored row: tenant, id, version and property values as SQLite holds them.
type Row = (Uuid, Uuid, i64, Vec<SqlValue>);

/// Every row of `table`, read as version 1 stored them (TEXT ids).
fn version_1_rows(connection: &Connection, table: &str) -> Vec<Row> {
    let mut statement = connection
        .prepare(&format!("SELECT * FROM {table} ORDER BY tenant_id, id"))
        .unwrap();
    let columns = statement.column_count();
    statement
        .query_map([], |row| {
            let tenant: String = row.get(0)?;
            let id: String = row.get(1)?;
            Ok((
                Uuid::parse_str(&tenant).unwrap(),
                Uuid::parse_str(&id).unwrap(),
                row.get(2)?,
                (3..columns).map(|i| row.get(i)).collect::<Result<_, _>>()?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn as_row(tenant: Uuid, entity: &Entity) -> Row {
    let values = entity
        .values
        .iter()
        .map(|value| match value {
            Value::Null => SqlValue::Null,
            Value::Int(i) => SqlValue::Integer(*i),
            Value::Text(text) => SqlValue::Text(text.clone()),
            Value::Date(date) => SqlValue::Text(date.to_string()),
        })
        .collect();
    (tenant, entity.id, entity.version, values)
}

#[tokio::test]
async fn a_version_1_file_is_rebuilt_with_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    // Schema version 1 predates the whole family: it has the first three reports' tables.
    let version_1_reports = &REPORTS[..3];
    let before: Vec<Vec<Row>> = {
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(include_str!("fixtures/schema-v1.sql"))
            .unwrap();
        version_1_reports
            .iter()
            .map(|r| version_1_rows(&connection, r.table_name()))
            .collect()
    };
    assert!(before.iter().all(|rows| !rows.is_empty()));

    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    for (report, rows) in version_1_reports.iter().zip(&before) {
        let mut tenants: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        tenants.dedup();
        let mut after = Vec::new();
        for tenant in tenants {
            let listed = storage
                .list(TenantId(tenant), report, &ListQuery::default())
                .await
                .unwrap();
            after.extend(listed.iter().map(|e| as_row(tenant, e)));
            // The report function finds the newest refresh date (of the period) among the
            // migrated rows.
            let period = report.period_index().map(|i| &listed[0].values[i]);
            let newest = listed
                .iter()
                .filter(|e| {
                    period.is_none_or(|p| report.period_index().map(|i| &e.values[i]) == Some(p))
                })
                .map(|e| e.values[report.refresh_date_index()].clone())
                .max();
            let period = period.and_then(|p| Period::from_param(&format!("D{p}")));
            assert_eq!(period.is_some(), report.period_index().is_some());
            let latest = storage
                .latest_report(TenantId(tenant), report, period)
                .await
                .unwrap();
            assert!(!latest.is_empty(), "{}", report.entity);
            assert!(
                latest
                    .iter()
                    .all(|e| Some(&e.values[report.refresh_date_index()]) == newest.as_ref()),
                "{}",
                report.entity
            );
        }
        after.sort_by_key(|row| (row.0, row.1));
        assert_eq!(&after, rows, "{}", report.entity);
    }

    // A migrated row is read, updated and deleted by id like any other.
    let report = &REPORTS[1];
    let (tenant, id, version, _) = before[1][0].clone();
    let tenant = TenantId(tenant);
    let entity = storage.get(tenant, report, id).await.unwrap().unwrap();
    assert_eq!(entity.version, version);
    let updated = storage
        .update(
            tenant,
            report,
            id,
            &[],
            Precondition::Version(entity.version),
        )
        .await
        .unwrap();
    assert_eq!(updated.version, version + 1);
    drop(storage);

    let connection = Connection::open(&path).unwrap();
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let leftovers: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_v1'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(leftovers, 0);
    // Every table and index of the new layout exists, indexes on the right table.
    for report in REPORTS {
        for statement in reportroot_sqlite::table_sql(report).create {
            let name = statement
                .split_whitespace()
                .nth(5)
                .expect("CREATE … IF NOT EXISTS <name>");
            let (kind, table): (String, String) = connection
                .query_row(
                    "SELECT type, tbl_name FROM sqlite_master WHERE name = ?1",
                    [name],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .unwrap();
            // The report's own, or its per-day summary's (the late rows').
            let summary = format!("{}_days", report.table_name());
            if kind == "index" {
                assert!(
                    table == report.table_name() || table == summary,
                    "{name}: {table}"
                );
            }
        }
        // The pages index, by the name the skip-scan of history pages reads it by.
        let name = reportroot_storage::sql::sqlite_pages_index(report).0;
        let table: String = connection
            .query_row(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?1",
                [&name],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(table, report.table_name(), "{name}");
    }
    drop(connection);
    // Opening again changes nothing.
    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    assert!(storage.get(tenant, report, id).await.unwrap().is_some());
}

/// A version 3 file, whose count and duration columns are `NOT NULL`, is rebuilt: every row
/// stays, and an empty count (Graph's empty CSV cell) is accepted afterwards.
#[tokio::test]
async fn a_version_3_file_is_rebuilt_for_null_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    let report = &REPORTS[0];
    let tenant = TenantId(Uuid::new_v4());
    let row = |day: &str| {
        report
            .properties
            .iter()
            .map(|p| match p.kind {
                reportroot_model::ValueKind::Date => {
                    Value::Date(reportroot_model::Date::parse(day).unwrap())
                }
                reportroot_model::ValueKind::Period => Value::Text("7".into()),
                reportroot_model::ValueKind::Text => Value::Text("A".into()),
                reportroot_model::ValueKind::Duration => Value::Text("00:01:00".into()),
                _ => Value::Int(3),
            })
            .collect::<Vec<_>>()
    };
    {
        let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
        storage
            .upsert_many(tenant, report, vec![row("2025-01-01")])
            .await
            .unwrap();
    }
    // Rewrite every report table as version 3 declared it: counts NOT NULL.
    {
        let connection = Connection::open(&path).unwrap();
        let mut script = String::from("BEGIN;\n");
        for report in REPORTS {
            let table = report.table_name();
            let sql = reportroot_sqlite::table_sql(report);
            let old: Vec<String> = sql.create[0]
                .lines()
                .map(|line| {
                    let column = line.starts_with("  ")
                        && line.ends_with(',')
                        && !line.contains("NOT NULL")
                        && !line.contains('(');
                    if column {
                        format!("{} NOT NULL,", line.trim_end_matches(','))
                    } else {
                        line.to_owned()
                    }
                })
                .collect();
            script.push_str(&format!(
                "ALTER TABLE {table} RENAME TO {table}_old;\n{};\nINSERT INTO {table} SELECT * FROM {table}_old;\nDROP TABLE {table}_old;\n",
                old.join("\n")
            ));
            for index in &sql.create[1..] {
                script.push_str(&format!("{index};\n"));
            }
        }
        script.push_str("PRAGMA user_version = 3;\nCOMMIT;\n");
        connection.execute_batch(&script).unwrap();
        let required: i64 = connection
            .query_row(
                &format!(
                    "SELECT COUNT(*) FROM pragma_table_info('{}') WHERE \"notnull\" <> 0",
                    report.table_name()
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(required as usize, report.properties.len() + 3);
    }
    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    let mut empty = row("2025-01-02");
    let count = report
        .properties
        .iter()
        .position(|p| p.kind.is_count())
        .unwrap();
    empty[count] = Value::Null;
    storage
        .upsert_many(tenant, report, vec![empty.clone()])
        .await
        .unwrap();
    let all = storage
        .list(tenant, report, &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].values, row("2025-01-01"));
    assert_eq!(all[1].values, empty);
    drop(storage);
    let connection = Connection::open(&path).unwrap();
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let leftovers: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_v3' OR name LIKE '%_old'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leftovers, 0);
}

/// A version 8 file (before the `_by_period_day` indexes) gets them, over its rows, when
/// opened.
#[tokio::test]
async fn a_version_8_file_gets_the_period_page_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v8.db");
    let report = reportroot_model::find_report("office365ActiveUserCounts").unwrap();
    drop(SqliteStorage::open(&path, Durability::Process).unwrap());
    let indexes = |connection: &Connection| -> Vec<String> {
        connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%\\_by\\_period\\_day' ESCAPE '\\'")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    {
        let connection = Connection::open(&path).unwrap();
        let names = indexes(&connection);
        assert!(
            names.contains(&format!("{}_by_period_day", report.table_name())),
            "{names:?}"
        );
        for name in names {
            connection
                .execute_batch(&format!("DROP INDEX {name}"))
                .unwrap();
        }
        // Version 8 kept every periodic report's refresh dates in a side table.
        connection
            .execute_batch(&format!(
                "CREATE TABLE {0}_refreshes (tenant_id BLOB NOT NULL, report_period TEXT NOT NULL, \
                 report_refresh_date TEXT NOT NULL, PRIMARY KEY (tenant_id, report_period, \
                 report_refresh_date)) WITHOUT ROWID",
                report.table_name()
            ))
            .unwrap();
        connection.execute_batch("PRAGMA user_version = 8").unwrap();
    }
    let storage = SqliteStorage::open(&path, Durability::Process).unwrap();
    assert!(
        matches!(
            storage.schema_change(),
            reportroot_storage::SchemaChange::Upgraded { from: 8, to } if to == SCHEMA_VERSION
        ),
        "{:?}",
        storage.schema_change()
    );
    drop(storage);
    let connection = Connection::open(&path).unwrap();
    assert!(indexes(&connection).contains(&format!("{}_by_period_day", report.table_name())));
    // A per-day report reads its latest refresh from that index: its side table is gone; a
    // per-period report keeps its own.
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%\\_refreshes' ESCAPE '\\'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !tables.contains(&format!("{}_refreshes", report.table_name())),
        "{tables:?}"
    );
    let per_period = REPORTS
        .iter()
        .find(|r| r.grain == reportroot_model::Grain::PerPeriod)
        .unwrap();
    assert!(
        tables.contains(&format!("{}_refreshes", per_period.table_name())),
        "{tables:?}"
    );
}
