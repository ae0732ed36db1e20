//! The registry: one entry per report type. Routes, validation, JSON, CSV, `$metadata`, SQL
//! schema and demo data are all derived from these entries. The entries themselves are
//! generated at build time (`build.rs`) from the facts in `registry/reports.json`, so adding
//! another of Graph's `get…Counts` reports is one more entry in that file.

/// The kind of a property's values; it fixes the EDM type and the validation rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `Edm.Date`, `YYYY-MM-DD`.
    Date,
    /// `Edm.Int64` holding a count: never negative.
    Count,
    /// `Edm.Int32` holding a count: never negative, at most `i32::MAX`.
    Count32,
    /// `Edm.String`, free text.
    Text,
    /// `Edm.String` holding a report period: `"7"`, `"30"`, `"90"` or `"180"`.
    Period,
    /// `Edm.Duration`, kept as Graph's CSV writes it: `hh:mm:ss` (hours may exceed 23 and have
    /// more than two digits). Stored as text; `$filter` compares it as a number of seconds.
    Duration,
}

impl ValueKind {
    /// The EDM type name used in `$metadata` and error messages.
    pub fn edm_type(self) -> &'static str {
        match self {
            ValueKind::Date => "Edm.Date",
            ValueKind::Count => "Edm.Int64",
            ValueKind::Count32 => "Edm.Int32",
            ValueKind::Text | ValueKind::Period => "Edm.String",
            ValueKind::Duration => "Edm.Duration",
        }
    }

    /// Whether a property of this kind may hold [`crate::Value::Null`]: counts and durations,
    /// which Graph's CSVs leave empty where it has no figure (`Nullable="true"` in its
    /// `$metadata`). Dates, periods and dimension text are always required.
    pub fn is_nullable(self) -> bool {
        matches!(
            self,
            ValueKind::Count | ValueKind::Count32 | ValueKind::Duration
        )
    }

    /// Whether values are integers (`Edm.Int64` or `Edm.Int32`).
    pub fn is_count(self) -> bool {
        matches!(self, ValueKind::Count | ValueKind::Count32)
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
    /// A duration: about this many minutes per user of the tenant.
    Duration(f64),
    /// A stock rather than activity (all mailboxes, sites, licensed users): this share of the
    /// tenant's users, without the weekend dip or per-column jitter, so that reports that
    /// split the same stock add up to it.
    Stock(f64),
    /// The stock `total` (a share, as [`DemoSpec::Stock`]) less the row's counts at `minus`:
    /// inactive = licensed − active; mailboxes under quota = all − those in other states.
    Remainder {
        /// The stock, as a share of the tenant's users.
        total: f64,
        /// Positions of the counts taken off it.
        minus: &'static [usize],
    },
}

/// One property of a report type.
#[derive(Debug, Clone, Copy)]
pub struct Property {
    /// The JSON / OData name, e.g. `reportRefreshDate`.
    pub name: &'static str,
    /// The SQL column name: [`snake_case`] of the name, `report_refresh_date`.
    pub column: &'static str,
    /// The kind of its values.
    pub kind: ValueKind,
    /// The column title in Graph's CSV, e.g. `Report Refresh Date`.
    pub csv_column: &'static str,
    /// How demo data fills it.
    pub demo: DemoSpec,
    /// Whether Graph's CSV has the column: `false` for the few properties reportroot adds to
    /// tell rows apart where the CSV does not (see `decisions` in `registry/reports.json`).
    pub in_csv: bool,
    /// Whether the catalog found no source for the JSON name or EDM type and inferred them.
    pub edm_inferred: bool,
    /// Other spellings of the CSV title found in Graph's docs, accepted on import.
    pub csv_aliases: &'static [&'static str],
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

/// An API version of Microsoft Graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `/v1.0`.
    V1,
    /// `/beta`.
    Beta,
}

impl Version {
    /// Both versions.
    pub const ALL: [Version; 2] = [Version::V1, Version::Beta];

    /// The path segment: `v1.0` or `beta`.
    pub fn segment(self) -> &'static str {
        match self {
            Version::V1 => "v1.0",
            Version::Beta => "beta",
        }
    }
}

/// What one row of a report stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    /// One row per day of the period (`reportDate`), per dimension value if there is one.
    PerDay,
    /// One row for the whole period.
    PerPeriod,
    /// One row per dimension value (`productType`).
    PerDimension,
}

/// The v1.0 return type of a report function, as Graph's v1.0 metadata declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Return {
    /// `graph.report`, the complex type `{ content: Edm.Stream }`; the function is composable.
    Report,
    /// `Edm.Stream`.
    Stream,
}

/// A version's columns, as positions in [`ReportType::properties`].
#[derive(Debug, Clone, Copy)]
pub struct VersionColumns {
    /// The version.
    pub version: Version,
    /// The CSV columns, in Graph's order for this version.
    pub csv: &'static [usize],
    /// The JSON properties, in order.
    pub json: &'static [usize],
}

