//! The report functions over real HTTP: bytes of CSV and JSON, the 302 download flow, and the
//! request shapes Microsoft's SDKs send.
#![expect(clippy::unwrap_used)]

use crate::common;

on_both_backends!(
    csv_bytes_of_each_report,
    beta_json_of_each_report,
    redirect_to_a_signed_download_that_needs_no_token,
    expired_download_urls_are_refused,
    sdk_request_shapes,
    etags_and_not_modified
);

use common::*;
use serde_json::{json, Value};

const BOM: &str = "\u{feff}";

async fn load(app: &TestApp, t: &Tenant) {
    for (date, product, assigned) in [
        ("2025-01-30", "VISIO CLIENT", 5),
        ("2025-01-31", "VISIO CLIENT", 6),
        ("2025-01-31", "MICROSOFT 365 APPS FOR ENTERPRISE", 300),
        ("2025-01-31", "PROJECT, \"PRO\"", 2),
    ] {
        let mut body = activation(date, product);
        body["assigned"] = json!(assigned);
        assert_eq!(
            app.post(
                "/v1.0/reports/office365ActivationsUserCounts",
                &t.write,
                &body
            )
            .await
            .status(),
            201
        );
    }
    // Active users: the D7 report of 2025-01-31 has days 29..31 here; an older refresh and a D30 row too.
    for (refresh, day, period, office) in [
        ("2025-01-31", "2025-01-29", "7", 10),
        ("2025-01-31", "2025-01-31", "7", 12),
        ("2025-01-31", "2025-01-30", "7", 11),
        ("2025-01-30", "2025-01-30", "7", 99),
        ("2025-02-01", "2025-02-01", "30", 50),
    ] {
        let mut body = active_users(refresh, day, period);
        body["office365"] = json!(office);
        assert_eq!(
            app.post("/v1.0/reports/office365ActiveUserCounts", &t.write, &body)
                .await
                .status(),
            201
        );
    }
    for (refresh, period, web) in [
        ("2025-01-31", "7", 3),
        ("2025-01-24", "7", 1),
        ("2025-01-31", "30", 8),
    ] {
        let mut body = teams_devices(refresh, period);
        body["web"] = json!(web);
        assert_eq!(
            app.post(
                "/v1.0/reports/teamsDeviceUsageDistributionUserCounts",
                &t.write,
                &body
            )
            .await
            .status(),
            201
        );
    }
}

async fn csv_of(app: &TestApp, path: &str, token: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    let response = app
        .get(&format!("{path}{separator}redirect=false"), token)
        .await;
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    String::from_utf8(response.bytes().await.unwrap().to_vec()).unwrap()
}

async fn csv_bytes_of_each_report(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    load(&app, &t).await;
    assert_eq!(
        csv_of(&app, "/v1.0/reports/getOffice365ActivationsUserCounts", &t.read).await,
        format!(
            "{BOM}Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\r\n\
             2025-01-31,MICROSOFT 365 APPS FOR ENTERPRISE,300,9,8\r\n\
             2025-01-31,\"PROJECT, \"\"PRO\"\"\",2,9,8\r\n\
             2025-01-31,VISIO CLIENT,6,9,8\r\n"
        )
    );
    assert_eq!(
        csv_of(&app, "/v1.0/reports/getOffice365ActiveUserCounts(period='D7')", &t.read).await,
        format!(
            "{BOM}Report Refresh Date,Office 365,Exchange,OneDrive,SharePoint,Skype For Business,Yammer,Teams,Report Date,Report Period\r\n\
             2025-01-31,12,8,8,10,0,6,5,2025-01-31,7\r\n\
             2025-01-31,11,8,8,10,0,6,5,2025-01-30,7\r\n\
             2025-01-31,10,8,8,10,0,6,5,2025-01-29,7\r\n"
        )
    );
    assert_eq!(
        csv_of(&app, "/v1.0/reports/getTeamsDeviceUsageDistributionUserCounts(period='D7')", &t.read).await,
        format!(
            "{BOM}Report Refresh Date,Web,Windows Phone,Android Phone,iOS,Mac,Windows,Chrome OS,Linux,Report Period\r\n\
             2025-01-31,3,12,12,3,3,7,1,2,7\r\n"
        )
    );
    // No rows of that period: a valid empty report.
    assert_eq!(
        csv_of(&app, "/v1.0/reports/getTeamsDeviceUsageDistributionUserCounts(period='D180')", &t.read).await,
        format!("{BOM}Report Refresh Date,Web,Windows Phone,Android Phone,iOS,Mac,Windows,Chrome OS,Linux,Report Period\r\n")
    );
}

