//! OData query options, paging and optimistic concurrency over real HTTP, on both backends.
#![expect(clippy::unwrap_used)]

use crate::common;

use std::collections::HashSet;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(
    filters_select_order_top_skip_count,
    closed_ranges_find_rows_reported_late,
    paging_follows_next_links_across_inserts,
    bad_queries_are_400_with_positions,
    sql_injection_is_just_data,
    if_match_and_concurrent_patches,
    function_json_takes_query_options,
    durations_filter_as_seconds,
);

const ACTIVE: &str = "/v1.0/reports/office365ActiveUserCounts";
const ACTIVATIONS: &str = "/v1.0/reports/office365ActivationsUserCounts";

/// 40 days of D7 rows of 2025-02-10's refresh (teams = day of month), 5 products.
async fn load(app: &TestApp, t: &Tenant) {
    for day in 0..40 {
        let date = chrono_like(day);
        let mut body = active_users("2025-02-10", &date, "7");
        body["teams"] = json!(day);
        assert_eq!(app.post(ACTIVE, &t.write, &body).await.status(), 201);
    }
    for (product, assigned) in [
        ("VISIO CLIENT", 5),
        ("PROJECT CLIENT", 7),
        ("Microsoft 365 Apps", 300),
        ("visio client", 1),
        ("O'Brien Suite", 2),
    ] {
        let mut body = activation("2025-02-10", product);
        body["assigned"] = json!(assigned);
        assert_eq!(app.post(ACTIVATIONS, &t.write, &body).await.status(), 201);
    }
}

/// 2025-01-01 plus `day` days, as text.
fn chrono_like(day: i64) -> String {
    reportroot_model::Date::parse("2025-01-01")
        .unwrap()
        .add_days(day)
        .to_string()
}

async fn values(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let response = app.get(path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    body["value"].as_array().unwrap().clone()
}

async fn filtered(app: &TestApp, set: &str, filter: &str, token: &str) -> Vec<Value> {
    let encoded: String = form_urlencoded::byte_serialize(filter.as_bytes()).collect();
    values(app, &format!("{set}?$filter={encoded}"), token).await
}

async fn filters_select_order_top_skip_count(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    load(&app, &t).await;
    let cases: &[(&str, &str, usize)] = &[
        (ACTIVE, "teams eq 3", 1),
        (ACTIVE, "teams ne 3", 39),
        (ACTIVE, "teams gt 30", 9),
        (ACTIVE, "teams ge 30", 10),
        (ACTIVE, "teams lt 5", 5),
        (ACTIVE, "teams le 5", 6),
        (ACTIVE, "teams lt 5 or teams gt 35", 9),
        (ACTIVE, "not (teams lt 5) and teams lt 10", 5),
        (ACTIVE, "(teams lt 5 or teams gt 35) and exchange eq 8", 9),
        (ACTIVE, "teams in (1, 2, 3, 100)", 3),
        (ACTIVE, "reportDate ge 2025-02-01", 9),
        (ACTIVE, "reportDate eq 2025-01-31", 1),
        // Closed ranges: refresh dates bounded by the per-day summary's latest pick.
        (
            ACTIVE,
            "reportDate ge 2025-01-10 and reportDate le 2025-01-19",
            10,
        ),
        (
            ACTIVE,
            "reportDate gt 2025-01-10 and reportDate lt 2025-01-19",
            8,
        ),
        (
            ACTIVE,
            "reportDate ge 2025-02-05 and reportDate le 2025-03-01",
            5,
        ),
        (
            ACTIVE,
            "reportDate ge 2025-03-01 and reportDate le 2025-04-01",
            0,
        ),
        (
            ACTIVE,
            "reportDate ge 2025-01-20 and reportDate le 2025-01-10",
            0,
        ),
        (
            ACTIVE,
            "year(reportDate) eq 2025 and month(reportDate) eq 1",
            31,
        ),
        (ACTIVE, "day(reportDate) eq 1", 2),
        (ACTIVE, "reportPeriod eq '7'", 40),
        (ACTIVE, "reportPeriod eq null", 0),
        (ACTIVE, "reportPeriod ne null", 40),
        (ACTIVE, "true", 40),
        (ACTIVE, "false", 0),
        (ACTIVATIONS, "productType eq 'VISIO CLIENT'", 1),
        (ACTIVATIONS, "tolower(productType) eq 'visio client'", 2),
        (ACTIVATIONS, "toupper(productType) eq 'VISIO CLIENT'", 2),
        (ACTIVATIONS, "contains(productType, 'CLIENT')", 2),
        (ACTIVATIONS, "contains(productType, 'client')", 1),
        (ACTIVATIONS, "contains(productType, '%')", 0),
        (ACTIVATIONS, "startswith(productType, 'Micro')", 1),
        (ACTIVATIONS, "endswith(productType, 'CLIENT')", 2),
        (ACTIVATIONS, "endswith(productType, '')", 5),
        (ACTIVATIONS, "productType eq 'O''Brien Suite'", 1),
        (
            ACTIVATIONS,
            "productType in ('PROJECT CLIENT', 'VISIO CLIENT')",
            2,
        ),
        (ACTIVATIONS, "productType gt 'P'", 3),
    ];
    for (set, filter, expected) in cases {
        let rows = filtered(&app, set, filter, &t.read).await;
        assert_eq!(rows.len(), *expected, "{filter}");
    }
    // $select: only those properties (and the eTag annotation).
    let rows = values(
        &app,
        &format!("{ACTIVE}?$select=reportDate,teams&$top=1"),
        &t.read,
    )
    .await;
    let keys: HashSet<_> = rows[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        HashSet::from(["@odata.etag".into(), "reportDate".into(), "teams".into()])
    );
    // $orderby with several keys, $top, $skip.
    let rows = values(
        &app,
        &format!("{ACTIVATIONS}?$orderby=sharedComputerActivation,assigned desc"),
        &t.read,
    )
    .await;
    let assigned: Vec<i64> = rows
        .iter()
        .map(|r| r["assigned"].as_i64().unwrap())
        .collect();
    assert_eq!(assigned, vec![300, 7, 5, 2, 1]);
    let rows = values(
        &app,
        &format!("{ACTIVE}?$orderby=teams desc&$top=3&$skip=2"),
        &t.read,
    )
    .await;
    let teams: Vec<i64> = rows.iter().map(|r| r["teams"].as_i64().unwrap()).collect();
    assert_eq!(teams, vec![37, 36, 35]);
    // $count=true counts before paging.
    let body: Value = app
        .get(
            &format!("{ACTIVE}?$count=true&$top=2&$filter=teams%20ge%2010"),
            &t.read,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["@odata.count"], 30);
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    // /$count as plain text.
    let response = app
        .get(&format!("{ACTIVE}/$count?$filter=teams%20lt%205"), &t.read)
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "5");
    // Another tenant counts nothing.
    assert_eq!(
        app.get(&format!("{ACTIVE}/$count"), &tenant().read)
            .await
            .text()
            .await
            .unwrap(),
        "0"
    );
}

