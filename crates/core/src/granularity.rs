//! Druid's simple granularities: `NONE` (millisecond) … `YEAR`, and `ALL`. They bucket timestamps
//! for `segmentGranularity` and `queryGranularity`, in UTC. Accepted as a string (`"DAY"`,
//! case-insensitive) or `{"type":"day"}` / `{"type":"none"}` / `{"type":"all"}`.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::interval::Interval;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    None,
    Second,
    Minute,
    FiveMinute,
    TenMinute,
    FifteenMinute,
    ThirtyMinute,
    Hour,
    SixHour,
    EightHour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    All,
}

const NAMES: &[(&str, Granularity)] = &[
    ("NONE", Granularity::None),
    ("SECOND", Granularity::Second),
    ("MINUTE", Granularity::Minute),
    ("FIVE_MINUTE", Granularity::FiveMinute),
    ("TEN_MINUTE", Granularity::TenMinute),
    ("FIFTEEN_MINUTE", Granularity::FifteenMinute),
    ("THIRTY_MINUTE", Granularity::ThirtyMinute),
    ("HOUR", Granularity::Hour),
    ("SIX_HOUR", Granularity::SixHour),
    ("EIGHT_HOUR", Granularity::EightHour),
    ("DAY", Granularity::Day),
    ("WEEK", Granularity::Week),
    ("MONTH", Granularity::Month),
    ("QUARTER", Granularity::Quarter),
    ("YEAR", Granularity::Year),
    ("ALL", Granularity::All),
];

