//! `POST /{tenant}/oauth2/v2.0/token` (and v1.0's `/{tenant}/oauth2/token`): the client
//! credentials grant as Entra ID answers it, checked in Entra's order — tenant, request
//! parameters, client authentication, resource — and with Entra's errors.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use reportroot_model::TenantId;
use reportroot_storage::directory::{AppRegistration, AppSecret};
use serde::Serialize;
use uuid::Uuid;

use super::entra_error::{json_response, EntraError, TraceIds};
use super::failed_logins::Subject;
use super::{known_tenant, TenantSegment};
use crate::auth::{error_chain, unix_now, GRAPH_APP_ID, GRAPH_AUDIENCE};
use crate::signing::TOKEN_LIFETIME_SECONDS;
use crate::{client_secrets, AppState};

/// The two token endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVersion {
    /// `/oauth2/token`: `resource=`, v1.0 tokens, numbers as strings in the answer.
    V1,
    /// `/oauth2/v2.0/token`: `scope=<resource>/.default`, v2.0 tokens.
    V2,
}

/// What the request asked for, once its parameters are checked.
struct Grant {
    client_id: String,
    secret: Option<String>,
    resource: String,
}

/// Serves one token request.
pub async fn token(
    state: &Arc<AppState>,
    version: TokenVersion,
    tenant: &TenantSegment,
    request: TokenRequest<'_>,
) -> Response {
    let ids = TraceIds::of(request.headers);
    match issue(state, version, tenant, &request).await {
        Ok(response) => response.render(&ids),
        Err(error) => error.render(&ids),
    }
}

/// The parts of the HTTP request the endpoint reads.
pub struct TokenRequest<'a> {
    /// Method.
    pub method: &'a Method,
    /// Headers (`Content-Type`, `Authorization: Basic`, `client-request-id`).
    pub headers: &'a HeaderMap,
    /// The form.
    pub body: &'a [u8],
    /// The client's address, for counting failed authentications.
    pub source: Option<IpAddr>,
    /// `https://host:port` the client reached this server at.
    pub base_url: String,
}

enum Answer {
    V2 {
        token: String,
    },
    V1 {
        token: String,
        now: u64,
        resource: String,
    },
}

impl Answer {
    fn render(self, ids: &TraceIds) -> Response {
        #[derive(Serialize)]
        struct V2<'a> {
            token_type: &'a str,
            expires_in: u64,
            ext_expires_in: u64,
            access_token: &'a str,
        }
        #[derive(Serialize)]
        struct V1<'a> {
            token_type: &'a str,
            expires_in: String,
            ext_expires_in: String,
            expires_on: String,
            not_before: String,
            resource: &'a str,
            access_token: &'a str,
        }
        match self {
            Answer::V2 { token } => json_response(
                StatusCode::OK,
                &V2 {
                    token_type: "Bearer",
                    expires_in: TOKEN_LIFETIME_SECONDS,
                    ext_expires_in: TOKEN_LIFETIME_SECONDS,
                    access_token: &token,
                },
                ids,
            ),
            Answer::V1 {
                token,
                now,
                resource,
            } => json_response(
                StatusCode::OK,
                &V1 {
                    token_type: "Bearer",
                    expires_in: TOKEN_LIFETIME_SECONDS.to_string(),
                    ext_expires_in: TOKEN_LIFETIME_SECONDS.to_string(),
                    expires_on: (now + TOKEN_LIFETIME_SECONDS).to_string(),
                    not_before: now.to_string(),
                    resource: &resource,
                    access_token: &token,
                },
                ids,
            ),
        }
    }
}

async fn issue(
    state: &Arc<AppState>,
    version: TokenVersion,
    tenant: &TenantSegment,
    request: &TokenRequest<'_>,
) -> Result<Answer, EntraError> {
    if request.method != Method::POST {
        return Err(EntraError::invalid_request(
            900561,
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
                request.method
            ),
        ));
    }
    let tenant = known_tenant(state, tenant).await?;
    let grant = read_grant(version, request)?;
    let subjects = subjects(&grant.client_id, request.source);
    if let Some(wait) = state.failed_logins.blocked(&subjects) {
        let mut error = EntraError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            90055,
            format!("Too many failed client authentications from this client or address. Retry after {wait} seconds."),
        );
        error.retry_after = Some(wait);
        return Err(error);
    }
    let app = match authenticate(state, tenant, &grant).await {
        Ok(app) => app,
        Err(error) => {
            if error.status != StatusCode::SERVICE_UNAVAILABLE {
                state.failed_logins.record(&subjects);
            }
            return Err(error);
        }
    };
    let audience = audience(state, tenant, &grant.resource)?;
    let now = unix_now();
    let claims = claims(&app, version, &audience, &request.base_url, now);
    let token = state
        .keys
        .sign(state.storage.as_ref(), &claims)
        .await
        .map_err(|error| {
            tracing::error!(error = %error_chain(&error), "cannot sign an access token");
            unavailable()
        })?;
    tracing::info!(client_id = %app.client_id, tenant = %tenant, "issued an access token");
    Ok(match version {
        TokenVersion::V2 => Answer::V2 { token },
        TokenVersion::V1 => Answer::V1 {
            token,
            now,
            resource: grant.resource,
        },
    })
}

