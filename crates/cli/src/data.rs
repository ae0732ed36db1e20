//! Data in and out: `import` of Graph's CSV exports, `export`, and `seed` of benchmark data.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use reportroot_model::demo::{demo_rows, DemoTenant};
use reportroot_model::{
    find_report, report_by_function, Date, Period, ReportType, TenantId, Value, Version, REPORTS,
};
use reportroot_odata::csv_format::{write_report_csv_on, CsvProblem, ReportCsvReader};
use reportroot_odata::json::{collection_json, CollectionMeta, EntityShape};
use reportroot_odata::query::parse_filter_on;
use reportroot_storage::{
    ListQuery, LoadAborted, RowChunks, Scope, Storage, StorageError, UpsertCounts,
};
use uuid::Uuid;

/// Most bad rows listed per file.
const MAX_LISTED_PROBLEMS: usize = 50;

fn out(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Every file named, directories expanded to their `.csv` files, sorted.
fn csv_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
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

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportSummary {
    pub files: u64,
    pub rejected_files: u64,
    pub counts: UpsertCounts,
    pub rejected_rows: u64,
}

/// `reportroot import`: validates every row of each file and upserts the file's rows while it
/// is parsed, all or nothing per file ([`Storage::upsert_stream`]); a file with a bad row is
/// refused whole (what was written of it is undone) unless `skip_bad_rows`.
pub async fn import(
    storage: &dyn Storage,
    tenant: TenantId,
    paths: &[PathBuf],
    skip_bad_rows: bool,
    only: Option<KnownReport>,
) -> Result<ImportSummary, String> {
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
    let mut done_bytes = 0;
    for file in &files {
        summary.files += 1;
        let shown = file.display();
        let bytes = std::fs::read(file).map_err(|e| format!("{shown}: {e}"))?;
        done_bytes += bytes.len() as u64;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let report = match open_reader(&bytes, &name, only) {
            Ok(reader) => reader.report(),
            Err(problem) => {
                out(&format!("{shown}:{problem}"));
                summary.rejected_files += 1;
                if let Some(bar) = &progress {
                    bar.set_position(done_bytes);
                }
                continue;
            }
        };
        let (chunks, parser) =
            parse_in_background(bytes, name, only, skip_bad_rows, progress.clone());
        let written = storage.upsert_stream(tenant, report, chunks).await;
        let problems = parser
            .join()
            .map_err(|_| format!("{shown}: the CSV parser failed"))?;
        for problem in &problems.listed {
            out(&format!("{shown}:{problem}"));
        }
        if problems.count > problems.listed.len() as u64 {
            out(&format!(
                "{shown}: … and {} more bad rows",
                problems.count - problems.listed.len() as u64
            ));
        }
        summary.rejected_rows += problems.count;
        let counts = match written {
            Err(StorageError::Aborted(_)) => {
                out(&format!(
                    "{shown}: rejected, nothing written ({} bad rows; --skip-bad-rows writes the good ones)",
                    problems.count
                ));
                summary.rejected_files += 1;
                if let Some(bar) = &progress {
                    bar.set_position(done_bytes);
                }
                continue;
            }
            Err(error) => return Err(format!("{shown}: {error}")),
            Ok(counts) => counts,
        };
        let verdict = if counts.inserted + counts.updated == 0 {
            "nothing changed"
        } else {
            "imported"
        };
        let line = format!(
            "{shown}: {} {verdict}: {} inserted, {} updated, {} unchanged",
            report.entity, counts.inserted, counts.updated, counts.unchanged
        );
        match &progress {
            Some(bar) => {
                bar.println(&line);
                bar.set_position(done_bytes);
            }
            None => out(&line),
        }
        summary.counts.inserted += counts.inserted;
        summary.counts.updated += counts.updated;
        summary.counts.unchanged += counts.unchanged;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let c = summary.counts;
    let rows = c.inserted + c.updated + c.unchanged;
    out(&format!(
        "{} files ({} rejected): {} inserted, {} updated, {} unchanged, {} rows rejected; {:.0} rows/s",
        summary.files,
        summary.rejected_files,
        c.inserted,
        c.updated,
        c.unchanged,
        summary.rejected_rows,
        rows as f64 / seconds
    ));
    Ok(summary)
}

/// Rows per chunk handed from the parser to the writer.
const CHUNK_ROWS: usize = 4096;

/// The bad rows of a file: how many, and the first few.
#[derive(Debug, Default)]
struct Problems {
    count: u64,
    listed: Vec<CsvProblem>,
}

/// What the parser hands the writer.
enum Handoff {
    Rows(Vec<Vec<Value>>),
    Abort(LoadAborted),
    /// The whole file was read. Without it, a closed channel means the parser died, and the
    /// writer must not commit a part of the file.
    End,
}

/// The writer's side of the hand-off, as the [`RowChunks`] storage takes.
struct Received {
    handoff: std::sync::mpsc::Receiver<Handoff>,
    finished: bool,
}

impl Iterator for Received {
    type Item = Result<Vec<Vec<Value>>, LoadAborted>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.handoff.recv() {
            Ok(Handoff::Rows(rows)) => Some(Ok(rows)),
            Ok(Handoff::Abort(why)) => {
                self.finished = true;
                Some(Err(why))
            }
            Ok(Handoff::End) => {
                self.finished = true;
                None
            }
            Err(_) => {
                self.finished = true;
                Some(Err(LoadAborted(
                    "the CSV parser stopped before the end of the file".into(),
                )))
            }
        }
    }
}

/// Parses a CSV file on its own thread, handing good rows to the writer in chunks as they are
/// read. Unless `skip_bad_rows`, the first bad row aborts the load (the writer rolls back) and
/// parsing goes on only to list the problems.
/// The report a file is known to be (`import --report`), with the period its rows are for.
pub type KnownReport = (&'static ReportType, Option<Period>);

/// A reader of one file: of the report named, or of the report its header (and, between
/// reports that share a header, its name) says.
fn open_reader<'a>(
    bytes: &'a [u8],
    file_name: &str,
    only: Option<KnownReport>,
) -> Result<ReportCsvReader<'a>, CsvProblem> {
    match only {
        Some((report, period)) => ReportCsvReader::for_report(bytes, report, period),
        None => ReportCsvReader::named(bytes, file_name),
    }
}

