//! The HTTP runner's wire types (Druid's `druid.indexer.runner.type=httpRemote`): how a middle
//! manager announces itself through node discovery, and the change history the overlord syncs
//! from it (`GET /druid-internal/v1/worker?counter=&hash=&timeout=`).

use serde::{Deserialize, Serialize};

use crate::worker::{TaskAnnouncement, Worker};

/// Which protocol the overlord and its middle managers use to hand out tasks and report their
/// status (`druid.indexer.runner.type`); both sides must be set alike. HTTP by default, as in
/// Druid since 25.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RunnerType {
    /// Assignments and statuses as znodes (Druid's RemoteTaskRunner).
    #[serde(rename = "remote")]
    Remote,
    /// Assignments by HTTP, statuses synced over HTTP, ZooKeeper for discovery only (Druid's
    /// HttpRemoteTaskRunner).
    #[serde(rename = "httpRemote")]
    #[default]
    HttpRemote,
}

/// The node-discovery role a middle manager announces under:
/// `${base}/internal-discovery/MIDDLE_MANAGER/<host:port>` (Druid's `NodeRole.toString()`).
pub const MIDDLE_MANAGER_ROLE: &str = "MIDDLE_MANAGER";

/// One change in a worker's state, as Druid's `WorkerHistoryItem`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum WorkerHistoryItem {
    /// A task was assigned, started, moved or finished.
    #[serde(rename_all = "camelCase")]
    TaskUpdate {
        task_announcement: Box<TaskAnnouncement>,
    },
    /// The worker forgot a finished task (the overlord knows it is complete).
    #[serde(rename_all = "camelCase")]
    TaskRemoval { task_id: String },
    /// The worker was enabled or disabled.
    Metadata { disabled: bool },
}

/// A position in a worker's change history. `hash` tells two lives of the worker apart: a
/// counter from an earlier life never matches, so the overlord starts again from a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounter {
    pub counter: i64,
    pub hash: i64,
}

/// Druid's `ChangeRequestsSnapshot`: the changes since a counter, or a request to start over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRequestsSnapshot {
    pub reset_counter: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_cause: Option<String>,
    #[serde(default)]
    pub counter: Option<ChangeCounter>,
    #[serde(default)]
    pub requests: Option<Vec<WorkerHistoryItem>>,
}

impl ChangeRequestsSnapshot {
    pub fn success(counter: ChangeCounter, requests: Vec<WorkerHistoryItem>) -> Self {
        ChangeRequestsSnapshot {
            reset_counter: false,
            reset_cause: None,
            counter: Some(counter),
            requests: Some(requests),
        }
    }

    pub fn reset(cause: impl Into<String>) -> Self {
        ChangeRequestsSnapshot {
            reset_counter: true,
            reset_cause: Some(cause.into()),
            counter: None,
            requests: None,
        }
    }
}

/// Druid's `DruidNode`, as node discovery writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DruidNode {
    pub service: String,
    pub host: String,
    #[serde(default)]
    pub bind_on_host: bool,
    #[serde(default = "minus_one")]
    pub plaintext_port: i32,
    #[serde(default = "minus_one")]
    pub port: i32,
    #[serde(default = "minus_one")]
    pub tls_port: i32,
    #[serde(default = "yes")]
    pub enable_plaintext_port: bool,
    #[serde(default)]
    pub enable_tls_port: bool,
}

fn minus_one() -> i32 {
    -1
}

fn yes() -> bool {
    true
}

/// Druid's `WorkerNodeService`, the part of a middle manager's discovery entry a runner reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerNodeService {
    #[serde(rename = "type", default = "worker_node_service")]
    pub service_type: String,
    pub ip: String,
    pub capacity: i32,
    pub version: String,
    #[serde(default = "crate::worker::default_category")]
    pub category: String,
}

fn worker_node_service() -> String {
    "workerNodeService".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryServices {
    pub worker_node_service: Option<WorkerNodeService>,
}

/// Druid's `DiscoveryDruidNode`: what a process writes to its node-discovery znode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryDruidNode {
    pub druid_node: DruidNode,
    pub node_type: String,
    pub services: DiscoveryServices,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
}

