//! Data in and out: `import` of Graph's CSV exports, `export`, and `seed` of benchmark data.

use anyhow::{anyhow, Context, Result};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use reportroot_model::demo::{demo_rows, DemoTenant};
use reportroot_model::{
    find_report, report_by_function, Date, Entity, Period, ReportType, TenantId, Value, Version,
    REPORTS,
};
use reportroot_odata::csv_format::{write_report_csv_on, write_report_csv_rows_on};
use reportroot_odata::json::{collection_json, entity_json, CollectionMeta, EntityShape};
use reportroot_odata::query::{parse_filter_on, OrderKey, PropertyRef};
use reportroot_storage::csv_import::import_file;
use reportroot_storage::{effective_order, Cursor, ListQuery, Scope, Storage};
use uuid::Uuid;

fn out(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Every file named, directories expanded to their `.csv` files, sorted.
fn csv_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}", path.display()))?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

pub use reportroot_storage::csv_import::{ImportSummary, KnownReport};

/// `reportroot import`: validates every row of each file and upserts the file's rows while it
/// is parsed, all or nothing per file ([`import_file`]); a file with a bad row is refused whole
/// (what was written of it is undone) unless `skip_bad_rows`.
pub async fn import(
    storage: &dyn Storage,
    tenant: TenantId,
    paths: &[PathBuf],
    skip_bad_rows: bool,
    only: Option<KnownReport>,
) -> Result<ImportSummary> {
    let files = csv_files(paths)?;
    let started = Instant::now();
    let mut summary = ImportSummary::default();
    // Bytes of all files, advanced as each is parsed: one large file shows progress too.
    let progress = std::io::stderr().is_terminal().then(|| {
        let total = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        bar
    });
    for file in &files {
        let shown = file.display().to_string();
        let bytes = std::fs::read(file).with_context(|| shown.clone())?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let advance = progress.clone().map(|bar| {
            Arc::new(move |bytes: u64| bar.inc(bytes)) as reportroot_storage::csv_import::Progress
        });
        let done = import_file(storage, tenant, bytes, name, only, skip_bad_rows, advance)
            .await
            .with_context(|| shown.clone())?;
        for line in done.lines(&shown) {
            match &progress {
                Some(bar) => bar.println(&line),
                None => out(&line),
            }
        }
        summary.add(&done);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    out(&summary.line(started.elapsed().as_secs_f64()));
    Ok(summary)
}

/// Finds a report by entity-set or function name.
pub fn report_named(name: &str) -> Result<&'static ReportType> {
    find_report(name)
        .or_else(|| report_by_function(name))
        .with_context(|| {
            format!(
                "unknown report '{name}': use one of {}",
                REPORTS
                    .iter()
                    .map(|r| r.entity)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The reports named (entity-set or function names); every report when none is.
pub fn reports_named(names: &[String]) -> Result<Vec<&'static ReportType>> {
    if names.is_empty() {
        return Ok(REPORTS.iter().collect());
    }
    names.iter().map(|name| report_named(name.trim())).collect()
}

/// The API version named `v1.0` or `beta`, when `report` exists there.
pub fn version_named(report: &ReportType, text: &str) -> Result<Version> {
    let version = Version::ALL
        .into_iter()
        .find(|v| v.segment() == text)
        .with_context(|| format!("--version must be v1.0 or beta, not '{text}'"))?;
    if report.exists_on(version) {
        Ok(version)
    } else {
        Err(anyhow!("{} does not exist on {text}", report.function.name))
    }
}

/// What `export` writes: CSV or JSON, and whose columns.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportShape {
    /// OData JSON rather than Graph's CSV.
    pub json: bool,
    /// That version's columns in its order (a `$filter` may name only those); `None`: every
    /// stored column, in registry order.
    pub version: Option<Version>,
}

/// `reportroot export`: the entity set's rows (or, with a period, the function's latest
/// report) as Graph's CSV or OData JSON.
pub async fn export(
    storage: &dyn Storage,
    tenant: TenantId,
    report: &'static ReportType,
    shape: ExportShape,
    filter: Option<&str>,
    latest: Option<Option<Period>>,
    output: &mut dyn Write,
) -> Result<()> {
    let ExportShape { json, version } = shape;
    let filter = filter
        .map(|text| parse_filter_on(report, version, text))
        .transpose()?;
    let query = ListQuery {
        scope: latest.map_or(Scope::All, |period| Scope::Latest { period }),
        filter,
        ..ListQuery::default()
    };
    if !json {
        return export_csv(storage, tenant, report, version, query, output).await;
    }
    export_json(storage, tenant, report, version, query, output).await
}

/// [`export`]'s JSON, written page by page as it is read: the collection's bytes of no row
/// split around its empty `value` array, with the rows rendered one at a time between — the
/// same bytes as the whole collection rendered at once, without holding every row (1.12M rows
/// of a 10-year tenant held ~1 GB).
async fn export_json(
    storage: &dyn Storage,
    tenant: TenantId,
    report: &'static ReportType,
    version: Option<Version>,
    query: ListQuery,
    output: &mut dyn Write,
) -> Result<()> {
    let shape = EntityShape {
        version,
        ..EntityShape::default()
    };
    let context = format!("$metadata#Collection({})", report.qualified_name());
    let meta = CollectionMeta {
        context: &context,
        ..CollectionMeta::default()
    };
    let empty = collection_json(report, &[], meta, shape);
    // `{"@odata.context":"…","value":[]}`: the rows go between the brackets.
    let (head, tail) = empty.split_at(empty.len() - 2);
    output.write_all(head)?;
    let mut pages = ExportPages::new(report, query);
    let mut bytes = Vec::new();
    let mut first = true;
    while let Some(page) = pages.next(storage, tenant).await? {
        bytes.clear();
        for row in &page {
            if !std::mem::take(&mut first) {
                bytes.push(b',');
            }
            bytes.extend_from_slice(&entity_json(report, row, shape));
        }
        output.write_all(&bytes)?;
    }
    Ok(output.write_all(tail)?)
}

/// Rows of an export per statement. Why pages: one statement for a whole 10-year tenant
/// (1.12M rows) ran past the read time limit and held every row at once; a keyset page of
/// 10,000 rows is a range of the index its order reads.
const EXPORT_PAGE_ROWS: u64 = 10_000;

/// [`export`]'s CSV, written page by page as it is read.
async fn export_csv(
    storage: &dyn Storage,
    tenant: TenantId,
    report: &'static ReportType,
    version: Option<Version>,
    query: ListQuery,
    output: &mut dyn Write,
) -> Result<()> {
    let mut pages = ExportPages::new(report, query);
    let mut bytes = Vec::new();
    let mut first = true;
    while let Some(page) = pages.next(storage, tenant).await? {
        bytes.clear();
        match std::mem::take(&mut first) {
            true => write_report_csv_on(report, version, &page, &mut bytes),
            false => write_report_csv_rows_on(report, version, &page, &mut bytes),
        }
        output.write_all(&bytes)?;
    }
    if first {
        // No row at all: the header alone, as Graph answers an empty report.
        bytes.clear();
        write_report_csv_on(report, version, &[], &mut bytes);
        output.write_all(&bytes)?;
    }
    Ok(())
}

/// The rows of a query in keyset pages of [`EXPORT_PAGE_ROWS`], in its effective order.
struct ExportPages {
    report: &'static ReportType,
    query: ListQuery,
    order: Vec<OrderKey>,
    done: bool,
}

impl ExportPages {
    fn new(report: &'static ReportType, mut query: ListQuery) -> Self {
        query.limit = Some(EXPORT_PAGE_ROWS);
        let order = effective_order(report, &query);
        ExportPages {
            report,
            query,
            order,
            done: false,
        }
    }

    /// The next page, or `None` after the last.
    async fn next(
        &mut self,
        storage: &dyn Storage,
        tenant: TenantId,
    ) -> Result<Option<Vec<Entity>>> {
        if self.done {
            return Ok(None);
        }
        let rows = storage.list(tenant, self.report, &self.query).await?;
        self.done = (rows.len() as u64) < EXPORT_PAGE_ROWS;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        let values = self
            .order
            .iter()
            .filter_map(|key| match key.property {
                PropertyRef::Index(i) => Some(last.values[i].clone()),
                PropertyRef::Id => None,
            })
            .collect();
        self.query.after = Some(Cursor {
            values,
            id: last.id,
        });
        Ok(Some(rows))
    }
}

/// The tenant id of seed tenant `index`.
pub fn seed_tenant(seed: u64, index: u64) -> Uuid {
    Uuid::from_u64_pair(0x5eed_0000_0000_0000 ^ seed, index)
}

/// `reportroot seed`: deterministic data for `tenants` tenants over `days` days.
pub async fn seed(
    storage: &dyn Storage,
    tenants: u64,
    days: u32,
    seed: u64,
    periods: &[Period],
    reports: &[&'static ReportType],
) -> Result<()> {
    let last = Date::today_utc().add_days(-2);
    let started = Instant::now();
    let mut total = 0u64;
    let mut progress = SeedProgress::new(tenants, days);
    for index in 0..tenants {
        let tenant = TenantId(seed_tenant(seed, index));
        // 20 to ~5,000 users, skewed towards small tenants as in real MSP fleets.
        let users = 20 + ((index.wrapping_mul(2_654_435_761) ^ seed) % 70).pow(2) as u32;
        for &report in reports {
            let mut rows = demo_rows(
                report,
                DemoTenant {
                    seed: seed ^ index,
                    users,
                },
                last,
                days,
            );
            if let Some(position) = report.period_index() {
                rows.retain(|row| {
                    periods
                        .iter()
                        .any(|p| row[position] == Value::Text(p.stored().to_owned()))
                });
            }
            let counts = storage.upsert_many(tenant, report, rows).await?;
            total += counts.inserted + counts.updated + counts.unchanged;
        }
        progress.tenant_done(index + 1, total);
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    out(&format!(
        "seeded {tenants} tenants × {days} days: {total} rows in {seconds:.1} s ({:.0} rows/s)",
        total as f64 / seconds
    ));
    Ok(())
}

/// How often `seed` says how far it is when standard error is not a terminal.
const SEED_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// `seed`'s progress on standard error: a bar on a terminal, otherwise a line when it starts,
/// every [`SEED_PROGRESS_EVERY`] and at the end (for logs of long runs).
enum SeedProgress {
    Bar(indicatif::ProgressBar),
    Lines {
        tenants: u64,
        started: Instant,
        last: Instant,
    },
}

impl SeedProgress {
    fn new(tenants: u64, days: u32) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(tenants);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} tenants, {msg} ({eta} left)",
            ) {
                bar.set_style(style);
            }
            return SeedProgress::Bar(bar);
        }
        err(&format!("seed: {tenants} tenants × {days} days…"));
        let now = Instant::now();
        SeedProgress::Lines {
            tenants,
            started: now,
            last: now,
        }
    }

    fn tenant_done(&mut self, done: u64, rows: u64) {
        match self {
            SeedProgress::Bar(bar) => {
                bar.set_message(format!("{rows} rows"));
                bar.inc(1);
            }
            SeedProgress::Lines {
                tenants,
                started,
                last,
            } => {
                if last.elapsed() >= SEED_PROGRESS_EVERY || done == *tenants {
                    *last = Instant::now();
                    err(&format!(
                        "seed: {done}/{tenants} tenants, {rows} rows, {:.0} s",
                        started.elapsed().as_secs_f64()
                    ));
                }
            }
        }
    }

    fn finish(self) {
        if let SeedProgress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn err(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Parses `D7,D30` into periods.
pub fn parse_periods(text: &str) -> Result<Vec<Period>> {
    text.split(',')
        .map(|p| {
            Period::from_param(p.trim())
                .with_context(|| format!("'{p}' is not a period: use D7, D30, D90, D180"))
        })
        .collect()
}

/// Writes to a file, or standard output for `-`/none.
pub fn output_for(path: Option<&Path>) -> Result<Box<dyn Write>> {
    match path {
        Some(path) if path != Path::new("-") => std::fs::File::create(path)
            .map(|f| Box::new(std::io::BufWriter::new(f)) as Box<dyn Write>)
            .with_context(|| path.display().to_string()),
        _ => Ok(Box::new(PipeOutput(std::io::stdout()))),
    }
}

/// Standard output that ends quietly when its reader has gone (`export … | head`): what was
/// wanted was read, so a closed pipe is not a failure, as for other Unix tools.
struct PipeOutput(std::io::Stdout);

impl Write for PipeOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}
