//! `reportroot user …`, `reportroot tenant …` and the demo's operator through the real
//! binary: passwords given or generated (shown once, stored as argon2id hashes), a real
//! `serve` signing the users in, sessions ended by `passwd` and `remove`, and the demo's
//! printed password working, also after a restart.
#![expect(clippy::unwrap_used)]

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");
const CONTOSO: &str = "6f3c1a52-8b7e-4d0a-9c11-2f5e8a4b7c01";
const FABRIKAM: &str = "2b8d4e71-0c3f-4a96-b5d2-7e19c6a83f02";

fn run(args: &[&str], db: &Path, stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--database")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str], db: &Path, stdin: Option<&str>) -> String {
    let output = run(args, db, stdin);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
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

async fn wait_until_up(base: &str) {
    for _ in 0..1200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{base} did not come up");
}

/// Signs in through the form: the status of the POST.
async fn sign_in(base: &str, user: &str, password: &str) -> u16 {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(format!("{base}/dashboard/signin"))
        .send()
        .await
        .unwrap();
    let csrf = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|line| line.strip_prefix("reportroot_signin_csrf="))
        .map(|rest| rest.split(';').next().unwrap().to_owned())
        .unwrap();
    client
        .post(format!("{base}/dashboard/signin"))
        .header("Cookie", format!("reportroot_signin_csrf={csrf}"))
        .form(&[("username", user), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn users_are_added_listed_changed_and_removed_and_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let password = "a long enough password";
    let added = ok(
        &[
            "user",
            "add",
            "--name",
            "alice",
            "--tenant",
            CONTOSO,
            "--write",
            "--password-stdin",
        ],
        &db,
        Some(&format!("{password}\n")),
    );
    assert_eq!(
        added, "added user alice\n",
        "a given password is not printed"
    );
    let generated = ok(
        &["user", "add", "--name", "ops", "--all-tenants"],
        &db,
        None,
    );
    let ops_password = generated
        .lines()
        .find_map(|line| line.strip_prefix("password: "))
        .unwrap()
        .to_owned();
    assert_eq!(ops_password.len(), 20);

    let taken = run(
        &["user", "add", "--name", "alice", "--tenant", CONTOSO],
        &db,
        None,
    );
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already exists"));
    let short = run(
        &[
            "user",
            "add",
            "--name",
            "bob",
            "--tenant",
            CONTOSO,
            "--password-stdin",
        ],
        &db,
        Some("short\n"),
    );
    assert!(!short.status.success());
    let neither = run(&["user", "add", "--name", "bob"], &db, None);
    assert!(
        !neither.status.success(),
        "a tenant or --all-tenants is needed"
    );

    let listed: Value = serde_json::from_str(&ok(&["user", "list", "--json"], &db, None)).unwrap();
    assert_eq!(listed[0]["name"], "alice");
    assert_eq!(listed[0]["operator"], false);
    assert_eq!(
        listed[0]["tenants"],
        serde_json::json!([{"id": CONTOSO, "write": true}])
    );
    assert_eq!(listed[1]["name"], "ops");
    assert_eq!(listed[1]["operator"], true);
    let text = ok(&["user", "list"], &db, None);
    assert!(!text.contains(password) && !text.contains(&ops_password));

    // A granted tenant is known; it gets a display name.
    ok(
        &[
            "tenant",
            "rename",
            "--tenant",
            CONTOSO,
            "--name",
            "Contoso Ltd",
        ],
        &db,
        None,
    );
    ok(
        &[
            "tenant", "rename", "--tenant", FABRIKAM, "--name", "Fabrikam",
        ],
        &db,
        None,
    );
    let tenants: Value =
        serde_json::from_str(&ok(&["tenant", "list", "--json"], &db, None)).unwrap();
    assert_eq!(
        tenants,
        serde_json::json!([
            {"id": CONTOSO, "displayName": "Contoso Ltd"},
            {"id": FABRIKAM, "displayName": "Fabrikam"}
        ])
    );

    // The file holds neither password.
    let bytes = std::fs::read(&db).unwrap();
    let file = String::from_utf8_lossy(&bytes);
    assert!(!file.contains(password) && !file.contains(&ops_password));

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Server(
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until_up(&base).await;
    assert_eq!(sign_in(&base, "alice", password).await, 303);
    assert_eq!(sign_in(&base, "ops", &ops_password).await, 303);
    assert_eq!(sign_in(&base, "alice", "wrong password").await, 401);

    let changed = ok(&["user", "passwd", "--name", "alice"], &db, None);
    let new_password = changed
        .lines()
        .find_map(|line| line.strip_prefix("password: "))
        .unwrap()
        .to_owned();
    assert_eq!(sign_in(&base, "alice", password).await, 401);
    assert_eq!(sign_in(&base, "alice", &new_password).await, 303);
    ok(&["user", "remove", "--name", "alice"], &db, None);
    assert_eq!(sign_in(&base, "alice", &new_password).await, 401);
    let gone = run(&["user", "remove", "--name", "alice"], &db, None);
    assert!(!gone.status.success());
}

/// Starts `demo` on free ports in `dir`; the server and the admin password it printed.
async fn start_demo(dir: &Path) -> (Server, String, String) {
    let (port, tls_port) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--days",
            "3",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--tls-listen", &format!("127.0.0.1:{tls_port}")])
        .arg("--database")
        .arg(format!("sqlite://{}", dir.join("demo.db").display()))
        .arg("--key-file")
        .arg(dir.join("reportroot.key"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (url, password) = tokio::task::spawn_blocking(move || {
        let mut url = None;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("== Dashboard: ") {
                url = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("sign in as admin with password ") {
                let password = rest.split_whitespace().next().unwrap().to_owned();
                return (url.unwrap(), password);
            }
        }
        panic!("the demo printed no admin password");
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(url, format!("{base}/dashboard"));
    wait_until_up(&base).await;
    (server, base, password)
}

#[tokio::test]
async fn the_demo_prints_an_operator_that_signs_in_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base, password) = start_demo(dir.path()).await;
    assert_eq!(sign_in(&base, "admin", &password).await, 303);
    let kept = std::fs::read_to_string(dir.path().join("reportroot-demo-admin.txt")).unwrap();
    assert_eq!(kept.trim(), password);
    drop(server);

    let (_server, base, again) = start_demo(dir.path()).await;
    assert_eq!(again, password, "the same password after a restart");
    assert_eq!(sign_in(&base, "admin", &password).await, 303);
    let tenants: Value = serde_json::from_str(&ok(
        &["tenant", "list", "--json"],
        &dir.path().join("demo.db"),
        None,
    ))
    .unwrap();
    let names: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Contoso", "Fabrikam"]);
}
