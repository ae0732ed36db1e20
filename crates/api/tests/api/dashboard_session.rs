//! The dashboard's sign-in against a real server: the form, the session cookie, sign-out,
//! expiry, CSRF, the rate limit, and the OData API (and `$batch`) with a session: same-origin
//! only, one granted tenant at a time, writes only with the CSRF token. On SQLite,
//! PostgreSQL and Citus where the database is involved.
#![expect(clippy::unwrap_used)]

use crate::common;

use common::dashboard::*;
use common::*;
use reportroot_model::TenantId;
use reportroot_storage::directory::{SqlRunner, SqlValue};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use uuid::Uuid;

/// `GET /dashboard/api/me` with a session cookie.
async fn me(app: &TestApp, session: &str) -> reqwest::Response {
    app.client
        .get(app.url("/dashboard/api/me"))
        .header("Cookie", format!("reportroot_session={session}"))
        .send()
        .await
        .unwrap()
}

/// Headers of a same-origin dashboard call for `tenant`.
fn session_headers(session: &str, tenant: Uuid) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "cookie",
        HeaderValue::from_str(&format!("reportroot_session={session}")).unwrap(),
    );
    headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
    headers.insert(
        "x-reportroot-tenant",
        HeaderValue::from_str(&tenant.to_string()).unwrap(),
    );
    headers
}

async fn api_get(app: &TestApp, path: &str, headers: HeaderMap) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .headers(headers)
        .send()
        .await
        .unwrap()
}

