//! HTTPS beside plain HTTP: one router on two listeners, a certificate from a test CA,
//! absolute URLs from the listener a request arrived on, the TLS handshake under the
//! header-read timeout, and clear errors for bad certificate files.
#![expect(clippy::unwrap_used)]

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use reportroot_api::server::Listener;
use reportroot_api::{tls, ApiConfig, AppState};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A test CA and a server certificate it signs for 127.0.0.1 and localhost, as PEM files.
struct TestCert {
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl TestCert {
    fn new() -> TestCert {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("chain.pem"), cert.pem() + &ca.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        TestCert {
            dir,
            ca_pem: ca.pem(),
        }
    }

    fn chain(&self) -> PathBuf {
        self.dir.path().join("chain.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

/// A server with a plain and an HTTPS listener on port 0.
struct TwoListeners {
    http: SocketAddr,
    https: SocketAddr,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _cert: TestCert,
    _db: tempfile::TempDir,
}

impl TwoListeners {
    /// `public_url`: what both listeners' answers link to instead of their own URLs.
    async fn start(public_url: Option<&str>, configure: impl FnOnce(&mut ApiConfig)) -> Self {
        let cert = TestCert::new();
        let tls_config = tls::server_config(&cert.chain(), &cert.key()).unwrap();
        let db = tempfile::tempdir().unwrap();
        let storage = open_storage(&Db::Sqlite(db.path().join("reportroot.db"))).await;
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let secure = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (http, https) = (plain.local_addr().unwrap(), secure.local_addr().unwrap());
        let base = |own: String| Some(public_url.map_or(own, str::to_owned));
        let listeners = vec![
            Listener {
                tcp: plain,
                tls: None,
                base_url: base(format!("http://{http}")),
            },
            Listener {
                tcp: secure,
                tls: Some(tls_config),
                base_url: base(format!("https://{https}")),
            },
        ];
        let mut config = ApiConfig::new(format!("http://{http}"), SECRET.to_vec());
        configure(&mut config);
        let state = AppState::new(storage, config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            reportroot_api::serve_listeners(listeners, state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(cert.ca_pem.as_bytes()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TwoListeners {
            http,
            https,
            client,
            stop: Some(stop),
            task,
            _cert: cert,
            _db: db,
        }
    }

    fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.https)
    }

    async fn get(&self, url: &str, token: &str) -> reqwest::Response {
        self.client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stopped")
            .unwrap();
    }
}

const REPORT_FUNCTION: &str = "/v1.0/reports/getOffice365ActiveUserCounts(period='D7')";
const ENTITY_SET: &str = "/v1.0/reports/office365ActivationsUserCounts";

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn context(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap();
    body["@odata.context"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn https_and_http_serve_the_same_api_with_their_own_absolute_urls() {
    let server = TwoListeners::start(None, |_| {}).await;
    let token = token(tenant().id, &["Reports.Read.All"]);

    let secure = server.get(&server.https_url(ENTITY_SET), &token).await;
    assert_eq!(secure.status(), 200);
    let https_base = format!("https://{}", server.https);
    assert!(context(secure).await.starts_with(&https_base));
    let plain = server.get(&server.http_url(ENTITY_SET), &token).await;
    assert_eq!(plain.status(), 200);
    let http_base = format!("http://{}", server.http);
    assert!(context(plain).await.starts_with(&http_base));

    // The report function's 302, twice on each: the answer cache keeps them apart.
    for _ in 0..2 {
        let secure = server.get(&server.https_url(REPORT_FUNCTION), &token).await;
        assert_eq!(secure.status(), 302);
        let download = location(&secure);
        assert!(download.starts_with(&format!("{https_base}/reports/download/")));
        let plain = server.get(&server.http_url(REPORT_FUNCTION), &token).await;
        assert!(location(&plain).starts_with(&format!("{http_base}/reports/download/")));
        // The download URL itself works over HTTPS.
        let csv = server.client.get(&download).send().await.unwrap();
        assert_eq!(csv.status(), 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn next_links_and_batch_items_link_to_the_listener_of_the_request() {
    let server = TwoListeners::start(None, |config| config.page_size = 1).await;
    let tenant = tenant();
    let writer = token(tenant.id, &["Reports.ReadWrite.All"]);
    for product in ["VISIO CLIENT", "PROJECT CLIENT"] {
        let created = server
            .client
            .post(server.https_url(ENTITY_SET))
            .bearer_auth(&writer)
            .json(&activation("2025-01-31", product))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    for (url, base) in [
        (
            server.https_url(ENTITY_SET),
            format!("https://{}", server.https),
        ),
        (
            server.http_url(ENTITY_SET),
            format!("http://{}", server.http),
        ),
    ] {
        let page: serde_json::Value = server.get(&url, &writer).await.json().await.unwrap();
        let next = page["@odata.nextLink"].as_str().unwrap();
        assert!(next.starts_with(&format!("{base}/v1.0/")), "{next}");
    }
    let batch: serde_json::Value = server
        .client
        .post(server.https_url("/v1.0/$batch"))
        .bearer_auth(&writer)
        .json(&serde_json::json!({"requests": [
            {"id": "1", "method": "GET", "url": "reports/office365ActivationsUserCounts"}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item_context = batch["responses"][0]["body"]["@odata.context"]
        .as_str()
        .unwrap();
    assert!(
        item_context.starts_with(&format!("https://{}/v1.0/", server.https)),
        "{item_context}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_configured_public_url_wins_on_both_listeners() {
    let public = "https://reports.example.com";
    let server = TwoListeners::start(Some(public), |_| {}).await;
    let token = token(tenant().id, &["Reports.Read.All"]);
    for url in [
        server.https_url(REPORT_FUNCTION),
        server.http_url(REPORT_FUNCTION),
    ] {
        let answer = server.get(&url, &token).await;
        assert!(location(&answer).starts_with(&format!("{public}/reports/download/")));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_says_hello_is_disconnected_after_the_header_read_timeout() {
    let server = TwoListeners::start(None, |config| {
        config.connections.header_read_timeout = Duration::from_millis(500);
        config.connections.max_connections = 1;
    })
    .await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.https).await.unwrap();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buffer))
        .await
        .expect("the server closed the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    // Its slot (the only one) is free again: a real client gets through.
    let answer = server
        .client
        .get(server.https_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn the_tls_handshake_counts_against_the_connection_limit() {
    let server = TwoListeners::start(None, |config| {
        config.connections.header_read_timeout = Duration::from_secs(2);
        config.connections.max_connections = 1;
    })
    .await;
    let _silent = TcpStream::connect(server.https).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    // Waits in the backlog until the silent client's handshake times out.
    let answer = server
        .client
        .get(server.http_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(1000));
    server.stop().await;
}

fn error_text(chain: &Path, key: &Path) -> String {
    tls::server_config(chain, key).unwrap_err().to_string()
}

#[test]
fn bad_certificate_files_are_refused_naming_the_file_and_the_cause() {
    let cert = TestCert::new();
    let missing = cert.dir.path().join("missing.pem");
    let text = error_text(&missing, &cert.key());
    assert!(
        text.contains("missing.pem") && text.contains("cannot read"),
        "{text}"
    );
    let text = error_text(&cert.chain(), &missing);
    assert!(
        text.contains("missing.pem") && text.contains("private key"),
        "{text}"
    );

    // A key file given as the certificate, and the other way round.
    let text = error_text(&cert.key(), &cert.key());
    assert!(
        text.contains("key.pem") && text.contains("no CERTIFICATE"),
        "{text}"
    );
    let text = error_text(&cert.chain(), &cert.chain());
    assert!(
        text.contains("chain.pem") && text.contains("no PRIVATE KEY"),
        "{text}"
    );

    // A key that is not the certificate's.
    let other = TestCert::new();
    let text = error_text(&cert.chain(), &other.key());
    assert!(
        text.contains("chain.pem") && text.contains("key.pem"),
        "{text}"
    );
}