/// A row reported more than the longest period (180 days) after its date, which Graph never
/// does but a client may POST: a closed `reportDate` range's refresh dates end at the ceiling
/// plus 180 days, or at such a row's refresh date, and this one is found through the summary's
/// partial index of late rows after its insert, a change of its refresh date and its delete.
async fn closed_ranges_find_rows_reported_late(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    load(&app, &t).await;
    let range = "reportDate ge 2025-01-10 and reportDate le 2025-01-19";
    let teams = |rows: Vec<Value>| -> Vec<i64> {
        rows.iter().map(|r| r["teams"].as_i64().unwrap()).collect()
    };
    let mut late = active_users("2025-12-01", "2025-01-15", "7");
    late["teams"] = json!(99);
    let created: Value = app
        .post(ACTIVE, &t.write, &late)
        .await
        .json()
        .await
        .unwrap();
    let path = format!("{ACTIVE}/{}", created["id"].as_str().unwrap());
    let in_order: Vec<i64> = (9..19).chain([99]).collect();
    assert_eq!(
        teams(filtered(&app, ACTIVE, range, &t.read).await),
        in_order
    );
    // Two pages of 6: the late row ends the second.
    let page = values(
        &app,
        &format!(
            "{ACTIVE}?$filter={}&$top=6&$skip=6",
            range.replace(' ', "%20")
        ),
        &t.read,
    )
    .await;
    assert_eq!(teams(page), vec![15, 16, 17, 18, 99]);
    // Later still: its refresh date moves, and the summary's pick with it.
    let response = app
        .request(Method::PATCH, &path, &t.write)
        .header("Content-Type", "application/json")
        .body(json!({ "reportRefreshDate": "2026-06-30" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        teams(filtered(&app, ACTIVE, range, &t.read).await),
        in_order
    );
    let only_late = "reportDate ge 2025-01-15 and reportDate le 2025-01-15 and teams eq 99";
    assert_eq!(filtered(&app, ACTIVE, only_late, &t.read).await.len(), 1);
    let response = app
        .request(Method::DELETE, &path, &t.write)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let on_time: Vec<i64> = (9..19).collect();
    assert_eq!(teams(filtered(&app, ACTIVE, range, &t.read).await), on_time);
    // The last date there is: no date 180 days after it (the bound stays at it).
    let to_the_end = "reportDate ge 2025-01-10 and reportDate le 9999-12-31";
    assert_eq!(filtered(&app, ACTIVE, to_the_end, &t.read).await.len(), 31);
}

async fn paging_follows_next_links_across_inserts(backend: Backend) {
    let Some(app) = spawn(backend, |config| config.page_size = 15).await else {
        return;
    };
    let t = tenant();
    load(&app, &t).await;
    // Server page size 15: 40 rows in 3 pages, ordered by natural key.
    let mut seen = Vec::new();
    let mut next = Some(app.url(ACTIVE));
    let mut pages = 0;
    while let Some(url) = next {
        let body: Value = app
            .client
            .get(&url)
            .bearer_auth(&t.read)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for row in body["value"].as_array().unwrap() {
            seen.push(row["reportDate"].as_str().unwrap().to_owned());
        }
        next = body["@odata.nextLink"].as_str().map(str::to_owned);
        pages += 1;
        if pages == 1 {
            // Rows inserted between pages: one before the cursor, one after.
            let mut early = active_users("2025-02-10", "2024-12-01", "7");
            early["teams"] = json!(-0);
            assert_eq!(app.post(ACTIVE, &t.write, &early).await.status(), 201);
            let late = active_users("2025-02-10", "2025-03-01", "7");
            assert_eq!(app.post(ACTIVE, &t.write, &late).await.status(), 201);
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "in order");
    assert_eq!(
        seen.len(),
        41,
        "every original row once, plus the later insert"
    );
    assert!(seen.contains(&"2025-03-01".to_owned()));
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        seen.len(),
        "no duplicates"
    );

    // Prefer: odata.maxpagesize, $top across pages, and options kept in the link.
    let response = app
        .request(
            Method::GET,
            &format!("{ACTIVE}?$top=12&$select=teams&$filter=teams%20ge%205&$orderby=teams%20desc"),
            &t.read,
        )
        .header("Prefer", "odata.maxpagesize=5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["preference-applied"],
        "odata.maxpagesize=5"
    );
    let mut body: Value = response.json().await.unwrap();
    let mut teams = Vec::new();
    loop {
        teams.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["teams"].as_i64().unwrap()),
        );
        let Some(link) = body["@odata.nextLink"].as_str() else {
            break;
        };
        assert!(link.contains("$skiptoken="), "{link}");
        assert!(link.contains("$select=teams"), "{link}");
        body = app
            .client
            .get(link)
            .bearer_auth(&t.read)
            .header("Prefer", "odata.maxpagesize=5")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert_eq!(teams, (28..=39).rev().collect::<Vec<i64>>());

    // A tampered skiptoken, or one replayed with another filter: 400.
    let body: Value = app
        .request(Method::GET, ACTIVE, &t.read)
        .header("Prefer", "odata.maxpagesize=5")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = body["@odata.nextLink"].as_str().unwrap().to_owned();
    let mut tampered = link.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let response = app
        .client
        .get(String::from_utf8(tampered).unwrap())
        .bearer_auth(&t.read)
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "BadRequest").await;
    let replayed = link.replace("?", "?$filter=teams%20eq%201&");
    let response = app
        .client
        .get(replayed)
        .bearer_auth(&t.read)
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "BadRequest").await;
}

