//! `$filter`: a recursive-descent parser to an untyped tree with positions, then a binder that
//! types the tree against the report type. Syntax errors win over type errors, as in ODL.

use reportroot_model::{ReportType, Value, Version};

use super::lexer::{describe_at, tokenize, Tok, Token};
use super::{
    CompareOp, Expr, Function, Literal, Operand, PropertyRef, QueryError, StringMatch, Type,
    MAX_DEPTH, MAX_OPTION_LEN,
};

const OPTION: &str = "$filter";

/// Words that are operators wherever an operand is expected.
const OPERATOR_WORDS: &[&str] = &[
    "and", "or", "eq", "ne", "gt", "ge", "lt", "le", "in", "has", "add", "sub", "mul", "div",
    "divby", "mod",
];

/// OData operators this service does not support.
const UNSUPPORTED_OPERATORS: &[&str] = &["has", "add", "sub", "mul", "div", "divby", "mod"];

/// Words that continue an expression after an operand.
const INFIX_WORDS: &[&str] = &["and", "or", "eq", "ne", "gt", "ge", "lt", "le", "in"];

const SUPPORTED_FUNCTIONS: &str =
    "contains, startswith, endswith, tolower, toupper, year, month and day";

pub(super) fn parse(
    report: &ReportType,
    version: Option<Version>,
    text: &str,
) -> Result<Expr, QueryError> {
    if text.len() > MAX_OPTION_LEN {
        return Err(QueryError::too_long(OPTION, text.len()));
    }
    let scanned = tokenize(OPTION, text);
    let mut parser = Parser {
        tokens: scanned.tokens,
        error: scanned.error,
        end: scanned.end,
        next: 0,
        nesting: 0,
    };
    let tree = parser.expression(None)?;
    if parser.peek()?.is_some() {
        return Err(
            parser.unexpected("an operator such as 'eq', 'and' or 'or', or the end of the text")
        );
    }
    Binder { report, version }.boolean(&tree)
}

/// The untyped tree.
#[derive(Debug)]
struct Node {
    kind: Kind,
    /// Where the node's text starts.
    pos: usize,
    /// 1 for a leaf, else 1 + the deepest child.
    depth: usize,
}

#[derive(Debug)]
enum Kind {
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Compare(CompareOp, Box<Node>, Box<Node>),
    /// The operand and the literals with their positions.
    In(Box<Node>, Vec<(Literal, usize)>),
    Call(String, Vec<Node>),
    Property(String),
    Literal(Literal),
}

fn too_deep(pos: usize) -> QueryError {
    QueryError::at(
        OPTION,
        pos,
        format!(
            "The expression is nested too deeply: at most {MAX_DEPTH} levels of parentheses, functions and operators are allowed; the limit is passed"
        ),
    )
}

impl Node {
    fn leaf(kind: Kind, pos: usize) -> Node {
        Node {
            kind,
            pos,
            depth: 1,
        }
    }

    /// The depth of a node over `children`, refused when it would pass [`MAX_DEPTH`]; `at` is
    /// where the error points.
    fn depth_over<'a>(
        children: impl IntoIterator<Item = &'a Node>,
        at: usize,
    ) -> Result<usize, QueryError> {
        let depth = 1 + children.into_iter().map(|c| c.depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(too_deep(at));
        }
        Ok(depth)
    }
}

struct Parser {
    tokens: Vec<Token>,
    error: Option<QueryError>,
    end: usize,
    next: usize,
    /// Current recursion: parenthesised expressions, function arguments and `not`.
    nesting: usize,
}

impl Parser {
    /// The next token; the lexical error once the tokens before it are used up.
    fn peek(&self) -> Result<Option<&Tok>, QueryError> {
        match self.tokens.get(self.next) {
            Some(token) => Ok(Some(&token.tok)),
            None => match &self.error {
                Some(error) => Err(error.clone()),
                None => Ok(None),
            },
        }
    }

    /// The next token if it is a name.
    fn peek_word(&self) -> Result<Option<&str>, QueryError> {
        Ok(match self.peek()? {
            Some(Tok::Ident(word)) => Some(word),
            _ => None,
        })
    }

