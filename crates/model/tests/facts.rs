//! The registry agrees with the facts in `registry/reports.json`, entry by entry, and with the
//! catalog's headline figures (50 functions on v1.0, 61 on beta, the 11 beta-only ones).

use std::collections::HashSet;

use reportroot_model::{
    find_report, report_by_function, Grain, ReportType, V1Return, ValueKind, Version, REPORTS,
};
use serde_json::Value;

fn facts() -> Vec<Value> {
    let text = include_str!("../registry/reports.json");
    let facts: Value = serde_json::from_str(text).expect("reports.json is JSON");
    facts["reports"].as_array().expect("reports").clone()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().expect("str").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn version(name: &str) -> Version {
    match name {
        "v1.0" => Version::V1,
        "beta" => Version::Beta,
        other => panic!("version {other}"),
    }
}

fn edm(kind: ValueKind) -> &'static str {
    kind.edm_type()
}

#[test]
fn the_registry_is_the_facts() {
    let facts = facts();
    assert_eq!(REPORTS.len(), facts.len());
    for (report, fact) in REPORTS.iter().zip(&facts) {
        let function = fact["function"].as_str().expect("function");
        let what = function;
        assert_eq!(report.function.name, function);
        let stem = &function[3..];
        assert_eq!(
            report.entity,
            format!("{}{}", stem[..1].to_ascii_lowercase(), &stem[1..]),
            "{what}"
        );
        let versions: Vec<Version> = strings(&fact["versions"])
            .iter()
            .map(|v| version(v))
            .collect();
        assert_eq!(report.versions, versions.as_slice(), "{what}");
        assert_eq!(
            report.function.takes_period,
            fact["takes_period"].as_bool().expect("takes_period"),
            "{what}"
        );
        let grain = match fact["grain"].as_str().expect("grain") {
            "per-day" => Grain::PerDay,
            "per-period" => Grain::PerPeriod,
            "per-dimension" => Grain::PerDimension,
            other => panic!("{what}: grain {other}"),
        };
        assert_eq!(report.grain, grain, "{what}");
        assert_eq!(report.dimension, fact["dimension"].as_str(), "{what}");
        assert_eq!(
            report.json_container,
            fact["json_container"].as_str(),
            "{what}"
        );
        assert_eq!(
            report.json_container.is_some(),
            fact["json_shape"] == "nested",
            "{what}"
        );
        let v1_return = match fact["v1_return"].as_str() {
            Some("graph.report") => Some(V1Return::Report),
            Some("Edm.Stream") => Some(V1Return::Stream),
            None => None,
            Some(other) => panic!("{what}: {other}"),
        };
        assert_eq!(report.v1_return, v1_return, "{what}");

        let properties = fact["properties"].as_array().expect("properties");
        assert_eq!(report.properties.len(), properties.len(), "{what}");
        for (property, fact) in report.properties.iter().zip(properties) {
            assert_eq!(property.name, fact["name"], "{what}");
            assert_eq!(property.csv_column, fact["csv"], "{what}");
            assert_eq!(edm(property.kind), fact["edm"], "{what} {}", property.name);
            assert_eq!(
                property.edm_inferred,
                fact.get("inferred").is_some(),
                "{what}"
            );
            assert_eq!(
                property.in_csv,
                fact["in_csv"].as_bool().unwrap_or(true),
                "{what}"
            );
            let aliases: Vec<String> = strings(&fact["csv_aliases"]);
            assert_eq!(property.csv_aliases, aliases.as_slice(), "{what}");
        }
        for (name, columns) in fact["csv_columns"].as_object().expect("csv_columns") {
            let header = strings(columns).join(",");
            assert_eq!(
                report.csv_header_on(version(name)),
                Some(header),
                "{what} {name}"
            );
        }
        for missing in Version::ALL {
            if !report.exists_on(missing) {
                assert!(report.csv_header_on(missing).is_none(), "{what}");
                assert!(report.columns_on(missing).is_none(), "{what}");
            }
        }
        let older: Vec<Vec<String>> = fact["older_csv_columns"]
            .as_array()
            .map(|sets| sets.iter().map(|s| strings(&s["columns"])).collect())
            .unwrap_or_default();
        let registry_older: Vec<Vec<String>> = report
            .older_csv_columns
            .iter()
            .map(|set| set.iter().map(|c| (*c).to_owned()).collect())
            .collect();
        assert_eq!(registry_older, older, "{what}");
    }
}

#[test]
fn the_catalogs_headline_figures() {
    let on = |v: Version| REPORTS.iter().filter(|r| r.exists_on(v)).count();
    assert_eq!(on(Version::V1), 50);
    assert_eq!(on(Version::Beta), 61);
    let beta_only: HashSet<&str> = REPORTS
        .iter()
        .filter(|r| !r.exists_on(Version::V1))
        .map(|r| r.function.name)
        .collect();
    let expected: HashSet<&str> = [
        "getBrowserDistributionUserCounts",
        "getBrowserUserCounts",
        "getFormsUserActivityCounts",
        "getFormsUserActivityUserCounts",
        "getTeamsDeviceUsageDistributionTotalUserCounts",
        "getTeamsDeviceUsageTotalUserCounts",
        "getTeamsUserActivityDistributionTotalUserCounts",
        "getTeamsUserActivityDistributionUserCounts",
        "getTeamsUserActivityTotalCounts",
        "getTeamsUserActivityTotalDistributionCounts",
        "getTeamsUserActivityTotalUserCounts",
    ]
    .into_iter()
    .collect();
    assert_eq!(beta_only, expected);
    // Only the two activation reports take no period.
    let no_period: Vec<&str> = REPORTS
        .iter()
        .filter(|r| !r.function.takes_period)
        .map(|r| r.entity)
        .collect();
    assert_eq!(
        no_period,
        [
            "office365ActivationsUserCounts",
            "office365ActivationCounts"
        ]
    );
}