async fn bad_queries_are_400_with_positions(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    for (query, fragment) in [
        ("$filter=reportDate eq 'x'", "Edm.Date"),
        ("$filter=colour eq 1", "colour"),
        ("$filter=year(teams) eq 1", "year"),
        ("$filter=teams eq", "position"),
        ("$filter=contains(teams, 'a')", "contains"),
        ("$select=nope", "nope"),
        ("$orderby=nope desc", "nope"),
        ("$top=-1", "$top"),
        ("$skip=x", "$skip"),
        ("$count=maybe", "$count"),
        ("$expand=x", "$expand"),
    ] {
        let encoded = query.replace(' ', "%20");
        let response = app.get(&format!("{ACTIVE}?{encoded}"), &t.read).await;
        let message = assert_error(response, 400, "BadRequest").await;
        assert!(message.contains(fragment), "{query}: {message}");
    }
    let message = assert_error(
        app.get(&format!("{ACTIVE}?$filter=teams%20eq%20'x'"), &t.read)
            .await,
        400,
        "BadRequest",
    )
    .await;
    assert!(message.contains("position"), "{message}");
}

async fn sql_injection_is_just_data(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    load(&app, &t).await;
    let hostile = "x'' OR ''1''=''1'' --";
    let rows = filtered(
        &app,
        ACTIVATIONS,
        &format!("productType eq '{hostile}'"),
        &t.read,
    )
    .await;
    assert!(rows.is_empty());
    let drop = "a''); DROP TABLE office365_activations_user_counts; --";
    assert!(filtered(
        &app,
        ACTIVATIONS,
        &format!("contains(productType, '{drop}')"),
        &t.read
    )
    .await
    .is_empty());
    // Stored as data, found as data.
    let mut body = activation("2025-02-11", "x' OR '1'='1");
    body["assigned"] = json!(1);
    assert_eq!(app.post(ACTIVATIONS, &t.write, &body).await.status(), 201);
    let rows = filtered(
        &app,
        ACTIVATIONS,
        "productType eq 'x'' OR ''1''=''1'",
        &t.read,
    )
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &t.read)
            .await,
        6
    );
}

