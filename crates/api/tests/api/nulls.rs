//! Empty counts over HTTP: POSTed as `null`, shown as `null`, found by `$filter=… eq null`,
//! ordered first by `$orderby`, and paged past with `$skiptoken`, on both backends.
#![expect(clippy::unwrap_used)]

use crate::common;

on_both_backends!(null_counts_over_http);

use common::*;
use serde_json::{json, Value};

async fn null_counts_over_http(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    let set = "/v1.0/reports/office365ActivationsUserCounts";
    for (product, assigned) in [
        ("A", json!(3)),
        ("B", Value::Null),
        ("C", json!(1)),
        ("D", Value::Null),
    ] {
        let mut body = activation("2025-01-31", product);
        body["assigned"] = assigned;
        let response = app.post(set, &t.write, &body).await;
        assert_eq!(response.status(), 201, "{product}");
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["assigned"], body["assigned"], "{product}");
    }
    // A required property stays required.
    let mut body = activation("2025-01-31", "E");
    body["productType"] = Value::Null;
    assert_eq!(app.post(set, &t.write, &body).await.status(), 400);

    let products = |page: &Value| -> Vec<String> {
        page["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["productType"].as_str().unwrap().to_owned())
            .collect()
    };
    let page: Value = app
        .get(&format!("{set}?$filter=assigned eq null"), &t.read)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(products(&page), ["B", "D"]);
    assert_eq!(page["value"][0]["assigned"], Value::Null);
    let page: Value = app
        .get(
            &format!("{set}?$filter=assigned ne null and assigned lt 5"),
            &t.read,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(products(&page), ["A", "C"]);

    // Nulls first ascending, a page at a time through $skiptoken.
    let mut next = Some(app.url(&format!("{set}?$orderby=assigned,productType&$top=4")));
    let mut seen = Vec::new();
    let client = reqwest::Client::new();
    while let Some(url) = next {
        let page: Value = client
            .get(&url)
            .bearer_auth(&t.read)
            .header("Prefer", "odata.maxpagesize=1")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(products(&page));
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
        assert!(seen.len() <= 4, "{seen:?}");
    }
    assert_eq!(seen, ["B", "D", "C", "A"]);

    // The beta function's JSON carries the null too.
    let text = app
        .get(
            "/beta/reports/getOffice365ActivationsUserCounts?$format=application/json",
            &t.read,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#""assigned":null"#), "{text}");
}
