//! Rendered report answers, kept briefly. Report functions are read far more often than their
//! rows change; a repeat call within [`TTL`] and with no write through this instance since
//! skips the query, the rendering and the eTag hash. Writes from elsewhere (another instance, a
//! CLI import) show after at most [`TTL`].
//!
//! The cache is bounded by bytes, not entries: answers range from a 300-byte redirect to a
//! 1,000-row JSON page of over 100 KiB, so an entry bound let 6,000 distinct queries keep
//! 720 MiB. Entries leave in the order they came (all live [`TTL`]), expired ones first, then
//! the oldest while the total is over the budget. Callers key answers by what the answer
//! depends on (parsed options), so unknown or ignored query parameters cannot multiply entries.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reportroot_model::TenantId;

/// How long an answer is reused.
pub const TTL: Duration = Duration::from_secs(1);
/// Bytes counted for an entry besides its key, headers and body: the map slot, the queue
/// record and the allocations' headers, roughly.
const ENTRY_OVERHEAD: usize = 256;

/// A rendered report answer: status, headers, body and eTag. It is what the cache holds and
/// what every answer of a report function is made from, so a report is rendered once: the
/// JSON page, the `302` (whose eTag is that of the CSV it points to) and the download all come
/// from answers built here, never from a `Response` taken apart again.
#[derive(Clone)]
pub(crate) struct CachedAnswer {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    etag: HeaderValue,
}

impl CachedAnswer {
    /// A `200` of `body` whose eTag is the hash of `body`.
    pub fn ok(headers: Vec<(HeaderName, HeaderValue)>, body: Vec<u8>) -> Self {
        let etag = crate::etag::of_bytes(&body);
        CachedAnswer {
            status: StatusCode::OK,
            headers,
            body: Bytes::from(body),
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
        }
    }

    /// A `302` to `location` carrying the eTag of `target`, the answer it points to: the eTag
    /// changes exactly when the report does, whichever form the client asked for.
    pub fn redirect(location: &str, target: &CachedAnswer) -> Self {
        let headers = HeaderValue::from_str(location)
            .map(|value| vec![(header::LOCATION, value)])
            .unwrap_or_default();
        CachedAnswer {
            status: StatusCode::FOUND,
            headers,
            body: Bytes::new(),
            etag: target.etag.clone(),
        }
    }

    /// Bytes this answer holds.
    fn size(&self) -> usize {
        self.body.len()
            + self.etag.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 64)
                .sum::<usize>()
    }

    /// The answer to a request: `304` when its `If-None-Match` names this answer's eTag. The
    /// one place report answers match `If-None-Match`.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let not_modified = self
            .etag
            .to_str()
            .is_ok_and(|etag| crate::etag::none_match(request, etag));
        let mut response = if not_modified {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = (self.status, self.body.clone()).into_response();
            for (name, value) in &self.headers {
                response.headers_mut().insert(name.clone(), value.clone());
            }
            response
        };
        response
            .headers_mut()
            .insert(header::ETAG, self.etag.clone());
        response
    }
}

struct Entry {
    stored: Instant,
    generation: u64,
    size: usize,
    answer: CachedAnswer,
}

type Key = (TenantId, String);

/// The entries and their arrival order, with the bytes they hold.
#[derive(Default)]
struct Entries {
    map: HashMap<Key, Entry>,
    /// Keys in arrival order with their arrival time; a record whose time differs from the
    /// entry's is stale (the key was stored again since) and skipped.
    order: VecDeque<(Key, Instant)>,
    bytes: usize,
}

impl Entries {
    /// Drops the oldest record's entry, if the record is current.
    fn pop_oldest(&mut self) -> bool {
        let Some((key, stored)) = self.order.pop_front() else {
            return false;
        };
        if self.map.get(&key).is_some_and(|e| e.stored == stored) {
            if let Some(entry) = self.map.remove(&key) {
                self.bytes -= entry.size;
            }
        }
        true
    }

    fn oldest_is_expired(&self) -> bool {
        self.order
            .front()
            .is_some_and(|(_, stored)| stored.elapsed() >= TTL)
    }
}

/// The cache, with a write generation per tenant.
pub(crate) struct ReportCache {
    max_bytes: usize,
    entries: Mutex<Entries>,
    generations: Mutex<HashMap<TenantId, u64>>,
    /// Hits and misses, exported as metrics when they are on.
    pub(crate) counters: crate::metrics::CacheCounters,
}

impl ReportCache {
    /// A cache holding at most `max_bytes` of answers (0 turns it off).
    pub fn new(max_bytes: usize) -> Self {
        ReportCache {
            max_bytes,
            entries: Mutex::new(Entries::default()),
            generations: Mutex::new(HashMap::new()),
            counters: crate::metrics::CacheCounters::new(),
        }
    }

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
        let found = self.lookup(tenant, key);
        let counter = match found {
            Some(_) => &self.counters.hits,
            None => &self.counters.misses,
        };
        counter.inc();
        found
    }

    fn lookup(&self, tenant: TenantId, key: &str) -> Option<CachedAnswer> {
        let generation = self.generation(tenant);
        let entries = self.entries.lock().ok()?;
        let entry = entries.map.get(&(tenant, key.to_owned()))?;
        (entry.generation == generation && entry.stored.elapsed() < TTL)
            .then(|| entry.answer.clone())
    }

    /// Keeps an answer computed when the tenant's generation was `generation`, first dropping
    /// expired answers and then the oldest until it fits the budget.
    pub fn put(&self, tenant: TenantId, key: String, generation: u64, answer: CachedAnswer) {
        let size = ENTRY_OVERHEAD + key.len() + answer.size();
        if size > self.max_bytes {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        while entries.oldest_is_expired() {
            entries.pop_oldest();
        }
        while entries.bytes + size > self.max_bytes && entries.pop_oldest() {}
        let stored = Instant::now();
        let key = (tenant, key);
        entries.order.push_back((key.clone(), stored));
        let entry = Entry {
            stored,
            generation,
            size,
            answer,
        };
        entries.bytes += size;
        if let Some(old) = entries.map.insert(key, entry) {
            entries.bytes -= old.size;
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.entries.lock().map(|e| e.bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body_bytes: usize) -> CachedAnswer {
        CachedAnswer::ok(Vec::new(), vec![b'x'; body_bytes])
    }

    #[test]
    fn stays_within_its_byte_budget() {
        let cache = ReportCache::new(1024 * 1024);
        let tenant = TenantId(uuid::Uuid::new_v4());
        for i in 0..1000 {
            cache.put(tenant, format!("query {i}"), 0, answer(100 * 1024));
            assert!(cache.bytes() <= 1024 * 1024, "{} bytes", cache.bytes());
        }
        // The newest answers are the ones kept.
        assert!(cache.get(tenant, "query 999").is_some());
        assert!(cache.get(tenant, "query 0").is_none());
        // An answer larger than the budget is not kept at all.
        cache.put(tenant, "huge".into(), 0, answer(2 * 1024 * 1024));
        assert!(cache.get(tenant, "huge").is_none());
    }

    #[test]
    fn storing_a_key_again_counts_it_once() {
        let cache = ReportCache::new(1024 * 1024);
        let tenant = TenantId(uuid::Uuid::new_v4());
        for _ in 0..100 {
            cache.put(tenant, "same".into(), 0, answer(1000));
        }
        assert_eq!(cache.bytes(), ENTRY_OVERHEAD + 4 + 1000 + 26);
        assert!(cache.get(tenant, "same").is_some());
        cache.invalidate(tenant);
        assert!(cache.get(tenant, "same").is_none());
    }
}
