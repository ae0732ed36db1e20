//! The report-answer cache: an answer outlives the check interval while the tenant's rows
//! stay as they are; a write by another storage handle (another instance, a CLI `import` into
//! the same SQLite file) shows once the interval has passed; a write through the API at once.
#![expect(clippy::unwrap_used)]

use std::time::Duration;

use crate::common;

use common::*;
use reportroot_model::{find_report, Date, TenantId, Value};

const FUNCTION: &str = "/beta/reports/getOffice365ActivationsUserCounts?$format=application/json";
const SET: &str = "/v1.0/reports/office365ActivationsUserCounts";
/// Short, so that the test waits little; every wait below is at least twice as long.
const INTERVAL: Duration = Duration::from_millis(100);

on_both_backends!(answers_live_until_the_tenant_changes);

/// A counter of the server's metrics.
async fn counter(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics_text().await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

async fn answer(app: &TestApp, token: &str) -> String {
    let response = app.get(FUNCTION, token).await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn answers_live_until_the_tenant_changes(backend: Backend) {
    let Some(app) = spawn(backend, |config| {
        config.metrics = true;
        config.answer_check_interval = INTERVAL;
    })
    .await
    else {
        return;
    };
    let t = tenant();
    let created = app
        .post(SET, &t.write, &activation("2025-05-01", "VISIO CLIENT"))
        .await;
    assert_eq!(created.status(), 201);
    let first = answer(&app, &t.read).await;
    assert!(first.contains("VISIO CLIENT"), "{first}");

    // Past the interval and nothing written: still the kept answer, after one version read.
    tokio::time::sleep(INTERVAL * 3).await;
    let (hits, checks) = (
        counter(&app, "reportroot_answer_cache_hits_total").await,
        counter(&app, "reportroot_answer_cache_version_checks_total").await,
    );
    assert_eq!(answer(&app, &t.read).await, first);
    assert_eq!(
        counter(&app, "reportroot_answer_cache_hits_total").await,
        hits + 1.0
    );
    assert_eq!(
        counter(&app, "reportroot_answer_cache_version_checks_total").await,
        checks + 1.0
    );

    // Another handle on the same database (a CLI import, another instance) adds a row of the
    // same refresh: shown once the interval has passed.
    let other = open_storage(&app.db).await;
    let report = find_report("office365ActivationsUserCounts").unwrap();
    let row = vec![
        Value::Date(Date::parse("2025-05-01").unwrap()),
        Value::Text("PROJECT CLIENT".into()),
        Value::Int(1),
        Value::Int(1),
        Value::Int(0),
    ];
    other
        .upsert_many(TenantId(t.id), report, vec![row])
        .await
        .unwrap();
    tokio::time::sleep(INTERVAL * 3).await;
    let after_import = answer(&app, &t.read).await;
    assert!(after_import.contains("PROJECT CLIENT"), "{after_import}");

    // A write through the API shows at once (the interval is not waited for).
    let created = app
        .post(SET, &t.write, &activation("2025-05-01", "ACCESS CLIENT"))
        .await;
    assert_eq!(created.status(), 201);
    let after_post = answer(&app, &t.read).await;
    assert!(after_post.contains("ACCESS CLIENT"), "{after_post}");
    drop(other);
    app.stop().await;
}
