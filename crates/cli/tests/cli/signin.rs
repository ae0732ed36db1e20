//! `reportroot app …` and `reportroot keys …` through the real binary, against a real
//! `serve`: secrets are shown once, stored only as hashes, rotated, and never logged.
#![expect(clippy::unwrap_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");
const TENANT: &str = "6f3c1a52-8b7e-4d0a-9c11-2f5e8a4b7c01";

fn run(args: &[&str], db: &Path) -> Output {
    let output = Command::new(BIN)
        .args(args)
        .arg("--database")
        .arg(db)
        .output()
        .unwrap();
    output
}

fn ok_json(args: &[&str], db: &Path) -> Value {
    let output = run(args, db);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stops the server by its PID when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn token_status(base: &str, client_id: &str, secret: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn apps_sign_in_rotate_secrets_and_keys_and_nothing_secret_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let refused = run(
        &[
            "app",
            "add",
            "--tenant",
            TENANT,
            "--name",
            "x",
            "--role",
            "Directory.ReadWrite.All",
        ],
        &db,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown role"));

    let added = ok_json(
        &[
            "app",
            "add",
            "--tenant",
            TENANT,
            "--name",
            "dashboard",
            "--role",
            "Reports.Read.All",
            "--json",
        ],
        &db,
    );
    let keys: Vec<&String> = added.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["clientId", "clientSecret", "tenantId"]);
    let client_id = added["clientId"].as_str().unwrap().to_owned();
    let first = added["clientSecret"].as_str().unwrap().to_owned();
    let second = ok_json(&["app", "secret", "add", &client_id, "--json"], &db);
    let second_secret = second["clientSecret"].as_str().unwrap().to_owned();
    let listed = ok_json(&["app", "list", "--json"], &db);
    assert_eq!(listed[0]["secrets"].as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["roles"], serde_json::json!(["Reports.Read.All"]));
    let listing = listed.to_string();
    assert!(!listing.contains(&first) && !listing.contains(&second_secret));

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("serve.log");
    let mut server = Server(
        Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
            ])
            .arg(&db)
            .arg("--key-file")
            .arg(dir.path().join("k"))
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut ready = false;
    for _ in 0..300 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "server did not start");

    let mut tokens = Vec::new();
    for secret in [&first, &second_secret] {
        let (status, body) = token_status(&base, &client_id, secret).await;
        assert_eq!(status, 200, "{body}");
        tokens.push(
            serde_json::from_str::<Value>(&body).unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        token_status(&base, &client_id, "wrong-secret-value")
            .await
            .0,
        401
    );
    let first_id = listed[0]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            first.starts_with(s["hint"].as_str().unwrap()) && s["secretId"] != second["secretId"]
        })
        .unwrap()["secretId"]
        .as_str()
        .unwrap()
        .to_owned();
    let removed = run(&["app", "secret", "remove", &client_id, &first_id], &db);
    assert!(removed.status.success());
    assert_eq!(
        token_status(&base, &client_id, &first).await.0,
        401,
        "a removed secret is refused"
    );
    assert_eq!(
        token_status(&base, &client_id, &second_secret).await.0,
        200,
        "the other still works"
    );

    let rotated = run(&["keys", "rotate"], &db);
    assert!(rotated.status.success());
    let keys = String::from_utf8_lossy(&run(&["keys", "list"], &db).stdout).into_owned();
    assert_eq!(keys.lines().count(), 2, "{keys}");
    assert_eq!(keys.matches("retired").count(), 1, "{keys}");

    assert!(run(&["app", "remove", &client_id], &db).status.success());
    assert_eq!(
        token_status(&base, &client_id, &second_secret).await.0,
        400,
        "a removed app's tenant is unknown"
    );
    drop(server.0.kill());
    let _ = server.0.wait();

    let mut logged = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut logged)
        .unwrap();
    assert!(
        logged.contains("issued an access token"),
        "the log is captured"
    );
    for secret in [&first, &second_secret, "wrong-secret-value"] {
        assert!(!logged.contains(secret), "a secret is in the log");
    }
    for token in &tokens {
        assert!(
            !logged.contains(token.as_str()),
            "an access token is in the log"
        );
    }
    let stored = std::fs::read(&db).unwrap();
    let wal = std::fs::read(dir.path().join("r.db-wal")).unwrap_or_default();
    for secret in [&first, &second_secret] {
        let needle = secret.as_bytes();
        for bytes in [&stored, &wal] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "a secret is stored in clear"
            );
        }
    }
}
