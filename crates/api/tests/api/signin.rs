//! Sign-in as Entra ID: the token endpoints, their errors, discovery and JWKS, validation of
//! reportroot's own RS256 tokens and of a trusted external issuer's, and the limits on failed
//! client authentications. Every case runs against a real server.

use crate::common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use common::{spawn, spawn_app_with, Backend, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reportroot_api::auth::unix_now;
use reportroot_api::client_secrets::new_secret;
use reportroot_api::signing::{forget_before, generate_key, public_jwk};
use reportroot_model::TenantId;
use reportroot_storage::directory::{AppRegistration, SigningKey};
use reqwest::Response;
use serde_json::{json, Value};
use uuid::Uuid;

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// An app registered in a new tenant, with its secret.
struct App {
    tenant: Uuid,
    client_id: Uuid,
    secret: String,
}

async fn register(server: &TestApp, roles: &[&str], lifetime: i64) -> App {
    register_in(server, Uuid::new_v4(), roles, lifetime).await
}

async fn register_in(server: &TestApp, tenant: Uuid, roles: &[&str], lifetime: i64) -> App {
    let storage = common::open_storage(&server.db).await;
    let now = unix_now() as i64;
    let app = AppRegistration {
        client_id: Uuid::new_v4(),
        tenant: TenantId(tenant),
        object_id: Uuid::new_v4(),
        name: "test app".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        created: now,
    };
    let (secret, stored) = new_secret(app.client_id, now, now + lifetime);
    storage.directory().add_app(&app).await.expect("add app");
    storage
        .directory()
        .add_secret(&stored)
        .await
        .expect("add secret");
    App {
        tenant,
        client_id: app.client_id,
        secret,
    }
}

async fn token_request(server: &TestApp, tenant: &str, form: &[(&str, &str)]) -> Response {
    server
        .client
        .post(server.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .form(form)
        .send()
        .await
        .expect("token request")
}

async fn get_token(server: &TestApp, app: &App, scope: &str) -> String {
    let response = token_request(
        server,
        &app.tenant.to_string(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id.to_string()),
            ("client_secret", &app.secret),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

fn claims_of(token: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        let text = token.split('.').nth(i).expect("part");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    };
    (part(0), part(1))
}

async fn sign_in_reads_the_tenant_and_only_it(backend: Backend) {
    let Some(server) = spawn(backend, |_| {}).await else {
        return;
    };
    let app = register(&server, &["Reports.Read.All"], 3600).await;
    let other = common::tenant();
    let mine = common::token(app.tenant, &["Reports.ReadWrite.All"]);
    let row = common::activation("2026-01-01", "VISIO CLIENT");
    for writer in [&mine, &other.write] {
        let created = server
            .post("/v1.0/reports/office365ActivationsUserCounts", writer, &row)
            .await;
        assert_eq!(created.status(), 201);
    }

    let response = token_request(
        &server,
        &app.tenant.to_string(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id.to_string()),
            ("client_secret", &app.secret),
            ("scope", GRAPH_SCOPE),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store, no-cache");
    let body: Value = response.json().await.expect("json");
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let token = body["access_token"].as_str().expect("token");

    let (header, claims) = claims_of(token);
    assert_eq!(header["alg"], "RS256");
    let kid = header["kid"].as_str().expect("kid");
    let jwks: Value = server
        .client
        .get(server.url("/common/discovery/v2.0/keys"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert!(jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .any(|k| k["kid"] == kid && k["kty"] == "RSA"));
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(
        claims["iss"],
        format!("{}/{}/v2.0", server.base, app.tenant)
    );
    assert_eq!(claims["tid"], app.tenant.to_string());
    assert_eq!(claims["azp"], app.client_id.to_string());
    assert_eq!(claims["roles"], json!(["Reports.Read.All"]));
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["idtyp"], "app");
    assert!(claims["oid"].is_string() && claims["oid"] == claims["sub"]);
    let now = unix_now();
    assert!(claims["exp"].as_u64().expect("exp") > now + 3500);
    assert!(claims["nbf"].as_u64().expect("nbf") <= now);

    // The token reads the app's tenant, one row, never the other tenant's; it cannot write.
    assert_eq!(
        server
            .count_rows("office365ActivationsUserCounts", token)
            .await,
        1
    );
    let page: Value = server
        .get("/v1.0/reports/office365ActivationsUserCounts", token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["value"].as_array().map(Vec::len), Some(1));
    let refused = server
        .post("/v1.0/reports/office365ActivationsUserCounts", token, &row)
        .await;
    assert_eq!(refused.status(), 403);
    server.stop().await;
}

on_both_backends!(sign_in_reads_the_tenant_and_only_it);

#[tokio::test]
async fn basic_auth_the_v1_endpoint_and_an_app_id_uri_work() {
    let server = spawn_app_with(|_| {}).await;
    let app = register(&server, &["Reports.ReadWrite.All"], 3600).await;

    let basic = server
        .client
        .post(server.url(&format!("/{}/oauth2/v2.0/token", app.tenant)))
        .basic_auth(app.client_id, Some(&app.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "api://reportroot/.default"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(basic.status(), 200);
    let body: Value = basic.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(claims_of(token).1["aud"], "api://reportroot");
    let created = server
        .post(
            "/v1.0/reports/office365ActivationsUserCounts",
            token,
            &common::activation("2026-01-01", "VISIO CLIENT"),
        )
        .await;
    assert_eq!(created.status(), 201, "a ReadWrite app writes");

    let v1 = server
        .client
        .post(server.url(&format!("/{}/oauth2/token", app.tenant)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id.to_string()),
            ("client_secret", &app.secret),
            ("resource", "https://graph.microsoft.com"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(v1.status(), 200);
    let body: Value = v1.json().await.expect("json");
    assert_eq!(body["expires_in"], "3599", "v1.0 numbers are strings");
    assert_eq!(body["resource"], "https://graph.microsoft.com");
    let token = body["access_token"].as_str().expect("token");
    let claims = claims_of(token).1;
    assert_eq!(
        (claims["ver"].as_str(), claims["appid"].as_str()),
        (Some("1.0"), Some(app.client_id.to_string().as_str()))
    );
    assert_eq!(
        server
            .count_rows("office365ActivationsUserCounts", token)
            .await,
        1
    );
    server.stop().await;
}

/// Asserts Entra's error body; returns it.
async fn assert_entra_error(response: Response, status: u16, error: &str, code: u32) -> Value {
    assert_eq!(response.status(), status, "status for {error} {code}");
    let trace_header = response.headers()["x-ms-request-id"]
        .to_str()
        .expect("header")
        .to_owned();
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().expect("description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert_eq!(body["trace_id"], trace_header.as_str());
    assert!(
        description.contains(&format!("\r\nTrace ID: {trace_header}\r\nCorrelation ID: ")),
        "{description}"
    );
    let timestamp = body["timestamp"].as_str().expect("timestamp");
    assert_eq!(
        (timestamp.len(), &timestamp[10..11], &timestamp[19..]),
        (20, " ", "Z"),
        "{timestamp}"
    );
    assert!(description.ends_with(&format!("Timestamp: {timestamp}")));
    body
}

/// Path tenant, form, and the expected status, OAuth error and AADSTS code.
type RefusalCase = (String, Vec<(String, String)>, u16, &'static str, u32);

#[tokio::test]
async fn every_refusal_has_entras_error() {
    let server = spawn_app_with(|_| {}).await;
    let app = register(&server, &["Reports.Read.All"], 3600).await;
    let elsewhere = register(&server, &["Reports.Read.All"], 3600).await;
    let expired = register_in(&server, app.tenant, &["Reports.Read.All"], -10).await;
    let tenant = app.tenant.to_string();
    let id = app.client_id.to_string();
    let good = |extra: &[(&'static str, String)], drop: &[&str]| -> Vec<(String, String)> {
        let mut form: Vec<(String, String)> = [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", id.clone()),
            ("client_secret", app.secret.clone()),
            ("scope", GRAPH_SCOPE.to_owned()),
        ]
        .into_iter()
        .filter(|(k, _)| !drop.contains(k) && !extra.iter().any(|(e, _)| e == k))
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        form.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        form
    };
    let cases: Vec<RefusalCase> = vec![
        (
            Uuid::new_v4().to_string(),
            good(&[], &[]),
            400,
            "invalid_request",
            90002,
        ),
        (
            "common".into(),
            good(&[], &[]),
            400,
            "invalid_request",
            50059,
        ),
        (
            "organizations".into(),
            good(&[], &[]),
            400,
            "invalid_request",
            50059,
        ),
        (
            "contoso.example".into(),
            good(&[], &[]),
            400,
            "invalid_request",
            90002,
        ),
        (
            "not_a_tenant".into(),
            good(&[], &[]),
            400,
            "invalid_request",
            900023,
        ),
        (
            tenant.clone(),
            good(&[], &["grant_type"]),
            400,
            "invalid_request",
            900144,
        ),
        (
            tenant.clone(),
            good(&[("grant_type", "password".into())], &[]),
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            tenant.clone(),
            good(&[], &["client_id"]),
            400,
            "invalid_request",
            900144,
        ),
        (
            tenant.clone(),
            good(&[], &["scope"]),
            400,
            "invalid_request",
            900144,
        ),
        (
            tenant.clone(),
            good(
                &[(
                    "scope",
                    "https://graph.microsoft.com/Reports.Read.All".into(),
                )],
                &[],
            ),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            tenant.clone(),
            good(&[("scope", "https://vault.azure.net/.default".into())], &[]),
            400,
            "invalid_resource",
            500011,
        ),
        (
            tenant.clone(),
            good(&[("client_id", Uuid::new_v4().to_string())], &[]),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            tenant.clone(),
            good(
                &[
                    ("client_id", elsewhere.client_id.to_string()),
                    ("client_secret", elsewhere.secret.clone()),
                ],
                &[],
            ),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            tenant.clone(),
            good(&[("client_secret", format!("{}x", app.secret))], &[]),
            401,
            "invalid_client",
            7000215,
        ),
        (
            tenant.clone(),
            good(&[], &["client_secret"]),
            401,
            "invalid_client",
            7000216,
        ),
        (
            tenant.clone(),
            good(
                &[
                    ("client_id", expired.client_id.to_string()),
                    ("client_secret", expired.secret.clone()),
                ],
                &[],
            ),
            401,
            "invalid_client",
            7000222,
        ),
    ];
    for (path_tenant, form, status, error, code) in cases {
        let correlation = Uuid::new_v4().to_string();
        let response = server
            .client
            .post(server.url(&format!("/{path_tenant}/oauth2/v2.0/token")))
            .header("client-request-id", &correlation)
            .form(&form)
            .send()
            .await
            .expect("request");
        let body = assert_entra_error(response, status, error, code).await;
        assert_eq!(body["correlation_id"], correlation.as_str());
        assert!(!body.to_string().contains(&app.secret), "no secret echoed");
    }
    let get = server
        .client
        .get(server.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .send()
        .await
        .expect("request");
    assert_entra_error(get, 400, "invalid_request", 900561).await;
    let json_body = server
        .client
        .post(server.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("request");
    assert_entra_error(json_body, 400, "invalid_request", 900144).await;
    let unknown_discovery = server
        .client
        .get(server.url(&format!(
            "/{}/v2.0/.well-known/openid-configuration",
            Uuid::new_v4()
        )))
        .send()
        .await
        .expect("request");
    assert_entra_error(unknown_discovery, 400, "invalid_request", 90002).await;
    server.stop().await;
}

#[tokio::test]
async fn discovery_names_the_issuer_and_endpoints() {
    let server = spawn_app_with(|_| {}).await;
    let app = register(&server, &["Reports.Read.All"], 3600).await;
    let base = &server.base;
    let tid = app.tenant;
    let document: Value = server
        .client
        .get(server.url(&format!("/{tid}/v2.0/.well-known/openid-configuration")))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(document["issuer"], format!("{base}/{tid}/v2.0"));
    assert_eq!(
        document["token_endpoint"],
        format!("{base}/{tid}/oauth2/v2.0/token")
    );
    assert_eq!(
        document["jwks_uri"],
        format!("{base}/{tid}/discovery/v2.0/keys")
    );
    assert!(document["authorization_endpoint"].is_string());
    let token = get_token(&server, &app, GRAPH_SCOPE).await;
    assert_eq!(
        claims_of(&token).1["iss"],
        document["issuer"],
        "tokens carry the advertised issuer"
    );
    let common: Value = server
        .client
        .get(server.url("/common/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(common["issuer"], format!("{base}/{{tenantid}}/v2.0"));
    server.stop().await;
}

#[tokio::test]
async fn failed_authentications_are_limited_per_client_and_per_address() {
    let server = spawn_app_with(|_| {}).await;
    let target = register(&server, &["Reports.Read.All"], 3600).await;
    let bystander = register_in(&server, target.tenant, &["Reports.Read.All"], 3600).await;
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, last]))
            .build()
            .expect("client")
    };
    let attempt = |client: reqwest::Client, app: &App, secret: String| {
        let url = server.url(&format!("/{}/oauth2/v2.0/token", app.tenant));
        let id = app.client_id.to_string();
        async move {
            client
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                    ("scope", GRAPH_SCOPE),
                ])
                .send()
                .await
                .expect("request")
        }
    };
    for _ in 0..10 {
        let wrong = attempt(from(2), &target, "wrong".into()).await;
        assert_eq!(wrong.status(), 401);
    }
    // The client id is blocked from any address, even with its right secret.
    let blocked = attempt(from(3), &target, target.secret.clone()).await;
    let retry: u64 = blocked.headers()["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry));
    assert_entra_error(blocked, 429, "temporarily_unavailable", 90055).await;
    // The address is blocked for every client id.
    let same_address = attempt(from(2), &bystander, bystander.secret.clone()).await;
    assert_eq!(same_address.status(), 429);
    // Another client from another address signs in.
    let fine = attempt(from(3), &bystander, bystander.secret.clone()).await;
    assert_eq!(fine.status(), 200);
    server.stop().await;
}

/// A token signed with `key`, with these claims.
fn signed(key: &SigningKey, kid: Option<&str>, claims: &Value) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(&key.private_key)
        .expect("der");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&der)).expect("sign")
}

fn app_claims(issuer: &str, tenant: Uuid, audience: &str) -> Value {
    let now = unix_now();
    json!({
        "aud": audience, "iss": issuer, "tid": tenant, "iat": now, "nbf": now, "exp": now + 600,
        "roles": ["Reports.Read.All"], "ver": "2.0"
    })
}

#[tokio::test]
async fn forged_and_confused_tokens_are_refused() {
    let server = spawn_app_with(|_| {}).await;
    let app = register(&server, &["Reports.Read.All"], 3600).await;
    let real = get_token(&server, &app, GRAPH_SCOPE).await;
    let (header, claims) = claims_of(&real);
    let kid = header["kid"].as_str().expect("kid");
    let path = "/v1.0/reports/office365ActivationsUserCounts";
    assert_eq!(server.get(path, &real).await.status(), 200);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());

    let mut forged = Vec::new();
    // alg none.
    forged.push(format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    ));
    // HS256 with the public key's modulus as the HMAC secret (RS/HS confusion).
    let jwks: Value = server
        .client
        .get(server.url("/common/discovery/keys"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let n = jwks["keys"][0]["n"].as_str().expect("n").to_owned();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.to_owned());
    forged.push(
        jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(n.as_bytes())).expect("sign"),
    );
    // Another key claiming this server's issuer and kid; and with no kid at all.
    let stranger = generate_key().await.expect("key");
    forged.push(signed(&stranger, Some(kid), &claims));
    forged.push(signed(&stranger, None, &claims));
    // An issuer nobody trusts.
    forged.push(signed(
        &stranger,
        Some(&stranger.kid),
        &app_claims(
            "https://evil.example/x/v2.0",
            app.tenant,
            "https://graph.microsoft.com",
        ),
    ));
    // The real token with its payload changed to another tenant.
    let mut other = claims.clone();
    other["tid"] = json!(Uuid::new_v4());
    let parts: Vec<&str> = real.split('.').collect();
    forged.push(format!("{}.{}.{}", parts[0], b64(&other), parts[2]));
    for token in forged {
        let response = server.get(path, &token).await;
        common::assert_error(response, 401, "InvalidAuthenticationToken").await;
    }
    server.stop().await;
}

#[tokio::test]
async fn hs256_can_be_turned_off() {
    let server = spawn_app_with(|config| config.accept_hs256 = false).await;
    let app = register(&server, &["Reports.Read.All"], 3600).await;
    let hs256 = common::token(app.tenant, &["Reports.Read.All"]);
    let path = "/v1.0/reports/office365ActivationsUserCounts";
    let message = common::assert_error(
        server.get(path, &hs256).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    assert!(message.contains("HS256"), "{message}");
    let rs256 = get_token(&server, &app, GRAPH_SCOPE).await;
    assert_eq!(server.get(path, &rs256).await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_key_keeps_verifying_its_tokens_and_the_new_one_signs() {
    let server = spawn_app_with(|_| {}).await;
    let app = register(&server, &["Reports.Read.All"], 3600).await;
    let before = get_token(&server, &app, GRAPH_SCOPE).await;
    let old_kid = claims_of(&before).0["kid"].clone();
    let storage = common::open_storage(&server.db).await;
    let key = generate_key().await.expect("key");
    storage
        .directory()
        .rotate_signing_key(&key, forget_before(key.created))
        .await
        .expect("rotate");
    // A second instance on the same database (as after `reportroot keys rotate`, once the
    // first instance re-reads its keys).
    let db = server.db.clone();
    let second = common::spawn_on(db, |_| {}).await;
    let jwks: Value = second
        .client
        .get(second.url("/common/discovery/v2.0/keys"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kids: Vec<&Value> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert!(
        kids.contains(&&old_kid) && kids.contains(&&json!(key.kid)),
        "{jwks}"
    );
    let after = get_token(&second, &app, GRAPH_SCOPE).await;
    assert_eq!(
        claims_of(&after).0["kid"],
        json!(key.kid),
        "the new key signs"
    );
    let path = "/v1.0/reports/office365ActivationsUserCounts";
    assert_eq!(
        second.get(path, &before).await.status(),
        200,
        "the old key's token still works"
    );
    assert_eq!(
        server.get(path, &after).await.status(),
        200,
        "the first instance learns the new key"
    );
    second.stop().await;
    server.stop().await;
}

/// A loopback OpenID provider with its own keys: discovery and JWKS, as Entra serves them.
struct TestIssuer {
    issuer: String,
    keys: Arc<Mutex<Vec<SigningKey>>>,
}

async fn test_issuer(tenant: Uuid) -> TestIssuer {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let issuer = format!("{base}/{tenant}/v2.0");
    let keys = Arc::new(Mutex::new(vec![generate_key().await.expect("key")]));
    let published = Arc::clone(&keys);
    let document = json!({ "issuer": issuer, "jwks_uri": format!("{base}/keys") });
    let router = axum::Router::new()
        .route(
            &format!("/{tenant}/v2.0/.well-known/openid-configuration"),
            get(move || async move { json_body(&document) }),
        )
        .route(
            "/keys",
            get(move || {
                let keys = published.lock().expect("keys").clone();
                async move {
                    let keys: Vec<Value> = keys
                        .iter()
                        .map(|k| {
                            // Entra's JWKS names no alg.
                            let mut jwk =
                                serde_json::to_value(public_jwk(k).expect("jwk")).expect("json");
                            jwk.as_object_mut().expect("object").remove("alg");
                            jwk
                        })
                        .collect();
                    json_body(&json!({ "keys": keys }))
                }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    TestIssuer { issuer, keys }
}

fn json_body(value: &Value) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
}

impl TestIssuer {
    fn token(&self, tenant: Uuid, audience: &str) -> String {
        let key = self.keys.lock().expect("keys")[0].clone();
        signed(
            &key,
            Some(&key.kid),
            &app_claims(&self.issuer, tenant, audience),
        )
    }
}

#[tokio::test]
async fn tokens_of_a_trusted_issuer_are_accepted_and_its_rotation_is_followed() {
    let tenant = Uuid::new_v4();
    let provider = test_issuer(tenant).await;
    let issuer = provider.issuer.clone();
    let interval = Duration::from_secs(4);
    let server = spawn_app_with(|config| {
        config.trusted_issuers = vec![issuer];
        config.jwks_refetch_interval = interval;
    })
    .await;
    // Made before the first fetch: RSA generation is slow in a debug build on a busy machine.
    let next_key = generate_key().await.expect("key");
    let path = "/v1.0/reports/office365ActivationsUserCounts";
    let first = provider.token(tenant, "https://graph.microsoft.com");
    assert_eq!(server.get(path, &first).await.status(), 200);
    let fetched = std::time::Instant::now();

    // Wrong audience, another tenant than the issuer's, an issuer not trusted.
    let refused = [
        provider.token(tenant, "api://someone-else"),
        provider.token(Uuid::new_v4(), "https://graph.microsoft.com"),
        {
            let key = provider.keys.lock().expect("keys")[0].clone();
            signed(
                &key,
                Some(&key.kid),
                &app_claims(
                    &provider.issuer.replace("/v2.0", "/v2.1"),
                    tenant,
                    "https://graph.microsoft.com",
                ),
            )
        },
    ];
    for token in refused {
        common::assert_error(
            server.get(path, &token).await,
            401,
            "InvalidAuthenticationToken",
        )
        .await;
    }

    // The provider rotates: its new key is unknown until reportroot may refetch. (Checked only
    // when this machine got here within the interval: the check is about the interval, not
    // the machine's speed.)
    *provider.keys.lock().expect("keys") = vec![next_key];
    let rotated = provider.token(tenant, "https://graph.microsoft.com");
    let status = server.get(path, &rotated).await.status();
    if fetched.elapsed() < interval {
        assert_eq!(status, 401, "before the refetch interval");
    }
    tokio::time::sleep(interval.saturating_sub(fetched.elapsed()) + Duration::from_millis(100))
        .await;
    assert_eq!(
        server.get(path, &rotated).await.status(),
        200,
        "after refetching the JWKS"
    );
    // The withdrawn key no longer verifies, not even a token verified before.
    assert_eq!(server.get(path, &first).await.status(), 401);
    server.stop().await;
}
