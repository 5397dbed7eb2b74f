//! Druid's segment upgrade rules for concurrent append and replace, as pure functions. A segment
//! appended (under an APPEND lock) into a time chunk that a REPLACE task rewrites would be
//! overshadowed by the replace's newer version and its rows lost; instead it is carried into
//! that version: the same file under a new id with the replace's interval and version, numbered
//! after the replace's own partitions. Two cases, by which commits first:
//! - the append commits while the REPLACE lock is held: it is recorded
//!   (`druid_upgradeSegments`), and the replace's publish carries it (`carry_into_replace`);
//! - the replace has committed already: the append's publish carries it into the newest version
//!   of its chunk itself (`carry_into_newer`).

use std::collections::BTreeMap;

use drover_core::interval::Interval;
use drover_core::segment::{numbered_shard_spec, DataSegment};
use drover_metadata::PendingSegment;
use serde_json::Value;

/// A replace's interval only partly covers an appended segment: Druid refuses this too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Replacing with a finer segment granularity than a concurrent append is unsupported: cannot \
     carry segment [{segment}] into version [{version}], whose interval [{interval}] does not \
     contain it"
)]
pub struct FinerReplace {
    pub segment: String,
    pub version: String,
    pub interval: Interval,
}

/// Hands out partition numbers per (interval, version), after those already taken.
#[derive(Default)]
struct Numbering {
    next: BTreeMap<(Interval, String), u32>,
    core: BTreeMap<(Interval, String), Value>,
}

impl Numbering {
    fn taken(&mut self, interval: Interval, version: &str, partition: u32, shard_spec: &Value) {
        let key = (interval, version.to_string());
        let next = self.next.entry(key.clone()).or_insert(0);
        *next = (*next).max(partition + 1);
        if let Some(core) = shard_spec.get("partitions") {
            self.core.entry(key).or_insert_with(|| core.clone());
        }
    }

    /// `segment` as a new partition of (`interval`, `version`).
    fn carry(&mut self, segment: &DataSegment, interval: Interval, version: &str) -> DataSegment {
        let key = (interval, version.to_string());
        let next = self.next.entry(key.clone()).or_insert(0);
        let mut shard_spec = numbered_shard_spec(*next);
        *next += 1;
        if let Some(core) = self.core.get(&key) {
            shard_spec["partitions"] = core.clone();
        }
        DataSegment {
            interval,
            version: version.to_string(),
            shard_spec,
            identifier: String::new(),
            ..segment.clone()
        }
    }
}

/// The copies a replace's publish adds: each segment appended under its lock (with the lock's
/// version) in the interval of the replace's segments that contains it (its own when none
/// overlaps it).
pub fn carry_into_replace(
    appended: &[(DataSegment, String)],
    replace: &[DataSegment],
) -> Result<Vec<DataSegment>, FinerReplace> {
    let mut numbering = Numbering::default();
    for s in replace {
        numbering.taken(s.interval, &s.version, s.partition_num(), &s.shard_spec);
    }
    let mut out = Vec::new();
    for (segment, version) in appended {
        let mut interval = segment.interval;
        for r in replace {
            if r.interval.encloses(&segment.interval) {
                interval = r.interval;
                break;
            }
            if r.interval.overlaps(&segment.interval) {
                return Err(FinerReplace {
                    segment: segment.id(),
                    version: version.clone(),
                    interval: r.interval,
                });
            }
        }
        out.push(numbering.carry(segment, interval, version));
    }
    Ok(out)
}

