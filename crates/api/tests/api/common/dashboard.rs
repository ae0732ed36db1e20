//! Dashboard users and sign-in for the tests: one password, users with grants, the sign-in
//! form posted as a browser posts it, and the cookies a response sets.
#![expect(clippy::unwrap_used)]

use reportroot_model::TenantId;
use reportroot_storage::accounts::{Grant, User};
use uuid::Uuid;

use super::{open_storage, TestApp};

/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery staple";

/// A user with `grants` (tenant, write), unique to the test (PostgreSQL databases are shared).
pub async fn add_user(app: &TestApp, grants: &[(Uuid, bool)], operator: bool) -> String {
    let storage = open_storage(&app.db).await;
    let name = format!("user-{}", Uuid::new_v4().simple());
    let user = User {
        name: name.clone(),
        operator,
        grants: grants
            .iter()
            .map(|(tenant, write)| Grant {
                tenant: TenantId(*tenant),
                write: *write,
            })
            .collect(),
        created: 0,
    };
    let hash = reportroot_api::client_secrets::hash(PASSWORD);
    assert!(storage.accounts().add_user(&user, &hash).await.unwrap());
    assert!(
        !storage.accounts().add_user(&user, &hash).await.unwrap(),
        "a name is taken once"
    );
    name
}

/// The value of cookie `name` set by a response, and the whole `Set-Cookie` line.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|line| line.starts_with(&format!("{name}=")))
        .map(|line| {
            let value = line[name.len() + 1..].split(';').next().unwrap().to_owned();
            (value, line.to_owned())
        })
}

/// Fetches the form and posts it: the response (303 on success).
pub async fn post_sign_in(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
    next: &str,
) -> reqwest::Response {
    let form = client
        .get(format!("{base}/dashboard/signin?next={}", urlencode(next)))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let (csrf, _) = set_cookie(&form, "reportroot_signin_csrf").expect("a form CSRF cookie");
    let html = form.text().await.unwrap();
    assert!(
        html.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
        "{html}"
    );
    client
        .post(format!("{base}/dashboard/signin"))
        .header("Cookie", format!("reportroot_signin_csrf={csrf}"))
        .form(&[
            ("username", user),
            ("password", password),
            ("csrf", &csrf),
            ("next", next),
        ])
        .send()
        .await
        .unwrap()
}

/// `text` as a URL query value.
pub fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Signs in and returns the session cookie's value.
pub async fn sign_in(app: &TestApp, user: &str) -> String {
    let response = post_sign_in(&app.client, &app.base, user, PASSWORD, "/dashboard").await;
    assert_eq!(response.status(), 303);
    set_cookie(&response, "reportroot_session")
        .expect("session cookie")
        .0
}
