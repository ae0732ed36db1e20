//! `import`, `export` and `sync` through the real binary.
#![expect(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reportroot_api::{auth, ApiConfig, AppState};
use reportroot_sqlite::{Durability, SqliteStorage};

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");

fn run(args: &[&str], db: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--database")
        .arg(db)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn export(db: &Path, tenant: &str, report: &str) -> String {
    let output = run(&["export", "--tenant", tenant, "--report", report], db);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

const ACTIVATIONS_CRLF: &[u8] = b"\xEF\xBB\xBFReport Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\r\n2025-01-31,MICROSOFT 365 APPS FOR ENTERPRISE,300,250,4\r\n2025-01-31,\"PROJECT, \"\"PRO\"\"\",2,1,0\r\n";
const ACTIVE_LF: &[u8] = b"Report Refresh Date,Office 365,Exchange,OneDrive,SharePoint,Skype For Business,Yammer,Teams,Report Date,Report Period\n2025-01-31,12,8,8,10,0,6,5,2025-01-31,7\n2025-01-31,11,8,8,10,0,6,5,2025-01-30,7\n";
const TEAMS_NEW: &[u8] = b"\xEF\xBB\xBFReport Refresh Date,Web,Windows Phone,Android Phone,iOS,Mac,Windows,Chrome OS,Linux,Report Period\r\n2025-01-31,3,12,12,3,3,7,1,2,7\r\n";
const TEAMS_OLD: &[u8] = b"Report Refresh Date,Web,Windows Phone,Android Phone,iOS,Mac,Windows,Report Period\n2025-01-31,3,12,12,3,3,7,30\n";

/// A bad row after many good ones: the good ones were already being written (the file is
/// parsed while it is written) and must be rolled back.
#[test]
fn a_bad_row_late_in_a_large_file_rolls_back_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let mut csv = String::from(
        "Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\n",
    );
    for n in 0..20_000 {
        csv.push_str(&format!("2025-01-31,PRODUCT {n},{n},1,0\n"));
    }
    csv.push_str("2025-01-31,LAST,1,one,0\n");
    let file = dir.path().join("large.csv");
    std::fs::write(&file, &csv).unwrap();
    let tenant = uuid::Uuid::new_v4().to_string();
    let output = run(
        &["import", "--tenant", &tenant, file.to_str().unwrap()],
        &db,
    );
    assert!(!output.status.success());
    let text = stdout(&output);
    assert!(text.contains(":20002:4: Activated 'one'"), "{text}");
    assert!(text.contains("rejected, nothing written"), "{text}");
    assert_eq!(
        export(&db, &tenant, "office365ActivationsUserCounts")
            .lines()
            .count(),
        1,
        "only the header: nothing written"
    );
    let output = run(
        &[
            "import",
            "--tenant",
            &tenant,
            "--skip-bad-rows",
            file.to_str().unwrap(),
        ],
        &db,
    );
    assert!(
        stdout(&output).contains("20000 inserted"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn import_is_whole_file_idempotent_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let good = dir.path().join("good");
    std::fs::create_dir(&good).unwrap();
    for (name, bytes) in [
        ("a.csv", ACTIVATIONS_CRLF),
        ("b.csv", ACTIVE_LF),
        // The Teams distribution reports of all users and of active users share a header:
        // these files are named as Graph names its downloads, which decides.
        ("TeamsDeviceUsageDistributionUserCounts_D7.csv", TEAMS_NEW),
        ("TeamsDeviceUsageDistributionUserCounts_D30.csv", TEAMS_OLD),
    ] {
        std::fs::write(good.join(name), bytes).unwrap();
    }
    let tenant = uuid::Uuid::new_v4().to_string();
    let output = run(
        &["import", "--tenant", &tenant, good.to_str().unwrap()],
        &db,
    );
    assert!(output.status.success(), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(
        text.contains("4 files (0 rejected): 6 inserted, 0 updated, 0 unchanged"),
        "{text}"
    );
    // Again: nothing changes, and it says so.
    let text = stdout(&run(
        &["import", "--tenant", &tenant, good.to_str().unwrap()],
        &db,
    ));
    assert!(text.contains("nothing changed"), "{text}");
    assert!(
        text.contains("0 inserted, 0 updated, 6 unchanged"),
        "{text}"
    );
    // The old Teams header: Chrome OS and Linux as 0.
    let teams = export(&db, &tenant, "teamsDeviceUsageDistributionUserCounts");
    assert!(
        teams.contains("2025-01-31,3,12,12,3,3,7,0,0,30\r\n"),
        "{teams}"
    );

    // Export then import into another tenant gives the same rows, byte for byte.
    let other = uuid::Uuid::new_v4().to_string();
    for report in [
        "office365ActivationsUserCounts",
        "office365ActiveUserCounts",
        "teamsDeviceUsageDistributionUserCounts",
    ] {
        let exported = export(&db, &tenant, report);
        let file = dir.path().join(format!("{report}.csv"));
        std::fs::write(&file, &exported).unwrap();
        assert!(
            run(&["import", "--tenant", &other, file.to_str().unwrap()], &db)
                .status
                .success()
        );
        assert_eq!(export(&db, &other, report), exported, "{report}");
    }
    assert_eq!(
        export(&db, &tenant, "office365ActivationsUserCounts"),
        String::from_utf8(ACTIVATIONS_CRLF.to_vec()).unwrap(),
        "Graph's own bytes come back out"
    );
}

#[test]
fn malformed_files_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let header = "Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\n";
    let good_row = "2025-01-31,A,1,1,0\n";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "wrong header",
            b"Date,Name,Count\n2025-01-31,A,1\n".to_vec(),
            "names no known report",
        ),
        (
            "bad date",
            format!("{header}{good_row}2025-02-30,B,1,1,0\n").into_bytes(),
            ":3:1: Report Refresh Date",
        ),
        (
            "negative",
            format!("{header}{good_row}2025-01-31,B,-4,1,0\n").into_bytes(),
            ":3:3: Assigned '-4'",
        ),
        (
            "not a number",
            format!("{header}{good_row}2025-01-31,B,x,1,0\n").into_bytes(),
            ":3:3: Assigned 'x'",
        ),
        (
            "extra column",
            format!("{header}{good_row}2025-01-31,B,1,1,0,7\n").into_bytes(),
            ":3: expected 5 fields",
        ),
        (
            "missing column",
            format!("{header}{good_row}2025-01-31,B,1,1\n").into_bytes(),
            ":3: expected 5 fields",
        ),
        (
            "truncated",
            format!("{header}{good_row}2025-01-31,B,1").into_bytes(),
            ":3: expected 5 fields",
        ),
        (
            "not UTF-8",
            [header.as_bytes(), b"2025-01-31,\xff\xfe,1,1,0\n"].concat(),
            "not UTF-8",
        ),
    ];
    let tenant = uuid::Uuid::new_v4().to_string();
    for (what, bytes, expected) in &cases {
        let file = dir.path().join("bad.csv");
        std::fs::write(&file, bytes).unwrap();
        let output = run(
            &["import", "--tenant", &tenant, file.to_str().unwrap()],
            &db,
        );
        assert!(!output.status.success(), "{what}");
        let text = stdout(&output);
        assert!(text.contains(expected), "{what}: {text}");
        assert_eq!(
            export(&db, &tenant, "office365ActivationsUserCounts")
                .lines()
                .count(),
            1,
            "{what}: nothing written"
        );
    }
    // --skip-bad-rows writes the good rows and lists the bad.
    let file = dir.path().join("mixed.csv");
    std::fs::write(&file, format!("{header}{good_row}2025-01-31,B,-4,1,0\n")).unwrap();
    let output = run(
        &[
            "import",
            "--tenant",
            &tenant,
            "--skip-bad-rows",
            file.to_str().unwrap(),
        ],
        &db,
    );
    let text = stdout(&output);
    assert!(
        text.contains("1 inserted") && text.contains("1 rows rejected"),
        "{text}"
    );
    assert_eq!(
        export(&db, &tenant, "office365ActivationsUserCounts")
            .lines()
            .count(),
        2
    );
}

/// A proxy in front of the upstream that answers 429, then 503, then passes requests on.
async fn faulty_proxy(upstream: String) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let client = client.clone();
        let upstream = upstream.clone();
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            use axum::response::IntoResponse;
            match n {
                0 => {
                    return (
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1")],
                        "slow down",
                    )
                        .into_response()
                }
                1 => {
                    return (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        [("retry-after", "1")],
                        "busy",
                    )
                        .into_response()
                }
                _ => {}
            }
            let url = format!("{upstream}{}", request.uri());
            let mut forwarded = client.get(url);
            if let Some(auth) = request.headers().get("authorization") {
                forwarded = forwarded.header("authorization", auth.to_str().unwrap());
            }
            let response = forwarded.send().await.unwrap();
            let status = axum::http::StatusCode::from_u16(response.status().as_u16()).unwrap();
            let location = response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = response.bytes().await.unwrap();
            let mut answer = (status, body).into_response();
            if let Some(location) = location {
                answer
                    .headers_mut()
                    .insert("location", location.parse().unwrap());
            }
            answer
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), calls)
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_pulls_every_report_through_faults_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    // The upstream: a reportroot with a tenant's data.
    let secret = b"upstream-secret".to_vec();
    let upstream_db = dir.path().join("upstream.db");
    let storage = Arc::new(SqliteStorage::open(&upstream_db, Durability::Process).unwrap());
    let tenant = uuid::Uuid::new_v4();
    let tenant_id = reportroot_model::TenantId(tenant);
    for report in reportroot_model::REPORTS {
        let rows = reportroot_model::demo::demo_rows(
            report,
            reportroot_model::demo::DemoTenant {
                seed: 3,
                users: 100,
            },
            reportroot_model::Date::parse("2025-03-10").unwrap(),
            2,
        );
        reportroot_storage::Storage::upsert_many(storage.as_ref(), tenant_id, report, rows)
            .await
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(storage, ApiConfig::new(upstream.clone(), secret.clone()));
    tokio::spawn(reportroot_api::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let (proxy, calls) = faulty_proxy(upstream).await;

    let token = auth::issue_token(
        &secret,
        tenant,
        &["Reports.Read.All".into()],
        600,
        auth::GRAPH_AUDIENCE,
    )
    .unwrap();
    let local = dir.path().join("local.db");
    let sync = |local: std::path::PathBuf, proxy: String, token: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args([
                    "sync",
                    "--from",
                    &format!("{proxy}/v1.0"),
                    "--tenant",
                    &tenant.to_string(),
                    "--token",
                    &token,
                    "--database",
                ])
                .arg(&local)
                .output()
                .unwrap()
        })
    };
    let output = sync(local.clone(), proxy.clone(), token.clone())
        .await
        .unwrap();
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("429") && text.contains("503"), "{text}");
    assert!(text.contains("0 reports failed"), "{text}");
    assert!(calls.load(Ordering::SeqCst) >= 11);
    // The latest report of every function and period is now local, row for row.
    let active = export(&local, &tenant.to_string(), "office365ActiveUserCounts");
    assert_eq!(
        active.lines().count(),
        1 + 7 + 30 + 90 + 180,
        "{}",
        &active[..200]
    );
    // Run again: nothing new, nothing lost.
    let output = sync(local.clone(), proxy, token).await.unwrap();
    let text = stdout(&output);
    assert!(text.contains("sync: 0 inserted, 0 updated"), "{text}");
}

