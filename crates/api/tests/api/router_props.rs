//! The router in-process (no sockets) under random requests: no 5xx, every 4xx in Graph's
//! envelope, nothing written unless the answer is 2xx; and the answer cache's bounds.
#![expect(clippy::unwrap_used)]

use crate::common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reportroot_api::{router, ApiConfig, AppState};
use reportroot_model::{TenantId, REPORTS};
use reportroot_sqlite::{Durability, SqliteStorage};
use reportroot_storage::{ListQuery, Storage};
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

struct World {
    state: Arc<AppState>,
    tenants: Vec<Tenant>,
    ids: Vec<Uuid>,
    _dir: tempfile::TempDir,
}

async fn world(configure: impl FnOnce(&mut ApiConfig)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> =
        Arc::new(SqliteStorage::open(dir.path().join("props.db"), Durability::Process).unwrap());
    let mut config = ApiConfig::new("http://localhost", SECRET.to_vec());
    configure(&mut config);
    let state = AppState::new(storage, config);
    let tenants = vec![tenant(), tenant()];
    let mut world = World {
        state,
        tenants,
        ids: Vec::new(),
        _dir: dir,
    };
    for (date, product) in [
        ("2025-01-01", "VISIO CLIENT"),
        ("2025-01-02", "PROJECT CLIENT"),
    ] {
        let body = activation(date, product).to_string();
        let (status, text) = world
            .call(
                "POST",
                "/v1.0/reports/office365ActivationsUserCounts",
                Some(&world.tenants[0].write.clone()),
                Some("application/json"),
                body.into_bytes(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let id = serde_json::from_slice::<Value>(&text).unwrap()["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        world.ids.push(id);
    }
    let body = active_users("2025-01-07", "2025-01-06", "7").to_string();
    let (status, _) = world
        .call(
            "POST",
            "/v1.0/reports/office365ActiveUserCounts",
            Some(&world.tenants[1].write.clone()),
            Some("application/json"),
            body.into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    world
}

impl World {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let (status, _, body) = self
            .send(method, uri, token, content_type, &[], body)
            .await
            .unwrap();
        (status, body)
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Option<(StatusCode, axum::http::HeaderMap, Vec<u8>)> {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        // Requests http itself cannot carry (a bad method or uri) never reach the router.
        let request = request.body(Body::from(body)).ok()?;
        let response = router(Arc::clone(&self.state))
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Some((status, headers, bytes.to_vec()))
    }

    /// Every stored row of both tenants, for "nothing was written".
    async fn snapshot(&self) -> Vec<reportroot_model::Entity> {
        let mut rows = Vec::new();
        for tenant in &self.tenants {
            for report in REPORTS {
                rows.extend(
                    self.state
                        .storage
                        .list(TenantId(tenant.id), report, &ListQuery::default())
                        .await
                        .unwrap(),
                );
            }
        }
        rows
    }
}

/// One random request, as parts.
#[derive(Debug, Clone)]
struct RandomRequest {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    token: usize,
    content_type: Option<&'static str>,
    if_match: Option<&'static str>,
    prefer: Option<String>,
    body: RandomBody,
}

#[derive(Debug, Clone)]
enum RandomBody {
    Empty,
    Bytes(Vec<u8>),
    Json(Value),
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("reports".to_owned()),
        Just("office365ActivationsUserCounts".to_owned()),
        Just("Office365ActiveUserCounts".to_owned()),
        Just("teamsDeviceUsageDistributionUserCounts".to_owned()),
        Just("getOffice365ActiveUserCounts(period='D7')".to_owned()),
        Just("microsoft.graph.getOffice365ActivationsUserCounts()".to_owned()),
        Just("getTeamsDeviceUsageDistributionUserCounts(period='D9')".to_owned()),
        Just("getOffice365ActiveUserCounts(period=%27D30%27)".to_owned()),
        Just("$count".to_owned()),
        Just("$batch".to_owned()),
        Just("%24batch".to_owned()),
        Just("$metadata".to_owned()),
        Just("download".to_owned()),
        Just("healthz".to_owned()),
        Just("office365ActivationsUserCounts('x')".to_owned()),
        Just(Uuid::new_v4().to_string()),
        "[a-zA-Z0-9%'()=$.,~-]{0,12}",
    ]
}

fn query_pair() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        Just("$filter"),
        Just("$select"),
        Just("$orderby"),
        Just("$top"),
        Just("$skip"),
        Just("$count"),
        Just("$format"),
        Just("$skiptoken"),
        Just("$expand"),
        Just("top"),
        Just("redirect"),
        Just("x"),
    ];
    let value = prop_oneof![
        Just("assigned gt 1 and productType eq 'VISIO CLIENT'".to_owned()),
        Just("reportDate ge 2025-01-01".to_owned()),
        Just("productType,assigned".to_owned()),
        Just("assigned desc".to_owned()),
        Just("5".to_owned()),
        Just("true".to_owned()),
        Just("application/json".to_owned()),
        Just("false".to_owned()),
        Just("-1".to_owned()),
        "\\PC{0,24}",
    ];
    (name.prop_map(str::to_owned), value)
}

fn body() -> impl Strategy<Value = RandomBody> {
    let key = prop_oneof![
        Just("reportRefreshDate"),
        Just("productType"),
        Just("assigned"),
        Just("activated"),
        Just("sharedComputerActivation"),
        Just("reportPeriod"),
        Just("id"),
        Just("@odata.type"),
        Just("nope"),
    ];
    let value = prop_oneof![
        Just(json!("2025-01-03")),
        Just(json!("VISIO CLIENT")),
        Just(json!(3)),
        Just(json!(-3)),
        Just(json!(null)),
        Just(json!(1.5)),
        Just(json!("7")),
        Just(json!([])),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,8}".prop_map(|s| json!(s)),
    ];
    prop_oneof![
        Just(RandomBody::Empty),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(RandomBody::Bytes),
        Just(RandomBody::Json(activation("2025-01-09", "VISIO CLIENT"))),
        prop::collection::vec((key, value), 0..7).prop_map(|pairs| {
            let mut object = serde_json::Map::new();
            for (k, v) in pairs {
                object.insert(k.to_owned(), v);
            }
            RandomBody::Json(Value::Object(object))
        }),
    ]
}

