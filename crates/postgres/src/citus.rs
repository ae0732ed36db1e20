//! Citus: when the database has the `citus` extension, every migration distributes
//! reportroot's tables, so that nothing has to be done by hand (docs/citus.md).
//!
//! - Every report table (derived from the registry) is distributed by `tenant_id`, all of them
//!   co-located: a tenant's rows of every report live on one shard group, and every statement
//!   reportroot sends, which always filters on one tenant, is routed to one shard.
//! - The throttle counters (`reportroot_throttle`, `reportroot_storage::throttle`) are
//!   tenant-scoped too, and distributed and co-located the same way: each decision is routed
//!   to one shard, where a reference table would make every request a two-phase commit on
//!   every node.
//! - Every other global table — named `reportroot_…`: the schema version and the directory
//!   (app registrations, secrets, signing keys) and the dashboard's accounts (users, grants,
//!   sessions, tenant names) — becomes a reference table, copied to every node.
//!
//! Idempotent: tables already in `pg_dist_partition` are skipped, so a report type or a global
//! table added by a later release is distributed by the same code at the next start-up.

use std::str::FromStr;

use reportroot_storage::StorageError;

use crate::backend;

/// The prefix of reportroot's global (not tenant-scoped) tables: they become reference tables.
/// Report tables never start with it (they are entity names in snake case; a test checks).
pub const GLOBAL_TABLE_PREFIX: &str = "reportroot_";

/// Settings for a Citus database; plain PostgreSQL ignores them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CitusOptions {
    /// Shards of each distributed table, used when the report tables are first distributed
    /// (`--shard-count`). `None`: Citus's `citus.shard_count` (32 unless configured). Tables
    /// distributed later join the existing co-location group and so take its shard count.
    pub shard_count: Option<u32>,
}

/// What [`distribute`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distribution {
    /// Report tables distributed by `tenant_id` now.
    pub distributed: Vec<String>,
    /// Global tables made reference tables now.
    pub reference: Vec<String>,
}

/// Whether the connected database has the `citus` extension.
pub async fn has_citus(client: &tokio_postgres::Client) -> Result<bool, StorageError> {
    Ok(client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])
        .await
        .map_err(backend)?
        .is_some())
}

/// On a Citus database, distributes `report_tables` (and any other tenant-scoped table given
/// with them) by tenant and makes the other global tables reference tables (see the module's documentation); `None` on plain PostgreSQL. Run by the
/// migration, under its advisory lock, after every table exists.
pub async fn distribute(
    client: &tokio_postgres::Client,
    report_tables: &[String],
    options: CitusOptions,
) -> Result<Option<Distribution>, StorageError> {
    if !has_citus(client).await? {
        return Ok(None);
    }
    // The tables of this schema Citus already knows (distributed, reference or local), and
    // which of the report tables is hash-distributed, to co-locate new ones with it.
    let known: Vec<(String, String)> = client
        .query(
            "SELECT c.relname::text, p.partmethod::text FROM pg_dist_partition p \
             JOIN pg_class c ON c.oid = p.logicalrelid \
             WHERE c.relnamespace = current_schema()::regnamespace",
            &[],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let is_known = |table: &str| known.iter().any(|(name, _)| name == table);
    let mut anchor = known
        .iter()
        .find(|(name, method)| method == "h" && report_tables.contains(name))
        .map(|(name, _)| name.clone());

    let mut done = Distribution::default();
    for table in report_tables.iter().filter(|t| !is_known(t)) {
        match &anchor {
            Some(anchor) => {
                client
                    .execute(
                        "SELECT create_distributed_table($1::text::regclass, 'tenant_id', \
                         colocate_with => $2::text)",
                        &[table, anchor],
                    )
                    .await
                    .map_err(backend)?;
            }
            None => {
                // The first report table starts a co-location group of its own ('none'), with
                // the shard count asked for; every other report table joins it. Why not
                // 'default': that group is shared with whatever else the database distributes,
                // and Citus refuses a shard count together with a named table to co-locate with.
                let shard_count = options
                    .shard_count
                    .map(|n| i32::try_from(n).unwrap_or(i32::MAX));
                client
                    .execute(
                        "SELECT create_distributed_table($1::text::regclass, 'tenant_id', \
                         colocate_with => 'none', shard_count => $2::int)",
                        &[table, &shard_count],
                    )
                    .await
                    .map_err(backend)?;
                anchor = Some(table.clone());
            }
        }
        done.distributed.push(table.clone());
    }

    // Global tables: every table of the schema named reportroot_… (Citus's shards of reference
    // tables, placed on this node too, are not tables of their own: left out).
    let pattern = format!("{}%", GLOBAL_TABLE_PREFIX.replace('_', "\\_"));
    let global: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_class c \
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' \
             AND c.relname LIKE $1 AND NOT pg_catalog.relation_is_a_known_shard(c.oid) \
             ORDER BY 1",
            &[&pattern],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    replica_identity(client, &global).await?;
    for table in global
        .iter()
        .filter(|t| !is_known(t) && !report_tables.contains(t))
    {
        client
            .execute(
                "SELECT create_reference_table($1::text::regclass)",
                &[table],
            )
            .await
            .map_err(backend)?;
        done.reference.push(table.clone());
    }
    if !done.distributed.is_empty() || !done.reference.is_empty() {
        tracing::info!(
            distributed = done.distributed.len(),
            reference = ?done.reference,
            "Citus: distributed the new report tables by tenant_id and made the global tables reference tables"
        );
    }
    Ok(Some(done))
}

/// Gives every global table without a primary key (`reportroot_schema`) `REPLICA IDENTITY
/// FULL`, new tables and reference tables alike (Citus propagates the change). Why: when a
/// worker is added, the rebalancer copies the reference tables to it by logical replication,
/// and refuses a table that has neither a primary key nor a replica identity; without this,
/// `citus_rebalance_start()` failed on the first bench run (bench/citus.sh).
async fn replica_identity(
    client: &tokio_postgres::Client,
    global: &[String],
) -> Result<(), StorageError> {
    let lacking: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_class c \
             WHERE c.relnamespace = current_schema()::regnamespace \
             AND c.relname = ANY($1) AND c.relreplident = 'd' \
             AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)",
            &[&global],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for table in lacking {
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        client
            .batch_execute(&format!("ALTER TABLE {quoted} REPLICA IDENTITY FULL"))
            .await
            .map_err(backend)?;
        tracing::info!(
            table,
            "Citus: replica identity FULL, so that shard moves can copy it"
        );
    }
    Ok(())
}

