//! Operating reportroot: health and readiness, Graph's report throttling, fault and latency
//! injection, and Prometheus metrics, each off by default.
#![expect(clippy::unwrap_used)]

use crate::common;

use std::collections::HashSet;

use common::*;
use reportroot_api::chaos::ChaosConfig;
use reportroot_api::throttle::ThrottleLimits;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

const ACTIVE_USERS: &str = "/v1.0/reports/getOffice365ActiveUserCounts(period='D7')";

/// A read token of `tenant` naming `app` in `azp`, as the token endpoint's do.
fn app_token(tenant: Uuid, app: Uuid) -> String {
    use reportroot_api::auth::{Audience, Claims, GRAPH_AUDIENCE};
    let now = reportroot_api::auth::unix_now();
    let claims = Claims {
        tid: tenant.to_string(),
        aud: Audience::One(GRAPH_AUDIENCE.to_owned()),
        exp: now + 3600,
        iat: Some(now),
        nbf: Some(now),
        iss: Some(format!("https://sts.windows.net/{tenant}/")),
        roles: vec!["Reports.Read.All".to_owned()],
        scp: None,
        azp: Some(app.to_string()),
        appid: None,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

#[tokio::test]
async fn healthz_and_readyz_need_no_token() {
    let app = spawn_app().await;
    for (path, body) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.unwrap(), body);
    }
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_503_with_a_reason_when_the_schema_is_gone() {
    let app = spawn_app().await;
    let Db::Sqlite(path) = &app.db else {
        unreachable!("a SQLite app")
    };
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute_batch("DROP TABLE reportroot_apps")
        .unwrap();
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let reason = response.text().await.unwrap();
    assert!(
        reason.starts_with("not ready: the database failed"),
        "{reason}"
    );
    // Liveness is not readiness.
    let alive = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), 200);
    app.stop().await;
}

fn small_limits() -> ThrottleLimits {
    ThrottleLimits {
        window_seconds: 60,
        csv_per_app: 2,
        csv_per_tenant: 3,
        json_per_app: 4,
        ..ThrottleLimits::default()
    }
}

#[tokio::test]
async fn throttling_is_off_by_default() {
    let app = spawn_app().await;
    let t = tenant();
    for _ in 0..20 {
        assert_eq!(app.get(ACTIVE_USERS, &t.read).await.status(), 302);
    }
    app.stop().await;
}

