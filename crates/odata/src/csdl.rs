//! `$metadata`: the CSDL XML document of namespace `microsoft.graph` for one API version,
//! generated from the registry: the `entity` base type, `reportRoot` with its report
//! collections, every report type of the version, the report functions bound to `reportRoot`,
//! and the container; then namespace `reportroot` with reportroot's own `series` function.

use std::fmt::Write;

use reportroot_model::{Grain, ReportType, V1Return, Version, REPORTS};

/// What a report function's `ReturnType` promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionReturn {
    /// `Edm.Stream`: the CSV (v1.0, Email*, Mailbox*, M365App*, Teams*).
    Stream,
    /// `microsoft.graph.report`, the complex type `{ content: Edm.Stream }`, from a composable
    /// function (v1.0, Office365*, OneDrive*, SharePoint*, Skype*, Yammer*).
    Report,
    /// `Collection(microsoft.graph.<type>)`: the JSON rows (beta).
    Collection,
}

impl FunctionReturn {
    /// What `report`'s function returns on `version`, as Graph declares it on v1.0.
    pub fn of(report: &ReportType, version: Version) -> FunctionReturn {
        match (version, report.v1_return) {
            (Version::Beta, _) => FunctionReturn::Collection,
            (Version::V1, Some(V1Return::Report)) => FunctionReturn::Report,
            (Version::V1, _) => FunctionReturn::Stream,
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The entity type of `report` on `version`: that version's properties in its order (a
/// property only beta has is not part of the v1.0 type).
fn entity_type(out: &mut String, report: &ReportType, version: Version) {
    let _ = writeln!(
        out,
        r#"      <EntityType Name="{}" BaseType="microsoft.graph.entity">"#,
        escape(report.entity)
    );
    for index in report.json_indexes_on(Some(version)) {
        let property = &report.properties[index];
        let _ = writeln!(
            out,
            r#"        <Property Name="{}" Type="{}" Nullable="{}"/>"#,
            escape(property.name),
            property.kind.edm_type(),
            // Counts and durations may be empty, as in Graph's metadata.
            property.kind.is_nullable()
        );
    }
    out.push_str("      </EntityType>\n");
}

fn function(out: &mut String, report: &ReportType, returns: FunctionReturn) {
    let composable = match returns {
        FunctionReturn::Report => r#" IsComposable="true""#,
        _ => "",
    };
    let _ = writeln!(
        out,
        r#"      <Function Name="{}" IsBound="true"{composable}>"#,
        escape(report.function.name)
    );
    out.push_str(
        "        <Parameter Name=\"reportRoot\" Type=\"microsoft.graph.reportRoot\" Nullable=\"false\"/>\n",
    );
    if report.function.takes_period {
        out.push_str(
            "        <Parameter Name=\"period\" Type=\"Edm.String\" Nullable=\"false\"/>\n",
        );
    }
    let return_type = match returns {
        FunctionReturn::Stream => "Edm.Stream".to_owned(),
        FunctionReturn::Report => "microsoft.graph.report".to_owned(),
        FunctionReturn::Collection => format!("Collection({})", report.qualified_name()),
    };
    // CSDL forbids Nullable on a collection of entities (OASIS CSDL XML 4.01 §12.8).
    let nullable = match returns {
        FunctionReturn::Stream | FunctionReturn::Report => r#" Nullable="false""#,
        FunctionReturn::Collection => "",
    };
    let _ = writeln!(
        out,
        r#"        <ReturnType Type="{}"{nullable}/>"#,
        escape(&return_type)
    );
    out.push_str("      </Function>\n");
}

/// The whole `$metadata` document of `version`: only the reports that exist there.
pub fn metadata_xml(version: Version) -> String {
    let reports: Vec<&ReportType> = REPORTS.iter().filter(|r| r.exists_on(version)).collect();
    let mut out = String::with_capacity(8 * 1024);
    out.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n",
        "<edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\">\n",
        // The Core vocabulary describes reportroot's own functions (the last schema).
        "  <edmx:Reference Uri=\"https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml\">\n",
        "    <edmx:Include Namespace=\"Org.OData.Core.V1\" Alias=\"Core\"/>\n",
        "  </edmx:Reference>\n",
        "  <edmx:DataServices>\n",
        "    <Schema Namespace=\"microsoft.graph\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">\n",
        "      <EntityType Name=\"entity\" Abstract=\"true\">\n",
        "        <Key>\n          <PropertyRef Name=\"id\"/>\n        </Key>\n",
        "        <Property Name=\"id\" Type=\"Edm.String\" Nullable=\"false\"/>\n",
        "      </EntityType>\n",
        "      <EntityType Name=\"reportRoot\" BaseType=\"microsoft.graph.entity\">\n",
    ));
    for report in &reports {
        let _ = writeln!(
            out,
            r#"        <NavigationProperty Name="{}" Type="Collection({})" ContainsTarget="true"/>"#,
            escape(report.entity),
            escape(&report.qualified_name())
        );
    }
    out.push_str("      </EntityType>\n");
    if reports
        .iter()
        .any(|r| FunctionReturn::of(r, version) == FunctionReturn::Report)
    {
        out.push_str(concat!(
            "      <ComplexType Name=\"report\">\n",
            "        <Property Name=\"content\" Type=\"Edm.Stream\"/>\n",
            "      </ComplexType>\n",
        ));
    }
    for report in &reports {
        entity_type(&mut out, report, version);
    }
    for report in &reports {
        function(&mut out, report, FunctionReturn::of(report, version));
    }
    out.push_str("      <EntityContainer Name=\"GraphService\">\n");
    out.push_str("        <Singleton Name=\"reports\" Type=\"microsoft.graph.reportRoot\"/>\n");
    for report in &reports {
        let _ = writeln!(
            out,
            r#"        <EntitySet Name="{}" EntityType="{}"/>"#,
            escape(report.entity),
            escape(&report.qualified_name())
        );
    }
    out.push_str("      </EntityContainer>\n    </Schema>\n");
    series_schema(&mut out, &reports);
    out.push_str("  </edmx:DataServices>\n</edmx:Edmx>\n");
    out
}

/// reportroot's own namespace: the function `reportroot.series`, bound to every report's
/// entity set (one overload per entity type), described with the Core vocabulary.
fn series_schema(out: &mut String, reports: &[&ReportType]) {
    out.push_str(
        "    <Schema Namespace=\"reportroot\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">\n",
    );
    for report in reports {
        let collection = escape(&format!("Collection({})", report.qualified_name()));
        let per_period = report.grain == Grain::PerPeriod;
        let _ = writeln!(out, r#"      <Function Name="series" IsBound="true">"#);
        let _ = writeln!(
            out,
            r#"        <Parameter Name="bindingParameter" Type="{collection}" Nullable="false"/>"#
        );
        for (name, about) in [
            ("from", "The first date of the series."),
            ("to", "The last date of the series, inclusive."),
        ] {
            let _ = writeln!(
                out,
                r#"        <Parameter Name="{name}" Type="Edm.Date" Nullable="false">"#
            );
            let _ = writeln!(
                out,
                r#"          <Annotation Term="Core.Description" String="{about}"/>"#
            );
            out.push_str("        </Parameter>\n");
        }
        optional(out, "interval", "day", "'day', 'week' (ISO, Monday to Sunday) or 'month': one row per bucket, the row of its latest date.");
        if per_period {
            optional(
                out,
                "period",
                "D7",
                "The report period of the rows: D7, D30, D90 or D180.",
            );
        }
        let _ = writeln!(out, r#"        <ReturnType Type="{collection}"/>"#);
        let _ = writeln!(
            out,
            r#"        <Annotation Term="Core.Description" String="{}"/>"#,
            escape(series_description(report))
        );
        out.push_str("      </Function>\n");
    }
    out.push_str("    </Schema>\n");
}

/// What the series of `report` holds, by grain.
fn series_description(report: &ReportType) -> &'static str {
    match report.grain {
        Grain::PerDay => "reportroot's history of this report: for each reportDate in [from, to] (and dimension value), the row of the latest refresh that reports it, whatever its period; ascending by reportDate, then dimension value. At most 20000 rows.",
        Grain::PerPeriod => "reportroot's history of this report: one row per reportRefreshDate in [from, to], of the given period; ascending by date. At most 20000 rows.",
        Grain::PerDimension => "reportroot's history of this report: one row per reportRefreshDate in [from, to] and dimension value; ascending by date, then dimension value. At most 20000 rows.",
    }
}

/// An optional string parameter with its default and description.
fn optional(out: &mut String, name: &str, default: &str, about: &str) {
    let _ = writeln!(
        out,
        r#"        <Parameter Name="{name}" Type="Edm.String">"#
    );
    let _ = writeln!(
        out,
        r#"          <Annotation Term="Core.Description" String="{}"/>"#,
        escape(about)
    );
    let _ = writeln!(
        out,
        r#"          <Annotation Term="Core.OptionalParameter"><Record><PropertyValue Property="DefaultValue" String="{default}"/></Record></Annotation>"#
    );
    out.push_str("        </Parameter>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_every_registry_entry() {
        let xml = metadata_xml(Version::Beta);
        assert!(xml.contains(r#"<Property Name="assigned" Type="Edm.Int64" Nullable="true"/>"#));
        assert!(xml
            .contains(r#"<Property Name="reportRefreshDate" Type="Edm.Date" Nullable="false"/>"#));
        for report in REPORTS {
            assert!(xml.contains(&format!("<EntityType Name=\"{}\"", report.entity)));
            assert!(xml.contains(&format!("<Function Name=\"{}\"", report.function.name)));
            for property in report.properties {
                assert!(xml.contains(&format!(
                    "<Property Name=\"{}\" Type=\"{}\" Nullable=\"{}\"/>",
                    property.name,
                    property.kind.edm_type(),
                    property.kind.is_nullable()
                )));
            }
        }
        assert!(xml.contains("<Property Name=\"chromeOS\" Type=\"Edm.Int64\""));
        assert!(metadata_xml(Version::V1).contains("Edm.Stream"));
        // Balanced elements.
        assert_eq!(
            xml.matches("<EntityType").count(),
            xml.matches("</EntityType>").count()
        );
        assert_eq!(
            xml.matches("<Function ").count(),
            xml.matches("</Function>").count()
        );
    }
}
