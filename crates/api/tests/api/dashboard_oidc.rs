//! "Sign in with Entra ID" on the dashboard, against a loopback OpenID provider written here
//! (discovery, JWKS, an authorization endpoint that signs in whoever the test says, and a
//! token endpoint that checks the client secret and PKCE and issues RS256 ID tokens): the
//! whole flow to a session that reads the API, a mapped dashboard user against a
//! tenant-only one, and every refusal as a sign-in page with its status. On SQLite.
#![expect(clippy::unwrap_used)]

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::dashboard::set_cookie;
use common::{spawn_app_with, tenant, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reportroot_api::auth::unix_now;
use reportroot_api::session::DashboardOidcConfig;
use reportroot_api::signing::{generate_key, public_jwk};
use reportroot_model::TenantId;
use reportroot_storage::accounts::{Grant, User};
use reportroot_storage::directory::SigningKey;
use serde_json::{json, Value};
use sha2::Digest;
use uuid::Uuid;

const CLIENT_ID: &str = "8c1f5a0e-dashboard-client";
const CLIENT_SECRET: &str = "the-client-secret-never-logged";

/// What the provider does with the next sign-in.
#[derive(Clone, Default)]
struct Login {
    /// Claims laid over the ID token's defaults (`null` removes one).
    claims: Value,
    /// Sign with a key of the same `kid` that the JWKS does not hold.
    impostor: bool,
}

struct Pending {
    challenge: String,
    redirect_uri: String,
    nonce: String,
    login: Login,
}

struct Provider {
    issuer: String,
    tenant: Uuid,
    key: SigningKey,
    impostor: SigningKey,
    next: Mutex<Login>,
    codes: Mutex<HashMap<String, Pending>>,
}

impl Provider {
    fn will_sign_in(&self, claims: Value) {
        *self.next.lock().unwrap() = Login {
            claims,
            impostor: false,
        };
    }

    fn id_token(&self, pending: &Pending) -> String {
        let now = unix_now();
        let mut claims = json!({
            "iss": self.issuer, "aud": CLIENT_ID, "tid": self.tenant, "nonce": pending.nonce,
            "iat": now, "nbf": now, "exp": now + 3600, "sub": "subject-1", "oid": Uuid::new_v4(),
            "preferred_username": "alice@contoso.example", "name": "Alice", "ver": "2.0"
        });
        if let Value::Object(extra) = &pending.login.claims {
            for (name, value) in extra {
                claims[name] = value.clone();
            }
        }
        let key = if pending.login.impostor {
            &self.impostor
        } else {
            &self.key
        };
        let der = base64::engine::general_purpose::STANDARD
            .decode(&key.private_key)
            .unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(&der)).unwrap()
    }
}

