//! `GET /dashboard/api/operator`: every granted tenant's key numbers in one answer, equal to
//! what `reportroot.series` answers each tenant; only granted tenants; 401 without a session,
//! 400 for bad ranges, 403 cross-site. On SQLite, PostgreSQL and Citus.
#![expect(clippy::unwrap_used)]

use std::collections::BTreeMap;

use crate::common;

use common::dashboard::*;
use common::*;
use reportroot_model::{Grain, ReportType, ValueKind, REPORTS};
use serde_json::{json, Map, Value};
use uuid::Uuid;

on_both_backends!(
    numbers_equal_the_series_of_each_granted_tenant,
    bad_requests
);

const RANGE: &str = "from=2025-03-01&to=2025-03-15";

async fn operator_data(app: &TestApp, session: Option<&str>, query: &str) -> reqwest::Response {
    let mut request = app
        .client
        .get(app.url(&format!("/dashboard/api/operator?{query}")))
        .header("Sec-Fetch-Site", "same-origin");
    if let Some(session) = session {
        request = request.header("Cookie", format!("reportroot_session={session}"));
    }
    request.send().await.unwrap()
}

/// A row whose counts are all `marker`.
fn body(report: &ReportType, refresh: &str, day: &str, dim: &str, marker: i64) -> Value {
    let mut body = Map::new();
    for property in report.properties {
        let value = match property.kind {
            ValueKind::Date if property.name == report.refresh_date => json!(refresh),
            ValueKind::Date => json!(day),
            ValueKind::Period => json!("7"),
            ValueKind::Text => json!(dim),
            ValueKind::Count | ValueKind::Count32 => json!(marker),
            ValueKind::Duration => json!("PT1H"),
        };
        body.insert(property.name.to_owned(), value);
    }
    Value::Object(body)
}

/// Two overlapping refreshes of a report (the later one must win each date it reports), with
/// two dimension values where the report has a dimension (summed per date).
async fn load(app: &TestApp, token: &str, report: &ReportType, marker: i64) {
    let dims: &[&str] = if report.dimension.is_some() {
        &["a", "b"]
    } else {
        &["a"]
    };
    for (refresh, bump) in [("2025-03-10", 0), ("2025-03-12", 1)] {
        let days = if report.grain == Grain::PerDay { 7 } else { 1 };
        for back in 0..days {
            let day = reportroot_model::Date::parse(refresh)
                .unwrap()
                .add_days(-back)
                .to_string();
            for dim in dims {
                let row = body(report, refresh, &day, dim, marker + bump);
                let path = format!("/beta/reports/{}", report.entity);
                let posted = app.post(&path, token, &row).await;
                assert_eq!(posted.status(), 201, "{}", posted.text().await.unwrap());
            }
        }
    }
}

/// What `reportroot.series` answers a tenant for a key number, summed per date as the page
/// sums it: `(dates, values)`.
async fn series_points(app: &TestApp, token: &str, report: &ReportType, name: &str) -> Value {
    let period = if report.grain == Grain::PerPeriod {
        ",period='D7'"
    } else {
        ""
    };
    let path = format!(
        "/beta/reports/{}/reportroot.series(from=2025-03-01,to=2025-03-15{period})",
        report.entity
    );
    let response = app.get(&path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    let rows: Value = response.json().await.unwrap();
    let axis = report
        .activity_date_index()
        .map_or(report.refresh_date, |i| report.properties[i].name);
    let mut sums: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for row in rows["value"].as_array().unwrap() {
        let sum = sums
            .entry(row[axis].as_str().unwrap().to_owned())
            .or_default();
        if let Some(n) = row[name].as_i64() {
            *sum = Some(sum.unwrap_or(0) + n);
        }
    }
    json!({"dates": sums.keys().collect::<Vec<_>>(), "values": sums.values().collect::<Vec<_>>()})
}

fn tenant_in(answer: &Value, id: Uuid) -> Option<&Value> {
    answer["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.to_string())
}

async fn numbers_equal_the_series_of_each_granted_tenant(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let (a, b, hidden) = (tenant(), tenant(), tenant());
    let both = sign_in(
        &app,
        &add_user(&app, &[(a.id, false), (b.id, false)], false).await,
    )
    .await;
    let only_a = sign_in(&app, &add_user(&app, &[(a.id, false)], false).await).await;

    let first: Value = operator_data(&app, Some(&both), RANGE)
        .await
        .json()
        .await
        .unwrap();
    let keys = first["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 4, "{first}");
    let reports: Vec<(&'static ReportType, String)> = keys
        .iter()
        .map(|k| {
            let report = REPORTS.iter().find(|r| r.entity == k["entitySet"]).unwrap();
            (report, k["name"].as_str().unwrap().to_owned())
        })
        .collect();
    for (i, (report, _)) in reports.iter().enumerate() {
        let i = i64::try_from(i).unwrap();
        load(&app, &a.write, report, 10 + i * 100).await;
        load(&app, &b.write, report, 50 + i * 100).await;
        load(&app, &hidden.write, report, 90 + i * 100).await;
    }

    let response = operator_data(&app, Some(&both), RANGE).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["from"], "2025-03-01");
    assert_eq!(answer["to"], "2025-03-15");
    assert_eq!(answer["tenantCount"], 2, "{answer}");
    assert_eq!(answer["nextSkip"], Value::Null);
    assert!(tenant_in(&answer, hidden.id).is_none());
    for tenant in [&a, &b] {
        let numbers = &tenant_in(&answer, tenant.id).unwrap()["numbers"];
        for (k, (report, name)) in reports.iter().enumerate() {
            let expected = series_points(&app, &tenant.read, report, name).await;
            assert!(!expected["dates"].as_array().unwrap().is_empty());
            assert_eq!(numbers[k], expected, "{} {name}", report.entity);
        }
        assert_eq!(
            tenant_in(&answer, tenant.id).unwrap()["refreshed"],
            "2025-03-12"
        );
    }

    // A one-tenant user sees only that tenant.
    let answer: Value = operator_data(&app, Some(&only_a), RANGE)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["tenantCount"], 1);
    assert_eq!(answer["tenants"].as_array().unwrap().len(), 1);
    assert!(tenant_in(&answer, a.id).is_some());

    // A page of one tenant, then the next.
    let first_page: Value = operator_data(&app, Some(&both), "skip=1&to=2025-03-15")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first_page["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(first_page["skip"], 1);
    app.stop().await;
}

async fn bad_requests(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let a = tenant();
    let session = sign_in(&app, &add_user(&app, &[(a.id, false)], false).await).await;
    assert_error(
        operator_data(&app, None, RANGE).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    for query in [
        "from=2025-03-15&to=2025-03-01",
        "from=2024-01-01&to=2025-03-01",
        "from=2025-02-30&to=2025-03-01",
        "from=yesterday",
        "skip=-1",
        "tenant=x",
    ] {
        assert_error(
            operator_data(&app, Some(&session), query).await,
            400,
            "BadRequest",
        )
        .await;
    }
    let cross_site = app
        .client
        .get(app.url(&format!("/dashboard/api/operator?{RANGE}")))
        .header("Sec-Fetch-Site", "cross-site")
        .header("Cookie", format!("reportroot_session={session}"))
        .send()
        .await
        .unwrap();
    assert_error(cross_site, 403, "accessDenied").await;
    let post = app
        .client
        .post(app.url("/dashboard/api/operator"))
        .header("Sec-Fetch-Site", "same-origin")
        .header("Cookie", format!("reportroot_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    app.stop().await;
}
