//! The parts of an `index_kafka` task's JSON that the task itself reads, as serde structs read
//! with `serde_path_to_error`. The supervisor writes these; the old names Druid still accepts
//! (`startPartitions`, `partitionOffsetMap`, `topic`) are read too.

use chrono::{DateTime, Utc};
use drover_core::wire::WirePeriod;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub io_config: Option<IoConfig>,
    pub context: Option<Context>,
    pub supervisor_id: Option<String>,
    pub data_source: Option<String>,
    pub tuning_config: Option<Tuning>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IoConfig {
    pub task_group_id: Option<u32>,
    pub base_sequence_name: Option<String>,
    pub start_sequence_numbers: Option<SequenceNumbers>,
    /// Older tasks' name for the start.
    pub start_partitions: Option<SequenceNumbers>,
    pub end_sequence_numbers: Option<SequenceNumbers>,
    pub end_partitions: Option<SequenceNumbers>,
    pub consumer_properties: Option<Map<String, Value>>,
    pub poll_timeout: Option<u64>,
    pub minimum_message_time: Option<Instant>,
    pub maximum_message_time: Option<Instant>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequenceNumbers {
    /// Druid writes the same value under both names; older tasks only `topic`.
    pub stream: Option<String>,
    pub topic: Option<String>,
    pub partition_sequence_number_map: Option<Map<String, Value>>,
    pub partition_offset_map: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
pub struct Context {
    /// Sequence id → start offsets, as a JSON text (Druid's `checkpoints` context).
    pub checkpoints: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tuning {
    pub intermediate_handoff_period: Option<WirePeriod>,
    pub broker_outage_timeout: Option<WirePeriod>,
}

/// An instant: ISO-8601 text, or milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let time = match Value::deserialize(d)? {
            Value::String(s) => drover_core::time::parse_iso(&s),
            Value::Number(n) => n.as_i64().and_then(DateTime::<Utc>::from_timestamp_millis),
            _ => None,
        };
        time.map(Instant)
            .ok_or_else(|| serde::de::Error::custom("must be an ISO-8601 instant"))
    }
}
