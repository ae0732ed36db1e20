//! Typed property values and stored entities.

use std::fmt;

use uuid::Uuid;

use crate::registry::{ReportType, ValueKind};
use crate::Period;

/// A calendar date (`Edm.Date`), always written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(time::Date);

impl Date {
    /// Parses `YYYY-MM-DD`, accepting only real calendar dates in years 1000–9999.
    pub fn parse(text: &str) -> Option<Date> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = &text[range];
            part.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let year = i32::try_from(digits(0..4)?).ok()?;
        let month = u8::try_from(digits(5..7)?).ok()?;
        let day = u8::try_from(digits(8..10)?).ok()?;
        if year < 1000 {
            return None;
        }
        let month = time::Month::try_from(month).ok()?;
        time::Date::from_calendar_date(year, month, day)
            .ok()
            .map(Date)
    }

    /// Builds a date from its parts, if they form a real date.
    pub fn from_ymd(year: i32, month: u8, day: u8) -> Option<Date> {
        let month = time::Month::try_from(month).ok()?;
        time::Date::from_calendar_date(year, month, day)
            .ok()
            .map(Date)
    }

    /// The date `days` later (earlier when negative).
    pub fn add_days(self, days: i64) -> Date {
        Date(self.0 + time::Duration::days(days))
    }

    /// The date `days` later (earlier when negative), or the last (first) date there is,
    /// 9999-12-31, when that is past it: no panic for a date a client sends.
    pub fn saturating_add_days(self, days: i64) -> Date {
        let moved = self.0.checked_add(time::Duration::days(days));
        Date(moved.unwrap_or(if days < 0 {
            time::Date::MIN
        } else {
            time::Date::MAX
        }))
    }

    /// Days from `other` to `self`.
    pub fn days_since(self, other: Date) -> i64 {
        (self.0 - other.0).whole_days()
    }

    /// `YYYY-MM-DD` as ASCII bytes, without allocating (a bulk import binds millions).
    pub fn iso_bytes(self) -> [u8; 10] {
        let mut out = *b"0000-00-00";
        let digits = |out: &mut [u8], mut n: u32| {
            for slot in out.iter_mut().rev() {
                *slot = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        digits(&mut out[0..4], self.year().unsigned_abs());
        digits(&mut out[5..7], u32::from(self.month()));
        digits(&mut out[8..10], u32::from(self.day()));
        out
    }

    /// Today in UTC.
    pub fn today_utc() -> Date {
        Date(time::OffsetDateTime::now_utc().date())
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.0.year()
    }

    /// The month, 1–12.
    pub fn month(self) -> u8 {
        self.0.month() as u8
    }

    /// The day of the month, 1–31.
    pub fn day(self) -> u8 {
        self.0.day()
    }

    /// The underlying `time` date, for database drivers.
    pub fn as_time(self) -> time::Date {
        self.0
    }

    /// Wraps a `time` date.
    pub fn from_time(date: time::Date) -> Date {
        Date(date)
    }

    /// Monday = 0 … Sunday = 6.
    pub fn weekday_from_monday(self) -> u8 {
        self.0.weekday().number_days_from_monday()
    }
}

impl Date {
    /// Calls `with` on `YYYY-MM-DD`, from the stack for years 0–9999 (the JSON of every page
    /// writes several dates a row: through `fmt::Display` they were 6.6 % of a page's
    /// instructions under callgrind, formatted this way a fifth of that).
    pub fn with_iso<R>(self, with: impl FnOnce(&str) -> R) -> R {
        if (0..=9999).contains(&self.year()) {
            let bytes = self.iso_bytes();
            if let Ok(text) = std::str::from_utf8(&bytes) {
                return with(text);
            }
        }
        with(&format!(
            "{:04}-{:02}-{:02}",
            self.year(),
            self.month(),
            self.day()
        ))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_iso(|text| f.write_str(text))
    }
}

/// One property value.
///
/// The derived order puts [`Value::Null`] before every other value, as OData orders nulls
/// first ascending.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// No value: an empty cell of Graph's CSV, `null` in JSON, SQL `NULL`. Only properties
    /// whose kind [`ValueKind::is_nullable`] (counts and durations) hold it.
    Null,
    /// An `Edm.Date`.
    Date(Date),
    /// An `Edm.Int64`.
    Int(i64),
    /// An `Edm.String` (report periods are stored as their `"7"` form).
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Date(d) => d.fmt(f),
            Value::Int(i) => i.fmt(f),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// Why a value does not fit its property.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not an integer, or out of range.
    #[error("must be a non-negative integer (Edm.Int64)")]
    NotCount,
    /// Not an integer, or out of the `Edm.Int32` range.
    #[error("must be a non-negative integer of at most 2147483647 (Edm.Int32)")]
    NotCount32,
    /// Not a duration written `hh:mm:ss` (Graph's CSV).
    #[error("must be a duration written hh:mm:ss, e.g. \"01:02:03\" (Edm.Duration)")]
    NotDuration,
    /// Not an ISO 8601 duration of whole seconds (OData JSON).
    #[error("must be an ISO 8601 duration of whole seconds, e.g. \"PT1H2M3S\" or \"PT0S\" (Edm.Duration)")]
    NotIsoDuration,
    /// Not a `YYYY-MM-DD` calendar date.
    #[error("must be a calendar date written YYYY-MM-DD (Edm.Date)")]
    NotDate,
    /// Not a period.
    #[error("must be one of \"7\", \"30\", \"90\", \"180\"")]
    NotPeriod,
    /// An empty, over-long or control-character string.
    #[error("must be a non-empty string of at most {max} characters without control characters", max = MAX_TEXT_CHARS)]
    BadText,
    /// A value of the wrong JSON/OData type altogether.
    #[error("must be of type {0}")]
    WrongType(&'static str),
}

/// Longest accepted `Edm.String` value, in characters.
pub const MAX_TEXT_CHARS: usize = 256;

impl ValueKind {
    /// Checks an integer for this kind.
    pub fn check_int(self, number: i64) -> Result<Value, ValueError> {
        match self {
            ValueKind::Count if number >= 0 => Ok(Value::Int(number)),
            ValueKind::Count => Err(ValueError::NotCount),
            ValueKind::Count32 if (0..=i64::from(i32::MAX)).contains(&number) => {
                Ok(Value::Int(number))
            }
            ValueKind::Count32 => Err(ValueError::NotCount32),
            other => Err(ValueError::WrongType(other.edm_type())),
        }
    }

    /// Parses text for this kind: a string property as it is, a date, a period, or (for CSV
    /// input) a count written in decimal.
    pub fn parse_text(self, text: &str) -> Result<Value, ValueError> {
        match self {
            ValueKind::Date => Date::parse(text)
                .map(Value::Date)
                .ok_or(ValueError::NotDate),
            ValueKind::Period => Period::from_property(text)
                .map(|p| Value::Text(p.stored().to_owned()))
                .ok_or(ValueError::NotPeriod),
            ValueKind::Text => {
                let ok = !text.is_empty()
                    && text.chars().count() <= MAX_TEXT_CHARS
                    && !text.chars().any(char::is_control);
                ok.then(|| Value::Text(text.to_owned()))
                    .ok_or(ValueError::BadText)
            }
            ValueKind::Count | ValueKind::Count32 => {
                let not_count = match self {
                    ValueKind::Count32 => ValueError::NotCount32,
                    _ => ValueError::NotCount,
                };
                let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
                let number = digits_only
                    .then(|| text.parse::<i64>().ok())
                    .flatten()
                    .ok_or(not_count)?;
                self.check_int(number)
            }
            ValueKind::Duration => is_duration(text)
                .then(|| Value::Text(text.to_owned()))
                .ok_or(ValueError::NotDuration),
        }
    }
}

/// Graph's CSV form of a duration: hours (two or more digits, at most 9), minutes and seconds
/// (two digits each, below 60), e.g. `00:04:05` or `123:00:59`.
fn is_duration(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [hours, minutes, seconds] => {
            (2..=9).contains(&hours.len())
                && digits(hours)
                && [minutes, seconds]
                    .iter()
                    .all(|s| s.len() == 2 && digits(s) && s.as_bytes()[0] < b'6')
        }
        _ => false,
    }
}

