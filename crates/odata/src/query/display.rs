//! Printing the AST back in OData syntax, with just the parentheses the parser needs.

use std::fmt::{self, Display, Formatter, Write};

use reportroot_model::{duration_iso_from_seconds, ReportType, Value};

use super::{Expr, Literal, Operand};

/// Prints an [`Expr`] in OData `$filter` syntax; made by [`Expr::display`].
///
/// The text parses back to an equal expression when the expression is well-typed for the
/// report (as every parsed one is) and no deeper than [`super::MAX_DEPTH`].
#[derive(Debug, Clone, Copy)]
pub struct ExprDisplay<'a> {
    expr: &'a Expr,
    report: &'a ReportType,
}

impl<'a> ExprDisplay<'a> {
    pub(super) fn new(expr: &'a Expr, report: &'a ReportType) -> Self {
        ExprDisplay { expr, report }
    }
}

impl Display for ExprDisplay<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_expr(f, self.expr, self.report, Level::Or)
    }
}

/// How loosely an expression may bind where it is printed without parentheses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// Anything.
    Or,
    /// `and` or tighter.
    And,
    /// A comparison, `in`, function call or `not`: the operand of `and`.
    Comparison,
    /// A function call, literal or `not` only: the operand of `not`.
    Unary,
}

fn level(expr: &Expr) -> Level {
    match expr {
        Expr::Or(..) => Level::Or,
        Expr::And(..) => Level::And,
        Expr::Compare { .. } | Expr::In { .. } => Level::Comparison,
        Expr::Match { .. } | Expr::Not(_) | Expr::Literal(_) => Level::Unary,
    }
}

fn write_expr(f: &mut Formatter<'_>, expr: &Expr, report: &ReportType, min: Level) -> fmt::Result {
    if level(expr) < min {
        f.write_char('(')?;
        write_expr(f, expr, report, Level::Or)?;
        return f.write_char(')');
    }
    match expr {
        // Binary operators group to the left, so a right operand of the same level needs
        // parentheses.
        Expr::Or(left, right) => {
            write_expr(f, left, report, Level::Or)?;
            f.write_str(" or ")?;
            write_expr(f, right, report, Level::And)
        }
        Expr::And(left, right) => {
            write_expr(f, left, report, Level::And)?;
            f.write_str(" and ")?;
            write_expr(f, right, report, Level::Comparison)
        }
        Expr::Not(inner) => {
            f.write_str("not ")?;
            write_expr(f, inner, report, Level::Unary)
        }
        Expr::Literal(value) => write!(f, "{value}"),
        Expr::Compare { op, left, right } => {
            write_operand(f, left, report)?;
            write!(f, " {} ", op.keyword())?;
            write_operand(f, right, report)
        }
        Expr::In { operand, list } => {
            write_operand(f, operand, report)?;
            f.write_str(" in (")?;
            for (i, literal) in list.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                write_literal(f, literal)?;
            }
            f.write_char(')')
        }
        Expr::Match {
            kind,
            target,
            pattern,
        } => {
            write!(f, "{}(", kind.name())?;
            write_operand(f, target, report)?;
            f.write_char(',')?;
            write_operand(f, pattern, report)?;
            f.write_char(')')
        }
    }
}

fn write_operand(f: &mut Formatter<'_>, operand: &Operand, report: &ReportType) -> fmt::Result {
    match operand {
        Operand::Property(property) => f.write_str(property.name(report)),
        Operand::Literal(literal) => write_literal(f, literal),
        Operand::Call(function, argument) => {
            write!(f, "{}(", function.name())?;
            write_operand(f, argument, report)?;
            f.write_char(')')
        }
    }
}

fn write_literal(f: &mut Formatter<'_>, literal: &Literal) -> fmt::Result {
    match literal {
        Literal::Value(Value::Text(text)) => {
            f.write_char('\'')?;
            for (i, part) in text.split('\'').enumerate() {
                if i > 0 {
                    f.write_str("''")?;
                }
                f.write_str(part)?;
            }
            f.write_char('\'')
        }
        Literal::Value(value) => write!(f, "{value}"),
        Literal::Null => f.write_str("null"),
        Literal::Bool(value) => write!(f, "{value}"),
        Literal::Duration(seconds) => {
            write!(f, "duration'{}'", duration_iso_from_seconds(*seconds))
        }
    }
}
