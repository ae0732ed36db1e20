//! Queries that may read a tenant's whole history run a few at a time (issue 16, "bounded
//! cost"): over the tenant's limit the next is `429 TooManyRequests`, over the server's limit
//! `503 serviceNotAvailable`, both with `Retry-After` and Graph's error body; indexed pages
//! are never refused; and every admitted scan answers in full.
#![expect(clippy::unwrap_used)]

use crate::common;
use common::*;
use reportroot_api::scan_limit::ScanLimits;

on_both_backends!(concurrent_scans_past_the_limits_are_refused_and_indexed_pages_are_not);

const SCAN: &str =
    "/v1.0/reports/office365ActiveUserCounts?$filter=teams%20gt%201000000&$count=true";
const INDEXED: &str =
    "/v1.0/reports/office365ActiveUserCounts?$filter=reportDate%20ge%202030-01-01&$top=5";

/// The statuses of `n` concurrent GETs of each (path, token).
async fn statuses(app: &TestApp, requests: &[(&str, &str)], n: usize) -> Vec<(usize, u16, String)> {
    let calls =
        (0..n)
            .flat_map(|_| requests.iter().enumerate())
            .map(|(i, (path, token))| async move {
                let response = app.get(path, token).await;
                let status = response.status().as_u16();
                let retry = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body: serde_json::Value = response.json().await.unwrap();
                if status != 200 {
                    assert_eq!(retry.as_deref(), Some("2"), "{body}");
                }
                (
                    i,
                    status,
                    body.pointer("/error/code")
                        .map_or_else(String::new, |c| c.as_str().unwrap().to_owned()),
                )
            });
    futures_util::future::join_all(calls).await
}

async fn concurrent_scans_past_the_limits_are_refused_and_indexed_pages_are_not(backend: Backend) {
    let Some(app) = spawn(backend, |config| {
        config.scans = ScanLimits {
            per_tenant: 1,
            total: 2,
        };
    })
    .await
    else {
        return;
    };
    let (a, b, c) = (tenant(), tenant(), tenant());
    let storage = open_storage(&app.db).await;
    // Enough rows that a scan lasts while the other requests arrive (tens of ms).
    for t in [&a, &b, &c] {
        store_daily_rows(storage.as_ref(), t.id, 5_000).await;
    }
    // Why rounds: whether two requests overlap is up to the scheduler; one overlap is enough,
    // and 10 rounds of 8 at once without one would mean that nothing is limited.
    let (mut over_tenant, mut over_total) = (false, false);
    for _ in 0..10 {
        let answers = statuses(
            &app,
            &[
                (SCAN, &a.read),
                (SCAN, &b.read),
                (SCAN, &c.read),
                (INDEXED, &a.read),
            ],
            2,
        )
        .await;
        for (i, status, code) in answers {
            match (i, status) {
                (3, s) => assert_eq!(s, 200, "an indexed page is never refused"),
                (_, 200) => {}
                (_, 429) => {
                    assert_eq!(code, "TooManyRequests");
                    over_tenant = true;
                }
                (_, 503) => {
                    assert_eq!(code, "serviceNotAvailable");
                    over_total = true;
                }
                (_, s) => panic!("status {s}"),
            }
        }
        if over_tenant && over_total {
            break;
        }
    }
    assert!(over_tenant, "no scan was refused over the tenant's limit");
    assert!(over_total, "no scan was refused over the server's limit");
    // The slots were all given back: one scan at a time always passes, with its count.
    for t in [&a, &b, &c] {
        let response = app.get(SCAN, &t.read).await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["@odata.count"], 0);
    }
}
