//! The throttle counters shared through PostgreSQL and Citus (`reportroot_storage::throttle`):
//! the same sliding windows as the API's in-memory throttle, exact under concurrent decisions
//! by several instances, and with leases: never more admitted than the limit in any window,
//! far fewer statements than requests far from the limit, one exact statement per request
//! near it. Skipped, and said so, when the URLs are not set.
#![expect(clippy::unwrap_used)]

use std::io::Write;

use reportroot_model::TenantId;
use reportroot_postgres::citus::{self, CitusOptions};
use reportroot_postgres::PostgresStorage;
use reportroot_storage::throttle::{
    admit_sql, Decision, LeasePolicy, Leases, ThrottleCounters, Verdict, Window, WindowRequest,
};
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
        window: Window::Csv("getOffice365ActiveUserCounts"),
        app,
        now_ms,
        window_ms: 10_000,
        per_app: 2,
        total: 3,
        lease: LeasePolicy::EXACT,
    }
}

/// One statement asking for `want` admissions; its decision.
async fn ask(counters: &ThrottleCounters<'_>, request: &WindowRequest, want: i64) -> Decision {
    counters.admit(request, want).await.unwrap()
}

/// One request decided exactly (a statement admitting at most it).
async fn exact(counters: &ThrottleCounters<'_>, request: &WindowRequest) -> Verdict {
    ask(counters, request, 1).await.verdict
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
            async move { exact(counters, &request).await }
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
        assert_eq!(exact(&counters, &other).await, Verdict::Admitted);
        let json = WindowRequest {
            window: Window::Json("getOffice365ActiveUserCounts"),
            ..request(tenant, app, 5_000)
        };
        assert_eq!(exact(&counters, &json).await, Verdict::Admitted);
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
                exact(&storage.throttle_counters().unwrap(), &request).await
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

fn leased(exact_below: i64, share: i64, lease_ms: i64) -> LeasePolicy {
    LeasePolicy {
        exact_below,
        share,
        lease_ms,
    }
}

/// A lease counts from the end of its use, and a decision right after it too (times stay
/// ascending); when it expires, the window has room again.
#[tokio::test]
async fn a_lease_counts_until_the_end_of_its_use() {
    for (backend, url) in urls() {
        let (name, _, storage) = own_storage(&url, 2).await;
        let counters = storage.throttle_counters().unwrap();
        let at = |now| WindowRequest {
            per_app: 9,
            total: 9,
            lease: leased(1, 1, 1_000),
            ..request(TenantId(Uuid::nil()), None, now)
        };
        let lease = ask(&counters, &at(0), 8).await;
        assert_eq!(lease.granted, 8, "{backend}");
        assert_eq!(lease.verdict, Verdict::Admitted);
        assert_eq!(exact(&counters, &at(0)).await, Verdict::Admitted);
        // Both entries are stamped 1 s (the lease's end): they leave at 11 s.
        // (One app, per-app limit = total: the app's limit is the one reached.)
        let refused = Verdict::PerAppFull { retry_ms: 11_000 };
        assert_eq!(
            ask(&counters, &at(0), 8).await.verdict,
            refused,
            "{backend}"
        );
        let later = Verdict::PerAppFull { retry_ms: 500 };
        assert_eq!(exact(&counters, &at(10_500)).await, later);
        let again = ask(&counters, &at(11_000), 4).await;
        assert_eq!((again.verdict, again.granted), (Verdict::Admitted, 4));
        drop(storage);
        citus::drop_database(&url, &name).await.unwrap();
    }
}

/// A lease takes at most a share of what is left, and within `exact_below` of the limit
/// every decision admits one request: the last ones, and the refusal after them, are exact.
#[tokio::test]
async fn leases_shrink_to_one_near_the_limit() {
    for (backend, url) in urls() {
        let (name, _, storage) = own_storage(&url, 2).await;
        let counters = storage.throttle_counters().unwrap();
        let first = WindowRequest {
            per_app: 100,
            total: 100,
            lease: leased(10, 4, 1_000),
            ..request(TenantId(Uuid::new_v4()), None, 0)
        };
        let mut granted = Vec::new();
        loop {
            let decision = ask(&counters, &first, 1_000).await;
            if decision.verdict != Verdict::Admitted {
                // The oldest entry, the first lease, is stamped 1 s: it leaves at 11 s.
                assert_eq!(decision.verdict, Verdict::PerAppFull { retry_ms: 11_000 });
                break;
            }
            granted.push(decision.granted);
        }
        // 100 left: a quarter, 25; 75: 18; 57: 14; 43: 10; 33: 8; 25: 6; 19: 4; 15: 3;
        // 12: 3; then 9 left, below 10: one at a time.
        let leases = [25, 18, 14, 10, 8, 6, 4, 3, 3];
        let expected: Vec<i64> = leases.into_iter().chain([1; 9]).collect();
        assert_eq!(granted, expected, "{backend}");
        drop(storage);
        citus::drop_database(&url, &name).await.unwrap();
    }
}

/// In a CSV window several apps lease: each within its own limit and all within the
/// tenant's, with the running sums right over interleaved entries.
#[tokio::test]
async fn leases_of_several_apps_respect_both_limits() {
    for (backend, url) in urls() {
        let (name, _, storage) = own_storage(&url, 2).await;
        let counters = storage.throttle_counters().unwrap();
        let tenant = TenantId(Uuid::new_v4());
        let (a, b) = (Some(Uuid::new_v4()), Some(Uuid::new_v4()));
        let of = |app, now| WindowRequest {
            per_app: 8,
            total: 12,
            lease: leased(1, 1, 1_000),
            ..request(tenant, app, now)
        };
        let granted = |d: Decision| d.granted;
        assert_eq!(granted(ask(&counters, &of(a, 0), 3).await), 3, "{backend}");
        assert_eq!(granted(ask(&counters, &of(b, 0), 2).await), 2);
        assert_eq!(granted(ask(&counters, &of(a, 0), 4).await), 4);
        // a has 7 of 8: one more, then its own limit; its oldest entry leaves at 11 s.
        assert_eq!(granted(ask(&counters, &of(a, 0), 5).await), 1);
        let full = ask(&counters, &of(a, 0), 5).await;
        assert_eq!(full.verdict, Verdict::PerAppFull { retry_ms: 11_000 });
        assert_eq!(full.granted, 0);
        // b has 2: the tenant's 12 leave it 2 more.
        assert_eq!(granted(ask(&counters, &of(b, 0), 5).await), 2);
        let full = ask(&counters, &of(b, 0), 5).await.verdict;
        assert_eq!(full, Verdict::TotalFull { retry_ms: 11_000 }, "{backend}");
        drop(storage);
        citus::drop_database(&url, &name).await.unwrap();
    }
}

/// A small deterministic generator for the simulated traffic.
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *seed >> 33
}

