//! A Kafka supervisor spec as it arrives: serde structs read with `serde_path_to_error`, so a
//! wrongly typed field is an error naming its path. `dataSchema` and the raw `ioConfig` and
//! `tuningConfig` stay JSON objects as well: the tasks get them as the user wrote them.

use drover_core::wire::{Flag, WirePeriod};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The top level. Modern specs nest the three parts in `spec`; legacy ones have them here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Supervisor {
    pub id: Option<String>,
    pub spec: Option<Parts>,
    pub data_schema: Option<Map<String, Value>>,
    pub io_config: Option<Map<String, Value>>,
    pub tuning_config: Option<Map<String, Value>>,
    pub suspended: Option<Flag>,
    pub context: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parts {
    pub data_schema: Option<Map<String, Value>>,
    pub io_config: Option<Map<String, Value>>,
    pub tuning_config: Option<Map<String, Value>>,
}

/// The supervisor's `ioConfig`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IoConfig {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub topic: Option<String>,
    pub topic_pattern: Option<Value>,
    /// Values are strings, numbers or booleans; librdkafka takes them all as text.
    pub consumer_properties: Option<Map<String, Value>>,
    pub input_format: Option<Map<String, Value>>,
    pub poll_timeout: Option<u64>,
    pub task_count: Option<u64>,
    pub replicas: Option<u64>,
    pub task_duration: Option<WirePeriod>,
    pub start_delay: Option<WirePeriod>,
    pub period: Option<WirePeriod>,
    pub use_earliest_offset: Option<Flag>,
    pub completion_timeout: Option<WirePeriod>,
    pub late_message_rejection_period: Option<WirePeriod>,
    pub late_message_rejection_start_date_time: Option<String>,
    pub early_message_rejection_period: Option<WirePeriod>,
}

/// The parts of the `kafka` tuningConfig that are checked here: the supervisor's own, and the
/// tasks' periods (a bad one is a 400 now rather than failing tasks later).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tuning {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub offset_fetch_period: Option<WirePeriod>,
    pub reset_offset_automatically: Option<Flag>,
    pub chat_retries: Option<u64>,
    pub http_timeout: Option<WirePeriod>,
    pub shutdown_timeout: Option<WirePeriod>,
    // Read only to be checked: each task reads its own copy (`task/wire.rs`).
    #[allow(dead_code)]
    pub intermediate_handoff_period: Option<WirePeriod>,
    #[allow(dead_code)]
    pub broker_outage_timeout: Option<WirePeriod>,
}