fn unavailable() -> EntraError {
    EntraError::unavailable()
}

fn subjects(client_id: &str, source: Option<IpAddr>) -> Vec<Subject> {
    // Counted per id as sent (lower-cased: GUIDs match case-insensitively).
    let mut subjects = vec![Subject::Client(client_id.to_ascii_lowercase())];
    subjects.extend(source.map(Subject::Address));
    subjects
}

/// The form's parameters, checked: grant type, client id (form or HTTP Basic), secret and the
/// resource (`scope=<resource>/.default` on v2.0, `resource=` on v1.0).
fn read_grant(version: TokenVersion, request: &TokenRequest<'_>) -> Result<Grant, EntraError> {
    let form_content = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let form: Vec<(String, String)> = if form_content {
        form_urlencoded::parse(request.body).into_owned().collect()
    } else {
        Vec::new()
    };
    let field = |name: &str| -> Result<Option<String>, EntraError> {
        let mut values = form.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next().cloned();
        if values.next().is_some() {
            return Err(EntraError::invalid_request(
                9002313,
                format!("Invalid request. Request is malformed or invalid: parameter '{name}' is given more than once."),
            ));
        }
        Ok(first.filter(|v| !v.is_empty()))
    };
    let grant_type = field("grant_type")?.ok_or_else(|| EntraError::missing("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(EntraError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let (client_id, secret) = client_credentials(
        request.headers,
        field("client_id")?,
        field("client_secret")?,
    )?;
    let resource = match version {
        TokenVersion::V2 => {
            let scope = field("scope")?.ok_or_else(|| EntraError::missing("scope"))?;
            default_scope_resource(&scope)?
        }
        TokenVersion::V1 => field("resource")?.ok_or_else(|| EntraError::missing("resource"))?,
    };
    Ok(Grant {
        client_id,
        secret,
        resource,
    })
}

/// The client id and secret, from the form or from `Authorization: Basic` (RFC 6749 §2.3.1:
/// both form-urlencoded); using both ways at once is refused.
fn client_credentials(
    headers: &HeaderMap,
    form_id: Option<String>,
    form_secret: Option<String>,
) -> Result<(String, Option<String>), EntraError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, encoded)| encoded.trim().to_owned());
    let Some(encoded) = basic else {
        let id = form_id.ok_or_else(|| EntraError::missing("client_id"))?;
        return Ok((id, form_secret));
    };
    let malformed = || {
        EntraError::invalid_request(
            9002313,
            "Invalid request. Request is malformed or invalid: the Basic authorization header is malformed.",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if form_secret.is_some() || form_id.is_some_and(|form| !form.eq_ignore_ascii_case(&id)) {
        return Err(EntraError::invalid_request(
            9002313,
            "Invalid request. Request is malformed or invalid: the client authenticated both in the Authorization header and in the body.",
        ));
    }
    Ok((id, Some(secret).filter(|s| !s.is_empty())))
}

/// `<resource>/.default` → `<resource>`; client credentials take exactly one such scope.
fn default_scope_resource(scope: &str) -> Result<String, EntraError> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let invalid = || {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
        )
    };
    match scopes.as_slice() {
        [one] => one
            .strip_suffix("/.default")
            .filter(|resource| !resource.is_empty())
            .map(str::to_owned)
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

/// The app, if `grant` authenticates it in `tenant`. Every outcome runs one argon2 check
/// (a decoy for unknown ids), so timing does not tell which ids exist.
async fn authenticate(
    state: &Arc<AppState>,
    tenant: TenantId,
    grant: &Grant,
) -> Result<AppRegistration, EntraError> {
    let found = match Uuid::parse_str(&grant.client_id) {
        Ok(id) => state.storage.directory().app(id).await.map_err(|error| {
            tracing::error!(error = %error_chain(&error), "cannot read app registrations");
            unavailable()
        })?,
        Err(_) => None,
    };
    let found = found.filter(|(app, _)| app.tenant == tenant);
    let Some(secret) = grant.secret.clone() else {
        return Err(EntraError::invalid_client(
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        ));
    };
    let secrets: Vec<AppSecret> = found.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
    let matched = check_secret(state, secret, secrets).await?;
    let Some((app, _)) = found else {
        return Err(EntraError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!("Application with identifier '{}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", grant.client_id, tenant),
        ));
    };
    match matched {
        Some(expires) if expires > unix_now() as i64 => Ok(app),
        Some(_) => Err(EntraError::invalid_client(
            7000222,
            format!("The provided client secret keys for app '{}' are expired. Create new keys for the app (reportroot app secret add), or consider using certificate credentials for added security.", app.client_id),
        )),
        None => Err(EntraError::invalid_client(
            7000215,
            format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.client_id),
        )),
    }
}

