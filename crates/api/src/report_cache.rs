//! Rendered report answers, kept briefly. Report functions are read far more often than their
//! rows change; a repeat call within [`TTL`] and with no write through this instance since
//! skips the query, the rendering and the eTag hash. Writes from elsewhere (another instance, a
//! CLI import) show after at most [`TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reportroot_model::TenantId;

/// How long an answer is reused.
pub const TTL: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 20_000;

/// An unconditional answer: status, headers and body.
#[derive(Clone)]
pub(crate) struct CachedAnswer {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl CachedAnswer {
    /// Takes a response apart.
    pub async fn from_response(response: Response) -> Self {
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        CachedAnswer {
            status: parts.status,
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            body,
        }
    }

    /// The answer to a request: `304` when its `If-None-Match` names this answer's eTag.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let etag = self
            .headers
            .iter()
            .find(|(n, _)| n == header::ETAG)
            .map(|(_, v)| v.clone());
        let not_modified = etag
            .as_ref()
            .and_then(|e| e.to_str().ok())
            .is_some_and(|etag| {
                request
                    .get_all(header::IF_NONE_MATCH)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .map(|v| v.trim().trim_start_matches("W/"))
                    .any(|v| v == etag || v == "*")
            });
        if not_modified {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            if let Some(etag) = etag {
                response.headers_mut().insert(header::ETAG, etag);
            }
            return response;
        }
        let mut response = (self.status, self.body.clone()).into_response();
        for (name, value) in &self.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        response
    }
}

struct Entry {
    stored: Instant,
    generation: u64,
    answer: CachedAnswer,
}

/// The cache, with a write generation per tenant.
#[derive(Default)]
pub(crate) struct ReportCache {
    entries: Mutex<HashMap<(TenantId, String), Entry>>,
    generations: Mutex<HashMap<TenantId, u64>>,
}

impl ReportCache {
    /// The tenant's current write generation.
    pub fn generation(&self, tenant: TenantId) -> u64 {
        self.generations
            .lock()
            .map(|g| g.get(&tenant).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Forgets the tenant's answers: called after every write.
    pub fn invalidate(&self, tenant: TenantId) {
        if let Ok(mut generations) = self.generations.lock() {
            *generations.entry(tenant).or_default() += 1;
        }
    }

    /// A fresh answer for `key`, if any.
    pub fn get(&self, tenant: TenantId, key: &str) -> Option<CachedAnswer> {
        let generation = self.generation(tenant);
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(&(tenant, key.to_owned()))?;
        (entry.generation == generation && entry.stored.elapsed() < TTL)
            .then(|| entry.answer.clone())
    }

    /// Keeps an answer computed when the tenant's generation was `generation`.
    pub fn put(&self, tenant: TenantId, key: String, generation: u64, answer: CachedAnswer) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, e| e.stored.elapsed() < TTL);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(
                (tenant, key),
                Entry {
                    stored: Instant::now(),
                    generation,
                    answer,
                },
            );
        }
    }
}
