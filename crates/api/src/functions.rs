//! Graph's report functions, e.g. `getOffice365ActiveUserCounts(period='D7')`: a `302` to a
//! pre-authenticated CSV download (v1.0, and beta by default), or JSON on beta when asked.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::Response;
use reportroot_model::{Period, ReportType, TenantId, Version};
use reportroot_odata::csv_format::write_report_csv_on;
use reportroot_odata::json::nested_collection_json;
use reportroot_odata::query::parse_query_options;
use reportroot_storage::Scope;

use crate::auth::{unix_now, Caller};
use crate::context::ODATA_JSON;
use crate::download::Grant;
use crate::entities::{page_body, preference_applied, PREFERENCE_APPLIED};
use crate::error::ApiError;
use crate::paging::{page_size, query_page};
use crate::report_cache::{CachedAnswer, Lookup};
use crate::routes::ApiVersion;
use crate::{AppState, Call};

/// The answer format a function call asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// Parses the function's argument list against the registry.
fn parse_period(report: &ReportType, args: Option<&str>) -> Result<Option<Period>, ApiError> {
    let name = report.function.name;
    let args = args.map(str::trim).unwrap_or_default();
    if !report.function.takes_period {
        return if args.is_empty() {
            Ok(None)
        } else {
            Err(ApiError::bad_request(format!(
                "The function '{name}' takes no parameters."
            )))
        };
    }
    let invalid = || {
        ApiError::bad_request(format!(
            "The parameter 'period' of '{name}' is required and must be one of {} written in quotes, e.g. {name}(period='D7').",
            Period::valid_params()
        ))
    };
    let value = args
        .strip_prefix("period")
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix('='))
        .map(str::trim)
        .and_then(|v| v.strip_prefix('\'')?.strip_suffix('\''))
        .ok_or_else(invalid)?;
    Period::from_param(value).map(Some).ok_or_else(invalid)
}

fn query_value<'a>(call: &'a Call, name: &str) -> Option<&'a str> {
    call.query
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Whether a function call is answered in JSON (counted under Graph's JSON limits); a call
/// with a bad `$format` counts as CSV.
pub(crate) fn answers_json(call: &Call) -> bool {
    matches!(wanted_format(call), Ok(Format::Json))
}

/// The format asked for: `$format` (checked on both versions: v1.0's functions return the
/// CSV stream only, so JSON there is refused rather than silently ignored), else, on beta, the
/// `Accept` header.
fn wanted_format(call: &Call) -> Result<Format, ApiError> {
    if let Some(format) = query_value(call, "$format") {
        return match (format.to_ascii_lowercase().as_str(), call.version) {
            ("text/csv" | "csv", _) => Ok(Format::Csv),
            ("application/json" | "json", ApiVersion::Beta) => Ok(Format::Json),
            ("application/json" | "json", ApiVersion::V1) => Err(ApiError::bad_request(format!(
                "$format '{format}' is not supported on v1.0, whose report functions return CSV (Edm.Stream); use beta for JSON."
            ))),
            (_, ApiVersion::V1) => Err(ApiError::bad_request(format!(
                "Unsupported $format '{format}': use text/csv."
            ))),
            (_, ApiVersion::Beta) => Err(ApiError::bad_request(format!(
                "Unsupported $format '{format}': use text/csv or application/json."
            ))),
        };
    }
    if call.version == ApiVersion::V1 {
        return Ok(Format::Csv);
    }
    // Microsoft's beta SDK asks for JSON with the Accept header alone.
    let accept = call
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    let wants_json = accept.contains("application/json");
    let wants_bytes = accept.contains("application/octet-stream");
    Ok(if wants_json && !wants_bytes {
        Format::Json
    } else {
        Format::Csv
    })
}

/// `GET /reports/getX(...)`.
pub(crate) async fn call_function(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
    report: &'static ReportType,
    args: Option<&str>,
) -> Result<Response, ApiError> {
    if call.method != Method::GET {
        return Err(ApiError::method_not_allowed("GET"));
    }
    caller.require_read()?;
    let period = parse_period(report, args)?;
    let format = wanted_format(call)?;
    let redirect = !query_value(call, "redirect").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let key = answer_key(state, call, report, period, format, redirect)?;
    let cache = &state.report_cache;
    let stamp = match cache.get(state.storage.as_ref(), caller.tenant, &key).await {
        Lookup::Hit(answer) => return Ok(answer.respond(&call.headers)),
        Lookup::Miss(stamp) => stamp,
    };
    let answer = render_function(state, call, caller, report, period, format, redirect).await?;
    cache.put(caller.tenant, key, stamp, answer.clone());
    Ok(answer.respond(&call.headers))
}

/// What a function's answer depends on, as the cache key: the version, report, period, format
/// and redirect choice, and for JSON the parsed query options (in canonical form), the
/// `$skiptoken` and the page size applied. Query parameters the answer ignores, and the
/// spelling of those it reads, do not make new keys.
fn answer_key(
    state: &AppState,
    call: &Call,
    report: &'static ReportType,
    period: Option<Period>,
    format: Format,
    redirect: bool,
) -> Result<String, ApiError> {
    // The base URL is part of the answer (links, the download's Location), and differs
    // between the HTTP and HTTPS listeners.
    let mut key = format!(
        "{}|{}|{}|{period:?}|{format:?}|{redirect}",
        call.base_url,
        call.version.segment(),
        report.entity
    );
    if format == Format::Json {
        let options = parse_query_options(report, Some(call.version.model()), &call.query)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        for (name, value) in options.to_query_pairs(report) {
            key.push_str(&format!("|{name}={value}"));
        }
        if let Some(token) = query_value(call, "$skiptoken") {
            key.push_str(&format!("|$skiptoken={token}"));
        }
        key.push_str(&format!("|{:?}", page_size(state, call)));
    }
    Ok(key)
}

/// The unconditional answer of a function call.
async fn render_function(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
    report: &'static ReportType,
    period: Option<Period>,
    format: Format,
    redirect: bool,
) -> Result<CachedAnswer, ApiError> {
    if format == Format::Json {
        return render_json(state, call, caller, report, period).await;
    }
    let version = call.version.model();
    let csv = csv_answer(state, caller.tenant, report, period, version).await?;
    if !redirect {
        return Ok(csv);
    }
    let grant = Grant {
        tenant: caller.tenant,
        report,
        period,
        expires: unix_now() + state.config.download_ttl_seconds,
        version,
    };
    let location = format!(
        "{}/reports/download/{}",
        call.base_url,
        state.downloads.sign(&grant)
    );
    Ok(CachedAnswer::redirect(&location, &csv))
}

/// A function's JSON answer (beta's `$format=application/json`): a page of the latest report.
async fn render_json(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
    report: &'static ReportType,
    period: Option<Period>,
) -> Result<CachedAnswer, ApiError> {
    let base = call.base(state);
    let args = period.map_or_else(|| "()".to_owned(), |p| format!("(period='{p}')"));
    let link_base = format!("{base}/reports/{}{args}", report.function.name);
    let scope = Scope::Latest { period };
    let page = query_page(state, call, caller.tenant, report, scope, &link_base).await?;
    let body = match report.json_container {
        Some(container) => nested_collection_json(
            report,
            Some(page.version),
            &page.rows,
            container,
            page.next_link.as_deref(),
        ),
        None => {
            let context = format!("{base}/$metadata#Collection({})", report.qualified_name());
            page_body(report, &page, &context, false)
        }
    };
    let mut headers = vec![(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON))];
    headers.extend(preference_applied(&page).map(|v| (PREFERENCE_APPLIED, v)));
    Ok(CachedAnswer::ok(headers, body))
}

