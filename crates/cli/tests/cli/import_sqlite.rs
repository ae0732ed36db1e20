//! `import` into SQLite beside other writers: other processes open and write the database
//! while a large import runs, and an import killed half-way is undone at the next open.
#![expect(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reportroot_model::{find_report, Date, TenantId, Value};
use reportroot_sqlite::{Durability, SqliteStorage};
use reportroot_storage::{ListQuery, NewEntity, Storage};
use rusqlite::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");
const HEADER: &str =
    "Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\n";
/// Rows of the large file: enough for several seconds of import in a debug build.
const LARGE_ROWS: usize = 300_000;

fn run(args: &[&str], db: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--database")
        .arg(db)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// An activations CSV: products `first..first + rows`, Assigned = `assigned(n)`.
fn activations_csv(path: &Path, first: usize, rows: usize, assigned: impl Fn(usize) -> usize) {
    let mut csv = String::from(HEADER);
    for n in first..first + rows {
        csv.push_str(&format!("2025-01-31,PRODUCT {n},{},1,0\n", assigned(n)));
    }
    std::fs::write(path, csv).unwrap();
}

fn spawn_import(db: &Path, tenant: &str, file: &Path) -> Child {
    Command::new(BIN)
        .args(["import", "--tenant", tenant, "--database"])
        .arg(db)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Rows of `tenant` in the activations table, read on a plain connection.
fn stored_rows(connection: &Connection, tenant: &str) -> usize {
    let tenant = uuid::Uuid::parse_str(tenant).unwrap();
    let table = find_report("office365ActivationsUserCounts")
        .unwrap()
        .table_name();
    connection
        .query_row(
            &format!("SELECT count(*) FROM {table} WHERE tenant_id = ?1"),
            [tenant],
            |row| row.get(0),
        )
        .unwrap()
}

fn lock_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".lock"))
        .collect()
}

/// Waits (bounded) until the tenant has more than `before` rows but fewer than `total`: a
/// running import's rows are partly visible.
fn wait_for_partial_import(
    connection: &Connection,
    tenant: &str,
    (before, total): (usize, usize),
    child: &mut Child,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = stored_rows(connection, tenant);
        if rows > before && rows < total {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended ({rows} rows) before any of it was seen in progress"
        );
        assert!(Instant::now() < deadline, "no rows after 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_killed_half_way_is_undone_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let tenant = uuid::Uuid::new_v4().to_string();
    // Rows the import will update (they come first in the large file): their old values and
    // versions must come back.
    let small = dir.path().join("small.csv");
    activations_csv(&small, 0, 100, |_| 7);
    assert!(run(
        &["import", "--tenant", &tenant, small.to_str().unwrap()],
        &db
    )
    .status
    .success());
    let report = find_report("office365ActivationsUserCounts").unwrap();
    let before = {
        let storage = SqliteStorage::open(&db, Durability::Process).unwrap();
        storage
            .list(
                TenantId(tenant.parse().unwrap()),
                report,
                &ListQuery::default(),
            )
            .await
            .unwrap()
    };

    let large = dir.path().join("large.csv");
    activations_csv(&large, 0, LARGE_ROWS, |n| n + 1);
    let connection = Connection::open(&db).unwrap();
    connection.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut child = spawn_import(&db, &tenant, &large);
    wait_for_partial_import(&connection, &tenant, (100, LARGE_ROWS), &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = stored_rows(&connection, &tenant);
    assert!(
        partial > 100,
        "the killed import had committed rows: {partial}"
    );
    assert_eq!(lock_files(dir.path()).len(), 1, "its lock file is left");

    // The next open (any command) undoes it: the rows and versions from before.
    let storage = SqliteStorage::open(&db, Durability::Process).unwrap();
    let after = storage
        .list(
            TenantId(tenant.parse().unwrap()),
            report,
            &ListQuery::default(),
        )
        .await
        .unwrap();
    // (Not assert_eq!: a failure would print 300,000 rows.)
    assert!(
        after == before,
        "{} rows after the recovery, {} before the import",
        after.len(),
        before.len()
    );
    assert!(
        lock_files(dir.path()).is_empty(),
        "{:?}",
        lock_files(dir.path())
    );
    let journal: i64 = connection
        .query_row("SELECT count(*) FROM reportroot_import_undo", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(journal, 0, "the journal is emptied");
}

#[tokio::test(flavor = "multi_thread")]
async fn other_writers_make_progress_during_a_large_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let storage = SqliteStorage::open(&db, Durability::Process).unwrap();
    let report = find_report("office365ActivationsUserCounts").unwrap();
    let large = dir.path().join("large.csv");
    activations_csv(&large, 0, LARGE_ROWS, |n| n);
    let importer = uuid::Uuid::new_v4().to_string();
    let connection = Connection::open(&db).unwrap();
    connection.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut child = spawn_import(&db, &importer, &large);
    wait_for_partial_import(&connection, &importer, (0, LARGE_ROWS), &mut child);

    // API-style writes from this process while the import runs: every one succeeds, and
    // several land between two of the import's transactions (with rows of the file still to
    // come). Each waits up to one transaction (~100 ms): 5 take about 0.5 s of an import that
    // lasts seconds in a debug build. (Before, none could: the file was one transaction.)
    let writer = TenantId(uuid::Uuid::new_v4());
    let date = Value::Date(Date::parse("2025-01-31").unwrap());
    let (mut during, mut n) = (0, 0);
    while child.try_wait().unwrap().is_none() && during < 5 {
        n += 1;
        let values = vec![
            date.clone(),
            Value::Text(format!("API {n}")),
            Value::Int(1),
            Value::Int(1),
            Value::Int(0),
        ];
        let written = storage
            .insert(writer, report, NewEntity { id: None, values })
            .await;
        assert!(written.is_ok(), "write {n}: {:?}", written.err());
        let imported = stored_rows(&connection, &importer);
        if imported < LARGE_ROWS {
            during += 1;
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(
        during >= 5,
        "only {during} of {n} writes went in while the import ran"
    );
    assert_eq!(stored_rows(&connection, &importer), LARGE_ROWS);
}

/// A command opening the database while another process holds its write lock (a server
/// writing, say) waits for the lock instead of failing with "database is locked".
#[test]
fn import_export_and_migrate_wait_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let tenant = uuid::Uuid::new_v4().to_string();
    let file = dir.path().join("a.csv");
    activations_csv(&file, 0, 10, |n| n);
    assert!(run(&["migrate"], &db).status.success());
    for round in 0..3 {
        for args in [
            vec!["import", "--tenant", &tenant, file.to_str().unwrap()],
            vec![
                "export",
                "--tenant",
                &tenant,
                "--report",
                "office365ActivationsUserCounts",
            ],
            vec!["migrate"],
        ] {
            let holder = Connection::open(&db).unwrap();
            holder.busy_timeout(Duration::from_secs(10)).unwrap();
            holder
                .execute_batch(
                    "CREATE TABLE IF NOT EXISTS busy_probe (n INTEGER); \
                     BEGIN IMMEDIATE; INSERT INTO busy_probe VALUES (1);",
                )
                .unwrap();
            let release = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(700));
                holder.execute_batch("COMMIT").unwrap();
            });
            let output = run(&args, &db);
            assert!(
                output.status.success(),
                "round {round}, {}: {}",
                args[0],
                text(&output)
            );
            release.join().unwrap();
        }
    }
}
