//! Settings in layers: command-line flag, then `REPORTROOT_*` environment variable (both via
//! clap), then the TOML config file, then the default.

use anyhow::{anyhow, bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

/// Settings shared by `serve` and `demo`.
#[derive(Debug, Clone, Args, Default)]
pub struct ServerArgs {
    /// Address to serve plain HTTP on [default: 127.0.0.1:8080].
    #[arg(long, env = "REPORTROOT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address to serve HTTPS on; needs --tls-cert and --tls-key, except for `demo`
    /// [default with them, and for `demo`: 127.0.0.1:8443].
    #[arg(long, env = "REPORTROOT_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,
    /// PEM file with the HTTPS certificate chain, the server's certificate first
    /// [`demo`: one it creates, signed by a local CA, next to the key file].
    #[arg(long, env = "REPORTROOT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the private key of --tls-cert (PKCS#8, RSA or EC).
    #[arg(long, env = "REPORTROOT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS only: no plain-HTTP listener on --listen.
    #[arg(long, env = "REPORTROOT_NO_HTTP")]
    pub no_http: bool,
    /// Database URL: sqlite://FILE (or a plain path) or postgres://USER:PASS@HOST:PORT/DB
    /// [default: sqlite://reportroot.db].
    #[arg(long, env = "REPORTROOT_DATABASE")]
    pub database: Option<String>,
    /// Base URL clients use to reach this server [default: http://<listen address>].
    #[arg(long, env = "REPORTROOT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Accepted token audience; repeat for several
    /// [default: https://graph.microsoft.com and 00000003-0000-0000-c000-000000000000].
    #[arg(long = "audience", env = "REPORTROOT_AUDIENCE", value_delimiter = ',')]
    pub audiences: Vec<String>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "REPORTROOT_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Rows per page of collection answers [default: 1000].
    #[arg(long, env = "REPORTROOT_PAGE_SIZE")]
    pub page_size: Option<u64>,
    /// PostgreSQL connections of this instance's pool of writes and of its pool of bounded
    /// reads; a quarter as many for scans [default: 16].
    #[arg(long, env = "REPORTROOT_DB_CONNECTIONS")]
    pub db_connections: Option<usize>,
    /// Citus only: shards per report table when `migrate` or start-up first distributes them
    /// [default: Citus's citus.shard_count, 32].
    #[arg(long, env = "REPORTROOT_SHARD_COUNT")]
    pub shard_count: Option<u32>,
    /// Seconds a report download URL stays valid [default: 300].
    #[arg(long, env = "REPORTROOT_DOWNLOAD_TTL")]
    pub download_ttl: Option<u64>,
    /// SQLite durability: `process` survives crashes and kill -9, `power` also power loss
    /// [default: process].
    #[arg(long, env = "REPORTROOT_SQLITE_DURABILITY")]
    pub sqlite_durability: Option<String>,
    /// Seconds a connection has to send a request's complete headers, counted from when it
    /// waits for one (also how long idle keep-alive connections are kept) [default: 10].
    #[arg(long, env = "REPORTROOT_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<u64>,
    /// Seconds without a byte moving after which a connection is closed [default: 60].
    #[arg(long, env = "REPORTROOT_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Seconds for a request's body to arrive (408 after) and for a read to be answered
    /// (503 after) [default: 30].
    #[arg(long, env = "REPORTROOT_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,
    /// Connections served at once; more wait in the listen backlog [default: 768].
    #[arg(long, env = "REPORTROOT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Bytes of rendered report answers kept until their tenant's rows change (writes by other
    /// instances or processes show within a second) [default: 134217728].
    #[arg(long, env = "REPORTROOT_ANSWER_CACHE_BYTES")]
    pub answer_cache_bytes: Option<usize>,
    /// Queries of one tenant that may read its whole history (a `$filter` or `$orderby` on a
    /// count, a string function) running at once; more get 429 [default: 1].
    #[arg(long, env = "REPORTROOT_SCANS_PER_TENANT")]
    pub scans_per_tenant: Option<usize>,
    /// Such queries of all tenants running at once; more get 503 [default: half the cores].
    #[arg(long, env = "REPORTROOT_SCANS")]
    pub scans: Option<usize>,
    /// Accept RS256 tokens from this external issuer (its discovery document and JWKS are
    /// fetched over HTTPS), e.g. https://login.microsoftonline.com/<tenant>/v2.0; repeat for
    /// several.
    #[arg(
        long = "trust-issuer",
        env = "REPORTROOT_TRUST_ISSUER",
        value_delimiter = ','
    )]
    pub trust_issuers: Vec<String>,
    /// App ID URI the token endpoint issues tokens for besides Graph (and whose tokens are
    /// accepted); repeat for several [default: api://reportroot].
    #[arg(
        long = "app-id-uri",
        env = "REPORTROOT_APP_ID_URI",
        value_delimiter = ','
    )]
    pub app_id_uris: Vec<String>,
    /// Refuse HS256 tokens signed with the shared secret (`reportroot token`): only tokens of
    /// the token endpoint and trusted issuers are accepted.
    #[arg(long, env = "REPORTROOT_NO_HS256")]
    pub no_hs256: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics, a listener apart from the API's
    /// [default: off].
    #[arg(long, env = "REPORTROOT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Throttle report functions as Graph does: `graph` (limits from the config file's
    /// `[throttle]` table, else Graph's) or `off` [default: off].
    #[arg(long, env = "REPORTROOT_THROTTLE")]
    pub throttle: Option<ThrottleMode>,
    #[command(flatten)]
    pub dashboard_oidc: DashboardOidcArgs,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// "Sign in with Entra ID" on the dashboard: OpenID Connect against one issuer (all of
