//! `reportroot.series` over real HTTP on every backend, for a report of each grain of the
//! registry: a later refresh overrides an earlier one for the same date, weeks and months keep
//! their latest row, rows are shaped as the entity set's, the caller's tenant only, and bad
//! parameters are Graph-style 400s.
#![expect(clippy::unwrap_used)]

use crate::common;

on_both_backends!(series_of_each_grain, series_errors);

use common::*;
use reportroot_model::{Date, Grain, ReportType, ValueKind, REPORTS};
use serde_json::{json, Map, Value};

/// The first report of the registry with this grain and (not) a dimension.
fn report_of(grain: Grain, dimension: bool) -> &'static ReportType {
    REPORTS
        .iter()
        .find(|r| r.grain == grain && r.dimension.is_some() == dimension)
        .unwrap()
}

/// A row: every count is `marker`, so that a row tells which refresh it came from.
fn body(
    report: &ReportType,
    refresh: &str,
    day: &str,
    period: &str,
    dim: &str,
    marker: i64,
) -> Value {
    let mut body = Map::new();
    for property in report.properties {
        let value = match property.kind {
            ValueKind::Date if property.name == report.refresh_date => json!(refresh),
            ValueKind::Date => json!(day),
            ValueKind::Period => json!(period),
            ValueKind::Text => json!(dim),
            ValueKind::Count | ValueKind::Count32 => json!(marker),
            ValueKind::Duration => json!("PT1H"),
        };
        body.insert(property.name.to_owned(), value);
    }
    Value::Object(body)
}

fn day(text: &str) -> Date {
    Date::parse(text).unwrap()
}

/// Rows of a refresh: for a per-day report each day of the period up to the refresh date,
/// else one row; for each dimension value (one, unnamed, without a dimension).
async fn load(
    app: &TestApp,
    token: &str,
    report: &ReportType,
    refresh: &str,
    period: u32,
    dims: &[&str],
    marker: i64,
) {
    let days = if report.grain == Grain::PerDay {
        period
    } else {
        1
    };
    for back in 0..days {
        let date = day(refresh).add_days(-i64::from(back)).to_string();
        for dim in dims {
            let row = body(report, refresh, &date, &period.to_string(), dim, marker);
            let posted = app
                .post(&format!("/beta/reports/{}", report.entity), token, &row)
                .await;
            assert_eq!(posted.status(), 201, "{}", posted.text().await.unwrap());
        }
    }
}

/// `(date of the axis, dimension value, marker)` of each row of a series answer.
async fn points(
    app: &TestApp,
    token: &str,
    report: &ReportType,
    args: &str,
) -> Vec<(String, String, i64)> {
    let path = format!("/v1.0/reports/{}/reportroot.series({args})", report.entity);
    let response = app.get(&path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["@odata.context"],
        format!(
            "{}/v1.0/$metadata#Collection({})",
            app.base,
            report.qualified_name()
        )
    );
    let axis = if report.grain == Grain::PerDay {
        "reportDate"
    } else {
        "reportRefreshDate"
    };
    let count = report
        .properties
        .iter()
        .find(|p| p.kind.is_count())
        .unwrap()
        .name;
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row[axis].as_str().unwrap().to_owned(),
                report
                    .dimension
                    .map(|d| row[d].as_str().unwrap().to_owned())
                    .unwrap_or_default(),
                row[count].as_i64().unwrap(),
            )
        })
        .collect()
}

fn expect(rows: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    rows.iter()
        .map(|(d, v, m)| ((*d).to_owned(), (*v).to_owned(), *m))
        .collect()
}

