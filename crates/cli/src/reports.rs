//! `reportroot reports`: every report the registry holds, as a table or JSON.

use anyhow::Result;
use std::io::Write;

use reportroot_model::{Grain, ReportType, Version, REPORTS};
use serde_json::json;

/// The versions a report exists on, as path segments.
fn versions(report: &ReportType) -> Vec<&'static str> {
    Version::ALL
        .into_iter()
        .filter(|v| report.exists_on(*v))
        .map(Version::segment)
        .collect()
}

fn grain(report: &ReportType) -> String {
    match (report.grain, report.dimension) {
        (Grain::PerDay, Some(dimension)) => format!("per day and {dimension}"),
        (Grain::PerDay, None) => "per day".to_owned(),
        (Grain::PerPeriod, _) => "per period".to_owned(),
        (Grain::PerDimension, Some(dimension)) => format!("per {dimension}"),
        (Grain::PerDimension, None) => "per dimension".to_owned(),
    }
}

fn call(report: &ReportType) -> String {
    let args = if report.function.takes_period {
        "(period='D7')"
    } else {
        "()"
    };
    format!("{}{args}", report.function.name)
}

/// The CSV columns of each version the report exists on.
fn columns(report: &ReportType) -> serde_json::Value {
    let mut by_version = serde_json::Map::new();
    for version in Version::ALL {
        if let Some(header) = report.csv_header_on(version) {
            let titles: Vec<&str> = header.split(',').collect();
            by_version.insert(version.segment().to_owned(), json!(titles));
        }
    }
    serde_json::Value::Object(by_version)
}

/// Prints every report: a Markdown table, or with `json` one JSON array.
pub fn print(json: bool) -> Result<()> {
    let mut out = String::new();
    if json {
        let reports: Vec<_> = REPORTS
            .iter()
            .map(|r| {
                json!({
                    "entitySet": r.entity,
                    "function": call(r),
                    "versions": versions(r),
                    "period": r.function.takes_period,
                    "grain": grain(r),
                    "csvColumns": columns(r),
                })
            })
            .collect();
        out = serde_json::to_string_pretty(&reports)?;
        out.push('\n');
    } else {
        out.push_str("| entity set | function | versions | grain | CSV columns |\n");
        out.push_str("|---|---|---|---|---:|\n");
        for r in REPORTS {
            let columns = r
                .columns
                .iter()
                .map(|c| c.csv.len().to_string())
                .collect::<Vec<_>>()
                .join(" / ");
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.entity,
                call(r),
                versions(r).join(", "),
                grain(r),
                columns
            ));
        }
    }
    Ok(std::io::stdout().write_all(out.as_bytes())?)
}