/// issuer, client id and client secret, or none).
#[derive(Clone, Args, Default)]
pub struct DashboardOidcArgs {
    /// Offer "Sign in with Entra ID" on the dashboard with this issuer, e.g.
    /// https://login.microsoftonline.com/<tenant>/v2.0 [default: off].
    #[arg(long, env = "REPORTROOT_DASHBOARD_OIDC_ISSUER")]
    pub dashboard_oidc_issuer: Option<String>,
    /// The app registration's client (application) id, for the dashboard's sign-in.
    #[arg(long, env = "REPORTROOT_DASHBOARD_OIDC_CLIENT_ID")]
    pub dashboard_oidc_client_id: Option<String>,
    /// The app registration's client secret, for the dashboard's sign-in (better given in
    /// the environment or the config file than on the command line).
    #[arg(
        long,
        env = "REPORTROOT_DASHBOARD_OIDC_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub dashboard_oidc_client_secret: Option<String>,
    /// The redirect URI registered with the issuer
    /// [default: <public URL>/dashboard/signin/oidc].
    #[arg(long, env = "REPORTROOT_DASHBOARD_OIDC_REDIRECT_URI")]
    pub dashboard_oidc_redirect_uri: Option<String>,
}

// Hand-written: the client secret is never printed.
impl std::fmt::Debug for DashboardOidcArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardOidcArgs")
            .field("issuer", &self.dashboard_oidc_issuer)
            .field("client_id", &self.dashboard_oidc_client_id)
            .field(
                "client_secret",
                &self
                    .dashboard_oidc_client_secret
                    .as_ref()
                    .map(|_| "<redacted>"),
            )
            .field("redirect_uri", &self.dashboard_oidc_redirect_uri)
            .finish()
    }
}

/// The config file's `[dashboard_oidc]` table.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DashboardOidcFile {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    redirect_uri: Option<String>,
}

impl std::fmt::Debug for DashboardOidcFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardOidcFile")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// Whether report functions are throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThrottleMode {
    /// No throttling.
    Off,
    /// Graph's report limits.
    Graph,
}

