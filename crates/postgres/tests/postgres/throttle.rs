//! The throttle counters shared through PostgreSQL and Citus (`reportroot_storage::throttle`):
//! the same sliding windows as the API's in-memory throttle, and exact under concurrent
//! decisions by several instances. Skipped, and said so, when the URLs are not set.
#![expect(clippy::unwrap_used)]

use std::io::Write;

use reportroot_model::TenantId;
use reportroot_postgres::citus::{self, CitusOptions};
use reportroot_postgres::PostgresStorage;
use reportroot_storage::throttle::{Verdict, WindowRequest};
use reportroot_storage::Storage;
use uuid::Uuid;

fn urls() -> Vec<(&'static str, String)> {
    let mut urls = Vec::new();
    for (name, variable, script) in [
        (
            "PostgreSQL",
            "REPORTROOT_TEST_POSTGRES_URL",
            "scripts/postgres.sh",
        ),
        ("Citus", "REPORTROOT_TEST_CITUS_URL", "scripts/citus.sh"),
    ] {
        match std::env::var(variable).ok().filter(|u| !u.is_empty()) {
            Some(url) => urls.push((name, url)),
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED throttle counters on {name}: {variable} is not set ({script} starts one)"
                );
            }
        }
    }
    urls
}

async fn own_storage(url: &str, connections: usize) -> (String, String, PostgresStorage) {
    let name = format!("reportroot_throttle_{}", Uuid::new_v4().simple());
    let own = citus::create_database(url, &name).await.unwrap();
    let options = CitusOptions {
        shard_count: Some(2),
    };
    let storage = PostgresStorage::connect_with(&own, connections, options)
        .await
        .unwrap();
    (name, own, storage)
}

fn request(tenant: TenantId, app: Option<Uuid>, now_ms: i64) -> WindowRequest {
    WindowRequest {
        tenant,
        window: "getOffice365ActiveUserCounts/csv".to_owned(),
        app,
        now_ms,
        window_ms: 10_000,
        per_app: 2,
        total: 3,
    }
}

#[tokio::test]
async fn windows_slide_per_app_and_per_tenant() {
    for (backend, url) in urls() {
        let (name, _, storage) = own_storage(&url, 2).await;
        let counters = storage
            .throttle_counters()
            .expect("PostgreSQL shares counters");
        let tenant = TenantId(Uuid::new_v4());
        let app = Some(Uuid::new_v4());
        let admit = |app, now| {
            let request = request(tenant, app, now);
            let counters = &counters;
            async move { counters.admit(&request).await.unwrap() }
        };
        assert_eq!(admit(app, 0).await, Verdict::Admitted, "{backend}");
        assert_eq!(admit(app, 4_000).await, Verdict::Admitted, "{backend}");
        assert_eq!(
            admit(app, 4_000).await,
            Verdict::PerAppFull { retry_ms: 6_000 },
            "{backend}: the third of the app in its window"
        );
        // Another app (and a token without one) still fit until the tenant's three.
        assert_eq!(admit(None, 5_000).await, Verdict::Admitted, "{backend}");
        assert_eq!(
            admit(Some(Uuid::new_v4()), 5_000).await,
            Verdict::TotalFull { retry_ms: 5_000 },
            "{backend}: the fourth of the tenant"
        );
        // Another tenant and another window count apart.
        let other = request(TenantId(Uuid::new_v4()), app, 5_000);
        assert_eq!(counters.admit(&other).await.unwrap(), Verdict::Admitted);
        let json = WindowRequest {
            window: "getOffice365ActiveUserCounts/json".to_owned(),
            ..request(tenant, app, 5_000)
        };
        assert_eq!(counters.admit(&json).await.unwrap(), Verdict::Admitted);
        // The first request leaves at 10 s: the app has room again.
        assert_eq!(admit(app, 10_000).await, Verdict::Admitted, "{backend}");
        // Windows idle since before 9 s are forgotten; the tenant's is not.
        assert_eq!(counters.forget(9_000).await.unwrap(), 2, "{backend}");
        assert_eq!(
            admit(app, 10_000).await,
            Verdict::PerAppFull { retry_ms: 4_000 },
            "{backend}: the window survived forget"
        );
        drop(storage);
        citus::drop_database(&url, &name).await.unwrap();
    }
}

/// Two instances (two pools on one database) deciding at once admit exactly the limit.
#[tokio::test]
async fn concurrent_instances_admit_exactly_the_limit() {
    for (backend, url) in urls() {
        let (name, own, first) = own_storage(&url, 4).await;
        let second = PostgresStorage::connect(&own, 4).await.unwrap();
        let tenant = TenantId(Uuid::new_v4());
        let app = Some(Uuid::new_v4());
        let now = 1_000_000;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let storage = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let request = WindowRequest {
                per_app: 14,
                total: 40,
                ..request(tenant, app, now + i)
            };
            tasks.push(tokio::spawn(async move {
                storage
                    .throttle_counters()
                    .unwrap()
                    .admit(&request)
                    .await
                    .unwrap()
            }));
        }
        let mut verdicts = Vec::new();
        for task in tasks {
            verdicts.push(task.await.unwrap());
        }
        let admitted = verdicts.iter().filter(|v| **v == Verdict::Admitted).count();
        assert_eq!(admitted, 14, "{backend}: {verdicts:?}");
        drop((first, second));
        citus::drop_database(&url, &name).await.unwrap();
    }
}

/// On Citus a decision is a router query: one task on the tenant's shard.
#[tokio::test]
async fn a_decision_is_routed_to_one_shard_on_citus() {
    let Some((_, url)) = urls().into_iter().find(|(name, _)| *name == "Citus") else {
        return;
    };
    let (name, own, storage) = own_storage(&url, 1).await;
    let (client, connection) = tokio_postgres::connect(&own, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let tenant = Uuid::new_v4().to_string();
    let app = Uuid::new_v4().to_string();
    let window = "getOffice365ActiveUserCounts/csv".to_owned();
    let (now, length, per_app, total) = (1_000_i64, 600_000_i64, 14_i64, 40_i64);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
        [&tenant, &window, &now, &app, &length, &per_app, &total];
    let sql = reportroot_storage::throttle::admit_sql();
    let plan: Vec<String> = client
        .query(&format!("EXPLAIN {sql}"), &params)
        .await
        .unwrap()
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
        "not routed to one shard:\n{plan}"
    );
    drop((client, storage));
    citus::drop_database(&url, &name).await.unwrap();
}
