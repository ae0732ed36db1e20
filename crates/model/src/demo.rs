//! Deterministic, realistic report rows for demos and benchmarks, derived from the registry's
//! [`DemoSpec`]s: a working-week rhythm for daily activity, slow growth, plausible shares
//! between services and devices, and reproducible noise.

use crate::registry::{DemoSpec, ReportType};
use crate::{Date, Period, Value};

/// A tenant to generate data for.
#[derive(Debug, Clone, Copy)]
pub struct DemoTenant {
    /// Seeds the tenant's noise; the same seed gives the same rows.
    pub seed: u64,
    /// Licensed users on the first day; grows slowly over time.
    pub users: u32,
}

/// SplitMix64: a tiny, well-mixed hash for reproducible noise.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Reproducible noise in `[1 - spread, 1 + spread]`.
fn noise(parts: &[u64], spread: f64) -> f64 {
    let h = parts.iter().fold(0u64, |acc, p| mix(acc ^ p));
    let unit = (h >> 11) as f64 / (1u64 << 53) as f64;
    1.0 + spread * (2.0 * unit - 1.0)
}

fn day_number(date: Date) -> u64 {
    u64::try_from(date.days_since(Date::from_ymd(2000, 1, 1).unwrap_or(date))).unwrap_or(0)
}

/// The rows of `report` for `tenant`, for every refresh date of the `days` days ending on
/// `last_refresh`.
pub fn demo_rows(
    report: &ReportType,
    tenant: DemoTenant,
    last_refresh: Date,
    days: u32,
) -> Vec<Vec<Value>> {
    let specs: Vec<DemoSpec> = report.properties.iter().map(|p| p.demo).collect();
    let has_activity_date = specs.contains(&DemoSpec::ActivityDate);
    let has_period = specs.contains(&DemoSpec::Period);
    let choices: &[(&str, f64)] = specs
        .iter()
        .find_map(|s| match s {
            DemoSpec::Choice(list) => Some(*list),
            _ => None,
        })
        .unwrap_or(&[("", 1.0)]);
    let periods: &[Option<Period>] = if has_period {
        &[
            Some(Period::D7),
            Some(Period::D30),
            Some(Period::D90),
            Some(Period::D180),
        ]
    } else {
        &[None]
    };
    let first_refresh = last_refresh.add_days(-i64::from(days.saturating_sub(1)));
    let mut rows = Vec::new();
    for offset in 0..i64::from(days) {
        let refresh = first_refresh.add_days(offset);
        for &(choice, weight) in choices {
            for &period in periods {
                let window = match (has_activity_date, period) {
                    (true, Some(p)) => i64::from(p.days()),
                    _ => 1,
                };
                for back in (0..window).rev() {
                    let activity = refresh.add_days(-back);
                    rows.push(row(
                        &specs,
                        tenant,
                        refresh,
                        activity,
                        choice,
                        weight,
                        period,
                        has_activity_date,
                        first_refresh,
                    ));
                }
            }
        }
    }
    rows
}

