//! Compiles the OData query AST to parameterised SQL in either dialect. Values never enter the
//! SQL text: every literal becomes a numbered parameter.

use reportroot_model::{ReportType, Value, ValueKind};
use reportroot_odata::query::{
    CompareOp, Expr, Function, Literal, Operand, OrderKey, PropertyRef, StringMatch, Type,
};
use uuid::Uuid;

use crate::days::{late_index, late_rows, summary_table, DaysSql, REPORTED_WITHIN_DAYS};
use crate::sql::{ahead_index, latest_refresh, Dialect, PeriodRefreshes, RowsByPeriod};
use crate::{Cursor, ListQuery, Scope};

mod skip_scan;

/// A parameter of a compiled statement.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    /// A tenant or entity id.
    Uuid(Uuid),
    /// A property value (dates bind as the backend stores dates).
    Value(Value),
    /// A plain integer (limits, offsets).
    Int(i64),
}

/// SQL text and its parameters, in order (`?1`/`$1` is `params[0]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledSql {
    /// The statement.
    pub sql: String,
    /// Its parameters.
    pub params: Vec<SqlParam>,
}

struct Builder<'a> {
    report: &'a ReportType,
    dialect: Dialect,
    refreshes: &'a dyn PeriodRefreshes,
    sql: String,
    params: Vec<SqlParam>,
    /// A property whose `$filter` comparisons SQLite must not read through an index (written
    /// `+column`); see [`sqlite_reads_in_key_order`].
    unindexed: Option<usize>,
    /// Every property and the id compared as `+column` (SQLite): the skip-scan's `$filter`,
    /// which must leave its loop the natural-key index ([`skip_scan`]).
    all_unindexed: bool,
    /// The index SQLite must read the table through (`INDEXED BY`), see
    /// [`sqlite_period_pages`].
    indexed_by: Option<String>,
}

