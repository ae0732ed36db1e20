//! The dashboard's sign-in: users sign in with a name and password at `/dashboard/signin`
//! and get a session cookie; the dashboard's pages and its calls to the OData API are then
//! made as that user, for the tenants granted to them.
//!
//! - **Sessions** live in the database (`reportroot_sessions`, see
//!   [`reportroot_storage::accounts`]): the cookie holds a random 256-bit token and the table
//!   only its SHA-256 digest. Why SHA-256 and not argon2 as for passwords: the token is random
//!   and as long as the digest, so no guess list or brute force gets anywhere near it, and a
//!   fast digest lets every request find its session with one indexed lookup (argon2 is slow
//!   on purpose, and salted, which rules out a lookup by digest). Someone who reads the table
//!   learns digests, never a cookie that works.
//! - **Expiry** is fixed: [`SESSION_LIFETIME_SECONDS`] after sign-in, whatever is done
//!   meanwhile (no write per request; signing in again starts a new session). Signing out
//!   deletes the session's row, so an old cookie is refused at once; `reportroot user passwd`
//!   and `user remove` end every session of the user.
//! - **CSRF**: every session has its own random token ([`DashboardUser::csrf_token`], given to
//!   the pages by `GET /dashboard/api/me`); every state-changing dashboard request must carry it
//!   as the form field `csrf` or the header `X-CSRF-Token` (compared in constant time). The
//!   sign-in form, before any session exists, uses a double-submit cookie.
//! - **Sign in with Entra ID** ([`oidc`]): OpenID Connect against one external issuer, when
//!   configured ([`DashboardOidcConfig`]); it ends in the same kind of session.
//! - **The API with a session** ([`api_caller`]): a request without `Authorization` but with
//!   the session cookie is served only when it is same-origin (`Sec-Fetch-Site: same-origin`,
//!   or an `Origin` equal to the server's own) and names a granted tenant in
//!   `X-Reportroot-Tenant`; it reads, and writes only with a grant that allows writing and a
//!   valid `X-CSRF-Token`.

pub(crate) mod oidc;
mod page;
mod signin;

use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use rand::RngCore;
use reportroot_model::TenantId;
use reportroot_storage::accounts::Session;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::auth::{unix_now, Caller};
use crate::error::ApiError;
use crate::AppState;

pub use oidc::DashboardOidcConfig;
pub(crate) use signin::{match_path, serve};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "reportroot_session";

/// The sign-in form's double-submit CSRF cookie.
pub const SIGNIN_CSRF_COOKIE: &str = "reportroot_signin_csrf";

/// How long a session lasts after sign-in (fixed, not sliding): a working day.
pub const SESSION_LIFETIME_SECONDS: i64 = 12 * 3600;

/// The header naming the tenant a session's API call is for.
pub const TENANT_HEADER: &str = "x-reportroot-tenant";

/// The header carrying a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A tenant a signed-in user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantGrant {
    /// The tenant.
    pub id: TenantId,
    /// Its display name (`reportroot tenant rename`), else its id.
    pub display_name: String,
    /// Whether the user may write to it (import), besides reading.
    pub write: bool,
}

/// The user signed in to the dashboard by a request's session cookie.
///
/// Got from [`dashboard_user`]. A page handler shows only [`DashboardUser::tenants`], checks
/// [`DashboardUser::may_read`] / [`DashboardUser::may_write`] for a tenant named in a request,
/// and [`DashboardUser::check_csrf`] before changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardUser {
    /// The sign-in name.
    pub name: String,
    /// An operator (`--all-tenants`) reads and writes every tenant; `tenants` then lists every
    /// known tenant.
    pub operator: bool,
    /// The session's CSRF token, for the pages' forms and `X-CSRF-Token` headers.
    pub csrf_token: String,
    /// The tenants the user may see, by display name.
    pub tenants: Vec<TenantGrant>,
}

impl DashboardUser {
    /// Whether the user may read `tenant`'s reports (an operator: any tenant).
    pub fn may_read(&self, tenant: TenantId) -> bool {
        self.operator || self.tenants.iter().any(|grant| grant.id == tenant)
    }

    /// Whether the user may write `tenant`'s reports (an operator: any tenant).
    pub fn may_write(&self, tenant: TenantId) -> bool {
        self.operator
            || self
                .tenants
                .iter()
                .any(|grant| grant.id == tenant && grant.write)
    }