impl DiscoveryDruidNode {
    /// A middle manager's entry, made from the worker it would announce in ZooKeeper.
    pub fn middle_manager(worker: &Worker, start_time: String) -> Self {
        let (host, port) = worker
            .host
            .rsplit_once(':')
            .map(|(h, p)| (h.to_string(), p.parse().unwrap_or(-1)))
            .unwrap_or_else(|| (worker.host.clone(), -1));
        let tls = worker.scheme == "https";
        DiscoveryDruidNode {
            druid_node: DruidNode {
                service: "druid/middlemanager".into(),
                host,
                bind_on_host: false,
                plaintext_port: if tls { -1 } else { port },
                port: -1,
                tls_port: if tls { port } else { -1 },
                enable_plaintext_port: !tls,
                enable_tls_port: tls,
            },
            node_type: "middleManager".into(),
            services: DiscoveryServices {
                worker_node_service: Some(WorkerNodeService {
                    service_type: worker_node_service(),
                    ip: worker.ip.clone(),
                    capacity: worker.capacity,
                    version: worker.version.clone(),
                    category: worker.category.clone(),
                }),
            },
            start_time: Some(start_time),
        }
    }

    /// The worker this entry describes, as the runner knows workers; `None` for a process that
    /// is not a worker or has no port.
    pub fn worker(&self) -> Option<Worker> {
        let service = self.services.worker_node_service.as_ref()?;
        let node = &self.druid_node;
        let (scheme, port) = if node.enable_tls_port && node.tls_port > 0 {
            ("https", node.tls_port)
        } else if node.enable_plaintext_port && node.plaintext_port > 0 {
            ("http", node.plaintext_port)
        } else {
            return None;
        };
        Some(Worker {
            scheme: scheme.into(),
            host: format!("{}:{port}", node.host),
            ip: service.ip.clone(),
            capacity: service.capacity,
            version: service.version.clone(),
            category: service.category.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TaskId, TaskResource, TaskStatus};

    #[test]
    fn history_items_use_druids_type_names() {
        let id = TaskId::new("t1").unwrap();
        let a = TaskAnnouncement::new(
            TaskStatus::running(id.clone()),
            "noop",
            TaskResource::for_task(&id),
            "ds",
        );
        let items = vec![
            WorkerHistoryItem::TaskUpdate {
                task_announcement: Box::new(a),
            },
            WorkerHistoryItem::TaskRemoval {
                task_id: "t1".into(),
            },
            WorkerHistoryItem::Metadata { disabled: true },
        ];
        let v = serde_json::to_value(&items).unwrap();
        assert_eq!(v[0]["type"], "taskUpdate");
        assert_eq!(v[0]["taskAnnouncement"]["id"], "t1");
        assert_eq!(v[1]["type"], "taskRemoval");
        assert_eq!(v[1]["taskId"], "t1");
        assert_eq!(v[2]["type"], "metadata");
        assert_eq!(v[2]["disabled"], true);
        let back: Vec<WorkerHistoryItem> = serde_json::from_value(v).unwrap();
        assert_eq!(back, items);
    }

    #[test]
    fn snapshot_json_matches_druid() {
        let s = ChangeRequestsSnapshot::success(
            ChangeCounter {
                counter: 3,
                hash: 77,
            },
            vec![],
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"resetCounter":false,"counter":{"counter":3,"hash":77},"requests":[]})
        );
        let r: ChangeRequestsSnapshot = serde_json::from_str(
            r#"{"resetCounter":true,"resetCause":"counter[...] failed to match","counter":null,"requests":null}"#,
        )
        .unwrap();
        assert!(r.reset_counter);
    }

    #[test]
    fn discovery_entry_round_trips_to_a_worker() {
        let w = Worker {
            scheme: "http".into(),
            host: "mm1:8091".into(),
            ip: "10.0.0.5".into(),
            capacity: 4,
            version: "0".into(),
            category: crate::DEFAULT_WORKER_CATEGORY.into(),
        };
        let node = DiscoveryDruidNode::middle_manager(&w, "2026-12-02T00:00:00.000Z".into());
        let v = serde_json::to_value(&node).unwrap();
        assert_eq!(v["nodeType"], "middleManager");
        assert_eq!(v["druidNode"]["plaintextPort"], 8091);
        assert_eq!(
            v["services"]["workerNodeService"]["type"],
            "workerNodeService"
        );
        let back: DiscoveryDruidNode = serde_json::from_value(v).unwrap();
        assert_eq!(back.worker(), Some(w.clone()));
        let tls = Worker {
            scheme: "https".into(),
            ..w
        };
        let node = DiscoveryDruidNode::middle_manager(&tls, "x".into());
        assert_eq!(node.druid_node.tls_port, 8091);
        assert_eq!(node.worker(), Some(tls));
    }
}
