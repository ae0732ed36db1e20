//! Bearer tokens: JWTs whose `tid` claim is the tenant and whose `roles` (application) or
//! `scp` (delegated) claims carry the permissions. RS256 tokens are checked against
//! reportroot's own keys or a trusted issuer's JWKS, picked by `iss`, and the key by `kid`;
//! HS256 tokens against the configured secret unless that is turned off. The `alg` decides
//! which check runs and each check accepts only its own algorithm, so a token cannot pass
//! one kind of key off as another (HS256 signed with a public RSA key fails the HMAC check).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reportroot_model::TenantId;
use reportroot_storage::Storage;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::signing::KeyRing;
use crate::trusted_issuers::TrustedIssuer;

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
    /// The calling application's id (v2.0 tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// The calling application's id (v1.0 tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
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
    /// The calling application (the token's `azp`, else `appid`), when it names one by GUID:
    /// Graph's report throttling counts per app per tenant.
    pub app: Option<Uuid>,
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

/// Checks bearer tokens: reportroot's own RS256 tokens (keys in the database's directory),
/// tokens of trusted external issuers (Entra ID tenants: keys from their JWKS), and, unless
/// turned off, HS256 tokens signed with the configured secret (`reportroot token`).
pub struct TokenVerifier {
    hs256: Option<DecodingKey>,
    hs256_validation: Validation,
    audiences: Vec<String>,
    own_keys: Arc<KeyRing>,
    storage: Arc<dyn Storage>,
    trusted: Vec<TrustedIssuer>,
    /// Tokens already verified, with their caller and expiry: a client sends the same token
    /// for an hour, so each is decoded and its signature checked once.
    verified: std::sync::Mutex<std::collections::HashMap<String, (Caller, u64)>>,
}

/// Most verified tokens remembered; the cache is emptied when full.
const MAX_CACHED_TOKENS: usize = 10_000;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;

/// What a [`TokenVerifier`] accepts.
pub struct VerifierSettings<'a> {
    /// The HS256 secret, or `None` to refuse HS256 tokens.
    pub hs256_secret: Option<&'a [u8]>,
    /// Accepted `aud` values.
    pub audiences: &'a [String],
    /// reportroot's own signing keys.
    pub own_keys: Arc<KeyRing>,
    /// Where the own keys are stored.
    pub storage: Arc<dyn Storage>,
    /// External issuers whose tokens are accepted.
    pub trusted: Vec<TrustedIssuer>,
}

