//! One sign-in's state between `/dashboard/signin/oidc/start` and the issuer's redirect back:
//! kept in the browser, in a short-lived sealed cookie, so the server stores nothing.
//!
//! The cookie holds the `state` and `nonce` sent to the issuer and where to go afterwards,
//! HMAC-signed with a key derived from the server's secret (a tampered or foreign cookie does
//! not open). The PKCE verifier is not in it: it is HMAC(`state`) under another derived key, so
//! only this server can compute it from the state it sealed. A new start overwrites the cookie:
//! one flow per browser.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::download::Signer;
use crate::session::random_token;

/// The flow cookie's name.
pub(crate) const FLOW_COOKIE: &str = "reportroot_oidc";

/// The flow cookie's path: sent to the start and the callback only.
pub(crate) const FLOW_PATH: &str = "/dashboard/signin/oidc";

/// How long a sign-in at the issuer may take.
pub(crate) const FLOW_SECONDS: u64 = 600;

/// What the flow cookie holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Flow {
    /// The `state` sent to the issuer, which must come back unchanged.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// Where to go once signed in (already checked by `safe_next`).
    pub next: String,
    /// Refused from this time on, seconds since the epoch.
    pub exp: u64,
}

/// The keys that seal flows and derive PKCE verifiers.
pub(crate) struct FlowKeys {
    seal: Signer,
    pkce: Vec<u8>,
}

impl FlowKeys {
    /// Keys derived from the server's secret (apart from every other use of it).
    pub(crate) fn new(secret: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key size");
        mac.update(b"reportroot dashboard oidc pkce v1");
        FlowKeys {
            seal: Signer::new(secret, "dashboard oidc flow v1"),
            pkce: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// A new flow to `next`, and its sealed cookie value.
    pub(crate) fn begin(&self, next: &str, now: u64) -> (Flow, String) {
        let flow = Flow {
            state: random_token(),
            nonce: random_token(),
            next: next.to_owned(),
            exp: now + FLOW_SECONDS,
        };
        let json = serde_json::to_string(&flow).unwrap_or_default();
        (flow, self.seal.seal(&json))
    }

    /// The flow a cookie value seals, if its seal is intact and it has not expired.
    pub(crate) fn open(&self, sealed: &str, now: u64) -> Option<Flow> {
        let json = self.seal.open(sealed)?;
        let flow: Flow = serde_json::from_str(&json).ok()?;
        (now < flow.exp).then_some(flow)
    }

    /// The PKCE `code_verifier` of a flow's state: 43 characters of base64url (RFC 7636's
    /// shortest verifier, 256 bits).
    pub(crate) fn verifier(&self, state: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.pkce).expect("any key size");
        mac.update(state.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// The S256 `code_challenge` of a verifier.
pub(crate) fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_opens_only_intact_and_in_time() {
        let keys = FlowKeys::new(b"secret");
        let (flow, sealed) = keys.begin("/dashboard", 1000);
        assert_eq!(
            keys.open(&sealed, 1000 + FLOW_SECONDS - 1),
            Some(flow.clone())
        );
        assert_eq!(keys.open(&sealed, 1000 + FLOW_SECONDS), None);
        assert_eq!(FlowKeys::new(b"other").open(&sealed, 1000), None);
        let (payload, mac) = sealed.split_once('.').expect("sealed");
        let json = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(json)
                .expect("utf-8")
                .replace("/dashboard", "/dashboard/x"),
        );
        assert_eq!(keys.open(&format!("{forged}.{mac}"), 1000), None);
    }

    #[test]
    fn the_verifier_is_the_states_and_the_challenge_is_rfc_7636s() {
        let keys = FlowKeys::new(b"secret");
        let verifier = keys.verifier("s1");
        assert_eq!(verifier.len(), 43);
        assert_eq!(verifier, keys.verifier("s1"));
        assert_ne!(verifier, keys.verifier("s2"));
        assert_ne!(verifier, FlowKeys::new(b"other").verifier("s1"));
        // base64url(SHA-256), no padding (computed with Python's hashlib).
        assert_eq!(
            challenge("verifier-of-a-test"),
            "PFkB9YPNJGvWkPh-tTwf5iyJyfvrncBXhCfhzyQMTn8"
        );
    }
}