    /// Fails with 403 unless the request carries this session's CSRF token, as the form field
    /// `csrf` (pass its value as `form_value`) or the header `X-CSRF-Token`. Call it before
    /// any state-changing dashboard request.
    pub fn check_csrf(
        &self,
        headers: &HeaderMap,
        form_value: Option<&str>,
    ) -> Result<(), ApiError> {
        if csrf_matches(&self.csrf_token, headers, form_value) {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }
}

/// The dashboard user of a request: `Ok(None)` when it has no session cookie, or its session
/// is unknown, expired or signed out (a page then redirects to
/// `/dashboard/signin?next=<its path>`). An operator's [`DashboardUser::tenants`] are every
/// known tenant (`reportroot_tenants`), writable.
pub(crate) async fn dashboard_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<DashboardUser>, ApiError> {
    let Some(session) = session_of(state, headers).await? else {
        return Ok(None);
    };
    let tenants = if session.operator {
        state
            .storage
            .accounts()
            .tenants()
            .await?
            .into_iter()
            .map(|tenant| TenantGrant {
                id: tenant.tenant,
                display_name: display_name(tenant.tenant, tenant.display_name),
                write: true,
            })
            .collect()
    } else {
        let mut tenants: Vec<TenantGrant> = session
            .tenants
            .into_iter()
            .map(|(grant, name)| TenantGrant {
                id: grant.tenant,
                display_name: display_name(grant.tenant, name),
                write: grant.write,
            })
            .collect();
        tenants.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        tenants
    };
    Ok(Some(DashboardUser {
        name: session.user,
        operator: session.operator,
        csrf_token: session.csrf_token,
        tenants,
    }))
}

/// The answer of a dashboard page without a session: `303` to the sign-in form, which comes
/// back to `next` (the page's path and query; only `/dashboard…` paths are followed) after
/// signing in.
pub fn signin_redirect(next: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let mut response = axum::http::StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/dashboard/signin?next={next}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn display_name(tenant: TenantId, name: Option<String>) -> String {
    name.filter(|name| !name.is_empty())
        .unwrap_or_else(|| tenant.0.to_string())
}

/// The caller of an API request: its bearer token when it has an `Authorization` header
/// (exactly as before sessions existed), else its dashboard session (see the module's
/// documentation), else 401.
pub(crate) async fn api_caller(
    state: &AppState,
    headers: &HeaderMap,
    base_url: &str,
) -> Result<Caller, ApiError> {
    if headers.contains_key(header::AUTHORIZATION) || cookie(headers, SESSION_COOKIE).is_none() {
        return state.verifier.caller(headers).await;
    }
    if !is_same_origin(headers, base_url) {
        return Err(ApiError::access_denied(
            "A session cookie is accepted only on same-origin requests (Sec-Fetch-Site: same-origin or the server's own Origin).",
        ));
    }
    let session = session_of(state, headers).await?.ok_or_else(|| {
        ApiError::unauthenticated("The session has expired or was signed out; sign in again.")
    })?;
    let tenant = headers
        .get(TENANT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| Uuid::parse_str(value.trim()).ok())
        .map(TenantId)
        .ok_or_else(|| {
            ApiError::access_denied(
                "A session's API call must name its tenant's GUID in X-Reportroot-Tenant.",
            )
        })?;
    let write = if session.operator {
        true
    } else {
        session
            .tenants
            .iter()
            .find(|(grant, _)| grant.tenant == tenant)
            .map(|(grant, _)| grant.write)
            .ok_or_else(|| {
                ApiError::access_denied("The signed-in user has no access to this tenant.")
            })?
    };
    Ok(Caller {
        tenant,
        can_read: true,
        can_write: write && csrf_matches(&session.csrf_token, headers, None),
        app: None,
    })
}

/// The live session a request's cookie names, if any.
async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let now = unix_now() as i64;
    Ok(state
        .storage
        .accounts()
        .session(&token_hash(token), now)
        .await?)
}

/// The SHA-256 digest of a session token, lower-case hex: what the database keeps.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A new random token: 32 bytes from the OS's source, base64url without padding.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether the request carries `expected` as the form field (`form_value`) or the
/// `X-CSRF-Token` header, compared in constant time.
fn csrf_matches(expected: &str, headers: &HeaderMap, form_value: Option<&str>) -> bool {
    let given = form_value.or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
    given.is_some_and(|given| {
        !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
    })
}

/// 403 for a missing or wrong CSRF token.
fn csrf_refused() -> ApiError {
    ApiError::access_denied(
        "The request lacks this session's CSRF token (form field csrf or header X-CSRF-Token).",
    )
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// Whether a request is same-origin: every one of `Sec-Fetch-Site` and `Origin` it carries says
/// so (`same-origin`; the server's own origin, by `base_url` or by the `Host` it was sent to),
/// and it carries at least one.
pub(crate) fn is_same_origin(headers: &HeaderMap, base_url: &str) -> bool {
    let site = headers.get("sec-fetch-site");
    let origin = headers.get(header::ORIGIN);
    if site.is_none() && origin.is_none() {
        return false;
    }
    let site_ok = site.is_none_or(|site| site.as_bytes().eq_ignore_ascii_case(b"same-origin"));
    let origin_ok = origin.is_none_or(|origin| is_own_origin(origin, headers, base_url));
    site_ok && origin_ok
}

/// Whether a request that says where it comes from says it comes from here (a request that
/// says nothing, such as curl's, passes: other checks stand for it).
pub(crate) fn not_cross_site(headers: &HeaderMap, base_url: &str) -> bool {
    let says = headers.contains_key("sec-fetch-site") || headers.contains_key(header::ORIGIN);
    !says || is_same_origin(headers, base_url)
}

fn is_own_origin(origin: &HeaderValue, headers: &HeaderMap, base_url: &str) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Ok(base) = url::Url::parse(base_url) else {
        return false;
    };
    if origin.eq_ignore_ascii_case(&base.origin().ascii_serialization()) {
        return true;
    }
    // Behind a proxy that keeps `Host`, the browser's origin is that host, with the scheme the
    // server is reached by.
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .is_some_and(|host| origin.eq_ignore_ascii_case(&format!("{}://{host}", base.scheme())))
}

/// Whether answers to this request should set `Secure` cookies: it came over HTTPS (its
/// listener's URL, or the configured public URL, is `https://`).
pub(crate) fn is_https(base_url: &str) -> bool {
    base_url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// A `Set-Cookie` value with the attributes every dashboard cookie has.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    same_site: &str,
    secure: bool,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let map = headers(&[(
            "cookie",
            "a=1; reportroot_session_x=2; reportroot_session=tok",
        )]);
        assert_eq!(cookie(&map, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&map, "b"), None);
    }

