//! What each command does: `run` picks the command, one function a command below.

use std::io::Write;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use reportroot_model::{Period, TenantId};
use reportroot_storage::Storage;

use crate::args::{
    Cli, Command, ExportArgs, ImportArgs, MigrateArgs, SeedArgs, SyncArgs, TokenArgs,
};
use crate::config::{FileConfig, SecretSource, ServerArgs, Settings};
use crate::database::{data_settings, open_storage, storage_for, without_password, Missing};
use crate::serve::{prepare_https, serve};
use crate::{apps, data, demo, reports, sync, users};

/// Runs the command `cli` names, with the config file it names.
pub async fn run(cli: Cli) -> Result<()> {
    let file = FileConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve(args) => serve_command(&args, &file).await,
        Command::Demo { server, days } => demo_command(&server, days, &file).await,
        Command::Token(args) => token(args, &file),
        Command::Reports { json } => reports::print(json),
        Command::App { command, database } => {
            apps::app(writable(database, &file).await?.as_ref(), command).await
        }
        Command::User { command, database } => {
            users::user(writable(database, &file).await?.as_ref(), command).await
        }
        Command::Tenant { command, database } => {
            users::tenant(writable(database, &file).await?.as_ref(), command).await
        }
        Command::Keys { command, database } => {
            apps::keys(writable(database, &file).await?.as_ref(), command).await
        }
        Command::Metadata { version } => metadata(&version),
        Command::Migrate(args) => migrate(args, &file).await,
        Command::Import(args) => import(args, &file).await,
        Command::Export(args) => export(args, &file).await,
        Command::Sync(args) => sync_command(args, &file).await,
        Command::Seed(args) => seed(args, &file).await,
    }
}

/// The storage of a command that writes (created when missing).
async fn writable(database: Option<String>, file: &FileConfig) -> Result<Arc<dyn Storage>> {
    let (_, storage) = storage_for(database, file, Missing::Create).await?;
    Ok(storage)
}

/// `reportroot serve`.
async fn serve_command(args: &ServerArgs, file: &FileConfig) -> Result<()> {
    let settings = Settings::resolve(args, file, "sqlite://reportroot.db")?;
    let https = prepare_https(settings.https(false)?)?;
    let storage = open_storage(&settings).await?;
    serve(settings, https, storage, |_| {}).await
}

/// `reportroot demo`: a fresh database with demo data, apps and an admin, then `serve`.
async fn demo_command(server: &ServerArgs, days: u32, file: &FileConfig) -> Result<()> {
    let settings = Settings::resolve(server, file, "sqlite://reportroot-demo.db")?;
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

/// `reportroot token`.
fn token(args: TokenArgs, file: &FileConfig) -> Result<()> {
    let secret = SecretSource::resolve(&args.key, file).load()?;
    let token = reportroot_api::auth::issue_token(
        &secret,
        args.tenant,
        &args.roles,
        args.ttl,
        &args.audience,
    )?;
    let _ = writeln!(std::io::stdout(), "{token}");
    Ok(())
}

/// `reportroot metadata`.
fn metadata(version: &str) -> Result<()> {
    use reportroot_model::Version;
    use reportroot_odata::csdl::metadata_xml;
    let version = match version {
        "v1.0" => Version::V1,
        "beta" => Version::Beta,
        other => bail!("unknown version '{other}': use v1.0 or beta"),
    };
    let _ = std::io::stdout().write_all(metadata_xml(version).as_bytes());
    Ok(())
}

/// `reportroot migrate`.
async fn migrate(args: MigrateArgs, file: &FileConfig) -> Result<()> {
    let mut settings = data_settings(args.database, file)?;
    settings.shard_count = args.shard_count.or(settings.shard_count);
    let change = crate::database::migrate(&settings).await?;
    let shown = without_password(&settings.database);
    let _ = writeln!(std::io::stdout(), "{shown}: {change}");
    Ok(())
}

/// `reportroot import`.
async fn import(args: ImportArgs, file: &FileConfig) -> Result<()> {
    let only = match args.report {
        Some(name) => Some((
            data::report_named(&name)?,
            args.period
                .map(|p| {
                    Period::from_param(&p).with_context(|| {
                        format!("--period must be D7, D30, D90 or D180, not '{p}'")
                    })
                })
                .transpose()?,
        )),
        None => None,
    };
    let storage = writable(args.database, file).await?;
    let summary = data::import(
        storage.as_ref(),
        TenantId(args.tenant),
        &args.files,
        args.skip_bad_rows,
        only,
    )
    .await?;
    if summary.rejected_files > 0 {
        bail!("{} files rejected", summary.rejected_files);
    }
    Ok(())
}

/// `reportroot export`.
async fn export(args: ExportArgs, file: &FileConfig) -> Result<()> {
    let report = data::report_named(&args.report)?;
    let version = args
        .version
        .as_deref()
        .map(|text| data::version_named(report, text))
        .transpose()?;
    let json = match args.format.as_str() {
        "csv" => false,
        "json" => true,
        other => return Err(anyhow!("--format must be csv or json, not '{other}'")),
    };
    let latest = match args.period.as_deref() {
        None => None,
        Some("latest") => Some(None),
        Some(text) => Some(Some(Period::from_param(text).with_context(|| {
            format!("--period must be D7, D30, D90, D180 or latest, not '{text}'")
        })?)),
    };
    let (_, storage) = storage_for(args.database, file, Missing::Refuse).await?;
    let mut output = data::output_for(args.output.as_deref())?;
    data::export(
        storage.as_ref(),
        TenantId(args.tenant),
        report,
        data::ExportShape { json, version },
        args.filter.as_deref(),
        latest,
        &mut output,
    )
    .await?;
    Ok(output.flush()?)
}

/// `reportroot sync`.
async fn sync_command(args: SyncArgs, file: &FileConfig) -> Result<()> {
    let reports = if args.reports.is_empty() {
        Vec::new()
    } else {
        data::reports_named(&args.reports)?
    };
    let storage = writable(args.database, file).await?;
    let source = sync::SyncSource {
        base: args.from,
        token: args.token,
        client_id: args.client_id,
        client_secret: args.client_secret,
        token_url: args.token_url,
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        attempts: args.attempts.max(1),
        reports,
        pace: sync::GRAPH_REPORT_PACE,
    };
    sync::sync(storage.as_ref(), TenantId(args.tenant), &source)
        .await
        .map(|_| ())
}

/// `reportroot seed`.
async fn seed(args: SeedArgs, file: &FileConfig) -> Result<()> {
    let periods = data::parse_periods(&args.periods)?;
    let reports = data::reports_named(&args.reports)?;
    let storage = writable(args.database, file).await?;
    data::seed(
        storage.as_ref(),
        args.tenants,
        args.days,
        args.seed,
        &periods,
        &reports,
    )
    .await
}
