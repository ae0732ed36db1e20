//! `reportroot app …` (app registrations and their secrets) and `reportroot keys …` (the
//! token-signing keys): the directory the token endpoint signs apps in from.

use anyhow::{anyhow, Context, Result};
use std::io::Write;

use clap::Subcommand;
use reportroot_api::auth::{unix_now, READ, READ_WRITE};
use reportroot_api::client_secrets::new_secret;
use reportroot_api::signing::{forget_before, generate_key};
use reportroot_model::TenantId;
use reportroot_storage::directory::AppRegistration;
use reportroot_storage::Storage;
use uuid::Uuid;

/// `reportroot app …`.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an app in a tenant and print its client id and a new secret (shown once).
    Add {
        /// The tenant the app's tokens are for.
        #[arg(long)]
        tenant: Uuid,
        /// Display name.
        #[arg(long)]
        name: String,
        /// An application permission to grant (Reports.Read.All or Reports.ReadWrite.All);
        /// repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Lifetime of the secret: seconds, or a number with s, m, h or d.
        #[arg(long, default_value = "180d", value_parser = crate::args::parse_ttl)]
        secret_lifetime: u64,
        /// Print `{"tenantId","clientId","clientSecret"}` instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List app registrations and their secrets (never the secret values).
    List {
        /// Only this tenant's apps.
        #[arg(long)]
        tenant: Option<Uuid>,
        /// One JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete an app registration and its secrets.
    Remove {
        /// The app's client id.
        client_id: Uuid,
    },
    /// Add or remove a client secret (several may be valid at once, for rotation).
    #[command(subcommand)]
    Secret(SecretCommand),
}

/// `reportroot app secret …`.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Add a secret to an app and print it (shown once).
    Add {
        /// The app's client id.
        client_id: Uuid,
        /// Lifetime: seconds, or a number with s, m, h or d.
        #[arg(long, default_value = "180d", value_parser = crate::args::parse_ttl)]
        lifetime: u64,
        /// Print `{"clientId","secretId","clientSecret","expires"}` instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret from an app.
    Remove {
        /// The app's client id.
        client_id: Uuid,
        /// The secret's id (from `app list`).
        secret_id: Uuid,
    },
}

/// `reportroot keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key the current one; the old one stays published (and verifies its
    /// tokens) until they have expired.
    Rotate,
    /// List the signing keys (ids and dates, never the keys).
    List,
}

/// Runs an `app` command.
pub async fn app(storage: &dyn Storage, command: AppCommand) -> Result<()> {
    match command {
        AppCommand::Add {
            tenant,
            name,
            roles,
            secret_lifetime,
            json,
        } => {
            add(
                storage,
                TenantId(tenant),
                name,
                roles,
                secret_lifetime,
                json,
            )
            .await
        }
        AppCommand::List { tenant, json } => list(storage, tenant.map(TenantId), json).await,
        AppCommand::Remove { client_id } => {
            if storage.directory().remove_app(client_id).await? {
                print(&format!("removed app {client_id}\n"))
            } else {
                Err(anyhow!("no app with client id {client_id}"))
            }
        }
        AppCommand::Secret(SecretCommand::Add {
            client_id,
            lifetime,
            json,
        }) => add_secret(storage, client_id, lifetime, json).await,
        AppCommand::Secret(SecretCommand::Remove {
            client_id,
            secret_id,
        }) => {
            let removed = storage
                .directory()
                .remove_secret(client_id, secret_id)
                .await?;
            if removed {
                print(&format!("removed secret {secret_id} of app {client_id}\n"))
            } else {
                Err(anyhow!("app {client_id} has no secret {secret_id}"))
            }
        }
    }
}

fn check_roles(roles: &[String]) -> Result<Vec<String>> {
    roles
        .iter()
        .map(|role| {
            [READ, READ_WRITE]
                .into_iter()
                .find(|known| known.eq_ignore_ascii_case(role))
                .map(str::to_owned)
                .with_context(|| format!("unknown role '{role}': use {READ} or {READ_WRITE}"))
        })
        .collect()
}

