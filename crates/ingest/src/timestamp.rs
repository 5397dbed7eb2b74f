//! `timestampSpec`: which column holds the time and how to read it (`iso`, `auto`, `millis`,
//! `posix`, `nano`, or a Joda-style pattern), with `missingValue` for rows without one.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;

use drover_core::interval::parse_instant;

use crate::record::Cell;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampSpec {
    #[serde(default = "default_column")]
    pub column: String,
    #[serde(default = "default_format")]
    pub format: String,
    #[serde(default)]
    pub missing_value: Option<Value>,
}

fn default_column() -> String {
    "timestamp".into()
}

fn default_format() -> String {
    "auto".into()
}

/// A Joda pattern turned into a chrono one (the common letters only).
fn joda_to_chrono(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let mut n = 1;
        while chars.peek() == Some(&c) {
            chars.next();
            n += 1;
        }
        let piece = match (c, n) {
            ('y', 2) => "%y".to_string(),
            ('y', _) | ('Y', _) => "%Y".to_string(),
            ('M', 1) | ('M', 2) => "%m".to_string(),
            ('M', 3) => "%b".to_string(),
            ('M', _) => "%B".to_string(),
            ('d', _) => "%d".to_string(),
            ('H', _) => "%H".to_string(),
            ('h', _) => "%I".to_string(),
            ('m', _) => "%M".to_string(),
            ('s', _) => "%S".to_string(),
            ('S', _) => "%3f".to_string(),
            ('a', _) => "%p".to_string(),
            ('Z', _) => "%z".to_string(),
            ('\'', _) => String::new(),
            (other, n) => std::iter::repeat_n(other, n).collect(),
        };
        out.push_str(&piece);
    }
    out
}

/// A `timestampSpec.format` that is neither a known name nor a Joda pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timestamp format [{0}]")]
pub struct UnknownTimestampFormat(pub String);

/// Why a row has no usable time: it is unparseable, and counted as such.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("timestamp column [{column}] is missing")]
    Missing { column: String },
    #[error("could not parse timestamp [{value}] with format [{format}]")]
    Unparseable { value: String, format: String },
}

impl TimestampSpec {
    /// Checks the format once, so a bad spec is a 400 before any row is read.
    pub fn validate(&self) -> Result<(), UnknownTimestampFormat> {
        match self.format.as_str() {
            "iso" | "auto" | "millis" | "posix" | "nano" | "micro" | "ruby" => Ok(()),
            p if p.chars().any(|c| c.is_ascii_alphabetic()) => Ok(()),
            other => Err(UnknownTimestampFormat(other.to_string())),
        }
    }

    /// The row's time, or what is wrong with it.
    pub fn extract(&self, value: &Cell) -> Result<DateTime<Utc>, TimestampError> {
        if value.is_null() || value.as_str() == Some("") {
            return match &self.missing_value {
                Some(m) => self.extract_present(&Cell::from_json(m)),
                None => Err(TimestampError::Missing {
                    column: self.column.clone(),
                }),
            };
        }
        self.extract_present(value)
    }

    fn extract_present(&self, value: &Cell) -> Result<DateTime<Utc>, TimestampError> {
        self.parse(value)
            .ok_or_else(|| TimestampError::Unparseable {
                value: value.to_string(),
                format: self.format.clone(),
            })
    }

    fn parse(&self, v: &Cell) -> Option<DateTime<Utc>> {
        let millis = |ms: f64| Utc.timestamp_millis_opt(ms as i64).single();
        match self.format.as_str() {
            "iso" => parse_instant(v.as_str()?),
            "millis" => match v {
                Cell::Long(l) => Utc.timestamp_millis_opt(*l).single(),
                _ => millis(v.as_f64()?),
            },
            "posix" => millis(v.as_f64()? * 1000.0),
            "micro" => millis(v.as_f64()? / 1000.0),
            "nano" => match v {
                Cell::Long(l) => Utc.timestamp_millis_opt(l / 1_000_000).single(),
                _ => millis(v.as_f64()? / 1_000_000.0),
            },
            "auto" => match v {
                Cell::Long(l) => Utc.timestamp_millis_opt(*l).single(),
                Cell::Double(d) => millis(*d),
                Cell::Str(s) if s.chars().all(|c| c.is_ascii_digit()) => {
                    Utc.timestamp_millis_opt(s.parse().ok()?).single()
                }
                Cell::Str(s) => parse_instant(s),
                _ => None,
            },
            pattern => {
                let s = v.as_str()?;
                let f = joda_to_chrono(pattern);
                if let Ok(t) = DateTime::parse_from_str(s, &f) {
                    return Some(t.with_timezone(&Utc));
                }
                if let Ok(t) = NaiveDateTime::parse_from_str(s, &f) {
                    return Some(t.and_utc());
                }
                chrono::NaiveDate::parse_from_str(s, &f)
                    .ok()?
                    .and_hms_opt(0, 0, 0)
                    .map(|t| t.and_utc())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(format: &str) -> TimestampSpec {
        TimestampSpec {
            column: "t".into(),
            format: format.into(),
            missing_value: None,
        }
    }

    fn iso(t: DateTime<Utc>) -> String {
        drover_core::time::to_iso(t)
    }

    #[test]
    fn reads_every_format() {
        assert_eq!(
            iso(spec("iso")
                .extract(&Cell::from_json(&json!("2018-01-01T01:01:35Z")))
                .unwrap()),
            "2018-01-01T01:01:35.000Z"
        );
        assert_eq!(
            iso(spec("millis")
                .extract(&Cell::from_json(&json!(1514768495000i64)))
                .unwrap()),
            "2018-01-01T01:01:35.000Z"
        );
        assert_eq!(
            iso(spec("posix")
                .extract(&Cell::from_json(&json!("1514768495")))
                .unwrap()),
            "2018-01-01T01:01:35.000Z"
        );
        assert_eq!(
            iso(spec("nano")
                .extract(&Cell::from_json(&json!(1514768495000000000i64)))
                .unwrap()),
            "2018-01-01T01:01:35.000Z"
        );
        assert_eq!(
            iso(spec("auto")
                .extract(&Cell::from_json(&json!("2018-01-01T01:01:35Z")))
                .unwrap()),
            "2018-01-01T01:01:35.000Z"
        );
        assert_eq!(
            iso(spec("auto")
                .extract(&Cell::from_json(&json!(1514768495000i64)))
                .unwrap()),
            "2018-01-01T01:01:35.000Z"
        );
        assert_eq!(
            iso(spec("yyyy-MM-dd HH:mm:ss")
                .extract(&Cell::from_json(&json!("2018-01-01 01:01:35")))
                .unwrap()),
            "2018-01-01T01:01:35.000Z"
        );
        assert_eq!(
            iso(spec("dd/MM/yyyy")
                .extract(&Cell::from_json(&json!("02/01/2018")))
                .unwrap()),
            "2018-01-02T00:00:00.000Z"
        );
    }

    #[test]
    fn missing_and_bad_values() {
        assert_eq!(
            spec("iso").extract(&Cell::Missing),
            Err(TimestampError::Missing { column: "t".into() })
        );
        assert!(matches!(
            spec("iso").extract(&Cell::from_json(&json!("yesterday"))),
            Err(TimestampError::Unparseable { .. })
        ));
        let with_default = TimestampSpec {
            missing_value: Some(json!("2010-01-01T00:00:00Z")),
            ..spec("iso")
        };
        assert_eq!(
            iso(with_default.extract(&Cell::Missing).unwrap()),
            "2010-01-01T00:00:00.000Z"
        );
        assert!(spec("???").validate().is_err());
    }
}
