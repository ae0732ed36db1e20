//! `/dashboard/signin` (the form and its POST), `/dashboard/signout` and
//! `/dashboard/api/me`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use reportroot_storage::accounts::NewSession;
use serde::Serialize;

use super::page::{signin_page, SigninForm};
use super::{
    cookie, csrf_matches, csrf_refused, dashboard_user, is_https, not_cross_site, random_token,
    set_cookie, token_hash, SESSION_COOKIE, SESSION_LIFETIME_SECONDS, SIGNIN_CSRF_COOKIE,
};
use crate::auth::unix_now;
use crate::client_secrets;
use crate::error::ApiError;
use crate::oauth::failed_logins::Subject;
use crate::AppState;

/// Where a signed-in user goes when the form names no (acceptable) `next`.
const HOME: &str = "/dashboard";

/// How long the sign-in form's CSRF cookie lasts: a form left open longer is re-shown.
const SIGNIN_CSRF_SECONDS: i64 = 3600;

/// The sign-in endpoints, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/dashboard/signin`.
    SignIn,
    /// `/dashboard/signin/oidc/start`: on to the external issuer.
    OidcStart,
    /// `/dashboard/signin/oidc`: back from it.
    OidcCallback,
    /// `/dashboard/signout`.
    SignOut,
    /// `/dashboard/api/me`.
    Me,
}

/// The endpoint a path names, if it is one of sign-in's.
pub(crate) fn match_path(segments: &[String]) -> Option<Endpoint> {
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["dashboard", "signin"] => Some(Endpoint::SignIn),
        ["dashboard", "signin", "oidc", "start"] => Some(Endpoint::OidcStart),
        ["dashboard", "signin", "oidc"] => Some(Endpoint::OidcCallback),
        ["dashboard", "signout"] => Some(Endpoint::SignOut),
        ["dashboard", "api", "me"] => Some(Endpoint::Me),
        _ => None,
    }
}

/// Serves a sign-in endpoint; reads the body itself (only a POST has one).
pub(crate) async fn serve(
    state: &Arc<AppState>,
    endpoint: Endpoint,
    parts: &Parts,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let base = state.base_url(parts);
    let secure = is_https(&base);
    match (endpoint, &parts.method) {
        (Endpoint::SignIn, &Method::GET | &Method::HEAD) => {
            let next = query_value(parts, "next");
            Ok(form(
                state,
                &parts.headers,
                secure,
                next.as_deref(),
                "",
                None,
            ))
        }
        (Endpoint::SignIn, &Method::POST) => {
            let form = read_form(state, parts, body).await?;
            let source = parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip());
            sign_in(state, &parts.headers, &base, source, &form).await
        }
        (Endpoint::SignIn, _) => Err(ApiError::method_not_allowed("GET, POST")),
        (Endpoint::OidcStart, &Method::GET | &Method::HEAD) => {
            Ok(super::oidc::start(state, parts).await)
        }
        (Endpoint::OidcCallback, &Method::GET) => Ok(super::oidc::callback(state, parts).await),
        (Endpoint::OidcStart | Endpoint::OidcCallback, _) => {
            Err(ApiError::method_not_allowed("GET"))
        }
        (Endpoint::SignOut, &Method::POST) => {
            let form = read_form(state, parts, body).await?;
            sign_out(state, &parts.headers, &base, &form).await
        }
        (Endpoint::SignOut, _) => Err(ApiError::method_not_allowed("POST")),
        (Endpoint::Me, &Method::GET) => me(state, &parts.headers).await,
        (Endpoint::Me, _) => Err(ApiError::method_not_allowed("GET")),
    }
}

/// A form-urlencoded body's fields.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

async fn read_form(
    state: &AppState,
    parts: &Parts,
    body: &mut Option<Body>,
) -> Result<Form, ApiError> {
    let bytes = match body.take() {
        Some(unread) => crate::read_body_by_deadline(state, parts, unread).await?,
        None => bytes::Bytes::new(),
    };
    Ok(Form(form_urlencoded::parse(&bytes).into_owned().collect()))
}