/// Rows of the activations set each tenant has, written with bearer tokens.
async fn seed(app: &TestApp, tenant: &Tenant, products: &[&str]) {
    for product in products {
        let response = app
            .post(
                "/v1.0/reports/office365ActivationsUserCounts",
                &tenant.write,
                &activation("2024-03-01", product),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
}

async fn signs_in_and_out(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let (a, b) = (tenant(), tenant());
    seed(&app, &a, &["VISIO CLIENT"]).await;
    let storage = open_storage(&app.db).await;
    storage
        .accounts()
        .rename_tenant(TenantId(a.id), "Contoso")
        .await
        .unwrap();
    let user = add_user(&app, &[(a.id, false)], false).await;

    // Failure: the form again, with a readable error, 401.
    let wrong = post_sign_in(
        &app.client,
        &app.base,
        &user,
        "not the password",
        "/dashboard",
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(set_cookie(&wrong, "reportroot_session").is_none());
    let html = wrong.text().await.unwrap();
    assert!(html.contains("role=\"alert\""));
    assert!(html.contains("The user name or password is incorrect."));
    assert!(
        html.contains(&format!("value=\"{user}\"")),
        "the name is kept"
    );

    // Success: the cookie, and a redirect to `next` (a dashboard path only).
    let ok = post_sign_in(
        &app.client,
        &app.base,
        &user,
        PASSWORD,
        "/dashboard/reports/x?from=2024-01-01",
    )
    .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(
        ok.headers()["location"],
        "/dashboard/reports/x?from=2024-01-01"
    );
    let (session, line) = set_cookie(&ok, "reportroot_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "plain HTTP: {line}");
    let elsewhere = post_sign_in(
        &app.client,
        &app.base,
        &user,
        PASSWORD,
        "https://evil.example/dashboard",
    )
    .await;
    assert_eq!(elsewhere.headers()["location"], "/dashboard");

    let answer = me(&app, &session).await;
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["name"], user.as_str());
    assert_eq!(body["operator"], false);
    assert_eq!(
        body["tenants"],
        json!([{"id": a.id.to_string(), "displayName": "Contoso", "write": false}])
    );
    let csrf = body["csrfToken"].as_str().unwrap().to_owned();
    assert_eq!(csrf.len(), 43);
    assert_ne!(b.id.to_string(), a.id.to_string());

    // Neither the password nor the session token is in the database, only their hashes.
    let stored = dump_accounts(&app.db).await;
    assert!(stored.contains(&reportroot_api::session::token_hash(&session)));
    assert!(!stored.contains(&session));
    assert!(!stored.contains(PASSWORD));
    assert!(stored.contains("$argon2id$"));
    if let Db::Sqlite(path) = &app.db {
        for suffix in ["", "-wal"] {
            let bytes = std::fs::read(format!("{}{suffix}", path.display())).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&session) && !text.contains(PASSWORD),
                "file{suffix}"
            );
        }
    }

    // Sign-out needs the CSRF token, deletes the session, and clears the cookie.
    let cookie = format!("reportroot_session={session}");
    let refused = app
        .client
        .post(app.url("/dashboard/signout"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_error(refused, 403, "accessDenied").await;
    assert_eq!(
        me(&app, &session).await.status(),
        200,
        "a refused sign-out ends nothing"
    );
    let out = app
        .client
        .post(app.url("/dashboard/signout"))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()["location"], "/dashboard/signin");
    let (cleared, line) = set_cookie(&out, "reportroot_session").unwrap();
    assert!(cleared.is_empty() && line.contains("Max-Age=0"), "{line}");
    // The old cookie no longer works, on the dashboard or the API.
    assert_error(me(&app, &session).await, 401, "InvalidAuthenticationToken").await;
    let api = api_get(
        &app,
        "/v1.0/reports/office365ActivationsUserCounts",
        session_headers(&session, a.id),
    )
    .await;
    assert_error(api, 401, "InvalidAuthenticationToken").await;
    assert!(!dump_accounts(&app.db)
        .await
        .contains(&reportroot_api::session::token_hash(&session)));
}

async fn an_expired_session_is_refused(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let a = tenant();
    let user = add_user(&app, &[(a.id, true)], false).await;
    let session = sign_in(&app, &user).await;
    assert_eq!(me(&app, &session).await.status(), 200);
    let digest = reportroot_api::session::token_hash(&session);
    execute(
        &app.db,
        "UPDATE reportroot_sessions SET expires = 1 WHERE token_hash = ",
        &digest,
    )
    .await;
    assert_error(me(&app, &session).await, 401, "InvalidAuthenticationToken").await;
    let api = api_get(
        &app,
        "/v1.0/reports/office365ActivationsUserCounts",
        session_headers(&session, a.id),
    )
    .await;
    assert_error(api, 401, "InvalidAuthenticationToken").await;
}

async fn a_session_reads_only_its_tenants(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let (a, b) = (tenant(), tenant());
    seed(&app, &a, &["VISIO CLIENT"]).await;
    seed(&app, &b, &["VISIO CLIENT", "PROJECT CLIENT"]).await;
    let user = add_user(&app, &[(a.id, false)], false).await;
    let session = sign_in(&app, &user).await;
    let set = "/v1.0/reports/office365ActivationsUserCounts";

    let own = api_get(&app, set, session_headers(&session, a.id)).await;
    assert_eq!(own.status(), 200);
    let body: Value = own.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);

    // Another tenant, no tenant, cross-site, a foreign origin, no origin at all: refused.
    assert_error(
        api_get(&app, set, session_headers(&session, b.id)).await,
        403,
        "accessDenied",
    )
    .await;
    let mut none = session_headers(&session, a.id);
    none.remove("x-reportroot-tenant");
    assert_error(api_get(&app, set, none).await, 403, "accessDenied").await;
    let mut cross = session_headers(&session, a.id);
    cross.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    assert_error(api_get(&app, set, cross).await, 403, "accessDenied").await;
    let mut foreign = session_headers(&session, a.id);
    foreign.remove("sec-fetch-site");
    foreign.insert("origin", HeaderValue::from_static("https://evil.example"));
    assert_error(api_get(&app, set, foreign).await, 403, "accessDenied").await;
    let mut silent = session_headers(&session, a.id);
    silent.remove("sec-fetch-site");
    assert_error(api_get(&app, set, silent).await, 403, "accessDenied").await;
    // The server's own Origin is same-origin too.
    let mut own_origin = session_headers(&session, a.id);
    own_origin.remove("sec-fetch-site");
    own_origin.insert("origin", HeaderValue::from_str(&app.base).unwrap());
    assert_eq!(api_get(&app, set, own_origin).await.status(), 200);
    // No cookie and no token: as before, 401.
    assert_error(
        app.client.get(app.url(set)).send().await.unwrap(),
        401,
        "InvalidAuthenticationToken",
    )
    .await;

    // $batch: the items run as the batch's caller; an item naming tenant B still reads A.
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/reports/office365ActivationsUserCounts"},
        {"id": "2", "method": "GET", "url": "/reports/office365ActivationsUserCounts",
         "headers": {"X-Reportroot-Tenant": b.id.to_string(), "Cookie": "reportroot_session=x"}}
    ]});
    let answer = app
        .client
        .post(app.url("/v1.0/$batch"))
        .headers(session_headers(&session, a.id))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    for item in body["responses"].as_array().unwrap() {
        assert_eq!(item["status"], 200, "{item}");
        assert_eq!(
            item["body"]["value"].as_array().unwrap().len(),
            1,
            "tenant A's one row: {item}"
        );
    }
    let other = app
        .client
        .post(app.url("/v1.0/$batch"))
        .headers(session_headers(&session, b.id))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_error(other, 403, "accessDenied").await;
}

