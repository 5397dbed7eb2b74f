//! Small serde types for reading Druid's specs strictly: a wrong type is an error naming the
//! field (through `serde_path_to_error`), never a silent default.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A boolean that is `true` or `false` and nothing else (serde's own message for a string is
/// "expected a boolean"; Druid users read "must be true or false" more easily).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Flag(b)),
            other => Err(serde::de::Error::custom(format!(
                "must be true or false, got {other}"
            ))),
        }
    }
}

/// `Some(flag)` or `default`.
pub fn flag(value: Option<Flag>, default: bool) -> bool {
    value.map_or(default, |Flag(b)| b)
}

/// A duration as Druid's Joda `Period` reads it: an ISO-8601 period (`PT1H`), or for some
/// settings a number of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WirePeriod(pub Duration);

impl<'de> Deserialize<'de> for WirePeriod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => crate::period::parse_period(&s)
                .map(WirePeriod)
                .map_err(|e| serde::de::Error::custom(e.0)),
            Value::Number(n) => n
                .as_u64()
                .map(|ms| WirePeriod(Duration::from_millis(ms)))
                .ok_or_else(|| {
                    serde::de::Error::custom("must be a non-negative number of milliseconds")
                }),
            _ => Err(serde::de::Error::custom(
                "must be an ISO-8601 period such as PT1H",
            )),
        }
    }
}

/// `Some(period)` or `default`.
pub fn period(value: Option<WirePeriod>, default: Duration) -> Duration {
    value.map_or(default, |WirePeriod(d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_periods_are_strict() {
        let f: Flag = serde_json::from_str("true").unwrap();
        assert_eq!(f, Flag(true));
        let e = serde_json::from_str::<Flag>("\"yes\"").unwrap_err();
        assert!(e.to_string().contains("must be true or false"), "{e}");
        let p: WirePeriod = serde_json::from_str("\"PT1H\"").unwrap();
        assert_eq!(p.0, Duration::from_secs(3600));
        let p: WirePeriod = serde_json::from_str("1500").unwrap();
        assert_eq!(p.0, Duration::from_millis(1500));
        assert!(serde_json::from_str::<WirePeriod>("\"ten minutes\"").is_err());
        assert!(serde_json::from_str::<WirePeriod>("-1").is_err());
        assert!(serde_json::from_str::<WirePeriod>("true").is_err());
    }
}
