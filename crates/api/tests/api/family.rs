//! Every report of the registry over real HTTP, on the versions it exists on: its entity set
//! takes a POST, its function answers the row as CSV (v1.0 and beta) and JSON (beta), and a
//! beta-only report is an unknown segment on v1.0. This also shows every table is created.
#![expect(clippy::unwrap_used)]

use crate::common;

on_both_backends!(every_report_end_to_end);

use common::*;
use reportroot_model::{ReportType, ValueKind, Version, REPORTS};
use serde_json::{json, Map, Value};

/// A valid body for `report`.
fn body(report: &ReportType, n: i64) -> Value {
    let mut body = Map::new();
    for (i, property) in report.properties.iter().enumerate() {
        let value = match (property.kind, property.name) {
            (ValueKind::Date, "reportRefreshDate") => json!("2025-03-10"),
            (ValueKind::Date, _) => json!("2025-03-09"),
            (ValueKind::Period, _) => json!("7"),
            (ValueKind::Text, _) => json!("All"),
            (ValueKind::Count, _) => json!(n + i as i64),
            (ValueKind::Count32, _) => json!(2_000_000_000 + i as i64),
            // OData JSON's Edm.Duration: ISO 8601; the CSV shows Graph's `hh:mm:ss`.
            (ValueKind::Duration, _) => json!(format!("PT{i}H2M3S")),
        };
        body.insert(property.name.to_owned(), value);
    }
    Value::Object(body)
}

fn function_path(version: Version, report: &ReportType) -> String {
    let args = if report.function.takes_period {
        "period='D7'"
    } else {
        ""
    };
    format!(
        "/{}/reports/{}({args})",
        version.segment(),
        report.function.name
    )
}

async fn every_report_end_to_end(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    for (n, report) in REPORTS.iter().enumerate() {
        let what = report.entity;
        let body = body(report, n as i64 * 100);
        // Beta has every stored property (tests/versions.rs: what v1.0 does with the ones
        // only beta has).
        let posted = app
            .post(&format!("/beta/reports/{}", report.entity), &t.write, &body)
            .await;
        assert_eq!(
            posted.status(),
            201,
            "{what}: {}",
            posted.text().await.unwrap()
        );
        for version in Version::ALL {
            let function = function_path(version, report);
            if !report.exists_on(version) {
                for path in [
                    function.clone(),
                    format!("/{}/reports/{}", version.segment(), report.entity),
                ] {
                    let message =
                        assert_error(app.get(&path, &t.read).await, 400, "BadRequest").await;
                    assert!(
                        message.starts_with("Resource not found for the segment"),
                        "{path}: {message}"
                    );
                }
                continue;
            }
            let response = app
                .get(&format!("{function}?redirect=false"), &t.read)
                .await;
            assert_eq!(response.status(), 200, "{function}");
            let csv = response.text().await.unwrap();
            // Each version's own columns, in its own order.
            let columns = report.columns_on(version).unwrap();
            let header = report.csv_header_on(version).unwrap();
            let line: Vec<String> = columns
                .csv
                .iter()
                .map(|&i| match &body[report.properties[i].name] {
                    _ if report.properties[i].kind == ValueKind::Duration => {
                        format!("{i:02}:02:03")
                    }
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            assert_eq!(
                csv,
                format!("\u{feff}{header}\r\n{}\r\n", line.join(",")),
                "{function}"
            );
            // The 302's download has the same bytes.
            let redirected = app.get(&function, &t.read).await;
            let location = redirected.headers()["location"]
                .to_str()
                .unwrap()
                .to_owned();
            let downloaded = app.client.get(&location).send().await.unwrap();
            assert_eq!(downloaded.text().await.unwrap(), csv, "{function} download");
            let rows = app.count_rows_on(version, report.entity, &t.read).await;
            assert_eq!(rows, 1, "{what} on {version:?}");
        }
        let json: Value = app
            .get(
                &format!(
                    "{}?$format=application/json",
                    function_path(Version::Beta, report)
                ),
                &t.read,
            )
            .await
            .json()
            .await
            .unwrap();
        // Flat reports: `value[{…}]`; the newer ones nest their rows under a container, with
        // the refresh date and the period (a number) outside.
        let outer = &json["value"][0];
        let (row, outside) = match report.json_container {
            Some(container) => {
                assert_eq!(
                    json["value"].as_array().map(Vec::len),
                    Some(1),
                    "{what}: {json}"
                );
                assert!(json.get("@odata.context").is_none(), "{what}: {json}");
                (&outer[container][0], vec![report.refresh_date])
            }
            None => (outer, Vec::new()),
        };
        for property in report.properties {
            let shown = if outside.contains(&property.name) {
                &outer[property.name]
            } else if report.json_container.is_some() && property.kind == ValueKind::Period {
                assert_eq!(outer[property.name], json!(7), "{what}: {json}");
                continue;
            } else {
                &row[property.name]
            };
            assert_eq!(shown, &body[property.name], "{what}.{}", property.name);
        }
    }
}
