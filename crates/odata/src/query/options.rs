//! `$select`, `$orderby`, `$top`, `$skip`, `$count`, and the request's options as a whole.

use reportroot_model::{ReportType, Version};

use super::lexer::{describe_at, tokenize, Tok, Token};
use super::{
    parse_filter_on, shorten, OrderKey, PropertyRef, QueryError, QueryOptions, MAX_OPTION_LEN,
    MAX_ORDER_BY_KEYS,
};

/// `$`-options that [`parse_query_options`] leaves to its caller (compared ignoring ASCII
/// case): they are neither parsed nor refused here.
pub const CALLER_OPTIONS: &[&str] = &["$format", "$skiptoken"];

/// Parses `$orderby`: comma-separated `property [asc|desc]`, at most [`MAX_ORDER_BY_KEYS`]
/// distinct properties (`id` included).
///
/// # Errors
/// A [`QueryError`] for option `$orderby` on a syntax error, an unknown or repeated property,
/// too many keys or text longer than [`MAX_OPTION_LEN`].
pub fn parse_order_by(report: &ReportType, text: &str) -> Result<Vec<OrderKey>, QueryError> {
    order_by(report, None, text)
}

/// [`parse_order_by`] against `version`'s properties.
fn order_by(
    report: &ReportType,
    version: Option<Version>,
    text: &str,
) -> Result<Vec<OrderKey>, QueryError> {
    const OPTION: &str = "$orderby";
    let (tokens, end) = tokens(OPTION, text)?;
    let mut keys: Vec<OrderKey> = Vec::new();
    let mut i = 0;
    loop {
        let (name, pos) = property_name(OPTION, &tokens, end, i)?;
        not_a_call(
            OPTION,
            &tokens,
            i,
            "only property names can be sorted on; functions and expressions are not supported",
        )?;
        let property = PropertyRef::find_on(report, version, name)
            .ok_or_else(|| QueryError::unknown_property(OPTION, pos, report, name))?;
        if keys.iter().any(|k| k.property == property) {
            return Err(QueryError::at(
                OPTION,
                pos,
                format!("The property '{name}' is named more than once"),
            ));
        }
        if keys.len() == MAX_ORDER_BY_KEYS {
            return Err(QueryError::at(
                OPTION,
                pos,
                format!("Too many sort keys: at most {MAX_ORDER_BY_KEYS} are allowed; the limit is passed"),
            ));
        }
        i += 1;
        let descending = match tokens.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(word)) if word == "asc" || word == "desc" => {
                i += 1;
                word == "desc"
            }
            _ => false,
        };
        keys.push(OrderKey {
            property,
            descending,
        });
        match tokens.get(i) {
            None => return Ok(keys),
            Some(Token {
                tok: Tok::Comma, ..
            }) => i += 1,
            Some(token) => {
                let detail = match &token.tok {
                    Tok::Ident(word) if word.eq_ignore_ascii_case("asc") || word.eq_ignore_ascii_case("desc") => {
                        format!("expected 'asc' or 'desc' in lower case, found '{word}'")
                    }
                    _ => format!(
                        "expected 'asc', 'desc', ',' or the end of the text after '{name}', found {}",
                        describe_at(&tokens, i)
                    ),
                };
                return Err(QueryError::syntax(OPTION, token.pos, detail));
            }
        }
    }
}

/// Parses `$select`: comma-separated property names (`id` included) or `*`. The properties
/// come back in the order first named, without duplicates; `*` anywhere gives every property
/// (`id` first, then registry order).
///
/// # Errors
/// A [`QueryError`] for option `$select` on a syntax error, an unknown property or text longer
/// than [`MAX_OPTION_LEN`].
pub fn parse_select(report: &ReportType, text: &str) -> Result<Vec<PropertyRef>, QueryError> {
    select(report, None, text).map(|(properties, star)| {
        if star {
            PropertyRef::all(report)
        } else {
            properties
        }
    })
}