/// The copies an append's publish adds: each appended segment that a newer version committed
/// meanwhile would overshadow, carried into the newest version over it. `used` and `pending`
/// are what overlaps the appended segments (for the partition numbers already taken).
pub fn carry_into_newer(
    appended: &[DataSegment],
    used: &[DataSegment],
    pending: &[PendingSegment],
) -> Result<Vec<DataSegment>, FinerReplace> {
    let mut numbering = Numbering::default();
    for s in used {
        numbering.taken(s.interval, &s.version, s.partition_num(), &s.shard_spec);
    }
    for p in pending {
        numbering.taken(p.interval, &p.version, p.partition_num(), &p.shard_spec);
    }
    let mut out = Vec::new();
    for segment in appended {
        let Some(newest) = used
            .iter()
            .filter(|u| {
                u.data_source == segment.data_source
                    && u.interval.overlaps(&segment.interval)
                    && u.version > segment.version
            })
            .max_by(|a, b| a.version.cmp(&b.version))
        else {
            continue;
        };
        if !newest.interval.encloses(&segment.interval) {
            return Err(FinerReplace {
                segment: segment.id(),
                version: newest.version.clone(),
                interval: newest.interval,
            });
        }
        out.push(numbering.carry(segment, newest.interval, &newest.version));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(interval: &str, version: &str, partition: u32) -> DataSegment {
        DataSegment {
            data_source: drover_core::DataSource::new("wiki").unwrap(),
            interval: Interval::parse(interval).unwrap(),
            version: version.into(),
            load_spec: serde_json::json!({"type": "local", "path": format!("/d/{interval}/{version}/{partition}")}),
            dimensions: String::new(),
            metrics: String::new(),
            shard_spec: numbered_shard_spec(partition),
            binary_version: 9,
            size: 1,
            identifier: String::new(),
            last_compaction_state: None,
        }
    }

    const DAY: &str = "2024-01-01/2024-01-02";
    const H5: &str = "2024-01-01T05:00/2024-01-01T06:00";
    const EPOCH: &str = "1970-01-01T00:00:00.000Z";

    #[test]
    fn appended_during_a_replace_join_its_version_after_its_partitions() {
        let replace = [seg(DAY, "v2", 0), seg(DAY, "v2", 1)];
        let appended = [
            (seg(H5, EPOCH, 0), "v2".to_string()),
            (seg(H5, EPOCH, 1), "v2".to_string()),
        ];
        let carried = carry_into_replace(&appended, &replace).unwrap();
        let ids: Vec<(Interval, String, u32)> = carried
            .iter()
            .map(|s| (s.interval, s.version.clone(), s.partition_num()))
            .collect();
        let day = Interval::parse(DAY).unwrap();
        assert_eq!(ids, vec![(day, "v2".into(), 2), (day, "v2".into(), 3)]);
        assert_eq!(
            carried[0].load_spec, appended[0].0.load_spec,
            "the same file"
        );

        // A replace by hour cannot take in a segment of the whole day.
        let err = carry_into_replace(&[(seg(DAY, EPOCH, 0), "v2".into())], &[seg(H5, "v2", 0)])
            .unwrap_err();
        assert_eq!(err.interval, Interval::parse(H5).unwrap());
    }

    #[test]
    fn appended_after_a_replace_committed_joins_the_newest_version() {
        let used = [seg(DAY, "v2", 0), seg(DAY, "v1", 0), seg(H5, EPOCH, 0)];
        let pending = [PendingSegment {
            data_source: "wiki".into(),
            interval: Interval::parse(DAY).unwrap(),
            version: "v2".into(),
            shard_spec: numbered_shard_spec(4),
        }];
        let appended = [seg(H5, EPOCH, 1)];
        let carried = carry_into_newer(&appended, &used, &pending).unwrap();
        assert_eq!(carried.len(), 1);
        assert_eq!(carried[0].version, "v2");
        assert_eq!(carried[0].interval, Interval::parse(DAY).unwrap());
        assert_eq!(
            carried[0].partition_num(),
            5,
            "after the pending partition 4"
        );
        // Nothing newer: nothing to carry.
        assert!(carry_into_newer(&[seg(DAY, "v2", 7)], &used, &[])
            .unwrap()
            .is_empty());
    }
}