/// Creates the database `name` on the server of `url` and returns its URL (`url` with the
/// database replaced). When `url`'s database has Citus, `name` gets it too, on every node:
/// Citus does not propagate `CREATE DATABASE`, so it is created on each worker with the
/// extension, and the workers are registered with the new database's coordinator. For tests
/// and benchmarks that need a database of their own; `name` is letters, digits and `_`.
pub async fn create_database(url: &str, name: &str) -> Result<String, StorageError> {
    check_name(name)?;
    let config = tokio_postgres::Config::from_str(url).map_err(backend)?;
    let coordinator = open(&config).await?;
    coordinator
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(backend)?;
    let new_url = with_database(url, name);
    if !has_citus(&coordinator).await? {
        return Ok(new_url);
    }
    let nodes = nodes(&coordinator).await?;
    for (host, port) in nodes
        .iter()
        .filter(|(_, _, group)| *group != 0)
        .map(|(h, p, _)| (h, p))
    {
        let worker = open(&on_node(&config, host, *port, None)).await?;
        worker
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(backend)?;
        let new = open(&on_node(&config, host, *port, Some(name))).await?;
        new.batch_execute("CREATE EXTENSION citus")
            .await
            .map_err(backend)?;
    }
    let new = open(&tokio_postgres::Config::from_str(&new_url).map_err(backend)?).await?;
    new.batch_execute("CREATE EXTENSION citus")
        .await
        .map_err(backend)?;
    for (host, port, group) in &nodes {
        let register = if *group == 0 {
            "SELECT citus_set_coordinator_host($1, $2)"
        } else {
            "SELECT citus_add_node($1, $2)::bigint"
        };
        new.execute(register, &[host, port])
            .await
            .map_err(backend)?;
    }
    Ok(new_url)
}

/// Drops a database made by [`create_database`] (from every node when `url`'s database has
/// Citus), ending the sessions still connected to it.
pub async fn drop_database(url: &str, name: &str) -> Result<(), StorageError> {
    check_name(name)?;
    let config = tokio_postgres::Config::from_str(url).map_err(backend)?;
    let coordinator = open(&config).await?;
    let workers = if has_citus(&coordinator).await? {
        nodes(&coordinator).await?
    } else {
        Vec::new()
    };
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    coordinator.batch_execute(&drop).await.map_err(backend)?;
    for (host, port, _) in workers.iter().filter(|(_, _, group)| *group != 0) {
        let worker = open(&on_node(&config, host, *port, None)).await?;
        worker.batch_execute(&drop).await.map_err(backend)?;
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), StorageError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StorageError::Backend(
            format!("'{name}' is not a database name of letters, digits and '_'").into(),
        ));
    }
    Ok(())
}

/// The coordinator's (group 0) and the primary workers' host, port and group, from the
/// coordinator's metadata.
async fn nodes(client: &tokio_postgres::Client) -> Result<Vec<(String, i32, i32)>, StorageError> {
    Ok(client
        .query(
            "SELECT nodename::text, nodeport, groupid FROM pg_dist_node \
             WHERE noderole = 'primary' ORDER BY groupid, nodeid",
            &[],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect())
}

/// `config`'s user and password on another node, and its database unless `database` is given.
fn on_node(
    config: &tokio_postgres::Config,
    host: &str,
    port: i32,
    database: Option<&str>,
) -> tokio_postgres::Config {
    let mut other = tokio_postgres::Config::new();
    other.host(host).port(u16::try_from(port).unwrap_or(5432));
    if let Some(user) = config.get_user() {
        other.user(user);
    }
    if let Some(password) = config.get_password() {
        other.password(password);
    }
    if let Some(database) = database.or(config.get_dbname()) {
        other.dbname(database);
    }
    other
}

async fn open(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, StorageError> {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(backend)?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` naming the database `name` instead (its query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let server = match base.split_once("://") {
        Some((_, rest)) if rest.contains('/') => &base[..base.rfind('/').unwrap_or(base.len())],
        _ => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use reportroot_model::REPORTS;
    use reportroot_storage::accounts::ACCOUNT_TABLES;
    use reportroot_storage::directory::DIRECTORY_TABLES;

    use super::*;

    /// Which tables become reference tables rests on their names: every global table is
    /// named reportroot_…, and no report table is.
    #[test]
    fn global_tables_and_only_they_carry_the_prefix() {
        for report in REPORTS {
            assert!(
                !report.table_name().starts_with(GLOBAL_TABLE_PREFIX),
                "{}",
                report.table_name()
            );
        }
        for statement in DIRECTORY_TABLES.iter().chain(&ACCOUNT_TABLES) {
            if let Some(rest) = statement.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
                assert!(rest.starts_with(GLOBAL_TABLE_PREFIX), "{statement}");
            }
        }
    }

    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            with_database("postgres://u@h:1/db", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }
}