#[tokio::test]
async fn throttled_calls_get_graphs_429() {
    let app = spawn_app_with(|c| c.throttle = Some(small_limits())).await;
    let tenant = Uuid::new_v4();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let token = app_token(tenant, first);
    for _ in 0..2 {
        assert_eq!(app.get(ACTIVE_USERS, &token).await.status(), 302);
    }
    let refused = app
        .request(Method::GET, ACTIVE_USERS, &token)
        .header("client-request-id", "c-1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let request_id = refused.headers()["request-id"].to_str().unwrap().to_owned();
    let body: Value = refused.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], "TooManyRequests");
    assert_eq!(error["message"], "Please retry again later.");
    let inner = &error["innerError"];
    assert_eq!(inner["code"], "429");
    assert_eq!(inner["status"], "429");
    assert_eq!(inner["message"], "Please retry after");
    assert_eq!(inner["request-id"], request_id.as_str());
    assert_eq!(inner["client-request-id"], "c-1");
    assert!(inner["date"].as_str().unwrap().len() == 19, "{inner}");
    // Another report API is counted apart; another app of the tenant too, up to the tenant's
    // limit for all apps (3).
    let other = "/v1.0/reports/getOffice365ActivationsUserCounts";
    assert_eq!(app.get(other, &token).await.status(), 302);
    let second = app_token(tenant, second);
    assert_eq!(app.get(ACTIVE_USERS, &second).await.status(), 302);
    assert_eq!(app.get(ACTIVE_USERS, &second).await.status(), 429);
    // Beta JSON has its own limit, per app, with none per tenant.
    let json = "/beta/reports/getOffice365ActiveUserCounts(period='D7')?$format=application/json";
    for _ in 0..4 {
        assert_eq!(app.get(json, &token).await.status(), 200);
    }
    assert_eq!(app.get(json, &token).await.status(), 429);
    // Health is never throttled; entity sets are not report APIs.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let set = app
        .get("/v1.0/reports/office365ActiveUserCounts", &token)
        .await;
    assert_eq!(set.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn throttled_calls_inside_a_batch_answer_429_each() {
    let app = spawn_app_with(|c| c.throttle = Some(small_limits())).await;
    let t = tenant();
    let requests: Vec<Value> = (1..=3)
        .map(|id| {
            serde_json::json!({
                "id": id.to_string(), "method": "GET",
                "url": "/reports/getOffice365ActiveUserCounts(period='D7')"
            })
        })
        .collect();
    let response = app
        .post(
            "/v1.0/$batch",
            &t.read,
            &serde_json::json!({ "requests": requests }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let statuses: Vec<u64> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "{body}");
    app.stop().await;
}

fn chaos(configure: impl FnOnce(&mut ChaosConfig)) -> ChaosConfig {
    let mut config = ChaosConfig {
        retry_after_seconds: 1,
        ..ChaosConfig::default()
    };
    configure(&mut config);
    config
}

#[tokio::test]
async fn chaos_fails_requests_in_scope_with_graphs_bodies() {
    let config = chaos(|c| {
        c.failure_rate = 1.0;
        c.statuses = vec![503];
        c.routes = vec!["/v1.0/reports/get*".into()];
    });
    let app = spawn_app_with(|c| c.chaos = Some(config)).await;
    let t = tenant();
    let failed = app.get(ACTIVE_USERS, &t.read).await;
    assert_eq!(failed.headers()["retry-after"], "1");
    assert_eq!(failed.headers()["reportroot-injected"], "chaos");
    assert_error(failed, 503, "serviceNotAvailable").await;
    // Out of scope, and health, are left alone.
    let set = app
        .get("/v1.0/reports/office365ActiveUserCounts", &t.read)
        .await;
    assert_eq!(set.status(), 200);
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_injected_failure_writes_nothing() {
    let config = chaos(|c| {
        c.failure_rate = 1.0;
        c.statuses = vec![500, 502, 504];
        c.methods = vec!["POST".into()];
    });
    let app = spawn_app_with(|c| c.chaos = Some(config)).await;
    let t = tenant();
    let mut seen = HashSet::new();
    for day in 1..=12 {
        let body = active_users("2025-02-01", &format!("2025-01-{day:02}"), "7");
        let response = app
            .post("/v1.0/reports/office365ActiveUserCounts", &t.write, &body)
            .await;
        seen.insert(response.status().as_u16());
        assert!(response.headers().get("retry-after").is_none());
    }
    assert!(seen.is_subset(&HashSet::from([500, 502, 504])), "{seen:?}");
    assert!(seen.len() > 1, "{seen:?}");
    assert_eq!(
        app.count_rows("office365ActiveUserCounts", &t.read).await,
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn prefer_asks_for_a_failure_only_when_chaos_is_on() {
    let plain = spawn_app().await;
    let t = tenant();
    let asked = plain
        .request(Method::GET, ACTIVE_USERS, &t.read)
        .header("Prefer", "reportroot.fail=429")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 302);
    plain.stop().await;

    let app = spawn_app_with(|c| c.chaos = Some(chaos(|_| {}))).await;
    assert_eq!(app.get(ACTIVE_USERS, &t.read).await.status(), 302);
    let started = std::time::Instant::now();
    let asked = app
        .request(Method::GET, ACTIVE_USERS, &t.read)
        .header("Prefer", "reportroot.fail=429, reportroot.delay=200")
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert_eq!(asked.headers()["retry-after"], "1");
    let body: Value = asked.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(body["error"]["innerError"]["status"], "429");
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_method_and_status() {
    let app = spawn_app_with(|c| {
        c.metrics = true;
        c.throttle = Some(small_limits());
        c.chaos = Some(chaos(|_| {}));
    })
    .await;
    let t = tenant();
    for _ in 0..3 {
        app.get(ACTIVE_USERS, &t.read).await;
    }
    let injected = app
        .request(Method::GET, "/v1.0/reports", &t.read)
        .header("Prefer", "reportroot.fail=502")
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), 502);
    app.client.get(app.url("/healthz")).send().await.unwrap();
    let url = app.metrics_url.clone().expect("metrics listener");
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    let samples = parse_exposition(&text);
    let value = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.value)
    };
    let route = "/reports/getOffice365ActiveUserCounts(…)";
    let ok = [("route", route), ("method", "GET"), ("status", "302")];
    assert_eq!(
        value("reportroot_http_requests_total", &ok),
        Some(2.0),
        "{text}"
    );
    let throttled = [("route", route), ("status", "429")];
    assert_eq!(
        value("reportroot_http_requests_total", &throttled),
        Some(1.0)
    );
    assert_eq!(
        value("reportroot_http_request_duration_seconds_count", &ok),
        Some(2.0)
    );
    let health = [("route", "/healthz"), ("status", "200")];
    assert_eq!(value("reportroot_http_requests_total", &health), Some(1.0));
    let limit = [("limit", "csv_per_app")];
    assert_eq!(
        value("reportroot_throttled_responses_total", &limit),
        Some(1.0)
    );
    let status = [("status", "502")];
    assert_eq!(
        value("reportroot_injected_faults_total", &status),
        Some(1.0)
    );
    // One miss then a hit (the answer is cached for a second).
    assert!(value("reportroot_answer_cache_misses_total", &[]).is_some_and(|v| v >= 1.0));
    assert!(value("reportroot_answer_cache_bytes", &[]).is_some_and(|v| v > 0.0));
    assert_eq!(value("reportroot_http_requests_in_flight", &[]), Some(0.0));
    assert_eq!(value("reportroot_build_info", &[]), Some(1.0));
    app.stop().await;
}

/// One sample of the text exposition format.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses the Prometheus text exposition format (version 0.0.4) strictly, panicking on
/// anything promtool would reject: names, label syntax and escapes, values, one TYPE per
/// family before its samples, histogram series.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut types = std::collections::HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(valid_name(name), "{line}");
            if kind == "TYPE" {
                let family = parts.next().unwrap();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&family),
                    "{line}"
                );
                assert!(
                    types.insert(name.to_owned(), family).is_none(),
                    "TYPE twice: {line}"
                );
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().expect(line),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect(line))),
            None => (series, Vec::new()),
        };
        assert!(valid_name(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f) == Some(&"histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE before {line}");
        if name.ends_with("_bucket") {
            assert!(labels.iter().any(|(k, _)| k == "le"), "{line}");
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect(text);
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{text}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect(text) {
                (_, '\\') => match chars.next().expect(text).1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    other => panic!("bad escape \\{other} in {text}"),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels
}

/// The samples of `text` named `name` with (at least) `labels`, summed; `None` if none.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = parse_exposition(text)
        .into_iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|s| s.value)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

/// Checks `text` with Prometheus' promtool when it is installed (scripts/clients/retry-check.sh
/// installs it in CI); says so when it is not.
fn promtool_check(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED promtool check metrics: promtool is not installed"
        );
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

on_both_backends!(
    instances_share_the_throttle_on_postgres,
    instances_lease_far_from_the_limit,
    metrics_show_storage_and_pools
);

/// Two instances on one database: on PostgreSQL and Citus the second is throttled once the
/// first has used up the window (the counters are in the database); on SQLite each instance
/// counts its own (in memory).
async fn instances_share_the_throttle_on_postgres(backend: Backend) {
    let limits = |c: &mut reportroot_api::ApiConfig| c.throttle = Some(small_limits());
    let Some(first) = spawn(backend, limits).await else {
        return;
    };
    let second = spawn_on(first.db.clone(), limits).await;
    let tenant = Uuid::new_v4();
    let (app, other_app) = (Uuid::new_v4(), Uuid::new_v4());
    let token = app_token(tenant, app);
    for _ in 0..2 {
        assert_eq!(first.get(ACTIVE_USERS, &token).await.status(), 302);
    }
    let shared = !matches!(backend, Backend::Sqlite);
    let refused = second.get(ACTIVE_USERS, &token).await;
    if !shared {
        assert_eq!(
            refused.status(),
            302,
            "SQLite: each instance counts its own"
        );
        first.stop().await;
        second.stop().await;
        return;
    }
    assert_eq!(refused.status(), 429, "{backend:?}");
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    // The tenant's limit (3) counts both instances' requests of every app.
    let other = app_token(tenant, other_app);
    assert_eq!(second.get(ACTIVE_USERS, &other).await.status(), 302);
    assert_eq!(first.get(ACTIVE_USERS, &other).await.status(), 429);
    // JSON: per app, shared too (limit 4).
    let json = "/beta/reports/getOffice365ActiveUserCounts(period='D7')?$format=application/json";
    for i in 0..4 {
        let via = if i % 2 == 0 { &first } else { &second };
        assert_eq!(via.get(json, &token).await.status(), 200);
    }
    assert_eq!(first.get(json, &token).await.status(), 429);
    assert_eq!(second.get(json, &token).await.status(), 429);
    first.stop().await;
    second.stop().await;
}

/// Far from the limits, two instances on PostgreSQL and Citus share the counters in leases:
/// most report calls are decided without a statement (the metrics count both kinds); near
/// them every call is one (`instances_share_the_throttle_on_postgres`).
async fn instances_lease_far_from_the_limit(backend: Backend) {
    let limits = |c: &mut reportroot_api::ApiConfig| {
        c.metrics = true;
        c.throttle = Some(ThrottleLimits {
            json_per_app: 1_000_000,
            instances: 2,
            ..small_limits()
        });
    };
    let Some(first) = spawn(backend, limits).await else {
        return;
    };
    let second = spawn_on(first.db.clone(), limits).await;
    let token = app_token(Uuid::new_v4(), Uuid::new_v4());
    let json = "/beta/reports/getOffice365ActiveUserCounts(period='D7')?$format=application/json";
    let calls = 60;
    for i in 0..calls {
        let via = if i % 2 == 0 { &first } else { &second };
        assert_eq!(via.get(json, &token).await.status(), 200);
    }
    let (mut statements, mut local) = (0.0, 0.0);
    for app in [&first, &second] {
        let text = app.metrics_text().await;
        let count = "reportroot_storage_operation_duration_seconds_count";
        statements += metric(&text, count, &[("operation", "throttle_admit")]).unwrap_or(0.0);
        local += metric(&text, "reportroot_throttle_local_decisions_total", &[]).unwrap();
    }
    if matches!(backend, Backend::Sqlite) {
        assert_eq!((statements, local), (0.0, 0.0), "SQLite counts in memory");
    } else {
        assert_eq!(statements + local, f64::from(calls), "{backend:?}");
        // Each instance's leases double while used up in time: 1, 2, 4, 8, 16 cover 30 calls.
        assert!(statements <= 20.0, "{backend:?}: {statements} statements");
    }
    first.stop().await;
    second.stop().await;
}

/// Storage operations are timed by operation, the pools' connections shown, and the text is
/// what promtool accepts.
async fn metrics_show_storage_and_pools(backend: Backend) {
    let Some(app) = spawn(backend, |c| {
        c.metrics = true;
        c.throttle = Some(small_limits());
    })
    .await
    else {
        return;
    };
    let t = tenant();
    let set = "/v1.0/reports/office365ActiveUserCounts";
    assert_eq!(app.get(set, &t.read).await.status(), 200);
    assert_eq!(app.get(ACTIVE_USERS, &t.read).await.status(), 302);
    let text = app.metrics_text().await;
    let count = "reportroot_storage_operation_duration_seconds_count";
    assert!(
        metric(&text, count, &[("operation", "list")]).is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(metric(&text, count, &[("operation", "latest_report")]).is_some_and(|v| v >= 1.0));
    let (pool, max) = match backend {
        Backend::Sqlite => ("sqlite_readers", 4.0),
        Backend::Postgres | Backend::Citus => ("postgres", 8.0),
    };
    let max_name = "reportroot_db_pool_max_connections";
    assert_eq!(
        metric(&text, max_name, &[("pool", pool)]),
        Some(max),
        "{text}"
    );
    let connections = "reportroot_db_pool_connections";
    // Open connections: idle or lent out at the moment of the scrape (a background sweep of
    // the throttle counters may hold one), at least the one the requests used.
    let idle = metric(&text, connections, &[("pool", pool), ("state", "idle")]);
    let in_use = metric(&text, connections, &[("pool", pool), ("state", "in_use")]);
    let open = idle.zip(in_use).map(|(idle, in_use)| idle + in_use);
    assert!(open.is_some_and(|v| (1.0..=max).contains(&v)), "{text}");
    // On PostgreSQL the throttle's shared decisions are timed too.
    let decisions = metric(&text, count, &[("operation", "throttle_admit")]);
    match backend {
        Backend::Sqlite => assert_eq!(decisions, None),
        _ => assert_eq!(decisions, Some(1.0), "{text}"),
    }
    assert_eq!(
        metric(&text, "reportroot_throttle_store_failures_total", &[]),
        Some(0.0)
    );
    promtool_check(&text);
    app.stop().await;
}

/// When the shared counters fail (here: their table is gone), report calls are admitted, not
/// answered 500, and the failure is counted.
#[tokio::test]
async fn a_failing_counter_store_admits_the_request() {
    let Some(url) = postgres_url() else {
        announce_skip("failing counter store");
        return;
    };
    let name = format!("reportroot_ops_{}", Uuid::new_v4().simple());
    let own = reportroot_postgres::citus::create_database(&url, &name)
        .await
        .unwrap();
    let app = spawn_on(Db::Postgres(own.clone()), |c| {
        c.metrics = true;
        c.throttle = Some(small_limits());
    })
    .await;
    let (client, connection) = tokio_postgres::connect(&own, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("DROP TABLE reportroot_throttle")
        .await
        .unwrap();
    let t = tenant();
    for _ in 0..3 {
        assert_eq!(app.get(ACTIVE_USERS, &t.read).await.status(), 302);
    }
    let text = app.metrics_text().await;
    let failures = metric(&text, "reportroot_throttle_store_failures_total", &[]);
    assert_eq!(failures, Some(3.0), "{text}");
    app.stop().await;
    drop(client);
    reportroot_postgres::citus::drop_database(&url, &name)
        .await
        .unwrap();
}