/// One report type: an entity type of namespace `microsoft.graph` deriving from `entity`.
#[derive(Debug)]
pub struct ReportType {
    /// The entity type name, which is also the entity-set name under `/reports`: the function
    /// name without `get`, first letter lower-case.
    pub entity: &'static str,
    /// The SQL table name: [`snake_case`] of the entity name.
    pub table: &'static str,
    /// The properties other than `id`: the union over the versions, in CSV column order.
    pub properties: &'static [Property],
    /// The properties whose values identify a row within a tenant: the refresh date, then the
    /// dimension, report date and period where the report has them.
    pub natural_key: &'static [&'static str],
    /// The property holding the refresh date a row was reported on.
    pub refresh_date: &'static str,
    /// The report function serving this type.
    pub function: ReportFunction,
    /// The API versions the function and its entity set exist on.
    pub versions: &'static [Version],
    /// What one row stands for.
    pub grain: Grain,
    /// The dimension property (`productType`, `siteType`), when rows are split by one.
    pub dimension: Option<&'static str>,
    /// The family the report belongs to in Graph's catalog (`Teams`, `OneDrive`, …): the
    /// dashboard's overview shows one tile per family.
    pub family: &'static str,
    /// The array holding the per-row objects in the nested beta JSON shape (`userCounts`), or
    /// `None` for the flat `value[...]` shape.
    pub json_container: Option<&'static str>,
    /// Most refresh dates of demo data (`None`: as many as asked): keeps `demo` quick with
    /// dozens of per-day reports, each refresh of which holds 307 rows.
    pub demo_days: Option<u32>,
    /// The v1.0 return type; `None` when the function is beta-only.
    pub v1_return: Option<V1Return>,
    /// The CSV and JSON columns of each version the report exists on.
    pub columns: &'static [VersionColumns],
    /// Older CSV column sets (titles) Graph has written, which import accepts: a count column
    /// they lack reads as 0.
    pub older_csv_columns: &'static [&'static [&'static str]],
}

include!(concat!(env!("OUT_DIR"), "/reports.rs"));

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

    /// Position of the activity date of a per-day report (`reportDate`): its one date
    /// property other than the refresh date. Graph reports a day only on or after it, so a
    /// row's activity date is normally not after its refresh date.
    pub fn activity_date_index(&self) -> Option<usize> {
        if self.grain != Grain::PerDay {
            return None;
        }
        let refresh = self.refresh_date_index();
        self.properties
            .iter()
            .enumerate()
            .position(|(i, p)| i != refresh && p.kind == ValueKind::Date)
    }

    /// Position of the period property, when the report has one.
    pub fn period_index(&self) -> Option<usize> {
        self.properties
            .iter()
            .position(|p| p.kind == ValueKind::Period)
    }

    /// The CSV header line (no BOM, no line end).
    pub fn csv_header(&self) -> String {
        self.csv_properties()
            .map(|p| p.csv_column)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The properties Graph's CSV has a column for (in any version), in union order.
    pub fn csv_properties(&self) -> impl Iterator<Item = &'static Property> {
        self.properties.iter().filter(|p| p.in_csv)
    }

    /// Whether the report (its function and entity set) exists on `version`.
    pub fn exists_on(&self, version: Version) -> bool {
        self.versions.contains(&version)
    }

    /// The columns of `version`, when the report exists there.
    pub fn columns_on(&self, version: Version) -> Option<&'static VersionColumns> {
        self.columns.iter().find(|c| c.version == version)
    }

    /// The JSON properties of `version`, in that version's order (`None` when the report does
    /// not exist there). Properties another version adds are absent: a stored row holds the
    /// union, each version shows its own (e.g. getOffice365GroupsActivityCounts: 7 on v1.0,
    /// 9 on beta). The natural key is in every version's list.
    pub fn json_on(&self, version: Version) -> Option<&'static [usize]> {
        self.columns_on(version).map(|c| c.json)
    }

    /// Whether the property at `index` is one of `version`'s JSON properties; every property
    /// is for `None` (the union: what the CLI exports without `--version`) and for a version
    /// the report does not exist on.
    pub fn has_on(&self, version: Option<Version>, index: usize) -> bool {
        match version.and_then(|v| self.json_on(v)) {
            Some(json) => json.contains(&index),
            None => index < self.properties.len(),
        }
    }

    /// Calls `each` with the position of every JSON property of `version` in its order, or
    /// of every property in registry order for `None`.
    pub fn for_each_json_on(&self, version: Option<Version>, mut each: impl FnMut(usize)) {
        match version.and_then(|v| self.json_on(v)) {
            Some(json) => json.iter().for_each(|&i| each(i)),
            None => (0..self.properties.len()).for_each(each),
        }
    }

    /// Positions of the JSON properties of `version` in its order (every property for `None`).
    pub fn json_indexes_on(&self, version: Option<Version>) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.properties.len());
        self.for_each_json_on(version, |i| out.push(i));
        out
    }

    /// The CSV header line of `version` (no BOM, no line end), when the report exists there.
    pub fn csv_header_on(&self, version: Version) -> Option<String> {
        self.columns_on(version).map(|c| {
            c.csv
                .iter()
                .map(|&i| self.properties[i].csv_column)
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// The SQL table name: the entity name in snake case.
    pub fn table_name(&self) -> &'static str {
        self.table
    }
}

impl Property {
    /// The SQL column name: the property name in snake case.
    pub fn column_name(&self) -> &'static str {
        self.column
    }
}

pub use crate::snake_case::snake_case;

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
            // A property some version lacks is stored null for rows written on that version:
            // it must be nullable, and never part of the key or the function's order.
            for version in report.versions {
                let json = report.json_on(*version).expect("columns of each version");
                for (i, property) in report.properties.iter().enumerate() {
                    if !json.contains(&i) {
                        assert!(
                            property.kind.is_nullable(),
                            "{} {}",
                            report.entity,
                            property.name
                        );
                        assert!(!report.natural_key.contains(&property.name));
                        assert!(report
                            .function
                            .order_by
                            .iter()
                            .all(|k| k.property != property.name));
                    }
                }
            }
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
    fn the_sql_names_are_the_snake_case_of_the_registry_names() {
        for report in REPORTS {
            assert_eq!(report.table_name(), snake_case(report.entity));
            for property in report.properties {
                assert_eq!(property.column_name(), snake_case(property.name));
            }
        }
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
