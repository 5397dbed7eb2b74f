//! Joda-style intervals (`start/end`, half-open, UTC) as Druid writes them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::{parse_iso, to_iso};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid interval [{0}]: expected <start>/<end> in ISO-8601 with start <= end")]
pub struct IntervalError(pub String);

impl Interval {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Interval, IntervalError> {
        if end < start {
            return Err(IntervalError(format!("{}/{}", to_iso(start), to_iso(end))));
        }
        Ok(Interval { start, end })
    }

    /// Parses `start/end`; a bare date (`2015-09-12`) means midnight UTC.
    pub fn parse(s: &str) -> Result<Interval, IntervalError> {
        let bad = || IntervalError(s.to_string());
        let (a, b) = s.split_once('/').ok_or_else(bad)?;
        let start = parse_instant(a).ok_or_else(bad)?;
        let end = parse_instant(b).ok_or_else(bad)?;
        Interval::new(start, end).map_err(|_| bad())
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies entirely inside this interval.
    pub fn encloses(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

/// An instant in ISO-8601: full timestamps with any offset, or a date / date-hour / date-minute
/// prefix (Joda accepts `2015-09-12`, `2015-09-12T01`, ...), read as UTC.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_utc_fast(s) {
        return Some(t);
    }
    if let Some(t) = parse_iso(s) {
        return Some(t);
    }
    let s = s.trim_end_matches('Z');
    let formats = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H",
    ];
    for f in formats {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc());
    }
    // `%Y-%m-%dT%H` fails in chrono without minutes; complete it.
    if s.len() == 13 && s.as_bytes().get(10) == Some(&b'T') {
        return chrono::NaiveDateTime::parse_from_str(&format!("{s}:00"), "%Y-%m-%dT%H:%M")
            .ok()
            .map(|t| t.and_utc());
    }
    None
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the shape nearly every ingested timestamp has, read
/// without a general parser (it is parsed once per input row); anything else is `None` and goes
/// to the general parsers.
fn parse_utc_fast(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[b.len() - 1] != b'Z'
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |digits: &[u8]| -> Option<u32> {
        digits.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            num(fraction)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    chrono::NaiveDate::from_ymd_opt(num(&b[0..4])? as i32, num(&b[5..7])?, num(&b[8..10])?)?
        .and_hms_nano_opt(num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?, nanos)
        .map(|t| t.and_utc())
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", to_iso(self.start), to_iso(self.end))
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Interval::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_druid_intervals() {
        let i = Interval::parse("2015-09-12/2015-09-13").unwrap();
        assert_eq!(
            i.to_string(),
            "2015-09-12T00:00:00.000Z/2015-09-13T00:00:00.000Z"
        );
        let j = Interval::parse("2018-01-01T00:00:00.000Z/2018-01-03T00:00:00.000Z").unwrap();
        assert!(j.contains(parse_instant("2018-01-02T21:33:14Z").unwrap()));
        assert!(!j.contains(j.end), "half-open");
        assert!(Interval::parse("2015-09-13/2015-09-12").is_err());
        assert!(Interval::parse("nonsense").is_err());
        assert_eq!(
            parse_instant("2015-09-12T01").unwrap().to_string(),
            "2015-09-12 01:00:00 UTC"
        );
        assert_eq!(
            parse_instant("2015-09-12T01:02:03+02:00")
                .unwrap()
                .to_string(),
            "2015-09-11 23:02:03 UTC"
        );
    }

    #[test]
    fn overlap_and_enclosure() {
        let a = Interval::parse("2020-01-01/2020-01-03").unwrap();
        let b = Interval::parse("2020-01-02/2020-01-04").unwrap();
        let c = Interval::parse("2020-01-03/2020-01-04").unwrap();
        assert!(a.overlaps(&b));
        assert!(!a.overlaps(&c), "touching is not overlapping");
        assert!(a.encloses(&Interval::parse("2020-01-01/2020-01-02").unwrap()));
        assert!(!a.encloses(&b));
    }

    #[test]
    fn the_fast_path_agrees_with_chrono_on_every_day_and_on_impossible_ones() {
        for year in [
            0, 1, 1600, 1899, 1900, 1969, 1970, 2000, 2015, 2024, 2100, 9999,
        ] {
            for month in 0..=13 {
                for day in 0..=32 {
                    for (hour, minute, second) in [(0, 0, 0), (23, 59, 59), (24, 0, 0), (1, 60, 1)]
                    {
                        let text = format!(
                            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.007Z"
                        );
                        let chrono = chrono::NaiveDate::from_ymd_opt(year, month, day)
                            .and_then(|d| d.and_hms_milli_opt(hour, minute, second, 7))
                            .map(|t| t.and_utc());
                        assert_eq!(parse_utc_fast(&text), chrono, "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_fast_path_reads_what_the_general_parser_reads() {
        for text in [
            "2015-09-12T00:46:58.771Z",
            "2015-09-12T23:59:59Z",
            "2000-02-29T12:00:00.5Z",
            "2015-09-12T00:46:58.123456789Z",
        ] {
            assert_eq!(parse_utc_fast(text), parse_iso(text), "{text}");
            assert!(parse_utc_fast(text).is_some(), "{text}");
        }
        for not_fast in [
            "2015-09-12T00:46:58+02:00",
            "2015-02-30T00:00:00Z",
            "2015-09-12T24:00:00Z",
            "2015-09-12 00:46:58Z",
            "2015-09-12T00:46:58.Z",
            "2015-09-12T00:46:58.1234567890Z",
            "2015-9-12T00:46:58Z",
        ] {
            assert_eq!(parse_utc_fast(not_fast), None, "{not_fast}");
        }
        assert_eq!(
            parse_instant("2015-09-12T00:46:58+02:00"),
            parse_iso("2015-09-12T00:46:58+02:00")
        );
    }
}