fn json_body(status: u16, value: &Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// The provider, serving on a port of its own.
async fn provider() -> Arc<Provider> {
    use axum::routing::{get, post};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let tenant = Uuid::new_v4();
    let mut impostor = generate_key().await.unwrap();
    let key = generate_key().await.unwrap();
    impostor.kid.clone_from(&key.kid);
    let provider = Arc::new(Provider {
        issuer: format!("{base}/{tenant}/v2.0"),
        tenant,
        key,
        impostor,
        next: Mutex::new(Login::default()),
        codes: Mutex::new(HashMap::new()),
    });
    let document = json!({
        "issuer": provider.issuer,
        "jwks_uri": format!("{base}/keys"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
    });
    let (jwks, authorize, token) = (
        Arc::clone(&provider),
        Arc::clone(&provider),
        Arc::clone(&provider),
    );
    let router = axum::Router::new()
        .route(
            &format!("/{tenant}/v2.0/.well-known/openid-configuration"),
            get(move || async move { json_body(200, &document) }),
        )
        .route(
            "/keys",
            get(move || async move {
                let mut jwk = serde_json::to_value(public_jwk(&jwks.key).unwrap()).unwrap();
                jwk.as_object_mut().unwrap().remove("alg");
                json_body(200, &json!({ "keys": [jwk] }))
            }),
        )
        .route(
            &format!("/{tenant}/oauth2/v2.0/authorize"),
            get(
                move |query: axum::extract::Query<HashMap<String, String>>| async move {
                    authorize_answer(&authorize, &query.0)
                },
            ),
        )
        .route(
            &format!("/{tenant}/oauth2/v2.0/token"),
            post(move |body: axum::body::Bytes| async move { token_answer(&token, &body) }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    provider
}

/// Signs in whoever the test chose, and sends the browser back with a code.
fn authorize_answer(
    provider: &Provider,
    query: &HashMap<String, String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let get = |name: &str| query.get(name).cloned().unwrap_or_default();
    assert_eq!(get("client_id"), CLIENT_ID);
    assert_eq!(get("response_type"), "code");
    assert_eq!(get("response_mode"), "query");
    assert_eq!(get("scope"), "openid profile email");
    assert_eq!(get("code_challenge_method"), "S256");
    let code = Uuid::new_v4().to_string();
    let pending = Pending {
        challenge: get("code_challenge"),
        redirect_uri: get("redirect_uri"),
        nonce: get("nonce"),
        login: provider.next.lock().unwrap().clone(),
    };
    let back = format!(
        "{}?code={code}&state={}",
        pending.redirect_uri,
        urlencode(&get("state"))
    );
    provider.codes.lock().unwrap().insert(code, pending);
    (
        axum::http::StatusCode::FOUND,
        [(axum::http::header::LOCATION, back)],
    )
        .into_response()
}

/// Redeems a code once, for the right client, secret, redirect URI and PKCE verifier.
fn token_answer(provider: &Provider, body: &[u8]) -> axum::response::Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let get = |name: &str| form.get(name).cloned().unwrap_or_default();
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return json_body(401, &json!({"error": "invalid_client"}));
    }
    let Some(pending) = provider.codes.lock().unwrap().remove(&get("code")) else {
        return json_body(
            400,
            &json!({"error": "invalid_grant", "error_description": "AADSTS54005: code already redeemed"}),
        );
    };
    let pkce = s256(&get("code_verifier")) == pending.challenge;
    if get("grant_type") != "authorization_code"
        || !pkce
        || get("redirect_uri") != pending.redirect_uri
    {
        return json_body(
            400,
            &json!({"error": "invalid_grant", "error_description": "AADSTS50148: PKCE or redirect mismatch"}),
        );
    }
    json_body(
        200,
        &json!({"token_type": "Bearer", "access_token": "unused", "id_token": provider.id_token(&pending)}),
    )
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn server_for(provider: &Provider) -> TestApp {
    let issuer = provider.issuer.clone();
    spawn_app_with(move |config| {
        config.dashboard_oidc = Some(DashboardOidcConfig {
            issuer,
            client_id: CLIENT_ID.to_owned(),
            client_secret: CLIENT_SECRET.to_owned(),
            redirect_uri: None,
        });
    })
    .await
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// `/start` (302 to the provider, the flow cookie set) and the provider's authorization (302
/// back): the callback URL and the flow cookie.
async fn to_the_provider_and_back(app: &TestApp, next: &str) -> (String, String) {
    let start = app
        .client
        .get(app.url(&format!(
            "/dashboard/signin/oidc/start?next={}",
            urlencode(next)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    let (flow, line) = set_cookie(&start, "reportroot_oidc").expect("flow cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/dashboard/signin/oidc",
        "Max-Age=600",
    ] {
        assert!(line.contains(attribute), "{line}");
    }
    let authorize = app.client.get(location(&start)).send().await.unwrap();
    assert_eq!(authorize.status(), 302);
    let back = location(&authorize);
    assert!(
        back.starts_with(&app.url("/dashboard/signin/oidc?code=")),
        "{back}"
    );
    (back, flow)
}

async fn callback(app: &TestApp, url: &str, flow: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(url);
    if let Some(flow) = flow {
        request = request.header("cookie", format!("reportroot_oidc={flow}"));
    }
    request.send().await.unwrap()
}

/// The whole flow: the callback's answer.
async fn sign_in(app: &TestApp, next: &str) -> reqwest::Response {
    let (back, flow) = to_the_provider_and_back(app, next).await;
    callback(app, &back, Some(&flow)).await
}

fn session_of(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303);
    set_cookie(response, "reportroot_session")
        .expect("session")
        .0
}

async fn me(app: &TestApp, session: &str) -> Value {
    let response = app
        .client
        .get(app.url("/dashboard/api/me"))
        .header("cookie", format!("reportroot_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A same-origin dashboard call for `tenant`.
fn as_session(
    request: reqwest::RequestBuilder,
    session: &str,
    tenant: Uuid,
) -> reqwest::RequestBuilder {
    request
        .header("cookie", format!("reportroot_session={session}"))
        .header("sec-fetch-site", "same-origin")
        .header("x-reportroot-tenant", tenant.to_string())
}

/// The sign-in page of a failure: its status and that it says `words`, the flow cookie
/// cleared.
async fn assert_page(response: reqwest::Response, status: u16, words: &str) {
    assert_eq!(response.status(), status);
    if response.url().path() == "/dashboard/signin/oidc" {
        let (value, _) = set_cookie(&response, "reportroot_oidc").expect("cleared");
        assert_eq!(value, "");
    }
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains(words), "{words}: {html}");
    assert!(!html.contains(CLIENT_SECRET));
}

#[tokio::test]
async fn a_member_of_a_known_tenant_reads_that_tenant_only() {
    let provider = provider().await;
    let app = server_for(&provider).await;
    let own = common::token(provider.tenant, &["Reports.ReadWrite.All"]);
    let set = "/v1.0/reports/office365ActivationsUserCounts";
    let row = common::activation("2025-01-01", "Microsoft 365 Apps");
    assert_eq!(app.post(set, &own, &row).await.status(), 201);
    let other = tenant();
    assert_eq!(app.post(set, &other.write, &row).await.status(), 201);

    provider.will_sign_in(json!({"preferred_username": "bob@contoso.example"}));
    let answer = sign_in(&app, "/dashboard/reports/x?from=2025-01-01").await;
    assert_eq!(location(&answer), "/dashboard/reports/x?from=2025-01-01");
    let (_, line) = set_cookie(&answer, "reportroot_session").unwrap();
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Lax"),
        "{line}"
    );
    let session = session_of(&answer);
    let who = me(&app, &session).await;
    assert_eq!(who["name"], "bob@contoso.example (Entra ID)");
    assert_eq!(who["operator"], false);
    assert_eq!(
        who["tenants"],
        json!([{"id": provider.tenant.to_string(), "displayName": provider.tenant.to_string(), "write": false}])
    );
    let read = as_session(app.client.get(app.url(set)), &session, provider.tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let elsewhere = as_session(app.client.get(app.url(set)), &session, other.id)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 403, "another tenant");
    let csrf = who["csrfToken"].as_str().unwrap().to_owned();
    let write = as_session(app.client.post(app.url(set)), &session, provider.tenant)
        .header("x-csrf-token", csrf)
        .json(&common::activation("2025-01-02", "Microsoft 365 Apps"))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403, "read-only");
}

#[tokio::test]
async fn a_dashboard_user_signs_in_as_themself_and_strangers_are_refused() {
    let provider = provider().await;
    let app = server_for(&provider).await;
    let granted = Uuid::new_v4();
    let storage = common::open_storage(&app.db).await;
    let user = User {
        name: "Alice@Contoso.example".to_owned(),
        operator: false,
        grants: vec![Grant {
            tenant: TenantId(granted),
            write: true,
        }],
        created: 0,
    };
    let hash = reportroot_api::client_secrets::hash("unused password");
    assert!(storage.accounts().add_user(&user, &hash).await.unwrap());

    // preferred_username, compared without case.
    provider.will_sign_in(json!({"preferred_username": "alice@contoso.example"}));
    let session = session_of(&sign_in(&app, "/dashboard").await);
    let who = me(&app, &session).await;
    assert_eq!(who["name"], "Alice@Contoso.example");
    assert_eq!(who["tenants"][0]["id"], granted.to_string());
    assert_eq!(who["tenants"][0]["write"], true);
    // Else email.
    provider.will_sign_in(json!({"preferred_username": null, "email": "alice@contoso.example"}));
    let session = session_of(&sign_in(&app, "/dashboard").await);
    assert_eq!(me(&app, &session).await["name"], "Alice@Contoso.example");

    // No such user, and the issuer's tenant has nothing here.
    provider.will_sign_in(json!({"preferred_username": "mallory@contoso.example"}));
    let refused = sign_in(&app, "/dashboard").await;
    assert!(set_cookie(&refused, "reportroot_session").is_none());
    assert_page(refused, 403, "mallory@contoso.example").await;
}

#[tokio::test]
async fn bad_answers_and_tokens_are_refused_with_the_sign_in_page() {
    let provider = provider().await;
    let app = server_for(&provider).await;
    storage_knows(&app, provider.tenant).await;
    let now = unix_now();

    let refusals = [
        (json!({"aud": "someone-else"}), "aud"),
        (json!({"exp": now - 3600, "nbf": now - 7200}), "expired"),
        (json!({"nbf": now + 3600}), "not valid yet"),
        (json!({"nonce": "another-nonce"}), "nonce"),
        (json!({"iss": "http://127.0.0.1:1/other/v2.0"}), "iss"),
    ];
    for (claims, words) in refusals {
        provider.will_sign_in(claims);
        assert_page(sign_in(&app, "/dashboard").await, 401, words).await;
    }
    provider.will_sign_in(json!({}));
    provider.next.lock().unwrap().impostor = true;
    assert_page(sign_in(&app, "/dashboard").await, 401, "signature").await;

    // The state changed, the flow cookie missing, tampered or of another flow.
    provider.will_sign_in(json!({}));
    let (back, flow) = to_the_provider_and_back(&app, "/dashboard").await;
    let tampered_state = back.replace("&state=", "&state=x");
    assert_page(
        callback(&app, &tampered_state, Some(&flow)).await,
        400,
        "start again",
    )
    .await;
    let (back, flow) = to_the_provider_and_back(&app, "/dashboard").await;
    assert_page(callback(&app, &back, None).await, 400, "start again").await;
    let forged = format!("{}A", flow);
    assert_page(
        callback(&app, &back, Some(&forged)).await,
        400,
        "start again",
    )
    .await;
    let (_, other_flow) = to_the_provider_and_back(&app, "/dashboard").await;
    assert_page(
        callback(&app, &back, Some(&other_flow)).await,
        400,
        "start again",
    )
    .await;
    // The code was good (the state checks come first): it still is, once.
    assert_eq!(callback(&app, &back, Some(&flow)).await.status(), 303);
    assert_page(
        callback(&app, &back, Some(&flow)).await,
        401,
        "already redeemed",
    )
    .await;

    // The provider's own refusal.
    let (back, flow) = to_the_provider_and_back(&app, "/dashboard").await;
    let state = back.split("&state=").nth(1).unwrap();
    let error = app.url(&format!(
        "/dashboard/signin/oidc?error=access_denied&error_description=AADSTS65004%3A+declined&state={state}"
    ));
    assert_page(
        callback(&app, &error, Some(&flow)).await,
        401,
        "access_denied (AADSTS65004: declined)",
    )
    .await;

    // Only dashboard paths are followed afterwards.
    for next in [
        "https://evil.example/",
        "//evil.example/dashboard",
        "/dashboard//evil.example",
        "/\\evil.example",
    ] {
        let answer = sign_in(&app, next).await;
        assert_eq!(answer.status(), 303, "{next}");
        assert_eq!(location(&answer), "/dashboard", "{next}");
    }
}

async fn storage_knows(app: &TestApp, tenant: Uuid) {
    let storage = common::open_storage(&app.db).await;
    storage
        .accounts()
        .note_tenant(TenantId(tenant))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_wrong_client_secret_and_an_unreachable_issuer_are_pages_too() {
    let provider = provider().await;
    let issuer = provider.issuer.clone();
    let app = spawn_app_with(move |config| {
        config.dashboard_oidc = Some(DashboardOidcConfig {
            issuer,
            client_id: CLIENT_ID.to_owned(),
            client_secret: "wrong".to_owned(),
            redirect_uri: None,
        });
    })
    .await;
    assert_page(sign_in(&app, "/dashboard").await, 401, "invalid_client").await;

    // Nothing listens there.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = format!(
        "http://{}/{}/v2.0",
        closed.local_addr().unwrap(),
        Uuid::new_v4()
    );
    drop(closed);
    let app = spawn_app_with(move |config| {
        config.dashboard_oidc = Some(DashboardOidcConfig {
            issuer: gone,
            client_id: CLIENT_ID.to_owned(),
            client_secret: CLIENT_SECRET.to_owned(),
            redirect_uri: Some("https://reports.example/dashboard/signin/oidc".to_owned()),
        });
    })
    .await;
    let start = app
        .client
        .get(app.url("/dashboard/signin/oidc/start?next=%2Fdashboard"))
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&start, "reportroot_oidc").is_none());
    assert_page(start, 503, "cannot be reached").await;
}

#[tokio::test]
async fn the_button_shows_only_when_configured() {
    let provider = provider().await;
    let app = server_for(&provider).await;
    let page = app
        .client
        .get(app.url("/dashboard/signin?next=%2Fdashboard%2Foperator"))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("href=\"/dashboard/signin/oidc/start?next=%2Fdashboard%2Foperator\""),
        "{html}"
    );
    assert!(html.contains(">Sign in with Entra ID</a>"));
    assert!(!html.contains("<script"));

    let plain = spawn_app_with(|_| {}).await;
    let html = plain
        .client
        .get(plain.url("/dashboard/signin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"password\""));
    assert!(!html.contains("Entra ID"), "{html}");
    let start = plain
        .client
        .get(plain.url("/dashboard/signin/oidc/start"))
        .send()
        .await
        .unwrap();
    assert_page(start, 404, "not configured").await;
    let back = plain
        .client
        .get(plain.url("/dashboard/signin/oidc?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_page(back, 404, "not configured").await;
}