async fn session_writes_need_a_write_grant_and_the_csrf_token(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let (a, b) = (tenant(), tenant());
    let writer = add_user(&app, &[(a.id, true), (b.id, false)], false).await;
    let session = sign_in(&app, &writer).await;
    let csrf = me(&app, &session).await.json::<Value>().await.unwrap()["csrfToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = "/v1.0/reports/office365ActivationsUserCounts";
    let post = |tenant: Uuid, token: Option<&str>, product: &str| {
        let mut headers = session_headers(&session, tenant);
        if let Some(token) = token {
            headers.insert("x-csrf-token", HeaderValue::from_str(token).unwrap());
        }
        app.client
            .post(app.url(set))
            .headers(headers)
            .json(&activation("2024-03-01", product))
            .send()
    };
    assert_error(
        post(a.id, None, "VISIO CLIENT").await.unwrap(),
        403,
        "accessDenied",
    )
    .await;
    assert_error(
        post(a.id, Some("wrong"), "VISIO CLIENT").await.unwrap(),
        403,
        "accessDenied",
    )
    .await;
    assert_error(
        post(b.id, Some(&csrf), "VISIO CLIENT").await.unwrap(),
        403,
        "accessDenied",
    )
    .await;
    assert_eq!(
        post(a.id, Some(&csrf), "VISIO CLIENT")
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &a.read)
            .await,
        1
    );
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &b.read)
            .await,
        0
    );

    // An operator writes anywhere, with the token; and sees every known tenant.
    let operator = add_user(&app, &[], true).await;
    let session = sign_in(&app, &operator).await;
    let body = me(&app, &session).await.json::<Value>().await.unwrap();
    assert_eq!(body["operator"], true);
    let known: Vec<&str> = body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(
        known.contains(&a.id.to_string().as_str()),
        "a tenant with rows is known"
    );
    assert!(
        known.contains(&b.id.to_string().as_str()),
        "a granted tenant is known"
    );
}

