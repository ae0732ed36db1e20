//! `reportroot demo`: two tenants with half a year of realistic rows, and what to try next.

use anyhow::{Context, Result};
use std::io::Write;

use reportroot_model::demo::{demo_rows, DemoTenant};
use reportroot_model::{Date, TenantId, REPORTS};
use reportroot_storage::Storage;
use uuid::Uuid;

use crate::serve::Served;

/// A demo tenant.
pub struct Tenant {
    pub name: &'static str,
    pub id: TenantId,
}

const TENANTS: [(&str, u128, u32); 2] = [
    ("Contoso", 0x6f3c_1a52_8b7e_4d0a_9c11_2f5e_8a4b_7c01, 1200),
    ("Fabrikam", 0x2b8d_4e71_0c3f_4a96_b5d2_7e19_c6a8_3f02, 350),
];

/// Deletes the demo database so every demo starts from the same data.
pub fn remove_database(url: &str) -> Result<()> {
    if url.starts_with("postgres") {
        return Ok(());
    }
    let path = reportroot_sqlite::path_from_url(url);
    reportroot_sqlite::remove_database(&path)
        .with_context(|| format!("cannot remove {}", path.display()))
}

/// Fills the store with `days` days of every report for both tenants (fewer where the registry
/// caps a report's demo history: `demo_days`).
pub async fn fill(storage: &dyn Storage, days: u32) -> Result<Vec<Tenant>> {
    let last_refresh = last_refresh();
    let mut tenants = Vec::new();
    let started = std::time::Instant::now();
    let mut total = 0u64;
    for (seed, (name, id, users)) in TENANTS.into_iter().enumerate() {
        let tenant = TenantId(Uuid::from_u128(id));
        for report in REPORTS {
            let rows = demo_rows(
                report,
                DemoTenant {
                    seed: seed as u64 + 1,
                    users,
                },
                last_refresh,
                report.demo_days.map_or(days, |cap| cap.min(days)),
            );
            let counts = storage.upsert_many(tenant, report, rows).await?;
            total += counts.inserted;
        }
        storage.accounts().rename_tenant(tenant, name).await?;
        tenants.push(Tenant { name, id: tenant });
    }
    tracing::info!(
        rows = total,
        seconds = started.elapsed().as_secs_f64(),
        "demo data loaded"
    );
    Ok(tenants)
}

/// The refresh date of the demo's newest report: Graph's data lags about two days behind.
fn last_refresh() -> Date {
    Date::today_utc().add_days(-2)
}

/// Prints how to reach the demo over HTTPS and trust its CA, then, for each tenant, a read
/// token, a write token and curl commands. The POST adds a row one day before the demo's first
/// refresh date, so it never shadows the latest report (which a newer refresh date would
/// replace). Every command works as printed: paths are absolute and quoted for the shell.
pub fn print_welcome(
    served: &Served,
    secret: &[u8],
    tenants: &[Tenant],
    days: u32,
    apps: &[DemoApp],
    admin: &DemoAdmin,
) {
    let base = &served.base;
    let mut out = String::new();
    out.push_str(&format!("\nreportroot demo is serving at {base}\n"));
    out.push_str(&https_welcome(served));
    out.push_str(&dashboard_welcome(served, admin));
    for tenant in tenants {
        out.push_str(&tenant_welcome(served, secret, tenant, days));
    }
    out.push_str(&sign_in_welcome(served, apps));
    out.push_str("\nPress Ctrl-C to stop.\n");
    let _ = std::io::stdout().write_all(out.as_bytes());
}