    /// Where the next token starts (the end of the text after the last one).
    fn pos(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |t| t.pos)
    }

    fn bump(&mut self) {
        self.next += 1;
    }

    fn found(&self) -> String {
        describe_at(&self.tokens, self.next)
    }

    /// A syntax error for an unexpected next token, where `expected` was wanted.
    fn unexpected(&self, expected: &str) -> QueryError {
        let pos = self.pos();
        let detail = match self.tokens.get(self.next).map(|t| &t.tok) {
            Some(Tok::Ident(word)) if UNSUPPORTED_OPERATORS.contains(&word.as_str()) => {
                format!("the operator '{word}' is not supported")
            }
            Some(Tok::Ident(word))
                if word != &word.to_lowercase()
                    && INFIX_WORDS.contains(&word.to_lowercase().as_str()) =>
            {
                format!(
                    "expected {expected}, found '{word}'; operators are written in lower case, like '{}'",
                    word.to_lowercase()
                )
            }
            Some(Tok::RParen) if self.nesting == 0 => "found ')' without a matching '('".to_owned(),
            _ => format!("expected {expected}, found {}", self.found()),
        };
        QueryError::syntax(OPTION, pos, detail)
    }

    /// Consumes `)` or fails naming what was expected.
    fn close(&mut self, expected: &str) -> Result<(), QueryError> {
        if self.peek()? == Some(&Tok::RParen) {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn enter(&mut self) -> Result<(), QueryError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(too_deep(self.pos()));
        }
        Ok(())
    }

    /// A whole expression (lowest precedence: `or`). `after` names the token before it, for
    /// messages.
    fn expression(&mut self, after: Option<&str>) -> Result<Node, QueryError> {
        self.enter()?;
        let node = self.or(after);
        self.nesting -= 1;
        node
    }

    fn or(&mut self, after: Option<&str>) -> Result<Node, QueryError> {
        let mut left = self.and(after)?;
        while self.peek_word()? == Some("or") {
            let at = self.pos();
            self.bump();
            let right = self.and(Some("or"))?;
            left = Node {
                pos: left.pos,
                depth: Node::depth_over([&left, &right], at)?,
                kind: Kind::Or(Box::new(left), Box::new(right)),
            };
        }
        Ok(left)
    }

    fn and(&mut self, after: Option<&str>) -> Result<Node, QueryError> {
        let mut left = self.comparison(after)?;
        while self.peek_word()? == Some("and") {
            let at = self.pos();
            self.bump();
            let right = self.comparison(Some("and"))?;
            left = Node {
                pos: left.pos,
                depth: Node::depth_over([&left, &right], at)?,
                kind: Kind::And(Box::new(left), Box::new(right)),
            };
        }
        Ok(left)
    }

    /// Comparisons and `in`, grouping to the left.
    fn comparison(&mut self, after: Option<&str>) -> Result<Node, QueryError> {
        let mut left = self.unary(after)?;
        loop {
            let at = self.pos();
            let word = self.peek_word()?;
            if let Some(op) = word.and_then(CompareOp::from_keyword) {
                self.bump();
                let right = self.unary(Some(op.keyword()))?;
                left = Node {
                    pos: left.pos,
                    depth: Node::depth_over([&left, &right], at)?,
                    kind: Kind::Compare(op, Box::new(left), Box::new(right)),
                };
            } else if word == Some("in") {
                self.bump();
                let list = self.list()?;
                left = Node {
                    pos: left.pos,
                    depth: Node::depth_over([&left], at)?,
                    kind: Kind::In(Box::new(left), list),
                };
            } else {
                return Ok(left);
            }
        }
    }

    /// `not` binds tighter than comparisons, as in OData.
    fn unary(&mut self, after: Option<&str>) -> Result<Node, QueryError> {
        if self.peek_word()? != Some("not") {
            return self.primary(after);
        }
        let pos = self.pos();
        self.bump();
        self.enter()?;
        let inner = self.unary(Some("not"));
        self.nesting -= 1;
        let inner = inner?;
        Ok(Node {
            pos,
            depth: Node::depth_over([&inner], pos)?,
            kind: Kind::Not(Box::new(inner)),
        })
    }

    fn primary(&mut self, after: Option<&str>) -> Result<Node, QueryError> {
        let pos = self.pos();
        let what = if after.is_some_and(|word| CompareOp::from_keyword(word).is_some()) {
            "a literal, property or function call"
        } else {
            "an expression"
        };
        let expected = match after {
            Some(previous) => format!("{what} after '{previous}'"),
            None => what.to_owned(),
        };
        let Some(tok) = self.peek()?.cloned() else {
            return Err(self.unexpected(&expected));
        };
        let literal = match tok {
            Tok::LParen => {
                self.bump();
                let inner = self.expression(Some("("))?;
                self.close(&format!(
                    "')' to close the '(' at position {pos}, or an operator"
                ))?;
                return Ok(Node { pos, ..inner });
            }
            Tok::Str(text) => Literal::Value(Value::Text(text)),
            Tok::Int(number) => Literal::Value(Value::Int(number)),
            Tok::Date(date) => Literal::Value(Value::Date(date)),
            Tok::Duration(seconds) => Literal::Duration(seconds),
            Tok::Ident(word) => match word.as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "null" => Literal::Null,
                w if OPERATOR_WORDS.contains(&w) => {
                    return Err(QueryError::syntax(
                        OPTION,
                        pos,
                        format!("expected {expected}, found the operator '{w}'"),
                    ));
                }
                _ => {
                    self.bump();
                    if self.peek()? == Some(&Tok::LParen) {
                        return self.call(word, pos);
                    }
                    return Ok(Node::leaf(Kind::Property(word), pos));
                }
            },
            Tok::RParen | Tok::Comma | Tok::Star => {
                return Err(self.unexpected(&expected));
            }
        };
        self.bump();
        Ok(Node::leaf(Kind::Literal(literal), pos))
    }

    /// A function call; the next token is its `(`.
    fn call(&mut self, name: String, pos: usize) -> Result<Node, QueryError> {
        let open = self.pos();
        self.bump();
        let mut args = Vec::new();
        if self.peek()? == Some(&Tok::RParen) {
            self.bump();
        } else {
            loop {
                let previous = if args.is_empty() { "(" } else { "," };
                args.push(self.expression(Some(previous))?);
                if self.peek()? == Some(&Tok::Comma) {
                    self.bump();
                    continue;
                }
                self.close(&format!(
                    "',' or ')' to close the arguments of '{}' opened at position {open}",
                    super::shorten(&name)
                ))?;
                break;
            }
        }
        Ok(Node {
            pos,
            depth: Node::depth_over(&args, pos)?,
            kind: Kind::Call(name, args),
        })
    }

    /// The `(literal, …)` after `in`.
    fn list(&mut self) -> Result<Vec<(Literal, usize)>, QueryError> {
        let open = self.pos();
        if self.peek()? != Some(&Tok::LParen) {
            return Err(self.unexpected("'(' and a list of literals after 'in'"));
        }
        self.bump();
        if self.peek()? == Some(&Tok::RParen) {
            return Err(QueryError::at(
                OPTION,
                open,
                "The list after 'in' is empty; it needs at least one value",
            ));
        }
        let mut list = Vec::new();
        loop {
            let at = self.pos();
            let literal =
                match self.peek()? {
                    Some(Tok::Str(text)) => Literal::Value(Value::Text(text.clone())),
                    Some(Tok::Int(number)) => Literal::Value(Value::Int(*number)),
                    Some(Tok::Date(date)) => Literal::Value(Value::Date(*date)),
                    Some(Tok::Duration(seconds)) => Literal::Duration(*seconds),
                    Some(Tok::Ident(word)) if word == "true" => Literal::Bool(true),
                    Some(Tok::Ident(word)) if word == "false" => Literal::Bool(false),
                    Some(Tok::Ident(word)) if word == "null" => Literal::Null,
                    _ => return Err(self.unexpected(
                        "a literal (the list after 'in' may only hold strings, numbers, dates and durations)",
                    )),
                };
            self.bump();
            list.push((literal, at));
            match self.peek()? {
                Some(Tok::Comma) => self.bump(),
                Some(Tok::RParen) => {
                    self.bump();
                    return Ok(list);
                }
                _ => {
                    return Err(self.unexpected(&format!(
                        "',' or ')' to close the list opened at position {open}"
                    )))
                }
            }
        }
    }
}

