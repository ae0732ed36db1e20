//! The command line: every command and its arguments (clap), as `reportroot --help` shows them.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::config::{KeyArgs, ServerArgs};
use crate::{apps, users};

#[derive(Debug, Parser)]
#[command(name = "reportroot", version, about)]
pub struct Cli {
    /// TOML config file with the same settings as the flags (snake_case names).
    #[arg(long, env = "REPORTROOT_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Log lines as `text` (for people) or `json` (one object per line, for log pipelines);
    /// `RUST_LOG` sets the level [default: text].
    #[arg(long, env = "REPORTROOT_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, with the request span's fields as a prefix.
    Text,
    /// One JSON object per line, with the current span's fields.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    Token(TokenArgs),
    /// Import Graph's CSV exports (files or directories of .csv) for a tenant.
    Import(ImportArgs),
    /// Export a tenant's rows as Graph's CSV (re-importable) or OData JSON.
    Export(ExportArgs),
    /// Pull every report the endpoint's version has, every period, from a Graph endpoint and
    /// keep them.
    Sync(SyncArgs),
    /// Fill a database with deterministic, realistic data for benchmarks.
    Seed(SeedArgs),
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
    Migrate(MigrateArgs),
}

// The arguments of `reportroot token` (its help text is the variant's).
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The tenant GUID (the token's `tid`).
    #[arg(long)]
    pub tenant: Uuid,
    /// A permission for the `roles` claim; repeat for several.
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
    /// Lifetime: seconds, or a number with s, m, h or d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: u64,
    /// The `aud` claim.
    #[arg(long, default_value = reportroot_api::auth::GRAPH_AUDIENCE)]
    pub audience: String,
    #[command(flatten)]
    pub key: KeyArgs,
}

// The arguments of `reportroot import` (its help text is the variant's).
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tenant the rows belong to.
    #[arg(long)]
    pub tenant: Uuid,
    /// Database URL [default: sqlite://reportroot.db].
    #[arg(long, env = "REPORTROOT_DATABASE")]
    pub database: Option<String>,
    /// Write the good rows of a file that has bad ones (the bad ones are listed).
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// The report the files are (entity-set or function name): needed when a header is
    /// that of several reports and the file is not named after one.
    #[arg(long)]
    pub report: Option<String>,
    /// With --report: the period (D7, D30, D90, D180) of the rows, for a report whose CSV
    /// has no Report Period column (teamsTeamCounts).
    #[arg(long, requires = "report")]
    pub period: Option<String>,
    /// CSV files or directories.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

// The arguments of `reportroot export` (its help text is the variant's).
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: Uuid,
    /// Report: entity-set or function name, e.g. office365ActiveUserCounts.
    #[arg(long)]
    pub report: String,
    /// csv or json.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// An OData $filter, e.g. "reportDate ge 2025-01-01".
    #[arg(long)]
    pub filter: Option<String>,
    /// Export what the report function returns for this period (or `latest` for
    /// reports without one) instead of every stored row.
    #[arg(long)]
    pub period: Option<String>,
    /// Write that API version's columns, in its order, as its CSV and JSON do (v1.0 or
    /// beta) [default: every stored column, which is beta's set for every report today;
    /// re-importable either way].
    #[arg(long)]
    pub version: Option<String>,
    /// Output file [default: standard output].
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Database URL [default: sqlite://reportroot.db].
    #[arg(long, env = "REPORTROOT_DATABASE")]
    pub database: Option<String>,
}

// The arguments of `reportroot sync` (its help text is the variant's).
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Base URL with version: https://graph.microsoft.com/v1.0, or a reportroot's.
    #[arg(long)]
    pub from: String,
    /// The tenant.
    #[arg(long)]
    pub tenant: Uuid,
    /// A bearer token for the endpoint.
    #[arg(long, env = "REPORTROOT_SYNC_TOKEN")]
    pub token: Option<String>,
    /// Entra ID application id, for client credentials.
    #[arg(long, env = "REPORTROOT_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Entra ID client secret.
    #[arg(long, env = "REPORTROOT_CLIENT_SECRET")]
    pub client_secret: Option<String>,
    /// Token endpoint [default: https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token].
    #[arg(long)]
    pub token_url: Option<String>,
    /// Seconds before a request times out.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Attempts per request on 429, 503 or network errors.
    #[arg(long, default_value_t = 6)]
    pub attempts: u32,
    /// Only these reports (entity-set or function names, comma separated) [default: every
    /// report of the endpoint's version].
    #[arg(long, value_delimiter = ',')]
    pub reports: Vec<String>,
    /// Database URL [default: sqlite://reportroot.db].
    #[arg(long, env = "REPORTROOT_DATABASE")]
    pub database: Option<String>,
}

// The arguments of `reportroot seed` (its help text is the variant's).
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Number of tenants.
    #[arg(long)]
    pub tenants: u64,
    /// Days of refresh dates.
    #[arg(long)]
    pub days: u32,
    /// Seed of the data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Periods of the periodic reports to store.
    #[arg(long, default_value = "D7,D30,D90,D180")]
    pub periods: String,
    /// Only these reports (entity-set or function names, comma separated) [default: all].
    #[arg(long, value_delimiter = ',')]
    pub reports: Vec<String>,
    /// Database URL [default: sqlite://reportroot.db].
    #[arg(long, env = "REPORTROOT_DATABASE")]
    pub database: Option<String>,
}

// The arguments of `reportroot migrate` (its help text is the variant's).
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Database URL [default: sqlite://reportroot.db].
    #[arg(long, env = "REPORTROOT_DATABASE")]
    pub database: Option<String>,
    /// Citus only: shards per report table when they are first distributed
    /// [default: Citus's citus.shard_count, 32].
    #[arg(long, env = "REPORTROOT_SHARD_COUNT")]
    pub shard_count: Option<u32>,
}

/// A duration: seconds, or a number with s, m, h or d (`--ttl`, `--secret-lifetime`).
pub fn parse_ttl(text: &str) -> Result<u64> {
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let number: u64 = number
        .parse()
        .with_context(|| format!("'{text}' is not a duration like 3600, 90s, 30m, 1h or 7d"))?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => bail!("unknown unit in '{text}': use s, m, h or d"),
    };
    Ok(number.saturating_mul(scale))
}