/// The tokens and curl commands of one demo tenant.
fn tenant_welcome(served: &Served, secret: &[u8], tenant: &Tenant, days: u32) -> String {
    let base = &served.base;
    let day = 24 * 3600;
    let mut out = String::new();
    let token = |roles: &[&str]| {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        reportroot_api::auth::issue_token(
            secret,
            tenant.id.0,
            &roles,
            day,
            reportroot_api::auth::GRAPH_AUDIENCE,
        )
        .unwrap_or_default()
    };
    let read = token(&["Reports.Read.All"]);
    let write = token(&["Reports.ReadWrite.All"]);
    let before_history = last_refresh().add_days(-i64::from(days.max(1)));
    let week_ago = last_refresh().add_days(-7);
    out.push_str(&format!(
        "\n== Tenant {name} ({id})\n\
         read token:  {read}\n\
         write token: {write}\n\n\
         # the stored rows (history), a page at a time\n\
         curl -s -H \"Authorization: Bearer {read}\" \"{base}/v1.0/reports/office365ActivationsUserCounts\"\n\n\
         # the report function, as Graph's SDKs call it (-L follows the redirect to the CSV)\n\
         curl -sL -H \"Authorization: Bearer {read}\" \"{base}/v1.0/reports/getOffice365ActiveUserCounts(period='D7')\"\n\n\
         # an OData query over the history\n\
         curl -s -G -H \"Authorization: Bearer {read}\" \"{base}/v1.0/reports/office365ActiveUserCounts\" \
         --data-urlencode \"\\$filter=reportPeriod eq '7' and reportDate ge {week_ago}\" --data-urlencode '$select=reportDate,teams'\n\n\
         # add a row to the history, a day before the demo's first refresh date (the latest report stays as it is)\n\
         curl -s -X POST -H \"Authorization: Bearer {write}\" -H \"Content-Type: application/json\" \
         \"{base}/v1.0/reports/office365ActivationsUserCounts\" \
         -d '{{\"reportRefreshDate\":\"{before_history}\",\"productType\":\"VISIO CLIENT\",\"assigned\":120,\"activated\":97,\"sharedComputerActivation\":2}}'\n",
        name = tenant.name,
        id = tenant.id,
    ));
    if let Some(https) = &served.https {
        let cacert = served
            .ca
            .as_ref()
            .map(|ca| format!("--cacert {} ", shell_quote(ca)))
            .unwrap_or_default();
        out.push_str(&format!(
            "\n# the same over HTTPS\n\
             curl -s {cacert}-H \"Authorization: Bearer {read}\" \"{https}/v1.0/reports/office365ActivationsUserCounts\"\n"
        ));
    }
    out
}

/// An app the demo registers in a tenant, with its secret, for the welcome.
pub struct DemoApp {
    /// The tenant it signs in to.
    pub tenant: TenantId,
    /// Its client id.
    pub client_id: Uuid,
    /// Its secret (the database holds only the hash).
    pub secret: String,
}

/// Registers a read-only app in each demo tenant, as `reportroot app add` would.
pub async fn register_apps(storage: &dyn Storage, tenants: &[Tenant]) -> Result<Vec<DemoApp>> {
    let mut apps = Vec::new();
    for tenant in tenants {
        let now = reportroot_api::auth::unix_now() as i64;
        let app = reportroot_storage::directory::AppRegistration {
            client_id: Uuid::new_v4(),
            tenant: tenant.id,
            object_id: Uuid::new_v4(),
            name: "demo app".to_owned(),
            roles: vec![reportroot_api::auth::READ.to_owned()],
            created: now,
        };
        let (secret, stored) =
            reportroot_api::client_secrets::new_secret(app.client_id, now, now + 30 * 24 * 3600);
        let directory = storage.directory();
        directory.add_app(&app).await?;
        directory.add_secret(&stored).await?;
        apps.push(DemoApp {
            tenant: tenant.id,
            client_id: app.client_id,
            secret,
        });
    }
    Ok(apps)
}

/// The demo's operator: signs in to the dashboard and sees both tenants.
pub struct DemoAdmin {
    /// The sign-in name.
    pub name: &'static str,
    /// The password (the database holds only its hash).
    pub password: String,
    /// The file the password is kept in, so that it stays the same across restarts.
    pub file: std::path::PathBuf,
}

/// The demo operator's name.
const ADMIN: &str = "admin";

/// The file next to the key file that keeps the demo operator's password.
const ADMIN_PASSWORD_FILE: &str = "reportroot-demo-admin.txt";