fn header(report: &ReportType, version: Version) -> String {
    report.csv_header_on(version).expect("exists")
}

#[test]
fn the_decisions_on_the_docs_defects() {
    let get = |f: &str| report_by_function(f).expect(f);
    // A real v1.0/beta difference: both lists kept.
    let groups = get("getOffice365GroupsActivityCounts");
    assert_eq!(
        header(groups, Version::V1),
        "Report Refresh Date,Exchange Emails Received,Yammer Messages Posted,Yammer Messages Read,Yammer Messages Liked,Report Date,Report Period"
    );
    assert_eq!(
        header(groups, Version::Beta),
        "Report Refresh Date,Exchange Emails Received,Yammer Messages Posted,Yammer Messages Read,Yammer Messages Liked,Teams Channel Messages,Teams Meetings Organized,Report Date,Report Period"
    );
    // Stale pages: the current columns on both versions, the stale list accepted on import.
    let teams = get("getTeamsDeviceUsageDistributionUserCounts");
    for v in Version::ALL {
        assert_eq!(
            header(teams, v),
            "Report Refresh Date,Web,Windows Phone,Android Phone,iOS,Mac,Windows,Chrome OS,Linux,Report Period"
        );
    }
    assert!(teams.older_csv_columns.contains(
        &[
            "Report Refresh Date",
            "Web",
            "Windows Phone",
            "Android Phone",
            "iOS",
            "Mac",
            "Windows",
            "Report Period"
        ]
        .as_slice()
    ));
    for (function, stale) in [
        ("getTeamsDeviceUsageUserCounts", Version::Beta),
        ("getTeamsUserActivityCounts", Version::Beta),
        ("getEmailActivityCounts", Version::V1),
        ("getEmailActivityUserCounts", Version::Beta),
    ] {
        let report = get(function);
        assert_eq!(
            header(report, Version::V1),
            header(report, Version::Beta),
            "{function}"
        );
        assert_eq!(report.older_csv_columns.len(), 1, "{function} {stale:?}");
    }
    assert!(header(get("getEmailActivityCounts"), Version::V1).contains("Meeting Interacted"));
    assert!(header(get("getTeamsUserActivityCounts"), Version::Beta).contains("Audio Duration"));
    // A list copied from a sibling page: replaced, not accepted.
    let platform = get("getM365AppPlatformUserCounts");
    assert_eq!(
        header(platform, Version::Beta),
        "Report Refresh Date,Report Period,Report Date,Windows,Mac,Mobile,Web"
    );
    assert!(platform.older_csv_columns.is_empty());
    // Spellings: one title, the other spelling an alias.
    let organizer = get("getSkypeForBusinessOrganizerActivityUserCounts");
    let third = organizer.property("dialInOut3rdParty").expect("property");
    assert_eq!(third.csv_column, "Dial-in/out 3rd Party");
    assert_eq!(third.csv_aliases, ["Dial-in/out third Party"]);
    assert_eq!(
        get("getTeamsTeamActivityCounts")
            .property("activeUsers")
            .expect("activeUsers")
            .csv_column,
        "Active Users"
    );
    // getTeamsTeamCounts: no Report Period column, but rows keep their period.
    let team_counts = find_report("teamsTeamCounts").expect("teamsTeamCounts");
    assert!(!team_counts.csv_header().contains("Report Period"));
    assert!(team_counts.natural_key.contains(&"reportPeriod"));
}

#[test]
fn kinds_keys_and_orders_follow_the_grain() {
    let durations: Vec<(&str, &str)> = REPORTS
        .iter()
        .flat_map(|r| {
            r.properties
                .iter()
                .filter(|p| p.kind == ValueKind::Duration)
                .map(move |p| (r.entity, p.name))
        })
        .collect();
    assert_eq!(durations.len(), 9, "{durations:?}");
    assert!(REPORTS
        .iter()
        .any(|r| r.properties.iter().any(|p| p.kind == ValueKind::Count32)));
    for report in REPORTS {
        let what = report.entity;
        assert_eq!(report.natural_key[0], "reportRefreshDate", "{what}");
        let order: Vec<(&str, bool)> = report
            .function
            .order_by
            .iter()
            .map(|k| (k.property, k.descending))
            .collect();
        match report.grain {
            Grain::PerDay => {
                assert_eq!(order[0], ("reportDate", true), "{what}");
                assert!(report.natural_key.contains(&"reportDate"), "{what}");
            }
            Grain::PerDimension => {
                let dimension = report.dimension.expect("dimension");
                assert_eq!(order, [(dimension, false)], "{what}");
            }
            Grain::PerPeriod => assert!(order.is_empty(), "{what}"),
        }
        if let Some(dimension) = report.dimension {
            assert_eq!(report.natural_key[1], dimension, "{what}");
        }
    }
}
