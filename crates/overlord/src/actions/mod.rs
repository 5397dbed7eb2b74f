//! Task actions (see docs/api.md): what peons ask the leader to do over
//! `POST /druid/indexer/v1/action`. The JSON shapes are Druid's; the decisions that need no I/O
//! (which intervals a batch task locks, which segment id an allocation gets, which segments a
//! publish overshadows) are pure functions here, and the TaskQueue's task carries them out.

use drover_core::granularity::Granularity;
use drover_core::interval::Interval;
use drover_core::lock::LockType;
use drover_core::segment::DataSegment;
use drover_metadata::PendingSegment;
use serde::Deserialize;
use serde_json::Value;

/// The body of `POST /action`: `{"task": <task JSON>, "action": <action>}`.
#[derive(Debug, Deserialize)]
pub struct ActionHolder {
    pub task: Value,
    pub action: TaskAction,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum TaskAction {
    /// Waits up to `timeoutMs` (0: the task's `taskLockTimeout`) for a time-chunk lock.
    #[serde(rename = "lockAcquire")]
    LockAcquire {
        interval: Interval,
        #[serde(default)]
        lock_type: Option<LockType>,
        #[serde(default)]
        timeout_ms: u64,
    },
    #[serde(rename = "lockTryAcquire")]
    LockTryAcquire {
        interval: Interval,
        #[serde(default)]
        lock_type: Option<LockType>,
    },
    #[serde(rename = "lockList")]
    LockList {},
    #[serde(rename = "lockRelease")]
    LockRelease { interval: Interval },
    #[serde(rename = "segmentAllocate")]
    SegmentAllocate {
        data_source: String,
        timestamp: String,
        preferred_segment_granularity: Granularity,
        sequence_name: String,
        #[serde(default)]
        previous_segment_id: Option<String>,
    },
    #[serde(rename = "segmentTransactionalInsert")]
    SegmentTransactionalInsert {
        segments: Vec<DataSegment>,
        #[serde(default)]
        segments_to_be_overwritten: Option<Vec<DataSegment>>,
        #[serde(default)]
        start_metadata: Option<Value>,
        #[serde(default)]
        end_metadata: Option<Value>,
    },
    /// Unused segments wholly inside `interval` (of `versions`), oldest first, at most `limit`.
    #[serde(rename = "retrieveUnusedSegments")]
    RetrieveUnusedSegments {
        data_source: String,
        interval: Interval,
        #[serde(default)]
        versions: Option<Vec<String>>,
        #[serde(default)]
        limit: Option<u64>,
        /// Only segments marked unused at or before this time (an automatic kill's grace).
        #[serde(default)]
        max_used_status_last_updated_time: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Deletes the rows of these segments, if they are still unused; answers the ids deleted (a
    /// Drover addition: the task removes only their files).
    #[serde(rename = "segmentNuke")]
    SegmentNuke { segments: Vec<DataSegment> },
    /// Marks the used segments wholly inside `interval` (of `versions`) unused.
    #[serde(rename = "markSegmentsAsUnused")]
    MarkSegmentsAsUnused {
        data_source: String,
        interval: Interval,
        #[serde(default)]
        versions: Option<Vec<String>>,
    },
    #[serde(rename = "segmentListUsed")]
    SegmentListUsed {
        data_source: String,
        #[serde(default)]
        interval: Option<Interval>,
        #[serde(default)]
        intervals: Option<Vec<Interval>>,
    },
}

/// The intervals an ingestion task locks before it runs: its `granularitySpec.intervals`, each
/// widened to whole `segmentGranularity` buckets, then merged where they touch (Druid condenses).
pub fn lock_intervals(intervals: &[Interval], segment: Granularity) -> Vec<Interval> {
    let mut covered: Vec<Interval> = intervals.iter().map(|i| segment.cover(i)).collect();
    covered.sort_by_key(|i| i.start);
    let mut out: Vec<Interval> = Vec::new();
    for i in covered {
        match out.last_mut() {
            Some(last) if i.start <= last.end => last.end = last.end.max(i.end),
            _ => out.push(i),
        }
    }
    out
}

/// A segment cannot be allocated where segments of another granularity already are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot allocate a segment in [{bucket}]: segments of interval [{other}] overlap it with a \
     different segment granularity"
)]
pub struct MixedGranularity {
    pub bucket: Interval,
    pub other: Interval,
}

/// Where an allocated segment goes in `bucket`: appended to the segments already there (same
/// version, next partition number), or partition 0 of the lock's version in an empty bucket.
pub fn allocate(
    bucket: &Interval,
    used: &[DataSegment],
    pending: &[PendingSegment],
    lock_version: &str,
) -> Result<(String, u32), MixedGranularity> {
    let existing: Vec<(&Interval, &str, u32)> = used
        .iter()
        .map(|s| (&s.interval, s.version.as_str(), s.partition_num()))
        .chain(
            pending
                .iter()
                .map(|p| (&p.interval, p.version.as_str(), p.partition_num())),
        )
        .filter(|(i, _, _)| i.overlaps(bucket))
        .collect();
    if let Some((other, _, _)) = existing.iter().find(|(i, _, _)| *i != bucket) {
        return Err(MixedGranularity {
            bucket: *bucket,
            other: **other,
        });
    }
    let Some(version) = existing.iter().map(|(_, v, _)| *v).max() else {
        return Ok((lock_version.to_string(), 0));
    };
    let next = existing
        .iter()
        .filter(|(_, v, _)| *v == version)
        .map(|(_, _, p)| p + 1)
        .max()
        .unwrap_or(0);
    Ok((version.to_string(), next))
}

/// The used segments that a publish of `new` overshadows: an older version inside the interval
/// of a new segment.
pub fn overshadowed(new: &[DataSegment], used: &[DataSegment]) -> Vec<String> {
    used.iter()
        .filter(|old| {
            new.iter().any(|n| {
                n.data_source == old.data_source
                    && n.interval.encloses(&old.interval)
                    && n.version > old.version
            })
        })
        .map(DataSegment::id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_core::segment::numbered_shard_spec;

    fn iv(s: &str) -> Interval {
        Interval::parse(s).unwrap()
    }

    fn seg(interval: &str, version: &str, partition: u32) -> DataSegment {
        DataSegment {
            data_source: drover_core::DataSource::new("wiki").unwrap(),
            interval: iv(interval),
            version: version.into(),
            load_spec: Value::Null,
            dimensions: String::new(),
            metrics: String::new(),
            shard_spec: numbered_shard_spec(partition),
            binary_version: 9,
            size: 0,
            identifier: String::new(),
            last_compaction_state: None,
        }
    }

    #[test]
    fn lock_intervals_are_aligned_and_condensed() {
        let got = lock_intervals(
            &[
                iv("2015-09-12T03:00Z/2015-09-12T05:00Z"),
                iv("2015-09-13/2015-09-14"),
                iv("2015-09-20/2015-09-21"),
            ],
            Granularity::Day,
        );
        assert_eq!(
            got,
            [iv("2015-09-12/2015-09-14"), iv("2015-09-20/2015-09-21")]
        );
    }

    #[test]
    fn allocation_appends_after_existing_partitions() {
        let day = iv("2024-01-01/2024-01-02");
        assert_eq!(allocate(&day, &[], &[], "v9").unwrap(), ("v9".into(), 0));
        let used = [
            seg("2024-01-01/2024-01-02", "v1", 0),
            seg("2024-01-01/2024-01-02", "v1", 1),
        ];
        assert_eq!(allocate(&day, &used, &[], "v9").unwrap(), ("v1".into(), 2));
        let pending = [PendingSegment {
            data_source: "wiki".into(),
            interval: day,
            version: "v1".into(),
            shard_spec: numbered_shard_spec(4),
        }];
        assert_eq!(
            allocate(&day, &used, &pending, "v9").unwrap(),
            ("v1".into(), 5)
        );
        let month = [seg("2024-01-01/2024-02-01", "v1", 0)];
        assert!(allocate(&day, &month, &[], "v9")
            .unwrap_err()
            .to_string()
            .contains("granularity"));
    }

    #[test]
    fn newer_versions_overshadow_older_ones_inside_them() {
        let used = [
            seg("2024-01-01/2024-01-02", "v1", 0),
            seg("2024-01-01/2024-01-02", "v1", 1),
            seg("2024-01-02/2024-01-03", "v1", 0),
        ];
        let new = [seg("2024-01-01/2024-01-02", "v2", 0)];
        assert_eq!(overshadowed(&new, &used), [used[0].id(), used[1].id()]);
        let older = [seg("2024-01-01/2024-01-02", "v0", 0)];
        assert!(overshadowed(&older, &used).is_empty());
    }

    #[test]
    fn parses_druid_action_json() {
        let h: ActionHolder = serde_json::from_str(
            r#"{"task":{"type":"index"},"action":{"type":"lockAcquire","lockType":"EXCLUSIVE",
                "interval":"2024-01-01/2024-01-02","timeoutMs":0}}"#,
        )
        .unwrap();
        assert!(matches!(
            h.action,
            TaskAction::LockAcquire { timeout_ms: 0, .. }
        ));
        let a: TaskAction = serde_json::from_str(
            r#"{"type":"segmentAllocate","dataSource":"wiki","timestamp":"2024-01-01T05:00:00Z",
                "queryGranularity":"NONE","preferredSegmentGranularity":"DAY","sequenceName":"s",
                "previousSegmentId":null,"skipSegmentLineageCheck":false}"#,
        )
        .unwrap();
        assert!(matches!(a, TaskAction::SegmentAllocate { .. }));
        let nuke: TaskAction =
            serde_json::from_str(r#"{"type":"segmentNuke","segments":[]}"#).unwrap();
        assert!(matches!(nuke, TaskAction::SegmentNuke { .. }));
        let bad =
            serde_json::from_str::<TaskAction>(r#"{"type":"segmentMetadataUpdate"}"#).unwrap_err();
        assert!(bad.to_string().contains("segmentMetadataUpdate"), "{bad}");
    }
}