/// Admission times (and apps) never exceed a limit in any sliding window.
fn assert_within_limits(admitted: &[(i64, usize)], window_ms: i64, per_app: usize, total: usize) {
    for (i, (end, _)) in admitted.iter().enumerate() {
        let inside: Vec<usize> = admitted[..=i]
            .iter()
            .filter(|(t, _)| *t > end - window_ms)
            .map(|(_, app)| *app)
            .collect();
        assert!(
            inside.len() <= total,
            "{} in the window ending {end}",
            inside.len()
        );
        for app in 0..3 {
            let of_app = inside.iter().filter(|a| **a == app).count();
            assert!(of_app <= per_app, "{of_app} of app {app} by {end}");
        }
    }
}

/// Two instances with leases, taking turns at random over several windows of simulated time:
/// in no sliding window are more requests admitted than a limit, per app or in total.
#[tokio::test]
async fn leasing_instances_never_exceed_a_sliding_window() {
    for (backend, url) in urls() {
        let (name, own, first) = own_storage(&url, 2).await;
        let second = PostgresStorage::connect(&own, 2).await.unwrap();
        let instances = [
            (first.throttle_counters().unwrap(), Leases::new()),
            (second.throttle_counters().unwrap(), Leases::new()),
        ];
        let tenant = TenantId(Uuid::new_v4());
        let apps = [Some(Uuid::new_v4()), Some(Uuid::new_v4()), None];
        let (window_ms, per_app, total) = (2_000, 40, 60);
        let mut seed = 19;
        let (mut now, mut requests, mut admitted) = (1_000_000_i64, 0, Vec::new());
        while now < 1_010_000 {
            now += i64::try_from(next(&mut seed) % 12).unwrap();
            // The first app asks most: its own limit binds as well as the tenant's.
            let app = [0, 0, 0, 1, 2][usize::try_from(next(&mut seed) % 5).unwrap()];
            let (counters, leases) = &instances[usize::try_from(next(&mut seed) % 2).unwrap()];
            let request = WindowRequest {
                window_ms,
                per_app: i64::try_from(per_app).unwrap(),
                total: i64::try_from(total).unwrap(),
                // Leases down to 2 left, so that they meet full windows often.
                lease: leased(2, 2, 250),
                ..request(tenant, apps[app], now)
            };
            requests += 1;
            if leases.admit(counters, &request).await.unwrap() == Verdict::Admitted {
                admitted.push((now, app));
            }
        }
        assert_within_limits(&admitted, window_ms, per_app, total);
        let statements = instances[0].1.statements() + instances[1].1.statements();
        // Five windows of at most 60 each; far more asked: the leases wasted little.
        assert!(
            admitted.len() > 250,
            "{backend}: {} admitted",
            admitted.len()
        );
        assert!(
            statements * 2 < requests,
            "{backend}: {statements} statements for {requests} requests"
        );
        drop(instances);
        drop((first, second));
        citus::drop_database(&url, &name).await.unwrap();
    }
}