impl Builder<'_> {
    fn bind(&mut self, param: SqlParam) -> String {
        self.params.push(param);
        self.dialect.param(self.params.len())
    }

    /// A property as `$filter` sees it: ids are strings in OData.
    fn column(&self, property: PropertyRef) -> String {
        match (property, self.dialect) {
            (PropertyRef::Id, Dialect::Postgres) => "id::text".to_owned(),
            // The hyphenated lower-case form of the 16-byte BLOB.
            (PropertyRef::Id, Dialect::Sqlite) => {
                let part = |from: usize, len: usize| format!("substr(hex(id), {from}, {len})");
                format!(
                    "lower({} || '-' || {} || '-' || {} || '-' || {} || '-' || {})",
                    part(1, 8),
                    part(9, 4),
                    part(13, 4),
                    part(17, 4),
                    part(21, 12)
                )
            }
            (PropertyRef::Index(i), Dialect::Sqlite)
                if self.all_unindexed || self.unindexed == Some(i) =>
            {
                format!("+{}", self.report.properties[i].column_name())
            }
            (PropertyRef::Index(i), _) => self.report.properties[i].column_name().to_owned(),
        }
    }

    /// A property as `$orderby` and keyset paging compare it. SQLite compares the id BLOB
    /// itself, which orders as its text form does and keeps paging on the primary key.
    fn order_column(&self, property: PropertyRef) -> String {
        match (property, self.dialect) {
            (PropertyRef::Id, Dialect::Sqlite) => "id".to_owned(),
            // Never `+column`: the order is what the index must deliver.
            (PropertyRef::Index(i), _) => self.report.properties[i].column_name().to_owned(),
            _ => self.column(property),
        }
    }

    /// In SQLite, `id` compared with a canonical id (`id eq '0190…'`) compares the BLOB
    /// itself, which the primary key serves: the canonical text orders as its bytes do. Any
    /// other literal is compared with the id's text form.
    fn id_against_uuid(&mut self, left: &Operand, right: &Operand) -> Option<(String, String)> {
        let canonical = |operand: &Operand| match operand {
            Operand::Literal(Literal::Value(Value::Text(text))) => Uuid::parse_str(text)
                .ok()
                .filter(|id| id.hyphenated().to_string() == *text),
            _ => None,
        };
        let is_id = |operand: &Operand| matches!(operand, Operand::Property(PropertyRef::Id));
        if self.dialect != Dialect::Sqlite {
            return None;
        }
        let column = if self.all_unindexed { "+id" } else { "id" };
        if is_id(left) {
            let id = canonical(right)?;
            Some((column.to_owned(), self.bind(SqlParam::Uuid(id))))
        } else if is_id(right) {
            let id = canonical(left)?;
            Some((self.bind(SqlParam::Uuid(id)), column.to_owned()))
        } else {
            None
        }
    }

    fn id_param(&mut self, id: Uuid) -> String {
        match self.dialect {
            Dialect::Sqlite => self.bind(SqlParam::Uuid(id)),
            Dialect::Postgres => self.bind(SqlParam::Value(Value::Text(id.to_string()))),
        }
    }

    /// Strings order by code point, as in .NET's ordinal comparison; PostgreSQL needs "C".
    fn collate(&self, ty: Type) -> &'static str {
        match (self.dialect, ty) {
            (Dialect::Postgres, Type::String) => " COLLATE \"C\"",
            _ => "",
        }
    }

    /// The collation `$orderby` and keyset paging compare a property in. A period holds
    /// digits only (`7`, `30`, `90`, `180`), which every collation orders as "C" does; left
    /// in the column's own collation it matches the natural-key index, which PostgreSQL
    /// otherwise could not read in order (it sorted the page again: an incremental sort).
    fn order_collate(&self, property: PropertyRef) -> &'static str {
        match property {
            PropertyRef::Index(i) if self.report.properties[i].kind == ValueKind::Period => "",
            // `$orderby` and paging compare the stored `hh:mm:ss` text, as before `$filter`
            // compared durations as seconds.
            PropertyRef::Index(i) if self.report.properties[i].kind == ValueKind::Duration => {
                self.collate(Type::String)
            }
            _ => self.collate(property.ty(self.report)),
        }
    }

    fn literal(&mut self, literal: &Literal) -> String {
        match literal {
            Literal::Value(value) => self.bind(SqlParam::Value(value.clone())),
            Literal::Null => "NULL".to_owned(),
            Literal::Bool(true) => "(1 = 1)".to_owned(),
            Literal::Bool(false) => "(1 = 0)".to_owned(),
            // The parser bounds durations to `MAX_DURATION_SECONDS`, far below `i64::MAX`.
            Literal::Duration(seconds) => {
                self.bind(SqlParam::Int(i64::try_from(*seconds).unwrap_or(i64::MAX)))
            }
        }
    }

    /// A duration column (`hh:mm:ss` text, hours two or more digits) as a number of seconds,
    /// so that `100:00:00` is greater than `99:00:00` and `001:00:00` equals `01:00:00`; NULL
    /// stays NULL. Minutes and seconds are always the last two digit pairs.
    fn duration_seconds(&self, column: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!(
                "(CAST(substr({column}, 1, length({column}) - 6) AS INTEGER) * 3600 + CAST(substr({column}, -5, 2) AS INTEGER) * 60 + CAST(substr({column}, -2) AS INTEGER))"
            ),
            Dialect::Postgres => format!(
                "(CAST(split_part({column}, ':', 1) AS BIGINT) * 3600 + CAST(split_part({column}, ':', 2) AS BIGINT) * 60 + CAST(split_part({column}, ':', 3) AS BIGINT))"
            ),
        }
    }

    fn operand(&mut self, operand: &Operand) -> String {
        match operand {
            Operand::Property(property) if property.ty(self.report) == Type::Duration => {
                self.duration_seconds(&self.column(*property))
            }
            Operand::Property(property) => self.column(*property),
            Operand::Literal(literal) => self.literal(literal),
            Operand::Call(function, argument) => {
                let inner = self.operand(argument);
                match (function, self.dialect) {
                    (Function::ToLower, _) => format!("lower({inner})"),
                    (Function::ToUpper, _) => format!("upper({inner})"),
                    (Function::Year, Dialect::Sqlite) => {
                        format!("CAST(substr({inner}, 1, 4) AS INTEGER)")
                    }
                    (Function::Month, Dialect::Sqlite) => {
                        format!("CAST(substr({inner}, 6, 2) AS INTEGER)")
                    }
                    (Function::Day, Dialect::Sqlite) => {
                        format!("CAST(substr({inner}, 9, 2) AS INTEGER)")
                    }
                    (Function::Year, Dialect::Postgres) => {
                        format!("CAST(EXTRACT(YEAR FROM {inner}) AS BIGINT)")
                    }
                    (Function::Month, Dialect::Postgres) => {
                        format!("CAST(EXTRACT(MONTH FROM {inner}) AS BIGINT)")
                    }
                    (Function::Day, Dialect::Postgres) => {
                        format!("CAST(EXTRACT(DAY FROM {inner}) AS BIGINT)")
                    }
                }
            }
        }
    }

    fn expr(&mut self, expr: &Expr) -> String {
        match expr {
            Expr::Literal(true) => "(1 = 1)".to_owned(),
            Expr::Literal(false) => "(1 = 0)".to_owned(),
            Expr::And(a, b) => format!("({} AND {})", self.expr(a), self.expr(b)),
            Expr::Or(a, b) => format!("({} OR {})", self.expr(a), self.expr(b)),
            Expr::Not(a) => format!("(NOT {})", self.expr(a)),
            Expr::In { operand, list } => {
                // Null-aware, so that `not (x in (…))` keeps OData's meaning when x is null.
                let left = self.operand(operand);
                let items: Vec<String> = list
                    .iter()
                    .filter(|l| **l != Literal::Null)
                    .map(|l| self.literal(l))
                    .collect();
                let mut alternatives = Vec::new();
                if list.contains(&Literal::Null) {
                    alternatives.push(format!("{left} IS NULL"));
                }
                if !items.is_empty() {
                    let guard = if self.nullable(operand) {
                        format!(" AND {left} IS NOT NULL")
                    } else {
                        String::new()
                    };
                    alternatives.push(format!("({left} IN ({}){guard})", items.join(", ")));
                }
                if alternatives.is_empty() {
                    "(1 = 0)".to_owned()
                } else {
                    format!("({})", alternatives.join(" OR "))
                }
            }
            Expr::Match {
                kind,
                target,
                pattern,
            } => {
                let t = self.operand(target);
                let p = self.operand(pattern);
                // No LIKE: OData matching is case-sensitive and has no wildcards.
                match (kind, self.dialect) {
                    (StringMatch::Contains, Dialect::Sqlite) => format!("(instr({t}, {p}) > 0)"),
                    (StringMatch::Contains, Dialect::Postgres) => {
                        format!("(strpos({t}, {p}) > 0)")
                    }
                    (StringMatch::StartsWith, _) => {
                        format!("(substr({t}, 1, length({p})) = {p})")
                    }
                    (StringMatch::EndsWith, Dialect::Sqlite) => format!(
                        "(length({p}) <= length({t}) AND substr({t}, length({t}) - length({p}) + 1) = {p})"
                    ),
                    (StringMatch::EndsWith, Dialect::Postgres) => {
                        format!("(right({t}, length({p})) = {p})")
                    }
                }
            }
            Expr::Compare { op, left, right } => self.compare(*op, left, right),
        }
    }

    fn compare(&mut self, op: CompareOp, left: &Operand, right: &Operand) -> String {
        let is_null = |o: &Operand| matches!(o, Operand::Literal(Literal::Null));
        let equal = matches!(op, CompareOp::Eq);
        match (is_null(left), is_null(right)) {
            (true, true) => {
                return if equal { "(1 = 1)" } else { "(1 = 0)" }.to_owned();
            }
            (true, false) | (false, true) => {
                let other = if is_null(left) { right } else { left };
                let sql = self.operand(other);
                let test = if equal { "IS NULL" } else { "IS NOT NULL" };
                return format!("({sql} {test})");
            }
            (false, false) => {}
        }
        let ty = left.ty(self.report);
        let (l, r) = match self.id_against_uuid(left, right) {
            Some(sides) => sides,
            None => (self.operand(left), self.operand(right)),
        };
        let symbol = match op {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
        };
        let collate = if matches!(op, CompareOp::Eq | CompareOp::Ne) {
            ""
        } else {
            self.collate(ty)
        };
        let (left_null, right_null) = (self.nullable(left), self.nullable(right));
        if !left_null && !right_null {
            return format!("({l}{collate} {symbol} {r}{collate})");
        }
        // A count may be NULL. OData's null is equal to null only and neither greater nor less
        // than anything; SQL's comparisons yield NULL instead, which `not` would keep NULL. So
        // every comparison here is made two-valued: `ne` is the negation of `eq`.
        let mut guard = String::new();
        for (side, nullable) in [(&l, left_null), (&r, right_null)] {
            if nullable {
                guard.push_str(&format!(" AND {side} IS NOT NULL"));
            }
        }
        let both_null =
            (left_null && right_null).then(|| format!(" OR ({l} IS NULL AND {r} IS NULL)"));
        let (symbol, negate) = match op {
            CompareOp::Ne => ("=", true),
            _ => (symbol, false),
        };
        let with_null_equal = matches!(
            op,
            CompareOp::Eq | CompareOp::Ne | CompareOp::Ge | CompareOp::Le
        );
        let test = format!(
            "(({l}{collate} {symbol} {r}{collate}{guard}){})",
            if with_null_equal {
                both_null.unwrap_or_default()
            } else {
                String::new()
            }
        );
        if negate {
            format!("(NOT {test})")
        } else {
            test
        }
    }

    /// Whether the operand is a property that may hold NULL (a count or a duration).
    fn nullable(&self, operand: &Operand) -> bool {
        matches!(operand, Operand::Property(PropertyRef::Index(i))
            if self.report.properties[*i].kind.is_nullable())
    }

    /// `NULLS FIRST` ascending and `NULLS LAST` descending, as OData orders nulls (SQLite's
    /// default; PostgreSQL's is the opposite).
    fn nulls_order(&self, property: PropertyRef, descending: bool) -> &'static str {
        let nullable = self.nullable(&Operand::Property(property));
        match (self.dialect, nullable, descending) {
            (Dialect::Postgres, true, false) => " NULLS FIRST",
            (Dialect::Postgres, true, true) => " NULLS LAST",
            _ => "",
        }
    }

    fn where_clause(&mut self, tenant: Uuid, scope: &Scope, filter: Option<&Expr>) {
        let table = self.report.table_name();
        let t = self.bind(SqlParam::Uuid(tenant));
        let indexed_by = self
            .indexed_by
            .as_ref()
            .map(|index| format!(" INDEXED BY {index}"))
            .unwrap_or_default();
        self.sql
            .push_str(&format!(" FROM {table}{indexed_by} WHERE tenant_id = {t}"));
        if let Scope::Latest { period } = scope {
            let refresh = self.report.properties[self.report.refresh_date_index()].column_name();
            let (period_filter, p) = match (period, self.report.period_index()) {
                (Some(period), Some(index)) => {
                    let p = self.bind(SqlParam::Value(Value::Text(period.stored().to_owned())));
                    (
                        format!(" AND {} = {p}", self.report.properties[index].column_name()),
                        Some(p),
                    )
                }
                _ => (String::new(), None),
            };
            let latest = latest_refresh(self.report, self.refreshes, &t, p.as_deref());
            self.sql
                .push_str(&format!("{period_filter} AND {refresh} = {latest}"));
        }
        if let Some(filter) = filter {
            let condition = self.expr(filter);
            self.sql.push_str(&format!(" AND {condition}"));
            if let Some(floor) = activity_floor(self.report, filter) {
                let bound = self.refresh_floor(&t, floor);
                self.sql.push_str(&bound);
                let closed = closed_range(self.report, filter);
                if let Some(bound) = closed
                    .and_then(|(floor, ceiling)| self.refresh_ceiling_value(&t, floor, ceiling))
                {
                    let refresh =
                        self.report.properties[self.report.refresh_date_index()].column_name();
                    self.sql.push_str(&format!(" AND {refresh} <= {bound}"));
                }
            }
        }
    }

    /// ` AND <refresh date> >= <bound>`, implied by `reportDate ge floor`: a row is reported
    /// on or after its activity date, so the refresh-date order of the history (the natural
    /// key's, which leads the default order) can start at the floor instead of reading every
    /// older refresh. Rows dated after their refresh date (which Graph never writes, but a
    /// client may POST) are found through the `_ahead` partial index, normally empty, and
    /// lower the bound to their refresh date, so the condition never drops a match.
    ///
    /// Why: on 1.12M rows (10 years), `reportDate ge 2020-01-01&$top=10` sorted 630k matches
    /// (487 ms); with the bound the natural-key index is read in order from 2020-01-01 and
    /// stops after the page.
    fn refresh_floor(&mut self, tenant: &str, floor: &Value) -> String {
        let refresh = self.report.properties[self.report.refresh_date_index()].column_name();
        match self.refresh_floor_value(tenant, floor) {
            Some(bound) => format!(" AND {refresh} >= {bound}"),
            None => String::new(),
        }
    }

    /// The least refresh date a row matching `reportDate ge floor` can have: `floor`, or the
    /// refresh date of a row dated after its refresh, if one is earlier (see
    /// [`Builder::refresh_floor`]). `None` for a report without an activity date.
    fn refresh_floor_value(&mut self, tenant: &str, floor: &Value) -> Option<String> {
        let table = self.report.table_name();
        let refresh = self.report.properties[self.report.refresh_date_index()].column_name();
        let activity = self.report.activity_date_index()?;
        let activity = self.report.properties[activity].column_name();
        let f = self.bind(SqlParam::Value(floor.clone()));
        // SQLite names the index: without statistics it read the whole table instead.
        // PostgreSQL gets `+ 0` (date + integer is a date): a bare MIN of an indexed column
        // becomes "the first entry of an index in that order", and it took the natural key's,
        // filtering every row of the range for one ahead (187 ms, 7,300 pages on 1.12M rows
        // with none ahead); the expression leaves it the partial index (0.2 ms).
        let (indexed_by, min_of) = match self.dialect {
            Dialect::Sqlite => (
                format!(" INDEXED BY {}", ahead_index(self.report, activity)),
                format!("a.{refresh}"),
            ),
            Dialect::Postgres => (String::new(), format!("a.{refresh} + 0")),
        };
        let ahead = format!(
            "(SELECT MIN({min_of}) FROM {table} a{indexed_by} WHERE a.tenant_id = {tenant} \
             AND a.{activity} > a.{refresh} AND a.{activity} >= {f})"
        );
        Some(match self.dialect {
            // SQLite's two-argument min() is NULL when either argument is.
            Dialect::Sqlite => format!("min({f}, coalesce({ahead}, {f}))"),
            Dialect::Postgres => format!("LEAST({f}, {ahead})"),
        })
    }
}