impl TokenVerifier {
    /// A verifier for tokens of the given kinds and audiences.
    pub fn new(settings: VerifierSettings<'_>) -> Self {
        TokenVerifier {
            hs256: settings.hs256_secret.map(DecodingKey::from_secret),
            hs256_validation: validation(Algorithm::HS256, settings.audiences),
            audiences: settings.audiences.to_vec(),
            own_keys: settings.own_keys,
            storage: settings.storage,
            trusted: settings.trusted,
            verified: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Reads the `Authorization` header and checks its token.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
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
        self.verify(token).await
    }

    /// Checks one token, from the cache when it was verified before and has not expired.
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
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
        let (caller, expires) = self.verify_uncached(token).await?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= MAX_CACHED_TOKENS {
                cache.clear();
            }
            cache.insert(token.to_owned(), (caller, expires));
        }
        Ok(caller)
    }

    /// Forgets every verified token (after a trusted issuer withdrew a key).
    fn forget_verified(&self) {
        if let Ok(mut cache) = self.verified.lock() {
            cache.clear();
        }
    }

    async fn verify_uncached(&self, token: &str) -> Result<(Caller, u64), ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            ApiError::unauthenticated("The access token is malformed or not valid.")
        })?;
        let claims = match header.alg {
            Algorithm::HS256 => {
                let key = self.hs256.as_ref().ok_or_else(|| {
                    ApiError::unauthenticated("HS256 tokens are not accepted by this server.")
                })?;
                decode(token, key, &self.hs256_validation)?
            }
            Algorithm::RS256 => self.verify_rs256(token, header.kid.as_deref()).await?,
            _ => {
                return Err(ApiError::unauthenticated(
                    "The token's signing algorithm is not accepted (RS256 expected).",
                ))
            }
        };
        caller_of(claims)
    }

    async fn verify_rs256(&self, token: &str, kid: Option<&str>) -> Result<Claims, ApiError> {
        let kid = kid.ok_or_else(|| {
            ApiError::unauthenticated("The token's header names no signing key (kid).")
        })?;
        let issuer = unverified_issuer(token)?;
        if let Some(trusted) = self.trusted.iter().find(|t| t.issuer() == issuer) {
            let found = trusted.key(kid).await;
            if found.withdrew_keys {
                self.forget_verified();
            }
            let key = found.key.ok_or_else(|| {
                ApiError::unauthenticated("The token's signing key is not in its issuer's JWKS.")
            })?;
            let mut validation = validation(Algorithm::RS256, &self.audiences);
            validation.set_issuer(&[issuer.as_str()]);
            let claims = decode(token, &key, &validation)?;
            return trusted.check_tenant(claims);
        }
        let key = self
            .own_keys
            .verifying_key(self.storage.as_ref(), kid)
            .await
            .map_err(|error| {
                tracing::error!(error = %error_chain(&error), "cannot read the signing keys");
                ApiError::unavailable("Token validation is unavailable; try again later.")
            })?
            .ok_or_else(|| {
                ApiError::unauthenticated("The token's issuer is not trusted by this server.")
            })?;
        let claims = decode(token, &key, &validation(Algorithm::RS256, &self.audiences))?;
        // reportroot signs only tokens whose issuer is `<base>/<tid>/v2.0` (or `<base>/<tid>/`
        // from the v1.0 endpoint).
        let own = claims.iss.as_deref().is_some_and(|iss| {
            iss.ends_with(&format!("/{}/v2.0", claims.tid))
                || iss.ends_with(&format!("/{}/", claims.tid))
        });
        if !own {
            return Err(ApiError::unauthenticated(
                "The token's issuer does not match its tenant.",
            ));
        }
        Ok(claims)
    }
}

fn validation(algorithm: Algorithm, audiences: &[String]) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "aud"]);
    // A token is not valid before its `nbf` (jsonwebtoken checks it only when asked).
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECONDS;
    validation
}

/// The `iss` claim of a token whose signature is not checked yet: it only picks the key set.
fn unverified_issuer(token: &str) -> Result<String, ApiError> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct Issuer {
        #[serde(default)]
        iss: Option<String>,
    }
    let malformed = || ApiError::unauthenticated("The access token is malformed or not valid.");
    let payload = token.split('.').nth(1).ok_or_else(malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| malformed())?;
    let issuer: Issuer = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    issuer
        .iss
        .ok_or_else(|| ApiError::unauthenticated("The token has no issuer (iss)."))
}

fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Claims, ApiError> {
    jsonwebtoken::decode::<Claims>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|error| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match error.kind() {
                ErrorKind::ExpiredSignature => "Lifetime validation failed, the token is expired.",
                ErrorKind::ImmatureSignature => {
                    "Lifetime validation failed, the token is not yet valid (nbf)."
                }
                ErrorKind::InvalidAudience => "Invalid audience.",
                ErrorKind::InvalidIssuer => "Invalid issuer.",
                ErrorKind::InvalidSignature => "Signature verification failed.",
                ErrorKind::InvalidAlgorithm => "The token's algorithm does not match its key.",
                ErrorKind::MissingRequiredClaim(_) => {
                    "The token lacks a required claim (exp, aud)."
                }
                _ => "The access token is malformed or not valid.",
            };
            ApiError::unauthenticated(why)
        })
}

/// The caller a verified token names, and until when the token is good.
fn caller_of(claims: Claims) -> Result<(Caller, u64), ApiError> {
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
    let app = claims
        .azp
        .as_deref()
        .or(claims.appid.as_deref())
        .and_then(|id| Uuid::parse_str(id).ok());
    Ok((
        Caller {
            tenant,
            can_read,
            can_write,
            app,
        },
        // The cache honours the same leeway as the validation.
        claims.exp + LEEWAY_SECONDS,
    ))
}

/// An error and its causes, `error: cause: cause`, for logs (the storage crate's).
pub(crate) use reportroot_storage::error_chain;

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
        azp: None,
        appid: None,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
}
