//! URL resolution: which resource a path names. Graph's paths carry function calls and key
//! predicates in segments (`getOffice365ActiveUserCounts(period='D7')`), so segments are
//! resolved here rather than by a route table.

use reportroot_model::{find_report, report_by_function, ReportType, Version};

use crate::error::ApiError;

/// The API version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `/v1.0`.
    V1,
    /// `/beta`.
    Beta,
}

impl ApiVersion {
    /// The path segment.
    pub fn segment(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }

    /// The registry's name for the version.
    pub fn model(self) -> Version {
        match self {
            ApiVersion::V1 => Version::V1,
            ApiVersion::Beta => Version::Beta,
        }
    }

    fn parse(segment: &str) -> Option<Self> {
        if segment.eq_ignore_ascii_case("v1.0") {
            Some(ApiVersion::V1)
        } else if segment.eq_ignore_ascii_case("beta") {
            Some(ApiVersion::Beta)
        } else {
            None
        }
    }
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/reports`.
    ReportRoot,
    /// An entity set.
    Collection(&'static ReportType),
    /// One entity, by the id text in the URL.
    Entity(&'static ReportType, String),
    /// `/reports/{set}/$count`.
    Count(&'static ReportType),
    /// A report function with its raw argument list (`None` when written without parentheses).
    Function(&'static ReportType, Option<String>),
    /// `/reports/{set}/reportroot.series(…)` with its raw argument list.
    Series(&'static ReportType, String),
    /// `$metadata`.
    Metadata,
    /// `$batch`.
    Batch,
}

impl Target {
    /// The route template it matched, for logs: `/reports/office365ActiveUserCounts/{id}`.
    pub fn route(&self) -> String {
        match self {
            Target::ReportRoot => "/reports".to_owned(),
            Target::Collection(report) => format!("/reports/{}", report.entity),
            Target::Entity(report, _) => format!("/reports/{}/{{id}}", report.entity),
            Target::Count(report) => format!("/reports/{}/$count", report.entity),
            Target::Function(report, _) => format!("/reports/{}(…)", report.function.name),
            Target::Series(report, _) => format!("/reports/{}/reportroot.series(…)", report.entity),
            Target::Metadata => "/$metadata".to_owned(),
            Target::Batch => "/$batch".to_owned(),
        }
    }
}

/// A resolved path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The version segment.
    pub version: ApiVersion,
    /// What it names.
    pub target: Target,
}

/// Splits `name(args)` into the name and the text between the parentheses.
fn split_call(segment: &str) -> (&str, Option<&str>) {
    match segment.find('(') {
        Some(open) if segment.ends_with(')') => (
            &segment[..open],
            Some(&segment[open + 1..segment.len() - 1]),
        ),
        _ => (segment, None),
    }
}

/// Resolves the percent-decoded segments of a path (the leading empty one removed).
pub fn resolve(segments: &[String]) -> Result<Resolved, ApiError> {
    let (first, rest) = segments
        .split_first()
        .ok_or_else(|| ApiError::unknown_segment(""))?;
    let version = ApiVersion::parse(first).ok_or_else(|| ApiError::unknown_segment(first))?;
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let target = match rest.as_slice() {
        [metadata] if metadata.eq_ignore_ascii_case("$metadata") => Target::Metadata,
        [batch] if batch.eq_ignore_ascii_case("$batch") => Target::Batch,
        [reports] if reports.eq_ignore_ascii_case("reports") => Target::ReportRoot,
        [reports, tail @ ..] if reports.eq_ignore_ascii_case("reports") && !tail.is_empty() => {
            resolve_under_root(version, tail, true)?
        }
        tail if !tail.is_empty() => resolve_under_root(version, tail, false)?,
        _ => return Err(ApiError::unknown_segment(first)),
    };
    Ok(Resolved { version, target })
}

/// Graph's namespace, which may qualify a bound function's name.
const NAMESPACE_PREFIX: &str = "microsoft.graph.";

/// `name` without a leading `microsoft.graph.` (any ASCII case), as OData allows for bound
/// functions: `/reports/microsoft.graph.getOffice365ActiveUserCounts(period='D7')`.
fn unqualified(name: &str) -> &str {
    match name.get(..NAMESPACE_PREFIX.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(NAMESPACE_PREFIX) => {
            &name[NAMESPACE_PREFIX.len()..]
        }
        _ => name,
    }
}

/// The argument list of a `reportroot.series(…)` segment (the namespace in any ASCII case).
fn series_args(segment: &str) -> Option<&str> {
    let (name, args) = split_call(segment);
    name.eq_ignore_ascii_case(crate::series::SERIES_FUNCTION)
        .then_some(args)
        .flatten()
}

/// Resolves what follows `/reports` (or the version, for the root-level entity sets). A report
/// that does not exist on `version` (the beta-only ones on v1.0) is an unknown segment there,
/// as in Graph.
fn resolve_under_root(
    version: ApiVersion,
    tail: &[&str],
    under_reports: bool,
) -> Result<Target, ApiError> {
    let (name, args) = split_call(tail[0]);
    let on_version = |report: &&ReportType| report.exists_on(version.model());
    if under_reports {
        if let Some(report) = report_by_function(unqualified(name)).filter(on_version) {
            return match tail {
                [_] => Ok(Target::Function(report, args.map(str::to_owned))),
                [_, next, ..] => Err(ApiError::unknown_segment(next)),
                [] => Err(ApiError::unknown_segment(name)),
            };
        }
    }
    let report = find_report(name)
        .filter(on_version)
        .ok_or_else(|| ApiError::unknown_segment(tail[0]))?;
    let key = args.map(|a| a.trim_matches('\'').to_owned());
    match (tail, key) {
        ([_], None) => Ok(Target::Collection(report)),
        ([_], Some(key)) => Ok(Target::Entity(report, key)),
        ([_, count], None) if count.eq_ignore_ascii_case("$count") => Ok(Target::Count(report)),
        ([_, call], None) if series_args(call).is_some() => Ok(Target::Series(
            report,
            series_args(call).unwrap_or_default().to_owned(),
        )),
        ([_, id], None) => Ok(Target::Entity(report, (*id).to_owned())),
        ([_, next, ..], _) => Err(ApiError::unknown_segment(next)),
        ([], _) => Err(ApiError::unknown_segment("")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        path.split('/').skip(1).map(str::to_owned).collect()
    }

    #[test]
    fn resolves_graph_paths() {
        let r = resolve(&segments("/beta/reports/Office365ActivationsUserCounts")).expect("ok");
        assert_eq!(r.version, ApiVersion::Beta);
        assert!(
            matches!(r.target, Target::Collection(t) if t.entity == "office365ActivationsUserCounts")
        );
        let r = resolve(&segments("/beta/office365ActivationsUserCounts/abc")).expect("ok");
        assert!(matches!(r.target, Target::Entity(_, ref id) if id == "abc"));
        let r = resolve(&segments(
            "/v1.0/reports/getOffice365ActiveUserCounts(period='D7')",
        ))
        .expect("ok");
        assert!(matches!(r.target, Target::Function(_, Some(ref a)) if a == "period='D7'"));
        let r = resolve(&segments(
            "/v1.0/reports/microsoft.graph.getOffice365ActiveUserCounts(period='D7')",
        ))
        .expect("ok");
        assert!(matches!(r.target, Target::Function(_, Some(ref a)) if a == "period='D7'"));
        let r = resolve(&segments(
            "/v1.0/reports/Microsoft.Graph.getOffice365ActivationsUserCounts()",
        ))
        .expect("ok");
        assert!(matches!(r.target, Target::Function(_, Some(ref a)) if a.is_empty()));
        let r = resolve(&segments("/v1.0/reports/office365ActiveUserCounts('x')")).expect("ok");
        assert!(matches!(r.target, Target::Entity(_, ref id) if id == "x"));
        let r = resolve(&segments("/v1.0/reports/office365ActiveUserCounts/$count")).expect("ok");
        assert!(matches!(r.target, Target::Count(_)));
        let r = resolve(&segments(
            "/beta/reports/office365ActiveUserCounts/reportroot.series(from=2024-01-01,to=2024-12-31)",
        ))
        .expect("ok");
        assert!(
            matches!(r.target, Target::Series(_, ref a) if a == "from=2024-01-01,to=2024-12-31")
        );
        for bad in [
            "/v2/reports",
            "/v1.0/reports/nope",
            "/v1.0/reports/office365ActiveUserCounts/a/b",
            "/v1.0/getOffice365ActiveUserCounts(period='D7')",
            "/v1.0/reports/microsoft.getOffice365ActiveUserCounts(period='D7')",
            "/v1.0/reports/microsoft.graph.office365ActiveUserCounts",
        ] {
            assert!(resolve(&segments(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_report_resolves_on_exactly_its_versions() {
        for report in reportroot_model::REPORTS {
            for version in [ApiVersion::V1, ApiVersion::Beta] {
                let exists = report.exists_on(version.model());
                let v = version.segment();
                let function = format!("/{v}/reports/{}()", report.function.name);
                let set = format!("/{v}/reports/{}", report.entity);
                let root_set = format!("/{v}/{}", report.entity);
                for path in [function, set, root_set] {
                    let resolved = resolve(&segments(&path));
                    assert_eq!(resolved.is_ok(), exists, "{path}");
                    if let Err(error) = resolved {
                        let segment = path.rsplit('/').next().unwrap_or_default();
                        assert_eq!(
                            error.message,
                            format!("Resource not found for the segment '{segment}'."),
                            "{path}"
                        );
                    }
                }
            }
        }
    }
}