/// The typed meaning of a node.
enum Bound {
    /// A Boolean condition (not a bare `true`/`false` literal, which is a value).
    Condition(Expr),
    /// A value and its type.
    Value(Operand, Type),
}

impl Bound {
    fn type_name(&self) -> &'static str {
        match self {
            Bound::Condition(_) => "a Boolean condition",
            Bound::Value(_, ty) => ty.edm_name(),
        }
    }
}

struct Binder<'r> {
    report: &'r ReportType,
    /// The version whose type the properties are looked up in (`None`: every property).
    version: Option<Version>,
}

impl Binder<'_> {
    /// A node that must be a Boolean expression.
    fn boolean(&self, node: &Node) -> Result<Expr, QueryError> {
        match self.bind(node)? {
            Bound::Condition(expr) => Ok(expr),
            Bound::Value(Operand::Literal(Literal::Bool(value)), _) => Ok(Expr::Literal(value)),
            Bound::Value(operand, ty) => Err(QueryError::at(
                OPTION,
                node.pos,
                format!(
                    "A Boolean condition is expected, but {} is a value of type {}",
                    self.describe(&operand),
                    ty.edm_name()
                ),
            )),
        }
    }

    fn describe(&self, operand: &Operand) -> String {
        match operand {
            Operand::Property(p) => format!("the property '{}'", p.name(self.report)),
            Operand::Literal(Literal::Null) => "null".to_owned(),
            Operand::Literal(_) => "the literal".to_owned(),
            Operand::Call(f, _) => format!("the result of '{}'", f.name()),
        }
    }

    fn bind(&self, node: &Node) -> Result<Bound, QueryError> {
        Ok(match &node.kind {
            Kind::Or(left, right) => Bound::Condition(Expr::Or(
                Box::new(self.boolean(left)?),
                Box::new(self.boolean(right)?),
            )),
            Kind::And(left, right) => Bound::Condition(Expr::And(
                Box::new(self.boolean(left)?),
                Box::new(self.boolean(right)?),
            )),
            Kind::Not(inner) => match self.bind(inner)? {
                Bound::Condition(expr) => Bound::Condition(Expr::Not(Box::new(expr))),
                Bound::Value(Operand::Literal(Literal::Bool(value)), _) => {
                    Bound::Condition(Expr::Not(Box::new(Expr::Literal(value))))
                }
                Bound::Value(_, ty) => {
                    return Err(QueryError::at(
                        OPTION,
                        node.pos,
                        format!(
                            "The operand of 'not' is a value of type {}, not a Boolean condition ('not' binds tighter than comparisons: write 'not (a eq b)')",
                            ty.edm_name()
                        ),
                    ))
                }
            },
            Kind::Compare(op, left, right) => {
                self.compare(*op, node.pos, self.bind(left)?, self.bind(right)?)?
            }
            Kind::In(operand, list) => self.in_list(operand, list)?,
            Kind::Call(name, args) => self.call(name, node.pos, args)?,
            Kind::Property(name) => {
                let property = PropertyRef::find_on(self.report, self.version, name).ok_or_else(|| {
                    QueryError::unknown_property(OPTION, node.pos, self.report, name)
                })?;
                Bound::Value(Operand::Property(property), property.ty(self.report))
            }
            Kind::Literal(literal) => Bound::Value(Operand::Literal(literal.clone()), literal.ty()),
        })
    }

    fn compare(
        &self,
        op: CompareOp,
        pos: usize,
        left: Bound,
        right: Bound,
    ) -> Result<Bound, QueryError> {
        let equality = matches!(op, CompareOp::Eq | CompareOp::Ne);
        let incompatible = |left: &str, right: &str| {
            QueryError::at(
                OPTION,
                pos,
                format!(
                    "The types {left} and {right} are not compatible for operator '{}'",
                    op.keyword()
                ),
            )
        };
        match (left, right) {
            (Bound::Value(left, lt), Bound::Value(right, rt)) => {
                if lt == Type::Null || rt == Type::Null {
                    if !equality {
                        return Err(QueryError::at(
                            OPTION,
                            pos,
                            format!(
                                "null can only be compared with 'eq' or 'ne', not with '{}'",
                                op.keyword()
                            ),
                        ));
                    }
                } else if lt != rt {
                    return Err(incompatible(lt.edm_name(), rt.edm_name()));
                } else if lt == Type::Bool && !equality {
                    return Err(QueryError::at(
                        OPTION,
                        pos,
                        format!(
                            "Edm.Boolean values can only be compared with 'eq' or 'ne', not with '{}'",
                            op.keyword()
                        ),
                    ));
                }
                Ok(Bound::Condition(Expr::Compare { op, left, right }))
            }
            // `condition eq true` and the like: the condition itself or its negation.
            (Bound::Condition(expr), Bound::Value(Operand::Literal(Literal::Bool(value)), _))
            | (Bound::Value(Operand::Literal(Literal::Bool(value)), _), Bound::Condition(expr)) => {
                if !equality {
                    return Err(incompatible("Edm.Boolean", "Edm.Boolean"));
                }
                let keep = value == (op == CompareOp::Eq);
                Ok(Bound::Condition(if keep {
                    expr
                } else {
                    Expr::Not(Box::new(expr))
                }))
            }
            (left, right) => {
                let name = |b: &Bound| match b {
                    Bound::Condition(_) => "Edm.Boolean",
                    Bound::Value(_, ty) => ty.edm_name(),
                };
                if matches!((&left, &right), (Bound::Condition(_), Bound::Condition(_))) {
                    return Err(QueryError::at(
                        OPTION,
                        pos,
                        format!(
                            "Two Boolean conditions cannot be compared with '{}'; combine them with 'and', 'or' and 'not'",
                            op.keyword()
                        ),
                    ));
                }
                Err(incompatible(name(&left), name(&right)))
            }
        }
    }

    fn in_list(&self, operand: &Node, list: &[(Literal, usize)]) -> Result<Bound, QueryError> {
        let bound = self.bind(operand)?;
        let (operand_value, ty) = match bound {
            Bound::Value(value, ty)
                if matches!(ty, Type::Date | Type::Int | Type::String | Type::Duration) =>
            {
                (value, ty)
            }
            other => {
                return Err(QueryError::at(
                    OPTION,
                    operand.pos,
                    format!(
                        "The left side of 'in' must be an Edm.String, Edm.Int64, Edm.Date or Edm.Duration value, but it is {}",
                        other.type_name()
                    ),
                ))
            }
        };
        let mut values = Vec::with_capacity(list.len());
        for (literal, at) in list {
            if literal.ty() != ty {
                let problem = if *literal == Literal::Null {
                    "null cannot be in the list after 'in' (use 'eq null')".to_owned()
                } else {
                    format!(
                        "The value in the list after 'in' has type {}, but the left side has type {}",
                        literal.ty().edm_name(),
                        ty.edm_name()
                    )
                };
                return Err(QueryError::at(OPTION, *at, problem));
            }
            values.push(literal.clone());
        }
        Ok(Bound::Condition(Expr::In {
            operand: operand_value,
            list: values,
        }))
    }

    fn call(&self, name: &str, pos: usize, args: &[Node]) -> Result<Bound, QueryError> {
        let matcher = StringMatch::ALL.into_iter().find(|m| m.name() == name);
        let function = Function::ALL.into_iter().find(|f| f.name() == name);
        let arity = match (matcher, function) {
            (Some(_), _) => 2,
            (None, Some(_)) => 1,
            (None, None) => {
                let lower = name.to_lowercase();
                let hint = if lower != name
                    && (StringMatch::ALL.iter().any(|m| m.name() == lower)
                        || Function::ALL.iter().any(|f| f.name() == lower))
                {
                    format!(" (function names are lower-case: '{lower}')")
                } else {
                    String::new()
                };
                return Err(QueryError::at(
                    OPTION,
                    pos,
                    format!(
                        "The function '{}' is not supported{hint}; the supported functions are {SUPPORTED_FUNCTIONS}",
                        super::shorten(name)
                    ),
                ));
            }
        };
        if args.len() != arity {
            return Err(QueryError::at(
                OPTION,
                pos,
                format!(
                    "The function '{name}' takes {arity} argument{}, but {} {} given",
                    if arity == 1 { "" } else { "s" },
                    args.len(),
                    if args.len() == 1 { "was" } else { "were" }
                ),
            ));
        }
        let argument = |node: &Node, expected: Type| -> Result<Operand, QueryError> {
            match self.bind(node)? {
                Bound::Value(operand, ty) if ty == expected => Ok(operand),
                other => Err(QueryError::at(
                    OPTION,
                    node.pos,
                    format!(
                        "The function '{name}' expects an {} argument, but this argument is {}",
                        expected.edm_name(),
                        other.type_name()
                    ),
                )),
            }
        };
        match (matcher, function, args) {
            (Some(kind), _, [target, pattern]) => Ok(Bound::Condition(Expr::Match {
                kind,
                target: argument(target, Type::String)?,
                pattern: argument(pattern, Type::String)?,
            })),
            (None, Some(function), [arg]) => Ok(Bound::Value(
                Operand::Call(function, Box::new(argument(arg, function.argument_type())?)),
                function.result_type(),
            )),
            _ => Err(QueryError::at(
                OPTION,
                pos,
                "The function call is not valid",
            )),
        }
    }
}
