//! The dashboard's server side against a real server (SQLite): the landing page and built-in
//! files with their headers, the pages' sign-in redirect and tenant check, the registry, the
//! CSV upload (session, CSRF, write grant, the CLI's lines) and the series function's CSV.
//! The pages themselves are tested in Chromium by scripts/browser/check.sh.
#![expect(clippy::unwrap_used)]

use crate::common;

use common::dashboard::*;
use common::*;
use serde_json::Value;
use uuid::Uuid;

/// Signs in: the session cookie and the session's CSRF token.
async fn sign_in_with_csrf(app: &TestApp, user: &str) -> (String, String) {
    let session = sign_in(app, user).await;
    let me: Value = app
        .client
        .get(app.url("/dashboard/api/me"))
        .header("Cookie", format!("reportroot_session={session}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (session, me["csrfToken"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn landing_page_and_files_have_their_types_tags_and_policy() {
    let app = spawn_app().await;
    let landing = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(landing.status(), 200);
    let csp = landing.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(landing.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = landing.text().await.unwrap();
    for link in ["/dashboard/", "/v1.0/reports", "/v1.0/$metadata"] {
        assert!(html.contains(&format!("href=\"{link}\"")), "{link}");
    }
    assert!(!html.contains("<script"), "no script on the landing page");

    let js = app
        .client
        .get(app.url("/dashboard/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(js.headers()["x-content-type-options"], "nosniff");
    let etag = js.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url("/dashboard/assets/app.js"))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = app
        .client
        .get(app.url("/dashboard/assets/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let posted = app.client.post(app.url("/")).send().await.unwrap();
    assert_eq!(posted.status(), 405);

    let registry: Value = app
        .client
        .get(app.url("/dashboard/api/registry"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        registry["reports"].as_array().unwrap().len(),
        reportroot_model::REPORTS.len()
    );
}

#[tokio::test]
async fn pages_need_a_session_and_a_granted_tenant() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(app.url("/dashboard/reports/office365ActiveUserCounts?range=30d"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers()["location"],
        "/dashboard/signin?next=%2Fdashboard%2Freports%2Foffice365ActiveUserCounts%3Frange%3D30d"
    );
    let tenant = Uuid::new_v4();
    let user = add_user(&app, &[(tenant, false)], false).await;
    let session = sign_in(&app, &user).await;
    let get = |path: String| {
        app.client
            .get(app.url(&path))
            .header("Cookie", format!("reportroot_session={session}"))
            .send()
    };
    let own = get(format!("/dashboard/?tenant={tenant}")).await.unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(own.headers()["cache-control"], "no-store");
    assert!(own
        .text()
        .await
        .unwrap()
        .contains("/dashboard/assets/app.js?v="));
    let other = get(format!("/dashboard/?tenant={}", Uuid::new_v4()))
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    let operator = get("/dashboard/operator".into()).await.unwrap();
    assert_eq!(operator.status(), 403);
    let unknown = get(format!("/dashboard/reports/noSuchReport?tenant={tenant}"))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// A `multipart/form-data` body with the tenant and one file, and its Content-Type.
fn upload_form(tenant: Uuid, name: &str, csv: &str) -> (String, Vec<u8>) {
    let boundary = "reportroot-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"tenant\"\r\n\r\n{tenant}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

#[tokio::test]
async fn upload_needs_a_session_its_csrf_token_and_a_write_grant() {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let csv = "Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\n\
               2024-01-05,VISIO CLIENT,40,31,2\n2024-01-05,PROJECT CLIENT,x,9,0\n";
    let post = |session: Option<&str>, csrf: Option<&str>| {
        let (content_type, body) = upload_form(tenant, "office365ActivationsUserCounts.csv", csv);
        let mut request = app
            .client
            .post(app.url("/dashboard/api/import"))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(session) = session {
            request = request.header("Cookie", format!("reportroot_session={session}"));
        }
        if let Some(csrf) = csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        request.send()
    };
    assert_eq!(post(None, None).await.unwrap().status(), 401);
    let reader = add_user(&app, &[(tenant, false)], false).await;
    let (session, csrf) = sign_in_with_csrf(&app, &reader).await;
    assert_eq!(post(Some(&session), None).await.unwrap().status(), 403);
    assert_eq!(
        post(Some(&session), Some(&csrf)).await.unwrap().status(),
        403
    );

    let writer = add_user(&app, &[(tenant, true)], false).await;
    let (session, csrf) = sign_in_with_csrf(&app, &writer).await;
    let answer = post(Some(&session), Some(&csrf)).await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    let lines: Vec<&str> = answer["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        lines[0].starts_with("office365ActivationsUserCounts.csv:3:3: "),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "office365ActivationsUserCounts.csv: rejected, nothing written (1 bad rows; --skip-bad-rows writes the good ones)"
    );
    assert_eq!(answer["files"][0]["problems"][0]["line"], 3);
    assert_eq!(answer["files"][0]["problems"][0]["column"], 3);
    let token = token(tenant, &["Reports.Read.All"]);
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &token)
            .await,
        0
    );
}

#[tokio::test]
async fn the_series_answers_graphs_csv_on_request() {
    let app = spawn_app().await;
    let tenant = tenant();
    for product in ["VISIO CLIENT", "PROJECT CLIENT"] {
        let created = app
            .post(
                "/v1.0/reports/office365ActivationsUserCounts",
                &tenant.write,
                &activation("2024-03-01", product),
            )
            .await;
        assert_eq!(created.status(), 201);
    }
    let path = "/v1.0/reports/office365ActivationsUserCounts/reportroot.series(from=2024-01-01,to=2024-12-31)";
    let csv = app
        .get(&format!("{path}?$format=text/csv"), &tenant.read)
        .await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation"
    );
    assert_eq!(lines.len(), 3, "{text}");
    let refused = app.get(&format!("{path}?$top=1"), &tenant.read).await;
    assert_eq!(refused.status(), 400);
    let bad_format = app.get(&format!("{path}?$format=xml"), &tenant.read).await;
    assert_eq!(bad_format.status(), 400);
}