async fn if_match_and_concurrent_patches(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    let created: Value = app
        .post(
            ACTIVATIONS,
            &t.write,
            &activation("2025-03-01", "VISIO CLIENT"),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("{ACTIVATIONS}/{}", created["id"].as_str().unwrap());
    let patch = |etag: &str, assigned: i64| {
        app.request(Method::PATCH, &path, &t.write)
            .header("Content-Type", "application/json")
            .header("If-Match", etag)
            .body(json!({ "assigned": assigned }).to_string())
            .send()
    };
    let response = patch("W/\"1\"", 10).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    // Stale eTag: 412, nothing written.
    assert_error(patch("W/\"1\"", 11).await.unwrap(), 412, "resourceModified").await;
    let stored: Value = app.get(&path, &t.read).await.json().await.unwrap();
    assert_eq!(
        (stored["assigned"].as_i64(), stored["@odata.etag"].as_str()),
        (Some(10), Some("W/\"2\""))
    );
    assert_eq!(patch("*", 12).await.unwrap().status(), 200);
    // Concurrent PATCHes with the same eTag: exactly one wins, every time.
    for round in 0..10 {
        let current: Value = app.get(&path, &t.read).await.json().await.unwrap();
        let etag = current["@odata.etag"].as_str().unwrap().to_owned();
        let (a, b, c) = tokio::join!(
            patch(&etag, 100 + round),
            patch(&etag, 200 + round),
            patch(&etag, 300 + round)
        );
        let statuses: Vec<u16> = [a, b, c]
            .into_iter()
            .map(|r| r.unwrap().status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 412).count(),
            2,
            "{statuses:?}"
        );
    }
    // DELETE with a stale eTag: 412 and still there.
    let response = app
        .request(Method::DELETE, &path, &t.write)
        .header("If-Match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_error(response, 412, "resourceModified").await;
    assert_eq!(app.get(&path, &t.read).await.status(), 200);
}

async fn function_json_takes_query_options(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    load(&app, &t).await;
    let rows = values(
        &app,
        "/beta/reports/getOffice365ActiveUserCounts(period='D7')?$format=application/json&$filter=teams%20ge%2030&$select=teams,reportDate&$top=3",
        &t.read,
    )
    .await;
    assert_eq!(
        rows,
        vec![
            json!({"teams": 39, "reportDate": "2025-02-09"}),
            json!({"teams": 38, "reportDate": "2025-02-08"}),
            json!({"teams": 37, "reportDate": "2025-02-07"}),
        ]
    );
}

const TEAMS: &str = "/beta/reports/teamsUserActivityCounts";

/// A teamsUserActivityCounts row of 2025-03-10's refresh for `day` with the given audio and
/// video durations (ISO 8601 or null); the other durations are null, the counts 1.
fn teams_day(day: &str, audio: Value, video: Value) -> Value {
    let mut body = serde_json::Map::new();
    for property in reportroot_model::find_report("teamsUserActivityCounts")
        .unwrap()
        .properties
    {
        let value = match property.kind {
            reportroot_model::ValueKind::Date if property.name == "reportRefreshDate" => {
                json!("2025-03-10")
            }
            reportroot_model::ValueKind::Date => json!(day),
            reportroot_model::ValueKind::Period => json!("7"),
            reportroot_model::ValueKind::Duration => Value::Null,
            _ => json!(1),
        };
        body.insert(property.name.to_owned(), value);
    }
    body.insert("audioDuration".to_owned(), audio);
    body.insert("videoDuration".to_owned(), video);
    Value::Object(body)
}

/// `$filter` on Edm.Duration properties compares seconds, not the stored `hh:mm:ss` text
/// (`100:00:00` is more than `99:00:00`), with OData's nulls; wrong types stay positioned 400s.
async fn durations_filter_as_seconds(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    let rows = [
        ("2025-03-01", json!("PT0S"), Value::Null),
        ("2025-03-02", json!("PT59M59S"), json!("PT1H")),
        ("2025-03-03", json!("PT1H"), json!("PT1H")),
        ("2025-03-04", json!("PT99H"), json!("PT2H")),
        ("2025-03-05", json!("PT100H"), json!("PT2H")),
        ("2025-03-06", Value::Null, json!("PT0S")),
    ];
    for (day, audio, video) in rows {
        let response = app
            .post(TEAMS, &t.write, &teams_day(day, audio, video))
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    let cases: &[(&str, &[&str])] = &[
        ("audioDuration gt duration'PT99H'", &["2025-03-05"]),
        (
            "audioDuration ge duration'PT1H'",
            &["2025-03-05", "2025-03-04", "2025-03-03"],
        ),
        (
            "audioDuration lt duration'PT1H'",
            &["2025-03-02", "2025-03-01"],
        ),
        (
            "audioDuration le duration'PT59M59S'",
            &["2025-03-02", "2025-03-01"],
        ),
        ("audioDuration eq duration'P4DT4H'", &["2025-03-05"]),
        ("audioDuration eq duration'PT6000M'", &["2025-03-05"]),
        ("audioDuration eq duration'PT0S'", &["2025-03-01"]),
        ("audioDuration eq null", &["2025-03-06"]),
        (
            "audioDuration ne duration'PT1H'",
            &[
                "2025-03-06",
                "2025-03-05",
                "2025-03-04",
                "2025-03-02",
                "2025-03-01",
            ],
        ),
        (
            "not (audioDuration ge duration'PT1H')",
            &["2025-03-06", "2025-03-02", "2025-03-01"],
        ),
        ("audioDuration lt videoDuration", &["2025-03-02"]),
        ("audioDuration eq videoDuration", &["2025-03-03"]),
        (
            "videoDuration gt audioDuration or audioDuration eq null",
            &["2025-03-06", "2025-03-02"],
        ),
        (
            "audioDuration in (duration'PT0S', duration'PT100H')",
            &["2025-03-05", "2025-03-01"],
        ),
        (
            "duration'PT2H' eq videoDuration and calls eq 1",
            &["2025-03-05", "2025-03-04"],
        ),
        ("screenShareDuration ne null", &[]),
    ];
    for (filter, days) in cases {
        let mut got: Vec<String> = filtered(&app, TEAMS, filter, &t.read)
            .await
            .iter()
            .map(|row| row["reportDate"].as_str().unwrap().to_owned())
            .collect();
        got.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(got, *days, "{filter}");
    }
    // The values come back as OData JSON writes them.
    let rows = filtered(&app, TEAMS, "audioDuration gt duration'PT99H'", &t.read).await;
    assert_eq!(rows[0]["audioDuration"], "PT100H");
    // Wrong types and bad literals are positioned 400s, before any SQL.
    for (filter, fragment) in [
        (
            "audioDuration eq '100:00:00'",
            "Edm.Duration and Edm.String are not compatible for operator 'eq' at position 0",
        ),
        (
            "audioDuration gt 3600",
            "Edm.Duration and Edm.Int64 are not compatible for operator 'gt' at position 0",
        ),
        (
            "calls lt duration'PT1H'",
            "Edm.Int64 and Edm.Duration are not compatible for operator 'lt' at position 0",
        ),
        (
            "audioDuration gt duration'PT1.5S'",
            "is not valid: an Edm.Duration literal",
        ),
    ] {
        let encoded: String = form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let response = app
            .get(&format!("{TEAMS}?$filter={encoded}"), &t.read)
            .await;
        let message = assert_error(response, 400, "BadRequest").await;
        assert!(message.contains(fragment), "{filter}: {message}");
    }
}
