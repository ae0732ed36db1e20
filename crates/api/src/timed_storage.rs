//! A [`Storage`] that times every operation of the one it wraps and counts the rows of bulk
//! loads, for the metrics (`--metrics-listen`). The API wraps its storage in it only when
//! metrics are on; the storage crate knows nothing of metrics (layers point one way).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use reportroot_model::{Entity, Period, ReportType, TenantId, Value};
use reportroot_odata::query::Expr;
use reportroot_storage::directory::Directory;
use reportroot_storage::throttle::ThrottleCounters;
use reportroot_storage::{
    ListQuery, NewEntity, PoolStatus, Precondition, RowChunks, Scope, Storage, StorageError,
    UpsertCounts,
};
use uuid::Uuid;

/// Storage operations take from well under a millisecond (a cached statement on SQLite) to
/// seconds (a bulk load, a read stopped at the time limit).
const BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// The storage metrics, shared by the registry and the [`TimedStorage`].
#[derive(Clone)]
pub(crate) struct StorageMetrics {
    latency: HistogramVec,
    errors: IntCounterVec,
    import_rows: IntCounterVec,
}

impl StorageMetrics {
    /// Creates and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "reportroot_storage_operation_duration_seconds",
                "Time storage operations took, by operation (failed ones included).",
            )
            .buckets(BUCKETS.to_vec()),
            &["operation"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "reportroot_storage_operation_errors_total",
                "Storage operations that failed, by operation (not found and conflicts included).",
            ),
            &["operation"],
        )?;
        let import_rows = IntCounterVec::new(
            Opts::new(
                "reportroot_import_rows_total",
                "Rows bulk-loaded (imports) through this server, by what the load did to each.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(import_rows.clone()))?;
        Ok(StorageMetrics {
            latency,
            errors,
            import_rows,
        })
    }

    /// Records one operation that started at `started`.
    pub fn observe<T, E>(&self, operation: &str, started: Instant, result: &Result<T, E>) {
        self.latency
            .with_label_values(&[operation])
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.errors.with_label_values(&[operation]).inc();
        }
    }

    fn count_rows(&self, counts: &UpsertCounts) {
        for (outcome, rows) in [
            ("inserted", counts.inserted),
            ("updated", counts.updated),
            ("unchanged", counts.unchanged),
        ] {
            self.import_rows.with_label_values(&[outcome]).inc_by(rows);
        }
    }
}

/// Times the operations of the storage it wraps.
pub(crate) struct TimedStorage {
    inner: Arc<dyn Storage>,
    metrics: StorageMetrics,
}

impl TimedStorage {
    /// `inner`, timed into `metrics`.
    pub fn new(inner: Arc<dyn Storage>, metrics: StorageMetrics) -> Self {
        TimedStorage { inner, metrics }
    }

    async fn timed<T>(
        &self,
        operation: &str,
        work: impl std::future::Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let started = Instant::now();
        let result = work.await;
        self.metrics.observe(operation, started, &result);
        result
    }
}

