//! `reportroot user …` (the dashboard's accounts) and `reportroot tenant …` (tenants' display
//! names).

use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, Write};

use clap::Subcommand;
use rand::Rng;
use reportroot_api::auth::unix_now;
use reportroot_api::client_secrets;
use reportroot_model::TenantId;
use reportroot_storage::accounts::{Grant, User};
use reportroot_storage::Storage;
use uuid::Uuid;

/// `reportroot user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a dashboard user who may see the given tenants (or all), and print the password
    /// when one is generated (shown once; stored only as an argon2id hash).
    Add {
        /// The sign-in name.
        #[arg(long)]
        name: String,
        /// A tenant (GUID) the user may read; repeat for several.
        #[arg(long = "tenant", required_unless_present = "all_tenants")]
        tenants: Vec<Uuid>,
        /// Let the user also write (import into) the tenants given with --tenant.
        #[arg(long)]
        write: bool,
        /// An operator: reads and writes every tenant.
        #[arg(long, conflicts_with_all = ["tenants", "write"])]
        all_tenants: bool,
        /// Read the password from the first line of standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users and their tenants (never a password).
    List {
        /// One JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user; their sessions end at once.
    Remove {
        /// The sign-in name.
        #[arg(long)]
        name: String,
    },
    /// Set a new password (generated and printed unless --password-stdin); the user's
    /// sessions end at once.
    Passwd {
        /// The sign-in name.
        #[arg(long)]
        name: String,
        /// Read the password from the first line of standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `reportroot tenant …`.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// List the known tenants (those with rows, apps or users) and their display names.
    List {
        /// One JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Give a tenant a display name (the dashboard shows it).
    Rename {
        /// The tenant's GUID.
        #[arg(long)]
        tenant: Uuid,
        /// The display name.
        #[arg(long)]
        name: String,
    },
}

/// Shortest password accepted from standard input.
const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password accepted (argon2 hashes any length; this bounds the work of a sign-in).
const MAX_PASSWORD_BYTES: usize = 1024;

/// Runs a `user` command.
pub async fn user(storage: &dyn Storage, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Add {
            name,
            tenants,
            write,
            all_tenants,
            password_stdin,
        } => {
            let grants = grants(&tenants, write);
            add(storage, &name, grants, all_tenants, password_stdin).await
        }
        UserCommand::List { json } => list(storage, json).await,
        UserCommand::Remove { name } => {
            if storage.accounts().remove_user(&name).await? {
                print(&format!("removed user {name}\n"))
            } else {
                Err(anyhow!("no user named '{name}'"))
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let (password, generated) = password(password_stdin)?;
            let hash = client_secrets::hash(&password);
            if !storage.accounts().set_password(&name, &hash).await? {
                return Err(anyhow!("no user named '{name}'"));
            }
            let mut out = format!("changed the password of {name}; their sessions have ended\n");
            if generated {
                out.push_str(&format!("password: {password}\n"));
            }
            print(&out)
        }
    }
}

/// Each tenant once, with the same access.
fn grants(tenants: &[Uuid], write: bool) -> Vec<Grant> {
    let mut grants: Vec<Grant> = Vec::new();
    for &tenant in tenants {
        if !grants.iter().any(|g| g.tenant.0 == tenant) {
            grants.push(Grant {
                tenant: TenantId(tenant),
                write,
            });
        }
    }
    grants
}

/// `user add`: prints the password when it generated one.
async fn add(
    storage: &dyn Storage,
    name: &str,
    grants: Vec<Grant>,
    operator: bool,
    password_stdin: bool,
) -> Result<()> {
    let name = checked_name(name)?;
    let (password, generated) = password(password_stdin)?;
    let user = User {
        name: name.clone(),
        operator,
        grants,
        created: unix_now() as i64,
    };
    if !add_user(storage, &user, &password).await? {
        bail!("a user named '{name}' already exists");
    }
    let mut out = format!("added user {name}\n");
    if generated {
        out.push_str(&format!("password: {password}\n"));
    }
    print(&out)
}

/// Stores `user` with `password`'s argon2id hash; false if the name is taken.
pub async fn add_user(storage: &dyn Storage, user: &User, password: &str) -> Result<bool> {
    let hash = client_secrets::hash(password);
    Ok(storage.accounts().add_user(user, &hash).await?)
}

/// A sign-in name: 1–64 characters, no spaces or control characters.
fn checked_name(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(name.to_owned())
    } else {
        Err(anyhow!(
            "'{name}' is not a user name: use 1 to 64 characters without spaces"
        ))
    }
}

/// The password to set and whether it was generated (then it is to be printed once).
fn password(from_stdin: bool) -> Result<(String, bool)> {
    if !from_stdin {
        return Ok((generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(anyhow!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(anyhow!(
            "the password must have at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok((password.to_owned(), false))
}

/// A new password: 20 characters from letters and digits (about 119 random bits), from the
/// OS's random source; easy to copy (no shell-special characters).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

async fn list(storage: &dyn Storage, json: bool) -> Result<()> {
    let users = storage.accounts().users().await?;
    if json {
        let users: Vec<serde_json::Value> = users
            .iter()
            .map(|user| {
                serde_json::json!({
                    "name": user.name,
                    "operator": user.operator,
                    "tenants": user.grants.iter().map(|g| serde_json::json!({
                        "id": g.tenant.0.to_string(),
                        "write": g.write,
                    })).collect::<Vec<_>>(),
                    "created": user.created,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&users)?;
        return print(&format!("{text}\n"));
    }
    let mut out = String::new();
    for user in &users {
        let access = if user.operator {
            "all tenants (operator)".to_owned()
        } else {
            user.grants
                .iter()
                .map(|g| format!("{}{}", g.tenant, if g.write { " (write)" } else { "" }))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!("{}  {access}\n", user.name));
    }
    if users.is_empty() {
        out.push_str("no users (reportroot user add creates one)\n");
    }
    print(&out)
}

/// Runs a `tenant` command.
pub async fn tenant(storage: &dyn Storage, command: TenantCommand) -> Result<()> {
    match command {
        TenantCommand::List { json } => {
            let tenants = storage.accounts().tenants().await?;
            if json {
                let list: Vec<serde_json::Value> = tenants
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "id": t.tenant.0.to_string(),
                            "displayName": t.display_name,
                        })
                    })
                    .collect();
                let text = serde_json::to_string_pretty(&list)?;
                return print(&format!("{text}\n"));
            }
            let mut out = String::new();
            for t in &tenants {
                out.push_str(&format!(
                    "{}  {}\n",
                    t.tenant,
                    t.display_name.as_deref().unwrap_or("(no name)")
                ));
            }
            print(&out)
        }
        TenantCommand::Rename { tenant, name } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 256 {
                bail!("the display name must have 1 to 256 characters");
            }
            storage
                .accounts()
                .rename_tenant(TenantId(tenant), name)
                .await?;
            print(&format!("tenant {tenant} is now named {name}\n"))
        }
    }
}

fn print(text: &str) -> Result<()> {
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("cannot write to standard output")
}
