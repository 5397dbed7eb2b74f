//! Druid's automatic-compaction configuration (`CoordinatorCompactionConfig`), kept in
//! `druid_config` under Druid's key: per data source, what to compact into and when, and the
//! cluster's budget of task slots for it.

use drover_core::granularity::Granularity;
use drover_core::interval::Interval;
use drover_core::period::CalendarPeriod;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Druid's `druid_config` key for it.
pub const COMPACTION_CONFIG_KEY: &str = "coordinator.compaction.config";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCompactionConfig {
    #[serde(default)]
    pub compaction_configs: Vec<DataSourceCompactionConfig>,
    /// Share of the cluster's task slots compaction may use.
    #[serde(default = "default_ratio")]
    pub compaction_task_slot_ratio: f64,
    #[serde(default = "default_max_slots")]
    pub max_compaction_task_slots: i64,
    #[serde(default)]
    pub use_auto_scale_slots: bool,
}

impl Default for ClusterCompactionConfig {
    fn default() -> Self {
        ClusterCompactionConfig {
            compaction_configs: Vec::new(),
            compaction_task_slot_ratio: default_ratio(),
            max_compaction_task_slots: default_max_slots(),
            use_auto_scale_slots: false,
        }
    }
}

fn default_ratio() -> f64 {
    0.1
}

fn default_max_slots() -> i64 {
    i64::from(i32::MAX)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceCompactionConfig {
    pub data_source: String,
    #[serde(default = "default_priority")]
    pub task_priority: i32,
    /// Time chunks holding more than this many bytes are skipped.
    #[serde(default = "default_input_bytes")]
    pub input_segment_size_bytes: u64,
    /// The newest data is left alone this long (it may still be changing).
    #[serde(default = "default_skip_offset")]
    pub skip_offset_from_latest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning_config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity_spec: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions_spec: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_spec: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_spec: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_context: Option<Map<String, Value>>,
}

fn default_priority() -> i32 {
    25
}

fn default_input_bytes() -> u64 {
    100_000_000_000_000
}

fn default_skip_offset() -> String {
    "P1D".into()
}

/// Why a posted config is refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompactionConfigError(pub String);

impl DataSourceCompactionConfig {
    /// Reads and checks a posted config: the task it would submit must be one `POST /task`
    /// accepts.
    pub fn parse(body: &[u8]) -> Result<DataSourceCompactionConfig, CompactionConfigError> {
        let config: DataSourceCompactionConfig =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))
                .map_err(|e| {
                    CompactionConfigError(format!("invalid [{}]: {}", e.path(), e.inner()))
                })?;
        drover_core::ids::validate_id("dataSource", &config.data_source)
            .map_err(|e| CompactionConfigError(e.to_string()))?;
        config.skip_offset()?;
        // A sample interval aligned to the target granularity stands in for the real ones.
        let start = drover_core::time::parse_iso("2000-01-01T00:00:00Z").expect("a date");
        let sample = config
            .segment_granularity()
            .unwrap_or(Granularity::Day)
            .bucket(start);
        drover_task::Task::from_value(config.task(sample, "sample"))
            .map_err(|e| CompactionConfigError(e.to_string()))?;
        Ok(config)
    }

    pub fn skip_offset(&self) -> Result<CalendarPeriod, CompactionConfigError> {
        CalendarPeriod::parse(&self.skip_offset_from_latest)
            .map_err(|e| CompactionConfigError(format!("invalid [skipOffsetFromLatest]: {e}")))
    }

    /// The target segment granularity, when the config names one.
    pub fn segment_granularity(&self) -> Option<Granularity> {
        self.granularity_spec
            .as_ref()
            .and_then(|g| g.get("segmentGranularity"))
            .and_then(Value::as_str)
            .and_then(Granularity::parse)
    }

    /// The `compact` task that compacts `interval` as configured.
    pub fn task(&self, interval: Interval, suffix: &str) -> Value {
        let mut context = self.task_context.clone().unwrap_or_default();
        context.insert("priority".into(), json!(self.task_priority));
        context.insert("storeCompactionState".into(), json!(true));
        let mut task = json!({
            "type": "compact",
            "id": format!("coordinator-issued_compact_{}_{suffix}", self.data_source),
            "dataSource": self.data_source,
            "ioConfig": {"type": "compact", "inputSpec": {"type": "interval", "interval": interval}},
            "context": context,
        });
        for (key, part) in [
            ("tuningConfig", &self.tuning_config),
            ("granularitySpec", &self.granularity_spec),
            ("dimensionsSpec", &self.dimensions_spec),
            ("metricsSpec", &self.metrics_spec),
            ("transformSpec", &self.transform_spec),
        ] {
            if let Some(v) = part {
                task[key] = v.clone();
            }
        }
        if let Some(drop) = self
            .io_config
            .as_ref()
            .and_then(|io| io.get("dropExisting"))
        {
            task["ioConfig"]["dropExisting"] = drop.clone();
        }
        task
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_druids_config_and_refuses_bad_ones() {
        let c = DataSourceCompactionConfig::parse(
            br#"{"dataSource":"wikipedia","skipOffsetFromLatest":"PT0S",
                "granularitySpec":{"segmentGranularity":"DAY"},
                "tuningConfig":{"partitionsSpec":{"type":"dynamic"}}}"#,
        )
        .unwrap();
        assert_eq!(c.task_priority, 25);
        assert_eq!(c.segment_granularity(), Some(Granularity::Day));
        let err = |body: &str| {
            DataSourceCompactionConfig::parse(body.as_bytes())
                .unwrap_err()
                .0
        };
        assert!(err(r#"{"skipOffsetFromLatest":"P1D"}"#).contains("dataSource"));
        assert!(err(r#"{"dataSource":"w","skipOffsetFromLatest":"soon"}"#)
            .contains("skipOffsetFromLatest"));
        assert!(err(r#"{"dataSource":"w","taskPriority":"high"}"#).contains("taskPriority"));
        assert!(
            err(r#"{"dataSource":"w","metricsSpec":[{"type":"hyperUnique","name":"u"}]}"#)
                .contains("metricsSpec")
        );
        assert!(err(r#"{"dataSource":"a/b"}"#).contains("dataSource"));
    }
}
