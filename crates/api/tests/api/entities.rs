//! The entity sets over real HTTP: the seed documents' examples, validation, errors, headers,
//! tenant isolation and persistence.
#![expect(clippy::unwrap_used)]

use crate::common;

on_both_backends!(
    seed_examples_create_read_patch_delete,
    client_ids_and_conflicts,
    invalid_bodies_are_refused_and_nothing_is_written,
    limits_paths_and_methods,
    request_ids_are_set_and_echoed,
    tenants_never_see_each_other,
    data_survives_a_restart
);

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const ACTIVATIONS: &str = "office365ActivationsUserCounts";

async fn seed_examples_create_read_patch_delete(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();

    // Seeds 000, 001 and 004: create each type; 201 with Location, @odata.type and a GUID id.
    let bodies = [
        (
            "office365ActivationsUserCounts",
            activation("2025-01-31", "Office 365 ProPlus"),
        ),
        (
            "office365ActiveUserCounts",
            active_users("2025-01-31", "2025-01-30", "D7"),
        ),
        (
            "teamsDeviceUsageDistributionUserCounts",
            teams_devices("2025-01-31", "7"),
        ),
    ];
    let mut ids = Vec::new();
    for (set, body) in &bodies {
        let response = app
            .post(&format!("/v1.0/reports/{set}"), &t.write, body)
            .await;
        assert_eq!(response.status(), 201, "{set}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(response.headers()["odata-version"], "4.0");
        let created: Value = response.json().await.unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok());
        assert_eq!(location, app.url(&format!("/v1.0/reports/{set}/{id}")));
        assert_eq!(created["@odata.type"], body["@odata.type"]);
        assert_eq!(
            created["@odata.context"],
            app.url(&format!("/v1.0/$metadata#reports/{set}/$entity"))
        );
        for (name, value) in body.as_object().unwrap() {
            if name != "reportPeriod" {
                assert_eq!(&created[name], value, "{set}.{name}");
            }
        }
        ids.push(id);
    }
    // "D7" is stored as "7".
    let active: Value = app
        .get(
            &format!("/v1.0/reports/office365ActiveUserCounts/{}", ids[1]),
            &t.read,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(active["reportPeriod"], "7");

    // Seed 003: the collection, with the set name capitalised as the seed writes it.
    let response = app
        .get("/beta/reports/Office365ActivationsUserCounts", &t.read)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["@odata.context"],
        app.url("/beta/$metadata#Collection(microsoft.graph.office365ActivationsUserCounts)")
    );
    assert_eq!(body["value"][0]["reportRefreshDate"], "2025-01-31");
    assert_eq!(body["value"][0]["productType"], "Office 365 ProPlus");
    assert_eq!(body["value"][0]["assigned"], 8);

    // Seed 002: PATCH at the root-level set URL, 200 with the whole updated entity.
    let patch = json!({
        "@odata.type": "#microsoft.graph.office365ActivationsUserCounts",
        "activated": 7,
        "assigned": 11,
        "productType": "Office 365 ProPlus",
        "reportRefreshDate": "2025-01-31",
        "sharedComputerActivation": 1
    });
    let response = app
        .send_json(
            Method::PATCH,
            &format!("/beta/office365ActivationsUserCounts/{}", ids[0]),
            &t.write,
            &patch,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["id"], ids[0].as_str());
    assert_eq!(updated["assigned"], 11);
    assert_eq!(updated["sharedComputerActivation"], 1);
    assert_eq!(updated["@odata.etag"], "W/\"2\"");

    // A partial PATCH keeps the rest.
    let response = app
        .send_json(
            Method::PATCH,
            &format!("/v1.0/reports/{ACTIVATIONS}/{}", ids[0]),
            &t.write,
            &json!({"activated": 3}),
        )
        .await;
    let updated: Value = response.json().await.unwrap();
    assert_eq!(
        (updated["activated"].as_i64(), updated["assigned"].as_i64()),
        (Some(3), Some(11))
    );

    // DELETE, then it is gone.
    for ((set, _), id) in bodies.iter().zip(&ids) {
        let path = format!("/v1.0/reports/{set}/{id}");
        let response = app
            .request(Method::DELETE, &path, &t.write)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        assert_error(app.get(&path, &t.read).await, 404, "itemNotFound").await;
    }
    assert_eq!(app.count_rows(ACTIVATIONS, &t.read).await, 0);
}

