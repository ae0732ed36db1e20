//! On Citus (`REPORTROOT_TEST_CITUS_URL`, started by scripts/citus.sh): the migration
//! distributes the tables by itself, and every statement reportroot sends for one tenant is
//! routed to one shard. Skipped, and said so, when the URL is not set.
#![expect(clippy::unwrap_used)]

use std::io::Write;

use reportroot_model::{Date, Grain, Period, ReportType, Value, ValueKind, REPORTS};
use reportroot_odata::query::{parse_filter, parse_order_by, PropertyRef};
use reportroot_postgres::citus::{self, CitusOptions};
use reportroot_postgres::PostgresStorage;
use reportroot_storage::days::DaysSql;
use reportroot_storage::query_sql::{
    compile_count, compile_days_count, compile_list, effective_order, SqlParam,
};
use reportroot_storage::series::{compile_days_series, compile_series, Interval, SeriesQuery};
use reportroot_storage::sql::{Dialect, TableSql};
use reportroot_storage::{Cursor, ListQuery, Scope};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

fn citus_url() -> Option<String> {
    let url = std::env::var("REPORTROOT_TEST_CITUS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED Citus test: REPORTROOT_TEST_CITUS_URL is not set (scripts/citus.sh starts a cluster)"
        );
    }
    url
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// `(table, partition method, co-location group, shards, distribution column)` of every table
/// Citus knows in the database.
async fn citus_tables(client: &tokio_postgres::Client) -> Vec<(String, String, i32, i64, String)> {
    client
        .query(
            "SELECT c.relname::text, p.partmethod::text, p.colocationid, \
             (SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid), \
             coalesce(column_to_column_name(p.logicalrelid, p.partkey), '') \
             FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
        .collect()
}

/// The report tables and the per-day summaries of the per-day reports.
fn report_tables() -> Vec<String> {
    let mut tables: Vec<String> = REPORTS.iter().map(|r| r.table_name().to_owned()).collect();
    tables.extend(
        REPORTS
            .iter()
            .filter_map(|r| TableSql::new(r, Dialect::Postgres).days.map(|d| d.table)),
    );
    tables
}

const GLOBAL: [&str; 9] = [
    "reportroot_app_secrets",
    "reportroot_apps",
    "reportroot_schema",
    "reportroot_session_tenants",
    "reportroot_sessions",
    "reportroot_signing_keys",
    "reportroot_tenants",
    "reportroot_user_tenants",
    "reportroot_users",
];

/// Report tables, the throttle counters and the tenants' change versions hash-distributed by
/// tenant, all in one co-location
/// group of `shards` shards; the global tables reference tables (one shard, on every node);
/// nothing else.
fn assert_distributed(tables: &[(String, String, i32, i64, String)], shards: i64, extra: &[&str]) {
    let mut reports = report_tables();
    reports.push(reportroot_storage::throttle::THROTTLE_TABLE.to_owned());
    reports.push(reportroot_storage::changes::CHANGES_TABLE.to_owned());
    let group = tables
        .iter()
        .find(|t| t.0 == reports[0])
        .map(|t| t.2)
        .expect("the first report table is distributed");
    for report in &reports {
        let Some(t) = tables.iter().find(|t| &t.0 == report) else {
            panic!("{report} is not distributed");
        };
        assert_eq!(
            (t.1.as_str(), t.2, t.3, t.4.as_str()),
            ("h", group, shards, "tenant_id"),
            "{report}"
        );
    }
    for global in GLOBAL.iter().chain(extra) {
        let Some(t) = tables.iter().find(|t| t.0 == *global) else {
            panic!("{global} is not a reference table");
        };
        assert_eq!((t.1.as_str(), t.3), ("n", 1), "{global}");
    }
    assert_eq!(tables.len(), reports.len() + GLOBAL.len() + extra.len());
}

/// Every table Citus knows has a primary key or a replica identity, so that the rebalancer can
/// move its shards, and copy the reference tables to a new worker, by logical replication
/// (`reportroot_schema` has no primary key: it failed `citus_rebalance_start()` before).
async fn assert_movable(admin: &tokio_postgres::Client) {
    let stuck: Vec<String> = admin
        .query(
            "SELECT c.relname::text FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid \
             WHERE c.relreplident = 'd' \
             AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(stuck.is_empty(), "no replica identity: {stuck:?}");
}

/// A fresh database: `migrate` distributes every report table by tenant (co-located, with the
/// shard count asked for) and makes the global tables reference tables; again it changes
/// nothing; a table a later release adds is handled at the next start-up.
#[tokio::test]
async fn the_migration_distributes_every_table_and_a_later_ones() {
    let Some(url) = citus_url() else { return };
    let name = format!("reportroot_citus_{}", Uuid::new_v4().simple());
    let own = citus::create_database(&url, &name).await.unwrap();
    let options = CitusOptions {
        shard_count: Some(3),
    };
    drop(
        PostgresStorage::connect_with(&own, 1, options)
            .await
            .unwrap(),
    );
    let admin = client(&own).await;
    let first = citus_tables(&admin).await;
    assert_distributed(&first, 3, &[]);
    assert_movable(&admin).await;

    // Idempotent: the same tables, groups and shards (the shard count asked now is ignored).
    let other = CitusOptions {
        shard_count: Some(5),
    };
    drop(PostgresStorage::connect_with(&own, 1, other).await.unwrap());
    assert_eq!(citus_tables(&admin).await, first);

    // A later release: a new report table (stands for: one table not yet distributed) and a
    // new global table. Both are picked up by the next start-up, co-located with the others.
    let (report, rows) = (&report_tables()[1], "SELECT count(*) FROM ");
    admin
        .batch_execute(&format!(
            "SELECT undistribute_table('{report}'); \
             CREATE TABLE reportroot_later (key TEXT PRIMARY KEY); \
             CREATE TABLE reportroot_keyless (key TEXT)"
        ))
        .await
        .unwrap();
    assert!(citus_tables(&admin).await.iter().all(|t| &t.0 != report));
    drop(PostgresStorage::connect_with(&own, 1, other).await.unwrap());
    assert_distributed(
        &citus_tables(&admin).await,
        3,
        &["reportroot_later", "reportroot_keyless"],
    );
    assert_movable(&admin).await;
    let count: i64 = admin
        .query_one(&format!("{rows}{report}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
    drop(admin);
    citus::drop_database(&url, &name).await.unwrap();
}

/// A value of each kind, for parameters.
fn sample(kind: ValueKind) -> Value {
    match kind {
        ValueKind::Date => Value::Date(Date::parse("2025-01-01").unwrap()),
        ValueKind::Count | ValueKind::Count32 => Value::Int(1),
        ValueKind::Period => Value::Text(Period::D7.stored().to_owned()),
        ValueKind::Text | ValueKind::Duration => Value::Text("x".to_owned()),
    }
}

/// A statement's parameters.
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn bind(value: &Value) -> Box<dyn ToSql + Sync + Send> {
    match value {
        Value::Null => Box::new(None::<String>),
        Value::Int(i) => Box::new(*i),
        Value::Text(s) => Box::new(s.clone()),
        Value::Date(d) => Box::new(d.as_time()),
    }
}

fn bind_params(params: &[SqlParam]) -> Params {
    params
        .iter()
        .map(|param| match param {
            SqlParam::Uuid(id) => Box::new(*id) as Box<dyn ToSql + Sync + Send>,
            SqlParam::Int(i) => Box::new(*i),
            SqlParam::Value(value) => bind(value),
        })
        .collect()
}

/// A `$filter` over several of the report's properties: `and`, `or`, `not`, comparisons.
fn filter_text(report: &ReportType) -> String {
    let mut clauses: Vec<String> = report
        .properties
        .iter()
        .filter_map(|p| match p.kind {
            ValueKind::Date => Some(format!("{} ge 2025-01-01", p.name)),
            ValueKind::Count | ValueKind::Count32 => Some(format!("{} gt 0", p.name)),
            ValueKind::Text => Some(format!("{} ne 'x'", p.name)),
            ValueKind::Period => Some(format!("{} eq '7'", p.name)),
            ValueKind::Duration => None,
        })
        .take(4)
        .collect();
    let last = clauses.pop().unwrap();
    format!("({}) or not ({last})", clauses.join(" and "))
}

/// Every statement shape the PostgreSQL backend sends for one tenant of one report, named,
/// with its parameters: the fixed statements of `TableSql` and the listing and counting
/// queries of `query_sql`, taken from there rather than copied.
fn statements(report: &'static ReportType, tenant: Uuid) -> Vec<(String, String, Params)> {
    let table = TableSql::new(report, Dialect::Postgres);
    let values: Vec<Value> = report.properties.iter().map(|p| sample(p.kind)).collect();
    let id = Uuid::now_v7();
    let row = |version: Option<i64>| {
        let mut params: Params = vec![Box::new(tenant), Box::new(id)];
        if let Some(version) = version {
            params.push(Box::new(version));
        }
        params.extend(values.iter().map(bind));
        params
    };
    let by_id = || -> Params { vec![Box::new(tenant), Box::new(id)] };
    let by_key = || {
        let mut params: Params = vec![Box::new(tenant)];
        params.extend(
            report
                .natural_key_indexes()
                .into_iter()
                .map(|i| bind(&values[i])),
        );
        params
    };
    let period = report.period_index().map(|_| Period::D7);
    let latest_params = || {
        let mut params: Params = vec![Box::new(tenant)];
        if let Some(period) = period {
            params.push(Box::new(period.stored().to_owned()));
        }
        params
    };
    let mut all = vec![
        ("read by id".to_owned(), table.select_by_id.clone(), by_id()),
        (
            "PATCH/DELETE with If-Match: the row locked".to_owned(),
            format!("{} FOR UPDATE", table.select_by_id),
            by_id(),
        ),
        ("insert".to_owned(), table.insert.clone(), row(None)),
        (
            "insert unless taken".to_owned(),
            table.insert_if_new.clone(),
            row(None),
        ),
        (
            "PATCH/PUT: update of the version read".to_owned(),
            table.update.clone(),
            row(Some(1)),
        ),
        ("delete".to_owned(), table.delete.clone(), by_id()),
        (
            "id of a natural key (conflict answers)".to_owned(),
            table.id_by_natural_key.clone(),
            by_key(),
        ),
        (
            "read by natural key".to_owned(),
            table.select_by_natural_key.clone(),
            by_key(),
        ),
        (
            "upsert (POST of a taken key, bulk import)".to_owned(),
            table.upsert.clone(),
            row(None),
        ),
        (
            "report function (latest)".to_owned(),
            table.latest.clone(),
            latest_params(),
        ),
    ];

    let filter = parse_filter(report, &filter_text(report)).unwrap();
    let order_by = parse_order_by(
        report,
        &format!(
            "{} desc,{}",
            report.properties[0].name, report.properties[1].name
        ),
    )
    .unwrap();
    let scopes = [Scope::All, Scope::Latest { period }];
    for scope in scopes {
        let label = match scope {
            Scope::All => "collection",
            Scope::Latest { .. } => "report function",
        };
        for (what, query) in [
            ("page 1", ListQuery::default()),
            (
                "$filter, $orderby, $top, $skip",
                ListQuery {
                    filter: Some(filter.clone()),
                    order_by: order_by.clone(),
                    skip: 3,
                    limit: Some(10),
                    ..ListQuery::default()
                },
            ),
            (
                "next page (keyset cursor)",
                ListQuery {
                    filter: Some(filter.clone()),
                    order_by: order_by.clone(),
                    limit: Some(10),
                    ..ListQuery::default()
                },
            ),
            (
                "next page in the default order",
                ListQuery {
                    limit: Some(10),
                    ..ListQuery::default()
                },
            ),
        ] {
            let mut query = ListQuery { scope, ..query };
            if what.starts_with("next page") {
                // The cursor holds the values of the order's keys (without id).
                let values = effective_order(report, &query)
                    .iter()
                    .filter_map(|key| match key.property {
                        PropertyRef::Index(i) => Some(values[i].clone()),
                        PropertyRef::Id => None,
                    })
                    .collect();
                query.after = Some(Cursor { values, id });
            }
            let columns = &table.columns;
            let compiled = compile_list(report, Dialect::Postgres, columns, tenant, &query);
            all.push((
                format!("{label}: {what}"),
                compiled.sql,
                bind_params(&compiled.params),
            ));
        }
        for (what, filter) in [("$count", None), ("$count with $filter", Some(&filter))] {
            let compiled = compile_count(report, Dialect::Postgres, tenant, &scope, filter);
            all.push((
                format!("{label}: {what}"),
                compiled.sql,
                bind_params(&compiled.params),
            ));
        }
    }
    // The history series (`reportroot.series`), by day and by month.
    for interval in [Interval::Day, Interval::Month] {
        let query = SeriesQuery {
            from: Date::parse("2024-01-01").unwrap(),
            to: Date::parse("2025-01-01").unwrap(),
            interval,
            period: (report.grain == Grain::PerPeriod).then_some(Period::D7),
        };
        let compiled = compile_series(
            report,
            Dialect::Postgres,
            &table.columns,
            tenant,
            &query,
            100,
        );
        all.push((
            format!("series by {interval:?}"),
            compiled.sql,
            bind_params(&compiled.params),
        ));
    }
    if let Some(days) = &table.days {
        summary_statements(report, &table, days, tenant, id, &values, &mut all);
    }
    all
}

/// The per-day summary's statements: those of every write, `$count` and the daily series.
fn summary_statements(
    report: &ReportType,
    table: &TableSql,
    days: &DaysSql,
    tenant: Uuid,
    id: Uuid,
    values: &[Value],
    all: &mut Vec<(String, String, Params)>,
) {
    let (add, params) = days.adding(tenant, id, values);
    all.push((
        "summary: add".to_owned(),
        add.to_owned(),
        bind_params(&params),
    ));
    for (sql, params) in days.removing(tenant, id, values) {
        all.push((
            "summary: remove".to_owned(),
            sql.to_owned(),
            bind_params(&params),
        ));
    }
    let filter = parse_filter(report, "reportDate ge 2024-01-01 and reportPeriod eq '7'").unwrap();
    for filter in [None, Some(&filter)] {
        let compiled = compile_days_count(report, Dialect::Postgres, days, tenant, filter).unwrap();
        all.push((
            "summary: $count".to_owned(),
            compiled.sql,
            bind_params(&compiled.params),
        ));
    }
    let query = SeriesQuery {
        from: Date::parse("2024-01-01").unwrap(),
        to: Date::parse("2025-01-01").unwrap(),
        interval: Interval::Day,
        period: None,
    };
    let compiled = compile_days_series(
        report,
        Dialect::Postgres,
        days,
        &table.columns,
        tenant,
        &query,
        100,
    );
    all.push((
        "summary: daily series".to_owned(),
        compiled.sql,
        bind_params(&compiled.params),
    ));
}

/// Every statement shape, for one tenant, of every report: Citus plans each as one task on
/// one shard (a router query), so none fans out however many tenants and nodes there are.
#[tokio::test]
async fn every_statement_of_one_tenant_is_routed_to_one_shard() {
    let Some(url) = citus_url() else { return };
    // Migrated and distributed (by this or an earlier test).
    drop(PostgresStorage::connect(&url, 1).await.unwrap());
    let client = client(&url).await;
    let shards: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = $1::text::regclass",
            &[&REPORTS[0].table_name()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(shards > 1, "{shards} shards: nothing to route between");
    let tenant = Uuid::new_v4();
    let mut checked = 0;
    for report in REPORTS {
        for (what, sql, params) in statements(report, tenant) {
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let plan: Vec<String> = client
                .query(&format!("EXPLAIN {sql}"), &refs)
                .await
                .unwrap_or_else(|e| panic!("{}: {what}: {e:?}\n{sql}", report.entity))
                .iter()
                .map(|row| row.get(0))
                .collect();
            let plan = plan.join("\n");
            let tasks: Vec<&str> = plan
                .lines()
                .filter_map(|line| line.trim().strip_prefix("Task Count: "))
                .collect();
            assert!(
                plan.contains("Custom Scan (Citus Adaptive)") && tasks == ["1"],
                "{}: {what} is not routed to one shard:\n{sql}\n{plan}",
                report.entity
            );
            checked += 1;
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "Citus: {checked} statements of {} reports, each routed to 1 of {shards} shards",
        REPORTS.len()
    );
}
