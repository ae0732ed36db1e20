//! reportroot's own token-signing keys: RS256 key pairs kept in the database's directory,
//! published as a JWKS, rotated by `reportroot keys rotate`.
//!
//! Every instance reads the keys from the database, so instances behind one load balancer (or
//! a `keys rotate` run from the command line) agree on them: the newest unretired key signs,
//! and every key that may still have live tokens verifies. The in-memory copy is refreshed at
//! most every [`RELOAD_EVERY`] or when a token names a key it does not know (at most once per
//! [`RELOAD_ON_UNKNOWN_KID_EVERY`]), so a rotation shows within a minute without a database
//! read per request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use reportroot_storage::directory::SigningKey;
use reportroot_storage::{Storage, StorageError};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde::Serialize;

use crate::auth::unix_now;

/// How long an access token lives; a retired key is published this long (and a bit) after it
/// stopped signing.
pub const TOKEN_LIFETIME_SECONDS: u64 = 3599;

/// RSA modulus size of new keys, as Entra ID's.
const KEY_BITS: usize = 2048;

/// The keys are re-read this often at most, when nothing asks sooner.
const RELOAD_EVERY: Duration = Duration::from_secs(60);

/// A token naming an unknown `kid` re-reads the keys at most this often (a flood of forged
/// kids must not become a flood of queries).
const RELOAD_ON_UNKNOWN_KID_EVERY: Duration = Duration::from_secs(5);

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The database failed.
    #[error("cannot read or store signing keys")]
    Storage(#[from] StorageError),
    /// A stored key does not decode.
    #[error("signing key '{kid}' is malformed")]
    Malformed {
        /// The key's id.
        kid: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// RSA key generation failed.
    #[error("cannot generate an RSA key")]
    Generate(#[source] rsa::Error),
    /// Signing failed.
    #[error("cannot sign the token")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// One usable key: what signs and what verifies.
struct LoadedKey {
    kid: String,
    retired: Option<i64>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Modulus and exponent, base64url, for the JWKS.
    n: String,
    e: String,
}

impl LoadedKey {
    fn jwk(&self) -> Jwk {
        Jwk {
            kty: "RSA",
            usage: "sig",
            kid: self.kid.clone(),
            n: self.n.clone(),
            e: self.e.clone(),
            alg: "RS256",
        }
    }
}

#[derive(Default)]
struct Loaded {
    keys: Vec<Arc<LoadedKey>>,
    at: Option<Instant>,
    unknown_kid_reload: Option<Instant>,
}

/// The keys, as last read from the database.
pub struct KeyRing {
    loaded: Mutex<Loaded>,
    /// One reload or first-key generation at a time.
    reloading: tokio::sync::Mutex<()>,
}

/// A public key as a JSON Web Key, the way Entra ID publishes them.
#[derive(Debug, Serialize)]
pub struct Jwk {
    kty: &'static str,
    #[serde(rename = "use")]
    usage: &'static str,
    kid: String,
    n: String,
    e: String,
    alg: &'static str,
}

impl Default for KeyRing {
    fn default() -> Self {
        KeyRing {
            loaded: Mutex::new(Loaded::default()),
            reloading: tokio::sync::Mutex::new(()),
        }
    }
}

impl KeyRing {
    /// Makes sure a signing key exists (creating the first one) and reads the keys.
    pub async fn ensure(&self, storage: &dyn Storage) -> Result<(), SigningError> {
        self.reload(storage, true).await
    }

    /// Signs `claims` with the current key (RS256, with its `kid`).
    pub async fn sign(
        &self,
        storage: &dyn Storage,
        claims: &impl Serialize,
    ) -> Result<String, SigningError> {
        if self.stale() {
            self.reload(storage, true).await?;
        }
        let current = self.current();
        let key = match current {
            Some(key) => key,
            None => {
                self.reload(storage, true).await?;
                self.current().ok_or_else(|| {
                    SigningError::Storage(StorageError::Backend("no signing key".into()))
                })?
            }
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(SigningError::Sign)
    }

    /// The key that verifies tokens naming `kid`, re-reading the keys once if it is unknown.
    pub async fn verifying_key(
        &self,
        storage: &dyn Storage,
        kid: &str,
    ) -> Result<Option<DecodingKey>, SigningError> {
        if self.stale() {
            self.reload(storage, false).await?;
        }
        if let Some(key) = self.find(kid) {
            return Ok(Some(key));
        }
        let may_reload = {
            let mut loaded = lock(&self.loaded);
            let due = loaded
                .unknown_kid_reload
                .is_none_or(|at| at.elapsed() >= RELOAD_ON_UNKNOWN_KID_EVERY);
            if due {
                loaded.unknown_kid_reload = Some(Instant::now());
            }
            due
        };
        if may_reload {
            self.reload(storage, false).await?;
        }
        Ok(self.find(kid))
    }

    /// The public keys that may verify live tokens, as a JWKS `keys` array.
    pub async fn jwks(&self, storage: &dyn Storage) -> Result<Vec<Jwk>, SigningError> {
        if self.stale() {
            self.reload(storage, true).await?;
        }
        let loaded = lock(&self.loaded);
        Ok(loaded.keys.iter().map(|key| key.jwk()).collect())
    }

    fn stale(&self) -> bool {
        lock(&self.loaded)
            .at
            .is_none_or(|at| at.elapsed() >= RELOAD_EVERY)
    }

    fn current(&self) -> Option<Arc<LoadedKey>> {
        lock(&self.loaded)
            .keys
            .iter()
            .find(|key| key.retired.is_none())
            .cloned()
    }

    fn find(&self, kid: &str) -> Option<DecodingKey> {
        lock(&self.loaded)
            .keys
            .iter()
            .find(|key| key.kid == kid)
            .map(|key| key.decoding.clone())
    }

    /// Reads the keys that may verify live tokens; with `create`, makes the first key when the
    /// database has none.
    async fn reload(&self, storage: &dyn Storage, create: bool) -> Result<(), SigningError> {
        let _one_at_a_time = self.reloading.lock().await;
        let mut stored = storage.directory().signing_keys().await?;
        if create && !stored.iter().any(|key| key.retired.is_none()) {
            let key = generate_key().await?;
            storage
                .directory()
                .rotate_signing_key(&key, forget_before(key.created))
                .await?;
            tracing::info!(kid = %key.kid, "created a token-signing key");
            stored = storage.directory().signing_keys().await?;
        }
        let horizon = forget_before(unix_now() as i64);
        let keys = stored
            .into_iter()
            .filter(|key| key.retired.is_none_or(|retired| retired >= horizon))
            .map(|key| load(&key).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let mut loaded = lock(&self.loaded);
        loaded.keys = keys;
        loaded.at = Some(Instant::now());
        Ok(())
    }
}

/// Keys retired before this can have no live token left (their tokens' lifetime plus leeway).
pub fn forget_before(now: i64) -> i64 {
    now - TOKEN_LIFETIME_SECONDS as i64 - 600
}

/// A new RSA key pair, with a random `kid`. Generation takes a moment (on the blocking pool).
pub async fn generate_key() -> Result<SigningKey, SigningError> {
    let private = tokio::task::spawn_blocking(|| {
        RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS).map_err(SigningError::Generate)
    })
    .await
    .map_err(|e| {
        SigningError::Storage(StorageError::backend("the key generation task failed", e))
    })??;
    let der = private
        .to_pkcs1_der()
        .map_err(|e| SigningError::Malformed {
            kid: "new".into(),
            source: Box::new(e),
        })?;
    let kid_bytes: [u8; 20] = rand::random();
    Ok(SigningKey {
        kid: URL_SAFE_NO_PAD.encode(kid_bytes),
        private_key: STANDARD.encode(der.as_bytes()),
        created: unix_now() as i64,
        retired: None,
    })
}

/// The public half of a stored key as a JWK (for publishing it, or a test issuer's JWKS).
pub fn public_jwk(key: &SigningKey) -> Result<Jwk, SigningError> {
    Ok(load(key)?.jwk())
}

fn load(key: &SigningKey) -> Result<LoadedKey, SigningError> {
    let malformed = |source: Box<dyn std::error::Error + Send + Sync>| SigningError::Malformed {
        kid: key.kid.clone(),
        source,
    };
    let der = STANDARD
        .decode(&key.private_key)
        .map_err(|e| malformed(Box::new(e)))?;
    let private = RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| malformed(Box::new(e)))?;
    let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
    let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(|e| malformed(Box::new(e)))?;
    Ok(LoadedKey {
        kid: key.kid.clone(),
        retired: key.retired,
        encoding: EncodingKey::from_rsa_der(&der),
        decoding,
        n,
        e,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
