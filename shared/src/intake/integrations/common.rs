//! Small helpers the vendor parsers share: calendar arithmetic and the two
//! timestamp formats vendors send (written here rather than pulling in a date
//! crate), and a label builder that keeps label names valid and unique.

use std::collections::HashSet;

use serde_json::Value;

use crate::domain::event::{is_valid_label_key, normalise_label_key};

const MS_PER_DAY: i64 = 86_400_000;

pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (negative
/// before it). Howard Hinnant's `days_from_civil`; exact for every year an
/// `i64` can carry without overflow, and callers only pass four-digit years.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The fields of a civil date-time, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    /// 0..=60; a leap second counts as the first second of the next minute.
    pub second: u32,
    pub millis: u32,
}

impl CivilTime {
    /// Unix milliseconds of this time read as UTC.
    pub fn to_unix_ms(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * MS_PER_DAY
            + i64::from(self.hour) * 3_600_000
            + i64::from(self.minute) * 60_000
            + i64::from(self.second) * 1000
            + i64::from(self.millis)
    }
}

/// A byte cursor that never panics: every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.peek()? == expected).then(|| self.pos += 1)
    }

    fn eat_any(&mut self, allowed: &[u8]) -> Option<u8> {
        let b = self.peek()?;
        allowed.contains(&b).then(|| {
            self.pos += 1;
            b
        })
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut value: u32 = 0;
        for _ in 0..n {
            let b = self.peek().filter(u8::is_ascii_digit)?;
            value = value * 10 + u32::from(b - b'0');
            self.pos += 1;
        }
        Some(value)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

/// `YYYY-MM-DD`, a separator from `separators`, `HH:MM:SS`, optional `.fraction`.
fn parse_date_time(c: &mut Cursor<'_>, separators: &[u8]) -> Option<CivilTime> {
    let year = i64::from(c.digits(4)?);
    c.eat(b'-')?;
    let month = c.digits(2)?;
    c.eat(b'-')?;
    let day = c.digits(2)?;
    c.eat_any(separators)?;
    let hour = c.digits(2)?;
    c.eat(b':')?;
    let minute = c.digits(2)?;
    c.eat(b':')?;
    let second = c.digits(2)?;
    let mut millis = 0;
    if c.eat(b'.').is_some() {
        // At least one digit; keep the first three (milliseconds), truncating the rest.
        let mut count = 0;
        while let Some(b) = c.peek().filter(u8::is_ascii_digit) {
            if count < 3 {
                millis = millis * 10 + u32::from(b - b'0');
            }
            count += 1;
            c.pos += 1;
        }
        if count == 0 {
            return None;
        }
        for _ in count..3 {
            millis *= 10;
        }
    }
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    valid.then_some(CivilTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        millis,
    })
}

/// BlueKing's `YYYY-MM-DD HH:MM:SS` (UTC), to unix milliseconds. A `T` in
/// place of the space and a fraction of a second are tolerated too.
pub fn parse_naive_utc(s: &str) -> Option<i64> {
    let mut c = Cursor {
        bytes: s.trim().as_bytes(),
        pos: 0,
    };
    let t = parse_date_time(&mut c, b" Tt")?;
    c.at_end().then(|| t.to_unix_ms())
}

/// RFC 3339 (`2026-11-20T08:20:31.412Z`, `...+08:00`, any number of
/// fraction digits, `T`/`t`/space separator) to unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let mut c = Cursor {
        bytes: s.trim().as_bytes(),
        pos: 0,
    };
    let t = parse_date_time(&mut c, b"Tt ")?;
    let offset_ms = match c.eat_any(b"Zz+-")? {
        b'Z' | b'z' => 0,
        sign => {
            let hours = c.digits(2)?;
            c.eat(b':')?;
            let minutes = c.digits(2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let ms = i64::from(hours * 60 + minutes) * 60_000;
            if sign == b'-' {
                -ms
            } else {
                ms
            }
        }
    };
    // Local time = UTC + offset, so UTC = local - offset.
    c.at_end().then(|| t.to_unix_ms() - offset_ms)
}

/// A scalar as label text; `null` is `None`; arrays and objects become their
/// compact JSON text (used where the spec says "flattened to strings").
pub fn flatten_to_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => Some(v.to_string()),
    }
}

/// Labels in insertion order with valid, unique names. Foreign names are
/// normalised (`kubernetes.io/name` → `kubernetes_io_name`); the first label
/// to claim a name keeps it.
#[derive(Default)]
pub struct LabelBuilder {
    labels: Vec<(String, String)>,
    taken: HashSet<String>,
}

impl LabelBuilder {
    fn valid_name(raw: &str) -> String {
        if is_valid_label_key(raw)
            && raw.chars().count() <= crate::domain::event::LABEL_KEY_MAX_CHARS
        {
            raw.to_string()
        } else {
            normalise_label_key(raw)
        }
    }

    /// Add under the (normalised) name unless it is taken; true when added.
    pub fn insert(&mut self, raw_name: &str, value: String) -> bool {
        let name = Self::valid_name(raw_name);
        if self.taken.contains(&name) {
            return false;
        }
        self.taken.insert(name.clone());
        self.labels.push((name, value));
        true
    }

    /// Add under the name, or under `prefix + name` when the name is taken;
    /// dropped only when both are taken. True when added.
    pub fn insert_or_prefixed(&mut self, raw_name: &str, value: String, prefix: &str) -> bool {
        let name = Self::valid_name(raw_name);
        if !self.taken.contains(&name) {
            return self.insert(&name, value);
        }
        self.insert(&format!("{prefix}{name}"), value)
    }

