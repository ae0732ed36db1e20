//! The registry: one entry per report type. Routes, validation, JSON, CSV, `$metadata`, SQL
//! schema and demo data are all derived from these entries, so adding another of Graph's
//! `get…Counts` reports is one more entry in [`REPORTS`].

/// The kind of a property's values; it fixes the EDM type and the validation rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `Edm.Date`, `YYYY-MM-DD`.
    Date,
    /// `Edm.Int64` holding a count of users: never negative.
    Count,
    /// `Edm.String`, free text.
    Text,
    /// `Edm.String` holding a report period: `"7"`, `"30"`, `"90"` or `"180"`.
    Period,
}

impl ValueKind {
    /// The EDM type name used in `$metadata` and error messages.
    pub fn edm_type(self) -> &'static str {
        match self {
            ValueKind::Date => "Edm.Date",
            ValueKind::Count => "Edm.Int64",
            ValueKind::Text | ValueKind::Period => "Edm.String",
        }
    }
}

/// How demo and benchmark data fill a property.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DemoSpec {
    /// The refresh date of the generated report.
    RefreshDate,
    /// Each day of the report period, up to the refresh date: the day the activity happened.
    ActivityDate,
    /// Each report period.
    Period,
    /// One row per listed value; the number scales the row's counts.
    Choice(&'static [(&'static str, f64)]),
    /// A count: about this share of the tenant's users.
    Share(f64),
}

/// One property of a report type.
#[derive(Debug, Clone, Copy)]
pub struct Property {
    /// The JSON / OData name, e.g. `reportRefreshDate`.
    pub name: &'static str,
    /// The kind of its values.
    pub kind: ValueKind,
    /// The column title in Graph's CSV, e.g. `Report Refresh Date`.
    pub csv_column: &'static str,
    /// How demo data fills it.
    pub demo: DemoSpec,
}

/// One key of a report function's row order.
#[derive(Debug, Clone, Copy)]
pub struct SortKey {
    /// The property sorted on.
    pub property: &'static str,
    /// Whether the order is descending.
    pub descending: bool,
}

/// The Graph report function that serves a report type, e.g.
/// `getOffice365ActiveUserCounts(period='D7')`.
#[derive(Debug, Clone, Copy)]
pub struct ReportFunction {
    /// The function name as Graph spells it.
    pub name: &'static str,
    /// Whether the function takes the `period` parameter (and rows carry a period property).
    pub takes_period: bool,
    /// The order of the rows in the function's answer.
    pub order_by: &'static [SortKey],
}

/// One report type: an entity type of namespace `microsoft.graph` deriving from `entity`.
#[derive(Debug)]
pub struct ReportType {
    /// The entity type name, which is also the entity-set name under `/reports`.
    pub entity: &'static str,
    /// The properties other than `id`, in Graph's CSV column order.
    pub properties: &'static [Property],
    /// The properties whose values identify a row within a tenant.
    pub natural_key: &'static [&'static str],
    /// The property holding the refresh date a row was reported on.
    pub refresh_date: &'static str,
    /// The report function serving this type.
    pub function: ReportFunction,
}

const fn prop(
    name: &'static str,
    kind: ValueKind,
    csv_column: &'static str,
    demo: DemoSpec,
) -> Property {
    Property {
        name,
        kind,
        csv_column,
        demo,
    }
}

const fn count(name: &'static str, csv_column: &'static str, share: f64) -> Property {
    prop(name, ValueKind::Count, csv_column, DemoSpec::Share(share))
}

const REFRESH_DATE: Property = prop(
    "reportRefreshDate",
    ValueKind::Date,
    "Report Refresh Date",
    DemoSpec::RefreshDate,
);
const REPORT_PERIOD: Property = prop(
    "reportPeriod",
    ValueKind::Period,
    "Report Period",
    DemoSpec::Period,
);

/// Every report type reportroot serves.
pub static REPORTS: &[ReportType] = &[
    ReportType {
        entity: "office365ActivationsUserCounts",
        properties: &[
            REFRESH_DATE,
            prop(
                "productType",
                ValueKind::Text,
                "Product Type",
                DemoSpec::Choice(&[
                    ("MICROSOFT 365 APPS FOR ENTERPRISE", 1.0),
                    ("MICROSOFT 365 APPS FOR BUSINESS", 0.18),
                    ("PROJECT CLIENT", 0.06),
                    ("VISIO CLIENT", 0.09),
                ]),
            ),
            count("assigned", "Assigned", 0.96),
            count("activated", "Activated", 0.81),
            count(
                "sharedComputerActivation",
                "Shared Computer Activation",
                0.03,
            ),
        ],
        natural_key: &["reportRefreshDate", "productType"],
        refresh_date: "reportRefreshDate",
        function: ReportFunction {
            name: "getOffice365ActivationsUserCounts",
            takes_period: false,
            order_by: &[SortKey {
                property: "productType",
                descending: false,
            }],
        },
    },
    ReportType {
        entity: "office365ActiveUserCounts",
        properties: &[
            REFRESH_DATE,
            count("office365", "Office 365", 0.86),
            count("exchange", "Exchange", 0.80),
            count("oneDrive", "OneDrive", 0.47),
            count("sharePoint", "SharePoint", 0.41),
            count("skypeForBusiness", "Skype For Business", 0.02),
            count("yammer", "Yammer", 0.06),
            count("teams", "Teams", 0.73),
            prop(
                "reportDate",
                ValueKind::Date,
                "Report Date",
                DemoSpec::ActivityDate,
            ),
            REPORT_PERIOD,
        ],
        natural_key: &["reportRefreshDate", "reportDate", "reportPeriod"],
        refresh_date: "reportRefreshDate",
        function: ReportFunction {
            name: "getOffice365ActiveUserCounts",
            takes_period: true,
            order_by: &[SortKey {
                property: "reportDate",
                descending: true,
            }],
        },
    },
    ReportType {
        entity: "teamsDeviceUsageDistributionUserCounts",
        properties: &[
            REFRESH_DATE,
            count("web", "Web", 0.31),
            count("windowsPhone", "Windows Phone", 0.002),
            count("androidPhone", "Android Phone", 0.21),
            count("ios", "iOS", 0.26),
            count("mac", "Mac", 0.09),
            count("windows", "Windows", 0.64),
            count("chromeOS", "Chrome OS", 0.012),
            count("linux", "Linux", 0.006),
            REPORT_PERIOD,
        ],
        natural_key: &["reportRefreshDate", "reportPeriod"],
        refresh_date: "reportRefreshDate",
        function: ReportFunction {
            name: "getTeamsDeviceUsageDistributionUserCounts",
            takes_period: true,
            order_by: &[],
        },
    },
];

