//! Bearer tokens: HS256 JWTs whose `tid` claim is the tenant and whose `roles` (application) or
//! `scp` (delegated) claims carry the permissions.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reportroot_model::TenantId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;

/// Permission to read reports.
pub const READ: &str = "Reports.Read.All";
/// Permission to read and write reports.
pub const READ_WRITE: &str = "Reports.ReadWrite.All";

/// Graph's audience, the default one a token must carry.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// Graph's application id, which Entra ID also uses as audience.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The claims reportroot reads and writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Tenant id.
    pub tid: String,
    /// Audience: one, or a list of which one must be accepted (RFC 7519 allows both).
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the epoch: the token is refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Application permissions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Delegated permissions, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
}

/// A token's `aud` claim: a string, or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "https://graph.microsoft.com"`.
    One(String),
    /// `"aud": ["https://graph.microsoft.com", "..."]`.
    Many(Vec<String>),
}

/// Who is calling, once the token is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The tenant whose rows the request may touch.
    pub tenant: TenantId,
    /// Holds `Reports.Read.All` or `Reports.ReadWrite.All`.
    pub can_read: bool,
    /// Holds `Reports.ReadWrite.All`.
    pub can_write: bool,
}

impl Caller {
    /// Fails with 403 unless the caller may read.
    pub fn require_read(&self) -> Result<(), ApiError> {
        if self.can_read {
            Ok(())
        } else {
            Err(ApiError::access_denied(format!(
                "Either the signed-in user or the application lacks the permission {READ} or {READ_WRITE}."
            )))
        }
    }

    /// Fails with 403 unless the caller may write.
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.can_write {
            Ok(())
        } else {
            Err(ApiError::access_denied(format!(
                "Writing reports needs the permission {READ_WRITE}."
            )))
        }
    }
}

/// Checks tokens against one secret and a set of audiences.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
    /// Tokens already verified, with their caller and expiry: a client sends the same token
    /// for an hour, so each is decoded and its signature checked once.
    verified: std::sync::Mutex<std::collections::HashMap<String, (Caller, u64)>>,
}

/// Most verified tokens remembered; the cache is emptied when full.
const MAX_CACHED_TOKENS: usize = 10_000;

impl TokenVerifier {
    /// A verifier for HS256 tokens signed with `secret`, accepting any of `audiences`.
    pub fn new(secret: &[u8], audiences: &[String]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "aud"]);
        // A token is not valid before its `nbf` (jsonwebtoken checks it only when asked).
        validation.validate_nbf = true;
        validation.leeway = 30;
        TokenVerifier {
            key: DecodingKey::from_secret(secret),
            validation,
            verified: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Reads the `Authorization` header and checks its token.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("Access token is empty."))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthenticated("The Authorization header must be 'Bearer <token>'.")
            })?;
        self.verify(token)
    }

    /// Checks one token, from the cache when it was verified before and has not expired.
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let now = unix_now();
        let cached = self
            .verified
            .lock()
            .ok()
            .and_then(|cache| cache.get(token).copied());
        if let Some((caller, expires)) = cached {
            if expires > now {
                return Ok(caller);
            }
        }
        let (caller, expires) = self.verify_uncached(token)?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= MAX_CACHED_TOKENS {
                cache.clear();
            }
            cache.insert(token.to_owned(), (caller, expires));
        }
        Ok(caller)
    }

    fn verify_uncached(&self, token: &str) -> Result<(Caller, u64), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |error| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match error.kind() {
                    ErrorKind::ExpiredSignature => {
                        "Lifetime validation failed, the token is expired."
                    }
                    ErrorKind::ImmatureSignature => {
                        "Lifetime validation failed, the token is not yet valid (nbf)."
                    }
                    ErrorKind::InvalidAudience => "Invalid audience.",
                    ErrorKind::InvalidSignature => "Signature verification failed.",
                    ErrorKind::MissingRequiredClaim(_) => {
                        "The token lacks a required claim (exp, aud)."
                    }
                    _ => "The access token is malformed or not valid.",
                };
                ApiError::unauthenticated(why)
            },
        )?;
        let claims = data.claims;
        let tenant = Uuid::parse_str(&claims.tid)
            .map(TenantId)
            .map_err(|_| ApiError::unauthenticated("The tid claim must be a tenant GUID."))?;
        let delegated = claims.scp.as_deref().unwrap_or_default().split(' ');
        let mut can_read = false;
        let mut can_write = false;
        for permission in claims.roles.iter().map(String::as_str).chain(delegated) {
            if permission.eq_ignore_ascii_case(READ_WRITE) {
                can_read = true;
                can_write = true;
            } else if permission.eq_ignore_ascii_case(READ) {
                can_read = true;
            }
        }
        Ok((
            Caller {
                tenant,
                can_read,
                can_write,
            },
            // The cache honours the same leeway as the validation.
            claims.exp + self.validation.leeway,
        ))
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Signs an application token for `tenant` with the given roles, valid for `ttl_seconds`.
pub fn issue_token(
    secret: &[u8],
    tenant: Uuid,
    roles: &[String],
    ttl_seconds: u64,
    audience: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = unix_now();
    let claims = Claims {
        tid: tenant.to_string(),
        aud: Audience::One(audience.to_owned()),
        exp: now + ttl_seconds,
        iat: Some(now),
        nbf: Some(now),
        iss: Some(format!("https://sts.windows.net/{tenant}/")),
        roles: roles.to_vec(),
        scp: None,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
}
