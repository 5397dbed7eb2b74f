//! The supervisor's arithmetic (see docs/architecture.md), as pure functions: which task group reads
//! a partition, where a new group starts, the end offsets of a group that stops reading, and lag.

use std::collections::BTreeMap;

use drover_core::stream_offsets::StreamOffsets;
use drover_core::TaskGroupId;
use drover_kafka::Offsets;

/// Druid's single-topic rule: partition modulo the task count.
pub fn group_of(partition: i32, task_count: u32) -> TaskGroupId {
    TaskGroupId(partition.unsigned_abs() % task_count.max(1))
}

/// Where each partition of a group starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    /// Where the group that read it before ended.
    Known(i64),
    /// `NOT_SET`: from the stored offsets, else earliest or latest.
    NotSet,
}

/// Why a task group cannot be given start offsets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoStartOffset {
    #[error(
        "the stored offset {stored} of partition {partition} is out of range: Kafka holds \
         offsets {earliest} to {latest}. Reset the supervisor (POST /reset or /resetOffsets) or \
         set resetOffsetAutomatically"
    )]
    OutOfRange {
        partition: i32,
        stored: i64,
        earliest: i64,
        latest: i64,
    },
    #[error("no offsets known for partition {partition}")]
    Unknown { partition: i32 },
}

/// A group's start offsets: known ones first, then the stored offsets, then the stream's earliest
/// or latest (`useEarliestOffset`). A stored offset outside what Kafka still holds is an error,
/// unless `reset_automatically`, which starts again from earliest or latest.
pub fn start_offsets(
    partitions: &BTreeMap<i32, StartFrom>,
    stored: Option<&StreamOffsets>,
    earliest: &Offsets,
    latest: &Offsets,
    use_earliest: bool,
    reset_automatically: bool,
) -> Result<Offsets, NoStartOffset> {
    let mut out = Offsets::new();
    for (p, from) in partitions {
        let default = if use_earliest {
            earliest.get(p)
        } else {
            latest.get(p)
        };
        let offset = match from {
            StartFrom::Known(o) => *o,
            StartFrom::NotSet => match stored.and_then(|s| s.offsets.get(&p.to_string())) {
                Some(o) => {
                    let lo = earliest.get(p).copied().unwrap_or(0);
                    let hi = latest.get(p).copied().unwrap_or(i64::MAX);
                    if (lo..=hi).contains(o) {
                        *o
                    } else if reset_automatically {
                        *default.ok_or(NoStartOffset::Unknown { partition: *p })?
                    } else {
                        return Err(NoStartOffset::OutOfRange {
                            partition: *p,
                            stored: *o,
                            earliest: lo,
                            latest: hi,
                        });
                    }
                }
                None => *default.ok_or(NoStartOffset::Unknown { partition: *p })?,
            },
        };
        out.insert(*p, offset);
    }
    Ok(out)
}

/// The end offsets of a group that stops reading: per partition, the furthest any replica got.
pub fn max_offsets<'a>(replies: impl IntoIterator<Item = &'a Offsets>) -> Offsets {
    let mut out = Offsets::new();
    for r in replies {
        for (p, o) in r {
            let e = out.entry(*p).or_insert(*o);
            *e = (*e).max(*o);
        }
    }
    out
}

/// Lag per partition (may be negative when `latest` is stale) and the aggregate (never below 0).
pub fn lag(latest: &Offsets, current: &Offsets) -> (Offsets, i64) {
    let per: Offsets = current
        .iter()
        .filter_map(|(p, c)| latest.get(p).map(|l| (*p, l - c)))
        .collect();
    let total = per.values().map(|l| (*l).max(0)).sum();
    (per, total)
}

/// What a task's checkpoint request means for its group (see docs/architecture.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointRequest {
    /// The request is for the group's open sequence: close it; the next one gets this id.
    Close { next_sequence: u32 },
    /// The request is for a sequence already closed (a replica asked first): nothing to do.
    AlreadyClosed,
    /// No sequence of the group starts there.
    Unknown,
}

