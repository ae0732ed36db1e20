//! Opening the database a command names: SQLite file or PostgreSQL/Citus URL.

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use reportroot_sqlite::SqliteStorage;
use reportroot_storage::{SchemaChange, Storage};

use crate::config::{FileConfig, ServerArgs, Settings};

/// What a data command does when its SQLite file does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Create it (commands that write).
    Create,
    /// Refuse, and create nothing: reading an empty new file would look like success.
    Refuse,
}

/// Settings for the commands that only need a database.
pub fn data_settings(database: Option<String>, file: &FileConfig) -> Result<Settings> {
    let args = ServerArgs {
        database,
        ..ServerArgs::default()
    };
    Settings::resolve(&args, file, "sqlite://reportroot.db")
}

/// `url` with the password of its user info, if any, replaced by `***`, for output.
pub fn without_password(url: &str) -> String {
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
pub async fn migrate(settings: &Settings) -> Result<SchemaChange> {
    let url = &settings.database;
    if is_postgres(url) {
        return reportroot_postgres::PostgresStorage::connect_with(url, 1, citus_options(settings))
            .await
            .map(|storage| storage.schema_change())
            .context("cannot open the PostgreSQL database");
    }
    let path = reportroot_sqlite::path_from_url(url);
    SqliteStorage::open(&path, settings.durability)
        .map(|storage| storage.schema_change())
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Settings and storage for the commands that only need a database.
pub async fn storage_for(
    database: Option<String>,
    file: &FileConfig,
    missing: Missing,
) -> Result<(Settings, Arc<dyn Storage>)> {
    let settings = data_settings(database, file)?;
    let storage = if is_postgres(&settings.database) {
        open_storage(&settings).await?
    } else {
        // The data commands load in bulk: give SQLite's writer a large page cache.
        let path = reportroot_sqlite::path_from_url(&settings.database);
        if missing == Missing::Refuse && !path.exists() {
            return Err(anyhow!(
                "{}: no such database file (import, seed, migrate or serve create one)",
                path.display()
            ));
        }
        Arc::new(
            SqliteStorage::open_with_writer_cache(&path, settings.durability, 256 * 1024)
                .with_context(|| format!("cannot open {}", path.display()))?,
        )
    };
    Ok((settings, storage))
}

pub async fn open_storage(settings: &Settings) -> Result<Arc<dyn Storage>> {
    let url = &settings.database;
    if is_postgres(url) {
        let storage = reportroot_postgres::PostgresStorage::connect_with(
            url,
            settings.db_connections,
            citus_options(settings),
        )
        .await
        .context("cannot open the PostgreSQL database")?;
        return Ok(Arc::new(storage));
    }
    let path = reportroot_sqlite::path_from_url(url);
    let storage = SqliteStorage::open(&path, settings.durability)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Arc::new(storage))
}
