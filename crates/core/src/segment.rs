//! Druid's DataSegment: the JSON in `druid_segments.payload` describing one segment partition.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::DataSource;
use crate::interval::Interval;
use crate::time::to_iso;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSegment {
    pub data_source: DataSource,
    pub interval: Interval,
    pub version: String,
    /// Where the file is, e.g. `{"type":"local","path":"/deep/wiki/.../0/segment.parquet"}`.
    pub load_spec: Value,
    /// Druid writes these two as comma-separated strings.
    pub dimensions: String,
    pub metrics: String,
    /// `{"type":"numbered","partitionNum":N,"partitions":0}`.
    pub shard_spec: Value,
    #[serde(default = "binary_version")]
    pub binary_version: i32,
    pub size: u64,
    #[serde(default)]
    pub identifier: String,
    /// Druid's record of the compaction that wrote the segment (absent otherwise): automatic
    /// compaction leaves segments alone whose state matches its config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_compaction_state: Option<Value>,
}

fn binary_version() -> i32 {
    9
}

impl DataSegment {
    pub fn partition_num(&self) -> u32 {
        partition_num_of(&self.shard_spec)
    }

    /// Druid's SegmentId: `dataSource_start_end_version`, then `_partitionNum` when it is not 0.
    pub fn id(&self) -> String {
        segment_id(
            &self.data_source,
            &self.interval,
            &self.version,
            self.partition_num(),
        )
    }
}

pub fn segment_id(data_source: &str, interval: &Interval, version: &str, partition: u32) -> String {
    let base = format!(
        "{data_source}_{}_{}_{version}",
        to_iso(interval.start),
        to_iso(interval.end)
    );
    if partition == 0 {
        base
    } else {
        format!("{base}_{partition}")
    }
}

/// The `partitionNum` of a shard spec (0 when it has none, as Druid's `none` shard spec).
pub fn partition_num_of(shard_spec: &Value) -> u32 {
    shard_spec
        .get("partitionNum")
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32
}

/// A numbered shard spec, as dynamic partitioning writes them.
pub fn numbered_shard_spec(partition: u32) -> Value {
    serde_json::json!({"type": "numbered", "partitionNum": partition, "partitions": 0})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_druid() {
        let i = Interval::parse("2018-01-01/2018-01-02").unwrap();
        assert_eq!(
            segment_id("rollup-tutorial", &i, "2024-05-01T00:00:00.000Z", 0),
            "rollup-tutorial_2018-01-01T00:00:00.000Z_2018-01-02T00:00:00.000Z_2024-05-01T00:00:00.000Z"
        );
        assert!(segment_id("w", &i, "v", 3).ends_with("_v_3"));
    }
}