/// Compares the start offsets a task gives for its open sequence with the group's sequences
/// (sequence id → start offsets).
pub fn checkpoint_request(
    checkpoints: &BTreeMap<u32, Offsets>,
    start: &Offsets,
) -> CheckpointRequest {
    match checkpoints.last_key_value() {
        Some((id, open)) if open == start => CheckpointRequest::Close {
            next_sequence: id + 1,
        },
        _ if checkpoints.values().any(|o| o == start) => CheckpointRequest::AlreadyClosed,
        _ => CheckpointRequest::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(pairs: &[(i32, i64)]) -> Offsets {
        pairs.iter().copied().collect()
    }

    #[test]
    fn checkpoint_requests_close_only_the_open_sequence() {
        let checkpoints: BTreeMap<u32, Offsets> =
            [(0, o(&[(0, 0), (1, 0)])), (1, o(&[(0, 10), (1, 12)]))].into();
        assert_eq!(
            checkpoint_request(&checkpoints, &o(&[(0, 10), (1, 12)])),
            CheckpointRequest::Close { next_sequence: 2 }
        );
        assert_eq!(
            checkpoint_request(&checkpoints, &o(&[(0, 0), (1, 0)])),
            CheckpointRequest::AlreadyClosed
        );
        assert_eq!(
            checkpoint_request(&checkpoints, &o(&[(0, 10), (1, 11)])),
            CheckpointRequest::Unknown
        );
        assert_eq!(
            checkpoint_request(&BTreeMap::new(), &o(&[(0, 0)])),
            CheckpointRequest::Unknown
        );
    }

    #[test]
    fn partitions_spread_by_modulo() {
        assert_eq!(
            (0..5).map(|p| group_of(p, 2).0).collect::<Vec<_>>(),
            [0, 1, 0, 1, 0]
        );
        assert_eq!(group_of(3, 0), TaskGroupId(0));
    }

    #[test]
    fn start_offsets_prefer_known_then_stored_then_earliest_or_latest() {
        let parts: BTreeMap<i32, StartFrom> = [
            (0, StartFrom::Known(7)),
            (1, StartFrom::NotSet),
            (2, StartFrom::NotSet),
        ]
        .into();
        let stored = StreamOffsets {
            kind: "kafka".into(),
            stream: "t".into(),
            offsets: [("1".to_string(), 40)].into(),
        };
        let earliest = o(&[(0, 0), (1, 10), (2, 5)]);
        let latest = o(&[(0, 100), (1, 100), (2, 50)]);
        assert_eq!(
            start_offsets(&parts, Some(&stored), &earliest, &latest, true, false).unwrap(),
            o(&[(0, 7), (1, 40), (2, 5)])
        );
        assert_eq!(
            start_offsets(&parts, Some(&stored), &earliest, &latest, false, false).unwrap(),
            o(&[(0, 7), (1, 40), (2, 50)])
        );
        let gone = StreamOffsets {
            offsets: [("1".to_string(), 3)].into(),
            ..stored
        };
        let e = start_offsets(&parts, Some(&gone), &earliest, &latest, true, false).unwrap_err();
        assert!(
            matches!(
                e,
                NoStartOffset::OutOfRange {
                    partition: 1,
                    stored: 3,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("out of range"), "{e}");
        assert_eq!(
            start_offsets(&parts, Some(&gone), &earliest, &latest, true, true).unwrap()[&1],
            10
        );
    }

    #[test]
    fn end_offsets_are_the_furthest_replica_and_lag_is_clamped() {
        let a = o(&[(0, 5), (1, 9)]);
        let b = o(&[(0, 8), (1, 2)]);
        assert_eq!(max_offsets([&a, &b]), o(&[(0, 8), (1, 9)]));
        let (per, total) = lag(&o(&[(0, 10), (1, 8)]), &o(&[(0, 8), (1, 9)]));
        assert_eq!(per, o(&[(0, 2), (1, -1)]));
        assert_eq!(total, 2);
    }
}
