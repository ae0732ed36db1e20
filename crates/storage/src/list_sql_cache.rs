//! A bounded cache of compiled page statements ([`crate::query_sql::compile_list_with`]) by
//! report and query, shared by every tenant: the tenant is the statement's first parameter
//! and nothing else of it, so a statement compiled for one tenant serves another with that
//! parameter replaced ([`ListSqlCache::get_or_compile`]).
//!
//! Why: compiling a page's statement (the skip-scan's recursive CTE, the refresh floor's
//! subquery, each piece `format!`ed) was 10 % of an uncached `$filter` page's instructions
//! under callgrind, 24k a request on 1 tenant × 10 years, more than the JSON of its ten rows.
//! The same queries come again and again — a dashboard's charts and tables on every refresh,
//! an MSP tool asking each tenant the same — and the database's own statement caches
//! (rusqlite's `prepare_cached`, tokio-postgres' prepared statements) are keyed by the text
//! this makes. Measurements in bench/RESULTS.md ("Page statements compiled once; pages of
//! one period as a skip-scan").
//!
//! Why the whole query as the key, values included, rather than its shape with the values
//! taken out: the compilers choose their SQL by values too (a closed range that is one date,
//! a ceiling 180 days on, a cursor with a null), and a key of the inputs themselves needs no
//! proof that a choice does not depend on one.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use hashbrown::{Equivalent, HashMap};
use uuid::Uuid;

use crate::query_sql::{CompiledSql, SqlParam};
use crate::ListQuery;

/// At most this many statements are kept; a new one then takes the place of one of them.
/// Why this many: a dashboard's page asks a handful of queries of each report it shows, and
/// a statement and its key are a few KB at most ([`MAX_CACHED_SQL`]), so 512 are under 8 MB
/// however the queries are written.
pub const LIST_SQL_CACHE_ENTRIES: usize = 512;

/// A statement longer than this is compiled every time and not kept (a `$filter` of a long
/// `in (…)` list): it keeps the cache's memory bounded, and its compiling is small beside
/// its reading.
pub const MAX_CACHED_SQL: usize = 8 * 1024;

/// Page statements by report (its index in the registry) and query; see the module's doc.
#[derive(Debug, Default)]
pub struct ListSqlCache {
    statements: Mutex<HashMap<Key, Arc<CompiledSql>>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Key {
    report: usize,
    query: ListQuery,
}

/// A [`Key`] borrowed from the request, so that a hit clones nothing of the query.
struct KeyRef<'a> {
    report: usize,
    query: &'a ListQuery,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        KeyRef {
            report: self.report,
            query: &self.query,
        }
        .hash(state);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.report.hash(state);
        self.query.hash(state);
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.report == key.report && *self.query == key.query
    }
}

impl ListSqlCache {
    /// The statement of `query` on report number `report` for `tenant`: from the cache with
    /// the tenant parameter replaced, or compiled by `compile` (for `tenant`) and kept when
    /// it can serve other tenants (its first parameter is the tenant, and no other is).
    pub fn get_or_compile(
        &self,
        report: usize,
        tenant: Uuid,
        query: &ListQuery,
        compile: impl FnOnce() -> CompiledSql,
    ) -> CompiledSql {
        let key = KeyRef { report, query };
        let cached = self.lock().get(&key).cloned();
        if let Some(cached) = cached {
            return for_tenant(&cached, tenant);
        }
        let compiled = compile();
        if serves_any_tenant(&compiled, tenant) {
            let mut statements = self.lock();
            if statements.len() >= LIST_SQL_CACHE_ENTRIES {
                // Any one: the cost of a wrong choice is one compile, and an order of use
                // would cost every hit a write.
                let victim = statements
                    .iter()
                    .next()
                    .map(|(key, _)| (key.report, key.query.clone()));
                if let Some((report, query)) = victim {
                    statements.remove(&KeyRef {
                        report,
                        query: &query,
                    });
                }
            }
            statements.insert(
                Key {
                    report,
                    query: query.clone(),
                },
                Arc::new(compiled.clone()),
            );
        }
        compiled
    }

