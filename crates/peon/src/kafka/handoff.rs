//! When a reading task asks for a checkpoint (see docs/architecture.md, Druid's `isPushRequired` and
//! `intermediateHandoffPeriod`): the open sequence is closed and published while reading goes
//! on, so a long task neither holds unbounded rows nor keeps them unqueryable for its whole
//! `taskDuration`. Pure, so the thresholds are tested on their own.

use std::time::Duration;

/// What the open sequence and the task hold now.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// Input rows in the open sequence (counted before rollup, so a checkpoint comes no later
    /// than Druid's, which counts rows after rollup).
    pub rows_in_open: u64,
    /// Input rows in every unpublished sequence.
    pub rows_total: u64,
    /// How long the open sequence has been reading.
    pub open_for: Duration,
}

/// The limits, from the task's tuningConfig.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rows_per_segment: u64,
    pub max_total_rows: u64,
    pub intermediate_handoff_period: Option<Duration>,
}

/// Why the open sequence should be checkpointed now, if it should.
pub fn checkpoint_reason(held: Held, limits: Limits) -> Option<String> {
    if held.rows_in_open >= limits.max_rows_per_segment {
        return Some(format!(
            "holds {} rows (maxRowsPerSegment {})",
            held.rows_in_open, limits.max_rows_per_segment
        ));
    }
    if held.rows_total >= limits.max_total_rows {
        return Some(format!(
            "is open while the task holds {} unpublished rows (maxTotalRows {})",
            held.rows_total, limits.max_total_rows
        ));
    }
    match limits.intermediate_handoff_period {
        Some(p) if held.open_for >= p => Some(format!(
            "has read for {:.1} s (intermediateHandoffPeriod {:.1} s)",
            held.open_for.as_secs_f64(),
            p.as_secs_f64()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_rows_per_segment: 1000,
        max_total_rows: 2500,
        intermediate_handoff_period: Some(Duration::from_secs(60)),
    };

    fn held(rows_in_open: u64, rows_total: u64, secs: u64) -> Held {
        Held {
            rows_in_open,
            rows_total,
            open_for: Duration::from_secs(secs),
        }
    }

    #[test]
    fn below_every_limit_no_checkpoint() {
        assert_eq!(checkpoint_reason(held(999, 2499, 59), LIMITS), None);
        assert_eq!(checkpoint_reason(held(0, 0, 0), LIMITS), None);
    }

    #[test]
    fn max_rows_per_segment_counts_the_open_sequence() {
        let why = checkpoint_reason(held(1000, 1000, 0), LIMITS).unwrap();
        assert!(why.contains("maxRowsPerSegment 1000"), "{why}");
    }

    #[test]
    fn max_total_rows_counts_every_unpublished_sequence() {
        let why = checkpoint_reason(held(10, 2500, 0), LIMITS).unwrap();
        assert!(why.contains("maxTotalRows 2500"), "{why}");
    }

    #[test]
    fn intermediate_handoff_period_is_per_sequence_and_optional() {
        let why = checkpoint_reason(held(1, 1, 60), LIMITS).unwrap();
        assert!(why.contains("intermediateHandoffPeriod"), "{why}");
        let never = Limits {
            intermediate_handoff_period: None,
            ..LIMITS
        };
        assert_eq!(checkpoint_reason(held(1, 1, 1_000_000), never), None);
    }
}
