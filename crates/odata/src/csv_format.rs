//! Graph's CSV: a UTF-8 byte order mark, the registry's column titles, CRLF line ends, values
//! quoted only when needed.

use reportroot_model::{Entity, Period, ReportType, Value, ValueKind, Version, REPORTS};

/// The UTF-8 byte order mark Graph writes before the header.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Writes a whole report as Graph's CSV, with the union of its versions' columns (what
/// `export` writes: every stored value, re-importable).
pub fn write_report_csv(report: &ReportType, rows: &[Entity], out: &mut Vec<u8>) {
    write_report_csv_on(report, None, rows, out);
}

/// Writes a whole report as Graph's CSV of `version`: that version's columns in that
/// version's order (e.g. getOffice365GroupsActivityCounts: 7 on v1.0, 9 on beta), or the
/// union of the versions' columns for `None`.
pub fn write_report_csv_on(
    report: &ReportType,
    version: Option<Version>,
    rows: &[Entity],
    out: &mut Vec<u8>,
) {
    let columns = csv_columns(report, version);
    out.extend_from_slice(BOM);
    write_csv_lines(report, &columns, true, rows, out);
}

/// Writes more rows of a report whose header [`write_report_csv_on`] wrote (with the same
/// `version`): what a long export writes page by page.
pub fn write_report_csv_rows_on(
    report: &ReportType,
    version: Option<Version>,
    rows: &[Entity],
    out: &mut Vec<u8>,
) {
    write_csv_lines(report, &csv_columns(report, version), false, rows, out);
}

/// The columns of `version`'s CSV (the union of the versions' for `None`), in its order.
fn csv_columns(report: &ReportType, version: Option<Version>) -> Vec<usize> {
    match version.and_then(|v| report.columns_on(v)) {
        Some(columns) => columns.csv.to_vec(),
        None => report
            .properties
            .iter()
            .enumerate()
            .filter(|(_, p)| p.in_csv)
            .map(|(i, _)| i)
            .collect(),
    }
}

/// The header line (when asked) and one line per row, CRLF-terminated.
fn write_csv_lines(
    report: &ReportType,
    columns: &[usize],
    header: bool,
    rows: &[Entity],
    out: &mut Vec<u8>,
) {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out);
    // Writing into a Vec cannot fail, so the results are ignored.
    if header {
        let _ = writer.write_record(columns.iter().map(|&i| report.properties[i].csv_column));
    }
    let mut fields = Vec::with_capacity(columns.len());
    for row in rows {
        fields.clear();
        fields.extend(columns.iter().map(|&i| row.values[i].to_string()));
        let _ = writer.write_record(&fields);
    }
    let _ = writer.flush();
}