/// A bad row is reported at the file's own line (the header is line 1), in Graph's CRLF
/// with a byte order mark as in plain LF.
#[test]
fn bad_rows_are_reported_at_the_files_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let tenant = uuid::Uuid::new_v4().to_string();
    for (what, bom, end) in [("CRLF", "\u{feff}", "\r\n"), ("LF", "", "\n")] {
        let mut lines = vec![
            "Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation"
                .to_owned(),
        ];
        lines.extend((2..=18).map(|n| format!("2025-01-31,P{n},1,1,0")));
        lines.push("2025-01-31,BAD,x,1,0".into()); // line 19
        let file = dir.path().join("bad.csv");
        std::fs::write(&file, format!("{bom}{}{end}", lines.join(end))).unwrap();
        let output = run(
            &["import", "--tenant", &tenant, file.to_str().unwrap()],
            &db,
        );
        let text = stdout(&output);
        assert!(
            text.contains("bad.csv:19:3: Assigned 'x'"),
            "{what}: {text}"
        );
    }
}

#[test]
fn export_refuses_a_database_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.db");
    let tenant = uuid::Uuid::new_v4().to_string();
    let output = run(
        &[
            "export",
            "--tenant",
            &tenant,
            "--report",
            "office365ActivationsUserCounts",
        ],
        &db,
    );
    assert!(!output.status.success());
    assert!(stdout(&output).is_empty(), "no CSV: {}", stdout(&output));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("missing.db: no such database file"),
        "{error}"
    );
    assert!(!db.exists(), "nothing created");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `migrate` says what it did: created, upgraded, or nothing.
