// Crates evaluated: `odata-params` 0.4 (untyped AST, errors carry no position, `a and b or c`
// parses as `a and (b or c)`, unbounded PEG recursion, pulls chrono/chrono-tz/bigdecimal) and
// `odatav4-parser` 0.0.x (untyped, dates kept as strings, no schema typing). Neither gives a typed
// AST with positioned errors, so this is a small hand-written lexer + recursive-descent parser.
//! Query options (`$filter`, `$select`, `$orderby`, `$top`, `$skip`, `$count`), parsed and typed
//! against a [`ReportType`] into an AST that the storage layer compiles to SQL.
//!
//! The `$filter` grammar is the subset of OData v4 that ASP.NET Core OData accepts for these
//! reports: `eq ne gt ge lt le`, `and or not`, parentheses, `in (…)`, `contains startswith
//! endswith tolower toupper year month day`, and string, integer, date, duration
//! (`duration'PT1H30M'`, whole seconds), `null`, `true`, `false` literals. Precedence, from tightest: `not`, comparisons and `in`, `and`, `or`; binary
//! operators group to the left.
//!
//! Limits: every option text is at most [`MAX_OPTION_LEN`] bytes, and a `$filter` nests at most
//! [`MAX_DEPTH`] levels, so the AST handed to the SQL compiler is never deeper than that.

mod display;
mod filter;
mod lexer;
mod options;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use reportroot_model::{ReportType, Value, ValueKind, Version};

pub use display::ExprDisplay;
pub use options::{parse_order_by, parse_query_options, parse_select, CALLER_OPTIONS};

/// The longest text accepted for one query option, in bytes.
pub const MAX_OPTION_LEN: usize = 8 * 1024;

/// The deepest nesting accepted in `$filter`: parentheses, `not`, function calls and the
/// operator tree itself each count, so a chain of about this many `and`s is also refused.
pub const MAX_DEPTH: usize = 100;

/// The longest `duration'…'` literal accepted, in seconds: 999999999:59:59, the longest
/// duration a report row can hold (hours have at most nine digits).
pub const MAX_DURATION_SECONDS: u64 = 999_999_999 * 3600 + 59 * 60 + 59;

/// The most keys accepted in `$orderby`.
pub const MAX_ORDER_BY_KEYS: usize = 10;

/// A property reference: the entity id or a registry property by index into
/// [`ReportType::properties`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyRef {
    /// The entity's `id` (`Edm.String` holding a GUID).
    Id,
    /// `report.properties[index]`.
    Index(usize),
}

impl PropertyRef {
    /// The OData name of the property: `id`, or the registry name (`?` for an index out of
    /// range, which the parser never produces).
    pub fn name(self, report: &ReportType) -> &'static str {
        match self {
            PropertyRef::Id => "id",
            PropertyRef::Index(i) => report.properties.get(i).map_or("?", |p| p.name),
        }
    }

    /// The static type of the property's values.
    pub fn ty(self, report: &ReportType) -> Type {
        match self {
            PropertyRef::Id => Type::String,
            PropertyRef::Index(i) => report
                .properties
                .get(i)
                .map_or(Type::Null, |p| Type::of_kind(p.kind)),
        }
    }

    /// Looks a property up by its case-sensitive OData name (`id` included).
    pub fn find(report: &ReportType, name: &str) -> Option<PropertyRef> {
        PropertyRef::find_on(report, None, name)
    }

    /// [`PropertyRef::find`] among the properties of `version`'s type: a property only
    /// another version has is unknown there, as on Graph (`None`: every stored property).
    pub fn find_on(
        report: &ReportType,
        version: Option<Version>,
        name: &str,
    ) -> Option<PropertyRef> {
        if name == "id" {
            Some(PropertyRef::Id)
        } else {
            report
                .property_index(name)
                .filter(|&i| report.has_on(version, i))
                .map(PropertyRef::Index)
        }
    }

    /// Every property of the report: `id` first, then the registry properties in order.
    pub fn all(report: &ReportType) -> Vec<PropertyRef> {
        std::iter::once(PropertyRef::Id)
            .chain((0..report.properties.len()).map(PropertyRef::Index))
            .collect()
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

impl CompareOp {
    /// Every operator.
    pub const ALL: [CompareOp; 6] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The OData keyword, e.g. `eq`.
    pub fn keyword(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// The operator spelled by an OData keyword (case-sensitive).
    pub fn from_keyword(word: &str) -> Option<CompareOp> {
        CompareOp::ALL.into_iter().find(|op| op.keyword() == word)
    }
}

/// The static type of an operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// `Edm.Date`.
    Date,
    /// `Edm.Int64`.
    Int,
    /// `Edm.String` (report periods included).
    String,
    /// `Edm.Duration`: properties stored as `hh:mm:ss` text and `duration'…'` literals,
    /// compared as numbers of seconds.
    Duration,
    /// `Edm.Boolean`: only the literals `true` and `false` have it.
    Bool,
    /// The literal `null`.
    Null,
}

impl Type {
    /// The type of a registry property kind.
    pub fn of_kind(kind: ValueKind) -> Type {
        match kind {
            ValueKind::Date => Type::Date,
            ValueKind::Count | ValueKind::Count32 => Type::Int,
            ValueKind::Text | ValueKind::Period => Type::String,
            ValueKind::Duration => Type::Duration,
        }
    }

    /// The name used in error messages: `Edm.Date`, …, or `null`.
    pub fn edm_name(self) -> &'static str {
        match self {
            Type::Date => "Edm.Date",
            Type::Int => "Edm.Int64",
            Type::String => "Edm.String",
            Type::Duration => "Edm.Duration",
            Type::Bool => "Edm.Boolean",
            Type::Null => "null",
        }
    }
}