impl Builder<'_> {
    /// A refresh date no row matching `reportDate ge floor and reportDate le ceiling` is
    /// after: the ceiling plus the longest period (`crate::days::REPORTED_WITHIN_DAYS`), or
    /// the latest pick of the per-day summary's late rows in the range (`crate::days::
    /// late_rows`: each summary row's pick is the latest refresh reporting its date), if one
    /// is later. A per-day report only (the caller has an activity floor); `None` unless
    /// `ceiling` is a date.
    ///
    /// Why: with both bounds on the refresh date, a closed range (`reportDate ge 2020-01-01
    /// and reportDate le 2020-12-31`) is a bounded range of the natural-key index, read in
    /// the default order from its start (SQLite: a skip-scan of its refresh dates). Without
    /// the upper one, both backends read the series index's entries of the range, every
    /// match, and sorted them for a page: 1 tenant × 10 years, a year's range, 112k rows,
    /// 67–109 ms (PostgreSQL) and 80–120 ms (SQLite). The bound was first the latest pick of
    /// the range, exact, but it read one summary row per date and period: ten years' range
    /// 3.5 ms (SQLite) one at a time, p99 70 ms at 32 connections. Graph reports a date
    /// within its longest period, so in its data that bound is the ceiling plus that period
    /// give or take a day, and the late rows' index, normally empty, costs one seek.
    fn refresh_ceiling_value(
        &mut self,
        tenant: &str,
        floor: &Value,
        ceiling: &Value,
    ) -> Option<String> {
        let activity = self
            .report
            .activity_date_index()
            .map(|i| self.report.properties[i].column_name())
            .unwrap_or_default();
        let Value::Date(date) = ceiling else {
            return None;
        };
        // (`reportDate le 9999-12-31` has no date 180 days later.)
        let within = date.saturating_add_days(i64::from(REPORTED_WITHIN_DAYS));
        let within = self.bind(SqlParam::Value(Value::Date(within)));
        let f = self.bind(SqlParam::Value(floor.clone()));
        let c = self.bind(SqlParam::Value(ceiling.clone()));
        let summary = summary_table(self.report);
        let late = late_rows(self.dialect, activity, "d.");
        let indexed_by = match self.dialect {
            Dialect::Sqlite => format!(" INDEXED BY {}", late_index(self.report)),
            Dialect::Postgres => String::new(),
        };
        let latest_late = format!(
            "(SELECT MAX(d.pick_refresh) FROM {summary} d{indexed_by} WHERE d.tenant_id = {tenant} \
             AND d.{activity} >= {f} AND d.{activity} <= {c} AND {late})"
        );
        Some(match self.dialect {
            // SQLite's two-argument max() is NULL when either argument is.
            Dialect::Sqlite => format!("max({within}, coalesce({latest_late}, {within}))"),
            Dialect::Postgres => format!("GREATEST({within}, {latest_late})"),
        })
    }
}