async fn client_ids_and_conflicts(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    let path = format!("/v1.0/reports/{ACTIVATIONS}");
    let chosen = uuid::Uuid::new_v4().to_string();
    let mut body = activation("2025-02-01", "VISIO CLIENT");
    body["id"] = json!(chosen);
    let response = app.post(&path, &t.write, &body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["id"], chosen.as_str());

    // Same id, other natural key: 409 naming the id.
    let mut again = activation("2025-02-02", "VISIO CLIENT");
    again["id"] = json!(chosen);
    let message = assert_error(app.post(&path, &t.write, &again).await, 409, "conflict").await;
    assert!(message.contains(&chosen), "{message}");

    // Same natural key, new id: 409 naming the existing id.
    let message = assert_error(
        app.post(&path, &t.write, &activation("2025-02-01", "VISIO CLIENT"))
            .await,
        409,
        "conflict",
    )
    .await;
    assert!(message.contains(&chosen), "{message}");

    // A PATCH that would collide with another row's natural key: 409, nothing changed.
    let other: Value = app
        .post(&path, &t.write, &activation("2025-02-03", "VISIO CLIENT"))
        .await
        .json()
        .await
        .unwrap();
    let other_id = other["id"].as_str().unwrap();
    let response = app
        .send_json(
            Method::PATCH,
            &format!("{path}/{other_id}"),
            &t.write,
            &json!({"reportRefreshDate": "2025-02-01"}),
        )
        .await;
    let message = assert_error(response, 409, "conflict").await;
    assert!(message.contains(&chosen));
    let unchanged: Value = app
        .get(&format!("{path}/{other_id}"), &t.read)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["reportRefreshDate"], "2025-02-03");
    assert_eq!(app.count_rows(ACTIVATIONS, &t.read).await, 2);
}

async fn invalid_bodies_are_refused_and_nothing_is_written(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    let path = format!("/v1.0/reports/{ACTIVATIONS}");
    let valid = activation("2025-03-01", "PROJECT CLIENT");
    let with = |name: &str, value: Value| {
        let mut body = valid.clone();
        body[name] = value;
        body
    };
    let without = |name: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(name);
        body
    };
    let cases: Vec<(&str, Value)> = vec![
        ("missing property", without("assigned")),
        (
            "string for Int64 (seed 002)",
            with("assigned", json!("Integer")),
        ),
        ("fraction", with("assigned", json!(8.5))),
        ("negative count", with("activated", json!(-1))),
        ("beyond i64", json!(null)),
        (
            "placeholder date (seed 000)",
            with("reportRefreshDate", json!("Date")),
        ),
        (
            "impossible date",
            with("reportRefreshDate", json!("2025-02-30")),
        ),
        (
            "datetime",
            with("reportRefreshDate", json!("2025-02-03T00:00:00Z")),
        ),
        ("null", with("productType", Value::Null)),
        ("unknown property", with("color", json!("red"))),
        (
            "wrong @odata.type",
            with("@odata.type", json!("#microsoft.graph.user")),
        ),
        ("non-GUID id", with("id", json!("42"))),
        ("array", json!([valid.clone()])),
    ];
    for (what, body) in cases {
        let text = if what == "beyond i64" {
            valid
                .to_string()
                .replace("\"assigned\":8", "\"assigned\":9223372036854775808")
        } else {
            body.to_string()
        };
        let response = app
            .request(Method::POST, &path, &t.write)
            .header("Content-Type", "application/json")
            .body(text)
            .send()
            .await
            .unwrap();
        let message = assert_error(response, 400, "BadRequest").await;
        assert!(!message.is_empty(), "{what}");
    }
    // Period values: "7"/"30"/"90"/"180", or D-prefixed.
    let periodic = "/v1.0/reports/teamsDeviceUsageDistributionUserCounts";
    for bad in ["Report Period value", "8", "d7", "", "D8"] {
        let response = app
            .post(periodic, &t.write, &teams_devices("2025-03-01", bad))
            .await;
        assert_error(response, 400, "BadRequest").await;
    }
    // Not JSON at all.
    let response = app
        .request(Method::POST, &path, &t.write)
        .header("Content-Type", "application/json")
        .body("{\"assigned\": ")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "BadRequest").await;
    // Wrong or missing Content-Type.
    for content_type in [Some("text/plain"), None] {
        let mut request = app
            .request(Method::POST, &path, &t.write)
            .body(valid.to_string());
        if let Some(value) = content_type {
            request = request.header("Content-Type", value);
        }
        assert_error(request.send().await.unwrap(), 415, "BadRequest").await;
    }
    assert_eq!(app.count_rows(ACTIVATIONS, &t.read).await, 0);
    assert_eq!(
        app.count_rows("teamsDeviceUsageDistributionUserCounts", &t.read)
            .await,
        0
    );

    // PATCH with bad values changes nothing.
    let created: Value = app
        .post(&path, &t.write, &valid)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    for body in [
        json!({"assigned": "Integer"}),
        json!({"nope": 1}),
        json!({}),
        json!({"id": uuid::Uuid::new_v4()}),
    ] {
        let response = app
            .send_json(Method::PATCH, &format!("{path}/{id}"), &t.write, &body)
            .await;
        assert_error(response, 400, "BadRequest").await;
    }
    let stored: Value = app
        .get(&format!("{path}/{id}"), &t.read)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["@odata.etag"], "W/\"1\"");
    assert_eq!(stored["assigned"], 8);
}

