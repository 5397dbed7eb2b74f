//! Druid's row meters (`rowStats.movingAverages`): for each row count, the one-, five- and
//! fifteen-minute exponentially weighted rates in rows per second, ticked every five seconds
//! as the Dropwizard meters Druid uses are. Pure: the caller says what time it is.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::row_builder::RowStats;

/// How often the averages take in what was counted (Dropwizard's tick).
pub const TICK: Duration = Duration::from_secs(5);

/// One exponentially weighted rate.
#[derive(Debug, Clone, Copy)]
struct Ewma {
    alpha: f64,
    /// Rows per second; `None` until the first tick.
    rate: Option<f64>,
}

impl Ewma {
    fn over_minutes(minutes: f64) -> Ewma {
        Ewma {
            alpha: 1.0 - (-TICK.as_secs_f64() / 60.0 / minutes).exp(),
            rate: None,
        }
    }

    fn tick(&mut self, counted: u64) {
        let instant = counted as f64 / TICK.as_secs_f64();
        self.rate = Some(match self.rate {
            None => instant,
            Some(rate) => rate + self.alpha * (instant - rate),
        });
    }

    fn rate(&self) -> f64 {
        self.rate.unwrap_or(0.0)
    }
}

/// The four counts of [`RowStats`], each with its own rate.
#[derive(Debug, Clone, Copy)]
struct Rates([Ewma; 4]);

impl Rates {
    fn over_minutes(minutes: f64) -> Rates {
        Rates([Ewma::over_minutes(minutes); 4])
    }

    fn json(&self) -> Value {
        let [processed, with_error, thrown_away, unparseable] = self.0.map(|e| e.rate());
        json!({
            "processed": processed,
            "processedWithError": with_error,
            "thrownAway": thrown_away,
            "unparseable": unparseable,
        })
    }
}

fn counts(s: &RowStats) -> [u64; 4] {
    [
        s.processed,
        s.processed_with_error,
        s.thrown_away,
        s.unparseable,
    ]
}

#[derive(Debug, Clone)]
pub struct RowMeters {
    windows: [(&'static str, Rates); 3],
    /// The totals already counted into a tick.
    counted: RowStats,
    last_tick: Instant,
}

impl RowMeters {
    pub fn new(now: Instant) -> RowMeters {
        RowMeters {
            windows: [
                ("1m", Rates::over_minutes(1.0)),
                ("5m", Rates::over_minutes(5.0)),
                ("15m", Rates::over_minutes(15.0)),
            ],
            counted: RowStats::default(),
            last_tick: now,
        }
    }

    /// Takes in the running totals as of `now`. Every whole tick since the last one is applied:
    /// the first gets everything counted since, later ones nothing (as Dropwizard does when
    /// nobody looked for a while).
    pub fn observe(&mut self, now: Instant, totals: RowStats) {
        let mut fresh: [u64; 4] = {
            let (new, old) = (counts(&totals), counts(&self.counted));
            std::array::from_fn(|i| new[i].saturating_sub(old[i]))
        };
        let mut ticked = false;
        while now.saturating_duration_since(self.last_tick) >= TICK {
            for (_, rates) in &mut self.windows {
                for (ewma, n) in rates.0.iter_mut().zip(fresh) {
                    ewma.tick(n);
                }
            }
            fresh = [0; 4];
            self.last_tick += TICK;
            ticked = true;
        }
        if ticked {
            self.counted = totals;
        }
    }

    /// Druid's shape: `{"1m": {"processed": …, …}, "5m": …, "15m": …}`.
    pub fn json(&self) -> Value {
        Value::Object(
            self.windows
                .iter()
                .map(|(label, rates)| (label.to_string(), rates.json()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processed(n: u64) -> RowStats {
        RowStats {
            processed: n,
            ..RowStats::default()
        }
    }

    fn rate(m: &RowMeters, window: &str) -> f64 {
        m.json()[window]["processed"].as_f64().unwrap()
    }

    #[test]
    fn nothing_counts_before_the_first_tick() {
        let start = Instant::now();
        let mut m = RowMeters::new(start);
        m.observe(start + Duration::from_secs(4), processed(1000));
        assert_eq!(rate(&m, "1m"), 0.0);
        assert_eq!(m.json()["15m"]["unparseable"], 0.0);
    }

    #[test]
    fn a_steady_rate_is_the_rate_in_every_window() {
        let start = Instant::now();
        let mut m = RowMeters::new(start);
        for tick in 1..=200u64 {
            m.observe(start + TICK * tick as u32, processed(tick * 500));
        }
        for window in ["1m", "5m", "15m"] {
            assert!((rate(&m, window) - 100.0).abs() < 1e-6, "{window}");
        }
    }

    #[test]
    fn after_a_stop_the_short_window_falls_first() {
        let start = Instant::now();
        let mut m = RowMeters::new(start);
        for tick in 1..=12u64 {
            m.observe(start + TICK * tick as u32, processed(tick * 500));
        }
        // One minute with nothing new.
        m.observe(start + TICK * 24, processed(12 * 500));
        let (one, fifteen) = (rate(&m, "1m"), rate(&m, "15m"));
        assert!(one < 40.0, "1m after a quiet minute: {one}");
        assert!(fifteen > 90.0, "15m barely moves: {fifteen}");
        assert!(one < rate(&m, "5m") && rate(&m, "5m") < fifteen);
    }

    #[test]
    fn rows_counted_between_ticks_go_to_the_next_tick_once() {
        let start = Instant::now();
        let mut m = RowMeters::new(start);
        m.observe(start + Duration::from_secs(2), processed(250));
        m.observe(start + Duration::from_secs(5), processed(500));
        assert!((rate(&m, "1m") - 100.0).abs() < 1e-9);
        // The same totals again at the next tick: nothing new, the rate decays.
        m.observe(start + Duration::from_secs(10), processed(500));
        assert!(rate(&m, "1m") < 100.0);
    }
}