impl Granularity {
    pub fn parse(name: &str) -> Option<Granularity> {
        let upper = name.to_ascii_uppercase();
        NAMES.iter().find(|(n, _)| *n == upper).map(|(_, g)| *g)
    }

    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, g)| *g == self)
            .map(|(n, _)| *n)
            .expect("every granularity is named")
    }

    /// The bucket's length when every bucket has the same one (up to `WEEK`), in ms.
    fn fixed_millis(self) -> Option<i64> {
        const MINUTE: i64 = 60_000;
        Some(match self {
            Granularity::None => 1,
            Granularity::Second => 1_000,
            Granularity::Minute => MINUTE,
            Granularity::FiveMinute => 5 * MINUTE,
            Granularity::TenMinute => 10 * MINUTE,
            Granularity::FifteenMinute => 15 * MINUTE,
            Granularity::ThirtyMinute => 30 * MINUTE,
            Granularity::Hour => 60 * MINUTE,
            Granularity::SixHour => 360 * MINUTE,
            Granularity::EightHour => 480 * MINUTE,
            Granularity::Day => 1_440 * MINUTE,
            Granularity::Week => 7 * 1_440 * MINUTE,
            _ => return None,
        })
    }

    /// [`Self::truncate`] on milliseconds since the epoch: one division for the granularities
    /// of a fixed length (the query granularity is applied to every row, where building a date
    /// and back cost more than the rest of the row's time handling).
    pub fn truncate_millis(self, ms: i64) -> i64 {
        // Weeks start on Monday; the epoch was a Thursday, three days after one.
        const EPOCH_AFTER_MONDAY: i64 = 3 * 86_400_000;
        match self.fixed_millis() {
            Some(len) if self == Granularity::Week => {
                (ms + EPOCH_AFTER_MONDAY).div_euclid(len) * len - EPOCH_AFTER_MONDAY
            }
            Some(len) => ms.div_euclid(len) * len,
            None => match DateTime::from_timestamp_millis(ms) {
                Some(t) => self.truncate(t).timestamp_millis(),
                None => ms,
            },
        }
    }

    /// The start of the bucket holding `t`.
    pub fn truncate(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let floor_minutes = |m: u32| {
            let minute = t.minute() - t.minute() % m;
            t.with_minute(minute)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .expect("valid")
        };
        let floor_hours = |h: u32| {
            let hour = t.hour() - t.hour() % h;
            Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), hour, 0, 0)
                .unwrap()
        };
        match self {
            Granularity::None => t
                .with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
                .expect("valid"),
            Granularity::Second => t.with_nanosecond(0).expect("valid"),
            Granularity::Minute => floor_minutes(1),
            Granularity::FiveMinute => floor_minutes(5),
            Granularity::TenMinute => floor_minutes(10),
            Granularity::FifteenMinute => floor_minutes(15),
            Granularity::ThirtyMinute => floor_minutes(30),
            Granularity::Hour => floor_hours(1),
            Granularity::SixHour => floor_hours(6),
            Granularity::EightHour => floor_hours(8),
            Granularity::Day => floor_hours(24),
            Granularity::Week => {
                let day = Granularity::Day.truncate(t);
                day - Duration::days(day.weekday().num_days_from_monday() as i64)
            }
            Granularity::Month => Utc
                .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
                .unwrap(),
            Granularity::Quarter => {
                let month = (t.month() - 1) / 3 * 3 + 1;
                Utc.with_ymd_and_hms(t.year(), month, 1, 0, 0, 0).unwrap()
            }
            Granularity::Year => Utc.with_ymd_and_hms(t.year(), 1, 1, 0, 0, 0).unwrap(),
            Granularity::All => DateTime::<Utc>::MIN_UTC,
        }
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next(self, start: DateTime<Utc>) -> DateTime<Utc> {
        let add_months = |m: u32| {
            let total = start.year() * 12 + start.month0() as i32 + m as i32;
            Utc.with_ymd_and_hms(total / 12, (total % 12) as u32 + 1, 1, 0, 0, 0)
                .unwrap()
        };
        match self {
            Granularity::None => start + Duration::milliseconds(1),
            Granularity::Second => start + Duration::seconds(1),
            Granularity::Minute => start + Duration::minutes(1),
            Granularity::FiveMinute => start + Duration::minutes(5),
            Granularity::TenMinute => start + Duration::minutes(10),
            Granularity::FifteenMinute => start + Duration::minutes(15),
            Granularity::ThirtyMinute => start + Duration::minutes(30),
            Granularity::Hour => start + Duration::hours(1),
            Granularity::SixHour => start + Duration::hours(6),
            Granularity::EightHour => start + Duration::hours(8),
            Granularity::Day => start + Duration::days(1),
            Granularity::Week => start + Duration::weeks(1),
            Granularity::Month => add_months(1),
            Granularity::Quarter => add_months(3),
            Granularity::Year => add_months(12),
            Granularity::All => DateTime::<Utc>::MAX_UTC,
        }
    }

    /// The bucket holding `t`.
    pub fn bucket(self, t: DateTime<Utc>) -> Interval {
        let start = self.truncate(t);
        Interval {
            start,
            end: self.next(start),
        }
    }

    /// The smallest bucket-aligned interval holding `interval`: what a task locks to write it.
    pub fn cover(self, interval: &Interval) -> Interval {
        let start = self.truncate(interval.start);
        let last = self.truncate(interval.end);
        let end = if last == interval.end || self == Granularity::All {
            if self == Granularity::All {
                self.next(start)
            } else {
                last
            }
        } else {
            self.next(last)
        };
        Interval { start, end }
    }

    /// The buckets covering `interval` (Druid's `granularity.getIterable(interval)`).
    pub fn buckets(self, interval: &Interval) -> Vec<Interval> {
        let mut out = Vec::new();
        let mut start = self.truncate(interval.start);
        while start < interval.end {
            let end = self.next(start);
            out.push(Interval { start, end });
            if self == Granularity::All {
                break;
            }
            start = end;
        }
        out
    }
}