/// The named properties, and whether `*` was among them.
fn select(
    report: &ReportType,
    version: Option<Version>,
    text: &str,
) -> Result<(Vec<PropertyRef>, bool), QueryError> {
    const OPTION: &str = "$select";
    let (tokens, end) = tokens(OPTION, text)?;
    let mut properties = Vec::new();
    let mut star = false;
    let mut i = 0;
    loop {
        if matches!(tokens.get(i).map(|t| &t.tok), Some(Tok::Star)) {
            star = true;
        } else {
            let (name, pos) = property_name(OPTION, &tokens, end, i)?;
            not_a_call(
                OPTION,
                &tokens,
                i,
                "only property names can be selected; functions and nested options are not supported",
            )?;
            let property = PropertyRef::find_on(report, version, name)
                .ok_or_else(|| QueryError::unknown_property(OPTION, pos, report, name))?;
            if !properties.contains(&property) {
                properties.push(property);
            }
        }
        i += 1;
        match tokens.get(i) {
            None => return Ok((properties, star)),
            Some(Token {
                tok: Tok::Comma, ..
            }) => i += 1,
            Some(token) => {
                return Err(QueryError::syntax(
                    OPTION,
                    token.pos,
                    format!(
                        "expected ',' or the end of the text, found {}",
                        describe_at(&tokens, i)
                    ),
                ));
            }
        }
    }
}

/// The tokens of a list option and the position of its end, or the first lexical error.
fn tokens(option: &'static str, text: &str) -> Result<(Vec<Token>, usize), QueryError> {
    if text.len() > MAX_OPTION_LEN {
        return Err(QueryError::too_long(option, text.len()));
    }
    let scanned = tokenize(option, text);
    match scanned.error {
        Some(error) => Err(error),
        None => Ok((scanned.tokens, scanned.end)),
    }
}

/// The property name at `tokens[i]`; `end` is the position of the end of the text.
fn property_name<'t>(
    option: &'static str,
    tokens: &'t [Token],
    end: usize,
    i: usize,
) -> Result<(&'t str, usize), QueryError> {
    match tokens.get(i) {
        Some(Token {
            tok: Tok::Ident(name),
            pos,
        }) => Ok((name, *pos)),
        other => {
            let pos = other.map_or(end, |t| t.pos);
            Err(QueryError::syntax(
                option,
                pos,
                format!("expected a property name, found {}", describe_at(tokens, i)),
            ))
        }
    }
}

/// Fails when the name at `tokens[i]` is followed by `(`.
fn not_a_call(
    option: &'static str,
    tokens: &[Token],
    i: usize,
    detail: &str,
) -> Result<(), QueryError> {
    match tokens.get(i + 1) {
        Some(Token {
            tok: Tok::LParen,
            pos,
        }) => Err(QueryError::syntax(option, *pos, detail)),
        _ => Ok(()),
    }
}

/// The options this module parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Filter,
    Select,
    OrderBy,
    Top,
    Skip,
    Count,
}

impl Name {
    const ALL: [Name; 6] = [
        Name::Filter,
        Name::Select,
        Name::OrderBy,
        Name::Top,
        Name::Skip,
        Name::Count,
    ];

    fn option(self) -> &'static str {
        match self {
            Name::Filter => "$filter",
            Name::Select => "$select",
            Name::OrderBy => "$orderby",
            Name::Top => "$top",
            Name::Skip => "$skip",
            Name::Count => "$count",
        }
    }

    /// The option a query parameter name stands for, `$` optional, ignoring ASCII case; an
    /// error for another `$`-name not in [`CALLER_OPTIONS`].
    fn classify(name: &str) -> Result<Option<Name>, QueryError> {
        let bare = name.strip_prefix('$').unwrap_or(name);
        if let Some(found) = Name::ALL
            .into_iter()
            .find(|n| n.option()[1..].eq_ignore_ascii_case(bare))
        {
            return Ok(Some(found));
        }
        if name.starts_with('$') && !CALLER_OPTIONS.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            return Err(QueryError::new(
                "query",
                None,
                format!(
                    "The query option '{}' is not supported; the supported options are $filter, $select, $orderby, $top, $skip, $count and $format.",
                    shorten(name)
                ),
            ));
        }
        Ok(None)
    }
}

