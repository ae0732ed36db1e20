//! The demo's HTTPS certificate: a local CA and a server certificate it signs for
//! 127.0.0.1, ::1 and localhost, kept as PEM files next to the key file and reused while they
//! are still valid, so that a client trusting the CA keeps trusting the demo after a restart.

use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{ServerName, UnixTime};

/// The names the server certificate is for.
pub const NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// How long the CA is valid: long, as users install it in trust stores.
const CA_DAYS: i64 = 3650;
/// How long the server certificate is valid (Apple's clients refuse more than 825 days).
const SERVER_DAYS: i64 = 800;
/// Files valid for less than this long are replaced rather than reused.
const MARGIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// The demo certificate's files, as absolute paths.
#[derive(Debug, Clone)]
pub struct DemoCertificate {
    /// The local CA certificate clients trust (`reportroot-ca.pem`).
    pub ca: PathBuf,
    /// The server certificate followed by the CA's (`reportroot-tls.pem`).
    pub chain: PathBuf,
    /// The server certificate's private key (`reportroot-tls.key`).
    pub key: PathBuf,
}

impl DemoCertificate {
    /// The files' places in `dir`.
    pub fn in_dir(dir: &Path) -> Result<DemoCertificate> {
        let dir = std::path::absolute(dir)
            .with_context(|| format!("cannot resolve directory {}", dir.display()))?;
        Ok(DemoCertificate {
            ca: dir.join("reportroot-ca.pem"),
            chain: dir.join("reportroot-tls.pem"),
            key: dir.join("reportroot-tls.key"),
        })
    }

    /// Reuses the files when they are still valid for [`NAMES`], or writes new ones. Says
    /// whether it created them.
    pub fn ensure(&self) -> Result<bool> {
        match self.check() {
            Ok(()) => Ok(false),
            Err(why) => {
                if self.ca.exists() || self.chain.exists() || self.key.exists() {
                    tracing::info!(reason = %why, "replacing the demo's TLS certificate");
                }
                self.generate()?;
                Ok(true)
            }
        }
    }

    /// Whether the files are there, match, and the server certificate chains to the CA for
    /// every name for at least [`MARGIN`] more.
    pub fn check(&self) -> Result<()> {
        let roots = reportroot_api::tls::load_chain(&self.ca)?;
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store
                .add(root)
                .with_context(|| format!("{}", self.ca.display()))?;
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(store),
            reportroot_api::tls::crypto_provider(),
        )
        .build()?;
        let chain = reportroot_api::tls::load_chain(&self.chain)?;
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(anyhow!("{}: no certificate", self.chain.display()));
        };
        let later = SystemTime::now() + MARGIN;
        let at = UnixTime::since_unix_epoch(later.duration_since(UNIX_EPOCH).unwrap_or_default());
        for name in NAMES {
            let server_name = ServerName::try_from(name)?;
            verifier
                .verify_server_cert(leaf, intermediates, &server_name, &[], at)
                .with_context(|| format!("{} for {name}", self.chain.display()))?;
        }
        // Also checks that the key is the certificate's.
        reportroot_api::tls::server_config(&self.chain, &self.key)?;
        Ok(())
    }

    /// Writes a new CA, server certificate and key (the CA's key is not kept: nothing else
    /// is ever signed with it).
    fn generate(&self) -> Result<()> {
        const FAILED: &str = "cannot create the demo's TLS certificate";
        let ca_key = KeyPair::generate().context(FAILED)?;
        let ca = ca_params()?.self_signed(&ca_key).context(FAILED)?;
        let server_key = KeyPair::generate().context(FAILED)?;
        let server = server_params()?
            .signed_by(&server_key, &ca, &ca_key)
            .context(FAILED)?;
        write_file(&self.key, &server_key.serialize_pem(), true)?;
        write_file(&self.chain, &format!("{}{}", server.pem(), ca.pem()), false)?;
        write_file(&self.ca, &ca.pem(), false)?;
        tracing::info!(ca = %self.ca.display(), "created the demo's local CA and TLS certificate");
        Ok(())
    }
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // A day of slack for clocks that are a little behind.
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
}

fn ca_params() -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("reportroot demo local CA ({})", hostname_hint()),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, CA_DAYS);
    Ok(params)
}

fn server_params() -> Result<CertificateParams> {
    let names: Vec<String> = NAMES.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "reportroot demo");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, SERVER_DAYS);
    Ok(params)
}

/// Something that tells one machine's demo CA from another's in a trust store listing.
fn hostname_hint() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Replaces `path` with `contents`; a private file is readable by its owner only.
fn write_file(path: &Path, contents: &str, private: bool) -> Result<()> {
    use std::io::Write;
    let failed = || format!("cannot write {}", path.display());
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(failed),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .with_context(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reuses_then_replaces_a_broken_certificate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = DemoCertificate::in_dir(dir.path()).expect("paths");
        assert!(files.ca.is_absolute());
        assert!(files.ensure().expect("ensured"));
        let ca = std::fs::read(&files.ca).expect("ca");
        // Still valid: kept as it is, so a client's trust in the CA survives a restart.
        assert!(!files.ensure().expect("ensured"));
        assert_eq!(std::fs::read(&files.ca).expect("ca"), ca);
        // A key that is not the certificate's: everything is made anew.
        let other = tempfile::tempdir().expect("temp dir");
        let other_files = DemoCertificate::in_dir(other.path()).expect("paths");
        other_files.ensure().expect("other");
        std::fs::copy(&other_files.key, &files.key).expect("copy");
        assert!(files.check().is_err());
        assert!(files.ensure().expect("ensured"));
        assert_ne!(std::fs::read(&files.ca).expect("ca"), ca);
        files.check().expect("valid again");
    }

    #[test]
    fn a_certificate_from_another_ca_is_not_valid() {
        let one = tempfile::tempdir().expect("temp dir");
        let two = tempfile::tempdir().expect("temp dir");
        let (one, two) = (
            DemoCertificate::in_dir(one.path()).expect("paths"),
            DemoCertificate::in_dir(two.path()).expect("paths"),
        );
        one.ensure().expect("one");
        two.ensure().expect("two");
        std::fs::copy(&two.ca, &one.ca).expect("copy");
        let error = one.check().expect_err("another CA");
        assert!(
            format!("{error:#}").contains("reportroot-tls.pem"),
            "{error:#}"
        );
    }
}
