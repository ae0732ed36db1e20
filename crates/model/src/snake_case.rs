//! The SQL names of the registry's entities and properties. Shared with `build.rs`, which
//! writes each name into the registry once (`ReportType::table`, `Property::column`): built
//! per call, they were 2 % of a `$filter` page's instructions under callgrind.

/// `teamsDeviceUsageDistributionUserCounts` → `teams_device_usage_distribution_user_counts`;
/// `chromeOS` → `chrome_os`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else {
            out.push(c);
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}