/// A function that yields a value. `tolower`/`toupper`: String → String; `year`/`month`/`day`:
/// Date → Int.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `tolower(s)`.
    ToLower,
    /// `toupper(s)`.
    ToUpper,
    /// `year(d)`.
    Year,
    /// `month(d)`, 1–12.
    Month,
    /// `day(d)`, 1–31.
    Day,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 5] = [
        Function::ToLower,
        Function::ToUpper,
        Function::Year,
        Function::Month,
        Function::Day,
    ];

    /// The OData name, e.g. `tolower`.
    pub fn name(self) -> &'static str {
        match self {
            Function::ToLower => "tolower",
            Function::ToUpper => "toupper",
            Function::Year => "year",
            Function::Month => "month",
            Function::Day => "day",
        }
    }

    /// The type the argument must have.
    pub fn argument_type(self) -> Type {
        match self {
            Function::ToLower | Function::ToUpper => Type::String,
            Function::Year | Function::Month | Function::Day => Type::Date,
        }
    }

    /// The type of the result.
    pub fn result_type(self) -> Type {
        match self {
            Function::ToLower | Function::ToUpper => Type::String,
            Function::Year | Function::Month | Function::Day => Type::Int,
        }
    }
}

/// A value-producing operand of a comparison, `in` or string match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A property of the entity.
    Property(PropertyRef),
    /// A literal.
    Literal(Literal),
    /// A function applied to an operand of its [`Function::argument_type`].
    Call(Function, Box<Operand>),
}

impl Operand {
    /// The static type of the operand.
    pub fn ty(&self, report: &ReportType) -> Type {
        match self {
            Operand::Property(p) => p.ty(report),
            Operand::Literal(l) => l.ty(),
            Operand::Call(f, _) => f.result_type(),
        }
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Literal {
    /// A string, integer or date.
    Value(Value),
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// `duration'…'`: a non-negative whole number of seconds, at most
    /// [`MAX_DURATION_SECONDS`].
    Duration(u64),
}

impl Literal {
    /// The static type of the literal.
    pub fn ty(&self) -> Type {
        match self {
            Literal::Value(Value::Date(_)) => Type::Date,
            Literal::Value(Value::Int(_)) => Type::Int,
            Literal::Value(Value::Text(_)) => Type::String,
            Literal::Null | Literal::Value(Value::Null) => Type::Null,
            Literal::Bool(_) => Type::Bool,
            Literal::Duration(_) => Type::Duration,
        }
    }
}

/// The string-matching functions, which are Boolean expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StringMatch {
    /// `contains(target,pattern)`.
    Contains,
    /// `startswith(target,pattern)`.
    StartsWith,
    /// `endswith(target,pattern)`.
    EndsWith,
}

impl StringMatch {
    /// Every kind.
    pub const ALL: [StringMatch; 3] = [
        StringMatch::Contains,
        StringMatch::StartsWith,
        StringMatch::EndsWith,
    ];

    /// The OData function name, e.g. `contains`.
    pub fn name(self) -> &'static str {
        match self {
            StringMatch::Contains => "contains",
            StringMatch::StartsWith => "startswith",
            StringMatch::EndsWith => "endswith",
        }
    }
}

/// A typed Boolean `$filter` expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// `left op right`; both sides have the same type, or one is `null` (then `op` is `eq` or
    /// `ne`); `Bool` operands (literals only) are compared with `eq`/`ne` only.
    Compare {
        /// The operator.
        op: CompareOp,
        /// The left operand.
        left: Operand,
        /// The right operand.
        right: Operand,
    },
    /// `operand in (list…)`: a non-empty list of literals of the operand's type (never `null`,
    /// never Boolean).
    In {
        /// The tested operand (Date, Int or String).
        operand: Operand,
        /// The values.
        list: Vec<Literal>,
    },
    /// `contains(target,pattern)` and friends; both operands are Strings.
    Match {
        /// Which function.
        kind: StringMatch,
        /// The string searched.
        target: Operand,
        /// The string searched for.
        pattern: Operand,
    },
    /// `left and right`.
    And(Box<Expr>, Box<Expr>),
    /// `left or right`.
    Or(Box<Expr>, Box<Expr>),
    /// `not inner`.
    Not(Box<Expr>),
    /// `true` or `false` as a whole expression.
    Literal(bool),
}