async fn series_of_each_grain(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let (t, other) = (tenant(), tenant());
    let (r1, r2, r3) = ("2025-03-10", "2025-03-12", "2025-03-20");

    // Per-day, with and without a dimension: the refresh of 03-12 (D7: 03-06…03-12)
    // overrides the one of 03-10 (D7 and D30: 02-09…03-10) where both report a day.
    for dimension in [false, true] {
        let report = report_of(Grain::PerDay, dimension);
        let dims: &[&str] = if dimension { &["A", "B"] } else { &[""] };
        load(&app, &t.write, report, r1, 7, dims, 1).await;
        load(&app, &t.write, report, r1, 30, dims, 1).await;
        load(&app, &t.write, report, r2, 7, dims, 2).await;
        // Another tenant's later refresh must not show.
        load(&app, &other.write, report, "2025-03-13", 7, dims, 9).await;
        let each = |rows: &[(&'static str, i64)]| {
            let rows: Vec<(&str, &str, i64)> = rows
                .iter()
                .flat_map(|(d, m)| dims.iter().map(move |v| (*d, *v, *m)))
                .collect();
            expect(&rows)
        };
        let daily = points(&app, &t.read, report, "from=2025-03-03,to=2025-03-14").await;
        assert_eq!(
            daily,
            each(&[
                ("2025-03-03", 1),
                ("2025-03-04", 1),
                ("2025-03-05", 1),
                ("2025-03-06", 2),
                ("2025-03-07", 2),
                ("2025-03-08", 2),
                ("2025-03-09", 2),
                ("2025-03-10", 2),
                ("2025-03-11", 2),
                ("2025-03-12", 2),
            ]),
            "{}",
            report.entity
        );
        // Weeks (Monday to Sunday) and months keep the row of their latest date.
        let weekly = points(
            &app,
            &t.read,
            report,
            "from=2025-03-01,to=2025-03-14,interval='week'",
        )
        .await;
        assert_eq!(
            weekly,
            each(&[("2025-03-02", 1), ("2025-03-09", 2), ("2025-03-12", 2)]),
            "{}",
            report.entity
        );
        let monthly = points(
            &app,
            &t.read,
            report,
            "from=2025-01-15,to=2025-03-31,interval='month'",
        )
        .await;
        assert_eq!(
            monthly,
            each(&[("2025-02-28", 1), ("2025-03-12", 2)]),
            "{}",
            report.entity
        );
        let other_view = points(&app, &other.read, report, "from=2025-03-12,to=2025-03-13").await;
        assert_eq!(other_view, each(&[("2025-03-12", 9), ("2025-03-13", 9)]));
    }

    // Per-period: one row per refresh date of the period.
    let report = report_of(Grain::PerPeriod, false);
    load(&app, &t.write, report, r1, 7, &[""], 1).await;
    load(&app, &t.write, report, r1, 30, &[""], 3).await;
    load(&app, &t.write, report, r2, 7, &[""], 2).await;
    load(&app, &t.write, report, r3, 30, &[""], 4).await;
    load(&app, &other.write, report, "2025-03-11", 7, &[""], 9).await;
    let args = "from=2025-03-01,to=2025-03-31";
    assert_eq!(
        points(&app, &t.read, report, args).await,
        expect(&[(r1, "", 1), (r2, "", 2)])
    );
    assert_eq!(
        points(&app, &t.read, report, &format!("{args},period='D30'")).await,
        expect(&[(r1, "", 3), (r3, "", 4)])
    );
    assert_eq!(
        points(&app, &t.read, report, &format!("{args},interval='week'")).await,
        expect(&[(r2, "", 2)])
    );

    // Per-dimension: one row per refresh date and dimension value.
    let report = report_of(Grain::PerDimension, true);
    load(&app, &t.write, report, r1, 0, &["A", "B"], 1).await;
    load(&app, &t.write, report, r2, 0, &["A", "B"], 2).await;
    load(&app, &t.write, report, r3, 0, &["A"], 3).await;
    load(&app, &other.write, report, r3, 0, &["C"], 9).await;
    assert_eq!(
        points(&app, &t.read, report, args).await,
        expect(&[
            (r1, "A", 1),
            (r1, "B", 1),
            (r2, "A", 2),
            (r2, "B", 2),
            (r3, "A", 3)
        ])
    );
    assert_eq!(
        points(&app, &t.read, report, &format!("{args},interval='month'")).await,
        expect(&[(r2, "B", 2), (r3, "A", 3)])
    );

    // Each row is shaped as the entity set's rows, on each version.
    for report in [report_of(Grain::PerDay, false), report] {
        for version in ["v1.0", "beta"] {
            let keys = |body: Value| -> Vec<String> {
                body["value"][0]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect()
            };
            let set = app
                .get(
                    &format!("/{version}/reports/{}?$top=1", report.entity),
                    &t.read,
                )
                .await;
            let series = app
                .get(
                    &format!(
                        "/{version}/reports/{}/reportroot.series(from=2025-01-01,to=2025-12-31)",
                        report.entity
                    ),
                    &t.read,
                )
                .await;
            assert_eq!(
                keys(series.json().await.unwrap()),
                keys(set.json().await.unwrap())
            );
        }
    }
}

async fn series_errors(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    let set = "/v1.0/reports/office365ActiveUserCounts";
    for args in [
        "from=2025-03-02,to=2025-03-01",
        "from=2025-03-01",
        "from=2025-02-30,to=2025-03-01",
        "from=2025-03-01,to=2025-03-02,interval='year'",
        "from=2025-03-01,to=2025-03-02,period='D7'",
        // 21,916 days: more than the 20,000 points a series may have.
        "from=1970-01-01,to=2030-01-01",
    ] {
        let path = format!("{set}/reportroot.series({args})");
        let message = assert_error(app.get(&path, &t.read).await, 400, "BadRequest").await;
        assert!(
            message.contains("series") || message.contains("points"),
            "{args}: {message}"
        );
    }
    // The same range by month is 721 points.
    let monthly = app
        .get(
            &format!("{set}/reportroot.series(from=1970-01-01,to=2030-01-01,interval='month')"),
            &t.read,
        )
        .await;
    assert_eq!(monthly.status(), 200);
    // Query options are refused rather than ignored.
    let path = format!("{set}/reportroot.series(from=2025-03-01,to=2025-03-02)?$top=1");
    assert_error(app.get(&path, &t.read).await, 400, "BadRequest").await;
    // The entity set's permission.
    let path = format!("{set}/reportroot.series(from=2025-03-01,to=2025-03-02)");
    let response = app.get(&path, &token(t.id, &[])).await;
    assert_eq!(response.status(), 403);
    let response = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // Declared in $metadata, one overload per report of the version.
    let metadata = app
        .client
        .get(app.url("/beta/$metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metadata.contains("<Schema Namespace=\"reportroot\""));
    assert_eq!(
        metadata.matches("<Function Name=\"series\"").count(),
        REPORTS.len()
    );
    assert!(metadata.contains(&format!(
        "At most {} rows",
        reportroot_storage::series::SERIES_MAX_POINTS
    )));
}
