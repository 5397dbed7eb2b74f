//! Which time chunks of a data source automatic compaction rewrites, as a pure function of its
//! used segments, its config and the time: newest first, leaving out the latest
//! `skipOffsetFromLatest`, chunks already compacted as configured, and chunks too large.

use drover_core::granularity::Granularity;
use drover_core::interval::Interval;
use drover_core::period::CalendarPeriod;
use drover_core::segment::DataSegment;
use serde_json::Value;

/// One time chunk and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub interval: Interval,
    pub segments: usize,
    pub bytes: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// To compact, newest first.
    pub due: Vec<Chunk>,
    /// Compacted as configured already.
    pub compacted: Vec<Chunk>,
    /// Too large (`inputSegmentSizeBytes`), or segments of mixed granularities with no target.
    pub skipped: Vec<Chunk>,
}

/// The plan for `used`, compacting into `granularity` (or the segments' own when `None`) with
/// the compaction state `desired`.
pub fn plan(
    used: &[DataSegment],
    granularity: Option<Granularity>,
    desired: &Value,
    skip_offset: CalendarPeriod,
    max_input_bytes: u64,
) -> Plan {
    let mut out = Plan::default();
    let Some(latest) = used.iter().map(|s| s.interval.end).max() else {
        return out;
    };
    // Druid counts the offset back from the end of the newest segment, not from now, and leaves
    // out every chunk that touches that last stretch.
    let recent = Interval {
        start: skip_offset.before(latest),
        end: latest,
    };
    // Chunks: a segment's bucket of the target granularity (or its own interval), merged where
    // they overlap, so that every segment lies inside exactly one chunk.
    let mut chunks: Vec<(Interval, Vec<&DataSegment>)> = Vec::new();
    let mut sorted: Vec<&DataSegment> = used.iter().collect();
    sorted.sort_by_key(|s| (s.interval.start, s.interval.end));
    for s in sorted {
        let span = granularity.map_or(s.interval, |g| g.cover(&s.interval));
        match chunks.last_mut() {
            Some((iv, members)) if span.start < iv.end => {
                iv.end = iv.end.max(span.end);
                members.push(s);
            }
            _ => chunks.push((span, vec![s])),
        }
    }
    for (interval, members) in chunks.into_iter().rev() {
        if recent.start < recent.end && interval.overlaps(&recent) {
            continue;
        }
        let chunk = Chunk {
            interval,
            segments: members.len(),
            bytes: members.iter().map(|s| s.size).sum(),
        };
        let mixed = granularity.is_none() && members.iter().any(|s| s.interval != interval);
        if members
            .iter()
            .all(|s| s.last_compaction_state.as_ref() == Some(desired))
        {
            out.compacted.push(chunk);
        } else if chunk.bytes > max_input_bytes || mixed {
            out.skipped.push(chunk);
        } else {
            out.due.push(chunk);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn segment(interval: &str, partition: u32, state: Option<Value>) -> DataSegment {
        let mut s: DataSegment = serde_json::from_value(json!({
            "dataSource": "wiki", "interval": interval, "version": "v1",
            "loadSpec": {}, "dimensions": "", "metrics": "",
            "shardSpec": {"type": "numbered", "partitionNum": partition, "partitions": 0},
            "size": 100
        }))
        .unwrap();
        s.last_compaction_state = state;
        s
    }

    #[test]
    fn small_hourly_segments_are_due_by_day_newest_first_except_the_latest() {
        let mut used = Vec::new();
        for day in 10..13 {
            for hour in 0..3 {
                let iv = format!(
                    "2015-09-{day}T{hour:02}:00:00Z/2015-09-{day}T{:02}:00:00Z",
                    hour + 1
                );
                used.push(segment(&iv, 0, None));
                used.push(segment(&iv, 1, None));
            }
        }
        let desired = json!({"granularitySpec": {"segmentGranularity": "DAY"}});
        let skip = CalendarPeriod::parse("P1D").unwrap();
        let p = plan(&used, Some(Granularity::Day), &desired, skip, u64::MAX);
        // The newest segment ends 2015-09-12T03:00; a day back is 09-11T03:00: 09-11 and 09-12
        // are too recent, 09-10 is due.
        assert_eq!(p.due.len(), 1);
        assert_eq!(
            p.due[0].interval.to_string(),
            "2015-09-10T00:00:00.000Z/2015-09-11T00:00:00.000Z"
        );
        assert_eq!((p.due[0].segments, p.due[0].bytes), (6, 600));
        let p = plan(
            &used,
            Some(Granularity::Day),
            &desired,
            CalendarPeriod::parse("PT0S").unwrap(),
            u64::MAX,
        );
        assert_eq!(p.due.len(), 3);
        assert!(
            p.due[0].interval.start > p.due[1].interval.start,
            "newest first"
        );
        // Too large: skipped.
        let p = plan(
            &used,
            Some(Granularity::Day),
            &desired,
            CalendarPeriod::parse("PT0S").unwrap(),
            500,
        );
        assert_eq!((p.due.len(), p.skipped.len()), (0, 3));
    }

    #[test]
    fn chunks_compacted_as_configured_are_left_alone() {
        let desired = json!({"granularitySpec": {"segmentGranularity": "DAY"}});
        let used = [
            segment("2015-09-10/2015-09-11", 0, Some(desired.clone())),
            segment("2015-09-11/2015-09-12", 0, Some(json!({"other": 1}))),
            segment("2015-09-12/2015-09-13", 0, None),
        ];
        let p = plan(
            &used,
            Some(Granularity::Day),
            &desired,
            CalendarPeriod::parse("PT0S").unwrap(),
            u64::MAX,
        );
        assert_eq!(p.compacted.len(), 1);
        assert_eq!(p.due.len(), 2);
        // Keeping the segments' own granularity: mixed granularities in a chunk are skipped.
        let mixed = [
            segment("2015-09-10/2015-09-11", 0, None),
            segment("2015-09-10T05:00:00Z/2015-09-10T06:00:00Z", 0, None),
        ];
        let p = plan(
            &mixed,
            None,
            &desired,
            CalendarPeriod::parse("PT0S").unwrap(),
            u64::MAX,
        );
        assert_eq!((p.due.len(), p.skipped.len()), (0, 1));
    }
}
