//! `reportroot demo`: two tenants with half a year of realistic rows, and what to try next.

use std::io::Write;

use reportroot_model::demo::{demo_rows, DemoTenant};
use reportroot_model::{Date, TenantId, REPORTS};
use reportroot_storage::Storage;
use uuid::Uuid;

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
pub fn remove_database(url: &str) -> Result<(), String> {
    if url.starts_with("postgres") {
        return Ok(());
    }
    let path = reportroot_sqlite::path_from_url(url);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
    Ok(())
}

/// Fills the store with `days` days of every report for both tenants.
pub async fn fill(storage: &dyn Storage, days: u32) -> Result<Vec<Tenant>, String> {
    // Graph's data lags about two days behind.
    let last_refresh = Date::today_utc().add_days(-2);
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
                days,
            );
            let counts = storage
                .upsert_many(tenant, report, rows)
                .await
                .map_err(|e| e.to_string())?;
            total += counts.inserted;
        }
        tenants.push(Tenant { name, id: tenant });
    }
    tracing::info!(
        rows = total,
        seconds = started.elapsed().as_secs_f64(),
        "demo data loaded"
    );
    Ok(tenants)
}

/// Prints, for each tenant, a read token, a write token and three curl commands.
pub fn print_welcome(base: &str, secret: &[u8], tenants: &[Tenant]) {
    let mut out = String::new();
    out.push_str(&format!("\nreportroot demo is serving at {base}\n"));
    let day = 24 * 3600;
    for tenant in tenants {
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
        let yesterday = Date::today_utc().add_days(-1);
        out.push_str(&format!(
            "\n== Tenant {name} ({id})\n\
             read token:  {read}\n\
             write token: {write}\n\n\
             curl -s -H \"Authorization: Bearer {read}\" \"{base}/v1.0/reports/office365ActivationsUserCounts\"\n\n\
             curl -sL -H \"Authorization: Bearer {read}\" \"{base}/v1.0/reports/getOffice365ActiveUserCounts(period='D7')\"\n\n\
             curl -s -X POST -H \"Authorization: Bearer {write}\" -H \"Content-Type: application/json\" \
             \"{base}/v1.0/reports/office365ActivationsUserCounts\" \
             -d '{{\"reportRefreshDate\":\"{yesterday}\",\"productType\":\"VISIO CLIENT\",\"assigned\":120,\"activated\":97,\"sharedComputerActivation\":2}}'\n",
            name = tenant.name,
            id = tenant.id,
        ));
    }
    out.push_str("\nPress Ctrl-C to stop.\n");
    let _ = std::io::stdout().write_all(out.as_bytes());
}
