//! Sign-in as Entra ID offers it to apps: the token endpoints (client credentials), the
//! OpenID discovery documents and the signing keys as JWKS, at Entra's paths under
//! `/{tenant}/…`, so that MSAL, `azure-identity` and `@azure/identity` pointed at this server
//! (as their authority) work unchanged.
//!
//! A tenant is known here when an app is registered in it (`reportroot app add`).

mod entra_error;
pub mod failed_logins;
mod token;

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{request::Parts, Method, StatusCode};
use axum::response::Response;
use reportroot_model::TenantId;
use uuid::Uuid;

use self::entra_error::{json_response, EntraError, TraceIds};
pub use self::token::TokenVersion;
use crate::auth::error_chain;
use crate::AppState;

/// The endpoints, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/{tenant}/oauth2/v2.0/token` or `/{tenant}/oauth2/token`.
    Token(TokenVersion),
    /// `/{tenant}/v2.0/.well-known/openid-configuration`.
    DiscoveryV2,
    /// `/{tenant}/.well-known/openid-configuration`.
    DiscoveryV1,
    /// `/{tenant}/discovery/v2.0/keys` or `/{tenant}/discovery/keys`.
    Keys,
}

/// The first path segment: a tenant id, or one of Entra's multi-tenant aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantSegment {
    /// A tenant GUID.
    Id(TenantId),
    /// `common`, `organizations` or `consumers`.
    Alias(String),
    /// Anything else (Entra also takes verified domain names, which reportroot has none of).
    Other(String),
}

impl TenantSegment {
    fn parse(segment: &str) -> Self {
        if let Ok(id) = Uuid::parse_str(segment) {
            return TenantSegment::Id(TenantId(id));
        }
        let lower = segment.to_ascii_lowercase();
        if ["common", "organizations", "consumers"].contains(&lower.as_str()) {
            TenantSegment::Alias(lower)
        } else {
            TenantSegment::Other(segment.to_owned())
        }
    }
}

/// The endpoint and tenant a path names, if it is one of sign-in's.
pub fn match_path(segments: &[String]) -> Option<(Endpoint, TenantSegment)> {
    let (tenant, rest) = segments.split_first()?;
    let rest: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let endpoint = match rest.as_slice() {
        ["oauth2", "v2.0", "token"] => Endpoint::Token(TokenVersion::V2),
        ["oauth2", "token"] => Endpoint::Token(TokenVersion::V1),
        ["v2.0", ".well-known", "openid-configuration"] => Endpoint::DiscoveryV2,
        [".well-known", "openid-configuration"] => Endpoint::DiscoveryV1,
        ["discovery", "v2.0", "keys"] | ["discovery", "keys"] => Endpoint::Keys,
        _ => return None,
    };
    Some((endpoint, TenantSegment::parse(tenant)))
}

/// Serves a sign-in endpoint.
pub async fn serve(
    state: &Arc<AppState>,
    endpoint: Endpoint,
    tenant: TenantSegment,
    parts: &Parts,
    body: &[u8],
    source: Option<IpAddr>,
    base_url: String,
) -> Response {
    let ids = TraceIds::of(&parts.headers);
    let result = match endpoint {
        Endpoint::Token(version) => {
            let request = token::TokenRequest {
                method: &parts.method,
                headers: &parts.headers,
                body,
                source,
                base_url,
            };
            return token::token(state, version, &tenant, request).await;
        }
        Endpoint::DiscoveryV2 | Endpoint::DiscoveryV1 => {
            discovery(state, endpoint, &tenant, &parts.method, &base_url).await
        }
        Endpoint::Keys => keys(state, &parts.method).await,
    };
    match result {
        Ok(body) => json_response(StatusCode::OK, &body, &ids),
        Err(error) => error.render(&ids),
    }
}

