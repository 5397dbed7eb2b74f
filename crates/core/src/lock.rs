//! TaskLock (see docs/architecture.md): the JSON stored in `druid_tasklocks.lock_payload`.

use serde::{Deserialize, Serialize};

use crate::ids::DataSource;
use crate::interval::Interval;

/// `EXCLUSIVE` (shared only within a groupId), `SHARED` (any number; cannot publish), and the
/// concurrent append/replace types: `APPEND` (streaming and appending batch tasks, any number)
/// and `REPLACE` (one at a time; appends inside it go on while it runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockType {
    #[default]
    Exclusive,
    Shared,
    Replace,
    Append,
}

/// A time-chunk lock, as Druid writes it (`"type":"timeChunk"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", rename = "timeChunk")]
pub struct TaskLock {
    #[serde(default)]
    pub lock_type: LockType,
    pub group_id: String,
    pub data_source: DataSource,
    pub interval: Interval,
    pub version: String,
    pub priority: i32,
    #[serde(default)]
    pub revoked: bool,
}

/// Druid's default priorities (Tasks.java): realtime 75, batch 50, merge 25, others 0.
pub fn default_priority(task_type: &str) -> i32 {
    match task_type {
        "index_kafka" | "index_kinesis" | "index_realtime" => 75,
        "index"
        | "index_parallel"
        | "index_hadoop"
        | "single_phase_sub_task"
        | "partial_dimension_cardinality"
        | "partial_dimension_distribution"
        | "partial_index_generate"
        | "partial_range_index_generate"
        | "partial_index_generic_merge" => 50,
        "compact" | "merge" | "append" => 25,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_json_matches_druid() {
        let json = r#"{"type":"timeChunk","lockType":"EXCLUSIVE","groupId":"index_kafka_ds","dataSource":"ds",
            "interval":"2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z","version":"2024-01-01T03:12:44.123Z",
            "priority":75,"revoked":false}"#;
        let lock: TaskLock = serde_json::from_str(json).unwrap();
        assert_eq!(lock.lock_type, LockType::Exclusive);
        let back = serde_json::to_value(&lock).unwrap();
        assert_eq!(back["type"], "timeChunk");
        assert_eq!(
            back["interval"],
            "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"
        );
        let no_type: TaskLock = serde_json::from_str(
            r#"{"type":"timeChunk","groupId":"g","dataSource":"d","interval":"2024-01-01/2024-01-02","version":"v","priority":50}"#,
        )
        .unwrap();
        assert_eq!(
            no_type.lock_type,
            LockType::Exclusive,
            "a missing lockType is EXCLUSIVE"
        );
        assert_eq!(default_priority("index_parallel"), 50);
        assert_eq!(default_priority("noop"), 0);
    }
}
