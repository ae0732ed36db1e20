//! What an adversarial client and real Graph clients found: token lifetimes and audiences,
//! `$batch` nesting, identity and fidelity, single-entity options, method and body errors.
#![expect(clippy::unwrap_used)]

use crate::common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// A token with the given extra claims, signed with the test secret.
fn token_with(tenant: Uuid, claims: Value) -> String {
    let now = reportroot_api::auth::unix_now();
    let mut all = json!({
        "tid": tenant.to_string(),
        "aud": "https://graph.microsoft.com",
        "exp": now + 3600,
        "roles": ["Reports.ReadWrite.All"],
    });
    for (key, value) in claims.as_object().unwrap() {
        all[key] = value.clone();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &all,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

#[tokio::test]
async fn tokens_not_yet_valid_are_refused_and_audience_lists_accepted() {
    let app = spawn_app().await;
    let t = tenant();
    let now = reportroot_api::auth::unix_now();
    for nbf in [now + 3600, now + 10 * 365 * 86400] {
        let early = token_with(t.id, json!({ "nbf": nbf }));
        let read = app
            .get("/v1.0/reports/office365ActivationsUserCounts", &early)
            .await;
        let message = assert_error(read, 401, "InvalidAuthenticationToken").await;
        assert!(message.contains("not yet valid"), "{message}");
        let write = app
            .post(
                "/v1.0/reports/office365ActivationsUserCounts",
                &early,
                &activation("2025-01-01", "VISIO CLIENT"),
            )
            .await;
        assert_error(write, 401, "InvalidAuthenticationToken").await;
    }
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &t.read)
            .await,
        0
    );
    let ok = token_with(t.id, json!({ "nbf": now - 60 }));
    let response = app
        .get("/v1.0/reports/office365ActivationsUserCounts", &ok)
        .await;
    assert_eq!(response.status(), 200);
    let listed = token_with(
        t.id,
        json!({ "aud": ["api://other", "https://graph.microsoft.com"] }),
    );
    let response = app
        .get("/v1.0/reports/office365ActivationsUserCounts", &listed)
        .await;
    assert_eq!(response.status(), 200);
    let foreign = token_with(t.id, json!({ "aud": ["api://other", "api://another"] }));
    let response = app
        .get("/v1.0/reports/office365ActivationsUserCounts", &foreign)
        .await;
    assert_error(response, 401, "InvalidAuthenticationToken").await;
}

async fn batch_text(app: &TestApp, token: &str, body: &Value) -> String {
    let response = app.post("/v1.0/$batch", token, body).await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn batches_cannot_nest_however_the_url_is_spelled() {
    let app = spawn_app().await;
    let t = tenant();
    let inner = json!({"requests": [
        {"id": "i", "method": "POST", "url": "/reports/office365ActivationsUserCounts",
         "headers": {"Content-Type": "application/json"}, "body": activation("2025-02-01", "VISIO CLIENT")}
    ]});
    let urls = [
        "/$batch",
        "$batch",
        "/%24batch",
        "%24batch",
        "/%24BATCH",
        "/$Batch?x=1",
        "//%24batch",
    ];
    let requests: Vec<Value> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            json!({"id": i.to_string(), "method": "POST", "url": url,
                   "headers": {"Content-Type": "application/json"}, "body": inner})
        })
        .collect();
    let text = batch_text(&app, &t.write, &json!({ "requests": requests })).await;
    let answer: Value = serde_json::from_str(&text).unwrap();
    for item in answer["responses"].as_array().unwrap() {
        assert_eq!(item["status"], 400, "{item}");
        assert!(
            item["body"]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("batch cannot contain a batch"),
            "{item}"
        );
    }
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &t.read)
            .await,
        0
    );
}

#[tokio::test]
async fn batch_items_run_as_the_caller_whatever_their_own_authorization() {
    let app = spawn_app().await;
    let (caller, other) = (tenant(), tenant());
    let item = |id: &str, date: &str| {
        json!({"id": id, "method": "POST", "url": "/reports/office365ActivationsUserCounts",
               "headers": {"Content-Type": "application/json", "Authorization": format!("Bearer {}", other.write)},
               "body": activation(date, "VISIO CLIENT")})
    };
    // A read-only caller cannot write by carrying a write token inside an item.
    let text = batch_text(
        &app,
        &caller.read,
        &json!({"requests": [item("1", "2025-03-01")]}),
    )
    .await;
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["responses"][0]["status"], 403, "{answer}");
    // A writing caller writes into its own tenant, not the item token's.
    let text = batch_text(
        &app,
        &caller.write,
        &json!({"requests": [item("2", "2025-03-02")]}),
    )
    .await;
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["responses"][0]["status"], 201, "{answer}");
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &caller.read)
            .await,
        1
    );
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &other.read)
            .await,
        0
    );
}