/// The activity date, when a SQLite listing should not read its `$filter` comparisons through
/// the series index: a page in the default order (the natural key's, refresh date first) of
/// an open range `reportDate ge/gt <date>` with no upper bound. Why: the refresh floor lets
/// the natural-key index deliver that page in order from the floor (a few hundred entries),
/// but with statistics SQLite preferred the series index for a narrow range and sorted every
/// match (the last 30 days of a 10-year tenant: ~9,000 rows, ~1 ms a page, 2,900 req/s at 32
/// connections). A closed range keeps the choice: from an old `reportDate le` the natural
/// key would read to the end of the history.
fn sqlite_reads_in_key_order(
    report: &ReportType,
    dialect: Dialect,
    query: &ListQuery,
) -> Option<usize> {
    let filter = query.filter.as_ref()?;
    let open_floor = dialect == Dialect::Sqlite
        && query.scope == Scope::All
        && query.order_by.is_empty()
        && activity_floor(report, filter).is_some_and(|_| !activity_ceiling(report, filter));
    open_floor.then(|| report.activity_date_index()).flatten()
}

/// `_by_period_day` (`crate::sql::period_pages_index`), when a SQLite page in the default order
/// pins the period (`reportPeriod eq '7'`) and bounds the activity date neither way (with a
/// floor it is a skip-scan, `skip_scan`; with a ceiling alone the planner keeps its choice:
/// from a ceiling older than every row, the period's entries would be read to the end).
/// Why: that index holds the period's rows in the page's order, a page of entries (and a
/// seek into the table each); with the statistics of the 1.12M-row bench database
/// (`PRAGMA optimize` samples 1,000 rows an index, in which the period did not narrow), SQLite
/// read `_pages` instead from the tenant's first row, 307 entries a refresh date for 7 of the
/// period: 587k instructions a request under callgrind, 2.8 times an unfiltered page.
/// Measurements in bench/RESULTS.md ("Page statements compiled once; pages of one period as
/// a skip-scan").
fn sqlite_period_pages(report: &ReportType, dialect: Dialect, query: &ListQuery) -> Option<String> {
    let filter = query.filter.as_ref()?;
    let period = report.period_index()?;
    let pinned = dialect == Dialect::Sqlite
        && query.scope == Scope::All
        && query.order_by.is_empty()
        && skip_scan::pinned(filter, period).is_some()
        && activity_floor(report, filter).is_none()
        && !activity_ceiling(report, filter);
    pinned
        .then(|| crate::sql::period_pages_index(report))
        .flatten()
        .map(|(index, _)| index)
}