impl Expr {
    /// An adapter that prints the expression in OData syntax, naming properties from `report`;
    /// [`parse_filter`] reads the text back to an equal expression.
    pub fn display<'a>(&'a self, report: &'a ReportType) -> ExprDisplay<'a> {
        ExprDisplay::new(self, report)
    }
}

/// One key of `$orderby`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderKey {
    /// The property sorted on.
    pub property: PropertyRef,
    /// Whether the order is descending.
    pub descending: bool,
}

/// All query options of one request, parsed and typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOptions {
    /// `$filter`.
    pub filter: Option<Expr>,
    /// `$select`: `None` means all properties (no `$select`, or `$select=*`); otherwise the
    /// named properties in the order first named, without duplicates, never empty.
    pub select: Option<Vec<PropertyRef>>,
    /// `$orderby`: at most [`MAX_ORDER_BY_KEYS`] distinct properties; empty means the default
    /// order.
    pub order_by: Vec<OrderKey>,
    /// `$top`, at most `i64::MAX`.
    pub top: Option<u64>,
    /// `$skip`, at most `i64::MAX`.
    pub skip: Option<u64>,
    /// `$count=true`.
    pub count: bool,
}

/// A query option that could not be parsed or does not fit the report type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// The option, spelled `$filter`, `$select`, `$orderby`, `$top`, `$skip` or `$count`; or
    /// `query` for an error about the query string as a whole (an unsupported option name).
    pub option: &'static str,
    /// The character offset (not byte) in that option's text where the problem is, when it
    /// has one.
    pub position: Option<usize>,
    /// The whole message, in plain words, naming the option and the position.
    pub message: String,
}

impl QueryError {
    fn new(option: &'static str, position: Option<usize>, message: String) -> QueryError {
        QueryError {
            option,
            position,
            message,
        }
    }

    /// `Syntax error at position P in OPTION: DETAIL.`
    fn syntax(option: &'static str, position: usize, detail: impl std::fmt::Display) -> Self {
        QueryError::new(
            option,
            Some(position),
            format!("Syntax error at position {position} in {option}: {detail}."),
        )
    }

    /// `WHAT at position P in OPTION.`
    fn at(option: &'static str, position: usize, what: impl std::fmt::Display) -> Self {
        QueryError::new(
            option,
            Some(position),
            format!("{what} at position {position} in {option}."),
        )
    }

    /// `Could not find a property named 'NAME' on type 'microsoft.graph.X' (position P in
    /// OPTION).`, with a hint when only the case differs.
    fn unknown_property(
        option: &'static str,
        position: usize,
        report: &ReportType,
        name: &str,
    ) -> Self {
        let hint = std::iter::once("id")
            .chain(report.properties.iter().map(|p| p.name))
            .find(|candidate| candidate.eq_ignore_ascii_case(name))
            .map(|candidate| {
                format!(" Property names are case-sensitive: did you mean '{candidate}'?")
            })
            .unwrap_or_default();
        QueryError::new(
            option,
            Some(position),
            format!(
                "Could not find a property named '{}' on type '{}' (position {position} in {option}).{hint}",
                shorten(name),
                report.qualified_name()
            ),
        )
    }

    /// The text of an option is longer than [`MAX_OPTION_LEN`].
    fn too_long(option: &'static str, len: usize) -> Self {
        QueryError::new(
            option,
            None,
            format!("The {option} text is too long: it has {len} bytes, but at most {MAX_OPTION_LEN} are allowed."),
        )
    }
}

/// Parses a `$filter` expression and types it against `report`.
///
/// # Errors
/// A [`QueryError`] for option `$filter` on a syntax error, an unknown property or function, a
/// type mismatch, a literal out of range, nesting deeper than [`MAX_DEPTH`] or text longer than
/// [`MAX_OPTION_LEN`].
pub fn parse_filter(report: &ReportType, text: &str) -> Result<Expr, QueryError> {
    filter::parse(report, None, text)
}

/// [`parse_filter`] against `version`'s type: a property only another version has is unknown
/// (`None`: every stored property, as [`parse_filter`]).
///
/// # Errors
/// As [`parse_filter`].
pub fn parse_filter_on(
    report: &ReportType,
    version: Option<Version>,
    text: &str,
) -> Result<Expr, QueryError> {
    filter::parse(report, version, text)
}

/// At most 40 characters of user text, for quoting in a message.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
