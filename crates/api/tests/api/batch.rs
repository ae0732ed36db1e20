//! JSON batching and `$metadata` over real HTTP.
#![expect(clippy::unwrap_used)]

use crate::common;

use common::*;
use serde_json::{json, Value};

on_both_backends!(
    batch_runs_items_with_the_callers_token,
    malformed_batches_fail_whole,
    metadata_is_public_csdl
);

async fn batch(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.post("/v1.0/$batch", token, body).await
}

async fn batch_runs_items_with_the_callers_token(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let (t, other) = (tenant(), tenant());
    let body = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/reports/office365ActivationsUserCounts",
         "headers": {"Content-Type": "application/json"}, "body": activation("2025-04-01", "VISIO CLIENT")},
        {"id": "2", "method": "GET", "url": "reports/office365ActivationsUserCounts?$select=productType", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/reports/office365ActivationsUserCounts/00000000-0000-0000-0000-000000000001"},
        {"id": "4", "method": "GET", "url": "/reports/office365ActivationsUserCounts", "dependsOn": ["3"]},
        {"id": "5", "method": "POST", "url": "/reports/office365ActivationsUserCounts",
         "headers": {"Content-Type": "application/json"}, "body": {"assigned": "Integer"}},
        {"id": "6", "method": "GET", "url": "/reports/getOffice365ActivationsUserCounts"}
    ]});
    let response = batch(&app, &t.write, &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let responses = answer["responses"].as_array().unwrap();
    let by_id = |id: &str| responses.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(responses.len(), 6);
    assert_eq!(by_id("1")["status"], 201);
    assert_eq!(by_id("1")["body"]["productType"], "VISIO CLIENT");
    assert!(by_id("1")["headers"]["Location"].is_string());
    assert_eq!(by_id("2")["status"], 200);
    assert_eq!(
        by_id("2")["body"]["value"][0]["productType"],
        "VISIO CLIENT"
    );
    assert_eq!(by_id("3")["status"], 404);
    assert_eq!(by_id("3")["body"]["error"]["code"], "itemNotFound");
    assert_eq!(by_id("4")["status"], 424);
    assert_eq!(by_id("5")["status"], 400);
    assert_eq!(by_id("6")["status"], 302);
    // The row belongs to the caller's tenant only.
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &t.read)
            .await,
        1
    );
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &other.read)
            .await,
        0
    );
    // A read token cannot write through a batch either.
    let answer: Value = batch(&app, &t.read, &json!({"requests": [
        {"id": "a", "method": "POST", "url": "/reports/office365ActivationsUserCounts",
         "headers": {"Content-Type": "application/json"}, "body": activation("2025-04-02", "VISIO CLIENT")}
    ]})).await.json().await.unwrap();
    assert_eq!(answer["responses"][0]["status"], 403);
}

async fn malformed_batches_fail_whole(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    let get = |id: &str, depends: &[&str]| json!({"id": id, "method": "GET", "url": "/reports/office365ActivationsUserCounts", "dependsOn": depends});
    let too_many: Vec<Value> = (0..21).map(|i| get(&i.to_string(), &[])).collect();
    for (what, body) in [
        ("21 requests", json!({"requests": too_many})),
        (
            "duplicate id",
            json!({"requests": [get("1", &[]), get("1", &[])]}),
        ),
        (
            "cycle",
            json!({"requests": [get("1", &["2"]), get("2", &["1"])]}),
        ),
        ("self cycle", json!({"requests": [get("1", &["1"])]})),
        (
            "unknown dependency",
            json!({"requests": [get("1", &["9"])]}),
        ),
        ("no requests", json!({"requests": []})),
        ("not a batch", json!({"items": []})),
        (
            "missing url",
            json!({"requests": [{"id": "1", "method": "GET"}]}),
        ),
    ] {
        let message = assert_error(batch(&app, &t.write, &body).await, 400, "BadRequest").await;
        assert!(!message.is_empty(), "{what}");
    }
    assert_error(
        app.post(
            "/v1.0/$batch",
            "not-a-token",
            &json!({"requests": [get("1", &[])]}),
        )
        .await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
}

async fn metadata_is_public_csdl(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    for (version, function_return) in [
        ("v1.0", "Edm.Stream"),
        (
            "beta",
            "Collection(microsoft.graph.office365ActiveUserCounts)",
        ),
    ] {
        let response = app
            .client
            .get(app.url(&format!("/{version}/$metadata")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/xml");
        let xml = response.text().await.unwrap();
        assert!(xml.starts_with("<?xml"));
        assert!(xml.contains("<Schema Namespace=\"microsoft.graph\""));
        assert!(xml.contains("<EntitySet Name=\"teamsDeviceUsageDistributionUserCounts\""));
        assert!(xml.contains("<Parameter Name=\"period\" Type=\"Edm.String\""));
        assert!(xml.contains(function_return), "{version}");
    }
}