/// Seconds in a duration written as Graph's CSV does (`hh:mm:ss`), when it is one.
fn duration_seconds(text: &str) -> Option<u64> {
    if !is_duration(text) {
        return None;
    }
    let mut parts = text.split(':').map(|p| p.parse::<u64>().ok());
    let (hours, minutes, seconds) = (parts.next()??, parts.next()??, parts.next()??);
    Some(hours * 3600 + minutes * 60 + seconds)
}

/// An `Edm.Duration` stored as Graph's CSV writes it (`hh:mm:ss`, e.g. `01:02:03`) in OData
/// JSON's form, ISO 8601 (`PT1H2M3S`; zero is `PT0S`; hours are not folded into days, as
/// OData allows). `None` for text that is not `hh:mm:ss`.
pub fn duration_to_iso(text: &str) -> Option<String> {
    duration_seconds(text).map(duration_iso_from_seconds)
}

/// A number of seconds as an ISO 8601 duration: `PT1H2M3S`, `PT0S` for zero; hours are not
/// folded into days.
pub fn duration_iso_from_seconds(total: u64) -> String {
    if total == 0 {
        return "PT0S".to_owned();
    }
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let mut out = String::from("PT");
    for (n, unit) in [(hours, 'H'), (minutes, 'M'), (seconds, 'S')] {
        if n > 0 {
            out.push_str(&n.to_string());
            out.push(unit);
        }
    }
    out
}