/// Whether the filter's top-level conjuncts put an upper bound on the activity date
/// (`reportDate le/lt/eq <date>`, or `in (…)`).
fn activity_ceiling(report: &ReportType, filter: &Expr) -> bool {
    let Some(activity) = report.activity_date_index().map(PropertyRef::Index) else {
        return false;
    };
    match filter {
        Expr::And(a, b) => activity_ceiling(report, a) || activity_ceiling(report, b),
        Expr::In {
            operand: Operand::Property(p),
            ..
        } => *p == activity,
        Expr::Compare { op, left, right } => {
            let op = match (left, right) {
                (Operand::Property(p), _) if *p == activity => *op,
                (_, Operand::Property(p)) if *p == activity => flipped(*op),
                _ => return false,
            };
            matches!(op, CompareOp::Le | CompareOp::Lt | CompareOp::Eq)
        }
        _ => false,
    }
}

/// The greatest lower bound the filter's top-level conjuncts put on the activity date
/// (`reportDate ge/gt/eq <date>`), when they put one.
fn activity_floor<'e>(report: &ReportType, filter: &'e Expr) -> Option<&'e Value> {
    activity_bound(report, filter, Bound::Floor)
}

/// The least upper bound the filter's top-level conjuncts put on the activity date
/// (`reportDate le/lt/eq <date>`), when they put one (`in (…)` is not one).
fn activity_ceiling_value<'e>(report: &ReportType, filter: &'e Expr) -> Option<&'e Value> {
    activity_bound(report, filter, Bound::Ceiling)
}

/// The activity-date floor and ceiling of a closed range (`reportDate ge … and reportDate le
/// …`), not a single date: `reportDate eq` is one range of the series index `_by_day`, which
/// holds that date's rows in the default order (refresh date, period).
fn closed_range<'e>(report: &ReportType, filter: &'e Expr) -> Option<(&'e Value, &'e Value)> {
    let floor = activity_floor(report, filter)?;
    let ceiling = activity_ceiling_value(report, filter)?;
    (floor != ceiling).then_some((floor, ceiling))
}

/// Which side of the activity date [`activity_bound`] looks for.
#[derive(Clone, Copy, PartialEq)]
enum Bound {
    Floor,
    Ceiling,
}