impl Serialize for Granularity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Granularity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let name = match &v {
            Value::String(s) => s.clone(),
            Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                Some("period") => {
                    return Err(serde::de::Error::custom(
                        "period granularities are not supported; use a simple granularity (NONE ... YEAR, ALL)",
                    ))
                }
                Some(t) => t.to_string(),
                None => return Err(serde::de::Error::custom("a granularity object needs a [type]")),
            },
            _ => return Err(serde::de::Error::custom("a granularity is a string such as \"DAY\"")),
        };
        Granularity::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown granularity [{name}]; expected one of {}",
                NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interval::parse_instant;

    fn t(s: &str) -> DateTime<Utc> {
        parse_instant(s).unwrap()
    }

    #[test]
    fn cover_aligns_both_ends_outwards() {
        let i = Interval::parse("2015-09-12T05:00:00Z/2015-09-13T01:00:00Z").unwrap();
        assert_eq!(
            Granularity::Day.cover(&i),
            Interval::parse("2015-09-12/2015-09-14").unwrap()
        );
        let aligned = Interval::parse("2015-09-12/2015-09-13").unwrap();
        assert_eq!(Granularity::Day.cover(&aligned), aligned);
        assert_eq!(
            Granularity::Month.cover(&aligned),
            Interval::parse("2015-09-01/2015-10-01").unwrap()
        );
    }

    #[test]
    fn truncating_millis_is_truncating_dates() {
        let instants = [
            "2018-01-02T21:35:45.123Z",
            "2015-09-12T00:00:00.000Z",
            "1970-01-01T00:00:00.000Z",
            "1969-12-31T23:59:59.999Z",
            "1969-12-29T00:00:00.000Z",
            "1901-03-04T05:06:07.089Z",
            "2024-02-29T12:00:00.001Z",
            "2026-12-06T23:59:59.999Z",
        ];
        for (_, g) in NAMES {
            for i in instants {
                let t = t(i);
                assert_eq!(
                    g.truncate_millis(t.timestamp_millis()),
                    g.truncate(t).timestamp_millis(),
                    "{g:?} of {i}"
                );
            }
        }
    }

    #[test]
    fn truncates_like_druid() {
        let x = t("2018-01-02T21:35:45.123Z");
        let cases = [
            (Granularity::None, "2018-01-02T21:35:45.123Z"),
            (Granularity::Second, "2018-01-02T21:35:45.000Z"),
            (Granularity::Minute, "2018-01-02T21:35:00.000Z"),
            (Granularity::FiveMinute, "2018-01-02T21:35:00.000Z"),
            (Granularity::TenMinute, "2018-01-02T21:30:00.000Z"),
            (Granularity::FifteenMinute, "2018-01-02T21:30:00.000Z"),
            (Granularity::ThirtyMinute, "2018-01-02T21:30:00.000Z"),
            (Granularity::Hour, "2018-01-02T21:00:00.000Z"),
            (Granularity::SixHour, "2018-01-02T18:00:00.000Z"),
            (Granularity::EightHour, "2018-01-02T16:00:00.000Z"),
            (Granularity::Day, "2018-01-02T00:00:00.000Z"),
            (Granularity::Week, "2018-01-01T00:00:00.000Z"),
            (Granularity::Month, "2018-01-01T00:00:00.000Z"),
            (Granularity::Quarter, "2018-01-01T00:00:00.000Z"),
            (Granularity::Year, "2018-01-01T00:00:00.000Z"),
        ];
        for (g, expected) in cases {
            assert_eq!(crate::time::to_iso(g.truncate(x)), expected, "{g:?}");
            let b = g.bucket(x);
            assert!(b.contains(x), "{g:?}");
        }
        assert_eq!(
            crate::time::to_iso(Granularity::Quarter.truncate(t("2018-11-15"))),
            "2018-10-01T00:00:00.000Z"
        );
        assert_eq!(
            crate::time::to_iso(Granularity::Month.next(t("2018-12-01"))),
            "2019-01-01T00:00:00.000Z"
        );
        assert!(Granularity::All.bucket(x).contains(x));
    }

    #[test]
    fn buckets_cover_an_interval() {
        let i = Interval::parse("2018-01-01/2018-01-03").unwrap();
        let days = Granularity::Day.buckets(&i);
        assert_eq!(days.len(), 2);
        assert_eq!(
            days[1].to_string(),
            "2018-01-02T00:00:00.000Z/2018-01-03T00:00:00.000Z"
        );
        assert_eq!(Granularity::Hour.buckets(&i).len(), 48);
        assert_eq!(Granularity::All.buckets(&i).len(), 1);
    }

    #[test]
    fn reads_druid_spellings() {
        let g: Granularity = serde_json::from_str(r#""day""#).unwrap();
        assert_eq!(g, Granularity::Day);
        let g: Granularity = serde_json::from_str(r#"{"type":"none"}"#).unwrap();
        assert_eq!(g, Granularity::None);
        assert!(serde_json::from_str::<Granularity>(r#""fortnight""#)
            .unwrap_err()
            .to_string()
            .contains("fortnight"));
        assert!(
            serde_json::from_str::<Granularity>(r#"{"type":"period","period":"P2D"}"#).is_err()
        );
    }
}
