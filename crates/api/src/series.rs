//! `GET /{version}/reports/{entitySet}/reportroot.series(from=…,to=…[,interval='week'][,period='D7'])`:
//! a report's history as a chart reads it, one row per date (or week, or month) and dimension
//! value, each shaped as a row of the entity set (see [`reportroot_storage::Storage::series`]).
//! A function of reportroot's own namespace, declared in `$metadata`.

use std::sync::Arc;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use reportroot_model::{Date, Grain, Period, ReportType};
use reportroot_odata::csv_format::write_report_csv_on;
use reportroot_odata::json::{collection_json, CollectionMeta, EntityShape};
use reportroot_storage::series::{Interval, SeriesQuery};

use crate::auth::Caller;
use crate::entities::json_response;
use crate::error::ApiError;
use crate::{AppState, Call};

/// The function's qualified name, as the path writes it.
pub const SERIES_FUNCTION: &str = "reportroot.series";

/// `GET …/reportroot.series(…)`.
pub(crate) async fn series(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
    report: &'static ReportType,
    args: &str,
) -> Result<Response, ApiError> {
    if call.method != Method::GET {
        return Err(ApiError::method_not_allowed("GET"));
    }
    caller.require_read()?;
    let csv = wants_csv(call)?;
    let query = parse_args(report, args)?;
    let rows = state.storage.series(caller.tenant, report, &query).await?;
    if csv {
        // The same rows as Graph's CSV of this version (the dashboard's "Download CSV").
        let mut body = Vec::new();
        write_report_csv_on(report, Some(call.version.model()), &rows, &mut body);
        let mut response = (StatusCode::OK, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        return Ok(response);
    }
    let context = format!(
        "{}/$metadata#Collection({})",
        call.base(state),
        report.qualified_name()
    );
    let body = collection_json(
        report,
        &rows,
        CollectionMeta {
            context: &context,
            count: None,
            next_link: None,
        },
        EntityShape {
            with_identity: true,
            version: Some(call.version.model()),
            ..EntityShape::default()
        },
    );
    Ok(json_response(StatusCode::OK, body))
}

/// Parses `from=2024-01-01,to=2024-12-31,interval='week',period='D7'` against `report`.
pub fn parse_args(report: &ReportType, args: &str) -> Result<SeriesQuery, ApiError> {
    let mut from = None;
    let mut to = None;
    let mut interval = None;
    let mut period = None;
    for argument in args.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let (name, value) = argument.split_once('=').ok_or_else(|| {
            ApiError::bad_request(format!(
                "The argument '{argument}' of {SERIES_FUNCTION} is not written name=value."
            ))
        })?;
        let (name, value) = (name.trim(), value.trim());
        let unquoted = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(value);
        match name {
            "from" => set(&mut from, name, parse_date(name, unquoted)?)?,
            "to" => set(&mut to, name, parse_date(name, unquoted)?)?,
            "interval" => {
                let parsed = Interval::parse(unquoted).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "The parameter 'interval' of {SERIES_FUNCTION} must be 'day', 'week' or 'month', not {value}."
                    ))
                })?;
                set(&mut interval, name, parsed)?
            }
            "period" if report.grain == Grain::PerPeriod => {
                let parsed = Period::from_param(unquoted).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "The parameter 'period' of {SERIES_FUNCTION} must be one of {}, not {value}.",
                        Period::valid_params()
                    ))
                })?;
                set(&mut period, name, parsed)?
            }
            "period" => {
                return Err(ApiError::bad_request(format!(
                    "{SERIES_FUNCTION} of {} takes no 'period': each date's row is the latest refresh's, whatever its period.",
                    report.entity
                )))
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "{SERIES_FUNCTION} has no parameter '{other}'; it takes from, to, interval{}.",
                    if report.grain == Grain::PerPeriod {
                        " and period"
                    } else {
                        ""
                    }
                )))
            }
        }
    }
    let required = |value: Option<Date>, name: &str| {
        value.ok_or_else(|| {
            ApiError::bad_request(format!(
                "The parameter '{name}' of {SERIES_FUNCTION} is required, e.g. {SERIES_FUNCTION}(from=2025-01-01,to=2025-12-31)."
            ))
        })
    };
    let (from, to) = (required(from, "from")?, required(to, "to")?);
    if from > to {
        return Err(ApiError::bad_request(format!(
            "The parameter 'from' ({from}) of {SERIES_FUNCTION} is after 'to' ({to})."
        )));
    }
    Ok(SeriesQuery {
        from,
        to,
        interval: interval.unwrap_or_default(),
        period: (report.grain == Grain::PerPeriod).then(|| period.unwrap_or(Period::D7)),
    })
}

/// Whether `$format=text/csv` asks for Graph's CSV instead of JSON; any other query option
/// is refused.
fn wants_csv(call: &Call) -> Result<bool, ApiError> {
    let mut csv = false;
    for (option, value) in &call.query {
        match (option.as_str(), value.as_str()) {
            ("$format", "text/csv") => csv = true,
            ("$format", "application/json") => csv = false,
            ("$format", other) => {
                return Err(ApiError::bad_request(format!(
                    "The $format '{other}' is not supported by {SERIES_FUNCTION}: use text/csv or application/json."
                )))
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "The query option '{option}' is not supported by {SERIES_FUNCTION}."
                )))
            }
        }
    }
    Ok(csv)
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), ApiError> {
    if slot.replace(value).is_some() {
        return Err(ApiError::bad_request(format!(
            "The parameter '{name}' of {SERIES_FUNCTION} is given twice."
        )));
    }
    Ok(())
}

fn parse_date(name: &str, text: &str) -> Result<Date, ApiError> {
    Date::parse(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "The parameter '{name}' of {SERIES_FUNCTION} must be a date written YYYY-MM-DD, not '{text}'."
        ))
    })
}

#[cfg(test)]
mod tests {
    use reportroot_model::find_report;

    use super::*;

    #[test]
    fn parses_the_arguments() {
        let daily = find_report("office365ActiveUserCounts").expect("report");
        let query =
            parse_args(daily, "from=2024-01-01, to=2024-03-31,interval='week'").expect("ok");
        assert_eq!(query.interval, Interval::Week);
        assert_eq!(query.period, None);
        let periodic = find_report("teamsDeviceUsageDistributionUserCounts").expect("report");
        assert_eq!(periodic.grain, Grain::PerPeriod);
        let query = parse_args(periodic, "from=2024-01-01,to=2024-03-31").expect("ok");
        assert_eq!(query.period, Some(Period::D7));
        let query = parse_args(periodic, "from=2024-01-01,to=2024-03-31,period='D30'").expect("ok");
        assert_eq!(query.period, Some(Period::D30));
        for bad in [
            "",
            "from=2024-01-01",
            "from=2024-02-01,to=2024-01-01",
            "from=2024-01-01,to=2024-13-01",
            "from=2024-01-01,to=2024-02-01,interval='year'",
            "from=2024-01-01,to=2024-02-01,period='D7'",
            "from=2024-01-01,from=2024-01-02,to=2024-02-01",
            "from=2024-01-01,to=2024-02-01,colour='red'",
            "from",
        ] {
            let error = parse_args(daily, bad).expect_err(bad);
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(parse_args(periodic, "from=2024-01-01,to=2024-02-01,period='D8'").is_err());
    }
}
