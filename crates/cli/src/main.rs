//! `reportroot`: serve Microsoft Graph's `/reports` API on SQLite, with demo data and tokens.

/// mimalloc: the server and the importer allocate many small, short-lived buffers; profiles
/// showed glibc malloc as the top cost of bulk import.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod apps;
mod certs;
mod config;
mod data;
mod demo;
mod reports;
mod sync;
mod users;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use reportroot_api::{ApiConfig, AppState};
use reportroot_model::TenantId;
use reportroot_sqlite::SqliteStorage;
use reportroot_storage::{SchemaChange, Storage};
use uuid::Uuid;

use crate::config::{CertSource, FileConfig, Https, KeyArgs, SecretSource, ServerArgs, Settings};

#[derive(Debug, Parser)]
#[command(name = "reportroot", version, about)]
struct Cli {
    /// TOML config file with the same settings as the flags (snake_case names).
    #[arg(long, env = "REPORTROOT_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log lines as `text` (for people) or `json` (one object per line, for log pipelines);
    /// `RUST_LOG` sets the level [default: text].
    #[arg(long, env = "REPORTROOT_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines, with the request span's fields as a prefix.
    Text,
    /// One JSON object per line, with the current span's fields.
    Json,
}

/// Sends logs to standard error, filtered by `RUST_LOG` (default `info`).
fn init_logs(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API.
    Serve(ServerArgs),
    /// Serve a fresh database filled with demo data for two tenants, and print tokens and curl
    /// commands to try.
    Demo {
        #[command(flatten)]
        server: ServerArgs,
        /// Days of history to generate.
        #[arg(long, default_value_t = 190)]
        days: u32,
    },
    /// Print a signed access token and nothing else.
    Token {
        /// The tenant GUID (the token's `tid`).
        #[arg(long)]
        tenant: Uuid,
        /// A permission for the `roles` claim; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Lifetime: seconds, or a number with s, m, h or d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: u64,
        /// The `aud` claim.
        #[arg(long, default_value = reportroot_api::auth::GRAPH_AUDIENCE)]
        audience: String,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Import Graph's CSV exports (files or directories of .csv) for a tenant.
    Import {
        /// The tenant the rows belong to.
        #[arg(long)]
        tenant: Uuid,
        /// Database URL [default: sqlite://reportroot.db].
        #[arg(long, env = "REPORTROOT_DATABASE")]
        database: Option<String>,
        /// Write the good rows of a file that has bad ones (the bad ones are listed).
        #[arg(long)]
        skip_bad_rows: bool,
        /// The report the files are (entity-set or function name): needed when a header is
        /// that of several reports and the file is not named after one.
        #[arg(long)]
        report: Option<String>,
        /// With --report: the period (D7, D30, D90, D180) of the rows, for a report whose CSV
        /// has no Report Period column (teamsTeamCounts).
        #[arg(long, requires = "report")]
        period: Option<String>,
        /// CSV files or directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Export a tenant's rows as Graph's CSV (re-importable) or OData JSON.
    Export {
        /// The tenant.
        #[arg(long)]
        tenant: Uuid,
        /// Report: entity-set or function name, e.g. office365ActiveUserCounts.
        #[arg(long)]
        report: String,
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
        /// An OData $filter, e.g. "reportDate ge 2025-01-01".
        #[arg(long)]
        filter: Option<String>,
        /// Export what the report function returns for this period (or `latest` for
        /// reports without one) instead of every stored row.
        #[arg(long)]
        period: Option<String>,
        /// Write that API version's columns, in its order, as its CSV and JSON do (v1.0 or
        /// beta) [default: every stored column, which is beta's set for every report today;
        /// re-importable either way].
        #[arg(long)]
        version: Option<String>,
        /// Output file [default: standard output].
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Database URL [default: sqlite://reportroot.db].
        #[arg(long, env = "REPORTROOT_DATABASE")]
        database: Option<String>,
    },
    /// Pull every report the endpoint's version has, every period, from a Graph endpoint and
    /// keep them.
    Sync {
        /// Base URL with version: https://graph.microsoft.com/v1.0, or a reportroot's.
        #[arg(long)]
        from: String,
        /// The tenant.
        #[arg(long)]
        tenant: Uuid,
        /// A bearer token for the endpoint.
        #[arg(long, env = "REPORTROOT_SYNC_TOKEN")]
        token: Option<String>,
        /// Entra ID application id, for client credentials.
        #[arg(long, env = "REPORTROOT_CLIENT_ID")]
        client_id: Option<String>,
        /// Entra ID client secret.
        #[arg(long, env = "REPORTROOT_CLIENT_SECRET")]
        client_secret: Option<String>,
        /// Token endpoint [default: https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token].
        #[arg(long)]
        token_url: Option<String>,
        /// Seconds before a request times out.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Attempts per request on 429, 503 or network errors.
        #[arg(long, default_value_t = 6)]
        attempts: u32,
        /// Only these reports (entity-set or function names, comma separated) [default: every
        /// report of the endpoint's version].
        #[arg(long, value_delimiter = ',')]
        reports: Vec<String>,
        /// Database URL [default: sqlite://reportroot.db].
        #[arg(long, env = "REPORTROOT_DATABASE")]
        database: Option<String>,
    },
    /// Fill a database with deterministic, realistic data for benchmarks.
    Seed {
        /// Number of tenants.
        #[arg(long)]
        tenants: u64,
        /// Days of refresh dates.
        #[arg(long)]
        days: u32,
        /// Seed of the data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Periods of the periodic reports to store.
        #[arg(long, default_value = "D7,D30,D90,D180")]
        periods: String,
        /// Only these reports (entity-set or function names, comma separated) [default: all].
        #[arg(long, value_delimiter = ',')]
        reports: Vec<String>,
        /// Database URL [default: sqlite://reportroot.db].
        #[arg(long, env = "REPORTROOT_DATABASE")]
        database: Option<String>,
    },
    /// List every report served: entity set, function, versions, grain and CSV columns.
    Reports {
        /// One JSON array (with each version's CSV column titles) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the `$metadata` CSDL document of an API version (v1.0 or beta).
    Metadata {
        /// v1.0 or beta.
        #[arg(default_value = "v1.0")]
        version: String,
    },
    /// Register apps that sign in with client credentials at the token endpoint, and manage
    /// their secrets.
    App {
        #[command(subcommand)]
        command: apps::AppCommand,
        /// Database URL [default: sqlite://reportroot.db].
        #[arg(long, env = "REPORTROOT_DATABASE", global = true)]
        database: Option<String>,
    },
    /// Add, list, remove dashboard users and set their passwords.
    User {
        #[command(subcommand)]
        command: users::UserCommand,
        /// Database URL [default: sqlite://reportroot.db].
        #[arg(long, env = "REPORTROOT_DATABASE", global = true)]
        database: Option<String>,
    },
    /// List the known tenants and give them display names.
    Tenant {
        #[command(subcommand)]
        command: users::TenantCommand,
        /// Database URL [default: sqlite://reportroot.db].
        #[arg(long, env = "REPORTROOT_DATABASE", global = true)]
        database: Option<String>,
    },
    /// Rotate or list the keys that sign the token endpoint's access tokens.
    Keys {
        #[command(subcommand)]
        command: apps::KeysCommand,
        /// Database URL [default: sqlite://reportroot.db].
        #[arg(long, env = "REPORTROOT_DATABASE", global = true)]
        database: Option<String>,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate {
        /// Database URL [default: sqlite://reportroot.db].
        #[arg(long, env = "REPORTROOT_DATABASE")]
        database: Option<String>,
        /// Citus only: shards per report table when they are first distributed
        /// [default: Citus's citus.shard_count, 32].
        #[arg(long, env = "REPORTROOT_SHARD_COUNT")]
        shard_count: Option<u32>,
    },
}

fn parse_ttl(text: &str) -> Result<u64, String> {
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 3600, 90s, 30m, 1h or 7d"))?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return Err(format!("unknown unit in '{text}': use s, m, h or d")),
    };
    Ok(number.saturating_mul(scale))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    // Few blocking threads: SQLite work is bounded by its connection pool anyway, and every
    // extra thread keeps its own stack and allocator cache (peak RSS).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error.to_string()),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "reportroot: {message}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> Result<(), String> {
    let file = FileConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::resolve(&args, &file, "sqlite://reportroot.db")?;
            let https = prepare_https(settings.https(false)?)?;
            let storage = open_storage(&settings).await?;
            serve(settings, https, storage, |_| {}).await
        }
        Command::Demo { server, days } => {
            let settings = Settings::resolve(&server, &file, "sqlite://reportroot-demo.db")?;
            let https = prepare_https(settings.https(true)?)?;
            demo::remove_database(&settings.database)?;
            let storage = open_storage(&settings).await?;
            let secret = settings.secret_source.load()?;
            let tenants = demo::fill(storage.as_ref(), days).await?;
            let apps = demo::register_apps(storage.as_ref(), &tenants).await?;
            let admin = demo::create_admin(storage.as_ref(), &settings.key_file).await?;
            serve(settings, https, storage, move |served| {
                demo::print_welcome(served, &secret, &tenants, days, &apps, &admin);
            })
            .await
        }
        Command::Token {
            tenant,
            roles,
            ttl,
            audience,
            key,
        } => {
            let secret = SecretSource::resolve(&key, &file).load()?;
            let token = reportroot_api::auth::issue_token(&secret, tenant, &roles, ttl, &audience)
                .map_err(|e| e.to_string())?;
            let _ = writeln!(std::io::stdout(), "{token}");
            Ok(())
        }
        Command::Reports { json } => reports::print(json),
        Command::App { command, database } => {
            let (_, storage) = storage_for(database, &file, Missing::Create).await?;
            apps::app(storage.as_ref(), command).await
        }
        Command::User { command, database } => {
            let (_, storage) = storage_for(database, &file, Missing::Create).await?;
            users::user(storage.as_ref(), command).await
        }
        Command::Tenant { command, database } => {
            let (_, storage) = storage_for(database, &file, Missing::Create).await?;
            users::tenant(storage.as_ref(), command).await
        }
        Command::Keys { command, database } => {
            let (_, storage) = storage_for(database, &file, Missing::Create).await?;
            apps::keys(storage.as_ref(), command).await
        }
        Command::Metadata { version } => {
            use reportroot_model::Version;
            use reportroot_odata::csdl::metadata_xml;
            let version = match version.as_str() {
                "v1.0" => Version::V1,
                "beta" => Version::Beta,
                other => return Err(format!("unknown version '{other}': use v1.0 or beta")),
            };
            let _ = std::io::stdout().write_all(metadata_xml(version).as_bytes());
            Ok(())
        }
        Command::Migrate {
            database,
            shard_count,
        } => {
            let mut settings = data_settings(database, &file)?;
            settings.shard_count = shard_count.or(settings.shard_count);
            let change = migrate(&settings).await?;
            let shown = without_password(&settings.database);
            let _ = writeln!(std::io::stdout(), "{shown}: {change}");
            Ok(())
        }
        Command::Import {
            tenant,
            database,
            skip_bad_rows,
            report,
            period,
            files,
        } => {
            let only = match report {
                Some(name) => Some((
                    data::report_named(&name)?,
                    period
                        .map(|p| {
                            reportroot_model::Period::from_param(&p).ok_or_else(|| {
                                format!("--period must be D7, D30, D90 or D180, not '{p}'")
                            })
                        })
                        .transpose()?,
                )),
                None => None,
            };
            let (_, storage) = storage_for(database, &file, Missing::Create).await?;
            let summary = data::import(
                storage.as_ref(),
                TenantId(tenant),
                &files,
                skip_bad_rows,
                only,
            )
            .await?;
            if summary.rejected_files > 0 {
                return Err(format!("{} files rejected", summary.rejected_files));
            }
            Ok(())
        }
        Command::Export {
            tenant,
            report,
            format,
            filter,
            period,
            version,
            output,
            database,
        } => {
            let report = data::report_named(&report)?;
            let version = version
                .as_deref()
                .map(|text| data::version_named(report, text))
                .transpose()?;
            let json = match format.as_str() {
                "csv" => false,
                "json" => true,
                other => return Err(format!("--format must be csv or json, not '{other}'")),
            };
            let latest = match period.as_deref() {
                None => None,
                Some("latest") => Some(None),
                Some(text) => Some(Some(
                    reportroot_model::Period::from_param(text).ok_or_else(|| {
                        format!("--period must be D7, D30, D90, D180 or latest, not '{text}'")
                    })?,
                )),
            };
            let (_, storage) = storage_for(database, &file, Missing::Refuse).await?;
            let mut output = data::output_for(output.as_deref())?;
            data::export(
                storage.as_ref(),
                TenantId(tenant),
                report,
                data::ExportShape { json, version },
                filter.as_deref(),
                latest,
                &mut output,
            )
            .await?;
            output.flush().map_err(|e| e.to_string())
        }
        Command::Sync {
            from,
            tenant,
            token,
            client_id,
            client_secret,
            token_url,
            timeout,
            attempts,
            reports,
            database,
        } => {
            let reports = if reports.is_empty() {
                Vec::new()
            } else {
                data::reports_named(&reports)?
            };
            let (_, storage) = storage_for(database, &file, Missing::Create).await?;
            let source = sync::SyncSource {
                base: from,
                token,
                client_id,
                client_secret,
                token_url,
                timeout: std::time::Duration::from_secs(timeout.max(1)),
                attempts: attempts.max(1),
                reports,
                pace: sync::GRAPH_REPORT_PACE,
            };
            sync::sync(storage.as_ref(), TenantId(tenant), &source)
                .await
                .map(|_| ())
        }
        Command::Seed {
            tenants,
            days,
            seed,
            periods,
            reports,
            database,
        } => {
            let periods = data::parse_periods(&periods)?;
            let reports = data::reports_named(&reports)?;
            let (_, storage) = storage_for(database, &file, Missing::Create).await?;
            data::seed(storage.as_ref(), tenants, days, seed, &periods, &reports).await
        }
    }
}

/// What a data command does when its SQLite file does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Create it (commands that write).
    Create,
    /// Refuse, and create nothing: reading an empty new file would look like success.
    Refuse,
}

/// Settings for the commands that only need a database.
fn data_settings(database: Option<String>, file: &FileConfig) -> Result<Settings, String> {
    let args = ServerArgs {
        database,
        ..ServerArgs::default()
    };
    Settings::resolve(&args, file, "sqlite://reportroot.db")
}

/// `url` with the password of its user info, if any, replaced by `***`, for output.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((user_info, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match user_info.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

fn citus_options(settings: &Settings) -> reportroot_postgres::citus::CitusOptions {
    reportroot_postgres::citus::CitusOptions {
        shard_count: settings.shard_count,
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `reportroot migrate`: opens the database, which creates or upgrades its schema, and says
/// what that did.
async fn migrate(settings: &Settings) -> Result<SchemaChange, String> {
    let url = &settings.database;
    if is_postgres(url) {
        return reportroot_postgres::PostgresStorage::connect_with(url, 1, citus_options(settings))
            .await
            .map(|storage| storage.schema_change())
            .map_err(|e| format!("cannot open the PostgreSQL database: {e}"));
    }
    let path = reportroot_sqlite::path_from_url(url);
    SqliteStorage::open(&path, settings.durability)
        .map(|storage| storage.schema_change())
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Settings and storage for the commands that only need a database.
async fn storage_for(
    database: Option<String>,
    file: &FileConfig,
    missing: Missing,
) -> Result<(Settings, Arc<dyn Storage>), String> {
    let settings = data_settings(database, file)?;
    let storage = if is_postgres(&settings.database) {
        open_storage(&settings).await?
    } else {
        // The data commands load in bulk: give SQLite's writer a large page cache.
        let path = reportroot_sqlite::path_from_url(&settings.database);
        if missing == Missing::Refuse && !path.exists() {
            return Err(format!(
                "{}: no such database file (import, seed, migrate or serve create one)",
                path.display()
            ));
        }
        Arc::new(
            SqliteStorage::open_with_writer_cache(&path, settings.durability, 256 * 1024)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        )
    };
    Ok((settings, storage))
}

async fn open_storage(settings: &Settings) -> Result<Arc<dyn Storage>, String> {
    let url = &settings.database;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let storage = reportroot_postgres::PostgresStorage::connect_with(
            url,
            settings.db_connections,
            citus_options(settings),
        )
        .await
        .map_err(|e| format!("cannot open the PostgreSQL database: {e}"))?;
        return Ok(Arc::new(storage));
    }
    let path = reportroot_sqlite::path_from_url(url);
    let storage = SqliteStorage::open(&path, settings.durability)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    Ok(Arc::new(storage))
}

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

async fn serve(
    settings: Settings,
    https: Option<ReadyHttps>,
    storage: Arc<dyn Storage>,
    on_ready: impl FnOnce(&Served),
) -> Result<(), String> {
    let mut listeners = Vec::new();
    if !settings.no_http {
        listeners.push(bind(settings.listen, None).await?);
    }
    let mut ca = None;
    if let Some(https) = &https {
        listeners.push(https_listener(https).await?);
        ca.clone_from(&https.ca);
    }
    let own_urls = listeners
        .iter()
        .map(reportroot_api::server::Listener::own_url)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    // A configured public URL is what every listener's answers link to; otherwise each
    // listener's own scheme and address.
    for (listener, own) in listeners.iter_mut().zip(&own_urls) {
        listener.base_url = Some(settings.public_url.clone().unwrap_or_else(|| own.clone()));
    }
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| own_urls[0].clone());
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
    apply_limits(&settings, &mut config);
    apply_sign_in(&settings, &mut config);
    apply_operation(&settings, &mut config);
    let metrics = match settings.metrics_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| format!("cannot listen on {address} for metrics: {e}"))?,
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
        ca,
    });
    let state = AppState::new(storage, config);
    state
        .ensure_signing_key()
        .await
        .map_err(|e| format!("cannot prepare the token-signing key: {e}"))?;
    if let Some(listener) = metrics {
        serve_metrics(listener, Arc::clone(&state))?;
    }
    reportroot_api::serve_listeners(listeners, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// Serves the metrics listener in the background; it stops with the process.
fn serve_metrics(listener: tokio::net::TcpListener, state: Arc<AppState>) -> Result<(), String> {
    let address = listener.local_addr().map_err(|e| e.to_string())?;
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
) -> Result<reportroot_api::server::Listener, String> {
    let tcp = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    Ok(reportroot_api::server::Listener {
        tcp,
        tls,
        base_url: None,
    })
}

/// The HTTPS listener's settings with its certificate loaded.
struct ReadyHttps {
    settings: Https,
    config: Arc<rustls::ServerConfig>,
    /// The CA to trust, when the certificate is the demo's own.
    ca: Option<PathBuf>,
}

/// Loads (or, for the demo, creates) the certificate, before anything else is opened, so that
/// a bad certificate stops the server at once.
fn prepare_https(https: Option<Https>) -> Result<Option<ReadyHttps>, String> {
    let Some(settings) = https else {
        return Ok(None);
    };
    let (config, ca) = match &settings.cert {
        CertSource::Files { cert, key } => (
            reportroot_api::tls::server_config(cert, key).map_err(|e| e.to_string())?,
            None,
        ),
        CertSource::Demo { dir } => {
            let files = certs::DemoCertificate::in_dir(dir)?;
            files.ensure()?;
            let config = reportroot_api::tls::server_config(&files.chain, &files.key)
                .map_err(|e| e.to_string())?;
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
async fn https_listener(https: &ReadyHttps) -> Result<reportroot_api::server::Listener, String> {
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
