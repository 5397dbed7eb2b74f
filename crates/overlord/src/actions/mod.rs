//! Task actions (see docs/api.md): what peons ask the leader to do over
//! `POST /druid/indexer/v1/action`. The JSON shapes are Druid's; the decisions that need no I/O
//! (which intervals a batch task locks, which segment id an allocation gets, which segments a
//! publish overshadows) are pure functions here, and the TaskQueue's task carries them out.

pub mod upgrade;

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
        /// The lock to allocate under; the task's own (`useConcurrentLocks`) when absent.
        #[serde(default)]
        task_lock_type: Option<LockType>,
    },
    /// Also Druid's `segmentTransactionalAppend` and `segmentTransactionalReplace`: how the
    /// segments go in (appended, replacing, or overwriting) follows from the locks that cover
    /// them, whichever name the task uses.
    #[serde(
        rename = "segmentTransactionalInsert",
        alias = "segmentTransactionalAppend",
        alias = "segmentTransactionalReplace"
    )]
    SegmentTransactionalInsert {
        segments: Vec<DataSegment>,
        #[serde(default)]
        segments_to_be_overwritten: Option<Vec<DataSegment>>,
        #[serde(default)]
        start_metadata: Option<Value>,
        #[serde(default)]
        end_metadata: Option<Value>,
        /// A Drover addition for REPLACE publishes: the segments the task read its rows from.
        /// Those appended under its lock are not carried into its version (their rows are in
        /// its segments already).
        #[serde(default)]
        input_segment_ids: Option<Vec<String>>,
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

/// The time chunk a row at `t` is allocated in, as Druid's `SegmentAllocateAction` picks it: the
/// interval of the used segments that contain `t`, whatever their granularity (a compaction may
/// have made the hour a streaming task writes part of a day), else the bucket of the preferred
/// granularity.
pub fn allocation_bucket(
    t: chrono::DateTime<chrono::Utc>,
    preferred: Granularity,
    used: &[DataSegment],
) -> Result<Interval, MixedGranularity> {
    let mut containing = used.iter().map(|s| s.interval).filter(|i| i.contains(t));
    match containing.next() {
        None => Ok(preferred.bucket(t)),
        Some(first) => match containing.find(|i| *i != first) {
            None => Ok(first),
            Some(other) => Err(MixedGranularity {
                bucket: first,
                other,
            }),
        },
    }
}

/// Where an allocated segment goes in `bucket`: appended to the used segments there (their
/// version, next partition number, after pending ones too), or the pending segments' version, or
/// partition 0 of the lock's version in an empty bucket. Refused when used segments of another
/// interval overlap the bucket, or pending ones of another interval at the same or a newer
/// version (older ones are carried into this version when they are published).
pub fn allocate(
    bucket: &Interval,
    used: &[DataSegment],
    pending: &[PendingSegment],
    lock_version: &str,
) -> Result<(String, u32), MixedGranularity> {
    let mixed = |other: &Interval| MixedGranularity {
        bucket: *bucket,
        other: *other,
    };
    if let Some(s) = used
        .iter()
        .find(|s| s.interval.overlaps(bucket) && s.interval != *bucket)
    {
        return Err(mixed(&s.interval));
    }
    let here = |i: &Interval| i == bucket;
    let version = used
        .iter()
        .filter(|s| here(&s.interval))
        .map(|s| s.version.as_str())
        .max()
        .or_else(|| {
            pending
                .iter()
                .filter(|p| here(&p.interval))
                .map(|p| p.version.as_str())
                .max()
        })
        .unwrap_or(lock_version);
    if let Some(p) = pending.iter().find(|p| {
        p.interval.overlaps(bucket) && !here(&p.interval) && p.version.as_str() >= version
    }) {
        return Err(mixed(&p.interval));
    }
    let next = used
        .iter()
        .filter(|s| here(&s.interval) && s.version == version)
        .map(|s| s.partition_num() + 1)
        .chain(
            pending
                .iter()
                .filter(|p| here(&p.interval) && p.version == version)
                .map(|p| p.partition_num() + 1),
        )
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
        // An older pending hour inside the day is carried in when published: no conflict.
        let hour = PendingSegment {
            data_source: "wiki".into(),
            interval: iv("2024-01-01T05:00/2024-01-01T06:00"),
            version: "v0".into(),
            shard_spec: numbered_shard_spec(0),
        };
        assert_eq!(
            allocate(&day, &used, std::slice::from_ref(&hour), "v9").unwrap(),
            ("v1".into(), 2)
        );
        let same_version = PendingSegment {
            version: "v1".into(),
            ..hour
        };
        assert!(allocate(&day, &used, &[same_version], "v9").is_err());
    }

    #[test]
    fn a_row_goes_into_the_chunk_of_the_used_segments_that_contain_it() {
        let t = drover_core::interval::parse_instant("2024-01-01T05:30:00Z").unwrap();
        assert_eq!(
            allocation_bucket(t, Granularity::Hour, &[]).unwrap(),
            iv("2024-01-01T05:00/2024-01-01T06:00")
        );
        let compacted = [seg("2024-01-01/2024-01-02", "v2", 0)];
        assert_eq!(
            allocation_bucket(t, Granularity::Hour, &compacted).unwrap(),
            iv("2024-01-01/2024-01-02")
        );
        let mixed = [
            seg("2024-01-01/2024-01-02", "v1", 0),
            seg("2024-01-01T05:00/2024-01-01T06:00", "v2", 0),
        ];
        assert!(allocation_bucket(t, Granularity::Hour, &mixed).is_err());
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
        let append: TaskAction = serde_json::from_str(
            r#"{"type":"segmentTransactionalAppend","segments":[],"startMetadata":null}"#,
        )
        .unwrap();
        assert!(matches!(
            append,
            TaskAction::SegmentTransactionalInsert { .. }
        ));
        let replace: TaskAction =
            serde_json::from_str(r#"{"type":"segmentTransactionalReplace","segments":[]}"#)
                .unwrap();
        assert!(matches!(
            replace,
            TaskAction::SegmentTransactionalInsert { .. }
        ));
        let nuke: TaskAction =
            serde_json::from_str(r#"{"type":"segmentNuke","segments":[]}"#).unwrap();
        assert!(matches!(nuke, TaskAction::SegmentNuke { .. }));
        let bad =
            serde_json::from_str::<TaskAction>(r#"{"type":"segmentMetadataUpdate"}"#).unwrap_err();
        assert!(bad.to_string().contains("segmentMetadataUpdate"), "{bad}");
    }
}