fn parse_in_background(
    bytes: Vec<u8>,
    file_name: String,
    only: Option<KnownReport>,
    skip_bad_rows: bool,
    progress: Option<indicatif::ProgressBar>,
) -> (RowChunks, std::thread::JoinHandle<Problems>) {
    // A few chunks in flight keep both cores busy without holding the file's rows.
    let (sender, handoff) = std::sync::mpsc::sync_channel(4);
    let parser = std::thread::spawn(move || {
        let mut problems = Problems::default();
        let mut rows = match open_reader(&bytes, &file_name, only) {
            Ok(rows) => rows,
            Err(problem) => {
                let _ = sender.send(Handoff::Abort(LoadAborted(problem.to_string())));
                problems.count = 1;
                problems.listed.push(problem);
                return problems;
            }
        };
        // False once the load was aborted, or the writer failed and closed the channel.
        let mut sending = true;
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        let mut reported = 0;
        while let Some(row) = rows.next() {
            match row {
                Ok((_, values)) if sending => {
                    chunk.push(values);
                    if chunk.len() == CHUNK_ROWS {
                        if let Some(bar) = &progress {
                            bar.inc(rows.bytes_read() - reported);
                            reported = rows.bytes_read();
                        }
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_ROWS));
                        sending = sender.send(Handoff::Rows(full)).is_ok();
                    }
                }
                Ok(_) => {}
                Err(problem) => {
                    if sending && !skip_bad_rows {
                        let _ = sender.send(Handoff::Abort(LoadAborted(problem.to_string())));
                        sending = false;
                    }
                    problems.count += 1;
                    if problems.listed.len() < MAX_LISTED_PROBLEMS {
                        problems.listed.push(problem);
                    }
                }
            }
        }
        if sending {
            if !chunk.is_empty() {
                let _ = sender.send(Handoff::Rows(chunk));
            }
            let _ = sender.send(Handoff::End);
        }
        problems
    });
    let received = Received {
        handoff,
        finished: false,
    };
    (Box::new(received), parser)
}

/// Finds a report by entity-set or function name.
pub fn report_named(name: &str) -> Result<&'static ReportType, String> {
    find_report(name)
        .or_else(|| report_by_function(name))
        .ok_or_else(|| {
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
pub fn reports_named(names: &[String]) -> Result<Vec<&'static ReportType>, String> {
    if names.is_empty() {
        return Ok(REPORTS.iter().collect());
    }
    names.iter().map(|name| report_named(name.trim())).collect()
}

/// The API version named `v1.0` or `beta`, when `report` exists there.
pub fn version_named(report: &ReportType, text: &str) -> Result<Version, String> {
    let version = Version::ALL
        .into_iter()
        .find(|v| v.segment() == text)
        .ok_or_else(|| format!("--version must be v1.0 or beta, not '{text}'"))?;
    if report.exists_on(version) {
        Ok(version)
    } else {
        Err(format!("{} does not exist on {text}", report.function.name))
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
) -> Result<(), String> {
    let ExportShape { json, version } = shape;
    let filter = filter
        .map(|text| parse_filter_on(report, version, text).map_err(|e| e.to_string()))
        .transpose()?;
    let query = ListQuery {
        scope: latest.map_or(Scope::All, |period| Scope::Latest { period }),
        filter,
        ..ListQuery::default()
    };
    let rows = storage
        .list(tenant, report, &query)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = if json {
        let context = format!("$metadata#Collection({})", report.qualified_name());
        collection_json(
            report,
            &rows,
            CollectionMeta {
                context: &context,
                ..CollectionMeta::default()
            },
            EntityShape {
                version,
                ..EntityShape::default()
            },
        )
    } else {
        let mut csv = Vec::new();
        write_report_csv_on(report, version, &rows, &mut csv);
        csv
    };
    output.write_all(&bytes).map_err(|e| e.to_string())
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
) -> Result<(), String> {
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
            let counts = storage
                .upsert_many(tenant, report, rows)
                .await
                .map_err(|e| e.to_string())?;
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
pub fn parse_periods(text: &str) -> Result<Vec<Period>, String> {
    text.split(',')
        .map(|p| {
            Period::from_param(p.trim())
                .ok_or_else(|| format!("'{p}' is not a period: use D7, D30, D90, D180"))
        })
        .collect()
}

/// Writes to a file, or standard output for `-`/none.
pub fn output_for(path: Option<&Path>) -> Result<Box<dyn Write>, String> {
    match path {
        Some(path) if path != Path::new("-") => std::fs::File::create(path)
            .map(|f| Box::new(std::io::BufWriter::new(f)) as Box<dyn Write>)
            .map_err(|e| format!("{}: {e}", path.display())),
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
