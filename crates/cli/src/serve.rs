//! `serve` and `demo`: the listeners (HTTP, HTTPS, metrics), the API's configuration from the
//! settings, and a graceful stop on Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use reportroot_api::{ApiConfig, AppState};
use reportroot_storage::Storage;

use crate::certs;
use crate::config::{CertSource, Https, Settings};

/// What a server listens on, for the demo's welcome.
pub struct Served {
    /// The base URL of the printed commands: the public URL, else the plain-HTTP listener's,
    /// else the HTTPS listener's.
    pub base: String,
    /// The HTTPS listener's URL.
    pub https: Option<String>,
    /// The CA to trust for it, when the demo created the certificate.
    pub ca: Option<PathBuf>,
}

pub async fn serve(
    settings: Settings,
    https: Option<ReadyHttps>,
    storage: Arc<dyn Storage>,
    on_ready: impl FnOnce(&Served),
) -> Result<()> {
    let (listeners, own_urls) = listeners(&settings, https.as_ref()).await?;
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| own_urls[0].clone());
    let config = api_config(&settings, public_url)?;
    let metrics = match settings.metrics_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} for metrics"))?,
        ),
        None => None,
    };
    for url in &own_urls {
        tracing::info!(url = %url, public_url = ?settings.public_url, database = %settings.database, "reportroot listening");
    }
    on_ready(&Served {
        base: config.public_url.clone(),
        https: https
            .is_some()
            .then(|| own_urls[own_urls.len() - 1].clone()),
        ca: https.and_then(|https| https.ca),
    });
    let state = AppState::new(storage, config);
    state
        .ensure_signing_key()
        .await
        .context("cannot prepare the token-signing key")?;
    if let Some(listener) = metrics {
        serve_metrics(listener, Arc::clone(&state))?;
    }
    reportroot_api::serve_listeners(listeners, state, shutdown_signal())
        .await
        .context("the server failed")
}

/// The plain-HTTP listener (unless turned off), then the HTTPS one, each with the base URL
/// its answers link to; and each listener's own URL, in the same order.
async fn listeners(
    settings: &Settings,
    https: Option<&ReadyHttps>,
) -> Result<(Vec<reportroot_api::server::Listener>, Vec<String>)> {
    let mut listeners = Vec::new();
    if !settings.no_http {
        listeners.push(bind(settings.listen, None).await?);
    }
    if let Some(https) = https {
        listeners.push(https_listener(https).await?);
    }
    let own_urls = listeners
        .iter()
        .map(reportroot_api::server::Listener::own_url)
        .collect::<Result<Vec<_>, _>>()?;
    // A configured public URL is what every listener's answers link to; otherwise each
    // listener's own scheme and address.
    for (listener, own) in listeners.iter_mut().zip(&own_urls) {
        listener.base_url = Some(settings.public_url.clone().unwrap_or_else(|| own.clone()));
    }
    Ok((listeners, own_urls))
}

/// The API's configuration: the defaults with what `settings` sets.
fn api_config(settings: &Settings, public_url: String) -> Result<ApiConfig> {
    let mut config = ApiConfig::new(public_url, settings.secret_source.load()?);
    if let Some(audiences) = settings.audiences.clone() {
        config.audiences = audiences;
    }
    if let Some(limit) = settings.max_body_bytes {
        config.max_body_bytes = limit;
    }
    if let Some(ttl) = settings.download_ttl {
        config.download_ttl_seconds = ttl;
    }
    if let Some(size) = settings.page_size {
        config.page_size = size.max(1);
    }
    apply_limits(settings, &mut config);
    apply_sign_in(settings, &mut config);
    apply_operation(settings, &mut config);
    Ok(config)
}

/// Serves the metrics listener in the background; it stops with the process.
fn serve_metrics(listener: tokio::net::TcpListener, state: Arc<AppState>) -> Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(url = %format!("http://{address}/metrics"), "metrics listening");
    tokio::spawn(async move {
        let never = std::future::pending::<()>();
        if let Err(error) = reportroot_api::serve_metrics(listener, state, never).await {
            tracing::error!(%error, "the metrics listener failed");
        }
    });
    Ok(())
}