/// Where the token-signing secret comes from.
#[derive(Debug, Clone, Args, Default)]
pub struct KeyArgs {
    /// File holding the token-signing secret, created on first use [default: reportroot.key].
    #[arg(long, env = "REPORTROOT_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

/// The TOML config file: the same settings, snake_case.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<SocketAddr>,
    tls_listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    no_http: Option<bool>,
    database: Option<String>,
    public_url: Option<String>,
    audiences: Option<Vec<String>>,
    max_body_bytes: Option<usize>,
    page_size: Option<u64>,
    download_ttl: Option<u64>,
    db_connections: Option<usize>,
    shard_count: Option<u32>,
    sqlite_durability: Option<String>,
    header_read_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    request_timeout: Option<u64>,
    max_connections: Option<usize>,
    answer_cache_bytes: Option<usize>,
    scans_per_tenant: Option<usize>,
    scans: Option<usize>,
    key_file: Option<PathBuf>,
    jwt_secret: Option<String>,
    trust_issuers: Option<Vec<String>>,
    app_id_uris: Option<Vec<String>>,
    no_hs256: Option<bool>,
    metrics_listen: Option<SocketAddr>,
    /// `throttle = "graph"`, or a `[throttle]` table of limits (which turns it on unless
    /// `mode = "off"`).
    throttle: Option<ThrottleFile>,
    chaos: Option<reportroot_api::chaos::ChaosConfig>,
    dashboard_oidc: Option<DashboardOidcFile>,
}

/// `throttle` in the config file: a mode, or a table of limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ThrottleFile {
    Mode(ThrottleMode),
    Table(ThrottleTable),
}

/// The `[throttle]` table.
#[derive(Debug, Clone, Deserialize)]
struct ThrottleTable {
    #[serde(default)]
    mode: Option<ThrottleMode>,
    #[serde(flatten)]
    limits: reportroot_api::throttle::ThrottleLimits,
}

impl FileConfig {
    /// Reads the file, or nothing when no file is given.
    pub fn load(path: Option<&Path>) -> Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// Fully resolved server settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub tls_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub no_http: bool,
    /// The key file's path, also when the secret is given inline: the demo keeps its TLS
    /// certificate next to it.
    pub key_file: PathBuf,
    pub database: String,
    pub public_url: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub max_body_bytes: Option<usize>,
    pub page_size: Option<u64>,
    pub download_ttl: Option<u64>,
    pub db_connections: usize,
    pub shard_count: Option<u32>,
    pub durability: reportroot_sqlite::Durability,
    pub header_read_timeout: Option<u64>,
    pub idle_timeout: Option<u64>,
    pub request_timeout: Option<u64>,
    pub max_connections: Option<usize>,
    pub answer_cache_bytes: Option<usize>,
    pub scans_per_tenant: Option<usize>,
    pub scans: Option<usize>,
    pub trust_issuers: Vec<String>,
    pub app_id_uris: Option<Vec<String>>,
    pub no_hs256: bool,
    pub secret_source: SecretSource,
    pub metrics_listen: Option<SocketAddr>,
    /// Graph's report throttling with these limits, when on.
    pub throttle: Option<reportroot_api::throttle::ThrottleLimits>,
    /// Fault injection, when the config file has a `[chaos]` table.
    pub chaos: Option<reportroot_api::chaos::ChaosConfig>,
    /// "Sign in with Entra ID" on the dashboard, when configured (its `Debug` hides the
    /// secret).
    pub dashboard_oidc: Option<reportroot_api::session::DashboardOidcConfig>,
}

/// Where the signing secret is read from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// `REPORTROOT_JWT_SECRET` or `jwt_secret` in the config file.
    Inline(String),
    /// A key file, generated when missing.
    File(PathBuf),
}

impl SecretSource {
    /// Resolves the key settings alone (for `token`).
    pub fn resolve(key: &KeyArgs, file: &FileConfig) -> SecretSource {
        if let Ok(secret) = std::env::var("REPORTROOT_JWT_SECRET") {
            if !secret.is_empty() {
                return SecretSource::Inline(secret);
            }
        }
        if let Some(secret) = &file.jwt_secret {
            return SecretSource::Inline(secret.clone());
        }
        SecretSource::File(key_file(key, file))
    }

