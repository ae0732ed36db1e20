//! External token issuers reportroot trusts (`--trust-issuer`): an organisation's Entra ID
//! tenant (`https://login.microsoftonline.com/<tid>/v2.0`) or any OpenID provider. Their
//! signing keys come from the JWKS their discovery document names, fetched over HTTPS (plain
//! HTTP only on loopback, for tests), kept in memory, and fetched again when a token names an
//! unknown `kid` — at most once per refetch interval, so forged kids cannot make reportroot
//! hammer the issuer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{error_chain, Claims};
use crate::error::ApiError;

/// Largest discovery document or JWKS read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Why an issuer cannot be trusted as configured.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Not a URL.
    #[error("'{url}' is not a URL")]
    NotUrl {
        /// The text given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// Plain HTTP off loopback.
    #[error("'{0}' must use https (plain http is accepted only for loopback addresses)")]
    NotHttps(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for issuer discovery")]
    Client(#[source] reqwest::Error),
}

/// Why fetching an issuer's keys or documents failed (logged; the token is refused).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("request to {url} failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} sent JSON that is not a discovery document or JWKS")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the discovery document names no {0}")]
    Missing(&'static str),
    #[error("the discovery document names issuer '{found}', not '{expected}'")]
    IssuerMismatch { expected: String, found: String },
    #[error(transparent)]
    Untrusted(#[from] TrustError),
}

impl FetchError {
    /// Whether the issuer could not be reached at all (rather than answering wrongly).
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(self, FetchError::Request { .. })
    }
}

/// Where an issuer signs users in and redeems codes (OpenID Connect's authorization code flow),
/// from its discovery document.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// `authorization_endpoint`.
    pub authorization: String,
    /// `token_endpoint`.
    pub token: String,
}

/// How long discovered endpoints are used before the discovery document is read again.
const ENDPOINTS_LIFETIME: Duration = Duration::from_secs(3600);

/// One trusted issuer and the keys last fetched from it.
pub struct TrustedIssuer {
    issuer: String,
    /// The tenant GUID in the issuer URL (Entra's form): its tokens may only name that tenant.
    pinned_tenant: Option<Uuid>,
    min_refetch: Duration,
    http: reqwest::Client,
    keys: Mutex<FetchedKeys>,
    fetching: tokio::sync::Mutex<()>,
    endpoints: Mutex<Option<(Instant, Endpoints)>>,
}

#[derive(Default)]
struct FetchedKeys {
    by_kid: HashMap<String, DecodingKey>,
    last_attempt: Option<Instant>,
}

/// What looking up a key found.
pub struct KeyLookup {
    /// The key, if the issuer publishes one with that `kid`.
    pub key: Option<DecodingKey>,
    /// A refetch dropped keys the issuer no longer publishes: tokens verified with them must be
    /// checked again.
    pub withdrew_keys: bool,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
}

impl TrustedIssuer {
    /// Trusts tokens whose `iss` is exactly `issuer`; keys are fetched again at most every
    /// `min_refetch` when a token names an unknown `kid`.
    pub fn new(issuer: &str, min_refetch: Duration) -> Result<Self, TrustError> {
        check_url(issuer)?;
        let pinned_tenant = issuer
            .split('/')
            .find_map(|segment| Uuid::parse_str(segment).ok());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(TrustError::Client)?;
        Ok(TrustedIssuer {
            issuer: issuer.to_owned(),
            pinned_tenant,
            min_refetch,
            http,
            keys: Mutex::new(FetchedKeys::default()),
            fetching: tokio::sync::Mutex::new(()),
            endpoints: Mutex::new(None),
        })
    }

    /// The issuer, as tokens name it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key named `kid`, fetching the issuer's keys again if it is unknown and the last
    /// attempt is old enough.
    pub async fn key(&self, kid: &str) -> KeyLookup {
        if let Some(key) = self.cached(kid) {
            return KeyLookup {
                key: Some(key),
                withdrew_keys: false,
            };
        }
        let _one_fetch_at_a_time = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.cached(kid) {
            return KeyLookup {
                key: Some(key),
                withdrew_keys: false,
            };
        }
        if !self.may_fetch() {
            return KeyLookup {
                key: None,
                withdrew_keys: false,
            };
        }
        let withdrew_keys = match self.fetch().await {
            Ok(fresh) => self.replace(fresh),
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, error = %error_chain(&error), "cannot fetch the trusted issuer's keys");
                false
            }
        };
        KeyLookup {
            key: self.cached(kid),
            withdrew_keys,
        }
    }

    /// The tenant GUID the issuer URL names (Entra's form), if any.
    pub(crate) fn pinned_tenant(&self) -> Option<Uuid> {
        self.pinned_tenant
    }

    /// Refuses a token naming another tenant than the one in the issuer URL.
    pub fn check_tenant(&self, claims: Claims) -> Result<Claims, ApiError> {
        match self.pinned_tenant {
            Some(pinned) if Uuid::parse_str(&claims.tid).ok() != Some(pinned) => Err(
                ApiError::unauthenticated("The token's tenant is not its issuer's tenant."),
            ),
            _ => Ok(claims),
        }
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        lock(&self.keys).by_kid.get(kid).cloned()
    }

    /// Whether a fetch may start now; if so, counts it as the latest attempt.
    fn may_fetch(&self) -> bool {
        let mut keys = lock(&self.keys);
        let due = keys
            .last_attempt
            .is_none_or(|at| at.elapsed() >= self.min_refetch);
        if due {
            keys.last_attempt = Some(Instant::now());
        }
        due
    }

    /// Installs freshly fetched keys; whether a key known before is gone.
    fn replace(&self, fresh: HashMap<String, DecodingKey>) -> bool {
        let mut keys = lock(&self.keys);
        let withdrew = keys.by_kid.keys().any(|kid| !fresh.contains_key(kid));
        keys.by_kid = fresh;
        withdrew
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, FetchError> {
        let discovery = self.discover().await?;
        check_url(&discovery.jwks_uri)?;
        let set: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        Ok(rsa_keys(&set))
    }

    /// The issuer's discovery document, its `issuer` checked.
    async fn discover(&self) -> Result<Discovery, FetchError> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&discovery_url).await?;
        if discovery.issuer != self.issuer {
            return Err(FetchError::IssuerMismatch {
                expected: self.issuer.clone(),
                found: discovery.issuer,
            });
        }
        Ok(discovery)
    }

    /// The issuer's authorization and token endpoints (HTTPS, or HTTP on loopback), read from
    /// its discovery document at most once an hour while they are used.
    pub(crate) async fn endpoints(&self) -> Result<Endpoints, FetchError> {
        if let Some((at, endpoints)) = lock(&self.endpoints).as_ref() {
            if at.elapsed() < ENDPOINTS_LIFETIME {
                return Ok(endpoints.clone());
            }
        }
        let discovery = self.discover().await?;
        let authorization = discovery
            .authorization_endpoint
            .ok_or(FetchError::Missing("authorization_endpoint"))?;
        let token = discovery
            .token_endpoint
            .ok_or(FetchError::Missing("token_endpoint"))?;
        check_url(&authorization)?;
        check_url(&token)?;
        let endpoints = Endpoints {
            authorization,
            token,
        };
        *lock(&self.endpoints) = Some((Instant::now(), endpoints.clone()));
        Ok(endpoints)
    }

    /// POSTs `form` to `url` and reads the JSON answer, whatever its status (an OAuth error
    /// answer is JSON too); the status is returned with it.
    pub(crate) async fn post_form<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, T), FetchError> {
        let response = send(url, self.http.post(url).form(form)).await?;
        let status = response.status().as_u16();
        Ok((status, read_json(url, response).await?))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, FetchError> {
        let response = send(url, self.http.get(url)).await?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        read_json(url, response).await
    }
}

