//! `GET /dashboard/api/operator?from=YYYY-MM-DD&to=YYYY-MM-DD[&skip=N]`: the operator view's
//! data ("All tenants") in one answer: for every tenant granted to the signed-in user, each
//! key number ([`super::registry::key_numbers`]) as its daily points in `[from, to]` (the
//! points `reportroot.series` answers, summed over a dimension's values as the pages sum
//! them) and the latest refresh date seen.
//!
//! Why server-side: the page used to make four series calls per tenant from the browser, four
//! at a time, and stopped at 200 tenants; an MSP with 1,000 tenants could not use it. Here
//! the same storage reads run next to the database, [`CONCURRENCY`] at a time, and the page
//! makes one request. (One multi-tenant statement per key number would read less; the
//! per-tenant series keeps the numbers identical to `reportroot.series` by construction.)

use std::sync::Arc;

use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use reportroot_model::{Date, Entity, Grain, Period, ReportType, TenantId, Value};
use reportroot_storage::series::{axis_index, Interval, SeriesQuery};
use reportroot_storage::Storage;
use serde::Serialize;

use super::registry::key_numbers;
use crate::error::ApiError;
use crate::session::TenantGrant;
use crate::AppState;

/// Most days one answer covers (`to - from + 1`). Why 400: a year and a month, the longest
/// range the page offers is a year.
pub const MAX_DAYS: i64 = 400;

/// Most points (tenants × key numbers × days) one answer reads; past it the answer is a page
/// of tenants, with `nextSkip`. Why 1,000,000: 8,000 tenants of 31 days, 625 of 400 days;
/// around 15 MB of JSON at most.
const MAX_POINTS: usize = 1_000_000;

/// Series reads in flight at once. Why 8: enough to keep a PostgreSQL pool busy, few enough
/// to leave connections to the other requests.
const CONCURRENCY: usize = 8;

/// The answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    #[serde(serialize_with = "date_text")]
    from: Date,
    #[serde(serialize_with = "date_text")]
    to: Date,
    keys: Vec<Key>,
    /// Every tenant granted, whether in this page or not.
    tenant_count: usize,
    skip: usize,
    /// Where the next page starts, when this one stops short.
    next_skip: Option<usize>,
    /// Why the page stops short, in words.
    message: Option<String>,
    tenants: Vec<TenantNumbers>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Key {
    entity_set: &'static str,
    name: &'static str,
    label: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TenantNumbers {
    id: String,
    display_name: String,
    /// The newest refresh date of the rows read, if any.
    #[serde(serialize_with = "optional_date_text")]
    refreshed: Option<Date>,
    /// One per key number, in `keys` order.
    numbers: Vec<Points>,
}

/// A key number's points: ascending dates, and the value of each (`null` where the rows have
/// none).
#[derive(Serialize, Default, Debug, PartialEq)]
struct Points {
    #[serde(serialize_with = "dates_text")]
    dates: Vec<Date>,
    values: Vec<Option<i64>>,
    #[serde(skip)]
    refreshed: Option<Date>,
}

fn date_text<S: serde::Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(date)
}

fn optional_date_text<S: serde::Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(date) => s.collect_str(date),
        None => s.serialize_none(),
    }
}

fn dates_text<S: serde::Serializer>(dates: &[Date], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(dates.iter().map(ToString::to_string))
}

