//! The entity sets: create, read, update and delete report rows.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use reportroot_model::{Entity, ReportType};
use reportroot_odata::json::{
    collection_json, decode_entity, entity_json, BodyMode, CollectionMeta, EntityShape, ID_INDEX,
};
use reportroot_odata::query::{parse_query_options, PropertyRef};
use reportroot_storage::query_cost::count_may_scan;
use reportroot_storage::{NewEntity, Precondition, Scope};
use uuid::Uuid;

use crate::auth::Caller;
use crate::context::ODATA_JSON;
use crate::error::ApiError;
use crate::paging::{query_page, Page};
use crate::{AppState, Call};

/// A JSON answer with Graph's OData content type.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON))],
        body,
    )
        .into_response()
}

/// `GET` and `POST` on an entity set.
pub(crate) async fn collection(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
    report: &'static ReportType,
) -> Result<Response, ApiError> {
    match call.method {
        Method::GET => {
            caller.require_read()?;
            list(state, call, caller, report).await
        }
        Method::POST => {
            caller.require_write()?;
            create(state, call, caller, report).await
        }
        _ => Err(ApiError::method_not_allowed("GET, POST")),
    }
}

/// `GET`, `PATCH` and `DELETE` on one entity.
pub(crate) async fn entity(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
    report: &'static ReportType,
    id_text: &str,
) -> Result<Response, ApiError> {
    let allowed = [Method::GET, Method::PATCH, Method::DELETE];
    if !allowed.contains(&call.method) {
        return Err(ApiError::method_not_allowed("GET, PATCH, DELETE"));
    }
    if call.method == Method::GET {
        caller.require_read()?;
    } else {
        caller.require_write()?;
    }
    // An id that is not a GUID cannot name a stored entity.
    let id = Uuid::parse_str(id_text).map_err(|_| ApiError::item_not_found(id_text))?;
    let not_found = |_| ApiError::item_not_found(id_text);
    let storage = &state.storage;
    match call.method {
        Method::GET => {
            let select = entity_select(report, call)?;
            let found = storage
                .get(caller.tenant, report, id)
                .await?
                .ok_or_else(|| ApiError::item_not_found(id_text))?;
            Ok(single_selected(
                state,
                call,
                report,
                &found,
                StatusCode::OK,
                select.as_deref(),
            ))
        }
        Method::PATCH => {
            require_json_content_type(&call.headers)?;
            let body = decode_entity(
                report,
                Some(call.version.model()),
                &call.body,
                BodyMode::Update,
            )?;
            if body.id.is_some_and(|given| given != id) {
                return Err(ApiError::bad_request(
                    "The property 'id' cannot be changed.",
                ));
            }
            let precondition = if_match(&call.headers);
            let updated = storage
                .update(caller.tenant, report, id, &body.values, precondition)
                .await
                .map_err(|e| match e {
                    reportroot_storage::StorageError::NotFound => not_found(()),
                    other => other.into(),
                })?;
            state.report_cache.invalidate(caller.tenant);
            Ok(single(state, call, report, &updated, StatusCode::OK))
        }
        _ => {
            storage
                .delete(caller.tenant, report, id, if_match(&call.headers))
                .await
                .map_err(|e| match e {
                    reportroot_storage::StorageError::NotFound => not_found(()),
                    other => other.into(),
                })?;
            state.report_cache.invalidate(caller.tenant);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

async fn create(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
    report: &'static ReportType,
) -> Result<Response, ApiError> {
    require_json_content_type(&call.headers)?;
    let body = decode_entity(
        report,
        Some(call.version.model()),
        &call.body,
        BodyMode::Create,
    )?;
    let new = NewEntity {
        id: body.id,
        values: body.values.into_iter().map(|(_, value)| value).collect(),
    };
    let created = state.storage.insert(caller.tenant, report, new).await?;
    state.report_cache.invalidate(caller.tenant);
    let mut response = single(state, call, report, &created, StatusCode::CREATED);
    let location = format!(
        "{}/reports/{}/{}",
        call.base(state),
        report.entity,
        created.id
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn list(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
    report: &'static ReportType,
) -> Result<Response, ApiError> {
    let base = call.base(state);
    let link_base = format!("{base}/reports/{}", report.entity);
    let page = query_page(state, call, caller.tenant, report, Scope::All, &link_base).await?;
    let context = format!("{base}/$metadata#Collection({})", report.qualified_name());
    Ok(page_response(report, &page, &context))
}

/// A page as `{"@odata.context", "@odata.count"?, "value", "@odata.nextLink"?}`.
pub(crate) fn page_body(
    report: &ReportType,
    page: &Page,
    context: &str,
    with_identity: bool,
) -> Vec<u8> {
    collection_json(
        report,
        &page.rows,
        CollectionMeta {
            context,
            count: page.count,
            next_link: page.next_link.as_deref(),
        },
        EntityShape {
            with_identity,
            select: page.select.as_deref(),
            version: Some(page.version),
            ..EntityShape::default()
        },
    )
}

/// [`page_body`] as an answer, with `Preference-Applied` when a page size was preferred.
pub(crate) fn page_response(report: &ReportType, page: &Page, context: &str) -> Response {
    let mut response = json_response(StatusCode::OK, page_body(report, page, context, true));
    add_preference_applied(&mut response, page);
    response
}

/// Says which `odata.maxpagesize` preference was honoured.
pub(crate) fn add_preference_applied(response: &mut Response, page: &Page) {
    if let Some(value) = preference_applied(page) {
        response.headers_mut().insert(PREFERENCE_APPLIED, value);
    }
}

/// The `Preference-Applied` header's name.
pub(crate) const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// `Preference-Applied: odata.maxpagesize=N` when the page size a client preferred was applied.
pub(crate) fn preference_applied(page: &Page) -> Option<HeaderValue> {
    let size = page.applied_page_size?;
    HeaderValue::from_str(&format!("odata.maxpagesize={size}")).ok()
}

/// `GET /reports/{set}/$count`: the number of matching rows as plain text.
pub(crate) async fn count(
    state: &Arc<AppState>,
    call: &Call,
    caller: Caller,
    report: &'static ReportType,
) -> Result<Response, ApiError> {
    if call.method != Method::GET {
        return Err(ApiError::method_not_allowed("GET"));
    }
    caller.require_read()?;
    let options = parse_query_options(report, Some(call.version.model()), &call.query)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let filter = options.filter.as_ref();
    let _slot = count_may_scan(report, Scope::All, filter)
        .then(|| state.scans.enter(caller.tenant))
        .transpose()?;
    let count = state
        .storage
        .count(caller.tenant, report, Scope::All, filter)
        .await?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        count.to_string(),
    )
        .into_response())
}

/// The `$select` of a single-entity `GET`, the only collection option that applies to one
/// entity; the others (`$filter`, `$orderby`, `$top`, `$skip`, `$count`) are refused, as is
/// anything malformed.
fn entity_select(report: &ReportType, call: &Call) -> Result<Option<Vec<usize>>, ApiError> {
    let options = parse_query_options(report, Some(call.version.model()), &call.query)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let not_applicable = [
        ("$filter", options.filter.is_some()),
        ("$orderby", !options.order_by.is_empty()),
        ("$top", options.top.is_some()),
        ("$skip", options.skip.is_some()),
        ("$count", options.count),
    ];
    if let Some((option, _)) = not_applicable.iter().find(|(_, given)| *given) {
        return Err(ApiError::bad_request(format!(
            "The query option '{option}' is not allowed on a single entity."
        )));
    }
    Ok(options.select.map(|refs| {
        refs.into_iter()
            .map(|r| match r {
                PropertyRef::Id => ID_INDEX,
                PropertyRef::Index(i) => i,
            })
            .collect()
    }))
}

/// One entity as an answer, with `@odata.context` and an `ETag` header.
fn single(
    state: &AppState,
    call: &Call,
    report: &ReportType,
    entity: &Entity,
    status: StatusCode,
) -> Response {
    single_selected(state, call, report, entity, status, None)
}

/// [`single`] with only the `select`ed properties.
fn single_selected(
    state: &AppState,
    call: &Call,
    report: &ReportType,
    entity: &Entity,
    status: StatusCode,
    select: Option<&[usize]>,
) -> Response {
    let context = format!(
        "{}/$metadata#reports/{}/$entity",
        call.base(state),
        report.entity
    );
    let body = entity_json(
        report,
        entity,
        EntityShape {
            context: Some(&context),
            with_type: true,
            with_identity: true,
            select,
            version: Some(call.version.model()),
        },
    );
    let mut response = json_response(status, body);
    if let Ok(value) = HeaderValue::from_str(&entity.etag()) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BadRequest",
            "The Content-Type header must be application/json.",
        ))
    }
}

/// Reads `If-Match`: `*` matches any version; an eTag that names no version never matches.
fn if_match(headers: &HeaderMap) -> Precondition {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Precondition::None;
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Precondition::None;
    }
    let version = text
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .unwrap_or(-1);
    Precondition::Version(version)
}
