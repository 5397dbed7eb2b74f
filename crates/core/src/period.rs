//! ISO-8601 durations as Druid's Joda `Period` reads them in supervisor specs (`PT1H`, `PT30S`,
//! `P1D`, `PT0.5S`, `P2147483647D`). Years and months have no fixed length, so they are refused
//! rather than guessed.

use std::time::Duration;

/// Parses `PnW`, `PnDTnHnMnS` (any part optional, seconds may be fractional).
/// Why a text is not a period this parser takes; the message names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PeriodError(pub String);

impl From<String> for PeriodError {
    fn from(message: String) -> Self {
        PeriodError(message)
    }
}

impl From<&str> for PeriodError {
    fn from(message: &str) -> Self {
        PeriodError(message.to_string())
    }
}

pub fn parse_period(s: &str) -> Result<Duration, PeriodError> {
    let bad = || {
        PeriodError(format!(
            "[{s}] is not an ISO-8601 period such as PT1H, PT30S or P1D"
        ))
    };
    let rest = s.strip_prefix('P').ok_or_else(bad)?;
    if rest.is_empty() {
        return Err(bad());
    }
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let mut secs = 0f64;
    let mut parts = 0;
    let mut add = |text: &str, units: &[(char, f64)]| -> Result<(), PeriodError> {
        let mut number = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            let Some((_, scale)) = units.iter().find(|(u, _)| *u == c) else {
                return Err(if c == 'Y' || c == 'M' {
                    PeriodError(format!("[{s}]: years and months have no fixed length; use days, hours, minutes or seconds"))
                } else {
                    bad()
                });
            };
            let n: f64 = number.parse().map_err(|_| bad())?;
            secs += n * scale;
            parts += 1;
            number.clear();
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    add(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(t) = time {
        add(t, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if parts == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs.min(u64::MAX as f64 / 2.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_periods_supervisor_specs_use() {
        assert_eq!(parse_period("PT1H").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_period("PT10M").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_period("PT0.5S").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_period("P1DT1M").unwrap(), Duration::from_secs(86_460));
        assert_eq!(parse_period("P2W").unwrap(), Duration::from_secs(1_209_600));
        assert!(parse_period("P2147483647D").unwrap() > Duration::from_secs(1 << 40));
    }

    #[test]
    fn refuses_what_is_not_a_fixed_period() {
        for bad in ["", "P", "PT", "1H", "PT1X", "P1M", "P1Y", "PTH", "PT1"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        assert!(parse_period("P1M").unwrap_err().0.contains("months"));
    }
}