/// The tightest bound of one side the filter's top-level conjuncts put on the activity date.
fn activity_bound<'e>(report: &ReportType, filter: &'e Expr, side: Bound) -> Option<&'e Value> {
    let activity = PropertyRef::Index(report.activity_date_index()?);
    match filter {
        Expr::And(a, b) => match (
            activity_bound(report, a, side),
            activity_bound(report, b, side),
        ) {
            // The later floor, the earlier ceiling.
            (Some(x), Some(y)) => Some(if date_after(y, x) == (side == Bound::Floor) {
                y
            } else {
                x
            }),
            (x, y) => x.or(y),
        },
        Expr::Compare { op, left, right } => {
            let (op, value) = match (left, right) {
                (Operand::Property(p), Operand::Literal(Literal::Value(v))) if *p == activity => {
                    (*op, v)
                }
                (Operand::Literal(Literal::Value(v)), Operand::Property(p)) if *p == activity => {
                    (flipped(*op), v)
                }
                _ => return None,
            };
            let bounds = match side {
                Bound::Floor => matches!(op, CompareOp::Ge | CompareOp::Gt | CompareOp::Eq),
                Bound::Ceiling => matches!(op, CompareOp::Le | CompareOp::Lt | CompareOp::Eq),
            };
            bounds
                .then_some(value)
                .filter(|v| matches!(v, Value::Date(_)))
        }
        _ => None,
    }
}

/// `a op b` as `b flipped(op) a`.
fn flipped(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        other => other,
    }
}

fn date_after(a: &Value, b: &Value) -> bool {
    matches!((a, b), (Value::Date(a), Value::Date(b)) if a > b)
}

/// The order a listing uses: the requested keys (else the report function's order for the
/// latest report, else the natural key), then `id` so that every row has a unique position.
pub fn effective_order(report: &ReportType, query: &ListQuery) -> Vec<OrderKey> {
    let mut keys = query.order_by.clone();
    if keys.is_empty() {
        keys = match query.scope {
            Scope::Latest { .. } => report
                .function
                .order_by
                .iter()
                .filter_map(|k| {
                    Some(OrderKey {
                        property: PropertyRef::Index(report.property_index(k.property)?),
                        descending: k.descending,
                    })
                })
                .collect(),
            Scope::All => report
                .natural_key_indexes()
                .into_iter()
                .map(|i| OrderKey {
                    property: PropertyRef::Index(i),
                    descending: false,
                })
                .collect(),
        };
    }
    // An explicit `$orderby`'s ties: the natural key's columns it leaves out, in the last
    // key's direction, so that an index leading with the ordered column holds the whole
    // order (`reportPeriod`: `_by_period_day`; `siteType`: `_by_dimension_day`;
    // `reportDate desc`: `_by_day` backwards). Ordered by `id` instead, such a page sorted
    // the column's rows (`$orderby=reportPeriod&$top=10`, 1 tenant × 10 years: 0.3–0.6 s).
    // The natural key is unique, so `id` never decides; it stays last for reports without
    // one; an order that holds `id` is decided by it and needs no more keys.
    let has_id = keys.iter().any(|k| k.property == PropertyRef::Id);
    if query.scope == Scope::All && !query.order_by.is_empty() && !has_id {
        let descending = keys.last().is_some_and(|k| k.descending);
        for i in report.natural_key_indexes() {
            let property = PropertyRef::Index(i);
            if !keys.iter().any(|k| k.property == property) {
                keys.push(OrderKey {
                    property,
                    descending,
                });
            }
        }
    }
    if !has_id {
        keys.push(OrderKey {
            property: PropertyRef::Id,
            descending: false,
        });
    }
    keys
}

/// `SELECT` of a page: filter, keyset cursor, order, limit and offset; a latest report's
/// refresh date read from the rows ([`RowsByPeriod`]).
pub fn compile_list(
    report: &ReportType,
    dialect: Dialect,
    columns: &str,
    tenant: Uuid,
    query: &ListQuery,
) -> CompiledSql {
    compile_list_with(report, dialect, &RowsByPeriod, columns, tenant, query)
}

/// [`compile_list`] with a latest report's refresh date found as `refreshes` does.
pub fn compile_list_with(
    report: &ReportType,
    dialect: Dialect,
    refreshes: &dyn PeriodRefreshes,
    columns: &str,
    tenant: Uuid,
    query: &ListQuery,
) -> CompiledSql {
    if dialect == Dialect::Sqlite {
        if let Some(page) = skip_scan::history_page(report, refreshes, columns, tenant, query) {
            return page;
        }
    }
    let mut b = Builder {
        report,
        dialect,
        refreshes,
        sql: format!("SELECT {columns}"),
        params: Vec::new(),
        unindexed: sqlite_reads_in_key_order(report, dialect, query),
        all_unindexed: false,
        indexed_by: sqlite_period_pages(report, dialect, query),
    };
    b.where_clause(tenant, &query.scope, query.filter.as_ref());
    let order = effective_order(report, query);
    if let Some(cursor) = &query.after {
        let condition = keyset_condition(&mut b, &order, cursor);
        b.sql.push_str(&format!(" AND {condition}"));
        let leading = leading_key_bound(&mut b, &order, cursor);
        b.sql.push_str(&leading);
    }
    let order_sql: Vec<String> = order[..sql_order_len(report, &order)]
        .iter()
        .map(|k| {
            let collate = b.order_collate(k.property);
            format!(
                "{}{collate} {}{}",
                b.order_column(k.property),
                if k.descending { "DESC" } else { "ASC" },
                b.nulls_order(k.property, k.descending)
            )
        })
        .collect();
    b.sql
        .push_str(&format!(" ORDER BY {}", order_sql.join(", ")));
    let limit = query
        .limit
        .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let l = b.bind(SqlParam::Int(limit));
    let o = b.bind(SqlParam::Int(i64::try_from(query.skip).unwrap_or(i64::MAX)));
    b.sql.push_str(&format!(" LIMIT {l} OFFSET {o}"));
    CompiledSql {
        sql: b.sql,
        params: b.params,
    }
}

