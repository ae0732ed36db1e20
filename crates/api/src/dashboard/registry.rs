//! `GET /dashboard/api/registry`: the registry facts the dashboard's pages are drawn from, so
//! that a report added to `registry/reports.json` gets its page, tile and table with no page
//! code.

use std::sync::OnceLock;

use reportroot_model::{Grain, Period, ReportType, ValueKind, Version, REPORTS};
use serde_json::{json, Value};

/// Most headline numbers a family's tile shows.
const HEADLINE_NUMBERS: usize = 3;

/// The registry as JSON, built once.
pub(crate) fn registry_json() -> &'static [u8] {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    JSON.get_or_init(|| serde_json::to_vec(&registry()).unwrap_or_default())
}

/// `{"periods", "families":[{name, headline, numbers, reports}], "reports":[...]}`.
fn registry() -> Value {
    let families: Vec<Value> = families().into_iter().map(family).collect();
    json!({
        "periods": Period::ALL.iter().map(|p| p.param()).collect::<Vec<_>>(),
        "families": families,
        "reports": REPORTS.iter().map(report).collect::<Vec<_>>(),
    })
}

/// The families, in registry order.
fn families() -> Vec<&'static str> {
    let mut families: Vec<&'static str> = Vec::new();
    for report in REPORTS {
        if !families.contains(&report.family) {
            families.push(report.family);
        }
    }
    families
}

/// A family's headline report, the one its overview tile shows: the first per-day report
/// without a dimension (a daily count of users, say), else its first report.
fn headline(family: &str) -> Option<&'static ReportType> {
    let members = || REPORTS.iter().filter(move |r| r.family == family);
    members()
        .find(|r| r.grain == Grain::PerDay && r.dimension.is_none())
        .or_else(|| members().next())
}

/// How many key numbers the operator view shows per tenant.
const KEY_NUMBERS: usize = 4;

/// A key number of the operator view ("All tenants").
#[derive(Debug, Clone)]
pub(crate) struct KeyNumber {
    /// The headline report it is read from.
    pub report: &'static ReportType,
    /// The count property.
    pub name: &'static str,
    /// `"{family}: {CSV title}"`.
    pub label: String,
}

/// The operator view's key numbers: the first count of the first [`KEY_NUMBERS`] families'
/// headline reports. The one place that chooses them (the page reads them from
/// `/dashboard/api/operator`).
pub(crate) fn key_numbers() -> Vec<KeyNumber> {
    families()
        .into_iter()
        .filter_map(|family| {
            let report = headline(family)?;
            let (name, title) = counts(report).into_iter().next()?;
            Some(KeyNumber {
                report,
                name,
                label: format!("{family}: {title}"),
            })
        })
        .take(KEY_NUMBERS)
        .collect()
}

/// A family: its reports, its [`headline`] report and that report's first counts.
fn family(name: &'static str) -> Value {
    let members: Vec<&ReportType> = REPORTS.iter().filter(|r| r.family == name).collect();
    let headline = headline(name);
    let numbers: Vec<&str> = headline
        .map(|r| {
            counts(r)
                .into_iter()
                .take(HEADLINE_NUMBERS)
                .map(|(name, _)| name)
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": name,
        "headline": headline.map(|r| r.entity),
        "numbers": numbers,
        "reports": members.iter().map(|r| r.entity).collect::<Vec<_>>(),
    })
}

/// The version a report's pages read: v1.0 where it exists, else beta.
fn version(report: &ReportType) -> Version {
    if report.exists_on(Version::V1) {
        Version::V1
    } else {
        Version::Beta
    }
}

/// The count properties of a report on its version, with their CSV titles (the labels).
fn counts(report: &ReportType) -> Vec<(&'static str, &'static str)> {
    report
        .json_indexes_on(Some(version(report)))
        .into_iter()
        .map(|i| &report.properties[i])
        .filter(|p| p.kind.is_count())
        .map(|p| (p.name, p.csv_column))
        .collect()
}

fn grain(grain: Grain) -> &'static str {
    match grain {
        Grain::PerDay => "per-day",
        Grain::PerPeriod => "per-period",
        Grain::PerDimension => "per-dimension",
    }
}

fn kind(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Date => "date",
        ValueKind::Count | ValueKind::Count32 => "count",
        ValueKind::Text => "text",
        ValueKind::Period => "period",
        ValueKind::Duration => "duration",
    }
}

/// One report: names, grain, dimension, its date properties and its properties on the
/// version the pages read.
fn report(report: &ReportType) -> Value {
    let version = version(report);
    let properties: Vec<Value> = report
        .json_indexes_on(Some(version))
        .into_iter()
        .map(|i| &report.properties[i])
        .map(|p| json!({ "name": p.name, "kind": kind(p.kind), "label": p.csv_column }))
        .collect();
    // The date a chart's x axis runs along: the day of activity where rows have one,
    // else the refresh date.
    let x = report
        .activity_date_index()
        .map_or(report.refresh_date, |i| report.properties[i].name);
    json!({
        "entitySet": report.entity,
        "function": report.function.name,
        "family": report.family,
        "version": version.segment(),
        "grain": grain(report.grain),
        "dimension": report.dimension,
        "takesPeriod": report.function.takes_period,
        "refreshDate": report.refresh_date,
        "x": x,
        "properties": properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_and_family_is_listed() {
        let value: Value = serde_json::from_slice(registry_json()).expect("JSON");
        let reports = value["reports"].as_array().expect("reports");
        assert_eq!(reports.len(), REPORTS.len());
        let families = value["families"].as_array().expect("families");
        let listed: usize = families
            .iter()
            .map(|f| f["reports"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(listed, REPORTS.len());
        for family in families {
            assert!(family["headline"].is_string(), "{family}");
            assert!(!family["numbers"].as_array().expect("numbers").is_empty());
        }
        let active = reports
            .iter()
            .find(|r| r["entitySet"] == "office365ActiveUserCounts")
            .expect("office365ActiveUserCounts");
        assert_eq!(active["x"], "reportDate");
        assert_eq!(active["grain"], "per-day");
    }
}
