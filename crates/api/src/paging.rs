//! Query options on collections and server-driven paging. A page's `@odata.nextLink` repeats
//! every option and adds a sealed `$skiptoken` holding the last row's keyset position, so the
//! next page is `WHERE (order keys) > (last row)`: correct when rows are inserted between pages,
//! and answerable by any instance sharing the secret.

use reportroot_model::{Entity, ReportType, TenantId, Value, ValueKind, Version};
use reportroot_odata::json::ID_INDEX;
use reportroot_odata::query::{parse_query_options, OrderKey, PropertyRef, QueryOptions};
use reportroot_storage::query_cost::list_may_scan;
use reportroot_storage::{effective_order, Cursor, ListQuery, Scope};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::download::Signer;
use crate::error::ApiError;
use crate::{AppState, Call};

/// One page of a query's answer.
pub(crate) struct Page {
    pub rows: Vec<Entity>,
    pub count: Option<u64>,
    pub next_link: Option<String>,
    pub select: Option<Vec<usize>>,
    pub applied_page_size: Option<u64>,
    /// The API version asked on: its properties are the ones written.
    pub version: Version,
}

#[derive(Serialize, Deserialize)]
struct SkipToken {
    /// Hash of the options the token belongs to.
    q: String,
    /// Rows still owed under `$top`.
    r: Option<u64>,
    /// Last row's id.
    i: Uuid,
    /// Last row's order-key values.
    k: Vec<serde_json::Value>,
}

/// A stable text for a scope, sealed into skiptokens. Why not `Debug`: a derived `Debug`
/// changes with the type's definition, and outstanding next links would break with it.
fn scope_key(scope: &Scope) -> String {
    match scope {
        Scope::All => "all".to_owned(),
        Scope::Latest { period: None } => "latest".to_owned(),
        Scope::Latest {
            period: Some(period),
        } => format!("latest {}", period.param()),
    }
}

fn options_hash(report: &ReportType, scope: &Scope, options: &QueryOptions) -> String {
    let mut hasher = Sha256::new();
    hasher.update(report.entity.as_bytes());
    hasher.update(scope_key(scope).as_bytes());
    let shape = QueryOptions {
        filter: options.filter.clone(),
        order_by: options.order_by.clone(),
        ..QueryOptions::default()
    };
    for (name, value) in shape.to_query_pairs(report) {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn value_to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Int(i) => serde_json::Value::from(*i),
        other => serde_json::Value::from(other.to_string()),
    }
}

fn value_from_json(kind: ValueKind, json: &serde_json::Value) -> Option<Value> {
    match (kind, json) {
        (kind, serde_json::Value::Null) if kind.is_nullable() => Some(Value::Null),
        (ValueKind::Count | ValueKind::Count32, serde_json::Value::Number(n)) => {
            n.as_i64().map(Value::Int)
        }
        (
            ValueKind::Text | ValueKind::Period | ValueKind::Duration,
            serde_json::Value::String(s),
        ) => Some(Value::Text(s.clone())),
        (ValueKind::Date, serde_json::Value::String(s)) => {
            reportroot_model::Date::parse(s).map(Value::Date)
        }
        _ => None,
    }
}

/// The page size a request gets: `Prefer: odata.maxpagesize=N` when smaller than the server's.
pub(crate) fn page_size(state: &AppState, call: &Call) -> (u64, Option<u64>) {
    let preferred = call
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
        .find_map(|n| n.trim().parse::<u64>().ok())
        .filter(|n| *n > 0);
    match preferred {
        Some(n) if n <= state.config.page_size => (n, Some(n)),
        _ => (state.config.page_size, None),
    }
}