async fn limits_paths_and_methods(backend: Backend) {
    let Some(app) = spawn(backend, |config| config.max_body_bytes = 512).await else {
        return;
    };
    let t = tenant();
    let path = format!("/v1.0/reports/{ACTIVATIONS}");
    let mut big = activation("2025-03-01", "X");
    big["productType"] = json!("x".repeat(600));
    assert_error(app.post(&path, &t.write, &big).await, 413, "BadRequest").await;

    let message = assert_error(
        app.get("/v1.0/reports/nothingHere", &t.read).await,
        400,
        "BadRequest",
    )
    .await;
    assert_eq!(message, "Resource not found for the segment 'nothingHere'.");
    assert_error(app.get("/v2.0/reports", &t.read).await, 400, "BadRequest").await;
    assert_error(
        app.get(&format!("{path}/not-a-guid"), &t.read).await,
        404,
        "itemNotFound",
    )
    .await;
    assert_error(
        app.get(&format!("{path}/{}", uuid::Uuid::new_v4()), &t.read)
            .await,
        404,
        "itemNotFound",
    )
    .await;
    let response = app
        .request(Method::PUT, &path, &t.write)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET, POST");
    assert_error(response, 405, "BadRequest").await;
    let response = app
        .request(
            Method::POST,
            &format!("{path}/{}", uuid::Uuid::new_v4()),
            &t.write,
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "BadRequest").await;
    assert_eq!(app.count_rows(ACTIVATIONS, &t.read).await, 0);
}

async fn request_ids_are_set_and_echoed(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    let response = app
        .request(
            Method::GET,
            &format!("/v1.0/reports/{ACTIVATIONS}"),
            &t.read,
        )
        .header("client-request-id", "my-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["client-request-id"], "my-id-123");
    assert_eq!(response.headers()["odata-version"], "4.0");
    assert!(uuid::Uuid::parse_str(response.headers()["request-id"].to_str().unwrap()).is_ok());
    assert!(response.headers().contains_key("date"));
    let response = app
        .client
        .get(app.url("/v1.0/reports/nope"))
        .send()
        .await
        .unwrap();
    let generated = response.headers()["client-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok());
}

async fn tenants_never_see_each_other(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let (a, b) = (tenant(), tenant());
    let path = format!("/v1.0/reports/{ACTIVATIONS}");
    let created: Value = app
        .post(&path, &a.write, &activation("2025-04-01", "VISIO CLIENT"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let entity = format!("{path}/{id}");

    // The same page for each tenant, A's first: its statement, compiled once for every
    // tenant, reads each one's own rows.
    let filtered = format!("{path}?$filter=productType%20eq%20'VISIO%20CLIENT'&$top=5");
    for (token, rows) in [(&a.read, 1), (&b.read, 0)] {
        assert_eq!(app.count_rows(ACTIVATIONS, token).await, rows);
        let page: Value = app.get(&filtered, token).await.json().await.unwrap();
        assert_eq!(page["value"].as_array().unwrap().len(), rows, "{page}");
    }
    assert_error(app.get(&entity, &b.read).await, 404, "itemNotFound").await;
    let response = app
        .send_json(Method::PATCH, &entity, &b.write, &json!({"assigned": 1}))
        .await;
    assert_error(response, 404, "itemNotFound").await;
    let response = app
        .request(Method::DELETE, &entity, &b.write)
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "itemNotFound").await;
    // B may hold the same natural key, and even reuse A's id, without learning of A's row.
    let mut same = activation("2025-04-01", "VISIO CLIENT");
    same["id"] = json!(id);
    assert_eq!(app.post(&path, &b.write, &same).await.status(), 201);

    let mine: Value = app.get(&entity, &a.read).await.json().await.unwrap();
    assert_eq!(mine["assigned"], 8);
    assert_eq!(mine["@odata.etag"], "W/\"1\"");
    assert_eq!(app.count_rows(ACTIVATIONS, &a.read).await, 1);
    let page: Value = app.get(&filtered, &b.read).await.json().await.unwrap();
    assert_eq!(page["value"][0]["id"], json!(id), "{page}");
    assert_eq!(page["value"].as_array().unwrap().len(), 1, "{page}");
}

async fn data_survives_a_restart(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    let path = format!("/v1.0/reports/{ACTIVATIONS}");
    assert_eq!(
        app.post(&path, &t.write, &activation("2025-05-01", "A"))
            .await
            .status(),
        201
    );
    let db = app.db.clone();
    let dir = app.stop().await;
    let app = spawn_on(db, |_| {}).await;
    assert_eq!(app.count_rows(ACTIVATIONS, &t.read).await, 1);
    drop(dir);
}