async fn failed_sign_ins_are_rate_limited(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let user = add_user(&app, &[(Uuid::new_v4(), false)], false).await;
    for _ in 0..10 {
        let wrong = post_sign_in(&app.client, &app.base, &user, "guess", "/dashboard").await;
        assert_eq!(wrong.status(), 401);
    }
    // Blocked now, even with the right password.
    let blocked = post_sign_in(&app.client, &app.base, &user, PASSWORD, "/dashboard").await;
    assert_eq!(blocked.status(), 429);
    let wait: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert!(blocked
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-ins"));
}

async fn the_signin_form_needs_its_csrf_cookie(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let user = add_user(&app, &[(Uuid::new_v4(), false)], false).await;
    let form = [
        ("username", user.as_str()),
        ("password", PASSWORD),
        ("csrf", "forged"),
    ];
    let forged = app
        .client
        .post(app.url("/dashboard/signin"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(set_cookie(&forged, "reportroot_session").is_none());
    // A cross-site post is refused even with a matching cookie.
    let cross = app
        .client
        .post(app.url("/dashboard/signin"))
        .header("Cookie", "reportroot_signin_csrf=forged")
        .header("Sec-Fetch-Site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(set_cookie(&cross, "reportroot_session").is_none());
}

on_both_backends!(
    signs_in_and_out,
    an_expired_session_is_refused,
    a_session_reads_only_its_tenants,
    session_writes_need_a_write_grant_and_the_csrf_token,
    failed_sign_ins_are_rate_limited,
    the_signin_form_needs_its_csrf_cookie,
);

#[tokio::test]
async fn the_form_is_accessible_html_and_me_needs_a_session() {
    let app = spawn_app().await;
    let form = app
        .client
        .get(app.url("/dashboard/signin"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.headers()["content-type"], "text/html; charset=utf-8");
    assert!(form.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let (_, line) = set_cookie(&form, "reportroot_signin_csrf").unwrap();
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    let html = form.text().await.unwrap();
    for needle in [
        "<label for=\"username\">",
        "<label for=\"password\">",
        "name=\"username\"",
        "name=\"password\"",
        "type=\"password\"",
        "name=\"next\" value=\"/dashboard\"",
        "<html lang=\"en\">",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external asset"
    );
    assert_error(
        app.client
            .get(app.url("/dashboard/api/me"))
            .send()
            .await
            .unwrap(),
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    let unknown = app
        .client
        .get(app.url("/dashboard/api/me"))
        .header("Cookie", "reportroot_session=made-up")
        .send()
        .await
        .unwrap();
    assert_error(unknown, 401, "InvalidAuthenticationToken").await;
}

#[tokio::test]
async fn cookies_are_secure_over_https() {
    let (addr, ca, _dir, app) = https_app().await;
    let user = add_user(&app, &[(Uuid::new_v4(), false)], false).await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("https://{addr}");
    let ok = post_sign_in(&client, &base, &user, PASSWORD, "/dashboard").await;
    assert_eq!(ok.status(), 303);
    let (_, line) = set_cookie(&ok, "reportroot_session").unwrap();
    assert!(line.contains("; Secure"), "{line}");
}

/// A server whose only listener is HTTPS, with a test CA: its address, the CA's PEM, the
/// certificate's directory, and a [`TestApp`] for its database.
async fn https_app() -> (std::net::SocketAddr, String, tempfile::TempDir, TestApp) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (chain, key_file) = (dir.path().join("chain.pem"), dir.path().join("key.pem"));
    std::fs::write(&chain, cert.pem() + &ca.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let tls = reportroot_api::tls::server_config(&chain, &key_file).unwrap();
    let app = spawn_app().await;
    let storage = open_storage(&app.db).await;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = reportroot_api::server::Listener {
        tcp,
        tls: Some(tls),
        base_url: Some(format!("https://{addr}")),
    };
    let state = reportroot_api::AppState::new(
        storage,
        reportroot_api::ApiConfig::new(format!("https://{addr}"), SECRET.to_vec()),
    );
    tokio::spawn(reportroot_api::serve_listeners(
        vec![listener],
        state,
        std::future::pending(),
    ));
    (addr, ca.pem(), dir, app)
}

/// Every text of the users and sessions tables, concatenated.
async fn dump_accounts(db: &Db) -> String {
    let mut text = String::new();
    for table in [
        "reportroot_users",
        "reportroot_sessions",
        "reportroot_user_tenants",
    ] {
        for row in query(db, &format!("SELECT * FROM {table}")).await {
            for value in row {
                if let SqlValue::Text(value) = value {
                    text.push_str(&value);
                    text.push('\n');
                }
            }
        }
    }
    text
}

async fn query(db: &Db, sql: &str) -> Vec<Vec<SqlValue>> {
    match db {
        Db::Sqlite(path) => {
            let storage = reportroot_sqlite::SqliteStorage::open(
                path,
                reportroot_sqlite::Durability::Process,
            )
            .unwrap();
            storage.query(sql.to_owned(), Vec::new()).await.unwrap()
        }
        Db::Postgres(url) => {
            let storage = reportroot_postgres::PostgresStorage::connect(url, 1)
                .await
                .unwrap();
            storage.query(sql.to_owned(), Vec::new()).await.unwrap()
        }
    }
}

/// Runs `sql` followed by the parameter `value`.
async fn execute(db: &Db, sql: &str, value: &str) {
    let param = SqlValue::Text(value.to_owned());
    let changed = match db {
        Db::Sqlite(path) => {
            let storage = reportroot_sqlite::SqliteStorage::open(
                path,
                reportroot_sqlite::Durability::Process,
            )
            .unwrap();
            storage
                .execute(format!("{sql}?1"), vec![param])
                .await
                .unwrap()
        }
        Db::Postgres(url) => {
            let storage = reportroot_postgres::PostgresStorage::connect(url, 1)
                .await
                .unwrap();
            storage
                .execute(format!("{sql}$1"), vec![param])
                .await
                .unwrap()
        }
    };
    assert_eq!(changed, 1);
}