#[tokio::test]
async fn batch_items_as_graph_docs_write_them_and_answers_as_graph_sends_them() {
    let app = spawn_app().await;
    let t = tenant();
    let created = app
        .post(
            "/v1.0/reports/office365ActivationsUserCounts",
            &t.write,
            &activation("2025-04-01", "VISIO CLIENT"),
        )
        .await;
    assert_eq!(created.status(), 201);
    let direct = created.text().await.unwrap();
    let id = serde_json::from_str::<Value>(&direct).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"requests": [
        // No leading slash, literal spaces, as on Graph's JSON-batching page.
        {"id": "1", "method": "GET",
         "url": "reports/office365ActivationsUserCounts?$select=id,productType&$filter=productType eq 'VISIO CLIENT'&$count=true"},
        {"id": "2", "method": "GET", "url": format!("/reports/office365ActivationsUserCounts/{id}")},
        {"id": "3", "method": "GET", "url": "/reports/office365ActivationsUserCounts/00000000-0000-0000-0000-000000000001",
         "headers": {"client-request-id": "not-a-guid-but-the-clients"}},
        {"id": "4", "method": "GET", "url": "/reports/nope"},
        // As Microsoft's JavaScript client cuts an absolute url: scheme and host only.
        {"id": "5", "method": "GET", "url": "/v1.0/reports/office365ActivationsUserCounts/$count"}
    ]});
    let text = batch_text(&app, &t.read, &body).await;
    let answer: Value = serde_json::from_str(&text).unwrap();
    let responses = answer["responses"].as_array().unwrap();
    let by_id = |id: &str| responses.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(by_id("1")["status"], 200, "{answer}");
    assert_eq!(by_id("1")["body"]["@odata.count"], 1);
    assert_eq!(
        by_id("1")["body"]["value"][0]["productType"],
        "VISIO CLIENT"
    );
    let headers = &by_id("2")["headers"];
    assert!(
        headers["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("application/json"),
        "{headers}"
    );
    assert_eq!(headers["OData-Version"], "4.0");
    assert!(headers["ETag"].is_string(), "{headers}");
    assert!(headers.get("content-type").is_none(), "{headers}");
    // Each answer is id, status, headers, body, in that order; the body keeps the property
    // order of the same request made directly.
    let order = |haystack: &str, keys: &[&str]| {
        let positions: Vec<usize> = keys.iter().map(|k| haystack.find(k).unwrap()).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{keys:?} in {haystack}"
        );
    };
    order(&text, &["\"id\"", "\"status\"", "\"headers\"", "\"body\""]);
    let start = text.find("\"id\":\"2\"").unwrap();
    let entity_text = &text[start..];
    order(
        entity_text,
        &[
            "\"reportRefreshDate\"",
            "\"productType\"",
            "\"assigned\"",
            "\"activated\"",
            "\"sharedComputerActivation\"",
        ],
    );
    order(
        &direct,
        &[
            "\"reportRefreshDate\"",
            "\"productType\"",
            "\"assigned\"",
            "\"activated\"",
            "\"sharedComputerActivation\"",
        ],
    );
    // Error envelopes carry GUIDs, or the item's own client-request-id, never the item id.
    assert_eq!(by_id("3")["status"], 404);
    assert_eq!(
        by_id("3")["body"]["error"]["innerError"]["client-request-id"],
        "not-a-guid-but-the-clients"
    );
    assert_eq!(by_id("5")["status"], 200, "{answer}");
    assert_eq!(by_id("5")["body"], "1");
    assert_eq!(by_id("4")["status"], 400);
    let inner = &by_id("4")["body"]["error"]["innerError"];
    assert!(
        Uuid::parse_str(inner["client-request-id"].as_str().unwrap()).is_ok(),
        "{inner}"
    );
    assert!(
        Uuid::parse_str(inner["request-id"].as_str().unwrap()).is_ok(),
        "{inner}"
    );
}

#[tokio::test]
async fn batch_item_bodies_with_duplicate_keys_are_refused_as_direct_requests_are() {
    let app = spawn_app().await;
    let t = tenant();
    let body = r#"{"requests": [{"id": "1", "method": "POST", "url": "/reports/office365ActivationsUserCounts",
        "headers": {"Content-Type": "application/json"},
        "body": {"reportRefreshDate": "2025-01-01", "productType": "A", "assigned": 1, "assigned": 2,
                 "activated": 1, "sharedComputerActivation": 1}}]}"#;
    let response = app
        .request(Method::POST, "/v1.0/$batch", &t.write)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["responses"][0]["status"], 400, "{answer}");
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &t.read)
            .await,
        0
    );
}

#[tokio::test]
async fn the_report_root_answers_get_only() {
    let app = spawn_app().await;
    let t = tenant();
    for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
        let response = app
            .request(method.clone(), "/v1.0/reports", &t.write)
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], "GET", "{method}");
        assert_error(response, 405, "BadRequest").await;
    }
    assert_eq!(app.get("/v1.0/reports", &t.read).await.status(), 200);
}

#[tokio::test]
async fn single_entities_take_select_and_refuse_other_options() {
    let app = spawn_app().await;
    let t = tenant();
    let created: Value = app
        .post(
            "/v1.0/reports/office365ActivationsUserCounts",
            &t.write,
            &activation("2025-05-01", "VISIO CLIENT"),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!(
        "/v1.0/reports/office365ActivationsUserCounts/{}",
        created["id"].as_str().unwrap()
    );
    let selected: Value = app
        .get(&format!("{path}?$select=productType,assigned"), &t.read)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(selected["productType"], "VISIO CLIENT");
    assert_eq!(selected["assigned"], 8);
    assert!(selected.get("activated").is_none(), "{selected}");
    for bad in [
        "$select=nope",
        "$select=,,",
        "$expand=anything",
        "$filter=assigned gt 1",
        "$filter=((",
        "$top=1",
        "$orderby=assigned",
        "$count=true",
    ] {
        let response = app.get(&format!("{path}?{bad}"), &t.read).await;
        assert_error(response, 400, "BadRequest").await;
    }
}

#[tokio::test]
async fn functions_answer_namespace_qualified_names() {
    let app = spawn_app().await;
    let t = tenant();
    for path in [
        "/v1.0/reports/microsoft.graph.getOffice365ActiveUserCounts(period='D7')",
        "/v1.0/reports/microsoft.graph.getOffice365ActivationsUserCounts()",
        "/beta/reports/Microsoft.Graph.getTeamsDeviceUsageDistributionUserCounts(period='D30')",
    ] {
        let response = app.get(path, &t.read).await;
        assert_eq!(response.status(), 302, "{path}");
    }
}