/// Two instances (two pools), eight tasks, hammering one window at once with leases: they
/// admit exactly the limit between them — what they handed out and what they still hold
/// unused add up to it, never more — in far fewer statements than requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leasing_instances_hammering_admit_at_most_the_limit() {
    for (backend, url) in urls() {
        let (name, own, first) = own_storage(&url, 4).await;
        let second = PostgresStorage::connect(&own, 4).await.unwrap();
        let tenant = TenantId(Uuid::new_v4());
        let instances = [
            (first.clone(), std::sync::Arc::new(Leases::new())),
            (second.clone(), std::sync::Arc::new(Leases::new())),
        ];
        let limit = 3_000;
        let (tasks_per_instance, requests_per_task) = (4, 1_500);
        let mut tasks = Vec::new();
        for (storage, leases) in &instances {
            for _ in 0..tasks_per_instance {
                let (storage, leases) = (storage.clone(), leases.clone());
                tasks.push(tokio::spawn(async move {
                    let counters = storage.throttle_counters().unwrap();
                    let mut admitted = 0_i64;
                    for _ in 0..requests_per_task {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis();
                        let request = WindowRequest {
                            window_ms: 600_000,
                            per_app: limit,
                            total: limit,
                            // Leases outlive the test: none expires unused.
                            lease: leased(100, 4, 60_000),
                            ..request(tenant, None, i64::try_from(now).unwrap())
                        };
                        let verdict = leases.admit(&counters, &request).await.unwrap();
                        admitted += i64::from(verdict == Verdict::Admitted);
                    }
                    admitted
                }));
            }
        }
        let mut admitted = 0;
        for task in tasks {
            admitted += task.await.unwrap();
        }
        let unused: i64 = instances.iter().map(|(_, l)| l.unused()).sum();
        let statements: u64 = instances.iter().map(|(_, l)| l.statements()).sum();
        let requests = 2 * tasks_per_instance * requests_per_task;
        assert!(admitted <= limit, "{backend}: {admitted} admitted");
        assert_eq!(admitted + unused, limit, "{backend}: {admitted} + {unused}");
        assert!(
            statements * 10 < requests,
            "{backend}: {statements} statements for {requests} requests"
        );
        drop(instances);
        drop((first, second));
        citus::drop_database(&url, &name).await.unwrap();
    }
}

/// The table of an older release (one entry per request, no `counts`) is replaced at start:
/// counters are disposable.
#[tokio::test]
async fn an_outdated_counters_table_is_replaced() {
    for (backend, url) in urls() {
        let name = format!("reportroot_throttle_{}", Uuid::new_v4().simple());
        let own = citus::create_database(&url, &name).await.unwrap();
        let (client, connection) = tokio_postgres::connect(&own, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE UNLOGGED TABLE reportroot_throttle (tenant_id UUID NOT NULL, \
                 window_key TEXT NOT NULL, times BIGINT[] NOT NULL, apps UUID[] NOT NULL, \
                 newest BIGINT NOT NULL, refused SMALLINT NOT NULL, retry_ms BIGINT NOT NULL, \
                 PRIMARY KEY (tenant_id, window_key))",
            )
            .await
            .unwrap();
        let storage = PostgresStorage::connect(&own, 2).await.unwrap();
        let counters = storage.throttle_counters().unwrap();
        let request = request(TenantId(Uuid::new_v4()), None, 0);
        assert_eq!(
            exact(&counters, &request).await,
            Verdict::Admitted,
            "{backend}"
        );
        drop((client, storage));
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
    let (want, exact_below, share, lease_ms) = (64_i64, 1_000_i64, 8_i64, 1_000_i64);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
        &tenant,
        &window,
        &now,
        &app,
        &length,
        &per_app,
        &total,
        &want,
        &exact_below,
        &share,
        &lease_ms,
    ];
    let sql = admit_sql();
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