/// A problem with one CSV file, at a line and column when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvProblem {
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for CsvProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: {}", self.message),
            (Some(line), None) => write!(f, "{line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A parsed Graph CSV export: its report type, its good rows (values in registry order, with
/// the line each came from) and the problems of its bad rows.
#[derive(Debug, Clone)]
pub struct ParsedCsv {
    /// The report type detected from the header line.
    pub report: &'static ReportType,
    /// Good rows: `(line, values in registry order)`.
    pub rows: Vec<(u64, Vec<Value>)>,
    /// One problem per bad row.
    pub problems: Vec<CsvProblem>,
}

/// Finds the report type whose CSV columns the header names, and where each property is.
/// Columns match case-insensitively in any order; a count column missing from one of the
/// older column sets the registry lists for the report (`older_csv_columns`, e.g. Teams'
/// headers before Chrome OS and Linux) reads as 0 (a duration column as empty). Every other
/// property must be present: a header lacking a count column that no older set explains is
/// refused.
///
/// Several reports share a header (e.g. `oneDriveActivityFileCounts` and
/// `oneDriveActivityUserCounts`): a header that names every column of exactly one report is
/// that report's; among several that fit equally, the file's name decides when it starts with
/// one report's name (Graph's downloads are named after the report, e.g.
/// `TeamsDeviceUsageDistributionUserCounts_D7.csv`); otherwise the file is refused as
/// ambiguous (reading it as the first would file one report's rows under another), and
/// callers that know the report use [`ReportCsvReader::for_report`].
fn detect(
    header: &[&str],
    file_name: Option<&str>,
) -> Result<(&'static ReportType, Vec<Option<usize>>), CsvProblem> {
    let fits: Vec<_> = REPORTS
        .iter()
        .filter_map(|report| detect_among(header, [report], false))
        .collect();
    let complete: Vec<_> = fits
        .iter()
        .filter(|(_, positions)| positions.iter().all(Option::is_some))
        .collect();
    match (fits.as_slice(), complete.as_slice()) {
        ([], _) => Err(no_known_report(None)),
        ([only], _) => Ok(only.clone()),
        (_, [only]) => Ok((*only).clone()),
        (several, _) => match named_in(several, file_name) {
            Some(found) => Ok(found.clone()),
            None => Err(ambiguous(several)),
        },
    }
}

/// The candidate whose report name the file name starts with (the longest such name).
fn named_in<'c>(
    candidates: &'c [(&'static ReportType, Vec<Option<usize>>)],
    file_name: Option<&str>,
) -> Option<&'c (&'static ReportType, Vec<Option<usize>>)> {
    let name = file_name?.to_ascii_lowercase();
    candidates
        .iter()
        .filter(|(report, _)| name.starts_with(&report.entity.to_ascii_lowercase()))
        .max_by_key(|(report, _)| report.entity.len())
}

