//! Stream commit metadata: the per-partition offsets a streaming supervisor has published, kept
//! in `druid_dataSource` beside the segments that hold their rows. Druid's JSON shape:
//!
//! ```json
//! {"type":"kafka","partitions":{"type":"end","stream":"t","topic":"t",
//!   "partitionSequenceNumberMap":{"0":230985},"partitionOffsetMap":{"0":230985}}}
//! ```
//!
//! Offsets are "next offset to read". A publish carries the offsets it started from and the ones
//! it ended at; it commits only if its start agrees with what is stored (the compare of the
//! publish's compare-and-swap, see docs/ingestion.md), and the stored offsets become the old ones plus its end.

use std::collections::BTreeMap;

use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOffsets {
    /// `kafka` (the metadata's `type`).
    pub kind: String,
    pub stream: String,
    /// Partition → next offset to read.
    pub offsets: BTreeMap<String, i64>,
}

/// Why a commit-metadata JSON cannot be read; the message names the missing or bad field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommitMetadataError(pub String);

impl From<&str> for CommitMetadataError {
    fn from(message: &str) -> Self {
        CommitMetadataError(message.to_string())
    }
}

impl From<String> for CommitMetadataError {
    fn from(message: String) -> Self {
        CommitMetadataError(message)
    }
}

impl StreamOffsets {
    /// Reads start or end metadata in Druid's shape (old `partitionOffsetMap`/`topic` names too).
    pub fn from_metadata(v: &Value) -> Result<StreamOffsets, CommitMetadataError> {
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or("commit metadata needs a [type]")?
            .to_string();
        let p = v
            .get("partitions")
            .filter(|p| p.is_object())
            .ok_or("commit metadata needs [partitions]")?;
        let stream = p
            .get("stream")
            .or_else(|| p.get("topic"))
            .and_then(Value::as_str)
            .ok_or("commit metadata needs [partitions.stream]")?
            .to_string();
        let map = p
            .get("partitionSequenceNumberMap")
            .or_else(|| p.get("partitionOffsetMap"))
            .and_then(Value::as_object)
            .ok_or("commit metadata needs [partitions.partitionSequenceNumberMap]")?;
        let mut offsets = BTreeMap::new();
        for (partition, offset) in map {
            let offset = offset
                .as_i64()
                .ok_or_else(|| format!("offset of partition [{partition}] is not a number"))?;
            offsets.insert(partition.clone(), offset);
        }
        Ok(StreamOffsets {
            kind,
            stream,
            offsets,
        })
    }

    /// The stored form (`end` sequence numbers, both map names as Druid writes them).
    pub fn to_metadata(&self) -> Value {
        json!({
            "type": self.kind,
            "partitions": {
                "type": "end",
                "stream": self.stream,
                "topic": self.stream,
                "partitionSequenceNumberMap": self.offsets,
                "partitionOffsetMap": self.offsets,
            }
        })
    }

    /// Druid's `matches`: same stream, and every partition both name has the same offset.
    pub fn matches(&self, other: &StreamOffsets) -> bool {
        self.kind == other.kind
            && self.stream == other.stream
            && self
                .offsets
                .iter()
                .all(|(p, o)| other.offsets.get(p).is_none_or(|x| x == o))
    }

    /// Druid's `plus`: `end`'s offsets over these, partition by partition; another stream
    /// replaces these altogether.
    pub fn plus(&self, end: &StreamOffsets) -> StreamOffsets {
        if self.kind != end.kind || self.stream != end.stream {
            return end.clone();
        }
        let mut offsets = self.offsets.clone();
        offsets.extend(end.offsets.iter().map(|(p, o)| (p.clone(), *o)));
        StreamOffsets {
            kind: self.kind.clone(),
            stream: self.stream.clone(),
            offsets,
        }
    }
}

/// What a publish with commit metadata does to the stored offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitDecision {
    /// Store these (the old plus the publish's end).
    Commit(StreamOffsets),
    /// The publish started somewhere else than where the stored offsets are: refuse it.
    Mismatch(String),
}

/// Decides a publish that started at `start` and ended at `end`, given what is `stored`.
pub fn decide_commit(
    stored: Option<&StreamOffsets>,
    start: &StreamOffsets,
    end: &StreamOffsets,
) -> CommitDecision {
    match stored {
        None => CommitDecision::Commit(end.clone()),
        Some(old) if start.matches(old) => CommitDecision::Commit(old.plus(end)),
        Some(old) => CommitDecision::Mismatch(format!(
            "Inconsistent metadata state: the stored offsets [{}] do not match the new start state [{}]",
            old.to_metadata(),
            start.to_metadata()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(stream: &str, pairs: &[(&str, i64)]) -> StreamOffsets {
        StreamOffsets {
            kind: "kafka".into(),
            stream: stream.into(),
            offsets: pairs.iter().map(|(p, o)| (p.to_string(), *o)).collect(),
        }
    }

    #[test]
    fn reads_druids_shapes_and_writes_the_end_form() {
        let v = json!({"type":"kafka","partitions":{"type":"start","stream":"t",
            "partitionSequenceNumberMap":{"0":5,"1":7},"exclusivePartitions":[]}});
        let o = StreamOffsets::from_metadata(&v).unwrap();
        assert_eq!(o, offsets("t", &[("0", 5), ("1", 7)]));
        let legacy =
            json!({"type":"kafka","partitions":{"topic":"t","partitionOffsetMap":{"0":5,"1":7}}});
        assert_eq!(StreamOffsets::from_metadata(&legacy).unwrap(), o);
        let back = StreamOffsets::from_metadata(&o.to_metadata()).unwrap();
        assert_eq!(back, o);
        assert!(StreamOffsets::from_metadata(&json!({"type":"kafka"})).is_err());
    }

    #[test]
    fn a_publish_commits_only_from_where_the_stored_offsets_are() {
        let stored = offsets("t", &[("0", 10), ("1", 20)]);
        // Task of group 0 (partition 0) continues from 10.
        let d = decide_commit(
            Some(&stored),
            &offsets("t", &[("0", 10)]),
            &offsets("t", &[("0", 15)]),
        );
        assert_eq!(
            d,
            CommitDecision::Commit(offsets("t", &[("0", 15), ("1", 20)]))
        );
        // A replica publishing the same range again after the first: its start is stale.
        let after = offsets("t", &[("0", 15), ("1", 20)]);
        assert!(matches!(
            decide_commit(
                Some(&after),
                &offsets("t", &[("0", 10)]),
                &offsets("t", &[("0", 15)])
            ),
            CommitDecision::Mismatch(_)
        ));
        // Nothing stored: any start commits its end.
        assert_eq!(
            decide_commit(None, &offsets("t", &[("0", 3)]), &offsets("t", &[("0", 9)])),
            CommitDecision::Commit(offsets("t", &[("0", 9)]))
        );
        // Another topic never matches; its end replaces the old topic's offsets when it commits.
        assert!(!offsets("u", &[("0", 10)]).matches(&stored));
        assert_eq!(
            stored.plus(&offsets("u", &[("0", 1)])),
            offsets("u", &[("0", 1)])
        );
    }
}