/// Parses the decoded query pairs of a request: `$filter`, `$select`, `$orderby`, `$top`,
/// `$skip` and `$count`, also without the `$` and in any ASCII case, as Graph accepts them.
/// Each may be given once. Other `$`-options are refused, except [`CALLER_OPTIONS`]; options
/// without `$` that are not query options (`redirect`, …) are left to the caller.
///
/// Properties are those of `version`'s type: one only another version has is unknown, as any
/// unknown property (`None`: every stored property).
///
/// # Errors
/// The first [`QueryError`] among the options, in the order given.
pub fn parse_query_options(
    report: &ReportType,
    version: Option<Version>,
    pairs: &[(String, String)],
) -> Result<QueryOptions, QueryError> {
    let mut options = QueryOptions::default();
    let mut seen = Vec::new();
    for (name, value) in pairs {
        let Some(kind) = Name::classify(name)? else {
            continue;
        };
        if seen.contains(&kind) {
            return Err(QueryError::new(
                kind.option(),
                None,
                format!(
                    "The query option '{}' is given more than once; it may be given at most once.",
                    kind.option()
                ),
            ));
        }
        seen.push(kind);
        match kind {
            Name::Filter => options.filter = Some(parse_filter_on(report, version, value)?),
            Name::Select => {
                let (properties, star) = select(report, version, value)?;
                options.select = (!star).then_some(properties);
            }
            Name::OrderBy => options.order_by = order_by(report, version, value)?,
            Name::Top => options.top = Some(non_negative(kind.option(), value)?),
            Name::Skip => options.skip = Some(non_negative(kind.option(), value)?),
            Name::Count => options.count = boolean(kind.option(), value)?,
        }
    }
    Ok(options)
}

/// `$top` or `$skip`: digits, at most `i64::MAX`, spaces around allowed.
fn non_negative(option: &'static str, text: &str) -> Result<u64, QueryError> {
    let trimmed = text.trim();
    let leading = text.len() - text.trim_start().len();
    let pos = text[..leading].chars().count();
    let invalid = |why: &str| {
        QueryError::at(
            option,
            pos,
            format!("The value '{}' is not valid: {why}", shorten(text)),
        )
    };
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("expected a non-negative integer"));
    }
    trimmed
        .parse::<u64>()
        .ok()
        .filter(|n| i64::try_from(*n).is_ok())
        .ok_or_else(|| invalid(&format!("the largest accepted value is {}", i64::MAX)))
}

/// `$count`: `true` or `false`, ignoring ASCII case and spaces around.
fn boolean(option: &'static str, text: &str) -> Result<bool, QueryError> {
    match text.trim() {
        t if t.eq_ignore_ascii_case("true") => Ok(true),
        t if t.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(QueryError::at(
            option,
            0,
            format!(
                "The value '{}' is not valid: expected true or false",
                shorten(text)
            ),
        )),
    }
}

impl QueryOptions {
    /// The options as query pairs (`$filter`, `$select`, `$orderby`, `$top`, `$skip`,
    /// `$count`, in that order; absent ones left out), values not yet percent-encoded: what a
    /// next link needs. [`parse_query_options`] reads them back to equal options, provided the
    /// filter is well-typed and `select` is not `Some` of an empty list.
    pub fn to_query_pairs(&self, report: &ReportType) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(filter) = &self.filter {
            pairs.push(("$filter", filter.display(report).to_string()));
        }
        if let Some(select) = &self.select {
            let names: Vec<_> = select.iter().map(|p| p.name(report)).collect();
            pairs.push(("$select", names.join(",")));
        }
        if !self.order_by.is_empty() {
            let keys: Vec<_> = self
                .order_by
                .iter()
                .map(|k| {
                    let name = k.property.name(report);
                    if k.descending {
                        format!("{name} desc")
                    } else {
                        name.to_owned()
                    }
                })
                .collect();
            pairs.push(("$orderby", keys.join(",")));
        }
        if let Some(top) = self.top {
            pairs.push(("$top", top.to_string()));
        }
        if let Some(skip) = self.skip {
            pairs.push(("$skip", skip.to_string()));
        }
        if self.count {
            pairs.push(("$count", "true".to_owned()));
        }
        pairs
    }
}
