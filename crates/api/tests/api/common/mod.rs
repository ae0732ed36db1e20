//! The test harness: a real server on port 0 over a SQLite file in a temp dir.
#![allow(dead_code, clippy::allow_attributes, missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use reportroot_api::{auth, ApiConfig, AppState};
use reportroot_sqlite::{Durability, SqliteStorage};
use reportroot_storage::Storage;
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

pub mod dashboard;

pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret";

/// The database behind a test server.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// A Citus coordinator (scripts/citus.sh): the PostgreSQL backend on distributed tables.
    Citus,
}

/// The PostgreSQL URL tests run against, when set.
pub fn postgres_url() -> Option<String> {
    std::env::var("REPORTROOT_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// The Citus coordinator's URL tests run against, when set.
pub fn citus_url() -> Option<String> {
    std::env::var("REPORTROOT_TEST_CITUS_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// The PostgreSQL-protocol URLs to run a test on: PostgreSQL's and Citus's, those set (the
/// others announced as skipped).
pub fn server_urls(what: &str) -> Vec<(Backend, String)> {
    let mut urls = Vec::new();
    match postgres_url() {
        Some(url) => urls.push((Backend::Postgres, url)),
        None => announce_skip(what),
    }
    match citus_url() {
        Some(url) => urls.push((Backend::Citus, url)),
        None => announce_skip_citus(what),
    }
    urls
}

/// Says, outside the test harness's output capture, that a test did not run.
pub fn announce_skip(what: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {what}: REPORTROOT_TEST_POSTGRES_URL is not set (scripts/postgres.sh starts a server)"
    );
}

/// Says, outside the test harness's output capture, that a test did not run on Citus.
pub fn announce_skip_citus(what: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {what} on Citus: REPORTROOT_TEST_CITUS_URL is not set (scripts/citus.sh starts a cluster)"
    );
}

/// Generates, for each named `async fn(Backend)`, a test on SQLite, one on PostgreSQL and one
/// on Citus (the latter two skipped when their URL is not set).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await
                }
                #[tokio::test]
                async fn citus() {
                    super::$name($crate::common::Backend::Citus).await
                }
            }
        )*
    };
}

pub struct TestApp {
    pub address: SocketAddr,
    pub base: String,
    pub client: Client,
    pub db: Db,
    /// `http://addr/metrics` of the metrics listener, when the config turned metrics on.
    pub metrics_url: Option<String>,
    pub _dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A server on `backend`, or `None` (announced) when PostgreSQL is not available.
pub async fn spawn(backend: Backend, configure: impl FnOnce(&mut ApiConfig)) -> Option<TestApp> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("reportroot.db");
            let mut app = spawn_on(Db::Sqlite(path), configure).await;
            app._dir = Some(dir);
            Some(app)
        }
        Backend::Postgres => match postgres_url() {
            Some(url) => Some(spawn_on(Db::Postgres(url), configure).await),
            None => {
                announce_skip("PostgreSQL test");
                None
            }
        },
        Backend::Citus => match citus_url() {
            Some(url) => Some(spawn_on(Db::Postgres(url), configure).await),
            None => {
                announce_skip_citus("test");
                None
            }
        },
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut ApiConfig)) -> TestApp {
    spawn(Backend::Sqlite, configure).await.expect("sqlite")
}

pub async fn open_storage(db: &Db) -> Arc<dyn Storage> {
    match db {
        Db::Sqlite(path) => {
            Arc::new(SqliteStorage::open(path, Durability::Process).expect("open db"))
        }
        Db::Postgres(url) => Arc::new(
            reportroot_postgres::PostgresStorage::connect(url, 8)
                .await
                .expect("connect to PostgreSQL"),
        ),
    }
}

pub async fn spawn_on(db: Db, configure: impl FnOnce(&mut ApiConfig)) -> TestApp {
    let storage = open_storage(&db).await;
    spawn_over(storage, db, configure).await
}

/// A server over `storage`, opened by the test on `db`.
pub async fn spawn_over(
    storage: Arc<dyn Storage>,
    db: Db,
    configure: impl FnOnce(&mut ApiConfig),
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    let base = format!("http://{address}");
    let mut config = ApiConfig::new(base.clone(), SECRET.to_vec());
    configure(&mut config);
    let state = AppState::new(storage, config);
    let metrics_url = match state.config.metrics {
        true => Some(spawn_metrics(Arc::clone(&state)).await),
        false => None,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        reportroot_api::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    TestApp {
        address,
        base,
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        db,
        metrics_url,
        _dir: None,
        stop: Some(stop),
        task: Some(task),
    }
}

/// Serves the metrics of `state` on a port of its own until the test's runtime ends.
async fn spawn_metrics(state: Arc<AppState>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/metrics", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = reportroot_api::serve_metrics(listener, state, std::future::pending()).await;
    });
    url
}