    pub fn contains(&self, raw_name: &str) -> bool {
        self.taken.contains(&Self::valid_name(raw_name))
    }

    pub fn into_vec(self) -> Vec<(String, String)> {
        self.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            parse_naive_utc("2026-11-20 08:15:00"),
            Some(1_795_162_500_000)
        );
        assert_eq!(parse_naive_utc("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_naive_utc("2038-01-19 03:14:07"),
            Some(2_147_483_647_000)
        );
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2024) && is_leap_year(2000) && is_leap_year(1600));
        assert!(!is_leap_year(2026) && !is_leap_year(1900) && !is_leap_year(2100));
        // 2024-02-29 exists, and the next day is 2024-03-01.
        let feb29 = parse_naive_utc("2024-02-29 00:00:00").unwrap();
        assert_eq!(feb29, 1_709_164_800_000);
        assert_eq!(
            parse_naive_utc("2024-03-01 00:00:00").unwrap() - feb29,
            MS_PER_DAY
        );
        assert_eq!(
            parse_naive_utc("2000-02-29 12:00:00"),
            Some(951_825_600_000)
        );
        assert_eq!(parse_naive_utc("2026-02-29 00:00:00"), None);
        assert_eq!(parse_naive_utc("1900-02-29 00:00:00"), None);
        assert_eq!(parse_naive_utc("2100-02-29 00:00:00"), None);
        // 2024 has 366 days, 2026 has 365.
        assert_eq!(
            days_from_civil(2025, 1, 1) - days_from_civil(2024, 1, 1),
            366
        );
        assert_eq!(
            days_from_civil(2027, 1, 1) - days_from_civil(2026, 1, 1),
            365
        );
    }

    #[test]
    fn every_day_of_four_centuries_is_consecutive() {
        let mut expected = days_from_civil(1900, 1, 1);
        for year in 1900..2300 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    assert_eq!(days_from_civil(year, month, day), expected);
                    expected += 1;
                }
            }
        }
    }

    #[test]
    fn naive_times_refuse_garbage() {
        for bad in [
            "",
            "2026-11-20",
            "2026-11-20 08:15",
            "2026-13-01 00:00:00",
            "2026-00-01 00:00:00",
            "2026-04-31 00:00:00",
            "2026-11-20 24:00:00",
            "2026-11-20 08:60:00",
            "2026-11-20 08:15:00Z",
            "2026-11-20 08:15:00 extra",
            "２０２６-11-20 08:15:00",
            "2026-11-20 08:15:00.",
            "-026-11-20 08:15:00",
        ] {
            assert_eq!(parse_naive_utc(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_naive_utc(" 2026-11-20T08:15:00.5 "),
            Some(1_795_162_500_500)
        );
    }

    #[test]
    fn rfc3339_offsets_and_fractions() {
        let base = 1_795_162_831_000; // 2026-11-20T08:20:31Z
        assert_eq!(parse_rfc3339("2026-11-20T08:20:31Z"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-20T08:20:31.412Z"), Some(base + 412));
        assert_eq!(parse_rfc3339("2026-11-20T08:20:31.4Z"), Some(base + 400));
        assert_eq!(
            parse_rfc3339("2026-11-20T08:20:31.412345678Z"),
            Some(base + 412)
        );
        assert_eq!(parse_rfc3339("2026-11-20T16:20:31+08:00"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-20T03:50:31-04:30"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-20t08:20:31z"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-20 08:20:31+00:00"), Some(base));
        // Crossing a day and a leap day with an offset.
        assert_eq!(
            parse_rfc3339("2024-03-01T00:30:00+01:00"),
            parse_rfc3339("2024-02-29T23:30:00Z")
        );
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z"),
            Some(days_from_civil(1, 1, 1) * MS_PER_DAY)
        );
        for bad in [
            "2026-11-20T08:20:31",
            "2026-11-20T08:20:31+0800",
            "2026-11-20T08:20:31+24:00",
            "2026-11-20T08:20:31.Z",
            "2026-11-20T08:20:31Zjunk",
            "20261120T082031Z",
            "yesterday",
            "2026-11-20T08:20:31+08:0",
            "2026-11-20T08:20:3１Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn label_builder_normalises_and_keeps_the_first_claim() {
        let mut b = LabelBuilder::default();
        assert!(b.insert("a", "1".into()));
        assert!(!b.insert("a", "2".into()));
        assert!(b.insert("kubernetes.io/name", "x".into()));
        assert!(b.insert_or_prefixed("a", "3".into(), "annotation_"));
        assert!(!b.insert_or_prefixed("a", "4".into(), "annotation_"));
        assert!(b.contains("kubernetes_io_name"));
        assert_eq!(
            b.into_vec(),
            vec![
                ("a".to_string(), "1".to_string()),
                ("kubernetes_io_name".to_string(), "x".to_string()),
                ("annotation_a".to_string(), "3".to_string()),
            ]
        );
    }

    #[test]
    fn flattening() {
        assert_eq!(flatten_to_string(&Value::Null), None);
        assert_eq!(flatten_to_string(&serde_json::json!(0)), Some("0".into()));
        assert_eq!(
            flatten_to_string(&serde_json::json!({"a":[1,"b"]})),
            Some(r#"{"a":[1,"b"]}"#.into())
        );
    }
}
