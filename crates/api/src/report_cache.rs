//! Rendered report answers, kept until the tenant's rows change. Report functions are read far
//! more often than their rows change; a repeat call skips the query, the rendering and the
//! eTag hash.
//!
//! When an answer is stale:
//! - a write through this instance forgets the tenant's answers at once (a per-tenant write
//!   generation, [`ReportCache::invalidate`]);
//! - a write from elsewhere (another instance on the same PostgreSQL, a CLI `import` into the
//!   same SQLite file) raises the tenant's change version in the database
//!   (`reportroot_storage::changes`). Every answer keeps the version read before it was
//!   computed. An answer younger than the check interval (1 s) is served as it is; an older
//!   one only if the tenant's version, read at most once per interval per tenant (one
//!   primary-key lookup refreshes it for all the tenant's answers), is unchanged. So a write
//!   from elsewhere shows within the interval (plus one version read in flight: while one
//!   request reads the version, others use the last value read).
//!
//! Why not expire answers after 1 s, as before: with the whole family, 61 reports × 1,000
//! tenants are 61,000 answers; at 26k req/s each was asked for 0.4 times a second, so almost
//! every request missed (25.8k req/s against 41.1k over only the first 3 reports, whose 3,000
//! answers were asked for ~14 times a second each: bench/RESULTS.md, "family"). A version read
//! per tenant and second is at most 1,000 lookups a second instead of 26k renders.
//!
//! The cache is bounded by bytes, not entries: answers range from a 300-byte redirect to a
//! 1,000-row JSON page of over 100 KiB, so an entry bound let 6,000 distinct queries keep
//! 720 MiB. Entries leave in the order they came, the oldest while the total is over the
//! budget. Callers key answers by what the answer depends on (parsed options), so unknown or
//! ignored query parameters cannot multiply entries.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reportroot_model::TenantId;
use reportroot_storage::Storage;

/// How long an answer is served without a look at the tenant's change version, and how often
/// that version is read at most (per tenant): writes from elsewhere show within it.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Tenants whose last version read is kept; past it, those not read within the interval are
/// forgotten (a forgotten tenant's next lookup reads its version again). ~64 bytes each.
const MAX_TENANTS: usize = 100_000;
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
    /// When it was put: identifies its record in [`Entries::order`].
    stored: Instant,
    stamp: Stamp,
    size: usize,
    answer: CachedAnswer,
}

/// What an answer was computed from: the tenant's write generation in this instance and its
/// change version in the database, both read before the computation, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    generation: u64,
    /// `None`: the version could not be read, and the answer is not kept.
    version: Option<i64>,
    at: Instant,
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
}

/// The last read of a tenant's change version.
#[derive(Debug, Clone, Copy)]
struct VersionCheck {
    /// When the read started (a write committed before it is counted).
    read_at: Instant,
    version: i64,
    /// A request is reading it now; others use `version` meanwhile.
    reading: bool,
}

/// The cache, with a write generation and the last change-version read per tenant.
pub(crate) struct ReportCache {
    max_bytes: usize,
    interval: Duration,
    entries: Mutex<Entries>,
    generations: Mutex<HashMap<TenantId, u64>>,
    checks: Mutex<HashMap<TenantId, VersionCheck>>,
    /// Hits, misses and version reads, exported as metrics when they are on.
    pub(crate) counters: crate::metrics::CacheCounters,
}