    #[test]
    fn same_origin_needs_a_header_that_says_so_and_none_that_says_otherwise() {
        let base = "http://127.0.0.1:8080";
        assert!(!is_same_origin(&headers(&[]), base));
        assert!(is_same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            base
        ));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            base
        ));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            base
        ));
        assert!(is_same_origin(
            &headers(&[("origin", "http://127.0.0.1:8080")]),
            base
        ));
        assert!(!is_same_origin(
            &headers(&[("origin", "http://evil.example")]),
            base
        ));
        assert!(!is_same_origin(
            &headers(&[
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://evil.example")
            ]),
            base
        ));
        let proxied = headers(&[
            ("origin", "http://reports.example"),
            ("host", "reports.example"),
        ]);
        assert!(is_same_origin(&proxied, base));
        assert!(not_cross_site(&headers(&[]), base));
        assert!(!not_cross_site(
            &headers(&[("sec-fetch-site", "cross-site")]),
            base
        ));
    }

    #[test]
    fn csrf_tokens_must_match_whole() {
        let map = headers(&[("x-csrf-token", "abc")]);
        assert!(csrf_matches("abc", &map, None));
        assert!(!csrf_matches("abcd", &map, None));
        assert!(csrf_matches("abcd", &map, Some("abcd")));
        assert!(!csrf_matches("", &headers(&[]), Some("")));
    }

    #[test]
    fn pages_without_a_session_go_to_the_form_and_back() {
        let response = signin_redirect("/dashboard/reports/x?from=2024-01-01&to=2024-02-01");
        assert_eq!(response.status(), 303);
        assert_eq!(
            response.headers()[header::LOCATION],
            "/dashboard/signin?next=%2Fdashboard%2Freports%2Fx%3Ffrom%3D2024-01-01%26to%3D2024-02-01"
        );
    }

    #[test]
    fn a_token_is_stored_as_its_sha256() {
        let token = random_token();
        assert_eq!(token.len(), 43);
        let digest = token_hash(&token);
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains(&token));
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
