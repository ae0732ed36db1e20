//! Splits the text of a query option into tokens, with character positions.

use reportroot_model::{duration_seconds_from_iso, Date};

use super::{shorten, QueryError, MAX_DURATION_SECONDS};

/// A token's content.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A name or keyword: a letter or `_`, then letters, digits or `_`.
    Ident(String),
    /// A single-quoted string, `''` already unescaped.
    Str(String),
    /// A whole number that fits `i64`.
    Int(i64),
    /// A `YYYY-MM-DD` calendar date.
    Date(Date),
    /// A `duration'…'` literal, in seconds.
    Duration(u64),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `*`
    Star,
}

impl Tok {
    /// How a message names the token, e.g. `'foo'` or `the end of the text`.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("'{}'", shorten(name)),
            Tok::Str(text) => format!("the string '{}'", shorten(&text.replace('\'', "''"))),
            Tok::Int(number) => format!("the number {number}"),
            Tok::Date(date) => format!("the date {date}"),
            Tok::Duration(seconds) => format!(
                "the duration '{}'",
                reportroot_model::duration_iso_from_seconds(*seconds)
            ),
            Tok::LParen => "'('".to_owned(),
            Tok::RParen => "')'".to_owned(),
            Tok::Comma => "','".to_owned(),
            Tok::Star => "'*'".to_owned(),
        }
    }
}

/// A token and the character offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) pos: usize,
}

/// The tokens of a text up to the first lexical error, if any.
#[derive(Debug)]
pub(super) struct Tokens {
    /// The tokens before the error (all of them without one).
    pub(super) tokens: Vec<Token>,
    /// The lexical error that stopped the scan; a parser reports it when it reaches it, so
    /// that an earlier syntax error wins.
    pub(super) error: Option<QueryError>,
    /// The character length of the text: the position of "the end of the text".
    pub(super) end: usize,
}

/// Describes what follows `index` in a token list, for "found …" in messages.
pub(super) fn describe_at(tokens: &[Token], index: usize) -> String {
    tokens
        .get(index)
        .map_or_else(|| "the end of the text".to_owned(), |t| t.tok.describe())
}

/// Scans `text` (the text of `option`).
pub(super) fn tokenize(option: &'static str, text: &str) -> Tokens {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let error = loop {
        let Some(&c) = chars.get(i) else {
            break None;
        };
        let start = i;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '*' => Tok::Star,
            '\'' => match string(&chars, i) {
                Some((value, next)) => {
                    i = next;
                    tokens.push(Token {
                        tok: Tok::Str(value),
                        pos: start,
                    });
                    continue;
                }
                None => {
                    break Some(QueryError::syntax(
                        option,
                        start,
                        "the string that starts here has no closing quote (')",
                    ))
                }
            },
            c if c.is_alphabetic() || c == '_' => {
                let end = scan(&chars, i, |c| c.is_alphanumeric() || c == '_');
                let name: String = chars[i..end].iter().collect();
                if chars.get(end) == Some(&'\'') && name.eq_ignore_ascii_case("duration") {
                    match duration(option, &chars, start, end) {
                        Ok((tok, next)) => {
                            i = next;
                            tokens.push(Token { tok, pos: start });
                            continue;
                        }
                        Err(error) => break Some(error),
                    }
                }
                i = end;
                tokens.push(Token {
                    tok: Tok::Ident(name),
                    pos: start,
                });
                continue;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let end = scan(&chars, i + 1, |c| {
                    c.is_alphanumeric() || matches!(c, '.' | ':' | '-' | '+' | '_')
                });
                let run: String = chars[i..end].iter().collect();
                match literal(option, &run, start) {
                    Ok(tok) => {
                        i = end;
                        tokens.push(Token { tok, pos: start });
                        continue;
                    }
                    Err(error) => break Some(error),
                }
            }
            other => break Some(unexpected_char(option, start, other)),
        };
        i += 1;
        tokens.push(Token { tok, pos: start });
    };
    Tokens {
        tokens,
        error,
        end: chars.len(),
    }
}

