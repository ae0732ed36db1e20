//! Unit tests of the query-option parsers.

use reportroot_model::{find_report, Date, ReportType, Value, ValueKind};

use super::*;

fn active() -> &'static ReportType {
    find_report("office365ActiveUserCounts").expect("report")
}

fn activations() -> &'static ReportType {
    find_report("office365ActivationsUserCounts").expect("report")
}

#[track_caller]
fn ok(text: &str) -> Expr {
    match parse_filter(active(), text) {
        Ok(expr) => expr,
        Err(error) => panic!("{text:?} should parse: {error}"),
    }
}

#[track_caller]
fn err(text: &str) -> QueryError {
    match parse_filter(active(), text) {
        Ok(expr) => panic!("{text:?} should fail, parsed as {expr:?}"),
        Err(error) => {
            assert_eq!(error.option, "$filter");
            error
        }
    }
}

/// The error's position and message.
#[track_caller]
fn fails(text: &str) -> (Option<usize>, String) {
    let error = err(text);
    (error.position, error.message)
}

fn prop(name: &str) -> Operand {
    Operand::Property(PropertyRef::find(active(), name).expect("property"))
}

fn int(n: i64) -> Operand {
    Operand::Literal(Literal::Value(Value::Int(n)))
}

fn text(s: &str) -> Operand {
    Operand::Literal(Literal::Value(Value::Text(s.to_owned())))
}

fn date(y: i32, m: u8, d: u8) -> Operand {
    Operand::Literal(Literal::Value(Value::Date(
        Date::from_ymd(y, m, d).expect("date"),
    )))
}

fn cmp(left: Operand, op: CompareOp, right: Operand) -> Expr {
    Expr::Compare { op, left, right }
}

fn and(l: Expr, r: Expr) -> Expr {
    Expr::And(Box::new(l), Box::new(r))
}