#[test]
fn migrate_says_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let version = reportroot_sqlite::SCHEMA_VERSION;
    let said = |db: &Path| {
        let output = run(&["migrate"], db);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout(&output)
    };
    let text = said(&db);
    assert!(
        text.contains(&format!(": created schema version {version}")),
        "{text}"
    );
    let text = said(&db);
    assert!(
        text.contains(&format!(": schema is up to date (version {version})")),
        "{text}"
    );
    // A version 2 file (before the import journal): upgraded in place.
    {
        let connection = rusqlite::Connection::open(&db).unwrap();
        connection
            .execute_batch(
                "DROP TABLE reportroot_imports; DROP TABLE reportroot_import_undo; PRAGMA user_version = 2;",
            )
            .unwrap();
    }
    let text = said(&db);
    assert!(
        text.contains(&format!(": upgraded from version 2 to {version}")),
        "{text}"
    );
    assert!(said(&db).contains("schema is up to date"));
}

/// `seed` says how far it is on standard error (lines when it is not a terminal).
#[test]
fn seed_shows_progress() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let output = run(&["seed", "--tenants", "2", "--days", "3"], &db);
    assert!(output.status.success());
    let progress = String::from_utf8_lossy(&output.stderr);
    assert!(progress.contains("seed: 2 tenants × 3 days"), "{progress}");
    assert!(progress.contains("seed: 2/2 tenants"), "{progress}");
    assert!(stdout(&output).contains("seeded 2 tenants"));
}