#[async_trait]
impl Storage for TimedStorage {
    // The directory, the accounts and the throttle counters are the inner storage's: the
    // directory's and accounts' statements are few and timed as part of sign-in, the
    // throttle times its own decisions.
    fn directory(&self) -> Directory<'_> {
        self.inner.directory()
    }

    fn throttle_counters(&self) -> Option<ThrottleCounters<'_>> {
        self.inner.throttle_counters()
    }

    fn pool_status(&self) -> Vec<PoolStatus> {
        self.inner.pool_status()
    }

    fn accounts(&self) -> reportroot_storage::accounts::Accounts<'_> {
        self.inner.accounts()
    }

    async fn insert(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        entity: NewEntity,
    ) -> Result<Entity, StorageError> {
        self.timed("insert", self.inner.insert(tenant, report, entity))
            .await
    }

    async fn get(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
    ) -> Result<Option<Entity>, StorageError> {
        self.timed("get", self.inner.get(tenant, report, id)).await
    }

    async fn list(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        query: &ListQuery,
    ) -> Result<Vec<Entity>, StorageError> {
        self.timed("list", self.inner.list(tenant, report, query))
            .await
    }

    async fn count(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        scope: Scope,
        filter: Option<&Expr>,
    ) -> Result<u64, StorageError> {
        self.timed("count", self.inner.count(tenant, report, scope, filter))
            .await
    }

    async fn series(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        query: &reportroot_storage::series::SeriesQuery,
    ) -> Result<Vec<Entity>, StorageError> {
        self.timed("series", self.inner.series(tenant, report, query))
            .await
    }

    async fn update(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
        changes: &[(usize, Value)],
        precondition: Precondition,
    ) -> Result<Entity, StorageError> {
        let work = self.inner.update(tenant, report, id, changes, precondition);
        self.timed("update", work).await
    }

    async fn delete(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        id: Uuid,
        precondition: Precondition,
    ) -> Result<(), StorageError> {
        let work = self.inner.delete(tenant, report, id, precondition);
        self.timed("delete", work).await
    }

    async fn latest_report(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        period: Option<Period>,
    ) -> Result<Vec<Entity>, StorageError> {
        let work = self.inner.latest_report(tenant, report, period);
        self.timed("latest_report", work).await
    }

    async fn tenant_version(&self, tenant: TenantId) -> Result<i64, StorageError> {
        self.timed("tenant_version", self.inner.tenant_version(tenant))
            .await
    }

    async fn upsert_stream(
        &self,
        tenant: TenantId,
        report: &'static ReportType,
        chunks: RowChunks,
    ) -> Result<UpsertCounts, StorageError> {
        let work = self.inner.upsert_stream(tenant, report, chunks);
        let counts = self.timed("upsert_stream", work).await?;
        self.metrics.count_rows(&counts);
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]

    use super::*;
    use reportroot_model::{find_report, Date};
    use reportroot_sqlite::{Durability, SqliteStorage};

    fn row(day: &str, product: &str, assigned: i64) -> Vec<Value> {
        vec![
            Value::Date(Date::parse(day).unwrap()),
            Value::Text(product.into()),
            Value::Int(assigned),
            Value::Int(1),
            Value::Int(0),
        ]
    }

    fn sample(registry: &Registry, name: &str, label: &str) -> f64 {
        let family = registry
            .gather()
            .into_iter()
            .find(|f| f.name() == name)
            .unwrap();
        let metric = family
            .get_metric()
            .iter()
            .find(|m| m.get_label().iter().any(|l| l.value() == label))
            .unwrap();
        match family.get_field_type() {
            prometheus::proto::MetricType::HISTOGRAM => {
                metric.get_histogram().get_sample_count() as f64
            }
            _ => metric.get_counter().get_value(),
        }
    }

    #[tokio::test]
    async fn loads_count_their_rows_and_every_operation_is_timed() {
        let dir = tempfile::tempdir().unwrap();
        let inner = SqliteStorage::open(dir.path().join("t.db"), Durability::Process).unwrap();
        let registry = Registry::new();
        let metrics = StorageMetrics::register(&registry).unwrap();
        let storage = TimedStorage::new(Arc::new(inner), metrics);
        let report = find_report("office365ActivationsUserCounts").unwrap();
        let tenant = TenantId(Uuid::new_v4());
        let rows = vec![row("2025-01-01", "A", 1), row("2025-01-01", "B", 2)];
        storage.upsert_many(tenant, report, rows).await.unwrap();
        let again = vec![row("2025-01-01", "A", 1), row("2025-01-01", "B", 3)];
        storage.upsert_many(tenant, report, again).await.unwrap();
        let rows = "reportroot_import_rows_total";
        assert_eq!(sample(&registry, rows, "inserted"), 2.0);
        assert_eq!(sample(&registry, rows, "updated"), 1.0);
        assert_eq!(sample(&registry, rows, "unchanged"), 1.0);
        let query = ListQuery::default();
        assert_eq!(storage.list(tenant, report, &query).await.unwrap().len(), 2);
        let missing = storage.delete(tenant, report, Uuid::new_v4(), Precondition::None);
        assert!(missing.await.is_err());
        let latency = "reportroot_storage_operation_duration_seconds";
        assert_eq!(sample(&registry, latency, "upsert_stream"), 2.0);
        assert_eq!(sample(&registry, latency, "list"), 1.0);
        assert_eq!(sample(&registry, latency, "delete"), 1.0);
        let errors = "reportroot_storage_operation_errors_total";
        assert_eq!(sample(&registry, errors, "delete"), 1.0);
        // The pools are the inner storage's.
        assert_eq!(storage.pool_status().len(), 2);
    }
}
