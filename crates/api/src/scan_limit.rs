//! How many queries that may read a tenant's whole history run at once: a few per tenant and a
//! few in all, so that one tenant's scans never hold the database's readers (SQLite has four)
//! or its cores from the other tenants' indexed pages (issue 16, "bounded cost"). Which
//! queries count is [`reportroot_storage::query_cost`]'s decision; each is also stopped after
//! [`reportroot_storage::READ_TIME_LIMIT`].
//!
//! A query over a limit is answered at once, not queued: a scan holds its slot for up to the
//! read limit, and queued requests would hold connections meanwhile. Over the tenant's limit:
//! 429 `TooManyRequests` (the tenant's own doing); over the server's: 503, as Graph answers
//! when it is busy. Both with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::StatusCode;
use reportroot_model::TenantId;

use crate::error::ApiError;

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLimits {
    /// Scanning queries of one tenant at once.
    pub per_tenant: usize,
    /// Scanning queries of all tenants at once.
    pub total: usize,
}

impl Default for ScanLimits {
    /// One per tenant; in all, half the cores (at least one). Why half: a scan keeps one core
    /// busy for up to the read limit, and the other half is left to the indexed requests.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ScanLimits {
            per_tenant: 1,
            total: (cores / 2).max(1),
        }
    }
}

/// The scanning queries running now.
#[derive(Debug)]
pub(crate) struct ScanSlots {
    limits: ScanLimits,
    /// Per tenant with at least one running (entries leave at zero, so the map is bounded by
    /// `limits.total`), and the total.
    running: Mutex<(HashMap<TenantId, usize>, usize)>,
}

/// A running scan's slot, given back on drop.
#[derive(Debug)]
pub(crate) struct ScanSlot<'a> {
    slots: &'a ScanSlots,
    tenant: TenantId,
}

impl ScanSlots {
    pub(crate) fn new(limits: ScanLimits) -> Self {
        ScanSlots {
            limits: ScanLimits {
                per_tenant: limits.per_tenant.max(1),
                total: limits.total.max(1),
            },
            running: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// A slot for one of `tenant`'s scanning queries, or the error to answer.
    pub(crate) fn enter(&self, tenant: TenantId) -> Result<ScanSlot<'_>, ApiError> {
        let mut guard = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let (per_tenant, total) = &mut *guard;
        let mine = per_tenant.get(&tenant).copied().unwrap_or(0);
        if mine >= self.limits.per_tenant {
            return Err(busy(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!(
                    "{mine} {} of this tenant that {} its whole history (a $filter or $orderby \
                     on a count, or a string function) {} running; retry later, or narrow \
                     $filter to key properties (reportDate, reportRefreshDate, reportPeriod).",
                    if mine == 1 { "query" } else { "queries" },
                    if mine == 1 { "reads" } else { "read" },
                    if mine == 1 { "is" } else { "are" },
                ),
            ));
        }
        if *total >= self.limits.total {
            return Err(busy(
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "The service is busy with other queries that read whole histories; retry later, \
                 or narrow $filter to key properties (reportDate, reportRefreshDate, reportPeriod)."
                    .to_owned(),
            ));
        }
        per_tenant.insert(tenant, mine + 1);
        *total += 1;
        Ok(ScanSlot {
            slots: self,
            tenant,
        })
    }
}

impl Drop for ScanSlot<'_> {
    fn drop(&mut self) {
        let mut guard = self.slots.running.lock().unwrap_or_else(|e| e.into_inner());
        let (per_tenant, total) = &mut *guard;
        *total = total.saturating_sub(1);
        if let Some(mine) = per_tenant.get_mut(&self.tenant) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                per_tenant.remove(&self.tenant);
            }
        }
    }
}

/// A 429 or 503 with Graph's error body and `Retry-After` of the read limit: by then the
/// running scans have ended.
fn busy(status: StatusCode, code: &'static str, message: String) -> ApiError {
    let mut error = ApiError::new(status, code, message);
    error.status_in_inner_error = status == StatusCode::TOO_MANY_REQUESTS;
    error.set_retry_after(reportroot_storage::READ_TIME_LIMIT.as_secs().max(1));
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_per_tenant_and_in_all_and_given_back() {
        let slots = ScanSlots::new(ScanLimits {
            per_tenant: 1,
            total: 2,
        });
        let tenant = |n| TenantId(uuid::Uuid::from_u128(n));
        let (a, b, c) = (tenant(1), tenant(2), tenant(3));
        let first = slots.enter(a).expect("a's first");
        let refused = slots.enter(a).expect_err("a's second");
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        let second = slots.enter(b).expect("b's first");
        let busy = slots.enter(c).expect_err("c over the total");
        assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
        drop(first);
        let again = slots.enter(a).expect("a's slot given back");
        drop((again, second));
        assert!(slots.running.lock().expect("lock").0.is_empty());
        assert_eq!(slots.running.lock().expect("lock").1, 0);
    }
}
