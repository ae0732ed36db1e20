//! Importing Graph's CSV exports, one file at a time: shared by `reportroot import` and the
//! dashboard's upload, so both validate, write and report a file the same way.
//!
//! A file is parsed on a thread of its own while [`Storage::upsert_stream`] writes its rows, all
//! or nothing: a bad row aborts the load (what was written of the file is undone) unless
//! `skip_bad_rows`, and parsing goes on only to list the problems.

use std::sync::Arc;

use reportroot_model::{Period, ReportType, TenantId, Value};
use reportroot_odata::csv_format::{CsvProblem, ReportCsvReader};

use crate::{LoadAborted, RowChunks, Storage, StorageError, UpsertCounts};

/// Most bad rows listed per file.
pub const MAX_LISTED_PROBLEMS: usize = 50;

/// Rows per chunk handed from the parser to the writer.
const CHUNK_ROWS: usize = 4096;

/// The report a file is known to be (`import --report`), with the period its rows are for.
pub type KnownReport = (&'static ReportType, Option<Period>);

/// Told how many more bytes of the file were parsed, as parsing goes on (a progress bar).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Its header named no report (or not the one it was said to be): nothing written.
    Unreadable,
    /// It had bad rows and `skip_bad_rows` was off: nothing written.
    Rejected,
    /// Its (good) rows were written.
    Imported(UpsertCounts),
}

/// The import of one file: its report, its bad rows (the first [`MAX_LISTED_PROBLEMS`]) and
/// what was written.
#[derive(Debug, Clone)]
pub struct FileImport {
    /// The report the file holds, when its header said.
    pub report: Option<&'static ReportType>,
    /// How many rows were bad (1 for an unreadable file).
    pub problem_count: u64,
    /// The first problems, with line and column.
    pub problems: Vec<CsvProblem>,
    /// What was written.
    pub outcome: FileOutcome,
}

impl FileImport {
    /// The lines `reportroot import` prints for the file, each starting with `shown` (its
    /// name): `shown:line:column: message` per listed bad row, then the verdict.
    pub fn lines(&self, shown: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .problems
            .iter()
            .map(|problem| format!("{shown}:{problem}"))
            .collect();
        let listed = self.problems.len() as u64;
        if self.problem_count > listed {
            lines.push(format!(
                "{shown}: … and {} more bad rows",
                self.problem_count - listed
            ));
        }
        match (&self.outcome, self.report) {
            (FileOutcome::Unreadable, _) | (_, None) => {}
            (FileOutcome::Rejected, Some(_)) => lines.push(format!(
                "{shown}: rejected, nothing written ({} bad rows; --skip-bad-rows writes the good ones)",
                self.problem_count
            )),
            (FileOutcome::Imported(counts), Some(report)) => {
                let verdict = if counts.inserted + counts.updated == 0 {
                    "nothing changed"
                } else {
                    "imported"
                };
                lines.push(format!(
                    "{shown}: {} {verdict}: {} inserted, {} updated, {} unchanged",
                    report.entity, counts.inserted, counts.updated, counts.unchanged
                ));
            }
        }
        lines
    }
}

/// What an import of several files did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ImportSummary {
    /// Files read.
    pub files: u64,
    /// Files of which nothing was written.
    pub rejected_files: u64,
    /// Rows written, by what happened to them.
    pub counts: UpsertCounts,
    /// Bad rows, over all files.
    pub rejected_rows: u64,
}

impl ImportSummary {
    /// Counts one file in.
    pub fn add(&mut self, file: &FileImport) {
        self.files += 1;
        self.rejected_rows += file.problem_count;
        match &file.outcome {
            FileOutcome::Imported(counts) => {
                self.counts.inserted += counts.inserted;
                self.counts.updated += counts.updated;
                self.counts.unchanged += counts.unchanged;
            }
            FileOutcome::Unreadable | FileOutcome::Rejected => self.rejected_files += 1,
        }
    }

    /// The closing line `reportroot import` prints, with the rate over `seconds`.
    pub fn line(&self, seconds: f64) -> String {
        let c = self.counts;
        let rows = c.inserted + c.updated + c.unchanged;
        format!(
            "{} files ({} rejected): {} inserted, {} updated, {} unchanged, {} rows rejected; {:.0} rows/s",
            self.files,
            self.rejected_files,
            c.inserted,
            c.updated,
            c.unchanged,
            self.rejected_rows,
            rows as f64 / seconds.max(1e-9)
        )
    }
}

/// Imports one file of `bytes`, named `name` (the name tells apart reports that share a
/// header), into `tenant`. Only a database failure is an `Err`; bad files and rows are in the
/// answer.
pub async fn import_file(
    storage: &dyn Storage,
    tenant: TenantId,
    bytes: Vec<u8>,
    name: String,
    only: Option<KnownReport>,
    skip_bad_rows: bool,
    progress: Option<Progress>,
) -> Result<FileImport, StorageError> {
    let report = match open_reader(&bytes, &name, only) {
        Ok(reader) => reader.report(),
        Err(problem) => {
            if let Some(progress) = &progress {
                progress(bytes.len() as u64);
            }
            return Ok(FileImport {
                report: None,
                problem_count: 1,
                problems: vec![problem],
                outcome: FileOutcome::Unreadable,
            });
        }
    };
    let total = bytes.len() as u64;
    let (chunks, parser) = parse_in_background(bytes, name, only, skip_bad_rows, progress.clone());
    let written = storage.upsert_stream(tenant, report, chunks).await;
    let problems = parser.join().map_err(|_| {
        StorageError::Backend(crate::BackendError::message("the CSV parser failed"))
    })?;
    if let Some(progress) = &progress {
        progress(total - problems.reported);
    }
    let outcome = match written {
        Err(StorageError::Aborted(_)) => FileOutcome::Rejected,
        Err(error) => return Err(error),
        Ok(counts) => FileOutcome::Imported(counts),
    };
    Ok(FileImport {
        report: Some(report),
        problem_count: problems.count,
        problems: problems.listed,
        outcome,
    })
}

/// The bad rows of a file: how many, and the first few; and how many bytes were reported as
/// parsed.
#[derive(Debug, Default)]
struct Problems {
    count: u64,
    listed: Vec<CsvProblem>,
    reported: u64,
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

/// Parses a CSV file on its own thread, handing good rows to the writer in chunks as they are
/// read. Unless `skip_bad_rows`, the first bad row aborts the load (the writer rolls back) and
/// parsing goes on only to list the problems.
fn parse_in_background(
    bytes: Vec<u8>,
    file_name: String,
    only: Option<KnownReport>,
    skip_bad_rows: bool,
    progress: Option<Progress>,
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
        while let Some(row) = rows.next() {
            match row {
                Ok((_, values)) if sending => {
                    chunk.push(values);
                    if chunk.len() == CHUNK_ROWS {
                        if let Some(progress) = &progress {
                            progress(rows.bytes_read() - problems.reported);
                            problems.reported = rows.bytes_read();
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
