//! `$filter` (and `$orderby`, `$select`) on arbitrary UTF-8, for every report type: no panic,
//! errors point inside the text, and whatever parses prints back to text that parses to the
//! same expression.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reportroot_model::REPORTS;
use reportroot_odata::query::{parse_filter, parse_order_by, parse_select, MAX_OPTION_LEN};

fuzz_target!(|text: &str| {
    let length = text.chars().count();
    for report in REPORTS {
        match parse_filter(report, text) {
            Ok(expr) => {
                let printed = expr.display(report).to_string();
                // Printing normalises spacing, so it may add a few bytes past the limit.
                if printed.len() <= MAX_OPTION_LEN {
                    assert_eq!(
                        parse_filter(report, &printed).as_ref(),
                        Ok(&expr),
                        "{text:?} printed as {printed:?}"
                    );
                }
            }
            Err(error) => assert!(error.position.is_none_or(|p| p <= length), "{error:?}"),
        }
        let _ = parse_order_by(report, text);
        let _ = parse_select(report, text);
    }
});