fn or(l: Expr, r: Expr) -> Expr {
    Expr::Or(Box::new(l), Box::new(r))
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn teams_eq(n: i64) -> Expr {
    cmp(prop("teams"), CompareOp::Eq, int(n))
}

#[test]
fn every_comparison_operator() {
    for op in CompareOp::ALL {
        let text_form = format!("teams {} 5", op.keyword());
        assert_eq!(
            ok(&text_form),
            cmp(prop("teams"), op, int(5)),
            "{text_form}"
        );
        let date_form = format!("reportDate {} 2025-01-31", op.keyword());
        assert_eq!(
            ok(&date_form),
            cmp(prop("reportDate"), op, date(2025, 1, 31))
        );
        let string_form = format!("reportPeriod {} '7'", op.keyword());
        assert_eq!(ok(&string_form), cmp(prop("reportPeriod"), op, text("7")));
    }
}

#[test]
fn property_kinds_and_id() {
    assert_eq!(
        ok("id eq '3fa85f64-5717-4562-b3fc-2c963f66afa6'"),
        cmp(
            Operand::Property(PropertyRef::Id),
            CompareOp::Eq,
            text("3fa85f64-5717-4562-b3fc-2c963f66afa6")
        )
    );
    assert_eq!(
        parse_filter(activations(), "productType eq 'VISIO CLIENT'"),
        Ok(cmp(
            Operand::Property(PropertyRef::Index(1)),
            CompareOp::Eq,
            text("VISIO CLIENT")
        ))
    );
    // Literals may stand on either side, and compare with each other.
    assert_eq!(ok("5 lt teams"), cmp(int(5), CompareOp::Lt, prop("teams")));
    assert_eq!(ok("'a' eq 'b'"), cmp(text("a"), CompareOp::Eq, text("b")));
    assert_eq!(
        ok("exchange gt teams"),
        cmp(prop("exchange"), CompareOp::Gt, prop("teams"))
    );
}

#[test]
fn precedence_and_grouping() {
    let (a, b, c) = (teams_eq(1), teams_eq(2), teams_eq(3));
    assert_eq!(
        ok("teams eq 1 or teams eq 2 and teams eq 3"),
        or(a.clone(), and(b.clone(), c.clone()))
    );
    assert_eq!(
        ok("teams eq 1 and teams eq 2 or teams eq 3"),
        or(and(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        ok("teams eq 1 and teams eq 2 and teams eq 3"),
        and(and(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        ok("teams eq 1 or teams eq 2 or teams eq 3"),
        or(or(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        ok("teams eq 1 and (teams eq 2 or teams eq 3)"),
        and(a.clone(), or(b.clone(), c.clone()))
    );
    assert_eq!(
        ok("((teams eq 1))and(teams eq 2)"),
        and(a.clone(), b.clone())
    );
    assert_eq!(
        ok("not (teams eq 1) and teams eq 2"),
        and(not(a.clone()), b.clone())
    );
    assert_eq!(
        ok("not (teams eq 1 or teams eq 2)"),
        not(or(a.clone(), b.clone()))
    );
    assert_eq!(ok("not not true"), not(not(Expr::Literal(true))));
    let contains = Expr::Match {
        kind: StringMatch::Contains,
        target: prop("reportPeriod"),
        pattern: text("3"),
    };
    assert_eq!(
        ok("not contains(reportPeriod,'3') or teams eq 1"),
        or(not(contains), a)
    );
}

#[test]
fn not_binds_tighter_than_comparison() {
    let (pos, message) = fails("not teams eq 1");
    assert_eq!(pos, Some(0));
    assert!(
        message.contains("The operand of 'not' is a value of type Edm.Int64"),
        "{message}"
    );
    assert!(message.contains("write 'not (a eq b)'"), "{message}");
}

#[test]
fn in_lists() {
    assert_eq!(
        parse_filter(activations(), "productType in ('A', 'B','C' )"),
        Ok(Expr::In {
            operand: Operand::Property(PropertyRef::Index(1)),
            list: ["A", "B", "C"]
                .map(|s| Literal::Value(Value::Text(s.into())))
                .to_vec(),
        })
    );
    assert_eq!(
        ok("teams in (1)"),
        Expr::In {
            operand: prop("teams"),
            list: vec![Literal::Value(Value::Int(1))]
        }
    );
    assert!(matches!(
        ok("year(reportDate) in (2024,2025)"),
        Expr::In { .. }
    ));
    assert!(matches!(ok("reportDate in (2025-01-01)"), Expr::In { .. }));
    assert_eq!(
        fails("teams in ()"),
        (
            Some(9),
            "The list after 'in' is empty; it needs at least one value at position 9 in $filter."
                .into()
        )
    );
    assert_eq!(
        fails("teams in (1, 'x')"),
        (Some(13), "The value in the list after 'in' has type Edm.String, but the left side has type Edm.Int64 at position 13 in $filter.".into())
    );
    assert_eq!(fails("teams in (1,null)").0, Some(12));
    assert!(fails("teams in (1,null)").1.contains("use 'eq null'"));
    assert_eq!(
        fails("teams in (1, exchange)"),
        (Some(13), "Syntax error at position 13 in $filter: expected a literal (the list after 'in' may only hold strings, numbers, dates and durations), found 'exchange'.".into())
    );
    assert_eq!(fails("teams in 1").0, Some(9));
    assert_eq!(fails("teams in (1").0, Some(11));
    assert_eq!(fails("teams in (1 2)").0, Some(12));
    assert!(fails("true in (true)").1.contains("left side of 'in'"));
    assert!(fails("null in (1)").1.contains("left side of 'in'"));
    assert!(fails("contains(reportPeriod,'x') in (true)")
        .1
        .contains("a Boolean condition"));
}

#[test]
fn string_functions() {
    for kind in StringMatch::ALL {
        let source = format!("{}(reportPeriod,'3')", kind.name());
        assert_eq!(
            ok(&source),
            Expr::Match {
                kind,
                target: prop("reportPeriod"),
                pattern: text("3")
            }
        );
    }
    assert_eq!(
        ok("startswith(tolower(id), toupper('AB'))"),
        Expr::Match {
            kind: StringMatch::StartsWith,
            target: Operand::Call(
                Function::ToLower,
                Box::new(Operand::Property(PropertyRef::Id))
            ),
            pattern: Operand::Call(Function::ToUpper, Box::new(text("AB"))),
        }
    );
    assert_eq!(
        ok("tolower(reportPeriod) eq '7'"),
        cmp(
            Operand::Call(Function::ToLower, Box::new(prop("reportPeriod"))),
            CompareOp::Eq,
            text("7")
        )
    );
}

#[test]
fn date_functions() {
    for (name, function) in [
        ("year", Function::Year),
        ("month", Function::Month),
        ("day", Function::Day),
    ] {
        let source = format!("{name}(reportRefreshDate) ge 3");
        assert_eq!(
            ok(&source),
            cmp(
                Operand::Call(function, Box::new(prop("reportRefreshDate"))),
                CompareOp::Ge,
                int(3)
            )
        );
    }
    assert!(matches!(
        ok("year(2024-02-29) eq 2024"),
        Expr::Compare { .. }
    ));
}

#[test]
fn function_errors() {
    assert_eq!(
        fails("year(reportPeriod) eq 2025"),
        (Some(5), "The function 'year' expects an Edm.Date argument, but this argument is Edm.String at position 5 in $filter.".into())
    );
    assert_eq!(
        fails("tolower(teams) eq 'a'"),
        (Some(8), "The function 'tolower' expects an Edm.String argument, but this argument is Edm.Int64 at position 8 in $filter.".into())
    );
    assert_eq!(fails("contains(reportPeriod, 7)").0, Some(23));
    assert!(fails("contains(reportPeriod, null)").1.contains("is null"));
    assert!(fails("tolower(teams eq 1) eq 'a'")
        .1
        .contains("a Boolean condition"));
    assert_eq!(
        fails("contains(reportPeriod)"),
        (
            Some(0),
            "The function 'contains' takes 2 arguments, but 1 was given at position 0 in $filter."
                .into()
        )
    );
    assert_eq!(
        fails("year() eq 1"),
        (
            Some(0),
            "The function 'year' takes 1 argument, but 0 were given at position 0 in $filter."
                .into()
        )
    );
    let (pos, message) = fails("teams eq 1 and length(reportPeriod) eq 1");
    assert_eq!(pos, Some(15));
    assert!(
        message.starts_with(
            "The function 'length' is not supported; the supported functions are contains"
        ),
        "{message}"
    );
    assert!(fails("Contains(reportPeriod,'a')")
        .1
        .contains("function names are lower-case: 'contains'"));
    // A date function's result is an Int.
    assert!(fails("year(reportDate) eq '2025'")
        .1
        .contains("Edm.Int64 and Edm.String"));
    // A string-matching function is a condition, not a value.
    assert!(fails("contains(reportPeriod,'a') eq 'a'")
        .1
        .contains("Edm.Boolean and Edm.String"));
    assert_eq!(fails("contains(reportPeriod 'a')").0, Some(22));
}

#[test]
fn string_literals() {
    assert_eq!(
        ok("reportPeriod eq 'O''Brien'"),
        cmp(prop("reportPeriod"), CompareOp::Eq, text("O'Brien"))
    );
    assert_eq!(
        ok("reportPeriod eq ''''"),
        cmp(prop("reportPeriod"), CompareOp::Eq, text("'"))
    );
    assert_eq!(
        ok("reportPeriod eq ''"),
        cmp(prop("reportPeriod"), CompareOp::Eq, text(""))
    );
    assert_eq!(
        ok("reportPeriod eq ' a and (b) eq '"),
        cmp(prop("reportPeriod"), CompareOp::Eq, text(" a and (b) eq "))
    );
    assert_eq!(
        ok("reportPeriod eq 'é€😀'"),
        cmp(prop("reportPeriod"), CompareOp::Eq, text("é€😀"))
    );
    assert_eq!(
        fails("reportPeriod eq 'abc"),
        (Some(16), "Syntax error at position 16 in $filter: the string that starts here has no closing quote (').".into())
    );
    assert_eq!(fails("reportPeriod eq 'it''s").0, Some(16));
    assert!(fails("reportPeriod eq \"7\"").1.contains("single quotes"));
}

#[test]
fn integer_literals() {
    assert_eq!(
        ok("teams eq -5"),
        cmp(prop("teams"), CompareOp::Eq, int(-5))
    );
    assert_eq!(
        ok("teams eq 007"),
        cmp(prop("teams"), CompareOp::Eq, int(7))
    );
    assert_eq!(
        ok("teams le 9223372036854775807"),
        cmp(prop("teams"), CompareOp::Le, int(i64::MAX))
    );
    assert_eq!(
        ok("teams ge -9223372036854775808"),
        cmp(prop("teams"), CompareOp::Ge, int(i64::MIN))
    );
    assert_eq!(
        fails("teams le 9223372036854775808"),
        (Some(9), "The number 9223372036854775808 does not fit Edm.Int64 (from -9223372036854775808 to 9223372036854775807) at position 9 in $filter.".into())
    );
    assert_eq!(fails("teams ge -9223372036854775809").0, Some(9));
    assert!(fails("teams eq 1.5")
        .1
        .contains("'1.5' is not a whole number"));
    assert!(fails("teams eq 1e3").1.contains("not a whole number"));
    assert!(fails("teams eq 5L")
        .1
        .contains("'5L' is not a valid literal"));
    assert!(fails("teams eq - 5")
        .1
        .contains("only numbers can be negated"));
    assert!(fails("teams eq -teams")
        .1
        .contains("unexpected character '-'"));
}

#[test]
fn date_literals() {
    assert_eq!(
        ok("reportDate eq 2024-02-29"),
        cmp(prop("reportDate"), CompareOp::Eq, date(2024, 2, 29))
    );
    assert_eq!(
        fails("reportDate eq 2023-02-29"),
        (Some(14), "The date 2023-02-29 is not a calendar date from 1000-01-01 to 9999-12-31 at position 14 in $filter.".into())
    );
    for bad in ["2025-13-01", "2025-00-10", "2025-04-31", "0999-12-31"] {
        let (pos, message) = fails(&format!("reportDate eq {bad}"));
        assert_eq!(pos, Some(14));
        assert!(message.contains("is not a calendar date"), "{message}");
    }
    assert!(fails("reportDate eq 2025-1-31")
        .1
        .contains("not a valid literal"));
    assert!(fails("reportDate eq 2025-01-31T00:00:00Z")
        .1
        .contains("is a date and time, but only dates"));
    assert!(fails("reportDate eq 2025-01-31T00:00:00+01:00")
        .1
        .contains("date and time"));
    // A date in quotes is a string.
    assert_eq!(
        fails("reportDate eq '2025-01-31'"),
        (Some(0), "The types Edm.Date and Edm.String are not compatible for operator 'eq' at position 0 in $filter.".into())
    );
}

#[test]
fn null_and_boolean_literals() {
    let null = Operand::Literal(Literal::Null);
    assert_eq!(
        ok("reportPeriod eq null"),
        cmp(prop("reportPeriod"), CompareOp::Eq, null.clone())
    );
    assert_eq!(
        ok("null ne teams"),
        cmp(null.clone(), CompareOp::Ne, prop("teams"))
    );
    assert_eq!(
        ok("null eq null"),
        cmp(null.clone(), CompareOp::Eq, null.clone())
    );
    assert_eq!(
        fails("teams gt null"),
        (
            Some(0),
            "null can only be compared with 'eq' or 'ne', not with 'gt' at position 0 in $filter."
                .into()
        )
    );
    assert_eq!(ok("true"), Expr::Literal(true));
    assert_eq!(ok(" ( false ) "), Expr::Literal(false));
    assert_eq!(ok("not false"), not(Expr::Literal(false)));
    let t = Operand::Literal(Literal::Bool(true));
    let f = Operand::Literal(Literal::Bool(false));
    assert_eq!(ok("true eq false"), cmp(t.clone(), CompareOp::Eq, f));
    assert_eq!(ok("true ne null"), cmp(t, CompareOp::Ne, null));
    assert!(fails("true gt false")
        .1
        .contains("Edm.Boolean values can only be compared with 'eq' or 'ne'"));
    assert_eq!(
        ok("teams eq 1 and true"),
        and(teams_eq(1), Expr::Literal(true))
    );
    // Keywords are lower-case.
    assert!(fails("teams eq 1 and TRUE").1.contains("'TRUE'"));
}

#[test]
fn conditions_compared_with_booleans() {
    let contains = Expr::Match {
        kind: StringMatch::Contains,
        target: prop("reportPeriod"),
        pattern: text("3"),
    };
    assert_eq!(ok("contains(reportPeriod,'3') eq true"), contains.clone());
    assert_eq!(ok("contains(reportPeriod,'3') ne false"), contains.clone());
    assert_eq!(
        ok("false eq contains(reportPeriod,'3')"),
        not(contains.clone())
    );
    assert_eq!(ok("contains(reportPeriod,'3') ne true"), not(contains));
    assert_eq!(ok("teams eq 1 eq true"), teams_eq(1));
    assert!(fails("(teams eq 1) eq (teams eq 2)")
        .1
        .contains("Two Boolean conditions cannot be compared"));
    assert!(fails("(teams eq 1) gt true")
        .1
        .contains("Edm.Boolean and Edm.Boolean are not compatible for operator 'gt'"));
    assert!(fails("(teams eq 1) eq 1")
        .1
        .contains("Edm.Boolean and Edm.Int64"));
    assert!(fails("(teams eq 1) eq null")
        .1
        .contains("Edm.Boolean and null"));
}

#[test]
fn type_errors() {
    assert_eq!(
        fails("reportRefreshDate eq 'x'"),
        (Some(0), "The types Edm.Date and Edm.String are not compatible for operator 'eq' at position 0 in $filter.".into())
    );
    assert_eq!(
        fails("teams eq 1 and teams ge '1'"),
        (Some(15), "The types Edm.Int64 and Edm.String are not compatible for operator 'ge' at position 15 in $filter.".into())
    );
    assert!(fails("reportPeriod eq 7")
        .1
        .contains("Edm.String and Edm.Int64"));
    assert!(fails("reportDate lt teams")
        .1
        .contains("Edm.Date and Edm.Int64"));
    assert!(fails("id eq 3").1.contains("Edm.String and Edm.Int64"));
    assert!(fails("true eq 1").1.contains("Edm.Boolean and Edm.Int64"));
}

#[test]
fn non_boolean_expressions() {
    assert_eq!(
        fails("teams"),
        (Some(0), "A Boolean condition is expected, but the property 'teams' is a value of type Edm.Int64 at position 0 in $filter.".into())
    );
    assert_eq!(fails("teams eq 1 and reportPeriod").0, Some(15));
    assert_eq!(fails("'x' or true").0, Some(0));
    assert!(fails("(year(reportDate))")
        .1
        .contains("the result of 'year' is a value of type Edm.Int64"));
    assert!(fails("null").1.contains("null is a value of type null"));
    assert!(fails("5")
        .1
        .contains("the literal is a value of type Edm.Int64"));
}

#[test]
fn unknown_properties() {
    assert_eq!(
        fails("foo eq 1"),
        (Some(0), "Could not find a property named 'foo' on type 'microsoft.graph.office365ActiveUserCounts' (position 0 in $filter).".into())
    );
    let (pos, message) = fails("teams eq 1 and ReportDate eq 2025-01-01");
    assert_eq!(pos, Some(15));
    assert!(
        message.ends_with("Property names are case-sensitive: did you mean 'reportDate'?"),
        "{message}"
    );
    assert!(fails("ID eq 'x'").1.contains("did you mean 'id'?"));
    // productType exists on another report only.
    assert!(fails("productType eq 'x'").1.contains("'productType'"));
    // Type errors come from binding, which runs after the whole text parsed.
    assert_eq!(fails("foo eq 1 and (").0, Some(14));
}

#[test]
fn positions_count_characters_not_bytes() {
    // 'é€😀' is 3 characters but 9 bytes.
    let (pos, message) = fails("reportPeriod eq 'é€😀' and foo eq 1");
    assert_eq!(pos, Some(26));
    assert!(message.contains("(position 26 in $filter)"), "{message}");
    assert_eq!(fails("reportPeriod eq 'é' §").0, Some(20));
}

#[test]
fn syntax_errors() {
    assert_eq!(
        fails("reportDate eq "),
        (Some(14), "Syntax error at position 14 in $filter: expected a literal, property or function call after 'eq', found the end of the text.".into())
    );
    assert_eq!(
        fails(""),
        (Some(0), "Syntax error at position 0 in $filter: expected an expression, found the end of the text.".into())
    );
    assert_eq!(fails("   ").0, Some(3));
    assert_eq!(
        fails("teams eq 1 and"),
        (Some(14), "Syntax error at position 14 in $filter: expected an expression after 'and', found the end of the text.".into())
    );
    assert_eq!(
        fails("teams eq eq 1"),
        (Some(9), "Syntax error at position 9 in $filter: expected a literal, property or function call after 'eq', found the operator 'eq'.".into())
    );
    assert_eq!(
        fails("teams eq 1)"),
        (
            Some(10),
            "Syntax error at position 10 in $filter: found ')' without a matching '('.".into()
        )
    );
    assert_eq!(
        fails("(teams eq 1"),
        (Some(11), "Syntax error at position 11 in $filter: expected ')' to close the '(' at position 0, or an operator, found the end of the text.".into())
    );
    assert_eq!(
        fails("teams eq 1 teams"),
        (Some(11), "Syntax error at position 11 in $filter: expected an operator such as 'eq', 'and' or 'or', or the end of the text, found 'teams'.".into())
    );
    assert_eq!(
        fails("teams add 1 eq 2"),
        (
            Some(6),
            "Syntax error at position 6 in $filter: the operator 'add' is not supported.".into()
        )
    );
    assert!(fails("teams EQ 1")
        .1
        .contains("operators are written in lower case, like 'eq'"));
    assert!(fails("teams eq 1 AND teams eq 2").1.contains("like 'and'"));
    assert_eq!(
        fails("teams eq 1 # x"),
        (
            Some(11),
            "Syntax error at position 11 in $filter: unexpected character '#'.".into()
        )
    );
    assert!(fails("teams/x eq 1").1.contains("property paths"));
    assert!(fails("teams eq\n1\u{7}")
        .1
        .contains("control character U+0007"));
    assert_eq!(fails("teams eq ,").0, Some(9));
    assert_eq!(fails("* eq 1").0, Some(0));
    assert_eq!(fails("()").0, Some(1));
    assert_eq!(fails("not").0, Some(3));
    assert!(fails("not").1.contains("after 'not'"));
    assert_eq!(fails("contains(reportPeriod,").0, Some(22));
    // An earlier syntax error wins over a later lexical one.
    assert_eq!(fails("teams eq eq 'open").0, Some(9));
    assert_eq!(fails("teams eq 1 and 'open").0, Some(15));
    // Whitespace of any kind separates tokens.
    assert_eq!(ok("teams\teq\u{a0}1"), teams_eq(1));
}

fn nested(depth: usize) -> String {
    format!("{}teams eq 1{}", "(".repeat(depth), ")".repeat(depth))
}

#[test]
fn depth_limit() {
    assert_eq!(ok(&nested(MAX_DEPTH - 1)), teams_eq(1));
    let (pos, message) = fails(&nested(MAX_DEPTH));
    assert_eq!(pos, Some(MAX_DEPTH));
    assert!(
        message.starts_with("The expression is nested too deeply"),
        "{message}"
    );
    // Far deeper input fails the same way instead of overflowing the stack.
    assert!(err(&"(".repeat(MAX_OPTION_LEN))
        .message
        .contains("nested too deeply"));
    assert!(err(&"not ".repeat(2000))
        .message
        .contains("nested too deeply"));
    assert!(err(&format!("{}'x')", "tolower(".repeat(1000)))
        .message
        .contains("nested too deeply"));
    // Long chains count too, since they make a deep tree.
    let chain = |n: usize| vec!["teams eq 1"; n].join(" and ");
    assert!(matches!(ok(&chain(50)), Expr::And(..)));
    assert!(err(&chain(200)).message.contains("nested too deeply"));
    assert!(err(&vec!["true"; 500].join(" or "))
        .message
        .contains("nested too deeply"));
}

#[test]
fn length_limit() {
    let long = format!("reportPeriod eq '{}'", "x".repeat(MAX_OPTION_LEN));
    let error = err(&long);
    assert_eq!(error.position, None);
    assert_eq!(
        error.message,
        format!(
            "The $filter text is too long: it has {} bytes, but at most 8192 are allowed.",
            long.len()
        )
    );
    let fits = format!("reportPeriod eq '{}'", "x".repeat(MAX_OPTION_LEN - 18));
    assert_eq!(fits.len(), MAX_OPTION_LEN);
    assert!(parse_filter(active(), &fits).is_ok());
}

#[test]
fn display_prints_odata() {
    let cases = [
        ("teams eq 1", "teams eq 1"),
        ("(teams eq 1)", "teams eq 1"),
        (
            "teams eq 1 or teams eq 2 and teams eq 3",
            "teams eq 1 or teams eq 2 and teams eq 3",
        ),
        (
            "(teams eq 1 or teams eq 2) and teams eq 3",
            "(teams eq 1 or teams eq 2) and teams eq 3",
        ),
        (
            "teams eq 1 or (teams eq 2 or teams eq 3)",
            "teams eq 1 or (teams eq 2 or teams eq 3)",
        ),
        (
            "teams eq 1 and (teams eq 2 and teams eq 3)",
            "teams eq 1 and (teams eq 2 and teams eq 3)",
        ),
        ("not (teams eq 1)", "not (teams eq 1)"),
        (
            "not contains(reportPeriod,'x')",
            "not contains(reportPeriod,'x')",
        ),
        ("not not true", "not not true"),
        (
            "contains(reportPeriod, 'x') eq false",
            "not contains(reportPeriod,'x')",
        ),
        (
            "reportPeriod in ( 'a' , 'it''s' )",
            "reportPeriod in ('a','it''s')",
        ),
        (
            "year(reportDate) ge -1 and id ne null",
            "year(reportDate) ge -1 and id ne null",
        ),
        ("reportDate le 2025-01-31", "reportDate le 2025-01-31"),
        ("toupper(tolower(id)) eq 'X'", "toupper(tolower(id)) eq 'X'"),
        ("true eq false", "true eq false"),
    ];
    for (source, printed) in cases {
        let expr = ok(source);
        assert_eq!(expr.display(active()).to_string(), printed, "{source}");
        assert_eq!(ok(printed), expr, "{printed}");
    }
}

#[test]
fn order_by() {
    let report = active();
    let key = |name: &str, descending| OrderKey {
        property: PropertyRef::find(report, name).expect("property"),
        descending,
    };
    assert_eq!(
        parse_order_by(report, "reportDate desc, teams asc,id,exchange"),
        Ok(vec![
            key("reportDate", true),
            key("teams", false),
            key("id", false),
            key("exchange", false)
        ])
    );
    let error = |text: &str| parse_order_by(report, text).expect_err(text);
    let e = error("teams,reportDate desc,teams desc");
    assert_eq!((e.option, e.position), ("$orderby", Some(22)));
    assert_eq!(
        e.message,
        "The property 'teams' is named more than once at position 22 in $orderby."
    );
    assert_eq!(
        error("foo").message,
        "Could not find a property named 'foo' on type 'microsoft.graph.office365ActiveUserCounts' (position 0 in $orderby)."
    );
    assert!(error("teams DESC")
        .message
        .contains("'asc' or 'desc' in lower case"));
    assert!(error("year(reportDate)")
        .message
        .contains("only property names can be sorted on"));
    assert_eq!(error("").position, Some(0));
    assert_eq!(error("teams,").position, Some(6));
    assert_eq!(error("teams desc desc").position, Some(11));
    assert_eq!(error("teams,,exchange").position, Some(6));
    assert!(error("teams 'x'").message.contains("found the string 'x'"));
    let all: Vec<String> = PropertyRef::all(report)
        .into_iter()
        .map(|p| p.name(report).to_owned())
        .collect();
    assert_eq!(all.len(), 11);
    assert_eq!(
        parse_order_by(report, &all[..10].join(",")).map(|k| k.len()),
        Ok(10)
    );
    let too_many = error(&all.join(","));
    assert!(
        too_many
            .message
            .starts_with("Too many sort keys: at most 10"),
        "{}",
        too_many.message
    );
}

#[test]
fn select() {
    let report = activations();
    assert_eq!(
        parse_select(report, "productType, id,assigned,productType"),
        Ok(vec![
            PropertyRef::Index(1),
            PropertyRef::Id,
            PropertyRef::Index(2)
        ])
    );
    assert_eq!(parse_select(report, "*"), Ok(PropertyRef::all(report)));
    assert_eq!(
        parse_select(report, "assigned,*"),
        Ok(PropertyRef::all(report))
    );
    let error = |text: &str| parse_select(report, text).expect_err(text);
    let e = error("assigned,foo");
    assert_eq!((e.option, e.position), ("$select", Some(9)));
    assert_eq!(
        e.message,
        "Could not find a property named 'foo' on type 'microsoft.graph.office365ActivationsUserCounts' (position 9 in $select)."
    );
    assert_eq!(error("").position, Some(0));
    assert_eq!(error("assigned,").position, Some(9));
    assert_eq!(error("assigned activated").position, Some(9));
    assert!(error("assigned(x)")
        .message
        .contains("only property names can be selected"));
    assert_eq!(error("assigned,'x").position, Some(9));
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn query_options() {
    let report = active();
    let parsed = parse_query_options(
        report,
        None,
        &pairs(&[
            ("$filter", "teams eq 1"),
            ("$SELECT", "teams,id"),
            ("orderby", "reportDate desc"),
            ("Top", "5"),
            ("$skip", " 10 "),
            ("$count", "True"),
            ("$format", "text/csv"),
            ("$SkipToken", "abc"),
            ("redirect", "false"),
            ("@alias", "1"),
        ]),
    );
    assert_eq!(
        parsed,
        Ok(QueryOptions {
            filter: Some(teams_eq(1)),
            select: Some(vec![PropertyRef::Index(7), PropertyRef::Id]),
            order_by: vec![OrderKey {
                property: PropertyRef::Index(8),
                descending: true
            }],
            top: Some(5),
            skip: Some(10),
            count: true,
        })
    );
    assert_eq!(
        parse_query_options(report, None, &[]),
        Ok(QueryOptions::default())
    );
    assert_eq!(
        parse_query_options(
            report,
            None,
            &pairs(&[("$select", "*"), ("$count", "false")])
        ),
        Ok(QueryOptions::default())
    );
    let error =
        |list: &[(&str, &str)]| parse_query_options(report, None, &pairs(list)).expect_err("error");
    let e = error(&[("$expand", "x")]);
    assert_eq!((e.option, e.position), ("query", None));
    assert_eq!(e.message, "The query option '$expand' is not supported; the supported options are $filter, $select, $orderby, $top, $skip, $count and $format.");
    assert_eq!(error(&[("$foo", "x")]).option, "query");
    let e = error(&[("$top", "1"), ("top", "2")]);
    assert_eq!((e.option, e.position), ("$top", None));
    assert_eq!(
        e.message,
        "The query option '$top' is given more than once; it may be given at most once."
    );
    let e = error(&[("$top", "-1")]);
    assert_eq!(
        (e.option, e.position, e.message.as_str()),
        (
            "$top",
            Some(0),
            "The value '-1' is not valid: expected a non-negative integer at position 0 in $top."
        )
    );
    assert!(error(&[("$skip", "1.0")])
        .message
        .contains("non-negative integer"));
    assert!(error(&[("$skip", "")])
        .message
        .contains("non-negative integer"));
    assert!(error(&[("$skip", "+3")])
        .message
        .contains("non-negative integer"));
    assert_eq!(
        error(&[("$top", "9223372036854775808")]).message,
        "The value '9223372036854775808' is not valid: the largest accepted value is 9223372036854775807 at position 0 in $top."
    );
    assert_eq!(
        parse_query_options(report, None, &pairs(&[("$top", "9223372036854775807")]))
            .map(|o| o.top),
        Ok(Some(i64::MAX as u64))
    );
    let e = error(&[("$count", "yes")]);
    assert_eq!(
        (e.option, e.message.as_str()),
        (
            "$count",
            "The value 'yes' is not valid: expected true or false at position 0 in $count."
        )
    );
    // Errors come from the option's own parser.
    assert_eq!(error(&[("filter", "foo eq 1")]).option, "$filter");
    assert_eq!(error(&[("$orderby", "foo")]).option, "$orderby");
    assert_eq!(error(&[("$select", "")]).option, "$select");
    assert_eq!(error(&[("$filter", "")]).position, Some(0));
}

#[test]
fn query_pairs_round_trip() {
    let report = active();
    let options = parse_query_options(
        report,
        None,
        &pairs(&[
            ("$filter", "reportPeriod in ('7','30') and not (teams lt 3)"),
            ("$select", "id,teams"),
            ("$orderby", "reportDate desc,id"),
            ("$top", "5"),
            ("$skip", "0"),
            ("$count", "true"),
        ]),
    )
    .expect("options");
    let printed = options.to_query_pairs(report);
    assert_eq!(
        printed,
        vec![
            (
                "$filter",
                "reportPeriod in ('7','30') and not (teams lt 3)".to_owned()
            ),
            ("$select", "id,teams".to_owned()),
            ("$orderby", "reportDate desc,id".to_owned()),
            ("$top", "5".to_owned()),
            ("$skip", "0".to_owned()),
            ("$count", "true".to_owned()),
        ]
    );
    let again: Vec<(String, String)> = printed
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(parse_query_options(report, None, &again), Ok(options));
}

#[test]
fn types_of_operands() {
    let report = active();
    assert_eq!(PropertyRef::Id.ty(report), Type::String);
    assert_eq!(PropertyRef::Index(0).ty(report), Type::Date);
    assert_eq!(PropertyRef::Index(1).ty(report), Type::Int);
    assert_eq!(PropertyRef::Index(9).ty(report), Type::String);
    assert_eq!(
        Operand::Call(
            Function::Year,
            Box::new(Operand::Property(PropertyRef::Index(0)))
        )
        .ty(report),
        Type::Int
    );
    assert_eq!(Operand::Literal(Literal::Null).ty(report), Type::Null);
    assert_eq!(PropertyRef::Index(99).name(report), "?");
}

#[test]
fn durations_and_int32_counts() {
    let teams = find_report("teamsUserActivityCounts").expect("report");
    let audio = Operand::Property(PropertyRef::find(teams, "audioDuration").expect("property"));
    let video = Operand::Property(PropertyRef::find(teams, "videoDuration").expect("property"));
    let duration = |seconds| Operand::Literal(Literal::Duration(seconds));
    let parsed = |text: &str| match parse_filter(teams, text) {
        Ok(expr) => expr,
        Err(error) => panic!("{text:?} should parse: {error}"),
    };
    assert_eq!(
        parsed("audioDuration gt duration'PT1H'"),
        cmp(audio.clone(), CompareOp::Gt, duration(3600))
    );
    assert_eq!(
        parsed("duration'P1DT2H3M4S' le audioDuration"),
        cmp(duration(93_784), CompareOp::Le, audio.clone())
    );
    // The prefix is case-insensitive, as OData's grammar; zero, minutes past 59 and days.
    assert_eq!(
        parsed("audioDuration eq DURATION'PT0S'"),
        cmp(audio.clone(), CompareOp::Eq, duration(0))
    );
    assert_eq!(
        parsed("audioDuration ge duration'PT90M'"),
        cmp(audio.clone(), CompareOp::Ge, duration(5400))
    );
    assert_eq!(
        parsed("audioDuration gt videoDuration"),
        cmp(audio.clone(), CompareOp::Gt, video)
    );
    assert_eq!(
        parsed("audioDuration in (duration'PT1M', duration'PT2M')"),
        Expr::In {
            operand: audio.clone(),
            list: vec![Literal::Duration(60), Literal::Duration(120)],
        }
    );
    assert!(parse_filter(teams, "calls gt 1 and screenShareDuration ne null").is_ok());
    assert_eq!(
        parsed("audioDuration le duration'PT999999999H59M59S'"),
        cmp(audio.clone(), CompareOp::Le, duration(MAX_DURATION_SECONDS))
    );
    assert_eq!(Type::of_kind(ValueKind::Duration), Type::Duration);
    // Wrong types keep a positioned error.
    for (text, position, message) in [
        (
            "audioDuration eq '00:00:00'",
            0,
            "The types Edm.Duration and Edm.String are not compatible for operator 'eq' at position 0",
        ),
        (
            "calls gt duration'PT1H'",
            0,
            "The types Edm.Int64 and Edm.Duration are not compatible for operator 'gt' at position 0",
        ),
        (
            "audioDuration lt 60",
            0,
            "The types Edm.Duration and Edm.Int64 are not compatible for operator 'lt' at position 0",
        ),
        (
            "audioDuration in (duration'PT1M', 5)",
            34,
            "The value in the list after 'in' has type Edm.Int64, but the left side has type Edm.Duration at position 34",
        ),
        (
            "contains(audioDuration, '01')",
            9,
            "The function 'contains' expects an Edm.String argument, but this argument is Edm.Duration at position 9",
        ),
    ] {
        let error = parse_filter(teams, text).expect_err(text);
        assert_eq!(error.position, Some(position), "{text}: {}", error.message);
        assert!(error.message.contains(message), "{text}: {}", error.message);
    }
    // Literals Graph's reports cannot hold: signed, fractional, years, months, weeks, junk,
    // unterminated.
    for (text, position) in [
        ("audioDuration gt duration'-PT1H'", 17),
        ("audioDuration gt duration'PT1.5S'", 17),
        ("audioDuration gt duration'P1Y'", 17),
        ("audioDuration gt duration'P1M'", 17),
        ("audioDuration gt duration'P1W'", 17),
        ("audioDuration gt duration'01:00:00'", 17),
        ("audioDuration gt duration'PT'", 17),
        ("audioDuration gt duration'PT99999999999999999999S'", 17),
        ("audioDuration gt duration'PT1000000000H'", 17),
    ] {
        let error = parse_filter(teams, text).expect_err(text);
        assert_eq!(error.position, Some(position), "{text}: {}", error.message);
        assert!(
            error
                .message
                .contains("is not valid: an Edm.Duration literal"),
            "{text}: {}",
            error.message
        );
    }
    let error = parse_filter(teams, "audioDuration gt duration'PT1H").expect_err("open");
    assert_eq!(error.position, Some(25));
    assert!(
        error.message.contains("no closing quote"),
        "{}",
        error.message
    );
    // Printed back, a duration literal reads as the same expression.
    let expr = parsed("audioDuration ge duration'P1DT1S' or videoDuration eq duration'PT0S'");
    assert_eq!(parsed(&expr.display(teams).to_string()), expr);
    assert!(parse_filter(teams, "calls gt 1").is_ok());
    // Edm.Int32 counts compare with integers like the Int64 ones.
    let yammer = find_report("yammerDeviceUsageUserCounts").expect("report");
    assert!(parse_filter(yammer, "iPhone ge 3 and web in (1, 2)").is_ok());
}