/// Handles the request.
pub(crate) async fn operator(state: &Arc<AppState>, parts: &Parts) -> Result<Response, ApiError> {
    if !crate::session::not_cross_site(&parts.headers, &state.base_url(parts)) {
        return Err(ApiError::access_denied(
            "The dashboard's data is answered only to same-origin requests.",
        ));
    }
    let Some(user) = crate::session::dashboard_user(state, &parts.headers).await? else {
        return Err(ApiError::unauthenticated(
            "No one is signed in; sign in at /dashboard/signin.",
        ));
    };
    let (from, to, skip) = parse_query(parts.uri.query().unwrap_or(""))?;
    let keys = key_numbers();
    let days = usize::try_from(to.days_since(from) + 1).unwrap_or(1);
    let per_page = (MAX_POINTS / (keys.len().max(1) * days)).max(1);
    let tenant_count = user.tenants.len();
    let page: Vec<&TenantGrant> = user.tenants.iter().skip(skip).take(per_page).collect();
    let next = skip + page.len();
    let next_skip = (next < tenant_count).then_some(next);
    let message = next_skip.map(|next| {
        format!(
            "Numbers of tenants {} to {next} of {tenant_count}: an answer reads at most {MAX_POINTS} points; ask again with skip={next}.",
            skip + 1
        )
    });
    let mut reads = Vec::with_capacity(page.len() * keys.len());
    for grant in &page {
        for key in &keys {
            let query = SeriesQuery {
                from,
                to,
                interval: Interval::Day,
                period: (key.report.grain == Grain::PerPeriod).then_some(Period::D7),
            };
            let storage = Arc::clone(&state.storage);
            reads.push(read_points(storage, grant.id, key.report, key.name, query));
        }
    }
    let mut read: Vec<Points> = stream::iter(reads)
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut tenants = Vec::with_capacity(page.len());
    for grant in page.iter().rev() {
        let numbers = read.split_off(read.len() - keys.len());
        tenants.push(tenant_numbers(grant, numbers));
    }
    tenants.reverse();
    let answer = Answer {
        from,
        to,
        keys: keys
            .iter()
            .map(|key| Key {
                entity_set: key.report.entity,
                name: key.name,
                label: key.label.clone(),
            })
            .collect(),
        tenant_count,
        skip,
        next_skip,
        message,
        tenants,
    };
    let mut response = crate::entities::json_response(
        StatusCode::OK,
        serde_json::to_vec(&answer).unwrap_or_default(),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn tenant_numbers(grant: &TenantGrant, numbers: Vec<Points>) -> TenantNumbers {
    let TenantId(id) = grant.id;
    TenantNumbers {
        id: id.to_string(),
        display_name: grant.display_name.clone(),
        refreshed: numbers.iter().filter_map(|p| p.refreshed).max(),
        numbers,
    }
}

/// One key number of one tenant, read by `reportroot.series`' storage method.
async fn read_points(
    storage: Arc<dyn Storage>,
    tenant: TenantId,
    report: &'static ReportType,
    name: &'static str,
    query: SeriesQuery,
) -> Result<Points, ApiError> {
    let rows = storage.series(tenant, report, &query).await?;
    Ok(points(report, name, &rows))
}

/// A series' rows as one point per date: the key's count summed over the dimension's values
/// (`null` when none has one), and the newest refresh date.
fn points(report: &ReportType, name: &str, rows: &[Entity]) -> Points {
    let axis = axis_index(report);
    let refresh = report.refresh_date_index();
    let count = report.property_index(name);
    let mut points = Points::default();
    for row in rows {
        let Value::Date(day) = row.values[axis] else {
            continue;
        };
        if points.dates.last() != Some(&day) {
            points.dates.push(day);
            points.values.push(None);
        }
        if let (Some(Value::Int(n)), Some(last)) =
            (count.map(|i| &row.values[i]), points.values.last_mut())
        {
            *last = Some(last.unwrap_or(0) + n);
        }
        if let Value::Date(refreshed) = row.values[refresh] {
            points.refreshed = points.refreshed.max(Some(refreshed));
        }
    }
    points
}

/// `from`, `to` (default: the 31 days up to today, as the page shows) and `skip`.
fn parse_query(query: &str) -> Result<(Date, Date, usize), ApiError> {
    let (mut from, mut to, mut skip) = (None, None, 0);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let date = || {
            Date::parse(&value).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "The parameter '{name}' must be a date written YYYY-MM-DD, not '{value}'."
                ))
            })
        };
        match name.as_ref() {
            "from" => from = Some(date()?),
            "to" => to = Some(date()?),
            "skip" => {
                skip = value.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "The parameter 'skip' must be a whole number, not '{value}'."
                    ))
                })?;
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Unknown parameter '{name}': the operator data takes from, to and skip."
                )))
            }
        }
    }
    let to = to.unwrap_or_else(Date::today_utc);
    let from = from.unwrap_or_else(|| to.add_days(-30));
    if from > to {
        return Err(ApiError::bad_request(format!(
            "The range starts ({from}) after it ends ({to})."
        )));
    }
    if to.days_since(from) + 1 > MAX_DAYS {
        return Err(ApiError::bad_request(format!(
            "The range {from} to {to} is longer than {MAX_DAYS} days."
        )));
    }
    Ok((from, to, skip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_bounded() {
        assert!(parse_query("from=2024-01-01&to=2024-01-31").is_ok());
        assert!(parse_query("from=2024-01-31&to=2024-01-01").is_err());
        assert!(parse_query("from=2023-01-01&to=2024-12-31").is_err());
        assert!(parse_query("from=2024-13-01&to=2024-12-31").is_err());
        assert!(parse_query("skip=-1").is_err());
        assert!(parse_query("tenant=x").is_err());
        let (from, to, skip) = parse_query("to=2024-03-31&skip=5").expect("defaults");
        assert_eq!(
            (from, to, skip),
            (Date::parse("2024-03-01").expect("date"), to, 5)
        );
    }
}