fn batch_body() -> impl Strategy<Value = RandomBody> {
    let item = (
        prop_oneof![Just("GET"), Just("POST"), Just("PATCH"), Just("DELETE")],
        prop::collection::vec(segment(), 1..3),
        "[0-9]{1,2}",
    )
        .prop_map(|(method, segments, id)| {
            json!({"id": id, "method": method, "url": format!("/{}", segments.join("/")),
                   "headers": {"Content-Type": "application/json"},
                   "body": activation("2025-01-05", "BATCH CLIENT")})
        });
    prop::collection::vec(item, 0..4)
        .prop_map(|items| RandomBody::Json(json!({ "requests": items })))
}

/// Mostly paths that name something (so requests get past routing), sometimes anything.
fn path() -> impl Strategy<Value = String> {
    let version = prop_oneof![Just("v1.0"), Just("beta")];
    let named = prop_oneof![
        Just("office365ActivationsUserCounts"),
        Just("office365ActiveUserCounts"),
        Just("teamsDeviceUsageDistributionUserCounts"),
        Just("getOffice365ActiveUserCounts(period='D7')"),
        Just("getOffice365ActivationsUserCounts()"),
        Just("getTeamsDeviceUsageDistributionUserCounts(period='D30')"),
    ];
    let tail = prop::option::of(prop_oneof![
        Just("$count".to_owned()),
        Just("STORED".to_owned()),
        Just(Uuid::new_v4().to_string()),
        segment(),
    ]);
    let anything = (
        prop_oneof![
            Just("v1.0"),
            Just("beta"),
            Just("V1.0"),
            Just("v2"),
            Just("")
        ],
        prop::collection::vec(segment(), 0..4),
    )
        .prop_map(|(version, segments)| {
            let mut path = format!("/{version}");
            for segment in segments {
                path.push('/');
                path.push_str(&segment);
            }
            path
        });
    prop_oneof![
        6 => (version.clone(), named, tail).prop_map(|(v, n, t)| match t {
            Some(t) => format!("/{v}/reports/{n}/{t}"),
            None => format!("/{v}/reports/{n}"),
        }),
        2 => version.prop_map(|v| format!("/{v}/$batch")),
        2 => anything,
    ]
}

fn request() -> impl Strategy<Value = RandomRequest> {
    let method = prop_oneof![
        3 => Just("GET"),
        2 => Just("POST"),
        2 => Just("PATCH"),
        1 => Just("DELETE"),
        1 => Just("PUT"),
        1 => Just("HEAD"),
        1 => Just("OPTIONS"),
    ];
    (
        method,
        path(),
        prop::collection::vec(query_pair(), 0..3),
        0usize..7,
        prop::option::of(prop_oneof![Just("application/json"), Just("text/plain")]),
        prop::option::of(prop_oneof![Just("*"), Just("W/\"1\""), Just("garbage")]),
        prop::option::of("odata.maxpagesize=[0-9]{1,3}"),
        prop_oneof![body(), batch_body()],
    )
        .prop_map(
            |(method, path, query, token, content_type, if_match, prefer, body)| RandomRequest {
                method: method.to_owned(),
                path,
                query,
                token,
                content_type,
                if_match,
                prefer,
                body,
            },
        )
}