/// The end of the run of characters from `from` that satisfy `keep`.
fn scan(chars: &[char], from: usize, keep: impl Fn(char) -> bool) -> usize {
    chars
        .get(from..)
        .and_then(|rest| rest.iter().position(|&c| !keep(c)))
        .map_or(chars.len(), |offset| from + offset)
}

/// The string starting with the quote at `open`, and the index after its closing quote.
fn string(chars: &[char], open: usize) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut i = open + 1;
    loop {
        match chars.get(i)? {
            '\'' if chars.get(i + 1) == Some(&'\'') => {
                value.push('\'');
                i += 2;
            }
            '\'' => return Some((value, i + 1)),
            &c => {
                value.push(c);
                i += 1;
            }
        }
    }
}

/// The `duration'…'` literal whose prefix starts at `start` and whose quote is at `open`, and
/// the index after its closing quote. OData allows a sign and fractional seconds; reports
/// count whole seconds, so those are refused rather than rounded.
fn duration(
    option: &'static str,
    chars: &[char],
    start: usize,
    open: usize,
) -> Result<(Tok, usize), QueryError> {
    let Some((text, next)) = string(chars, open) else {
        return Err(QueryError::syntax(
            option,
            open,
            "the duration that starts here has no closing quote (')",
        ));
    };
    duration_seconds_from_iso(&text)
        .filter(|&seconds| seconds <= MAX_DURATION_SECONDS)
        .map(|seconds| (Tok::Duration(seconds), next))
        .ok_or_else(|| {
            QueryError::at(
                option,
                start,
                format!(
                    "The duration '{}' is not valid: an Edm.Duration literal is a non-negative ISO 8601 duration of whole seconds up to 999999999 hours, like duration'PT1H30M' or duration'P1DT2H'",
                    shorten(&text.replace('\'', "''"))
                ),
            )
        })
}

/// Whether `text` is shaped `dddd-dd-dd`.
fn date_shaped(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Classifies a run that starts with a digit (or `-` and a digit).
fn literal(option: &'static str, run: &str, pos: usize) -> Result<Tok, QueryError> {
    let digits = run.strip_prefix('-').unwrap_or(run);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return run.parse::<i64>().map(Tok::Int).map_err(|_| {
            QueryError::at(
                option,
                pos,
                format!(
                    "The number {} does not fit Edm.Int64 (from {} to {})",
                    shorten(run),
                    i64::MIN,
                    i64::MAX
                ),
            )
        });
    }
    if date_shaped(run) {
        return Date::parse(run).map(Tok::Date).ok_or_else(|| {
            QueryError::at(
                option,
                pos,
                format!("The date {run} is not a calendar date from 1000-01-01 to 9999-12-31"),
            )
        });
    }
    let detail = if run.get(..10).is_some_and(date_shaped) && run[10..].starts_with('T') {
        format!(
            "'{}' is a date and time, but only dates (Edm.Date, written like 2025-01-31) are supported",
            shorten(run)
        )
    } else if digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.contains(['.', 'e', 'E'])
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
    {
        format!(
            "'{}' is not a whole number; only Edm.Int64 numbers are supported",
            shorten(run)
        )
    } else {
        format!(
            "'{}' is not a valid literal: numbers are whole, dates are written like 2025-01-31 and strings are in single quotes",
            shorten(run)
        )
    };
    Err(QueryError::syntax(option, pos, detail))
}

fn unexpected_char(option: &'static str, pos: usize, c: char) -> QueryError {
    let detail = match c {
        '"' => "unexpected character '\"'; strings are written in single quotes".to_owned(),
        '/' => "unexpected character '/'; property paths and casts are not supported".to_owned(),
        '-' => "unexpected character '-'; only numbers can be negated".to_owned(),
        c if c.is_control() => format!("unexpected control character U+{:04X}", u32::from(c)),
        c => format!("unexpected character '{c}'"),
    };
    QueryError::syntax(option, pos, detail)
}
