//! The ID token of a code exchange, checked: RS256 signed by a key of the issuer's JWKS,
//! `iss` the issuer, `aud` the client id, `exp`/`nbf` with a small leeway, and the flow's
//! `nonce`.

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::trusted_issuers::TrustedIssuer;

/// Seconds of clock difference tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 60;

/// The claims of an ID token reportroot reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct IdClaims {
    /// The nonce of the sign-in request.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Entra's tenant id.
    #[serde(default)]
    pub tid: Option<String>,
    /// Entra's sign-in name (a UPN, usually an email address).
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// The email address (scope `email`).
    #[serde(default)]
    pub email: Option<String>,
    /// The display name (scope `profile`).
    #[serde(default)]
    pub name: Option<String>,
    /// The subject.
    #[serde(default)]
    pub sub: Option<String>,
}

impl IdClaims {
    /// The names to look for among dashboard users, in order: `preferred_username`, `email`.
    pub(crate) fn user_names(&self) -> impl Iterator<Item = &str> {
        [&self.preferred_username, &self.email]
            .into_iter()
            .flatten()
            .map(|name| name.trim())
            .filter(|name| !name.is_empty())
    }

    /// Who signed in, for the page and the logs.
    pub(crate) fn who(&self) -> String {
        self.user_names()
            .next()
            .or(self.name.as_deref())
            .or(self.sub.as_deref())
            .unwrap_or("someone")
            .chars()
            .take(64)
            .collect()
    }
}

/// Why an ID token is refused (shown on the sign-in page).
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdTokenError {
    /// Not a JWT, or no `kid`, or not RS256.
    #[error("Entra ID's ID token is malformed (not an RS256 JWT with a kid).")]
    Malformed,
    /// The `kid` is not in the issuer's JWKS.
    #[error("Entra ID's ID token is signed by a key its issuer does not publish.")]
    UnknownKey,
    /// A check failed.
    #[error("Entra ID's ID token is not valid: {0}")]
    Invalid(&'static str),
}

/// The claims of `token` if it passes every check.
pub(crate) async fn verify(
    issuer: &TrustedIssuer,
    client_id: &str,
    token: &str,
    nonce: &str,
) -> Result<IdClaims, IdTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(IdTokenError::Malformed);
    }
    let kid = header.kid.ok_or(IdTokenError::Malformed)?;
    let key = issuer.key(&kid).await.key.ok_or(IdTokenError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer.issuer()]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECONDS;
    let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
        .map_err(|error| IdTokenError::Invalid(why(error.kind())))?
        .claims;
    let same_nonce = claims.nonce.as_deref().is_some_and(|given| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            nonce.as_bytes(),
        ))
    });
    if !same_nonce {
        return Err(IdTokenError::Invalid("its nonce is not this sign-in's."));
    }
    Ok(claims)
}

fn why(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "it has expired.",
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf).",
        ErrorKind::InvalidAudience => "it is for another application (aud).",
        ErrorKind::InvalidIssuer => "it is from another issuer (iss).",
        ErrorKind::InvalidSignature => "its signature does not verify.",
        ErrorKind::InvalidAlgorithm => "its algorithm does not match its key.",
        ErrorKind::MissingRequiredClaim(_) => "it lacks a required claim (exp, iss, aud).",
        _ => "it is malformed.",
    }
}
