//! "Sign in with Entra ID" on the dashboard: OpenID Connect's authorization code flow with
//! PKCE against one external issuer (an Entra ID tenant, or any OpenID provider), configured
//! with [`DashboardOidcConfig`].
//!
//! 1. `GET /dashboard/signin/oidc/start?next=<dashboard path>` answers `302` to the issuer's
//!    `authorization_endpoint` (from its discovery document) with `response_type=code`,
//!    `scope=openid profile email`, a `state`, a `nonce` and an S256 `code_challenge`; the
//!    flow is kept in a sealed cookie ([`flow`]).
//! 2. The issuer sends the browser back to `GET /dashboard/signin/oidc?code=&state=`: the state
//!    must be the cookie's; the code is redeemed at the `token_endpoint` (`client_secret_post`,
//!    with the PKCE verifier); the ID token is checked ([`id_token`]).
//! 3. Who it is ([`sign_in_as`]): a dashboard user whose name is the token's
//!    `preferred_username` (or `email`), compared without case, signs in as that user with
//!    their grants; else, if the token's `tid` is a tenant reportroot knows, a read-only session
//!    for exactly that tenant; else `403`.
//!
//! Every failure shows the sign-in page with a message (400 bad or stale flow, 401 refused by
//! the issuer or a bad token, 403 nobody to sign in as, 502 the issuer answered nonsense, 503
//! the issuer could not be reached); the client secret is never logged.

mod flow;
mod id_token;

use std::time::Duration;

use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reportroot_model::TenantId;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::signin::{form, open_session, query_value, safe_next};
use super::{cookie, is_https, set_cookie};
use crate::auth::{error_chain, unix_now};
use crate::trusted_issuers::{FetchError, TrustError, TrustedIssuer};
use crate::AppState;
use flow::{challenge, Flow, FlowKeys, FLOW_COOKIE, FLOW_PATH, FLOW_SECONDS};
use id_token::IdClaims;

/// The path the issuer sends the browser back to.
pub const CALLBACK_PATH: &str = "/dashboard/signin/oidc";

/// The scopes asked for: the ID token with the user's names and email.
const SCOPE: &str = "openid profile email";

/// "Sign in with Entra ID" settings (`serve --dashboard-oidc-*`).
#[derive(Clone)]
pub struct DashboardOidcConfig {
    /// The issuer, exactly as its tokens' `iss` (e.g.
    /// `https://login.microsoftonline.com/<tenant id>/v2.0`); its discovery document is
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The app registration's client (application) id: the ID token's `aud`.
    pub client_id: String,
    /// The app registration's client secret (sent to the token endpoint only; never logged).
    pub client_secret: String,
    /// The redirect URI registered with the issuer; `None`: `<the request's base
    /// URL>/dashboard/signin/oidc`.
    pub redirect_uri: Option<String>,
}

impl std::fmt::Debug for DashboardOidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardOidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// The configured sign-in with an external issuer.
pub(crate) struct Oidc {
    config: DashboardOidcConfig,
    issuer: TrustedIssuer,
    keys: FlowKeys,
}

impl Oidc {
    /// Sign-in with `config`'s issuer, its flows sealed with keys derived from `secret`.
    pub(crate) fn new(
        config: DashboardOidcConfig,
        secret: &[u8],
        jwks_refetch: Duration,
    ) -> Result<Self, TrustError> {
        Ok(Oidc {
            issuer: TrustedIssuer::new(&config.issuer, jwks_refetch)?,
            keys: FlowKeys::new(secret),
            config,
        })
    }

    fn redirect_uri(&self, base: &str) -> String {
        self.config
            .redirect_uri
            .clone()
            .unwrap_or_else(|| format!("{}{CALLBACK_PATH}", base.trim_end_matches('/')))
    }
}

/// A failed sign-in: the sign-in page's status and message.
struct Failure(StatusCode, String);

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure(status, message.into())
    }

    /// The issuer could not be reached (503) or answered nonsense (502).
    fn issuer(error: &FetchError) -> Self {
        tracing::warn!(error = %error_chain(error), "Entra ID sign-in: the issuer failed");
        if error.is_unreachable() {
            Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Entra ID cannot be reached right now; try again later, or sign in with a password.",
            )
        } else {
            Failure::new(
                StatusCode::BAD_GATEWAY,
                "Entra ID answered in a way reportroot does not understand; try again later.",
            )
        }
    }

    fn stale() -> Self {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "The sign-in with Entra ID expired or was started in another browser or tab; please start again.",
        )
    }
}