fn ambiguous(several: &[(&'static ReportType, Vec<Option<usize>>)]) -> CsvProblem {
    CsvProblem {
            line: Some(1),
            column: None,
        message: format!(
            "the header is that of several reports ({}): name the one it is with --report, or name the file after it",
            several
                .iter()
                .map(|(r, _)| r.entity)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The problem of a header that names no known report (or not `only`'s).
fn no_known_report(only: Option<&'static ReportType>) -> CsvProblem {
    CsvProblem {
        line: Some(1),
        column: None,
        message: format!(
            "the header names no known report: expected one of: {}",
            REPORTS
                .iter()
                .filter(|r| only.is_none_or(|only| only == *r))
                .map(|r| format!("'{}'", r.csv_header()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Whether one of the older column sets Graph has written for `report` (the registry's
/// `older_csv_columns`) has every title of `header` and lacks `column`: only such a header may
/// leave a count (or duration) column out.
fn older_set_lacks(report: &ReportType, header: &[&str], column: &str) -> bool {
    report.older_csv_columns.iter().any(|set| {
        let has = |title: &str| set.iter().any(|c| c.eq_ignore_ascii_case(title.trim()));
        !has(column) && header.iter().all(|h| has(h))
    }) || version_lacks(report, header, column)
}

/// Whether one version's own CSV columns lack `column` and hold the whole header: v1.0's
/// getOffice365GroupsActivityCounts has 7 of beta's 9, and a v1.0 file is that report's too.
fn version_lacks(report: &ReportType, header: &[&str], column: &str) -> bool {
    report.columns.iter().any(|columns| {
        let has = |title: &str| {
            columns.csv.iter().any(|&i| {
                report.properties[i]
                    .csv_column
                    .eq_ignore_ascii_case(title.trim())
            })
        };
        !has(column) && header.iter().all(|h| has(h))
    })
}

/// Whether every version's CSV has the property at `index` (otherwise a file of a version
/// without it has no figure for it: null, not 0).
fn in_every_version(report: &ReportType, index: usize) -> bool {
    report.columns.iter().all(|c| c.csv.contains(&index))
}

/// `period_known`: the caller knows the period of the file's rows, so a period property that
/// Graph's CSV lacks (`teamsTeamCounts`) need not be in the header.
fn detect_among(
    header: &[&str],
    candidates: impl IntoIterator<Item = &'static ReportType>,
    period_known: bool,
) -> Option<(&'static ReportType, Vec<Option<usize>>)> {
    candidates.into_iter().find_map(|report| {
        let positions: Vec<Option<usize>> = report
            .properties
            .iter()
            .map(|p| {
                header
                    .iter()
                    .position(|h| h.trim().eq_ignore_ascii_case(p.csv_column))
            })
            .collect();
        let all_known = header.iter().all(|h| {
            report
                .properties
                .iter()
                .any(|p| h.trim().eq_ignore_ascii_case(p.csv_column))
        });
        let required_present = report.properties.iter().zip(&positions).all(|(p, pos)| {
            pos.is_some()
                || (p.kind.is_nullable() && older_set_lacks(report, header, p.csv_column))
                || (period_known && !p.in_csv && p.kind == ValueKind::Period)
        });
        let present = positions.iter().filter(|p| p.is_some()).count();
        (all_known && required_present && present * 2 > report.properties.len())
            .then_some((report, positions))
    })
}

/// Reads a Graph CSV export as Graph writes it: with or without a BOM, CRLF or LF, quoted
/// fields. Fails as a whole (no report) only when the file is not UTF-8 or its header names no
/// known report; bad rows are listed in [`ParsedCsv::problems`].
pub fn read_report_csv(bytes: &[u8]) -> Result<ParsedCsv, CsvProblem> {
    parse_all(ReportCsvReader::new(bytes)?)
}

/// [`read_report_csv`] for a file known to be a CSV of `report`, for `period` (see
/// [`ReportCsvReader::for_report`]).
pub fn read_csv_of(
    bytes: &[u8],
    report: &'static ReportType,
    period: Option<Period>,
) -> Result<ParsedCsv, CsvProblem> {
    parse_all(ReportCsvReader::for_report(bytes, report, period)?)
}

fn parse_all(reader: ReportCsvReader<'_>) -> Result<ParsedCsv, CsvProblem> {
    let mut parsed = ParsedCsv {
        report: reader.report(),
        rows: Vec::new(),
        problems: Vec::new(),
    };
    for row in reader {
        match row {
            Ok(row) => parsed.rows.push(row),
            Err(problem) => parsed.problems.push(problem),
        }
    }
    Ok(parsed)
}

/// A Graph CSV export read row by row (see [`read_report_csv`]): each item is a good row,
/// `(line, values in registry order)`, or the problem of a bad one.
pub struct ReportCsvReader<'a> {
    report: &'static ReportType,
    fields: usize,
    positions: Vec<Option<usize>>,
    /// The period of every row, when the caller knows it.
    period: Option<Period>,
    reader: csv::Reader<&'a [u8]>,
    record: csv::StringRecord,
    lines: LineCounter<'a>,
}

impl std::fmt::Debug for ReportCsvReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportCsvReader")
            .field("report", &self.report.entity)
            .finish_non_exhaustive()
    }
}

impl<'a> ReportCsvReader<'a> {
    /// Checks that `bytes` are UTF-8 and reads the header line, which names the report.
    pub fn new(bytes: &'a [u8]) -> Result<Self, CsvProblem> {
        Self::among(bytes, None, None)
    }

    /// [`ReportCsvReader::new`] for a file of that name, which decides between reports that
    /// share a header (see [`read_report_csv`]).
    pub fn named(bytes: &'a [u8], file_name: &str) -> Result<Self, CsvProblem> {
        Self::among(bytes, None, Some(file_name))
    }

    /// Like [`ReportCsvReader::new`], for a file known to be a CSV of `report` (for `period`,
    /// when the report takes one): the header must be one of `report`'s. A period property
    /// Graph's CSV lacks is filled with `period`.
    pub fn for_report(
        bytes: &'a [u8],
        report: &'static ReportType,
        period: Option<Period>,
    ) -> Result<Self, CsvProblem> {
        Self::among(bytes, Some((report, period)), None)
    }

    fn among(
        bytes: &'a [u8],
        only: Option<(&'static ReportType, Option<Period>)>,
        file_name: Option<&str>,
    ) -> Result<Self, CsvProblem> {
        let text = std::str::from_utf8(bytes).map_err(|e| CsvProblem {
            line: Some(
                1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count() as u64,
            ),
            column: None,
            message: "the file is not UTF-8".into(),
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut header = csv::StringRecord::new();
        match reader.read_record(&mut header) {
            Ok(true) => {}
            Ok(false) => {
                return Err(CsvProblem {
                    line: None,
                    column: None,
                    message: "the file is empty".into(),
                })
            }
            Err(e) => {
                return Err(CsvProblem {
                    line: Some(1),
                    column: None,
                    message: format!("unreadable header: {e}"),
                })
            }
        }
        let names: Vec<&str> = header.iter().collect();
        let (report, positions) = match only {
            Some((report, period)) => detect_among(&names, [report], period.is_some())
                .ok_or_else(|| no_known_report(Some(report)))?,
            None => detect(&names, file_name)?,
        };
        Ok(ReportCsvReader {
            report,
            period: only.and_then(|(_, period)| period),
            fields: names.len(),
            positions,
            reader,
            record: csv::StringRecord::new(),
            lines: LineCounter::new(text.as_bytes()),
        })
    }

    /// The report type the header names.
    pub fn report(&self) -> &'static ReportType {
        self.report
    }

    /// Bytes of the file read so far (after the byte order mark), for progress.
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    fn values(&self, line: u64) -> Result<Vec<Value>, CsvProblem> {
        let record = &self.record;
        if record.len() != self.fields {
            return Err(CsvProblem {
                line: Some(line),
                column: None,
                message: format!(
                    "expected {} fields as in the header, found {}",
                    self.fields,
                    record.len()
                ),
            });
        }
        let mut values = Vec::with_capacity(self.report.properties.len());
        for (index, (property, position)) in self
            .report
            .properties
            .iter()
            .zip(&self.positions)
            .enumerate()
        {
            let Some(position) = *position else {
                values.push(match (property.kind, self.period) {
                    (ValueKind::Period, Some(period)) => Value::Text(period.stored().to_owned()),
                    (ValueKind::Duration, _) => Value::Null,
                    _ if !in_every_version(self.report, index) => Value::Null,
                    _ => Value::Int(0),
                });
                continue;
            };
            let field = record.get(position).unwrap_or_default();
            // Graph leaves a count or duration cell empty where it has no figure: kept empty.
            if field.is_empty() && property.kind.is_nullable() {
                values.push(Value::Null);
                continue;
            }
            let value = property
                .kind
                .parse_text(field)
                .map_err(|error| CsvProblem {
                    line: Some(line),
                    column: Some(position + 1),
                    message: format!("{} '{field}' {error}", property.csv_column),
                })?;
            values.push(value);
        }
        Ok(values)
    }
}

/// The file's own line numbers (the header is line 1) of record positions.
///
/// Why not the csv crate's `Position::line`: it is one short after a CRLF header (every
/// Graph export) and after blank lines. Its byte offsets are exact up to the line breaks
/// before a record (a record's offset may point at the `\n` of the previous `\r\n`, or at
/// skipped blank lines), so the line is counted here from the bytes: `\r\n`, `\n` and a lone
/// `\r` each end a line, including those inside quoted fields.
#[derive(Debug)]
struct LineCounter<'a> {
    text: &'a [u8],
    /// Bytes counted so far, and the line at that offset.
    counted: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        LineCounter {
            text,
            counted: 0,
            line: 1,
        }
    }

    /// The line of the record whose position is `offset`; offsets must not decrease.
    fn line_at(&mut self, offset: u64) -> u64 {
        let mut start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        // A record never starts with a line break: skip those the offset points at.
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start < self.counted {
            return self.line;
        }
        let span = &self.text[self.counted..start];
        let breaks = span
            .iter()
            .enumerate()
            .filter(|(i, b)| match b {
                b'\n' => true,
                b'\r' => span.get(i + 1) != Some(&b'\n'),
                _ => false,
            })
            .count();
        self.line += breaks as u64;
        self.counted = start;
        self.line
    }
}

impl Iterator for ReportCsvReader<'_> {
    type Item = Result<(u64, Vec<Value>), CsvProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Err(e) => {
                    let line = e.position().map(|p| self.lines.line_at(p.byte()));
                    return Some(Err(CsvProblem {
                        line,
                        column: None,
                        message: format!("malformed CSV: {e}"),
                    }));
                }
                Ok(true) => {}
            }
            if self.record.len() == 1 && self.record.get(0).is_some_and(str::is_empty) {
                continue; // a blank line
            }
            let line = self
                .record
                .position()
                .map_or(0, |p| self.lines.line_at(p.byte()));
            return Some(self.values(line).map(|values| (line, values)));
        }
    }
}

#[cfg(test)]
mod tests {
    use reportroot_model::{find_report, Date};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn bom_header_crlf_and_quoting() {
        let report = find_report("office365ActivationsUserCounts").expect("report");
        let date = Value::Date(Date::parse("2025-01-31").expect("date"));
        let rows = vec![Entity {
            id: Uuid::nil(),
            version: 1,
            values: vec![
                date,
                Value::Text("VISIO, \"CLIENT\"".into()),
                Value::Int(3),
                Value::Int(2),
                Value::Int(0),
            ],
        }];
        let mut out = Vec::new();
        write_report_csv(report, &rows, &mut out);
        assert_eq!(
            out,
            b"\xEF\xBB\xBFReport Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\r\n2025-01-31,\"VISIO, \"\"CLIENT\"\"\",3,2,0\r\n"
        );
    }

    fn read(text: &[u8]) -> ParsedCsv {
        read_report_csv(text).expect("parsed")
    }

    #[test]
    fn reads_graph_exports_in_every_shape() {
        let crlf = b"\xEF\xBB\xBFReport Refresh Date,Web,Windows Phone,Android Phone,iOS,Mac,Windows,Chrome OS,Linux,Report Period\r\n2025-01-31,3,12,12,3,3,7,1,2,7\r\n";
        // The Teams distribution reports of all users and of active ones share this header:
        // a file named after neither is refused, a file named after one is that one's.
        let ambiguous = read_report_csv(crlf).expect_err("ambiguous").to_string();
        assert!(ambiguous.contains("--report"), "{ambiguous}");
        let named = |name: &str| {
            parse_all(ReportCsvReader::named(crlf, name).expect("named")).expect("parsed")
        };
        assert_eq!(
            named("TeamsDeviceUsageDistributionTotalUserCounts_D7.csv")
                .report
                .entity,
            "teamsDeviceUsageDistributionTotalUserCounts"
        );
        let parsed = named("teamsDeviceUsageDistributionUserCounts7.csv");
        assert_eq!(
            parsed.report.entity,
            "teamsDeviceUsageDistributionUserCounts"
        );
        assert_eq!(parsed.rows.len(), 1);
        assert!(parsed.problems.is_empty());
        // The older Teams header, LF line ends, no BOM: Chrome OS and Linux read as 0.
        let old = b"Report Refresh Date,Web,Windows Phone,Android Phone,iOS,Mac,Windows,Report Period\n2025-01-31,3,12,12,3,3,7,30\n";
        let parsed = parse_all(
            ReportCsvReader::named(old, "TeamsDeviceUsageDistributionUserCounts.csv")
                .expect("named"),
        )
        .expect("parsed");
        assert_eq!(parsed.rows[0].1[7], Value::Int(0));
        assert_eq!(parsed.rows[0].1[9], Value::Text("30".into()));
        let quoted = b"Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\n2025-01-31,\"PROJECT, \"\"PRO\"\"\",2,1,0\n";
        assert_eq!(
            read(quoted).rows[0].1[1],
            Value::Text("PROJECT, \"PRO\"".into())
        );
    }

    #[test]
    fn reports_bad_rows_with_line_and_column() {
        let text = b"Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\n2025-02-30,A,1,1,0\n2025-01-31,B,-1,1,0\n2025-01-31,C,x,1,0\n2025-01-31,D,1,1\n2025-01-31,E,1,1,0,9\n2025-01-31,F,1,1,0\n2025-01-31,G,1";
        let parsed = read(text);
        assert_eq!(parsed.rows.len(), 1);
        let shown: Vec<String> = parsed.problems.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 6, "{shown:?}");
        assert!(
            shown[0].starts_with("2:1: Report Refresh Date '2025-02-30'"),
            "{shown:?}"
        );
        assert!(shown[1].starts_with("3:3: Assigned '-1'"), "{shown:?}");
        assert!(shown[3].starts_with("5: expected 5 fields"), "{shown:?}");
        assert!(read_report_csv(b"Name,Value\nx,1\n").is_err());
        assert!(read_report_csv(b"Report Refresh Date,Product Type\xff").is_err());
    }

    /// The file's own line of a bad row (header = line 1), whatever the line ends, with blank
    /// lines and a quoted field over two lines before it.
    #[test]
    fn reports_the_files_own_line_numbers() {
        let header =
            "Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation";
        let good = "2025-01-31,A,1,1,0";
        let bad = "2025-01-31,B,x,1,0";
        for (what, bom, end) in [
            ("LF", "", "\n"),
            ("CRLF with BOM", "\u{feff}", "\r\n"),
            ("CRLF", "", "\r\n"),
            ("CR", "", "\r"),
        ] {
            // Lines: 1 header, 2–18 good, 19 bad.
            let mut lines = vec![header.to_owned()];
            lines.extend((2..=18).map(|_| good.to_owned()));
            lines.push(bad.to_owned());
            let text = format!("{bom}{}{end}", lines.join(end));
            let parsed = read(text.as_bytes());
            assert_eq!(parsed.rows.len(), 17, "{what}");
            assert_eq!(parsed.rows[0].0, 2, "{what}");
            let shown = parsed.problems[0].to_string();
            assert!(shown.starts_with("19:3: Assigned 'x'"), "{what}: {shown}");
            // Blank lines (4, 5) and a two-line field (6–7, refused: no line breaks in
            // text) before the bad row (8).
            let multi_line = format!("2025-01-31,\"TWO{end}LINES\",1,1,0");
            let lines = [header, good, good, "", "", &multi_line, bad];
            let text = format!("{bom}{}{end}", lines.join(end));
            let parsed = read(text.as_bytes());
            assert_eq!(
                parsed.rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                [2, 3],
                "{what}"
            );
            let shown: Vec<String> = parsed.problems.iter().map(ToString::to_string).collect();
            assert!(shown[0].starts_with("6:2: "), "{what}: {shown:?}");
            assert!(shown[1].starts_with("8:3: "), "{what}: {shown:?}");
        }
    }

    /// A v1.0 file has v1.0's columns: getOffice365GroupsActivityCounts lacks beta's two Teams
    /// columns there, which read as null (no figure), not 0.
    #[test]
    fn a_version_with_fewer_columns_reads_as_its_report() {
        let csv = b"Report Refresh Date,Exchange Emails Received,Yammer Messages Posted,Yammer Messages Read,Yammer Messages Liked,Report Date,Report Period\r\n2025-03-10,5,4,3,2,2025-03-09,7\r\n";
        let parsed = read(csv);
        assert_eq!(parsed.report.entity, "office365GroupsActivityCounts");
        let teams = parsed
            .report
            .property_index("teamsChannelMessages")
            .expect("property");
        assert_eq!(parsed.rows[0].1[teams], Value::Null);
        assert_eq!(parsed.rows[0].1[1], Value::Int(5));
    }

    #[test]
    fn a_file_read_as_the_report_asked_for() {
        // OneDrive's file and user activity reports share a header: it is refused as
        // ambiguous, and read as the report the caller names.
        let csv = b"Report Refresh Date,Viewed Or Edited,Synced,Shared Internally,Shared Externally,Report Date,Report Period\r\n2025-03-10,5,4,3,2,2025-03-09,7\r\n";
        let users = find_report("oneDriveActivityUserCounts").expect("report");
        let ambiguous = read_report_csv(csv).expect_err("ambiguous").to_string();
        assert!(
            ambiguous.contains("oneDriveActivityFileCounts, oneDriveActivityUserCounts"),
            "{ambiguous}"
        );
        let parsed = read_csv_of(csv, users, Some(Period::D7)).expect("csv");
        assert_eq!(parsed.report, users);
        assert_eq!(parsed.rows.len(), 1);
        // getTeamsTeamCounts' CSV has no Report Period: the period asked for fills it.
        let teams = find_report("teamsTeamCounts").expect("report");
        let csv = b"Report Refresh Date,Report Date,Public Teams,Active Public Teams,Private Teams,Active Private Teams\r\n2025-03-10,2025-03-09,10,4,20,8\r\n";
        let parsed = read_csv_of(csv, teams, Some(Period::D30)).expect("csv");
        let period = teams.period_index().expect("period");
        assert_eq!(parsed.rows[0].1[period], Value::Text("30".into()));
        assert!(read_csv_of(csv, teams, None).is_err());
        // Written back without it, as Graph writes it.
        let entity = Entity {
            id: Uuid::nil(),
            version: 1,
            values: parsed.rows[0].1.clone(),
        };
        let mut out = Vec::new();
        write_report_csv(teams, &[entity], &mut out);
        assert_eq!(out[BOM.len()..], csv[..]);
    }

    #[test]
    fn empty_count_cells_read_as_null_and_write_back_empty() {
        // A row of Graph's getEmailActivityCounts export, empty where Graph has no figure.
        let csv = b"\xEF\xBB\xBFReport Refresh Date,Send,Receive,Read,Meeting Created,Meeting Interacted,Report Date,Report Period\r\n2023-01-24,,2,,0,,2023-01-18,7\r\n";
        let email = find_report("emailActivityCounts").expect("report");
        let read_email = |bytes: &[u8]| read_csv_of(bytes, email, None).expect("parsed");
        let parsed = read_email(csv);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let values = &parsed.rows[0].1;
        assert_eq!(values[1], Value::Null);
        assert_eq!(values[2], Value::Int(2));
        assert_eq!(values[4], Value::Int(0));
        let entity = Entity {
            id: Uuid::nil(),
            version: 1,
            values: values.clone(),
        };
        let mut out = Vec::new();
        write_report_csv(parsed.report, &[entity], &mut out);
        assert_eq!(out, csv);
        // Dates, periods and dimension text stay required.
        for bad in [
            &b"Report Refresh Date,Send,Receive,Read,Meeting Created,Meeting Interacted,Report Date,Report Period\n,1,2,3,0,0,2023-01-18,7\n"[..],
            b"Report Refresh Date,Send,Receive,Read,Meeting Created,Meeting Interacted,Report Date,Report Period\n2023-01-24,1,2,3,0,0,2023-01-18,\n",
        ] {
            let parsed = read_email(bad);
            assert!(parsed.rows.is_empty() && parsed.problems.len() == 1);
        }
        let parsed = read(b"Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation\n2025-01-31,,1,1,0\n");
        assert!(parsed.rows.is_empty() && parsed.problems.len() == 1);
    }

    #[test]
    fn only_the_registrys_older_sets_may_leave_a_count_column_out() {
        // getEmailActivityCounts before Meeting Created/Interacted: an older set of the
        // registry, read with 0 for them.
        let old = b"Report Refresh Date,Send,Receive,Read,Report Date,Report Period\n2021-01-24,1,2,3,2021-01-18,7\n";
        let email = find_report("emailActivityCounts").expect("report");
        let parsed = read_csv_of(old, email, Some(Period::D7)).expect("parsed");
        assert_eq!(parsed.rows[0].1[4], Value::Int(0));
        // Lacking a count column no older set lacks: refused (it used to read as 0).
        let no_read = b"Report Refresh Date,Send,Receive,Meeting Created,Meeting Interacted,Report Date,Report Period\n2023-01-24,1,2,0,0,2023-01-18,7\n";
        assert!(read_report_csv(no_read).is_err());
        let activations =
            b"Report Refresh Date,Product Type,Assigned,Activated\n2025-01-31,A,1,1\n";
        assert!(read_report_csv(activations).is_err());
        assert!(read_csv_of(no_read, email, Some(Period::D7)).is_err());
    }
}