/// How many keys of `order` the SQL `ORDER BY` needs: all but the final `id` when the keys
/// before it include the whole natural key, which is unique within a tenant, so that `id`
/// never decides and the order is the same. Why: with `reportPeriod eq '7'` the planners
/// drop the constant period from the order, and `…, id` then no longer matched the
/// natural-key index (SQLite sorted each refresh date's rows, PostgreSQL added an incremental
/// sort); without `id` the index delivers the order as it is.
fn sql_order_len(report: &ReportType, order: &[OrderKey]) -> usize {
    let natural = report.natural_key_indexes();
    let covered = natural
        .iter()
        .all(|i| order.iter().any(|k| k.property == PropertyRef::Index(*i)));
    match order.last() {
        Some(last) if covered && !natural.is_empty() && last.property == PropertyRef::Id => {
            order.len() - 1
        }
        _ => order.len(),
    }
}

/// `SELECT COUNT(*)` of the rows a filter matches (before paging); a latest report's
/// refresh date read from the rows ([`RowsByPeriod`]).
pub fn compile_count(
    report: &ReportType,
    dialect: Dialect,
    tenant: Uuid,
    scope: &Scope,
    filter: Option<&Expr>,
) -> CompiledSql {
    compile_count_with(report, dialect, &RowsByPeriod, tenant, scope, filter)
}

/// [`compile_count`] with a latest report's refresh date found as `refreshes` does.
pub fn compile_count_with(
    report: &ReportType,
    dialect: Dialect,
    refreshes: &dyn PeriodRefreshes,
    tenant: Uuid,
    scope: &Scope,
    filter: Option<&Expr>,
) -> CompiledSql {
    let mut b = Builder {
        report,
        dialect,
        refreshes,
        sql: "SELECT COUNT(*)".to_owned(),
        params: Vec::new(),
        unindexed: None,
        all_unindexed: false,
        indexed_by: None,
    };
    b.where_clause(tenant, scope, filter);
    CompiledSql {
        sql: b.sql,
        params: b.params,
    }
}

/// `$count` of a per-day report's whole history ([`Scope::All`]) from its per-day summary
/// (`crate::days`): the sum of `row_count` over the summary rows that `filter` matches.
/// `None` when the filter reads a property the summary does not key on (a count, the refresh
/// date, the id): then only the report's rows can answer.
///
/// Why it is the same count: every row of a summary row has the same values of the key
/// properties (activity date, dimension, period), so a filter over those alone matches all of
/// them or none. Measured on 1.12M rows (10 years, 1 tenant, SQLite): `reportDate ge
/// 2020-01-01` counted through the series index in ~450 ms; the summary holds ~15k rows.
pub fn compile_days_count(
    report: &ReportType,
    dialect: Dialect,
    days: &DaysSql,
    tenant: Uuid,
    filter: Option<&Expr>,
) -> Option<CompiledSql> {
    let keyed = |i: usize| {
        let name = report.properties[i].column_name();
        days.key_columns.iter().any(|c| c == name)
    };
    if filter.is_some_and(|f| !reads_only(f, &keyed)) {
        return None;
    }
    let mut b = Builder {
        report,
        dialect,
        refreshes: &RowsByPeriod,
        sql: "SELECT CAST(COALESCE(SUM(row_count), 0) AS BIGINT)".to_owned(),
        params: Vec::new(),
        unindexed: None,
        all_unindexed: false,
        indexed_by: None,
    };
    let t = b.bind(SqlParam::Uuid(tenant));
    b.sql
        .push_str(&format!(" FROM {} WHERE tenant_id = {t}", days.table));
    if let Some(filter) = filter {
        let condition = b.expr(filter);
        b.sql.push_str(&format!(" AND {condition}"));
    }
    Some(CompiledSql {
        sql: b.sql,
        params: b.params,
    })
}

/// Whether every property `expr` reads is one `keyed` accepts (never the id).
fn reads_only(expr: &Expr, keyed: &dyn Fn(usize) -> bool) -> bool {
    fn operand(o: &Operand, keyed: &dyn Fn(usize) -> bool) -> bool {
        match o {
            Operand::Property(PropertyRef::Index(i)) => keyed(*i),
            Operand::Property(PropertyRef::Id) => false,
            Operand::Literal(_) => true,
            Operand::Call(_, inner) => operand(inner, keyed),
        }
    }
    match expr {
        Expr::Literal(_) => true,
        Expr::And(a, b) | Expr::Or(a, b) => reads_only(a, keyed) && reads_only(b, keyed),
        Expr::Not(a) => reads_only(a, keyed),
        Expr::In { operand: o, .. } => operand(o, keyed),
        Expr::Match {
            target, pattern, ..
        } => operand(target, keyed) && operand(pattern, keyed),
        Expr::Compare { left, right, .. } => operand(left, keyed) && operand(right, keyed),
    }
}