/// `GET /dashboard/signin/oidc/start`.
pub(crate) async fn start(state: &AppState, parts: &Parts) -> Response {
    let base = state.base_url(parts);
    let secure = is_https(&base);
    let next = safe_next(query_value(parts, "next").as_deref());
    let result = match &state.oidc {
        Some(oidc) => authorize(oidc, &base, &next, secure).await,
        None => Err(not_configured()),
    };
    result.unwrap_or_else(|Failure(status, message)| {
        form(
            state,
            &parts.headers,
            secure,
            Some(&next),
            "",
            Some((status, &message)),
        )
    })
}

fn not_configured() -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        "Sign-in with Entra ID is not configured on this server.",
    )
}

/// `302` to the issuer's authorization endpoint, the flow in its cookie.
async fn authorize(oidc: &Oidc, base: &str, next: &str, secure: bool) -> Result<Response, Failure> {
    let endpoints = oidc
        .issuer
        .endpoints()
        .await
        .map_err(|e| Failure::issuer(&e))?;
    let (flow, sealed) = oidc.keys.begin(next, unix_now());
    let mut url = url::Url::parse(&endpoints.authorization).map_err(|_| {
        Failure::new(
            StatusCode::BAD_GATEWAY,
            "Entra ID's sign-in URL is invalid.",
        )
    })?;
    url.query_pairs_mut()
        .append_pair("client_id", &oidc.config.client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &oidc.redirect_uri(base))
        .append_pair("response_mode", "query")
        .append_pair("scope", SCOPE)
        .append_pair("state", &flow.state)
        .append_pair("nonce", &flow.nonce)
        .append_pair(
            "code_challenge",
            &challenge(&oidc.keys.verifier(&flow.state)),
        )
        .append_pair("code_challenge_method", "S256");
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    let location = HeaderValue::from_str(url.as_str()).map_err(|_| {
        Failure::new(
            StatusCode::BAD_GATEWAY,
            "Entra ID's sign-in URL is invalid.",
        )
    })?;
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            FLOW_COOKIE,
            &sealed,
            FLOW_PATH,
            FLOW_SECONDS as i64,
            "Lax",
            secure,
        ),
    );
    Ok(response)
}

/// `GET /dashboard/signin/oidc`: the issuer's answer. The flow cookie is cleared whatever
/// happens (a code is good once).
pub(crate) async fn callback(state: &AppState, parts: &Parts) -> Response {
    let base = state.base_url(parts);
    let secure = is_https(&base);
    let now = unix_now();
    let (result, next) = match &state.oidc {
        Some(oidc) => {
            let flow = cookie(&parts.headers, FLOW_COOKIE).and_then(|v| oidc.keys.open(v, now));
            let next = flow.as_ref().map(|flow| flow.next.clone());
            (finish(state, oidc, parts, &base, flow).await, next)
        }
        None => (Err(not_configured()), None),
    };
    let mut response = result.unwrap_or_else(|Failure(status, message)| {
        form(
            state,
            &parts.headers,
            secure,
            next.as_deref(),
            "",
            Some((status, &message)),
        )
    });
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(FLOW_COOKIE, "", FLOW_PATH, 0, "Lax", secure),
    );
    response
}

/// The token endpoint's answer (success or OAuth error).
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Checks the answer against the flow, redeems the code, checks the ID token and signs in.
async fn finish(
    state: &AppState,
    oidc: &Oidc,
    parts: &Parts,
    base: &str,
    flow: Option<Flow>,
) -> Result<Response, Failure> {
    if let Some(error) = query_value(parts, "error") {
        let description = query_value(parts, "error_description").unwrap_or_default();
        return Err(refused(
            "Entra ID did not sign you in",
            &error,
            &description,
        ));
    }
    let flow = flow.ok_or_else(Failure::stale)?;
    let given = query_value(parts, "state").unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(flow.state.as_bytes())) {
        return Err(Failure::stale());
    }
    let code = query_value(parts, "code")
        .filter(|code| !code.is_empty())
        .ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "Entra ID sent no code."))?;
    let id_token = redeem(oidc, base, &flow, &code).await?;
    let claims = id_token::verify(&oidc.issuer, &oidc.config.client_id, &id_token, &flow.nonce)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "Entra ID sign-in: ID token refused");
            Failure::new(StatusCode::UNAUTHORIZED, error.to_string())
        })?;
    sign_in_as(
        state,
        oidc,
        &claims,
        &safe_next(Some(&flow.next)),
        is_https(base),
    )
    .await
}

