//! Tokens and permissions over real HTTP.
#![expect(clippy::unwrap_used)]

use crate::common;

on_both_backends!(
    missing_or_bad_tokens_are_401_with_www_authenticate,
    permissions_come_from_roles_or_scp
);

use common::*;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::Method;
use serde_json::json;

const PATH: &str = "/v1.0/reports/office365ActivationsUserCounts";

fn sign(claims: serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn in_an_hour() -> u64 {
    reportroot_api::auth::unix_now() + 3600
}

async fn missing_or_bad_tokens_are_401_with_www_authenticate(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let tenant = uuid::Uuid::new_v4().to_string();
    let good_claims = json!({"tid": tenant, "aud": "https://graph.microsoft.com", "exp": in_an_hour(), "roles": ["Reports.Read.All"]});
    let bad_tokens = [
        sign(good_claims.clone(), b"another secret"),
        sign(
            json!({"tid": tenant, "aud": "https://graph.microsoft.com", "exp": 1_000_000, "roles": ["Reports.Read.All"]}),
            SECRET,
        ),
        sign(
            json!({"tid": tenant, "aud": "api://someone-else", "exp": in_an_hour(), "roles": ["Reports.Read.All"]}),
            SECRET,
        ),
        sign(
            json!({"tid": tenant, "aud": "https://graph.microsoft.com", "roles": ["Reports.Read.All"]}),
            SECRET,
        ),
        sign(
            json!({"tid": "not-a-guid", "aud": "https://graph.microsoft.com", "exp": in_an_hour(), "roles": ["Reports.Read.All"]}),
            SECRET,
        ),
        "garbage".to_owned(),
    ];
    for token in bad_tokens {
        let response = app.get(PATH, &token).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_error(response, 401, "InvalidAuthenticationToken").await;
    }
    let response = app.client.get(app.url(PATH)).send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_error(response, 401, "InvalidAuthenticationToken").await;
    let response = app
        .client
        .get(app.url(PATH))
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "InvalidAuthenticationToken").await;

    // The good claims work, with either Graph audience.
    assert_eq!(
        app.get(PATH, &sign(good_claims.clone(), SECRET))
            .await
            .status(),
        200
    );
    let mut app_id_audience = good_claims;
    app_id_audience["aud"] = json!("00000003-0000-0000-c000-000000000000");
    assert_eq!(
        app.get(PATH, &sign(app_id_audience, SECRET)).await.status(),
        200
    );
}

async fn permissions_come_from_roles_or_scp(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let tenant = uuid::Uuid::new_v4();
    let body = activation("2025-06-01", "VISIO CLIENT");

    let nothing = token(tenant, &["User.Read.All"]);
    assert_error(app.get(PATH, &nothing).await, 403, "accessDenied").await;
    assert_error(app.post(PATH, &nothing, &body).await, 403, "accessDenied").await;

    let read = token(tenant, &["Reports.Read.All"]);
    assert_eq!(app.get(PATH, &read).await.status(), 200);
    assert_error(app.post(PATH, &read, &body).await, 403, "accessDenied").await;
    let response = app
        .send_json(
            Method::PATCH,
            &format!("{PATH}/{}", uuid::Uuid::new_v4()),
            &read,
            &json!({"assigned": 1}),
        )
        .await;
    assert_error(response, 403, "accessDenied").await;
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &read)
            .await,
        0
    );

    let delegated = sign(
        json!({"tid": tenant.to_string(), "aud": "https://graph.microsoft.com", "exp": in_an_hour(), "scp": "User.Read Reports.ReadWrite.All"}),
        SECRET,
    );
    assert_eq!(app.post(PATH, &delegated, &body).await.status(), 201);
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &read)
            .await,
        1
    );
}