/// ` AND k1 >= v1` (`<=` descending), which the keyset condition implies: planners do not
/// read a range out of its `OR`s, so without it the next page reads every row before the
/// cursor again. Only for a leading key that cannot be null (dates, periods, text).
fn leading_key_bound(b: &mut Builder<'_>, order: &[OrderKey], cursor: &Cursor) -> String {
    let Some(key) = order.first() else {
        return String::new();
    };
    let value = match key.property {
        PropertyRef::Index(_) if b.nullable(&Operand::Property(key.property)) => {
            return String::new()
        }
        PropertyRef::Index(_) => match cursor.values.first() {
            Some(Value::Null) | None => return String::new(),
            Some(value) => b.bind(SqlParam::Value(value.clone())),
        },
        PropertyRef::Id => b.id_param(cursor.id),
    };
    let column = b.order_column(key.property);
    let collate = b.order_collate(key.property);
    let symbol = if key.descending { "<=" } else { ">=" };
    format!(" AND {column}{collate} {symbol} {value}{collate}")
}

/// Rows strictly after the cursor in the given order:
/// `(k1 > v1) OR (k1 = v1 AND k2 > v2) OR …`, with `<` for descending keys. A null cursor
/// value (a count) follows the order's nulls: first ascending, last descending.
fn keyset_condition(b: &mut Builder<'_>, order: &[OrderKey], cursor: &Cursor) -> String {
    let mut values = cursor.values.iter();
    // `None`: the cursor's value is null.
    let bound: Vec<(OrderKey, Option<String>)> = order
        .iter()
        .map(|key| {
            let param = match key.property {
                PropertyRef::Id => Some(b.id_param(cursor.id)),
                PropertyRef::Index(_) => match values.next().cloned().unwrap_or(Value::Int(0)) {
                    Value::Null => None,
                    value => Some(b.bind(SqlParam::Value(value))),
                },
            };
            (*key, param)
        })
        .collect();
    let mut alternatives = Vec::new();
    for (i, (key, param)) in bound.iter().enumerate() {
        let mut parts: Vec<String> = bound[..i]
            .iter()
            .map(|(k, p)| {
                let column = b.order_column(k.property);
                match p {
                    Some(p) => format!("{column} = {p}"),
                    None => format!("{column} IS NULL"),
                }
            })
            .collect();
        let column = b.order_column(key.property);
        let collate = b.order_collate(key.property);
        let after = match (param, key.descending) {
            (None, false) => format!("{column} IS NOT NULL"),
            (None, true) => continue,
            (Some(param), false) => format!("{column}{collate} > {param}{collate}"),
            (Some(param), true) if b.nullable(&Operand::Property(key.property)) => {
                format!("({column}{collate} < {param}{collate} OR {column} IS NULL)")
            }
            (Some(param), true) => format!("{column}{collate} < {param}{collate}"),
        };
        parts.push(after);
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    if alternatives.is_empty() {
        return "(1 = 0)".to_owned();
    }
    format!("({})", alternatives.join(" OR "))
}

#[cfg(test)]
mod tests {
    use reportroot_model::find_report;
    use reportroot_odata::query::parse_filter;

    use super::*;

    #[test]
    fn literals_become_parameters() {
        let report = find_report("office365ActivationsUserCounts").expect("report");
        let filter = parse_filter(
            report,
            "productType eq 'x'' OR 1=1 --' and year(reportRefreshDate) ge 2025",
        )
        .expect("filter");
        let query = ListQuery {
            filter: Some(filter),
            ..ListQuery::default()
        };
        let compiled = compile_list(report, Dialect::Sqlite, "id", Uuid::nil(), &query);
        assert!(!compiled.sql.contains("OR 1=1"), "{}", compiled.sql);
        assert!(
            compiled.sql.contains("(product_type = ?2)"),
            "{}",
            compiled.sql
        );
        assert_eq!(
            compiled.params[1],
            SqlParam::Value(Value::Text("x' OR 1=1 --".into()))
        );
        let pg = compile_list(report, Dialect::Postgres, "id", Uuid::nil(), &query);
        assert!(
            pg.sql.contains("EXTRACT(YEAR FROM report_refresh_date)"),
            "{}",
            pg.sql
        );
        assert!(pg.sql.ends_with("LIMIT $4 OFFSET $5"), "{}", pg.sql);
    }

    #[test]
    fn an_explicit_order_is_completed_by_the_natural_key_then_id_unless_it_has_id() {
        let report = find_report("office365ActiveUserCounts").expect("report");
        let order = |orderby: &str| {
            let query = ListQuery {
                order_by: reportroot_odata::query::parse_order_by(report, orderby)
                    .expect("orderby"),
                ..ListQuery::default()
            };
            effective_order(report, &query)
                .iter()
                .map(|k| match k.property {
                    PropertyRef::Index(i) => {
                        format!("{} {}", report.properties[i].name, k.descending)
                    }
                    PropertyRef::Id => format!("id {}", k.descending),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            order("reportPeriod desc"),
            [
                "reportPeriod true",
                "reportRefreshDate true",
                "reportDate true",
                "id false"
            ]
        );
        assert_eq!(order("teams,id desc"), ["teams false", "id true"]);
        assert_eq!(order("id"), ["id false"]);
    }
}