/// What [`ReportCache::get`] found.
pub(crate) enum Lookup {
    /// A current answer.
    Hit(CachedAnswer),
    /// None: compute it, and [`ReportCache::put`] it with this stamp.
    Miss(Stamp),
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data: go on with it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ReportCache {
    /// A cache holding at most `max_bytes` of answers (0 turns it off), checking the tenants'
    /// change versions at most every `interval` ([`CHECK_INTERVAL`] outside tests).
    pub fn new(max_bytes: usize, interval: Duration) -> Self {
        ReportCache {
            max_bytes,
            interval,
            entries: Mutex::new(Entries::default()),
            generations: Mutex::new(HashMap::new()),
            checks: Mutex::new(HashMap::new()),
            counters: crate::metrics::CacheCounters::new(),
        }
    }

    /// The tenant's current write generation.
    fn generation(&self, tenant: TenantId) -> u64 {
        locked(&self.generations)
            .get(&tenant)
            .copied()
            .unwrap_or_default()
    }

    /// Forgets the tenant's answers: called after every write through this instance. The
    /// write raised the tenant's version too: its last read is forgotten, so the next answer
    /// is stamped with the new one.
    pub fn invalidate(&self, tenant: TenantId) {
        *locked(&self.generations).entry(tenant).or_default() += 1;
        let mut checks = locked(&self.checks);
        if checks.get(&tenant).is_some_and(|check| !check.reading) {
            checks.remove(&tenant);
        }
    }

    /// A current answer for `key`, or the stamp to keep the one computed next with.
    pub async fn get(&self, storage: &dyn Storage, tenant: TenantId, key: &str) -> Lookup {
        let lookup = self.lookup(storage, tenant, key).await;
        let counter = match lookup {
            Lookup::Hit(_) => &self.counters.hits,
            Lookup::Miss(_) => &self.counters.misses,
        };
        counter.inc();
        lookup
    }

    async fn lookup(&self, storage: &dyn Storage, tenant: TenantId, key: &str) -> Lookup {
        let at = Instant::now();
        let generation = self.generation(tenant);
        let found = if self.max_bytes == 0 {
            None
        } else {
            let entries = locked(&self.entries);
            entries
                .map
                .get(&(tenant, key.to_owned()))
                .filter(|entry| entry.stamp.generation == generation)
                .map(|entry| (entry.stamp, entry.answer.clone()))
        };
        if let Some((stamp, answer)) = &found {
            if stamp.at.elapsed() < self.interval {
                return Lookup::Hit(answer.clone());
            }
        }
        let version = self.version(storage, tenant).await;
        if let Some((stamp, answer)) = found {
            if version.is_some() && stamp.version == version {
                return Lookup::Hit(answer);
            }
        }
        Lookup::Miss(Stamp {
            generation,
            version,
            at,
        })
    }

    /// The tenant's change version: the last read if it is younger than the interval (or
    /// being read by another request), else read now. `None` if the read failed.
    async fn version(&self, storage: &dyn Storage, tenant: TenantId) -> Option<i64> {
        if self.max_bytes == 0 {
            return None;
        }
        let read_at = Instant::now();
        {
            let mut checks = locked(&self.checks);
            if let Some(check) = checks.get_mut(&tenant) {
                if check.reading || check.read_at.elapsed() < self.interval {
                    return Some(check.version);
                }
                check.reading = true;
            }
        }
        let mut reading = Reading {
            cache: self,
            tenant,
            done: false,
        };
        self.counters.version_checks.inc();
        let read = storage.tenant_version(tenant).await;
        reading.done = true;
        let mut checks = locked(&self.checks);
        match read {
            Ok(version) => {
                let newer = checks.get(&tenant).is_none_or(|c| c.read_at <= read_at);
                if newer {
                    if !checks.contains_key(&tenant) && checks.len() >= MAX_TENANTS {
                        let interval = self.interval;
                        checks.retain(|_, c| c.reading || c.read_at.elapsed() < interval);
                        if checks.len() >= MAX_TENANTS {
                            checks.retain(|_, c| c.reading);
                        }
                    }
                    checks.insert(
                        tenant,
                        VersionCheck {
                            read_at,
                            version,
                            reading: false,
                        },
                    );
                }
                Some(version)
            }
            Err(error) => {
                tracing::warn!(%error, tenant = %tenant.0, "cannot read the tenant's change version");
                if let Some(check) = checks.get_mut(&tenant) {
                    check.reading = false;
                }
                None
            }
        }
    }

    /// Keeps an answer computed as `stamp` says, first dropping the oldest answers until it
    /// fits the budget. Not kept if the version could not be read.
    pub fn put(&self, tenant: TenantId, key: String, stamp: Stamp, answer: CachedAnswer) {
        let size = ENTRY_OVERHEAD + key.len() + answer.size();
        if size > self.max_bytes || stamp.version.is_none() {
            return;
        }
        let mut entries = locked(&self.entries);
        while entries.bytes + size > self.max_bytes && entries.pop_oldest() {}
        let stored = Instant::now();
        let key = (tenant, key);
        entries.order.push_back((key.clone(), stored));
        let entry = Entry {
            stored,
            stamp,
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
        locked(&self.entries).bytes
    }
}

/// A version read in flight: if the request is dropped before it ends, the tenant is no
/// longer marked as being read.
struct Reading<'c> {
    cache: &'c ReportCache,
    tenant: TenantId,
    done: bool,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Some(check) = locked(&self.cache.checks).get_mut(&self.tenant) {
                check.reading = false;
            }
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used)]
mod tests {
    use reportroot_model::{find_report, Date, Value};
    use reportroot_sqlite::{Durability, SqliteStorage};

    use super::*;

    fn answer(body_bytes: usize) -> CachedAnswer {
        CachedAnswer::ok(Vec::new(), vec![b'x'; body_bytes])
    }