/// Creates the demo's operator `admin` with the password kept next to the key file (made on
/// first run, reused after: a restarted demo signs in with the password printed before).
pub async fn create_admin(storage: &dyn Storage, key_file: &std::path::Path) -> Result<DemoAdmin> {
    let dir = match key_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file = dir.join(ADMIN_PASSWORD_FILE);
    let kept = std::fs::read_to_string(&file)
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|text| text.len() >= 12);
    let password = match kept {
        Some(password) => password,
        None => {
            let password = crate::users::generate_password();
            write_private(&file, &format!("{password}\n"))?;
            password
        }
    };
    let user = reportroot_storage::accounts::User {
        name: ADMIN.to_owned(),
        operator: true,
        grants: Vec::new(),
        created: reportroot_api::auth::unix_now() as i64,
    };
    // A PostgreSQL demo database is kept between runs: the user may exist already.
    if !crate::users::add_user(storage, &user, &password).await? {
        let hash = reportroot_api::client_secrets::hash(&password);
        storage.accounts().set_password(ADMIN, &hash).await?;
    }
    let file = std::path::absolute(&file).unwrap_or(file);
    Ok(DemoAdmin {
        name: ADMIN,
        password,
        file,
    })
}

/// Writes `text` to a new `path` readable by its owner only (on Unix).
fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Where the dashboard is and how to sign in to it.
fn dashboard_welcome(served: &Served, admin: &DemoAdmin) -> String {
    format!(
        "\n== Dashboard: {base}/dashboard\n\
         sign in as {name} with password {password}  (an operator: both tenants; the password is\n\
         kept in {file} and stays the same across restarts; `reportroot user add` adds users)\n",
        base = served.base,
        name = admin.name,
        password = admin.password,
        file = shell_quote(&admin.file),
    )
}

/// How each demo app signs in (client credentials over HTTPS, as with Entra ID).
fn sign_in_welcome(served: &Served, apps: &[DemoApp]) -> String {
    let Some(https) = &served.https else {
        return String::new();
    };
    let cacert = served
        .ca
        .as_ref()
        .map(|ca| format!("--cacert {} ", shell_quote(ca)))
        .unwrap_or_default();
    let mut out = String::from(
        "\n== Sign in as an app, as with Entra ID (README: \"Sign in as Entra ID\"; `reportroot app add` registers more)\n",
    );
    for app in apps {
        out.push_str(&format!(
            "tenant {tenant}: client id {client}, client secret {secret}\n\
             curl -s {cacert}\"{https}/{tenant}/oauth2/v2.0/token\" -d grant_type=client_credentials \
             -d client_id={client} --data-urlencode 'client_secret={secret}' \
             --data-urlencode scope=https://graph.microsoft.com/.default\n",
            tenant = app.tenant,
            client = app.client_id,
            secret = app.secret,
        ));
    }
    out
}

/// The HTTPS part of the welcome: the URL and how to trust the demo's CA.
fn https_welcome(served: &Served) -> String {
    let Some(https) = &served.https else {
        return String::new();
    };
    let Some(ca) = &served.ca else {
        return format!("and over HTTPS at {https}\n");
    };
    let ca = shell_quote(ca);
    format!(
        "and over HTTPS at {https}, with a certificate for 127.0.0.1, ::1 and localhost signed by\n\
         a local CA this demo created (kept, and reused while valid, next to the key file).\n\
         Trust that CA in the clients you try:\n\n\
         curl --cacert {ca} {https}/healthz\n\
         export SSL_CERT_FILE={ca}        # OpenSSL-based clients, Python's ssl module (in place of the system's CAs)\n\
         export REQUESTS_CA_BUNDLE={ca}   # Python requests (in place of its CAs)\n\
         export NODE_EXTRA_CA_CERTS={ca}  # Node.js (in addition to its CAs)\n"
    )
}

/// `path` as one shell word: as it is when that is safe, else in single quotes.
fn shell_quote(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_paths_and_quotes_the_rest() {
        use std::path::Path;
        assert_eq!(shell_quote(Path::new("/srv/rr/ca.pem")), "/srv/rr/ca.pem");
        assert_eq!(shell_quote(Path::new("/a b/ca.pem")), "'/a b/ca.pem'");
        assert_eq!(shell_quote(Path::new("/it's/ca.pem")), r"'/it'\''s/ca.pem'");
    }
}