/// The report type whose entity-set name matches, ignoring ASCII case.
pub fn find_report(entity_set: &str) -> Option<&'static ReportType> {
    REPORTS
        .iter()
        .find(|r| r.entity.eq_ignore_ascii_case(entity_set))
}

/// The report type served by the named function, ignoring ASCII case.
pub fn report_by_function(function: &str) -> Option<&'static ReportType> {
    REPORTS
        .iter()
        .find(|r| r.function.name.eq_ignore_ascii_case(function))
}

/// Report types are equal when they are the same registry entry (entity names are unique).
impl PartialEq for ReportType {
    fn eq(&self, other: &Self) -> bool {
        self.entity == other.entity
    }
}

impl Eq for ReportType {}

impl ReportType {
    /// `microsoft.graph.<entity>`.
    pub fn qualified_name(&self) -> String {
        format!("microsoft.graph.{}", self.entity)
    }

    /// `#microsoft.graph.<entity>`, the `@odata.type` annotation.
    pub fn odata_type(&self) -> String {
        format!("#microsoft.graph.{}", self.entity)
    }

    /// The position of the named property (case-sensitive, as OData names are).
    pub fn property_index(&self, name: &str) -> Option<usize> {
        self.properties.iter().position(|p| p.name == name)
    }

    /// The named property.
    pub fn property(&self, name: &str) -> Option<&'static Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Positions of the natural-key properties.
    pub fn natural_key_indexes(&self) -> Vec<usize> {
        self.natural_key
            .iter()
            .filter_map(|name| self.property_index(name))
            .collect()
    }

    /// Position of the refresh-date property.
    pub fn refresh_date_index(&self) -> usize {
        self.property_index(self.refresh_date).unwrap_or_default()
    }

    /// Position of the period property, when the report has one.
    pub fn period_index(&self) -> Option<usize> {
        self.properties
            .iter()
            .position(|p| p.kind == ValueKind::Period)
    }

    /// The CSV header line (no BOM, no line end).
    pub fn csv_header(&self) -> String {
        self.properties
            .iter()
            .map(|p| p.csv_column)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The SQL table name: the entity name in snake case.
    pub fn table_name(&self) -> String {
        snake_case(self.entity)
    }
}

impl Property {
    /// The SQL column name: the property name in snake case.
    pub fn column_name(&self) -> String {
        snake_case(self.name)
    }
}

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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_entry_is_consistent() {
        let mut entities = HashSet::new();
        for report in REPORTS {
            assert!(entities.insert(report.entity.to_ascii_lowercase()));
            let names: HashSet<_> = report.properties.iter().map(|p| p.name).collect();
            assert_eq!(names.len(), report.properties.len(), "{}", report.entity);
            assert!(!names.contains("id"));
            for key in report.natural_key {
                assert!(names.contains(key), "{} key {key}", report.entity);
            }
            assert!(report.natural_key.contains(&report.refresh_date));
            for key in report.function.order_by {
                assert!(names.contains(key.property));
            }
            assert_eq!(
                report.function.takes_period,
                report.period_index().is_some(),
                "{}",
                report.entity
            );
            if let Some(period) = report.period_index() {
                assert!(report.natural_key.contains(&report.properties[period].name));
            }
            let columns: HashSet<_> = report.properties.iter().map(|p| p.column_name()).collect();
            assert_eq!(columns.len(), report.properties.len());
        }
    }

    #[test]
    fn csv_headers_match_graph() {
        let teams = find_report("TEAMSDEVICEUSAGEDISTRIBUTIONUSERCOUNTS").expect("teams");
        assert_eq!(
            teams.csv_header(),
            "Report Refresh Date,Web,Windows Phone,Android Phone,iOS,Mac,Windows,Chrome OS,Linux,Report Period"
        );
        let active = report_by_function("getoffice365activeusercounts").expect("active");
        assert_eq!(
            active.csv_header(),
            "Report Refresh Date,Office 365,Exchange,OneDrive,SharePoint,Skype For Business,Yammer,Teams,Report Date,Report Period"
        );
    }

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("chromeOS"), "chrome_os");
        assert_eq!(
            snake_case("office365ActiveUserCounts"),
            "office365_active_user_counts"
        );
        assert_eq!(snake_case("reportRefreshDate"), "report_refresh_date");
    }
}