/// An ISO 8601 duration of OData JSON (`P[nD][T[nH][nM][nS]]`, e.g. `PT1H2M3S`, `P1DT2H`,
/// `PT90M`, `PT0S`) as Graph's CSV writes it, `hh:mm:ss` with at least two hour digits
/// (`01:02:03`, `26:00:00`, `01:30:00`). Whole seconds only, as Graph's reports count them;
/// negative, fractional, year/month/week and over-long durations are `None`.
pub fn duration_from_iso(text: &str) -> Option<String> {
    let total = duration_seconds_from_iso(text)?;
    let hours = total / 3600;
    let text = format!("{hours:02}:{:02}:{:02}", total / 60 % 60, total % 60);
    is_duration(&text).then_some(text)
}

/// The seconds of an ISO 8601 duration of whole seconds (`P[nD][T[nH][nM][nS]]`), as
/// [`duration_from_iso`] reads it but without its bound on the hours; `None` for negative,
/// fractional and year/month/week durations and for totals beyond `u64`.
pub fn duration_seconds_from_iso(text: &str) -> Option<u64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    // Components in order, each digits then its unit, each at most once.
    fn components(text: &str, units: &[char]) -> Option<Vec<(char, u64)>> {
        let mut out = Vec::new();
        let mut digits = String::new();
        let mut next_unit = 0;
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let position = units.iter().position(|u| *u == c)?;
            if digits.is_empty() || digits.len() > 12 || position < next_unit {
                return None;
            }
            out.push((c, digits.parse().ok()?));
            digits.clear();
            next_unit = position + 1;
        }
        digits.is_empty().then_some(out)
    }
    let date = components(date, &['D'])?;
    let time = match time {
        Some(time) => {
            let parts = components(time, &['H', 'M', 'S'])?;
            if parts.is_empty() {
                return None; // `PT` alone
            }
            parts
        }
        None => Vec::new(),
    };
    if date.is_empty() && time.is_empty() {
        return None; // `P` alone
    }
    let mut total: u64 = 0;
    for (unit, n) in date.into_iter().chain(time) {
        let factor = match unit {
            'D' => 86_400,
            'H' => 3_600,
            'M' => 60,
            _ => 1,
        };
        total = total.checked_add(n.checked_mul(factor)?)?;
    }
    Some(total)
}

/// The tenant a row belongs to: the `tid` claim of the caller's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub Uuid);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A stored report row: its id, its version (the source of its eTag) and one value per
/// property of its [`ReportType`], in registry order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// The entity's GUID.
    pub id: Uuid,
    /// Starts at 1 and grows by one on every update.
    pub version: i64,
    /// One value per property, in [`ReportType::properties`] order.
    pub values: Vec<Value>,
}

impl Entity {
    /// The value of the named property.
    pub fn get(&self, report: &ReportType, name: &str) -> Option<&Value> {
        report.property_index(name).map(|i| &self.values[i])
    }