/// The JSON body of `response`, at most [`MAX_DOCUMENT_BYTES`].
async fn read_json<T: serde::de::DeserializeOwned>(
    url: &str,
    mut response: reqwest::Response,
) -> Result<T, FetchError> {
    let request = |source| FetchError::Request {
        url: url.to_owned(),
        source,
    };
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|source| FetchError::Json {
        url: url.to_owned(),
        source,
    })
}

/// The RSA signature keys of a JWKS that may sign RS256 tokens, by `kid`. Entra ID's keys name
/// no `alg`; a key that names another algorithm, or is for encryption, is left out.
fn rsa_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .iter()
        .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
        .filter(|jwk| {
            jwk.common
                .key_algorithm
                .is_none_or(|alg| alg == KeyAlgorithm::RS256)
        })
        .filter(|jwk| {
            !matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            )
        })
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
        })
        .collect()
}

/// Whether `text` may name a trusted issuer or its JWKS: HTTPS, or plain HTTP to a loopback
/// address.
pub fn check_url(text: &str) -> Result<(), TrustError> {
    let url = url::Url::parse(text).map_err(|source| TrustError::NotUrl {
        url: text.to_owned(),
        source,
    })?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(TrustError::NotHttps(text.to_owned())),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends `request` (to `url`), keeping the transport error as the cause.
async fn send(
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, FetchError> {
    request.send().await.map_err(|source| FetchError::Request {
        url: url.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_trusted() {
        assert!(check_url("https://login.microsoftonline.com/x/v2.0").is_ok());
        assert!(check_url("http://127.0.0.1:9/x").is_ok());
        assert!(check_url("http://[::1]:9/x").is_ok());
        assert!(check_url("http://localhost:9/x").is_ok());
        assert!(check_url("http://example.com/x").is_err());
        assert!(check_url("ftp://127.0.0.1/x").is_err());
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn an_entra_issuer_pins_its_tenant() {
        let tid = "6f3c1a52-8b7e-4d0a-9c11-2f5e8a4b7c01";
        let issuer = TrustedIssuer::new(
            &format!("https://login.microsoftonline.com/{tid}/v2.0"),
            Duration::from_secs(60),
        )
        .expect("issuer");
        assert_eq!(issuer.pinned_tenant, Uuid::parse_str(tid).ok());
    }
}