/// `export … | head`: the reader closing the pipe early is not a failure.
#[test]
fn export_into_a_pipe_closed_early_succeeds() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let tenant = uuid::Uuid::new_v4().to_string();
    let mut csv = String::from(
        "Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\n",
    );
    // Well over a pipe's 64 KiB buffer, so the writer meets the closed pipe.
    for n in 0..20_000 {
        csv.push_str(&format!("2025-01-31,PRODUCT {n},{n},1,0\n"));
    }
    let file = dir.path().join("large.csv");
    std::fs::write(&file, &csv).unwrap();
    assert!(run(
        &["import", "--tenant", &tenant, file.to_str().unwrap()],
        &db
    )
    .status
    .success());
    let mut child = Command::new(BIN)
        .args([
            "export",
            "--tenant",
            &tenant,
            "--report",
            "office365ActivationsUserCounts",
        ])
        .arg("--database")
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The read end is dropped here, as `head` exits.
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A header several reports share is refused unless the file's name or `--report` says which.
#[test]
fn a_header_of_several_reports_needs_a_name_or_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let tenant = uuid::Uuid::new_v4().to_string();
    let file = dir.path().join("teams.csv");
    std::fs::write(&file, TEAMS_NEW).unwrap();
    let output = run(
        &["import", "--tenant", &tenant, file.to_str().unwrap()],
        &db,
    );
    assert!(!output.status.success());
    let text = stdout(&output);
    assert!(
        text.contains("teams.csv:1: the header is that of several reports (teamsDeviceUsageDistributionUserCounts, teamsDeviceUsageDistributionTotalUserCounts)"),
        "{text}"
    );
    let output = run(
        &[
            "import",
            "--tenant",
            &tenant,
            "--report",
            "getTeamsDeviceUsageDistributionTotalUserCounts",
            file.to_str().unwrap(),
        ],
        &db,
    );
    assert!(output.status.success(), "{}", stdout(&output));
    let total = export(&db, &tenant, "teamsDeviceUsageDistributionTotalUserCounts");
    assert!(
        total.contains("2025-01-31,3,12,12,3,3,7,1,2,7\r\n"),
        "{total}"
    );
    let users = export(&db, &tenant, "teamsDeviceUsageDistributionUserCounts");
    assert_eq!(users.lines().count(), 1, "{users}");
}