    /// The weak eTag of this version: `W/"<version>"`.
    pub fn etag(&self) -> String {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(self.version);
        let mut etag = String::with_capacity(digits.len() + 4);
        etag.push_str("W/\"");
        etag.push_str(digits);
        etag.push('"');
        etag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_yyyy_mm_dd_in_every_year() {
        let date = |y, m, d| Date::from_ymd(y, m, d).expect("a date").to_string();
        assert_eq!(date(2026, 1, 9), "2026-01-09");
        assert_eq!(date(9999, 12, 31), "9999-12-31");
        assert_eq!(date(7, 3, 4), "0007-03-04");
        assert_eq!(date(-44, 3, 15), "-044-03-15");
        assert_eq!(date(-9999, 1, 1), "-9999-01-01");
    }

    #[test]
    fn saturating_add_days_stops_at_the_calendar_ends() {
        let last = Date::from_ymd(9999, 12, 31).expect("a date");
        let first = Date::parse("2025-01-01").expect("a date");
        assert_eq!(last.saturating_add_days(180), last);
        assert_eq!(
            first.saturating_add_days(31),
            Date::parse("2025-02-01").expect("a date")
        );
        assert!(first.saturating_add_days(-10_000_000) < first);
    }

    #[test]
    fn iso_bytes_are_the_display_form() {
        let mut date = Date::parse("1999-12-25").expect("date");
        for _ in 0..400 {
            assert_eq!(date.iso_bytes().as_slice(), date.to_string().as_bytes());
            date = date.add_days(37);
        }
    }

    #[test]
    fn dates_must_be_real_and_well_formed() {
        assert_eq!(
            Date::parse("2024-02-29").map(|d| d.to_string()),
            Some("2024-02-29".into())
        );
        for bad in [
            "2023-02-29",
            "Date",
            "2024-2-01",
            "2024-13-01",
            "2024-00-10",
            "20240101",
            "2024-01-01T00:00:00Z",
            "+024-01-01",
            "0999-01-01",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn kinds_parse_text() {
        assert_eq!(ValueKind::Count.parse_text("12"), Ok(Value::Int(12)));
        assert!(ValueKind::Count.parse_text("-1").is_err());
        assert!(ValueKind::Count.parse_text("8.5").is_err());
        assert!(ValueKind::Count.parse_text("99999999999999999999").is_err());
        assert_eq!(
            ValueKind::Period.parse_text("D30"),
            Ok(Value::Text("30".into()))
        );
        assert!(ValueKind::Text.parse_text("").is_err());
        assert!(ValueKind::Text.parse_text("a\nb").is_err());
        assert_eq!(ValueKind::Count.check_int(-3), Err(ValueError::NotCount));
        assert_eq!(
            ValueKind::Count32.parse_text("2147483647"),
            Ok(Value::Int(2_147_483_647))
        );
        assert_eq!(
            ValueKind::Count32.parse_text("2147483648"),
            Err(ValueError::NotCount32)
        );
        assert_eq!(
            ValueKind::Count32.check_int(-1),
            Err(ValueError::NotCount32)
        );
        for good in ["00:00:00", "01:59:59", "123:04:05"] {
            assert_eq!(
                ValueKind::Duration.parse_text(good),
                Ok(Value::Text(good.into()))
            );
        }
        for (csv, iso) in [
            ("00:00:00", "PT0S"),
            ("01:02:03", "PT1H2M3S"),
            ("00:04:00", "PT4M"),
            ("00:00:59", "PT59S"),
            ("123:00:05", "PT123H5S"),
        ] {
            assert_eq!(duration_to_iso(csv).as_deref(), Some(iso));
            assert_eq!(duration_from_iso(iso).as_deref(), Some(csv));
        }
        for (iso, csv) in [
            ("PT90M", "01:30:00"),
            ("P1DT2H", "26:00:00"),
            ("P2D", "48:00:00"),
            ("PT3600S", "01:00:00"),
            ("PT0H0M0S", "00:00:00"),
        ] {
            assert_eq!(duration_from_iso(iso).as_deref(), Some(csv), "{iso}");
        }
        for bad in [
            "",
            "P",
            "PT",
            "PT1.5S",
            "-PT1H",
            "P1Y",
            "P1M",
            "P1W",
            "PT1M1H",
            "PT1H1H",
            "1H",
            "PTH",
            "PT1H ",
            "pt1h",
            "P1DT",
            "PT99999999999999H",
            "01:02:03",
        ] {
            assert_eq!(duration_from_iso(bad), None, "{bad}");
        }
        assert_eq!(duration_to_iso("PT1H"), None);
        for bad in [
            "", "1:00:00", "00:60:00", "00:00:6", "PT1H", "00:00", "aa:00:00",
        ] {
            assert_eq!(
                ValueKind::Duration.parse_text(bad),
                Err(ValueError::NotDuration),
                "{bad}"
            );
        }
    }
}