#[expect(
    clippy::too_many_arguments,
    reason = "one row's coordinates, kept explicit"
)]
fn row(
    specs: &[DemoSpec],
    tenant: DemoTenant,
    refresh: Date,
    activity: Date,
    choice: &str,
    weight: f64,
    period: Option<Period>,
    daily: bool,
    start: Date,
) -> Vec<Value> {
    // Activity belongs to its own day, so every refresh reports the same numbers for it.
    let day = if daily { activity } else { refresh };
    let grown = f64::from(tenant.users) * (1.0 + 0.0008 * day.days_since(start) as f64);
    let rhythm = match (daily, day.weekday_from_monday()) {
        (true, 5 | 6) => 0.22,
        _ => 1.0,
    };
    let spread = match (daily, period) {
        // Distinct users over a longer period reach a larger share of the tenant.
        (false, Some(p)) => 0.55 + 0.45 * (1.0 - (-f64::from(p.days()) / 30.0).exp()),
        _ => 1.0,
    };
    let day_key = day_number(day);
    let row_noise = noise(&[tenant.seed, day_key, choice.len() as u64], 0.05);
    // Stocks: no weekend dip; their own day's size, whichever report splits them.
    let stock = |share: f64| {
        let stock_day = if daily { activity } else { refresh };
        let grown = f64::from(tenant.users) * (1.0 + 0.0008 * stock_day.days_since(start) as f64);
        (grown * share * weight).round() as i64
    };
    let mut values: Vec<Value> = specs
        .iter()
        .enumerate()
        .map(|(index, spec)| match spec {
            DemoSpec::Stock(share) => Value::Int(stock(*share)),
            // Filled below, once the counts it subtracts are known.
            DemoSpec::Remainder { .. } => Value::Int(0),
            DemoSpec::RefreshDate => Value::Date(refresh),
            DemoSpec::ActivityDate => Value::Date(activity),
            DemoSpec::Period => Value::Text(period.unwrap_or(Period::D7).stored().to_owned()),
            DemoSpec::Choice(_) => Value::Text(choice.to_owned()),
            DemoSpec::Share(share) => {
                let jitter = noise(&[tenant.seed, day_key, index as u64, 7], 0.01);
                let value = grown * share * weight * rhythm * spread * row_noise * jitter;
                Value::Int(value.round() as i64)
            }
            DemoSpec::Duration(minutes) => {
                let jitter = noise(&[tenant.seed, day_key, index as u64, 7], 0.01);
                let value = grown * minutes * 60.0 * weight * rhythm * spread * row_noise * jitter;
                let seconds = value.round() as u64;
                Value::Text(format!(
                    "{:02}:{:02}:{:02}",
                    seconds / 3600,
                    seconds / 60 % 60,
                    seconds % 60
                ))
            }
        })
        .collect();
    for (index, spec) in specs.iter().enumerate() {
        if let DemoSpec::Remainder { total, minus } = spec {
            let taken: i64 = minus
                .iter()
                .map(|&i| match values[i] {
                    Value::Int(n) => n,
                    _ => 0,
                })
                .sum();
            values[index] = Value::Int((stock(*total) - taken).max(0));
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{find_report, ReportType};

    fn ints(row: &[Value]) -> Vec<i64> {
        row.iter()
            .filter_map(|v| match v {
                Value::Int(i) => Some(*i),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn active_users_are_plausible_and_deterministic() {
        let report = find_report("office365ActiveUserCounts").expect("report");
        let tenant = DemoTenant {
            seed: 1,
            users: 1000,
        };
        let last = Date::parse("2025-03-31").expect("date");
        let rows = demo_rows(report, tenant, last, 3);
        assert_eq!(rows.len(), 3 * (7 + 30 + 90 + 180));
        assert_eq!(rows, demo_rows(report, tenant, last, 3));
        for row in &rows {
            let counts = ints(row);
            let office365 = counts[0];
            assert!(counts[1..].iter().all(|c| *c <= office365), "{row:?}");
        }
        // Saturday 2025-03-29 is quieter than Friday 2025-03-28.
        let on = |date: &str| {
            let date = Value::Date(Date::parse(date).expect("date"));
            rows.iter()
                .find(|r| r[8] == date && r[0] == Value::Date(last))
                .map(|r| ints(r)[0])
                .expect("row")
        };
        assert!(on("2025-03-29") * 2 < on("2025-03-28"));
    }

    /// Every report's demo rows: counts never negative, active never above total, each
    /// service's active and inactive users adding up to the same licensed users, and the
    /// mailbox quota states adding up to the mailbox count of the mailbox report.
    #[test]
    fn every_report_is_consistent() {
        let tenant = DemoTenant {
            seed: 3,
            users: 800,
        };
        let last = Date::parse("2025-03-31").expect("date");
        let int = |row: &[Value], report: &ReportType, name: &str| match report
            .property_index(name)
            .map(|i| &row[i])
        {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        };
        for report in crate::REPORTS {
            for row in demo_rows(report, tenant, last, 3) {
                assert!(ints(&row).iter().all(|n| *n >= 0), "{}", report.entity);
                if let (Some(total), Some(active)) =
                    (int(&row, report, "total"), int(&row, report, "active"))
                {
                    assert!(active <= total, "{}: {row:?}", report.entity);
                }
                let licensed: Vec<i64> = report
                    .properties
                    .iter()
                    .filter_map(|p| p.name.strip_suffix("Inactive"))
                    .map(|stem| {
                        int(&row, report, &format!("{stem}Active")).unwrap_or_default()
                            + int(&row, report, &format!("{stem}Inactive")).unwrap_or_default()
                    })
                    .collect();
                assert!(
                    licensed.windows(2).all(|w| w[0] == w[1]),
                    "{}",
                    report.entity
                );
            }
        }
        let mailboxes = find_report("mailboxUsageMailboxCounts").expect("report");
        let quota = find_report("mailboxUsageQuotaStatusMailboxCounts").expect("report");
        let totals = demo_rows(mailboxes, tenant, last, 3);
        let states = demo_rows(quota, tenant, last, 3);
        assert_eq!(totals.len(), states.len());
        for (total, split) in totals.iter().zip(&states) {
            let sum: i64 = [
                "underLimit",
                "warningIssued",
                "sendProhibited",
                "sendReceiveProhibited",
                "indeterminate",
            ]
            .iter()
            .map(|n| int(split, quota, n).expect("count"))
            .sum();
            assert_eq!(Some(sum), int(total, mailboxes, "total"), "{split:?}");
        }
    }

    #[test]
    fn activations_have_one_row_per_product() {
        let report = find_report("office365ActivationsUserCounts").expect("report");
        let tenant = DemoTenant {
            seed: 9,
            users: 500,
        };
        let rows = demo_rows(report, tenant, Date::parse("2025-01-10").expect("d"), 2);
        assert_eq!(rows.len(), 8);
        for row in rows {
            let counts = ints(&row);
            assert!(counts[0] >= counts[1], "assigned >= activated");
        }
    }
}