    fn storage() -> (SqliteStorage, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path().join("c.db"), Durability::Process).unwrap();
        (storage, dir)
    }

    /// Looks `key` up: the answer, or `None` after putting nothing.
    async fn get(
        cache: &ReportCache,
        storage: &SqliteStorage,
        tenant: TenantId,
        key: &str,
    ) -> Option<CachedAnswer> {
        match cache.get(storage, tenant, key).await {
            Lookup::Hit(answer) => Some(answer),
            Lookup::Miss(_) => None,
        }
    }

    /// Looks `key` up, expecting a miss, and keeps `answer` under it.
    async fn fill(
        cache: &ReportCache,
        storage: &SqliteStorage,
        tenant: TenantId,
        key: &str,
        answer: CachedAnswer,
    ) {
        match cache.get(storage, tenant, key).await {
            Lookup::Hit(_) => panic!("{key} was kept already"),
            Lookup::Miss(stamp) => cache.put(tenant, key.to_owned(), stamp, answer),
        }
    }

    #[tokio::test]
    async fn stays_within_its_byte_budget() {
        let (storage, _dir) = storage();
        let cache = ReportCache::new(1024 * 1024, CHECK_INTERVAL);
        let tenant = TenantId(uuid::Uuid::new_v4());
        for i in 0..1000 {
            fill(
                &cache,
                &storage,
                tenant,
                &format!("query {i}"),
                answer(100 * 1024),
            )
            .await;
            assert!(cache.bytes() <= 1024 * 1024, "{} bytes", cache.bytes());
        }
        // The newest answers are the ones kept.
        assert!(get(&cache, &storage, tenant, "query 999").await.is_some());
        assert!(get(&cache, &storage, tenant, "query 0").await.is_none());
        // An answer larger than the budget is not kept at all.
        fill(&cache, &storage, tenant, "huge", answer(2 * 1024 * 1024)).await;
        assert!(get(&cache, &storage, tenant, "huge").await.is_none());
        // One version read for the tenant within the interval, however many lookups.
        assert_eq!(cache.counters.version_checks.get(), 1);
    }

    #[tokio::test]
    async fn storing_a_key_again_counts_it_once() {
        let (storage, _dir) = storage();
        let cache = ReportCache::new(1024 * 1024, CHECK_INTERVAL);
        let tenant = TenantId(uuid::Uuid::new_v4());
        let stamp = match cache.get(&storage, tenant, "same").await {
            Lookup::Miss(stamp) => stamp,
            Lookup::Hit(_) => panic!("hit in an empty cache"),
        };
        for _ in 0..100 {
            cache.put(tenant, "same".into(), stamp, answer(1000));
        }
        assert_eq!(cache.bytes(), ENTRY_OVERHEAD + 4 + 1000 + 26);
        assert!(get(&cache, &storage, tenant, "same").await.is_some());
        cache.invalidate(tenant);
        assert!(get(&cache, &storage, tenant, "same").await.is_none());
    }

    #[tokio::test]
    async fn answers_outlive_the_interval_until_the_tenant_changes_elsewhere() {
        let (storage, _dir) = storage();
        let interval = Duration::from_millis(20);
        let cache = ReportCache::new(1024 * 1024, interval);
        let tenant = TenantId(uuid::Uuid::new_v4());
        let other = TenantId(uuid::Uuid::new_v4());
        for key in ["a", "b"] {
            fill(&cache, &storage, tenant, key, answer(10)).await;
            fill(&cache, &storage, other, key, answer(10)).await;
        }
        let checks = || cache.counters.version_checks.get();
        assert_eq!(checks(), 2, "one read per tenant");
        tokio::time::sleep(interval * 2).await;
        // Older than the interval, unchanged: served, with one read for both answers.
        assert!(get(&cache, &storage, tenant, "a").await.is_some());
        assert!(get(&cache, &storage, tenant, "b").await.is_some());
        assert_eq!(checks(), 3);
        // A write the cache is not told of (another process, say) raises the version.
        let report = find_report("office365ActivationsUserCounts").unwrap();
        let day = Value::Date(Date::parse("2024-01-01").unwrap());
        let row = vec![
            day,
            Value::Text("Office".into()),
            Value::Int(1),
            Value::Int(1),
            Value::Int(0),
        ];
        storage
            .upsert_many(tenant, report, vec![row])
            .await
            .unwrap();
        // Until the next read, the last one holds; after the interval, both answers are gone,
        // and the other tenant's stay.
        assert!(get(&cache, &storage, tenant, "a").await.is_some());
        tokio::time::sleep(interval * 2).await;
        assert!(get(&cache, &storage, tenant, "a").await.is_none());
        assert!(get(&cache, &storage, tenant, "b").await.is_none());
        assert!(get(&cache, &storage, other, "a").await.is_some());
        // Kept again with the new version, and served past the interval.
        fill(&cache, &storage, tenant, "a", answer(10)).await;
        tokio::time::sleep(interval * 2).await;
        assert!(get(&cache, &storage, tenant, "a").await.is_some());
    }

    #[tokio::test]
    async fn remembers_at_most_max_tenants_version_reads() {
        let (storage, _dir) = storage();
        let cache = ReportCache::new(1024 * 1024, CHECK_INTERVAL);
        let mut most = 0;
        for _ in 0..MAX_TENANTS + 100 {
            let tenant = TenantId(uuid::Uuid::new_v4());
            assert!(get(&cache, &storage, tenant, "a").await.is_none());
            most = most.max(locked(&cache.checks).len());
        }
        assert_eq!(most, MAX_TENANTS, "filled to the bound, never past it");
    }
}