    /// How many statements are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<CompiledSql>>> {
        // A panic elsewhere cannot leave the map half-changed in a way that matters: every
        // entry is a whole statement.
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `compiled` (for `tenant`) is another tenant's statement once its first parameter
/// is replaced: the tenant is that parameter, no other parameter holds its id (which could be
/// a second binding of it), and the text is short enough to keep ([`MAX_CACHED_SQL`]).
/// Values never enter the text (`crate::query_sql`), so the tenant is nowhere else.
fn serves_any_tenant(compiled: &CompiledSql, tenant: Uuid) -> bool {
    let tenant = SqlParam::Uuid(tenant);
    compiled.sql.len() <= MAX_CACHED_SQL
        && compiled.params.first() == Some(&tenant)
        && !compiled.params[1..].contains(&tenant)
}

fn for_tenant(cached: &CompiledSql, tenant: Uuid) -> CompiledSql {
    let mut params = cached.params.clone();
    params[0] = SqlParam::Uuid(tenant);
    CompiledSql {
        sql: cached.sql.clone(),
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reportroot_model::Value;

    fn compiled_for(tenant: Uuid, extra: Vec<SqlParam>) -> CompiledSql {
        let mut params = vec![SqlParam::Uuid(tenant)];
        params.extend(extra);
        CompiledSql {
            sql: "SELECT 1 WHERE ?1 IS NOT NULL".to_owned(),
            params,
        }
    }

    #[test]
    fn a_statement_compiled_for_one_tenant_serves_another_with_its_own_id() {
        let cache = ListSqlCache::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let query = ListQuery {
            limit: Some(11),
            ..ListQuery::default()
        };
        let first = cache.get_or_compile(0, a, &query, || compiled_for(a, vec![SqlParam::Int(11)]));
        assert_eq!(first.params[0], SqlParam::Uuid(a));
        let second = cache.get_or_compile(0, b, &query, || unreachable!("kept"));
        assert_eq!(second, compiled_for(b, vec![SqlParam::Int(11)]));
        // Another report or another query is another statement.
        let other = cache.get_or_compile(1, b, &query, || compiled_for(b, vec![]));
        assert_eq!(other.params.len(), 1);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_statement_that_holds_the_tenant_elsewhere_is_not_kept() {
        let cache = ListSqlCache::default();
        let a = Uuid::from_u128(1);
        let query = ListQuery::default();
        cache.get_or_compile(0, a, &query, || compiled_for(a, vec![SqlParam::Uuid(a)]));
        assert!(cache.is_empty());
        // Nor one whose first parameter is not the tenant.
        cache.get_or_compile(0, a, &query, || CompiledSql {
            sql: "SELECT ?1".to_owned(),
            params: vec![SqlParam::Value(Value::Int(1))],
        });
        assert!(cache.is_empty());
        // Nor a long one.
        cache.get_or_compile(0, a, &query, || CompiledSql {
            sql: "x".repeat(MAX_CACHED_SQL + 1),
            params: vec![SqlParam::Uuid(a)],
        });
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_keeps_at_most_its_entries() {
        let cache = ListSqlCache::default();
        let a = Uuid::from_u128(1);
        for skip in 0..(LIST_SQL_CACHE_ENTRIES as u64 + 10) {
            let query = ListQuery {
                skip,
                ..ListQuery::default()
            };
            cache.get_or_compile(0, a, &query, || compiled_for(a, vec![]));
        }
        assert_eq!(cache.len(), LIST_SQL_CACHE_ENTRIES);
    }

    /// The compilers' side of the bargain, over the shapes they choose between: every page
    /// statement that [`serves_any_tenant`] is, for another tenant, exactly what compiling
    /// for that tenant gives; and the common pages are kept.
    #[test]
    fn a_kept_statement_is_what_compiling_for_the_other_tenant_gives() {
        use crate::query_sql::compile_list_with;
        use crate::sql::{Dialect, RowsByPeriod};
        use crate::{Cursor, Scope};
        use reportroot_model::{find_report, Date, Period};
        use reportroot_odata::query::{parse_filter, parse_order_by};

        let (a, b) = (Uuid::from_u128(0xa), Uuid::from_u128(0xb));
        let date = |s: &str| Value::Date(Date::parse(s).expect("date"));
        let cases: &[(&str, &str, &str)] = &[
            ("office365ActiveUserCounts", "", ""),
            ("office365ActiveUserCounts", "reportDate ge 2020-01-01", ""),
            (
                "office365ActiveUserCounts",
                "reportDate gt 2020-01-01 and teams gt 3",
                "",
            ),
            (
                "office365ActiveUserCounts",
                "reportDate ge 2020-01-01 and reportDate le 2020-12-31",
                "",
            ),
            (
                "office365ActiveUserCounts",
                "reportDate ge 2020-01-01 and reportDate le 2020-01-01",
                "",
            ),
            (
                "office365ActiveUserCounts",
                "reportDate ge 2020-01-01 and reportPeriod eq '7'",
                "",
            ),
            (
                "office365ActiveUserCounts",
                "teams gt 100",
                "reportDate desc",
            ),
            ("office365ActiveUserCounts", "", "exchange desc,reportDate"),
            ("office365ActivationsUserCounts", "productType eq 'x'", ""),
            ("oneDriveUsageFileCounts", "siteType eq 'OneDrive'", ""),
            (
                "oneDriveUsageFileCounts",
                "reportDate ge 2020-01-01 and siteType eq 'All'",
                "",
            ),
        ];
        let tables = crate::engine::TableSet::new(Dialect::Sqlite);
        let mut kept = 0;
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for (name, filter, order) in cases {
                let report = find_report(name).expect("report");
                let columns = &tables.get(report).expect("table").columns;
                let base = ListQuery {
                    filter: (!filter.is_empty())
                        .then(|| parse_filter(report, filter).expect("filter")),
                    order_by: if order.is_empty() {
                        Vec::new()
                    } else {
                        parse_order_by(report, order).expect("orderby")
                    },
                    limit: Some(11),
                    ..ListQuery::default()
                };
                let natural = report.natural_key_indexes();
                let cursor = Cursor {
                    values: natural
                        .iter()
                        .map(|&i| match report.properties[i].kind {
                            reportroot_model::ValueKind::Date => date("2021-03-04"),
                            reportroot_model::ValueKind::Period => Value::Text("7".into()),
                            _ => Value::Text("OneDrive".into()),
                        })
                        .collect(),
                    id: Uuid::from_u128(0xc),
                };
                let queries = [
                    base.clone(),
                    ListQuery {
                        after: Some(cursor),
                        ..base.clone()
                    },
                    ListQuery {
                        scope: Scope::Latest {
                            period: report.period_index().map(|_| Period::D7),
                        },
                        ..base.clone()
                    },
                ];
                for query in &queries {
                    let compile = |tenant| {
                        compile_list_with(report, dialect, &RowsByPeriod, columns, tenant, query)
                    };
                    let for_a = compile(a);
                    if serves_any_tenant(&for_a, a) {
                        kept += 1;
                        assert_eq!(for_tenant(&for_a, b), compile(b), "{name} {query:?}");
                    }
                }
            }
        }
        assert_eq!(kept, cases.len() * 3 * 2, "every one of these is kept");
        // A query naming the tenant's id as a row's id is compiled every time.
        let report = find_report("office365ActiveUserCounts").expect("report");
        let query = ListQuery {
            filter: Some(parse_filter(report, &format!("id eq '{a}'")).expect("filter")),
            ..ListQuery::default()
        };
        let columns = &tables.get(report).expect("table").columns;
        let compiled =
            compile_list_with(report, Dialect::Sqlite, &RowsByPeriod, columns, a, &query);
        assert!(!serves_any_tenant(&compiled, a), "{compiled:?}");
    }
}