async fn beta_json_of_each_report(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    load(&app, &t).await;
    let response = app
        .get(
            "/beta/reports/getOffice365ActiveUserCounts(period='D30')?$format=application/json",
            &t.read,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["odata-version"], "4.0");
    assert_eq!(
        response.text().await.unwrap(),
        format!(
            r#"{{"@odata.context":"{}/beta/$metadata#Collection(microsoft.graph.office365ActiveUserCounts)","value":[{{"reportRefreshDate":"2025-02-01","office365":50,"exchange":8,"oneDrive":8,"sharePoint":10,"skypeForBusiness":0,"yammer":6,"teams":5,"reportDate":"2025-02-01","reportPeriod":"30"}}]}}"#,
            app.base
        )
    );
    let body: Value = app
        .get(
            "/beta/reports/getOffice365ActivationsUserCounts?$format=application/json",
            &t.read,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 3);
    assert_eq!(body["value"][2]["productType"], "VISIO CLIENT");
    let body: Value = app
        .get("/beta/reports/getTeamsDeviceUsageDistributionUserCounts(period='D7')?$format=application/json", &t.read)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"][0]["chromeOS"], 1);
    assert_eq!(body["value"][0]["reportPeriod"], "7");
    // Nothing stored for another tenant: an empty value.
    let other = tenant();
    let body: Value = app
        .get(
            "/beta/reports/getOffice365ActivationsUserCounts?$format=application/json",
            &other.read,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"], json!([]));
    let response = app
        .get(
            "/beta/reports/getOffice365ActivationsUserCounts?$format=application/xml",
            &t.read,
        )
        .await;
    assert_error(response, 400, "BadRequest").await;
}

async fn redirect_to_a_signed_download_that_needs_no_token(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let (a, b) = (tenant(), tenant());
    load(&app, &a).await;
    for path in [
        "/v1.0/reports/getOffice365ActiveUserCounts(period='D7')",
        "/beta/reports/getOffice365ActiveUserCounts(period='D7')",
        "/beta/reports/getOffice365ActiveUserCounts(period='D7')?$format=text/csv",
    ] {
        let response = app.get(path, &a.read).await;
        assert_eq!(response.status(), 302, "{path}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&app.base), "{location}");
        // No Authorization header on the download.
        let download = app.client.get(&location).send().await.unwrap();
        assert_eq!(download.status(), 200);
        assert_eq!(
            download.headers()["content-type"],
            "application/octet-stream"
        );
        assert_eq!(
            download.headers()["content-disposition"],
            "attachment; filename=Office365ActiveUserCounts_D7.csv"
        );
        let text = download.text().await.unwrap();
        assert!(text.starts_with(BOM));
        assert_eq!(text.lines().count(), 4);
    }
    // A tenant's URL carries that tenant's report only.
    let response = app
        .get(
            "/v1.0/reports/getOffice365ActiveUserCounts(period='D7')",
            &b.read,
        )
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let text = app
        .client
        .get(&location)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text.lines().count(), 1, "only the header: {text}");

    // Tampering: change a character of the payload, or of the signature.
    for position in [location.rfind('/').unwrap() + 3, location.len() - 3] {
        let mut tampered = location.clone().into_bytes();
        tampered[position] = if tampered[position] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let response = app
            .client
            .get(String::from_utf8(tampered).unwrap())
            .send()
            .await
            .unwrap();
        assert_error(response, 403, "accessDenied").await;
    }
}

async fn expired_download_urls_are_refused(backend: Backend) {
    let Some(app) = spawn(backend, |config| config.download_ttl_seconds = 0).await else {
        return;
    };
    let t = tenant();
    let response = app
        .get("/v1.0/reports/getOffice365ActivationsUserCounts", &t.read)
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let response = app.client.get(&location).send().await.unwrap();
    assert_error(response, 401, "InvalidAuthenticationToken").await;
}

async fn sdk_request_shapes(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    load(&app, &t).await;
    // Kiota writes empty parentheses; names match case-insensitively; %27 works.
    for path in [
        "/beta/reports/getOffice365ActivationsUserCounts()",
        "/beta/reports/GETOFFICE365ACTIVATIONSUSERCOUNTS",
        "/v1.0/reports/getOffice365ActiveUserCounts(period=%27D7%27)",
        "/v1.0/reports/getTeamsDeviceUsageDistributionUserCounts%28period%3D%27D7%27%29",
    ] {
        let response = app
            .request(reqwest::Method::GET, path, &t.read)
            .header("Accept", "application/octet-stream, application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302, "{path}");
    }
    // The beta SDK's getOffice365ActiveUserCounts sends Accept: application/json and parses JSON.
    let response = app
        .request(
            reqwest::Method::GET,
            "/beta/reports/getOffice365ActiveUserCounts(period='D7')",
            &t.read,
        )
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 3);
    assert_eq!(body["value"][0]["reportDate"], "2025-01-31");

    for bad in [
        "(period='D8')",
        "(period='d7')",
        "(period='7')",
        "(period=D7)",
        "",
        "()",
    ] {
        let response = app
            .get(
                &format!("/v1.0/reports/getOffice365ActiveUserCounts{bad}"),
                &t.read,
            )
            .await;
        let message = assert_error(response, 400, "BadRequest").await;
        assert!(message.contains("D7, D30, D90, D180"), "{bad}: {message}");
    }
    let no_permission = token(t.id, &["User.Read.All"]);
    let response = app
        .get(
            "/v1.0/reports/getOffice365ActivationsUserCounts",
            &no_permission,
        )
        .await;
    assert_error(response, 403, "accessDenied").await;
}

async fn etags_and_not_modified(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let t = tenant();
    load(&app, &t).await;
    let path = "/beta/reports/getOffice365ActivationsUserCounts?$format=application/json";
    let response = app.get(path, &t.read).await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let response = app
        .request(reqwest::Method::GET, path, &t.read)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    // A write changes the report and its eTag.
    assert_eq!(
        app.post(
            "/v1.0/reports/office365ActivationsUserCounts",
            &t.write,
            &activation("2025-02-01", "VISIO CLIENT")
        )
        .await
        .status(),
        201
    );
    let response = app
        .request(reqwest::Method::GET, path, &t.read)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_ne!(response.headers()["etag"].to_str().unwrap(), etag);
    let redirect = app
        .get("/v1.0/reports/getOffice365ActivationsUserCounts", &t.read)
        .await;
    // The 302, the CSV it points to and `?redirect=false` are one representation: one eTag.
    let redirect_etag = redirect.headers()["etag"].to_str().unwrap().to_owned();
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    let download = reqwest::get(&location).await.unwrap();
    assert_eq!(download.headers()["etag"].to_str().unwrap(), redirect_etag);
    let inline = app
        .get(
            "/v1.0/reports/getOffice365ActivationsUserCounts?redirect=false",
            &t.read,
        )
        .await;
    assert_eq!(inline.headers()["etag"].to_str().unwrap(), redirect_etag);
    let again = reqwest::Client::new()
        .get(&location)
        .header("If-None-Match", &redirect_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

/// `$format` is checked on v1.0 too: CSV is what its functions return, JSON is refused (beta
/// has it), anything else is refused on both versions.
#[tokio::test]
async fn format_is_checked_on_both_versions() {
    let app = spawn_app().await;
    let t = tenant();
    let path = |version: &str, format: &str| {
        format!("/{version}/reports/getOffice365ActiveUserCounts(period='D7')?redirect=false&$format={format}")
    };
    let csv = app.get(&path("v1.0", "text/csv"), &t.read).await;
    assert_eq!(csv.status(), 200);
    let json = app.get(&path("beta", "application/json"), &t.read).await;
    assert_eq!(json.status(), 200);
    for (version, format) in [
        ("v1.0", "application/json"),
        ("v1.0", "xml"),
        ("beta", "xml"),
    ] {
        let message = assert_error(
            app.get(&path(version, format), &t.read).await,
            400,
            "BadRequest",
        )
        .await;
        assert!(message.contains("$format"), "{version} {format}: {message}");
    }
    app.stop().await;
}