    /// The secret's bytes, creating the key file with a random secret when it is missing.
    pub fn load(&self) -> Result<Vec<u8>> {
        match self {
            SecretSource::Inline(secret) => Ok(secret.as_bytes().to_vec()),
            SecretSource::File(path) => match std::fs::read_to_string(path) {
                Ok(text) if !text.trim().is_empty() => Ok(text.trim().as_bytes().to_vec()),
                Ok(_) => Err(anyhow!("key file {} is empty", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let secret: String = (0..32)
                        .map(|_| format!("{:02x}", rand::random::<u8>()))
                        .collect();
                    write_private(path, &secret)
                        .with_context(|| format!("cannot create key file {}", path.display()))?;
                    tracing::info!(path = %path.display(), "created a new token-signing key file");
                    Ok(secret.into_bytes())
                }
                Err(e) => {
                    Err(e).with_context(|| format!("cannot read key file {}", path.display()))
                }
            },
        }
    }
}

/// The trusted issuers of flags or file, each checked (HTTPS, or HTTP on loopback).
fn trust_issuers(args: &ServerArgs, file: &FileConfig) -> Result<Vec<String>> {
    let issuers = if args.trust_issuers.is_empty() {
        file.trust_issuers.clone().unwrap_or_default()
    } else {
        args.trust_issuers.clone()
    };
    for issuer in &issuers {
        reportroot_api::trusted_issuers::check_url(issuer).context("--trust-issuer")?;
    }
    Ok(issuers)
}

/// The key file's path: flag or variable, then file, then `reportroot.key`.
fn key_file(key: &KeyArgs, file: &FileConfig) -> PathBuf {
    key.key_file
        .clone()
        .or_else(|| file.key_file.clone())
        .unwrap_or_else(|| PathBuf::from("reportroot.key"))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

/// SQLite's durability of flags or file [default: process].
fn durability(args: &ServerArgs, file: &FileConfig) -> Result<reportroot_sqlite::Durability> {
    match args
        .sqlite_durability
        .clone()
        .or_else(|| file.sqlite_durability.clone())
        .as_deref()
    {
        None | Some("process") => Ok(reportroot_sqlite::Durability::Process),
        Some("power") => Ok(reportroot_sqlite::Durability::Power),
        Some(other) => bail!("sqlite durability must be 'process' or 'power', not '{other}'"),
    }
}

impl Settings {
    /// Merges flags and environment over the config file over defaults.
    pub fn resolve(
        args: &ServerArgs,
        file: &FileConfig,
        default_database: &str,
    ) -> Result<Settings> {
        let durability = durability(args, file)?;
        Ok(Settings {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            tls_listen: args.tls_listen.or(file.tls_listen),
            tls_cert: args.tls_cert.clone().or_else(|| file.tls_cert.clone()),
            tls_key: args.tls_key.clone().or_else(|| file.tls_key.clone()),
            no_http: args.no_http || file.no_http.unwrap_or(false),
            key_file: key_file(&args.key, file),
            database: args
                .database
                .clone()
                .or_else(|| file.database.clone())
                .unwrap_or_else(|| default_database.to_owned()),
            public_url: args.public_url.clone().or_else(|| file.public_url.clone()),
            audiences: (!args.audiences.is_empty())
                .then(|| args.audiences.clone())
                .or_else(|| file.audiences.clone()),
            max_body_bytes: args.max_body_bytes.or(file.max_body_bytes),
            page_size: args.page_size.or(file.page_size),
            download_ttl: args.download_ttl.or(file.download_ttl),
            db_connections: args
                .db_connections
                .or(file.db_connections)
                .unwrap_or(16)
                .max(1),
            shard_count: args.shard_count.or(file.shard_count),
            durability,
            header_read_timeout: args.header_read_timeout.or(file.header_read_timeout),
            idle_timeout: args.idle_timeout.or(file.idle_timeout),
            request_timeout: args.request_timeout.or(file.request_timeout),
            max_connections: args.max_connections.or(file.max_connections),
            answer_cache_bytes: args.answer_cache_bytes.or(file.answer_cache_bytes),
            scans_per_tenant: args.scans_per_tenant.or(file.scans_per_tenant),
            scans: args.scans.or(file.scans),
            trust_issuers: trust_issuers(args, file)?,
            app_id_uris: (!args.app_id_uris.is_empty())
                .then(|| args.app_id_uris.clone())
                .or_else(|| file.app_id_uris.clone()),
            no_hs256: args.no_hs256 || file.no_hs256.unwrap_or(false),
            secret_source: SecretSource::resolve(&args.key, file),
            metrics_listen: args.metrics_listen.or(file.metrics_listen),
            throttle: throttle(args, file),
            chaos: chaos(file)?,
            dashboard_oidc: dashboard_oidc(&args.dashboard_oidc, file)?,
        })
    }
}

/// The throttle's limits when it is on: the flag's (or variable's) mode over the file's, the
/// file's table for the limits.
fn throttle(
    args: &ServerArgs,
    file: &FileConfig,
) -> Option<reportroot_api::throttle::ThrottleLimits> {
    let (file_mode, limits) = match &file.throttle {
        None => (None, None),
        Some(ThrottleFile::Mode(mode)) => (Some(*mode), None),
        Some(ThrottleFile::Table(table)) => (
            Some(table.mode.unwrap_or(ThrottleMode::Graph)),
            Some(table.limits.clone()),
        ),
    };
    match args.throttle.or(file_mode) {
        Some(ThrottleMode::Graph) => Some(limits.unwrap_or_default()),
        Some(ThrottleMode::Off) | None => None,
    }
}

/// "Sign in with Entra ID": each setting from flag or variable, else the file's
/// `[dashboard_oidc]`; issuer, client id and secret all given (or none), the URLs checked.
fn dashboard_oidc(
    args: &DashboardOidcArgs,
    file: &FileConfig,
) -> Result<Option<reportroot_api::session::DashboardOidcConfig>> {
    let table = file.dashboard_oidc.clone().unwrap_or_default();
    let issuer = args.dashboard_oidc_issuer.clone().or(table.issuer);
    let client_id = args.dashboard_oidc_client_id.clone().or(table.client_id);
    let secret = args
        .dashboard_oidc_client_secret
        .clone()
        .or(table.client_secret);
    let redirect_uri = args
        .dashboard_oidc_redirect_uri
        .clone()
        .or(table.redirect_uri);
    let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    if !given(&issuer) && !given(&client_id) && !given(&secret) {
        return Ok(None);
    }
    let (Some(issuer), Some(client_id), Some(client_secret)) = (issuer, client_id, secret) else {
        bail!(
            "the dashboard's Entra ID sign-in needs all of --dashboard-oidc-issuer, \
             --dashboard-oidc-client-id and --dashboard-oidc-client-secret"
        );
    };
    reportroot_api::trusted_issuers::check_url(&issuer).context("--dashboard-oidc-issuer")?;
    if let Some(uri) = &redirect_uri {
        if !(uri.starts_with("https://") || uri.starts_with("http://")) {
            bail!("--dashboard-oidc-redirect-uri: '{uri}' is not an http(s) URL");
        }
    }
    Ok(Some(reportroot_api::session::DashboardOidcConfig {
        issuer,
        client_id,
        client_secret,
        redirect_uri,
    }))
}

/// The file's `[chaos]` table, checked.
fn chaos(file: &FileConfig) -> Result<Option<reportroot_api::chaos::ChaosConfig>> {
    let Some(chaos) = &file.chaos else {
        return Ok(None);
    };
    chaos.check()?;
    Ok(Some(chaos.clone()))
}

/// The HTTPS port when none is configured.
pub const DEFAULT_TLS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8443);

/// Where a server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// `--tls-cert` and `--tls-key`.
    Files { cert: PathBuf, key: PathBuf },
    /// The demo's own, created (or reused) in this directory.
    Demo { dir: PathBuf },
}

