//! Graph's CSV: a UTF-8 byte order mark, the registry's column titles, CRLF line ends, values
//! quoted only when needed.

use reportroot_model::{Entity, ReportType};

/// The UTF-8 byte order mark Graph writes before the header.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Writes a whole report as Graph's CSV.
pub fn write_report_csv(report: &ReportType, rows: &[Entity], out: &mut Vec<u8>) {
    out.extend_from_slice(BOM);
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out);
    // Writing into a Vec cannot fail, so the results are ignored.
    let _ = writer.write_record(report.properties.iter().map(|p| p.csv_column));
    let mut fields = Vec::with_capacity(report.properties.len());
    for row in rows {
        fields.clear();
        fields.extend(row.values.iter().map(ToString::to_string));
        let _ = writer.write_record(&fields);
    }
    let _ = writer.flush();
}

#[cfg(test)]
mod tests {
    use reportroot_model::{find_report, Date, Value};
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
}