/// The ID token the token endpoint gives for `code`.
async fn redeem(oidc: &Oidc, base: &str, flow: &Flow, code: &str) -> Result<String, Failure> {
    let endpoints = oidc
        .issuer
        .endpoints()
        .await
        .map_err(|e| Failure::issuer(&e))?;
    let redirect_uri = oidc.redirect_uri(base);
    let verifier = oidc.keys.verifier(&flow.state);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", oidc.config.client_id.as_str()),
        ("client_secret", oidc.config.client_secret.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, answer): (u16, TokenAnswer) = oidc
        .issuer
        .post_form(&endpoints.token, &form)
        .await
        .map_err(|e| Failure::issuer(&e))?;
    if let Some(error) = answer.error {
        let description = answer.error_description.unwrap_or_default();
        return Err(refused(
            "Entra ID refused the sign-in code",
            &error,
            &description,
        ));
    }
    match answer.id_token {
        Some(token) if (200..300).contains(&status) => Ok(token),
        _ => Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            "Entra ID's token endpoint gave no ID token.",
        )),
    }
}

/// 401 with the issuer's error, shortened (its text is shown, escaped, on the page).
fn refused(what: &str, error: &str, description: &str) -> Failure {
    let short = |text: &str, most: usize| text.chars().take(most).collect::<String>();
    tracing::warn!(error = %short(error, 100), "Entra ID sign-in refused by the issuer");
    let mut message = format!("{what}: {}", short(error, 100));
    if !description.is_empty() {
        message.push_str(&format!(" ({})", short(description, 300)));
    }
    Failure::new(StatusCode::UNAUTHORIZED, message)
}

/// Signs in as the dashboard user the token names, else read-only to its tenant, else 403.
async fn sign_in_as(
    state: &AppState,
    oidc: &Oidc,
    claims: &IdClaims,
    next: &str,
    secure: bool,
) -> Result<Response, Failure> {
    let storage = |error: reportroot_storage::StorageError| {
        tracing::error!(error = %error_chain(&error), "Entra ID sign-in: the database failed");
        Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable right now; try again later.",
        )
    };
    let accounts = state.storage.accounts();
    // Why every user is read: names are compared without case (Entra's UPNs keep whatever case
    // they were typed in), which no indexed lookup does; dashboard users are people, so few.
    let users = accounts.users().await.map_err(storage)?;
    let user = claims.user_names().find_map(|name| {
        users
            .iter()
            .find(|user| user.name.eq_ignore_ascii_case(name))
    });
    let (name, tenant) = match user {
        Some(user) => (user.name.clone(), None),
        None => {
            let tenant = token_tenant(oidc, claims).ok_or_else(|| nobody(claims))?;
            if !accounts.is_known_tenant(tenant).await.map_err(storage)? {
                return Err(nobody(claims));
            }
            // A space: no dashboard user can have this name (see `reportroot user add`).
            (format!("{} (Entra ID)", claims.who()), Some(tenant))
        }
    };
    tracing::info!(user = %name, tenant = ?tenant.map(|t| t.0), "dashboard sign-in with Entra ID");
    open_session(state, &name, tenant, next, secure)
        .await
        .map_err(|error| {
            tracing::error!(message = %error.message, "Entra ID sign-in: no session");
            Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now; try again later.",
            )
        })
}

/// The token's `tid`, if it is a GUID (and, when the issuer URL names a tenant, that tenant).
fn token_tenant(oidc: &Oidc, claims: &IdClaims) -> Option<TenantId> {
    let tid = Uuid::parse_str(claims.tid.as_deref()?).ok()?;
    match oidc.issuer.pinned_tenant() {
        Some(pinned) if pinned != tid => None,
        _ => Some(TenantId(tid)),
    }
}

fn nobody(claims: &IdClaims) -> Failure {
    Failure::new(
        StatusCode::FORBIDDEN,
        format!(
            "You signed in to Entra ID as {}, but that is no reportroot dashboard user and your \
             organisation's tenant has no data here. Ask an administrator to add you \
             (reportroot user add).",
            claims.who()
        ),
    )
}