/// The HTTPS listener to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Https {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Whether the address was configured; a default one may move to a free port.
    pub listen_configured: bool,
    /// The certificate.
    pub cert: CertSource,
}

impl Settings {
    /// The HTTPS listener `serve` (`demo: false`) or `demo` runs, if any: `serve` serves HTTPS
    /// when given a certificate and key, `demo` always (with its own certificate unless given
    /// one). Also checks that some listener is left when plain HTTP is turned off.
    pub fn https(&self, demo: bool) -> Result<Option<Https>> {
        let cert = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) if demo => Some(CertSource::Demo {
                dir: directory_of(&self.key_file),
            }),
            (None, None) => None,
            (Some(_), None) => return Err(anyhow!("--tls-cert needs --tls-key")),
            (None, Some(_)) => return Err(anyhow!("--tls-key needs --tls-cert")),
        };
        match cert {
            Some(cert) => Ok(Some(Https {
                listen: self.tls_listen.unwrap_or(DEFAULT_TLS_LISTEN),
                listen_configured: self.tls_listen.is_some(),
                cert,
            })),
            None if self.tls_listen.is_some() => bail!(
                "--tls-listen needs a certificate: give --tls-cert FILE and --tls-key FILE (PEM)"
            ),
            None if self.no_http => bail!(
                "--no-http leaves nothing to serve: give --tls-cert FILE and --tls-key FILE to serve HTTPS"
            ),
            None => Ok(None),
        }
    }
}