pub(super) fn query_value(parts: &Parts, name: &str) -> Option<String> {
    form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Where to go after signing in: `next` if it is a path of the dashboard on this site, else
/// the dashboard's home. Why so strict: anything else (`//evil.example`, `https://…`,
/// `/\evil`) would make the sign-in form an open redirect.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next else {
        return HOME.to_owned();
    };
    let rest = next.strip_prefix(HOME);
    let boundary = rest.is_some_and(|rest| {
        rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') || rest.starts_with('#')
    });
    let clean = !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    if boundary && clean {
        next.to_owned()
    } else {
        HOME.to_owned()
    }
}

/// The sign-in form with `status`, its CSRF cookie kept (or made, if the request has none),
/// and the "Sign in with Entra ID" link when that is configured.
pub(super) fn form(
    state: &AppState,
    headers: &HeaderMap,
    secure: bool,
    next: Option<&str>,
    username: &str,
    error: Option<(StatusCode, &str)>,
) -> Response {
    let csrf = cookie(headers, SIGNIN_CSRF_COOKIE)
        .filter(|value| value.len() == 43)
        .map_or_else(random_token, str::to_owned);
    let (status, message) = error.unwrap_or((StatusCode::OK, ""));
    let html = signin_page(&SigninForm {
        csrf: &csrf,
        next: &safe_next(next),
        username,
        error: (!message.is_empty()).then_some(message),
        external: state.oidc.is_some(),
    });
    let mut response = html_response(status, html);
    let value = set_cookie(
        SIGNIN_CSRF_COOKIE,
        &csrf,
        "/dashboard",
        SIGNIN_CSRF_SECONDS,
        "Strict",
        secure,
    );
    response.headers_mut().append(header::SET_COOKIE, value);
    response
}

/// An HTML page that is never cached, framed or allowed to load anything from elsewhere.
pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        html,
    )
        .into_response()
}

/// `POST /dashboard/signin`.
async fn sign_in(
    state: &AppState,
    headers: &HeaderMap,
    base: &str,
    source: Option<IpAddr>,
    form_fields: &Form,
) -> Result<Response, ApiError> {
    let secure = is_https(base);
    let next = form_fields.get("next");
    let username = form_fields.get("username").unwrap_or_default().trim();
    let refuse = |status, message: &str| {
        Ok(form(
            state,
            headers,
            secure,
            next,
            username,
            Some((status, message)),
        ))
    };
    let expected = cookie(headers, SIGNIN_CSRF_COOKIE).unwrap_or_default();
    if !not_cross_site(headers, base) || !csrf_matches(expected, headers, form_fields.get("csrf")) {
        return refuse(
            StatusCode::FORBIDDEN,
            "The sign-in form expired or did not come from this site; please sign in again.",
        );
    }
    let subjects = subjects(username, source);
    if let Some(wait) = state.dashboard_logins.blocked(&subjects) {
        let mut response = form(
            state,
            headers,
            secure,
            next,
            username,
            Some((
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many failed sign-ins; try again in {wait} seconds."),
            )),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Ok(response);
    }
    let password = form_fields.get("password").unwrap_or_default();
    if !password_matches(state, username, password).await? {
        state.dashboard_logins.record(&subjects);
        return refuse(
            StatusCode::UNAUTHORIZED,
            "The user name or password is incorrect.",
        );
    }
    tracing::info!(user = %username, "dashboard sign-in");
    open_session(state, username, None, &safe_next(next), secure).await
}

/// Starts a session for `user` (with the user's grants; with `tenant`, a read-only session for
/// exactly that tenant instead) and answers `303` to `next` with its cookie.
pub(super) async fn open_session(
    state: &AppState,
    user: &str,
    tenant: Option<reportroot_model::TenantId>,
    next: &str,
    secure: bool,
) -> Result<Response, ApiError> {
    let token = random_token();
    let now = unix_now() as i64;
    let session = NewSession {
        token_hash: token_hash(&token),
        user: user.to_owned(),
        csrf_token: random_token(),
        created: now,
        expires: now + SESSION_LIFETIME_SECONDS,
    };
    let accounts = state.storage.accounts();
    match tenant {
        None => accounts.create_session(&session).await?,
        Some(tenant) => accounts.create_tenant_session(&session, tenant).await?,
    }
    let mut response = redirect(next);
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &token,
            "/",
            SESSION_LIFETIME_SECONDS,
            "Lax",
            secure,
        ),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_CSRF_COOKIE, "", "/dashboard", 0, "Strict", secure),
    );
    Ok(response)
}