async fn add(
    storage: &dyn Storage,
    tenant: TenantId,
    name: String,
    roles: Vec<String>,
    lifetime: u64,
    json: bool,
) -> Result<()> {
    let roles = check_roles(&roles)?;
    let now = unix_now() as i64;
    let app = AppRegistration {
        client_id: Uuid::new_v4(),
        tenant,
        object_id: Uuid::new_v4(),
        name,
        roles,
        created: now,
    };
    let (value, secret) = new_secret(app.client_id, now, expiry(now, lifetime));
    let directory = storage.directory();
    directory.add_app(&app).await?;
    directory.add_secret(&secret).await?;
    if json {
        let body = serde_json::json!({
            "tenantId": tenant.0,
            "clientId": app.client_id,
            "clientSecret": value,
        });
        return print(&format!("{body}\n"));
    }
    print(&format!(
        "tenant id:     {}\nclient id:     {}\nclient secret: {value}\nsecret id:     {} (expires {}; the secret is not shown again)\n",
        tenant.0,
        app.client_id,
        secret.secret_id,
        date_of(secret.expires),
    ))
}

async fn add_secret(
    storage: &dyn Storage,
    client_id: Uuid,
    lifetime: u64,
    json: bool,
) -> Result<()> {
    let directory = storage.directory();
    if directory.app(client_id).await?.is_none() {
        return Err(anyhow!("no app with client id {client_id}"));
    }
    let now = unix_now() as i64;
    let (value, secret) = new_secret(client_id, now, expiry(now, lifetime));
    directory.add_secret(&secret).await?;
    if json {
        let body = serde_json::json!({
            "clientId": client_id,
            "secretId": secret.secret_id,
            "clientSecret": value,
            "expires": date_of(secret.expires),
        });
        return print(&format!("{body}\n"));
    }
    print(&format!(
        "client secret: {value}\nsecret id:     {} (expires {}; the secret is not shown again)\n",
        secret.secret_id,
        date_of(secret.expires)
    ))
}

async fn list(storage: &dyn Storage, tenant: Option<TenantId>, json: bool) -> Result<()> {
    let directory = storage.directory();
    let apps = directory.apps(tenant).await?;
    let mut listed = Vec::new();
    for app in apps {
        let secrets = directory.secrets(app.client_id).await?;
        listed.push(serde_json::json!({
            "tenantId": app.tenant.0,
            "clientId": app.client_id,
            "name": app.name,
            "roles": app.roles,
            "created": date_of(app.created),
            "secrets": secrets.iter().map(|s| serde_json::json!({
                "secretId": s.secret_id,
                "hint": s.hint,
                "created": date_of(s.created),
                "expires": date_of(s.expires),
            })).collect::<Vec<_>>(),
        }));
    }
    if json {
        return print(&format!("{}\n", serde_json::Value::Array(listed)));
    }
    let mut out = String::new();
    for app in &listed {
        out.push_str(&format!(
            "{}  tenant {}  {}  roles: {}\n",
            app["clientId"].as_str().unwrap_or_default(),
            app["tenantId"].as_str().unwrap_or_default(),
            app["name"].as_str().unwrap_or_default(),
            app["roles"]
                .as_array()
                .map(|roles| roles
                    .iter()
                    .filter_map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
        ));
        for secret in app["secrets"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "    secret {}  {}…  expires {}\n",
                secret["secretId"].as_str().unwrap_or_default(),
                secret["hint"].as_str().unwrap_or_default(),
                secret["expires"].as_str().unwrap_or_default(),
            ));
        }
    }
    print(&out)
}

/// Runs a `keys` command.
pub async fn keys(storage: &dyn Storage, command: KeysCommand) -> Result<()> {
    let directory = storage.directory();
    match command {
        KeysCommand::Rotate => {
            let key = generate_key().await?;
            directory
                .rotate_signing_key(&key, forget_before(key.created))
                .await?;
            print(&format!(
                "new signing key {} is current; earlier keys stay published until their tokens expire\n",
                key.kid
            ))
        }
        KeysCommand::List => {
            let keys = directory.signing_keys().await?;
            let mut out = String::new();
            for key in keys {
                let state = match key.retired {
                    None => "current".to_owned(),
                    Some(at) => format!("retired {}", date_of(at)),
                };
                out.push_str(&format!(
                    "{}  created {}  {state}\n",
                    key.kid,
                    date_of(key.created)
                ));
            }
            print(&out)
        }
    }
}

fn expiry(now: i64, lifetime: u64) -> i64 {
    now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX))
}

/// `2026-05-28T10:00:00Z`.
fn date_of(seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => seconds.to_string(),
    }
}

fn print(text: &str) -> Result<()> {
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("cannot write to standard output")
}