/// The expiry of the stored secret `value` matches, checking unexpired secrets first; a decoy
/// hash when there are none. Runs on the blocking pool, two at a time at most (each check
/// takes ~20 ms of a core and 19 MiB).
async fn check_secret(
    state: &Arc<AppState>,
    value: String,
    mut secrets: Vec<AppSecret>,
) -> Result<Option<i64>, EntraError> {
    let _slot = state
        .secret_checks
        .acquire()
        .await
        .map_err(|_| unavailable())?;
    let now = unix_now() as i64;
    secrets.sort_by_key(|secret| secret.expires <= now);
    tokio::task::spawn_blocking(move || {
        if secrets.is_empty() {
            client_secrets::verify(&value, client_secrets::decoy_hash());
            return None;
        }
        secrets
            .iter()
            .find(|secret| client_secrets::verify(&value, &secret.hash))
            .map(|secret| secret.expires)
    })
    .await
    .map_err(|_| unavailable())
}

/// The `aud` of a token for `resource`: Graph (by URL or app id) or one of this server's App
/// ID URIs.
fn audience(state: &AppState, tenant: TenantId, resource: &str) -> Result<String, EntraError> {
    let trimmed = resource.trim_end_matches('/');
    if trimmed.eq_ignore_ascii_case(GRAPH_AUDIENCE) || trimmed.eq_ignore_ascii_case(GRAPH_APP_ID) {
        return Ok(GRAPH_AUDIENCE.to_owned());
    }
    if let Some(uri) = state
        .config
        .app_id_uris
        .iter()
        .find(|uri| uri.trim_end_matches('/') == trimmed)
    {
        return Ok(uri.clone());
    }
    Err(EntraError::new(
        StatusCode::BAD_REQUEST,
        "invalid_resource",
        500011,
        format!("The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."),
    ))
}

/// An access token's claims, shaped like Entra ID's app-only tokens.
fn claims(
    app: &AppRegistration,
    version: TokenVersion,
    audience: &str,
    base_url: &str,
    now: u64,
) -> serde_json::Value {
    let tid = app.tenant.0;
    let (issuer, ver) = match version {
        TokenVersion::V2 => (format!("{base_url}/{tid}/v2.0"), "2.0"),
        TokenVersion::V1 => (format!("{base_url}/{tid}/"), "1.0"),
    };
    let mut claims = serde_json::json!({
        "aud": audience,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
        "app_displayname": app.name,
        "idp": issuer,
        "idtyp": "app",
        "oid": app.object_id,
        "sub": app.object_id,
        "tid": tid,
        "uti": Uuid::new_v4().simple().to_string(),
        "ver": ver,
    });
    let client = app.client_id.to_string();
    match version {
        TokenVersion::V2 => {
            claims["azp"] = client.into();
            claims["azpacr"] = "1".into();
        }
        TokenVersion::V1 => {
            claims["appid"] = client.into();
            claims["appidacr"] = "1".into();
        }
    }
    if !app.roles.is_empty() {
        claims["roles"] = app.roles.clone().into();
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_credentials_scope_names_one_resource_with_default() {
        assert_eq!(
            default_scope_resource("https://graph.microsoft.com/.default").ok(),
            Some("https://graph.microsoft.com".to_owned())
        );
        assert_eq!(
            default_scope_resource("api://reportroot/.default").ok(),
            Some("api://reportroot".to_owned())
        );
        for bad in [
            "https://graph.microsoft.com/Reports.Read.All",
            "/.default",
            "a/.default b/.default",
            "openid",
        ] {
            let error = default_scope_resource(bad).expect_err(bad);
            assert_eq!(
                (error.error, error.code),
                ("invalid_scope", 1002012),
                "{bad}"
            );
        }
    }
}