impl RandomRequest {
    fn uri(&self, world: &World) -> String {
        // Sometimes name a stored entity, so GET, PATCH and DELETE reach rows.
        let path = self.path.replace("STORED", &world.ids[0].to_string());
        if self.query.is_empty() {
            return path;
        }
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.query)
            .finish();
        format!("{path}?{query}")
    }

    fn token(&self, world: &World) -> Option<String> {
        match self.token {
            0 => None,
            1 => Some(world.tenants[0].read.clone()),
            2..=4 => Some(world.tenants[0].write.clone()),
            5 => Some(world.tenants[1].write.clone()),
            _ => Some("not.a.token".to_owned()),
        }
    }

    fn body_bytes(&self, world: &World) -> Vec<u8> {
        match &self.body {
            RandomBody::Empty => Vec::new(),
            RandomBody::Bytes(bytes) => bytes.clone(),
            RandomBody::Json(value) => {
                let text = value.to_string();
                // Sometimes name a stored entity, so PATCH and DELETE reach rows.
                text.replace("BATCH CLIENT", &world.ids[0].to_string())
            }
            .into_bytes(),
        }
    }
}

fn check_envelope(
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    if !status.is_client_error() {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "{status}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })?;
    let error = &value["error"];
    let fine = error["code"].as_str().is_some_and(|c| !c.is_empty())
        && error["message"].as_str().is_some_and(|m| !m.is_empty())
        && error["innerError"]["request-id"].is_string()
        && error["innerError"]["client-request-id"].is_string()
        && error["innerError"]["date"].is_string()
        && headers.contains_key("request-id");
    if fine {
        Ok(())
    } else {
        Err(format!("{status}: not Graph's envelope: {value}"))
    }
}

#[test]
fn random_requests_get_no_5xx_graph_errors_and_no_writes_unless_2xx() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let world = runtime.block_on(world(|c| c.page_size = 3));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&request(), |random| {
        runtime.block_on(async {
            let before = world.snapshot().await;
            let token = random.token(&world);
            let mut headers = Vec::new();
            if let Some(if_match) = random.if_match {
                headers.push(("if-match", if_match.to_owned()));
            }
            if let Some(prefer) = &random.prefer {
                headers.push(("prefer", prefer.clone()));
            }
            let Some((status, response_headers, body)) = world
                .send(
                    &random.method,
                    &random.uri(&world),
                    token.as_deref(),
                    random.content_type,
                    &headers,
                    random.body_bytes(&world),
                )
                .await
            else {
                return Ok(());
            };
            prop_assert!(
                !status.is_server_error(),
                "{status} for {random:?}: {}",
                String::from_utf8_lossy(&body)
            );
            // HEAD answers carry no body, as HTTP requires.
            if random.method != "HEAD" {
                if let Err(why) = check_envelope(status, &response_headers, &body) {
                    return Err(TestCaseError::fail(format!("{why} for {random:?}")));
                }
            }
            if !status.is_success() {
                let after = world.snapshot().await;
                prop_assert!(before == after, "{status} wrote for {random:?}");
            }
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_query_parameters_do_not_multiply_cached_answers() {
    let world = world(|_| {}).await;
    let token = world.tenants[0].read.clone();
    let path = "/beta/reports/getOffice365ActivationsUserCounts()?$format=application/json";
    let (status, _) = world
        .call("GET", path, Some(&token), None, Vec::new())
        .await;
    assert_eq!(status, StatusCode::OK);
    let one = world.state.answer_cache_bytes();
    assert!(one > 0);
    for i in 0..300 {
        for uri in [
            format!("{path}&x{i}=1"),
            format!("{path}&redirect=maybe{i}"),
            format!("/beta/reports/getOffice365ActivationsUserCounts()?%24FORMAT=application%2Fjson&unused={i}"),
        ] {
            let (status, _) = world.call("GET", &uri, Some(&token), None, Vec::new()).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
        }
    }
    assert!(
        world.state.answer_cache_bytes() <= 2 * one,
        "{} > 2 × {one}",
        world.state.answer_cache_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_cache_stays_within_its_byte_budget() {
    let budget = 64 * 1024;
    let world = world(|c| c.answer_cache_bytes = budget).await;
    let token = world.tenants[0].read.clone();
    for top in 0..2000 {
        let uri = format!(
            "/beta/reports/getOffice365ActivationsUserCounts()?$format=application/json&$top={top}"
        );
        let (status, _) = world
            .call("GET", &uri, Some(&token), None, Vec::new())
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(world.state.answer_cache_bytes() <= budget);
    }
}