/// Throttling, chaos and metrics, each off unless configured.
fn apply_operation(settings: &Settings, config: &mut ApiConfig) {
    config.throttle.clone_from(&settings.throttle);
    config.chaos.clone_from(&settings.chaos);
    config.metrics = settings.metrics_listen.is_some();
    if let Some(limits) = &config.throttle {
        tracing::info!(?limits, "Graph's report throttling is on");
    }
    if let Some(chaos) = &config.chaos {
        tracing::warn!(?chaos, "chaos is on: requests fail and wait on purpose");
    }
}

/// Which tokens are accepted and issued.
fn apply_sign_in(settings: &Settings, config: &mut ApiConfig) {
    config.trusted_issuers = settings.trust_issuers.clone();
    if let Some(uris) = settings.app_id_uris.clone() {
        config.app_id_uris = uris;
    }
    config.accept_hs256 = !settings.no_hs256;
    config.dashboard_oidc.clone_from(&settings.dashboard_oidc);
    if let Some(oidc) = &config.dashboard_oidc {
        tracing::info!(issuer = %oidc.issuer, client_id = %oidc.client_id, "the dashboard offers sign-in with Entra ID");
    }
}

/// A listener on `address`, HTTPS when given a TLS configuration.
async fn bind(
    address: std::net::SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<reportroot_api::server::Listener> {
    let tcp = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    Ok(reportroot_api::server::Listener {
        tcp,
        tls,
        base_url: None,
    })
}

/// The HTTPS listener's settings with its certificate loaded.
pub struct ReadyHttps {
    settings: Https,
    config: Arc<rustls::ServerConfig>,
    /// The CA to trust, when the certificate is the demo's own.
    ca: Option<PathBuf>,
}

/// Loads (or, for the demo, creates) the certificate, before anything else is opened, so that
/// a bad certificate stops the server at once.
pub fn prepare_https(https: Option<Https>) -> Result<Option<ReadyHttps>> {
    let Some(settings) = https else {
        return Ok(None);
    };
    let (config, ca) = match &settings.cert {
        CertSource::Files { cert, key } => (reportroot_api::tls::server_config(cert, key)?, None),
        CertSource::Demo { dir } => {
            let files = certs::DemoCertificate::in_dir(dir)?;
            files.ensure()?;
            let config = reportroot_api::tls::server_config(&files.chain, &files.key)?;
            (config, Some(files.ca))
        }
    };
    Ok(Some(ReadyHttps {
        settings,
        config,
        ca,
    }))
}

/// The HTTPS listener.
async fn https_listener(https: &ReadyHttps) -> Result<reportroot_api::server::Listener> {
    let address = https.settings.listen;
    match bind(address, Some(Arc::clone(&https.config))).await {
        Ok(listener) => Ok(listener),
        // Why: the demo's HTTPS port is a convenience; two demos (or a demo beside other
        // software on 8443) must still start. What it prints names the port it got.
        Err(error) if is_demo_default(&https.settings) => {
            tracing::warn!(%error, "the default HTTPS port is taken; using a free one");
            let any_port = std::net::SocketAddr::new(address.ip(), 0);
            bind(any_port, Some(Arc::clone(&https.config))).await
        }
        Err(error) => Err(error),
    }
}

fn is_demo_default(https: &Https) -> bool {
    !https.listen_configured && matches!(https.cert, CertSource::Demo { .. })
}

/// The connection and request bounds of `settings` over the defaults.
fn apply_limits(settings: &Settings, config: &mut ApiConfig) {
    let seconds = |s: u64| std::time::Duration::from_secs(s.max(1));
    if let Some(s) = settings.header_read_timeout {
        config.connections.header_read_timeout = seconds(s);
    }
    if let Some(s) = settings.idle_timeout {
        config.connections.idle_timeout = seconds(s);
    }
    if let Some(s) = settings.request_timeout {
        config.request_timeout = seconds(s);
    }
    if let Some(n) = settings.max_connections {
        config.connections.max_connections = n.max(1);
    }
    if let Some(bytes) = settings.answer_cache_bytes {
        config.answer_cache_bytes = bytes;
    }
    if let Some(n) = settings.scans_per_tenant {
        config.scans.per_tenant = n.max(1);
    }
    if let Some(n) = settings.scans {
        config.scans.total = n.max(1);
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down; finishing requests in flight");
}