/// Parses the query options of `call`, reads one page, and builds the next link.
pub(crate) async fn query_page(
    state: &AppState,
    call: &Call,
    tenant: TenantId,
    report: &'static ReportType,
    scope: Scope,
    link_base: &str,
) -> Result<Page, ApiError> {
    let options = parse_query_options(report, Some(call.version.model()), &call.query)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Hashed only for a skiptoken given or made: most pages have neither (SHA-256 and the
    // options' text were 2 % of a page's CPU).
    let hash = || options_hash(report, &scope, &options);
    let mut query = ListQuery {
        scope,
        filter: options.filter.clone(),
        order_by: options.order_by.clone(),
        after: None,
        skip: options.skip.unwrap_or(0),
        limit: None,
    };
    let order = effective_order(report, &query);
    let mut remaining = options.top;
    if let Some(text) = query_value(call, "$skiptoken") {
        let resumed = resume(state, report, &order, &hash(), text)?;
        query.after = Some(resumed.cursor);
        // $skip applied to the first page only.
        query.skip = 0;
        remaining = resumed.remaining;
    }
    let (size, applied) = page_size(state, call);
    let page = remaining.map_or(size, |r| r.min(size));
    // Held while the count and the page are read.
    let _slot = list_may_scan(report, &query)
        .then(|| state.scans.enter(tenant))
        .transpose()?;
    let count = match options.count {
        true => Some(
            state
                .storage
                .count(tenant, report, scope, query.filter.as_ref())
                .await?,
        ),
        false => None,
    };
    let mut rows = if page == 0 {
        Vec::new()
    } else {
        query.limit = Some(page + 1);
        state.storage.list(tenant, report, &query).await?
    };
    let has_more = rows.len() as u64 > page && remaining.is_none_or(|r| r > page);
    rows.truncate(usize::try_from(page).unwrap_or(usize::MAX));
    let next_link = match rows.last() {
        Some(last) if has_more => {
            let token = SkipToken {
                q: hash(),
                r: remaining.map(|r| r - page),
                i: last.id,
                k: order_values(&order, last),
            };
            Some(next_link(state, call, report, &options, link_base, &token))
        }
        _ => None,
    };
    Ok(Page {
        rows,
        count,
        next_link,
        select: options.select.map(selected_indexes),
        applied_page_size: applied,
        version: call.version.model(),
    })
}

/// The value of query parameter `name` (case-insensitive), if given.
fn query_value<'a>(call: &'a Call, name: &str) -> Option<&'a str> {
    call.query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Where a `$skiptoken` resumes: after which row, and how many rows of `$top` are left.
struct Resumed {
    cursor: Cursor,
    remaining: Option<u64>,
}

/// Opens a `$skiptoken`, checking that it was issued for this query (`hash`) and that its
/// keys fit `order`.
fn resume(
    state: &AppState,
    report: &ReportType,
    order: &[OrderKey],
    hash: &str,
    text: &str,
) -> Result<Resumed, ApiError> {
    let invalid = || ApiError::bad_request("The $skiptoken is not valid for this request.");
    let token: SkipToken = state
        .skiptokens
        .open(text)
        .and_then(|json| serde_json::from_str(&json).ok())
        .ok_or_else(invalid)?;
    if token.q != hash {
        return Err(invalid());
    }
    let kinds: Vec<_> = order
        .iter()
        .filter_map(|k| match k.property {
            PropertyRef::Index(i) => Some(report.properties[i].kind),
            PropertyRef::Id => None,
        })
        .collect();
    if kinds.len() != token.k.len() {
        return Err(invalid());
    }
    let values = kinds
        .iter()
        .zip(&token.k)
        .map(|(kind, json)| value_from_json(*kind, json))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(invalid)?;
    Ok(Resumed {
        cursor: Cursor {
            values,
            id: token.i,
        },
        remaining: token.r,
    })
}

/// The values of `row` at the order's keys, as a `$skiptoken` keeps them.
fn order_values(order: &[OrderKey], row: &Entity) -> Vec<serde_json::Value> {
    order
        .iter()
        .filter_map(|k| match k.property {
            PropertyRef::Index(i) => Some(value_to_json(&row.values[i])),
            PropertyRef::Id => None,
        })
        .collect()
}

/// The `@odata.nextLink`: the query's options but `$top`/`$skip` (the token carries what is
/// left of them), its `$format`, and the sealed token.
fn next_link(
    state: &AppState,
    call: &Call,
    report: &ReportType,
    options: &QueryOptions,
    link_base: &str,
    token: &SkipToken,
) -> String {
    let sealed = state
        .skiptokens
        .seal(&serde_json::to_string(token).unwrap_or_default());
    let kept = QueryOptions {
        top: None,
        skip: None,
        ..options.clone()
    };
    let mut pairs = kept.to_query_pairs(report);
    if let Some(format) = query_value(call, "$format") {
        pairs.push(("$format", format.to_owned()));
    }
    let mut link = format!("{link_base}?");
    for (name, value) in pairs {
        link.push_str(name);
        link.push('=');
        link.extend(form_urlencoded::byte_serialize(value.as_bytes()));
        link.push('&');
    }
    link.push_str("$skiptoken=");
    link.push_str(&sealed);
    link
}

/// `$select`'s properties as indexes into a row (the id as [`ID_INDEX`]).
fn selected_indexes(refs: Vec<PropertyRef>) -> Vec<usize> {
    refs.into_iter()
        .map(|r| match r {
            PropertyRef::Id => ID_INDEX,
            PropertyRef::Index(i) => i,
        })
        .collect()
}

/// The signer for `$skiptoken`s.
pub(crate) fn skiptoken_signer(secret: &[u8]) -> Signer {
    Signer::new(secret, "skiptoken v1")
}