/// `reportroot reports` lists the registry: 61 reports, 11 of them only on beta.
#[test]
fn reports_lists_every_report() {
    let output = Command::new(BIN)
        .args(["reports", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), reportroot_model::REPORTS.len());
    let beta_only = reports
        .iter()
        .filter(|r| r["versions"] == serde_json::json!(["beta"]))
        .count();
    assert_eq!((reports.len(), beta_only), (61, 11));
    let table = Command::new(BIN).arg("reports").output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains(
        "| office365ActiveUserCounts | getOffice365ActiveUserCounts(period='D7') | v1.0, beta | per day | 10 / 10 |"
    ), "{table}");
}

/// README's "Reports served" table is `reportroot reports`' output.
#[test]
fn readme_lists_the_reports_served() {
    let table = Command::new(BIN).arg("reports").output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(
        readme.contains(&table),
        "README.md's table differs from `reportroot reports`: paste its output"
    );
}

/// Graph's exports leave count cells empty where it has no figure: import keeps them empty
/// (never 0) for every report, and export gives Graph's bytes back.
#[test]
fn empty_cells_are_imported_empty_and_exported_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let files: [(&str, &str, &[u8]); 4] = [
        (
            "EmailActivityCounts_D7.csv",
            "emailActivityCounts",
            b"\xEF\xBB\xBFReport Refresh Date,Send,Receive,Read,Meeting Created,Meeting Interacted,Report Date,Report Period\r\n2023-01-24,,2,,0,,2023-01-18,7\r\n",
        ),
        (
            "Office365ActivationsUserCounts.csv",
            "office365ActivationsUserCounts",
            b"\xEF\xBB\xBFReport Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\r\n2025-01-31,MICROSOFT 365 APPS FOR ENTERPRISE,300,,4\r\n2025-01-31,PROJECT,,,\r\n",
        ),
        (
            "Office365ActiveUserCounts_D7.csv",
            "office365ActiveUserCounts",
            b"\xEF\xBB\xBFReport Refresh Date,Office 365,Exchange,OneDrive,SharePoint,Skype For Business,Yammer,Teams,Report Date,Report Period\r\n2025-01-31,12,,8,10,,6,5,2025-01-30,7\r\n",
        ),
        (
            "TeamsDeviceUsageDistributionUserCounts_D7.csv",
            "teamsDeviceUsageDistributionUserCounts",
            b"\xEF\xBB\xBFReport Refresh Date,Web,Windows Phone,Android Phone,iOS,Mac,Windows,Chrome OS,Linux,Report Period\r\n2025-01-31,3,,12,3,3,7,,2,7\r\n",
        ),
    ];
    let tenant = uuid::Uuid::new_v4().to_string();
    for (name, report, bytes) in files {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let output = run(
            &["import", "--tenant", &tenant, file.to_str().unwrap()],
            &db,
        );
        assert!(
            output.status.success(),
            "{report}: {}{}",
            stdout(&output),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            export(&db, &tenant, report).as_bytes(),
            bytes,
            "{report}: Graph's own bytes come back out"
        );
        // Again: an empty cell equals the stored null, so nothing changes.
        let again = stdout(&run(
            &["import", "--tenant", &tenant, file.to_str().unwrap()],
            &db,
        ));
        assert!(again.contains("nothing changed"), "{report}: {again}");
    }
}

