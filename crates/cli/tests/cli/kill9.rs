//! The real binary: a write answered 2xx survives `kill -9`, and `token` prints only a token.
#![expect(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");

struct Server {
    child: Child,
    base: String,
}

fn start(dir: &std::path::Path, port: u16) -> Server {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
        ])
        .arg(dir.join("r.db"))
        .arg("--key-file")
        .arg(dir.join("r.key"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the "listening" log line.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    for line in lines.by_ref() {
        if line.unwrap().contains("reportroot listening") || Instant::now() > deadline {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn token(dir: &std::path::Path, tenant: &str) -> String {
    let output = Command::new(BIN)
        .args([
            "token",
            "--tenant",
            tenant,
            "--role",
            "Reports.ReadWrite.All",
            "--ttl",
            "10m",
            "--key-file",
        ])
        .arg(dir.join("r.key"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "token prints nothing else");
    assert_eq!(text.trim().split('.').count(), 3);
    text.trim().to_owned()
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = uuid::Uuid::new_v4().to_string();
    let token = token(dir.path(), &tenant);
    let port = free_port();
    let mut server = start(dir.path(), port);
    let client = reqwest::Client::new();
    let url = format!(
        "{}/v1.0/reports/office365ActivationsUserCounts",
        server.base
    );
    let mut acknowledged = 0;
    for day in 1..=28 {
        let body = serde_json::json!({
            "reportRefreshDate": format!("2025-02-{day:02}"),
            "productType": "VISIO CLIENT",
            "assigned": day, "activated": day, "sharedComputerActivation": 0
        });
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        if response.status() == 201 {
            acknowledged += 1;
        }
    }
    assert_eq!(acknowledged, 28);
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    let mut server = start(dir.path(), port);
    // A new client: the old one's pooled connection died with the server.
    let client = reqwest::Client::new();
    let body: serde_json::Value = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), acknowledged);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
