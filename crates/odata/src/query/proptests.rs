//! Property tests: well-typed expressions survive Display → parse, and no input panics.

use proptest::prelude::*;
use proptest::sample::select;
use reportroot_model::{Date, ReportType, Value, REPORTS};

use super::*;

/// The report's properties (and `id`) of type `ty`.
fn properties_of(report: &'static ReportType, ty: Type) -> Vec<PropertyRef> {
    PropertyRef::all(report)
        .into_iter()
        .filter(|p| p.ty(report) == ty)
        .collect()
}

/// Strings with plenty of quotes, spaces, parentheses and keywords, and any other characters.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z' ()]{0,8}",
        Just("eq".to_owned()),
        Just("''".to_owned()),
        "\\PC{0,8}",
        ".{0,8}",
        "[\\n\\t\\u{0}\\u{a0}']{0,4}",
    ]
    .boxed()
}

fn literal_of(ty: Type) -> BoxedStrategy<Literal> {
    match ty {
        Type::Date => (1000i32..=9999, 1u8..=12, 1u8..=31)
            .prop_filter_map("a calendar date", |(y, m, d)| Date::from_ymd(y, m, d))
            .prop_map(|d| Literal::Value(Value::Date(d)))
            .boxed(),
        Type::Int => prop_oneof![any::<i64>(), -3i64..3, Just(i64::MIN), Just(i64::MAX)]
            .prop_map(|n| Literal::Value(Value::Int(n)))
            .boxed(),
        Type::String => text().prop_map(|s| Literal::Value(Value::Text(s))).boxed(),
        Type::Duration => prop_oneof![0u64..=MAX_DURATION_SECONDS, 0u64..200_000]
            .prop_map(Literal::Duration)
            .boxed(),
        Type::Bool => any::<bool>().prop_map(Literal::Bool).boxed(),
        Type::Null => Just(Literal::Null).boxed(),
    }
}

/// Operands of type `ty` (Date, Int or String), nesting functions up to `depth` deep.
fn operand_of(report: &'static ReportType, ty: Type, depth: u32) -> BoxedStrategy<Operand> {
    let literal = literal_of(ty).prop_map(Operand::Literal).boxed();
    let properties = properties_of(report, ty);
    let leaf = if properties.is_empty() {
        literal
    } else {
        prop_oneof![literal, select(properties).prop_map(Operand::Property)].boxed()
    };
    if depth == 0 {
        return leaf;
    }
    let functions: Vec<Function> = Function::ALL
        .into_iter()
        .filter(|f| f.result_type() == ty)
        .collect();
    if functions.is_empty() {
        return leaf;
    }
    let calls = select(functions).prop_flat_map(move |f| {
        operand_of(report, f.argument_type(), depth - 1)
            .prop_map(move |argument| Operand::Call(f, Box::new(argument)))
    });
    prop_oneof![3 => leaf, 1 => calls].boxed()
}

fn value_type() -> impl Strategy<Value = Type> {
    select(vec![Type::Date, Type::Int, Type::String, Type::Duration])
}

fn equality() -> impl Strategy<Value = CompareOp> {
    select(vec![CompareOp::Eq, CompareOp::Ne])
}

/// Well-typed leaf conditions of every kind.
fn leaf_expr(report: &'static ReportType) -> BoxedStrategy<Expr> {
    let compare = (value_type(), select(CompareOp::ALL.to_vec())).prop_flat_map(move |(ty, op)| {
        (operand_of(report, ty, 2), operand_of(report, ty, 2))
            .prop_map(move |(left, right)| Expr::Compare { op, left, right })
    });
    let null = (value_type(), equality(), any::<bool>()).prop_flat_map(move |(ty, op, flip)| {
        prop_oneof![
            operand_of(report, ty, 1),
            literal_of(Type::Bool).prop_map(Operand::Literal),
            Just(Operand::Literal(Literal::Null)),
        ]
        .prop_map(move |operand| {
            let null = Operand::Literal(Literal::Null);
            let (left, right) = if flip {
                (null, operand)
            } else {
                (operand, null)
            };
            Expr::Compare { op, left, right }
        })
    });
    let booleans =
        (equality(), any::<bool>(), any::<bool>()).prop_map(|(op, l, r)| Expr::Compare {
            op,
            left: Operand::Literal(Literal::Bool(l)),
            right: Operand::Literal(Literal::Bool(r)),
        });
    let in_list = value_type().prop_flat_map(move |ty| {
        (
            operand_of(report, ty, 1),
            prop::collection::vec(literal_of(ty), 1..4),
        )
            .prop_map(|(operand, list)| Expr::In { operand, list })
    });
    let matches = (
        select(StringMatch::ALL.to_vec()),
        operand_of(report, Type::String, 1),
        operand_of(report, Type::String, 1),
    )
        .prop_map(|(kind, target, pattern)| Expr::Match {
            kind,
            target,
            pattern,
        });
    prop_oneof![
        4 => compare,
        1 => null,
        1 => booleans,
        2 => in_list,
        2 => matches,
        1 => any::<bool>().prop_map(Expr::Literal),
    ]
    .boxed()
}