/// Failed sign-ins are counted per user name (case-insensitively) and per source address.
fn subjects(username: &str, source: Option<IpAddr>) -> Vec<Subject> {
    let mut subjects = vec![Subject::Client(format!(
        "dashboard user {}",
        username.to_lowercase()
    ))];
    subjects.extend(source.map(Subject::Address));
    subjects
}

/// Whether `password` is `username`'s. An unknown user costs the same argon2 verification as a
/// known one (against a hash that matches nothing), so timing does not tell which names exist.
async fn password_matches(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<bool, ApiError> {
    let stored = if username.is_empty() {
        None
    } else {
        state.storage.accounts().password_hash(username).await?
    };
    let _slot = state
        .secret_checks
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("Sign-in is unavailable; try again later."))?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || match stored {
        Some(hash) => client_secrets::verify(&password, &hash),
        None => {
            client_secrets::verify(&password, client_secrets::decoy_hash());
            false
        }
    })
    .await
    .map_err(|_| ApiError::unavailable("Sign-in is unavailable; try again later."))
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /dashboard/signout`: ends the session (its row is deleted), clears the cookie and
/// goes to the sign-in form. Without a live session there is nothing to protect, and the
/// cookie is cleared all the same.
async fn sign_out(
    state: &AppState,
    headers: &HeaderMap,
    base: &str,
    form_fields: &Form,
) -> Result<Response, ApiError> {
    if !not_cross_site(headers, base) {
        return Err(csrf_refused());
    }
    if let Some(user) = dashboard_user_light(state, headers).await? {
        if !csrf_matches(&user.1, headers, form_fields.get("csrf")) {
            return Err(csrf_refused());
        }
        state.storage.accounts().revoke_session(&user.0).await?;
    }
    let mut response = redirect("/dashboard/signin");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/", 0, "Lax", is_https(base)),
    );
    Ok(response)
}

/// The (token digest, CSRF token) of the request's live session, if any.
async fn dashboard_user_light(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let digest = token_hash(token);
    let session = state
        .storage
        .accounts()
        .session(&digest, unix_now() as i64)
        .await?;
    Ok(session.map(|session| (digest, session.csrf_token)))
}

/// The answer of `GET /dashboard/api/me`, properties in this order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    name: String,
    operator: bool,
    csrf_token: String,
    tenants: Vec<MeTenant>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MeTenant {
    id: String,
    display_name: String,
    write: bool,
}

/// `GET /dashboard/api/me`: who is signed in, their CSRF token and tenants; 401 without a
/// live session.
async fn me(state: &AppState, headers: &HeaderMap) -> Result<Response, ApiError> {
    let user = dashboard_user(state, headers).await?.ok_or_else(|| {
        ApiError::unauthenticated("No one is signed in; sign in at /dashboard/signin.")
    })?;
    let me = Me {
        name: user.name,
        operator: user.operator,
        csrf_token: user.csrf_token,
        tenants: user
            .tenants
            .into_iter()
            .map(|grant| MeTenant {
                id: grant.id.0.to_string(),
                display_name: grant.display_name,
                write: grant.write,
            })
            .collect(),
    };
    let mut response =
        crate::entities::json_response(StatusCode::OK, serde_json::to_vec(&me).unwrap_or_default());
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dashboard_paths_are_followed_after_sign_in() {
        for good in [
            "/dashboard",
            "/dashboard/",
            "/dashboard/reports/x?from=2024-01-01",
            "/dashboard#top",
        ] {
            assert_eq!(safe_next(Some(good)), good);
        }
        for bad in [
            "https://evil.example/dashboard",
            "//evil.example/dashboard",
            "/dashboard//evil.example",
            "/dashboardx",
            "/\\evil.example",
            "/dashboard/\\evil",
            "/v1.0/reports",
            "dashboard",
            "/dashboard\n",
        ] {
            assert_eq!(safe_next(Some(bad)), HOME, "{bad}");
        }
        assert_eq!(safe_next(None), HOME);
    }
}
