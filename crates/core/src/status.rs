//! TaskStatus (what peons write and `druid_tasks.status_payload` holds) and TaskStatusPlus (what
//! the list and status routes answer).

use serde::{Deserialize, Serialize};

use crate::ids::TaskId;

/// Druid truncates `errorMsg` to this many characters and appends `...`.
pub const MAX_ERROR_MSG_LENGTH: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskState {
    Running,
    Success,
    Failed,
}

impl TaskState {
    pub fn is_complete(self) -> bool {
        self != TaskState::Running
    }
}

/// Where a task runs. `TaskLocation.unknown()` is `{"host":null,"port":-1,"tlsPort":-1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskLocation {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "minus_one")]
    pub port: i32,
    #[serde(default = "minus_one")]
    pub tls_port: i32,
}

fn minus_one() -> i32 {
    -1
}

fn minus_one_i64() -> i64 {
    -1
}

impl TaskLocation {
    pub fn unknown() -> Self {
        TaskLocation {
            host: None,
            port: -1,
            tls_port: -1,
        }
    }

    pub fn new(host: impl Into<String>, port: i32) -> Self {
        TaskLocation {
            host: Some(host.into()),
            port,
            tls_port: -1,
        }
    }

    /// A task that serves HTTPS only, on `tls_port` (Druid's `port` is then -1).
    pub fn tls(host: impl Into<String>, tls_port: i32) -> Self {
        TaskLocation {
            host: Some(host.into()),
            port: -1,
            tls_port,
        }
    }
}

impl Default for TaskLocation {
    fn default() -> Self {
        TaskLocation::unknown()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    pub id: TaskId,
    /// Druid's JSON key is `status` although its getter is `getStatusCode()`.
    pub status: TaskState,
    #[serde(default = "minus_one_i64")]
    pub duration: i64,
    #[serde(default)]
    pub error_msg: Option<String>,
    #[serde(default)]
    pub location: TaskLocation,
}

impl TaskStatus {
    pub fn running(id: TaskId) -> Self {
        TaskStatus {
            id,
            status: TaskState::Running,
            duration: -1,
            error_msg: None,
            location: TaskLocation::unknown(),
        }
    }

    pub fn success(id: TaskId) -> Self {
        TaskStatus {
            status: TaskState::Success,
            ..TaskStatus::running(id)
        }
    }

    pub fn failure(id: TaskId, error: impl AsRef<str>) -> Self {
        TaskStatus {
            status: TaskState::Failed,
            error_msg: Some(truncate_error(error.as_ref())),
            ..TaskStatus::running(id)
        }
    }

    pub fn with_duration(mut self, duration_ms: i64) -> Self {
        self.duration = duration_ms;
        self
    }

    pub fn with_location(mut self, location: TaskLocation) -> Self {
        self.location = location;
        self
    }

    pub fn is_complete(&self) -> bool {
        self.status.is_complete()
    }
}

/// Druid's `TaskStatus.truncateErrorMsg`: at most 100 characters, then `...`.
pub fn truncate_error(msg: &str) -> String {
    if msg.chars().count() <= MAX_ERROR_MSG_LENGTH {
        msg.to_string()
    } else {
        let mut s: String = msg.chars().take(MAX_ERROR_MSG_LENGTH).collect();
        s.push_str("...");
        s
    }
}

/// Where the runner has a task: `RunnerTaskState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunnerTaskState {
    Waiting,
    Pending,
    Running,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatusPlus {
    pub id: String,
    pub group_id: Option<String>,
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    pub created_time: String,
    pub queue_insertion_time: String,
    pub status_code: Option<TaskState>,
    /// Legacy duplicate of `statusCode`.
    pub status: Option<TaskState>,
    pub runner_status_code: Option<RunnerTaskState>,
    pub duration: Option<i64>,
    pub location: TaskLocation,
    pub data_source: Option<String>,
    pub error_msg: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_status_json_matches_druid() {
        let id = TaskId::new("t1").unwrap();
        let s = TaskStatus::failure(id, "boom").with_location(TaskLocation::new("mm1", 8100));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":"t1","status":"FAILED","duration":-1,"errorMsg":"boom",
                "location":{"host":"mm1","port":8100,"tlsPort":-1}})
        );
        let unknown = serde_json::to_value(TaskLocation::unknown()).unwrap();
        assert_eq!(
            unknown,
            serde_json::json!({"host":null,"port":-1,"tlsPort":-1})
        );
    }

    #[test]
    fn error_messages_are_truncated_like_druid() {
        let long = "x".repeat(150);
        let t = truncate_error(&long);
        assert_eq!(t.len(), 103);
        assert!(t.ends_with("..."));
        assert_eq!(truncate_error("short"), "short");
    }

    #[test]
    fn reads_minimal_status() {
        let s: TaskStatus = serde_json::from_str(r#"{"id":"a","status":"SUCCESS"}"#).unwrap();
        assert_eq!(s.duration, -1);
        assert_eq!(s.location, TaskLocation::unknown());
    }
}