/// A failure says what the command was doing and every cause, once: a refused PostgreSQL
/// connection names the host, port and the operating system's reason.
#[test]
fn errors_name_their_cause() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let output = Command::new(BIN)
        .args(["migrate", "--database", "postgres://u:p@127.0.0.1:1/db"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.starts_with("reportroot: cannot open the PostgreSQL database: "),
        "{error}"
    );
    assert!(
        error.contains("cannot connect to PostgreSQL at 127.0.0.1:1: "),
        "{error}"
    );
    assert!(error.contains("refused"), "{error}");
    assert_eq!(error.matches("cannot connect").count(), 1, "{error}");

    let missing = Command::new(BIN)
        .args(["reports", "--config", "/nonexistent/reportroot.toml"])
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&missing.stderr);
    // The config file's name, then the operating system's reason (its io::Error, the cause).
    assert!(
        error.contains("cannot read config file /nonexistent/reportroot.toml: No such file"),
        "{error}"
    );
}

/// An export longer than one statement's page (10,000 rows) is read in keyset pages: every
/// row exactly once, as CSV and as JSON, and the CSV imports back to the same bytes.
#[test]
fn an_export_of_several_pages_has_every_row_once_and_imports_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let report = "office365ActiveUserCounts";
    let seeded = run(
        &[
            "seed",
            "--tenants",
            "1",
            "--days",
            "40",
            "--periods",
            "D7,D30,D90,D180",
            "--reports",
            report,
        ],
        &db,
    );
    assert!(seeded.status.success());
    // "seeded 1 tenants × 40 days: 12280 rows in …"
    let rows: usize = stdout(&seeded)
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(rows > 10_000, "{rows}");
    let tenant = "5eed0000-0000-0001-0000-000000000000";
    let exported = export(&db, tenant, report);
    let lines: Vec<&str> = exported.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), rows + 1, "a header and every row");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("Report Refresh Date"))
            .count(),
        1
    );
    let distinct: std::collections::HashSet<&&str> = lines.iter().collect();
    assert_eq!(distinct.len(), lines.len(), "no row twice");
    let json = run(
        &[
            "export", "--tenant", tenant, "--report", report, "--format", "json",
        ],
        &db,
    );
    assert!(json.status.success());
    let body: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let values = body["value"].as_array().unwrap();
    assert_eq!(values.len(), rows);
    let distinct: std::collections::HashSet<String> =
        values.iter().map(|v| v.to_string()).collect();
    assert_eq!(
        distinct.len(),
        rows,
        "no row twice in the JSON pages either"
    );
    let file = dir.path().join("export.csv");
    std::fs::write(&file, &exported).unwrap();
    let other = uuid::Uuid::new_v4().to_string();
    assert!(
        run(&["import", "--tenant", &other, file.to_str().unwrap()], &db)
            .status
            .success()
    );
    assert_eq!(export(&db, &other, report), exported);
}