fn expr(report: &'static ReportType) -> impl Strategy<Value = Expr> {
    leaf_expr(report).prop_recursive(6, 48, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

fn report_and_expr() -> impl Strategy<Value = (&'static ReportType, Expr)> {
    select(REPORTS.iter().collect::<Vec<_>>()).prop_flat_map(|report| (Just(report), expr(report)))
}

fn options(report: &'static ReportType) -> impl Strategy<Value = QueryOptions> {
    let all = PropertyRef::all(report);
    let count = all.len();
    (
        prop::option::of(expr(report)),
        prop::option::of(
            Just(all.clone())
                .prop_shuffle()
                .prop_flat_map(move |shuffled| {
                    (1..=count).prop_map(move |n| shuffled[..n].to_vec())
                }),
        ),
        (
            Just(all).prop_shuffle(),
            prop::collection::vec(any::<bool>(), 0..=MAX_ORDER_BY_KEYS),
        )
            .prop_map(|(shuffled, directions)| {
                shuffled
                    .into_iter()
                    .zip(directions)
                    .map(|(property, descending)| OrderKey {
                        property,
                        descending,
                    })
                    .collect()
            }),
        prop::option::of(0..=i64::MAX.unsigned_abs()),
        prop::option::of(0..=i64::MAX.unsigned_abs()),
        any::<bool>(),
    )
        .prop_map(
            |(filter, select, order_by, top, skip, count)| QueryOptions {
                filter,
                select,
                order_by,
                top,
                skip,
                count,
            },
        )
}

/// Fragments that make near-valid filters.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    ",",
    "'",
    "''",
    "'x'",
    "duration",
    "duration'PT1H'",
    "audioDuration",
    " ",
    "not",
    "and",
    "or",
    "eq",
    "ne",
    "gt",
    "in",
    "add",
    "null",
    "true",
    "false",
    "-",
    "-1",
    "0",
    "9223372036854775808",
    "2024-02-29",
    "2023-02-29",
    "2025-01-31T00:00:00Z",
    "1.5",
    "contains",
    "startswith",
    "tolower",
    "year",
    "length",
    "id",
    "teams",
    "reportDate",
    "reportPeriod",
    "productType",
    "assigned",
    "*",
    "é",
    "\u{0}",
    "$",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn display_round_trips((report, expr) in report_and_expr()) {
        let text = expr.display(report).to_string();
        prop_assume!(text.len() <= MAX_OPTION_LEN);
        prop_assert_eq!(parse_filter(report, &text), Ok(expr), "{}", text);
    }

    #[test]
    fn query_options_round_trip(
        (report, options) in select(REPORTS.iter().collect::<Vec<_>>())
            .prop_flat_map(|report| (Just(report), options(report)))
    ) {
        let pairs: Vec<(String, String)> = options
            .to_query_pairs(report)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        prop_assume!(pairs.iter().all(|(_, value)| value.len() <= MAX_OPTION_LEN));
        prop_assert_eq!(parse_query_options(report, None, &pairs), Ok(options));
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        for report in REPORTS {
            check_errors(report, &text);
        }
    }

    #[test]
    fn fragment_soup_never_panics(
        fragments in prop::collection::vec(select(FRAGMENTS), 0..40),
        spaced in any::<bool>(),
    ) {
        let text = fragments.join(if spaced { " " } else { "" });
        for report in REPORTS {
            check_errors(report, &text);
        }
    }
}

/// Runs every parser on `text`; errors must point inside the text.
fn check_errors(report: &ReportType, text: &str) {
    let length = text.chars().count();
    let results = [
        parse_filter(report, text).err(),
        parse_order_by(report, text).err(),
        parse_select(report, text).err(),
    ];
    for error in results.into_iter().flatten() {
        if let Some(position) = error.position {
            assert!(position <= length, "{text:?}: {error:?}");
        }
        assert!(error.message.contains(error.option), "{error:?}");
    }
}
