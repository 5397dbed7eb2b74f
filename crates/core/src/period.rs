//! ISO-8601 durations as Druid's Joda `Period` reads them in supervisor specs (`PT1H`, `PT30S`,
//! `P1D`, `PT0.5S`, `P2147483647D`). Years and months have no fixed length, so they are refused
//! rather than guessed.

use std::time::Duration;

use chrono::{DateTime, Months, Utc};

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
    let period = CalendarPeriod::parse(s)?;
    if period.months > 0 {
        return Err(PeriodError(format!(
            "[{s}]: years and months have no fixed length; use days, hours, minutes or seconds"
        )));
    }
    Ok(period.exact)
}

/// A period that may count years and months, as retention rules use (`P1M`, `P1Y`): those
/// are calendar units, applied to a date rather than turned into seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarPeriod {
    /// Years count as 12 months.
    pub months: u32,
    /// Weeks, days, hours, minutes and seconds.
    pub exact: Duration,
}

impl CalendarPeriod {
    /// Parses `PnYnMnWnDTnHnMnS` (any part optional, seconds may be fractional).
    pub fn parse(s: &str) -> Result<CalendarPeriod, PeriodError> {
        let bad = || {
            PeriodError(format!(
                "[{s}] is not an ISO-8601 period such as PT1H, PT30S, P1D or P1M"
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
        let mut months = 0f64;
        let mut parts = 0;
        // Each unit: (letter, seconds, months); exactly one of the two is non-zero.
        let mut add = |text: &str, units: &[(char, f64, f64)]| -> Result<(), PeriodError> {
            let mut number = String::new();
            for c in text.chars() {
                if c.is_ascii_digit() || c == '.' || c == ',' {
                    number.push(if c == ',' { '.' } else { c });
                    continue;
                }
                let (_, scale, month_scale) =
                    units.iter().find(|(u, _, _)| *u == c).ok_or_else(bad)?;
                let n: f64 = number.parse().map_err(|_| bad())?;
                if *month_scale > 0.0 && n.fract() != 0.0 {
                    return Err(PeriodError(format!(
                        "[{s}]: years and months must be whole numbers"
                    )));
                }
                secs += n * scale;
                months += n * month_scale;
                parts += 1;
                number.clear();
            }
            if number.is_empty() {
                Ok(())
            } else {
                Err(bad())
            }
        };
        add(
            date,
            &[
                ('Y', 0.0, 12.0),
                ('M', 0.0, 1.0),
                ('W', 604_800.0, 0.0),
                ('D', 86_400.0, 0.0),
            ],
        )?;
        if let Some(t) = time {
            add(t, &[('H', 3_600.0, 0.0), ('M', 60.0, 0.0), ('S', 1.0, 0.0)])?;
        }
        if parts == 0 {
            return Err(bad());
        }
        Ok(CalendarPeriod {
            months: months.min(u32::MAX as f64) as u32,
            exact: Duration::from_secs_f64(secs.min(u64::MAX as f64 / 2.0)),
        })
    }

    /// `t` minus this period (months on the calendar, then the rest); the earliest instant
    /// when it would go before the year 1.
    pub fn before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let earliest = DateTime::<Utc>::MIN_UTC;
        let Some(t) = t.checked_sub_months(Months::new(self.months)) else {
            return earliest;
        };
        chrono::Duration::from_std(self.exact)
            .ok()
            .and_then(|d| t.checked_sub_signed(d))
            .unwrap_or(earliest)
    }
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

    #[test]
    fn calendar_periods_count_months_on_the_calendar() {
        let p = CalendarPeriod::parse("P1M").unwrap();
        assert_eq!((p.months, p.exact), (1, Duration::ZERO));
        let t = crate::time::parse_iso("2024-03-31T12:00:00Z").unwrap();
        assert_eq!(crate::time::to_iso(p.before(t)), "2024-02-29T12:00:00.000Z");
        let p = CalendarPeriod::parse("P1Y2M3DT4H").unwrap();
        assert_eq!(p.months, 14);
        assert_eq!(p.exact, Duration::from_secs(3 * 86_400 + 4 * 3600));
        assert_eq!(
            CalendarPeriod::parse("P1D").unwrap().before(t),
            crate::time::parse_iso("2024-03-30T12:00:00Z").unwrap()
        );
        assert!(CalendarPeriod::parse("P1.5M").is_err());
        assert!(CalendarPeriod::parse("P").is_err());
        assert!(CalendarPeriod::parse("P1Q").is_err());
    }
}