/// The latest report as CSV in `version`'s columns: the body of `?redirect=false` and of the
/// download the `302` points to. Cached on its own key (no base URL: the CSV has no links), so
/// the download that follows a `302` is served from the bytes the `302`'s eTag was taken from.
async fn csv_answer(
    state: &AppState,
    tenant: TenantId,
    report: &'static ReportType,
    period: Option<Period>,
    version: Version,
) -> Result<CachedAnswer, ApiError> {
    let key = format!("csv|{version:?}|{}|{period:?}", report.entity);
    let cache = &state.report_cache;
    let stamp = match cache.get(state.storage.as_ref(), tenant, &key).await {
        Lookup::Hit(answer) => return Ok(answer),
        Lookup::Miss(stamp) => stamp,
    };
    let rows = state.storage.latest_report(tenant, report, period).await?;
    let mut csv = Vec::with_capacity(256 + rows.len() * 96);
    write_report_csv_on(report, Some(version), &rows, &mut csv);
    let answer = CachedAnswer::ok(csv_headers(report, period), csv);
    cache.put(tenant, key, stamp, answer.clone());
    Ok(answer)
}

/// `GET /reports/download/{token}`: the CSV a function's `302` pointed to; no `Authorization`.
pub(crate) async fn download(
    state: &Arc<AppState>,
    method: &Method,
    headers: &HeaderMap,
    token: &str,
) -> Result<Response, ApiError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::method_not_allowed("GET"));
    }
    let grant = state.downloads.verify(token, unix_now())?;
    let csv = csv_answer(
        state,
        grant.tenant,
        grant.report,
        grant.period,
        grant.version,
    )
    .await?;
    Ok(csv.respond(headers))
}

/// The headers of a CSV answer: Graph's `application/octet-stream` and the file name.
fn csv_headers(report: &ReportType, period: Option<Period>) -> Vec<(HeaderName, HeaderValue)> {
    let stem = report.function.name.trim_start_matches("get");
    let filename = match period {
        Some(period) => format!("{stem}_{period}.csv"),
        None => format!("{stem}.csv"),
    };
    let mut headers = vec![(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    )];
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename={filename}")) {
        headers.push((header::CONTENT_DISPOSITION, value));
    }
    headers
}

#[cfg(test)]
mod tests {
    use reportroot_model::report_by_function;

    use super::*;

    #[test]
    fn periods_are_strict() {
        let active = report_by_function("getOffice365ActiveUserCounts").expect("report");
        assert_eq!(
            parse_period(active, Some("period='D7'")).expect("ok"),
            Some(Period::D7)
        );
        assert_eq!(
            parse_period(active, Some(" period = 'D180' ")).expect("ok"),
            Some(Period::D180)
        );
        for bad in [
            None,
            Some(""),
            Some("period='D8'"),
            Some("period='d7'"),
            Some("period='7'"),
            Some("period=D7"),
            Some("x='D7'"),
        ] {
            let error = parse_period(active, bad).expect_err("bad");
            assert!(error.message.contains("D7, D30, D90, D180"), "{bad:?}");
        }
        let activations = report_by_function("getOffice365ActivationsUserCounts").expect("report");
        assert_eq!(parse_period(activations, None).expect("ok"), None);
        assert_eq!(parse_period(activations, Some("")).expect("ok"), None);
        assert!(parse_period(activations, Some("period='D7'")).is_err());
    }
}
