//! Two reportroot instances on one PostgreSQL database: nothing about a request depends on the
//! memory of one instance.
#![expect(clippy::unwrap_used)]

use crate::common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const SET: &str = "/v1.0/reports/office365ActivationsUserCounts";

#[tokio::test]
async fn two_instances_share_one_postgres_database() {
    for (_, url) in server_urls("two-instance test") {
        two_instances_share(url).await;
    }
}

async fn two_instances_share(url: String) {
    let a = spawn_on(Db::Postgres(url.clone()), |_| {}).await;
    let b = spawn_on(Db::Postgres(url), |config| config.page_size = 1).await;
    let t = tenant();

    // A write through one is read through the other.
    let created: Value = a
        .post(SET, &t.write, &activation("2025-05-01", "VISIO CLIENT"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let read: Value = b
        .get(&format!("{SET}/{id}"), &t.read)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["productType"], "VISIO CLIENT");

    // The natural key stays unique under concurrent POSTs through both.
    let body = activation("2025-05-02", "PROJECT CLIENT");
    let posts = (0..8).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.post(SET, &t.write, &body)
    });
    let statuses: Vec<u16> = join_all(posts.map(Box::pin).collect())
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );

    // eTag conflicts are detected across instances.
    let path = format!("{SET}/{id}");
    let patch = |app: &TestApp, etag: &str, value: i64| {
        app.request(Method::PATCH, &path, &t.write)
            .header("Content-Type", "application/json")
            .header("If-Match", etag.to_owned())
            .body(json!({ "assigned": value }).to_string())
            .send()
    };
    assert_eq!(patch(&a, "W/\"1\"", 5).await.unwrap().status(), 200);
    assert_error(
        patch(&b, "W/\"1\"", 6).await.unwrap(),
        412,
        "resourceModified",
    )
    .await;
    let (x, y) = tokio::join!(patch(&a, "W/\"2\"", 7), patch(&b, "W/\"2\"", 8));
    let mut statuses = [x.unwrap().status().as_u16(), y.unwrap().status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412]);

    // Download URLs and skiptokens made by one instance work on the other.
    let response = a
        .get("/v1.0/reports/getOffice365ActivationsUserCounts", &t.read)
        .await;
    let location = response.headers()["location"]
        .to_str()
        .unwrap()
        .replace(&a.base, &b.base);
    let csv = b.client.get(&location).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.text().await.unwrap().contains("PROJECT CLIENT"));
    let page: Value = b.get(SET, &t.read).await.json().await.unwrap();
    let next = page["@odata.nextLink"]
        .as_str()
        .unwrap()
        .replace(&b.base, &a.base);
    let rest: Value = a
        .client
        .get(next)
        .bearer_auth(&t.read)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["value"].as_array().unwrap().len() + rest["value"].as_array().unwrap().len(),
        2
    );
}

/// Polls every future at once until all are done.
async fn join_all<F: std::future::Future + Unpin>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<F>> = futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match std::pin::Pin::new(future).poll(cx) {
                    std::task::Poll::Ready(output) => {
                        *result = Some(output);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}
