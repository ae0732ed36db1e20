//! Which queries may read a tenant's whole history: the ones the API admits only a few at a
//! time (issue 16, "bounded cost").
//!
//! Every index of a report table leads with the tenant and continues with natural-key columns
//! (refresh date, dimension, activity date, period; see [`crate::sql`]). A filter made only of
//! comparisons of those columns with literals is served by an index range, and the default
//! order or an `$orderby` of key columns is read in index order, so a page stops after the
//! page. Anything else — a count or a duration in `$filter` (`teams gt 100`), a string
//! function (`contains`), an `$orderby` of a count — is tested row by row or sorted, and may
//! read every row of the tenant: 0.5 s for 1.12M rows on an idle core, up to
//! [`crate::READ_TIME_LIMIT`] under load.

use reportroot_model::ReportType;
use reportroot_odata::query::{Expr, Operand, OrderKey, PropertyRef};

use crate::{ListQuery, Scope};

/// The largest `$skip` a page may have and still cost about a page. Why: `$skip` is an
/// `OFFSET`, which reads every row it skips: `$skip=1000000` read 1M index entries of a
/// 10-year tenant (~0.3 s), as much as a scan, and was admitted without the scan limits.
/// Server-driven paging (`$skiptoken`) resumes by keyset and never skips.
pub const MAX_CHEAP_SKIP: u64 = 1_000;

/// Whether a listing may read far more rows than it returns (see the module's text), or skip
/// more than [`MAX_CHEAP_SKIP`] rows. The latest report (a report function's rows: one
/// refresh date) is never a scan.
pub fn list_may_scan(report: &ReportType, query: &ListQuery) -> bool {
    if matches!(query.scope, Scope::Latest { .. }) {
        return false;
    }
    if query.skip > MAX_CHEAP_SKIP {
        return true;
    }
    let keys = report.natural_key_indexes();
    query
        .filter
        .as_ref()
        .is_some_and(|filter| !served_by_index(&keys, filter))
        || query.order_by.iter().any(|key| !is_key(&keys, key))
}

/// Whether a count may read far more rows than a summary or an index range holds.
pub fn count_may_scan(report: &ReportType, scope: Scope, filter: Option<&Expr>) -> bool {
    let query = ListQuery {
        scope,
        filter: filter.cloned(),
        ..ListQuery::default()
    };
    list_may_scan(report, &query)
}

fn is_key(keys: &[usize], key: &OrderKey) -> bool {
    match key.property {
        PropertyRef::Id => true,
        PropertyRef::Index(i) => keys.contains(&i),
    }
}

/// Whether every leaf of `filter` compares a natural-key column (or `id`) with literals.
fn served_by_index(keys: &[usize], filter: &Expr) -> bool {
    let key_operand = |operand: &Operand| match operand {
        Operand::Property(PropertyRef::Id) => true,
        Operand::Property(PropertyRef::Index(i)) => keys.contains(i),
        Operand::Literal(_) => true,
        Operand::Call(..) => false,
    };
    match filter {
        Expr::Compare { left, right, .. } => key_operand(left) && key_operand(right),
        Expr::In { operand, .. } => key_operand(operand),
        Expr::Match { .. } => false,
        Expr::And(a, b) | Expr::Or(a, b) => served_by_index(keys, a) && served_by_index(keys, b),
        Expr::Not(inner) => served_by_index(keys, inner),
        Expr::Literal(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reportroot_model::registry;
    use reportroot_odata::query::parse_query_options;

    fn query(report: &ReportType, text: &str) -> ListQuery {
        let pairs: Vec<(String, String)> = url_pairs(text);
        let options = parse_query_options(report, None, &pairs).expect("options");
        ListQuery {
            filter: options.filter,
            order_by: options.order_by,
            skip: options.skip.unwrap_or(0),
            ..ListQuery::default()
        }
    }

    fn url_pairs(text: &str) -> Vec<(String, String)> {
        text.split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn key_ranges_are_indexed_and_counts_or_string_functions_scan() {
        let report = registry::find_report("office365ActiveUserCounts").expect("report");
        let indexed = [
            "",
            "$filter=reportDate ge 2020-01-01",
            "$filter=reportDate ge 2020-01-01 and reportPeriod eq '7'",
            "$filter=reportRefreshDate eq 2024-01-01 or not (reportDate lt 2020-01-01)",
            "$orderby=reportDate desc",
            "$skip=1000",
        ];
        for text in indexed {
            assert!(!list_may_scan(report, &query(report, text)), "{text}");
        }
        let scans = [
            "$filter=teams gt 100",
            "$filter=reportDate ge 2020-01-01 and teams gt 100",
            "$filter=reportDate ge 2020-01-01 or teams eq null",
            "$filter=contains(reportPeriod,'7')",
            "$orderby=office365 desc",
            "$skip=1001",
        ];
        for text in scans {
            assert!(list_may_scan(report, &query(report, text)), "{text}");
        }
        let mut latest = query(report, "$filter=teams gt 100");
        latest.scope = Scope::Latest { period: None };
        assert!(!list_may_scan(report, &latest));
    }
}