/// The tenant of a token request: a GUID with an app registered. The multi-tenant aliases
/// cannot take client credentials (an app-only token names one tenant).
pub(crate) async fn known_tenant(
    state: &AppState,
    tenant: &TenantSegment,
) -> Result<TenantId, EntraError> {
    let not_found = |name: &str| {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!("Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
        )
    };
    match tenant {
        TenantSegment::Id(id) => {
            let known = state.storage.directory().has_tenant(*id).await.map_err(|error| {
                tracing::error!(error = %error_chain(&error), "cannot read app registrations");
                EntraError::unavailable()
            })?;
            if known {
                Ok(*id)
            } else {
                Err(not_found(&id.0.to_string()))
            }
        }
        TenantSegment::Alias(alias) => Err(EntraError::invalid_request(
            50059,
            format!("No tenant-identifying information found in either the request or implied by any provided credentials: the client credentials grant needs a tenant id, not '{alias}'."),
        )),
        TenantSegment::Other(name) if name.contains('.') => Err(not_found(name)),
        TenantSegment::Other(name) => Err(EntraError::invalid_request(
            900023,
            format!("Specified tenant identifier '{name}' is neither a valid DNS name, nor a valid external domain."),
        )),
    }
}

fn get_only(method: &Method) -> Result<(), EntraError> {
    if method == Method::GET || method == Method::HEAD {
        Ok(())
    } else {
        Err(EntraError::invalid_request(
            900561,
            format!(
                "The endpoint only accepts GET, OPTIONS requests. Received a {method} request."
            ),
        ))
    }
}

/// The OpenID configuration of a tenant, as Entra's (the multi-tenant aliases too, with
/// Entra's `{tenantid}` placeholder in the issuer).
async fn discovery(
    state: &AppState,
    endpoint: Endpoint,
    tenant: &TenantSegment,
    method: &Method,
    base: &str,
) -> Result<serde_json::Value, EntraError> {
    get_only(method)?;
    let path = match tenant {
        TenantSegment::Alias(alias) => alias.clone(),
        other => known_tenant(state, other).await?.0.to_string(),
    };
    let issuer_tenant = match tenant {
        TenantSegment::Alias(_) => "{tenantid}".to_owned(),
        _ => path.clone(),
    };
    let (issuer, prefix) = match endpoint {
        Endpoint::DiscoveryV1 => (
            format!("{base}/{issuer_tenant}/"),
            format!("{base}/{path}/oauth2"),
        ),
        _ => (
            format!("{base}/{issuer_tenant}/v2.0"),
            format!("{base}/{path}/oauth2/v2.0"),
        ),
    };
    let jwks_uri = match endpoint {
        Endpoint::DiscoveryV1 => format!("{base}/common/discovery/keys"),
        _ => format!("{base}/{path}/discovery/v2.0/keys"),
    };
    Ok(serde_json::json!({
        "token_endpoint": format!("{prefix}/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": jwks_uri,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{prefix}/authorize"),
        "device_authorization_endpoint": format!("{prefix}/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{prefix}/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "roles", "azp", "appid", "ver"],
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
}

/// The signing keys that may verify live tokens, as a JWKS. Keys are the same for every tenant
/// (as Entra's): the tenant in the path is not checked.
async fn keys(state: &AppState, method: &Method) -> Result<serde_json::Value, EntraError> {
    get_only(method)?;
    let keys = state
        .keys
        .jwks(state.storage.as_ref())
        .await
        .map_err(|error| {
            tracing::error!(error = %error_chain(&error), "cannot read the signing keys");
            EntraError::unavailable()
        })?;
    Ok(serde_json::json!({ "keys": keys }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn paths_map_to_entra_endpoints() {
        let tid = "6f3c1a52-8b7e-4d0a-9c11-2f5e8a4b7c01";
        let cases = [
            (
                format!("/{tid}/oauth2/v2.0/token"),
                Some(Endpoint::Token(TokenVersion::V2)),
            ),
            (
                format!("/{tid}/oauth2/token"),
                Some(Endpoint::Token(TokenVersion::V1)),
            ),
            (
                format!("/{tid}/v2.0/.well-known/openid-configuration"),
                Some(Endpoint::DiscoveryV2),
            ),
            (
                format!("/{tid}/.well-known/openid-configuration"),
                Some(Endpoint::DiscoveryV1),
            ),
            (
                "/common/discovery/v2.0/keys".to_owned(),
                Some(Endpoint::Keys),
            ),
            ("/v1.0/reports/office365ActiveUserCounts".to_owned(), None),
            ("/v1.0/oauth2".to_owned(), None),
        ];
        for (path, expected) in cases {
            assert_eq!(
                match_path(&segments(&path)).map(|(e, _)| e),
                expected,
                "{path}"
            );
        }
        assert_eq!(
            match_path(&segments("/Common/discovery/keys")).map(|(_, t)| t),
            Some(TenantSegment::Alias("common".into()))
        );
    }
}