impl TestApp {
    /// The metrics listener's exposition text, as Prometheus scrapes it.
    pub async fn metrics_text(&self) -> String {
        let url = self.metrics_url.clone().expect("metrics listener");
        let response = self.client.get(&url).send().await.expect("metrics scrape");
        response.text().await.expect("metrics text")
    }

    /// Stops the server and waits until it has released the database.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self._dir.take()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, token)
            .send()
            .await
            .expect("request")
    }

    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Response {
        self.request(method, path, token)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.send_json(Method::POST, path, token, body).await
    }

    /// The number of rows the tenant of `token` has in a set, on a version.
    pub async fn count_rows_on(
        &self,
        version: reportroot_model::Version,
        set: &str,
        token: &str,
    ) -> usize {
        let response = self
            .get(&format!("/{}/reports/{set}", version.segment()), token)
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        body["value"].as_array().expect("value").len()
    }

    /// The number of rows the tenant of `token` has in a set.
    pub async fn count_rows(&self, set: &str, token: &str) -> usize {
        let response = self.get(&format!("/v1.0/reports/{set}"), token).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        body["value"].as_array().expect("value").len()
    }
}

pub struct Tenant {
    pub id: Uuid,
    pub read: String,
    pub write: String,
}

pub fn token(tenant: Uuid, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    auth::issue_token(SECRET, tenant, &roles, 3600, auth::GRAPH_AUDIENCE).expect("token")
}

pub fn tenant() -> Tenant {
    let id = Uuid::new_v4();
    Tenant {
        id,
        read: token(id, &["Reports.Read.All"]),
        write: token(id, &["Reports.ReadWrite.All"]),
    }
}

/// Seed 000's body with its placeholders replaced by valid values.
pub fn activation(date: &str, product: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.office365ActivationsUserCounts",
        "reportRefreshDate": date,
        "productType": product,
        "assigned": 8,
        "activated": 9,
        "sharedComputerActivation": 8
    })
}

/// Seed 001's body, made valid.
pub fn active_users(refresh: &str, day: &str, period: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.office365ActiveUserCounts",
        "reportRefreshDate": refresh,
        "office365": 9,
        "exchange": 8,
        "oneDrive": 8,
        "sharePoint": 10,
        "skypeForBusiness": 0,
        "yammer": 6,
        "teams": 5,
        "reportDate": day,
        "reportPeriod": period
    })
}

/// Seed 004's body, made valid, with the newer Chrome OS and Linux counts.
pub fn teams_devices(refresh: &str, period: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.teamsDeviceUsageDistributionUserCounts",
        "reportRefreshDate": refresh,
        "web": 3,
        "windowsPhone": 12,
        "androidPhone": 12,
        "ios": 3,
        "mac": 3,
        "windows": 7,
        "chromeOS": 1,
        "linux": 2,
        "reportPeriod": period
    })
}

/// Asserts a Graph error envelope with the given status and code; returns the message.
pub async fn assert_error(response: Response, status: u16, code: &str) -> String {
    assert_eq!(response.status(), status, "status");
    let request_id = response
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("request-id header");
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(
        body["error"]["innerError"]["request-id"],
        request_id.as_str()
    );
    assert!(body["error"]["innerError"]["client-request-id"].is_string());
    assert!(body["error"]["innerError"]["date"].is_string());
    body["error"]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

/// Stores `days` office365ActiveUserCounts rows for `tenant`, one a day from 2000-01-01, period
/// 7, counts below 50: a history whose `teams gt …` filters no index serves.
pub async fn store_daily_rows(storage: &dyn Storage, tenant: Uuid, days: i64) {
    use reportroot_model::{find_report, Date, TenantId, Value as Cell, ValueKind};
    let report = find_report("office365ActiveUserCounts").expect("report");
    let first = Date::parse("2000-01-01").expect("date");
    let rows: Vec<Vec<Cell>> = (0..days)
        .map(|n| {
            let day = Cell::Date(first.add_days(n));
            report
                .properties
                .iter()
                .map(|p| match p.kind {
                    ValueKind::Date => day.clone(),
                    ValueKind::Period => Cell::Text("7".into()),
                    _ => Cell::Int(n % 50),
                })
                .collect()
        })
        .collect();
    storage
        .upsert_many(TenantId(tenant), report, rows)
        .await
        .expect("rows stored");
}
