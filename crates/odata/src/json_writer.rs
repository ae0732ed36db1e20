//! Compact JSON written straight into a buffer: the answers' entities and envelopes
//! ([`crate::json`]), byte for byte what `serde_json::to_writer` wrote before.
//!
//! Why not serde: a page's JSON went through `SerializeMap::serialize_entry`, which escapes
//! every key byte by byte (the registry's names never need it) and formats dates and eTags
//! through `fmt`. Under callgrind, on a `$filter` page of 10 rows (1 tenant × 10 years,
//! SQLite), the JSON's escaping alone was 7.6 % of the request's instructions; written here,
//! keys that need no escaping are copied, numbers go through `itoa`, and only text values are
//! escaped, by serde_json itself: 261k → 234k instructions a request, with the registry's
//! names copied unchecked ([`JsonWriter::name`]) (bench/RESULTS.md, "A page read from one
//! index").

use uuid::Uuid;

/// A JSON text being written; the caller writes values in a valid order.
pub(crate) struct JsonWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> JsonWriter<'a> {
    /// Writes into `out`, after what it holds.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        JsonWriter { out }
    }

    /// Raw bytes: punctuation (`{`, `,`, `]`…).
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// `"key":`, copied when the key needs no escaping (every registry name), else escaped.
    pub(crate) fn key(&mut self, key: &str) {
        if needs_no_escaping(key) {
            self.out.push(b'"');
            self.out.extend_from_slice(key.as_bytes());
            self.out.extend_from_slice(b"\":");
        } else {
            self.string(key);
            self.out.push(b':');
        }
    }

    /// `"name":` for a registry property name, copied: the registry's names are ASCII
    /// identifiers (`reportRefreshDate`), which a test checks of every report; checking each
    /// key's bytes again here was 3 % of a page's instructions.
    pub(crate) fn name(&mut self, name: &'static str) {
        debug_assert!(needs_no_escaping(name), "{name}");
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A JSON string, escaped as serde_json escapes it.
    pub(crate) fn string(&mut self, text: &str) {
        // Writing a `str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, text);
    }

    /// A string known to need no escaping (digits, dashes: dates, GUIDs), copied.
    fn plain_string(&mut self, text: &[u8]) {
        self.out.push(b'"');
        self.out.extend_from_slice(text);
        self.out.push(b'"');
    }

    /// An integer.
    pub(crate) fn int(&mut self, value: i64) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// An unsigned integer.
    pub(crate) fn uint(&mut self, value: u64) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// `null`.
    pub(crate) fn null(&mut self) {
        self.out.extend_from_slice(b"null");
    }

    /// A date, `"YYYY-MM-DD"`.
    pub(crate) fn date(&mut self, date: reportroot_model::Date) {
        date.with_iso(|iso| {
            if needs_no_escaping(iso) {
                self.plain_string(iso.as_bytes());
            } else {
                self.string(iso);
            }
        });
    }

    /// A GUID, hyphenated in lower case as serde writes `Uuid`.
    pub(crate) fn uuid(&mut self, id: Uuid) {
        let mut buffer = Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut buffer);
        self.plain_string(text.as_bytes());
    }

    /// The weak eTag of `version` as a JSON string: `"W/\"3\""`.
    pub(crate) fn etag(&mut self, version: i64) {
        self.out.extend_from_slice(b"\"W/\\\"");
        self.int(version);
        self.out.extend_from_slice(b"\\\"\"");
    }
}

/// Whether `text` is written as is inside quotes: no `"`, `\` or control character.
fn needs_no_escaping(text: &str) -> bool {
    text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut JsonWriter<'_>)) -> String {
        let mut out = Vec::new();
        write(&mut JsonWriter::new(&mut out));
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn every_registry_name_is_written_as_is() {
        for report in reportroot_model::REPORTS {
            for property in report.properties {
                let name = property.name;
                assert!(
                    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric()),
                    "{name}"
                );
                assert_eq!(written(|w| w.name(name)), written(|w| w.key(name)));
            }
        }
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let odd = "a\"b\\c\nd\u{1}é/";
        assert_eq!(
            written(|w| w.key(odd)),
            format!("{}:", serde_json::to_string(odd).expect("json"))
        );
        assert_eq!(written(|w| w.key("reportDate")), r#""reportDate":"#);
        assert_eq!(
            written(|w| w.string(odd)),
            serde_json::to_string(odd).expect("json")
        );
        for n in [i64::MIN, -1, 0, 7, i64::MAX] {
            assert_eq!(written(|w| w.int(n)), n.to_string());
        }
        assert_eq!(written(|w| w.uint(u64::MAX)), u64::MAX.to_string());
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(
            written(|w| w.uuid(id)),
            serde_json::to_string(&id).expect("json")
        );
        assert_eq!(written(|w| w.etag(12)), r#""W/\"12\"""#);
        let date = reportroot_model::Date::from_ymd(-44, 3, 15).expect("a date");
        assert_eq!(written(|w| w.date(date)), r#""-044-03-15""#);
    }
}
