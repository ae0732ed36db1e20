//! Sealed tokens, and pre-authenticated download URLs, as Graph's report functions answer with a `302`: bound to
//! tenant, report, period and expiry, signed with a key derived from the server's secret, so
//! any instance sharing the secret honours them and nobody can forge or alter one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reportroot_model::{find_report, Period, ReportType, TenantId, Version};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// What a download URL grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The tenant whose report it is.
    pub tenant: TenantId,
    /// The report type.
    pub report: &'static ReportType,
    /// The period, for periodic reports.
    pub period: Option<Period>,
    /// Unix time after which the URL is refused.
    pub expires: u64,
    /// The API version whose CSV columns the download has.
    pub version: Version,
}

/// Seals short texts with an HMAC so that they can travel through clients unaltered: download
/// URLs and `$skiptoken`s. Each purpose derives its own key from the server secret, so a token
/// of one kind is never valid as another, and any instance sharing the secret accepts it.
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    /// A signer for one purpose.
    pub fn new(secret: &[u8], purpose: &str) -> Self {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes any key size");
        mac.update(b"reportroot ");
        mac.update(purpose.as_bytes());
        Signer {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(payload.as_bytes());
        mac
    }

    /// `base64url(text).base64url(mac)`.
    pub fn seal(&self, text: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(text);
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The text of a sealed token, if the seal is intact.
    pub fn open(&self, token: &str) -> Option<String> {
        let (payload, signature) = token.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(payload).verify_slice(&signature).ok()?;
        String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

/// Signs and checks download tokens.
pub struct DownloadSigner(Signer);

impl DownloadSigner {
    /// A signer whose key is derived from the server secret.
    pub fn new(secret: &[u8]) -> Self {
        DownloadSigner(Signer::new(secret, "download-url v1"))
    }

    /// The opaque token for a grant.
    pub fn sign(&self, grant: &Grant) -> String {
        self.0.seal(&format!(
            "{}~{}~{}~{}~{}",
            grant.tenant.0.simple(),
            grant.report.entity,
            grant.period.map_or("-", Period::param),
            grant.expires,
            grant.version.segment()
        ))
    }

    /// Checks a token's signature and expiry.
    pub fn verify(&self, token: &str, now: u64) -> Result<Grant, ApiError> {
        let forged = || ApiError::access_denied("The download URL is not valid.");
        let payload = self.0.open(token).ok_or_else(forged)?;
        let mut parts = payload.split('~');
        let (Some(tenant), Some(report), Some(period), Some(expires), Some(version), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(forged());
        };
        let grant = Grant {
            tenant: TenantId(Uuid::parse_str(tenant).map_err(|_| forged())?),
            report: find_report(report).ok_or_else(forged)?,
            period: match period {
                "-" => None,
                other => Some(Period::from_param(other).ok_or_else(forged)?),
            },
            expires: expires.parse().map_err(|_| forged())?,
            version: Version::ALL
                .into_iter()
                .find(|v| v.segment() == version)
                .ok_or_else(forged)?,
        };
        if grant.expires < now {
            return Err(ApiError::unauthenticated("The download URL has expired."));
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_changes() {
        let signer = DownloadSigner::new(b"secret");
        let grant = Grant {
            tenant: TenantId(Uuid::new_v4()),
            report: find_report("office365ActiveUserCounts").expect("report"),
            period: Some(Period::D30),
            expires: 1000,
            version: Version::V1,
        };
        let token = signer.sign(&grant);
        assert_eq!(signer.verify(&token, 999).expect("valid"), grant);
        let beta = Grant {
            version: Version::Beta,
            ..grant
        };
        assert_eq!(
            signer.verify(&signer.sign(&beta), 999).expect("valid"),
            beta
        );
        assert_eq!(
            signer.verify(&token, 1001).expect_err("expired").status,
            401
        );
        let other = DownloadSigner::new(b"other");
        assert_eq!(other.verify(&token, 999).expect_err("forged").status, 403);
        let (payload, signature) = token.split_once('.').expect("dot");
        let altered = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("b64"))
                .expect("utf8")
                .replace("D30", "D90"),
        );
        let tampered = format!("{altered}.{signature}");
        assert_eq!(
            signer.verify(&tampered, 999).expect_err("tampered").status,
            403
        );
    }
}
