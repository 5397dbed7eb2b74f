//! Worker (the middle manager's announcement) and TaskAnnouncement (its status znodes).

use serde::{Deserialize, Serialize};

use crate::ids::TaskId;
use crate::resource::TaskResource;
use crate::status::{TaskLocation, TaskState, TaskStatus};

pub const DEFAULT_WORKER_CATEGORY: &str = "_default_worker_category";
/// A disabled middle manager re-announces itself with this version, which fails the default
/// `minWorkerVersion` of `"0"`.
pub const DISABLED_WORKER_VERSION: &str = "";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Worker {
    #[serde(default = "default_scheme")]
    pub scheme: String,
    pub host: String,
    #[serde(default)]
    pub ip: String,
    pub capacity: i32,
    #[serde(default)]
    pub version: String,
    #[serde(default = "default_category")]
    pub category: String,
}

fn default_scheme() -> String {
    "http".to_string()
}

pub(crate) fn default_category() -> String {
    DEFAULT_WORKER_CATEGORY.to_string()
}

impl Worker {
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }
}

/// What a middle manager writes to `statusPath/<worker>/<taskId>`. Note the keys: `type`, not
/// `taskType`; `taskResource`, `taskLocation`, `taskDataSource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskAnnouncement {
    pub id: TaskId,
    #[serde(rename = "type", default)]
    pub task_type: Option<String>,
    pub status: TaskState,
    #[serde(default)]
    pub task_status: Option<TaskStatus>,
    #[serde(default)]
    pub task_resource: Option<TaskResource>,
    #[serde(default)]
    pub task_location: TaskLocation,
    #[serde(default)]
    pub task_data_source: Option<String>,
}

impl TaskAnnouncement {
    pub fn new(
        status: TaskStatus,
        task_type: &str,
        resource: TaskResource,
        data_source: &str,
    ) -> Self {
        TaskAnnouncement {
            id: status.id.clone(),
            task_type: Some(task_type.to_string()),
            status: status.status,
            task_location: status.location.clone(),
            task_status: Some(status),
            task_resource: Some(resource),
            task_data_source: Some(data_source.to_string()),
        }
    }

    /// The full status, also for the legacy form that carries only `id` and `status`.
    pub fn task_status(&self) -> TaskStatus {
        let mut s = self.task_status.clone().unwrap_or_else(|| TaskStatus {
            status: self.status,
            ..TaskStatus::running(self.id.clone())
        });
        if s.location.host.is_none() {
            s.location = self.task_location.clone();
        }
        s
    }

    pub fn resource(&self) -> TaskResource {
        self.task_resource
            .clone()
            .unwrap_or_else(|| TaskResource::for_task(&self.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_defaults_for_old_announcements() {
        let w: Worker = serde_json::from_str(
            r#"{"host":"mm1:8091","ip":"10.0.0.5","capacity":3,"version":"0"}"#,
        )
        .unwrap();
        assert_eq!(w.scheme, "http");
        assert_eq!(w.category, DEFAULT_WORKER_CATEGORY);
    }

    #[test]
    fn announcement_keys_match_druid() {
        let id = TaskId::new("t1").unwrap();
        let st = TaskStatus::running(id.clone()).with_location(TaskLocation::new("mm1", 8100));
        let a = TaskAnnouncement::new(st, "noop", TaskResource::for_task(&id), "none");
        let v = serde_json::to_value(&a).unwrap();
        for key in [
            "id",
            "type",
            "status",
            "taskStatus",
            "taskResource",
            "taskLocation",
            "taskDataSource",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let legacy: TaskAnnouncement =
            serde_json::from_str(r#"{"id":"t1","status":"SUCCESS"}"#).unwrap();
        assert_eq!(legacy.task_status().status, TaskState::Success);
        assert_eq!(legacy.resource().required_capacity, 1);
    }
}