/// The directory a file is in (`.` for a bare file name).
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str, args: ServerArgs) -> Result<Settings> {
        let file: FileConfig = toml::from_str(text)?;
        Settings::resolve(&args, &file, "sqlite://x.db")
    }

    #[test]
    fn throttling_and_chaos_are_off_by_default() {
        let settings = settings(ServerArgs::default());
        assert!(settings.throttle.is_none());
        assert!(settings.chaos.is_none());
        assert!(settings.metrics_listen.is_none());
    }

    #[test]
    fn throttle_limits_come_from_the_file() {
        use reportroot_api::throttle::ThrottleLimits;
        let on = from_toml("throttle = \"graph\"", ServerArgs::default()).expect("ok");
        assert_eq!(on.throttle, Some(ThrottleLimits::default()));
        let table = "[throttle]\nwindow_seconds = 5\ncsv_per_app = 2\n";
        let tuned = from_toml(table, ServerArgs::default()).expect("ok");
        let limits = tuned.throttle.expect("on");
        assert_eq!((limits.window_seconds, limits.csv_per_app), (5, 2));
        assert_eq!(limits.csv_per_tenant, 40);
        let args = ServerArgs {
            throttle: Some(ThrottleMode::Off),
            ..ServerArgs::default()
        };
        assert!(from_toml(table, args).expect("ok").throttle.is_none());
        let off_table = "[throttle]\nmode = \"off\"\ncsv_per_app = 2\n";
        let args = ServerArgs {
            throttle: Some(ThrottleMode::Graph),
            ..ServerArgs::default()
        };
        let flag_on = from_toml(off_table, args).expect("ok").throttle;
        assert_eq!(flag_on.map(|l| l.csv_per_app), Some(2));
    }

    #[test]
    fn chaos_is_read_and_checked() {
        let text = "[chaos]\nfailure_rate = 0.5\nstatuses = [503]\nseed = 3\n";
        let chaos = from_toml(text, ServerArgs::default())
            .expect("ok")
            .chaos
            .expect("on");
        assert_eq!((chaos.failure_rate, chaos.seed), (0.5, 3));
        let bad = "[chaos]\nstatuses = [200]\n";
        assert!(from_toml(bad, ServerArgs::default()).is_err());
    }

    #[test]
    fn entra_sign_in_comes_from_flags_over_the_file_and_hides_its_secret() {
        let table = "[dashboard_oidc]\nissuer = \"https://login.microsoftonline.com/t/v2.0\"\n\
                     client_id = \"file-id\"\nclient_secret = \"file-secret\"\n";
        let from_file = from_toml(table, ServerArgs::default())
            .expect("ok")
            .dashboard_oidc
            .expect("on");
        assert_eq!(from_file.client_id, "file-id");
        assert_eq!(from_file.client_secret, "file-secret");
        assert_eq!(from_file.redirect_uri, None);
        let args = ServerArgs {
            dashboard_oidc: DashboardOidcArgs {
                dashboard_oidc_client_id: Some("flag-id".to_owned()),
                dashboard_oidc_redirect_uri: Some("https://r.example/dashboard/signin/oidc".into()),
                ..DashboardOidcArgs::default()
            },
            ..ServerArgs::default()
        };
        let settings = from_toml(table, args).expect("ok");
        let oidc = settings.dashboard_oidc.clone().expect("on");
        assert_eq!(oidc.client_id, "flag-id");
        assert_eq!(oidc.client_secret, "file-secret");
        assert!(!format!("{settings:?}").contains("file-secret"));
        assert!(from_toml("", ServerArgs::default())
            .expect("ok")
            .dashboard_oidc
            .is_none());
        let partial = "[dashboard_oidc]\nclient_id = \"x\"\n";
        assert!(from_toml(partial, ServerArgs::default()).is_err());
        let plain = table.replace("https://login.microsoftonline.com", "http://example.com");
        assert!(from_toml(&plain, ServerArgs::default()).is_err());
    }

    fn settings(args: ServerArgs) -> Settings {
        Settings::resolve(&args, &FileConfig::default(), "sqlite://x.db").expect("settings")
    }

    fn with_cert(args: ServerArgs) -> ServerArgs {
        ServerArgs {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..args
        }
    }

    #[test]
    fn serve_is_plain_http_without_a_certificate() {
        assert!(settings(ServerArgs::default())
            .https(false)
            .expect("ok")
            .is_none());
    }

    #[test]
    fn cert_and_key_serve_https_on_8443_by_default() {
        let https = settings(with_cert(ServerArgs::default()))
            .https(false)
            .expect("ok")
            .expect("https");
        assert_eq!(https.listen, DEFAULT_TLS_LISTEN);
        assert!(!https.listen_configured);
        assert_eq!(
            https.cert,
            CertSource::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
    }

    #[test]
    fn tls_listen_without_a_certificate_is_an_error() {
        let args = ServerArgs {
            tls_listen: Some(DEFAULT_TLS_LISTEN),
            ..ServerArgs::default()
        };
        let error = settings(args).https(false).expect_err("refused");
        assert!(error.to_string().contains("--tls-cert"), "{error}");
    }

    #[test]
    fn a_cert_without_its_key_is_an_error() {
        let args = ServerArgs {
            tls_cert: Some("c.pem".into()),
            ..ServerArgs::default()
        };
        assert!(settings(args).https(false).is_err());
    }

    #[test]
    fn no_http_needs_https() {
        let args = ServerArgs {
            no_http: true,
            ..ServerArgs::default()
        };
        assert!(settings(args).https(false).is_err());
    }

    #[test]
    fn demo_creates_its_certificate_next_to_the_key_file() {
        let args = ServerArgs {
            key: KeyArgs {
                key_file: Some("/srv/rr/reportroot.key".into()),
            },
            ..ServerArgs::default()
        };
        let https = settings(args).https(true).expect("ok").expect("https");
        assert_eq!(
            https.cert,
            CertSource::Demo {
                dir: "/srv/rr".into()
            }
        );
        let bare = settings(ServerArgs::default())
            .https(true)
            .expect("ok")
            .expect("https");
        assert_eq!(bare.cert, CertSource::Demo { dir: ".".into() });
    }
}
