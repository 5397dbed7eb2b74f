//! What an `index_parallel` task's chat API tells about its sub-tasks, as Druid's parallel
//! task answers it: `/mode`, `/phase`, `/progress`, `/subtasks/running`, `/subtaskspecs`
//! (`/running`, `/complete`) and `/subtaskspec/{specId}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use drover_kafka::chat::server_path;
use serde_json::{json, Value};

use crate::chat_server::not_this_task;

/// The supervisor task's view of its sub-tasks; shared with its chat API.
pub struct Tracker {
    task_id: String,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    parallel: bool,
    phase: Option<&'static str>,
    /// The phase's sub-task specs, by spec id.
    specs: BTreeMap<String, Value>,
    /// Spec id → the task id of its running attempt.
    running: BTreeMap<String, String>,
    complete: Vec<String>,
    succeeded: u64,
    failed: u64,
}

impl Tracker {
    pub fn new(task_id: &str) -> Arc<Tracker> {
        Arc::new(Tracker {
            task_id: task_id.to_string(),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn set_parallel(&self) {
        self.with(|i| i.parallel = true);
    }

    /// A new phase with these sub-task specs (id, spec).
    pub fn start_phase(&self, phase: &'static str, specs: Vec<(String, Value)>) {
        self.with(|i| {
            i.phase = Some(phase);
            i.specs = specs.into_iter().collect();
            i.running.clear();
            i.complete.clear();
            i.succeeded = 0;
            i.failed = 0;
        });
    }

    pub fn started(&self, spec_id: &str, task_id: &str) {
        self.with(|i| i.running.insert(spec_id.to_string(), task_id.to_string()));
    }

    pub fn ended(&self, spec_id: &str, success: bool) {
        self.with(|i| {
            i.running.remove(spec_id);
            if success {
                i.succeeded += 1;
                i.complete.push(spec_id.to_string());
            } else {
                i.failed += 1;
            }
        });
    }

    fn progress(&self) -> Value {
        self.with(|i| {
            let total = i.specs.len() as u64;
            json!({
                "running": i.running.len(),
                "succeeded": i.succeeded,
                "failed": i.failed,
                "complete": i.succeeded,
                "total": total,
                "estimatedExpectedSucceeded": total,
                "expectedSucceeded": total,
            })
        })
    }
}

type Shared = Arc<Tracker>;

fn answer(t: &Tracker, id: &str, f: impl FnOnce(&mut Inner) -> Value) -> Response {
    if id != t.task_id {
        return not_this_task(id);
    }
    Json(t.with(f)).into_response()
}

/// The chat routes of an `index_parallel` task.
pub fn routes(tracker: Shared) -> Router {
    Router::new()
        .route(
            &server_path("mode"),
            get(
                |State(t): State<Shared>, Path(id): Path<String>| async move {
                    answer(&t, &id, |i| {
                        json!(if i.parallel { "parallel" } else { "sequential" })
                    })
                },
            ),
        )
        .route(
            &server_path("phase"),
            get(
                |State(t): State<Shared>, Path(id): Path<String>| async move {
                    answer(&t, &id, |i| json!(i.phase))
                },
            ),
        )
        .route(
            &server_path("progress"),
            get(
                |State(t): State<Shared>, Path(id): Path<String>| async move {
                    if id != t.task_id {
                        return not_this_task(&id);
                    }
                    Json(t.progress()).into_response()
                },
            ),
        )
        .route(
            &server_path("subtasks/running"),
            get(
                |State(t): State<Shared>, Path(id): Path<String>| async move {
                    answer(&t, &id, |i| json!(i.running.values().collect::<Vec<_>>()))
                },
            ),
        )
        .route(
            &server_path("subtaskspecs"),
            get(
                |State(t): State<Shared>, Path(id): Path<String>| async move {
                    answer(&t, &id, |i| json!(i.specs.values().collect::<Vec<_>>()))
                },
            ),
        )
        .route(
            &server_path("subtaskspecs/running"),
            get(
                |State(t): State<Shared>, Path(id): Path<String>| async move {
                    answer(&t, &id, |i| {
                        json!(i
                            .running
                            .keys()
                            .filter_map(|k| i.specs.get(k))
                            .collect::<Vec<_>>())
                    })
                },
            ),
        )
        .route(
            &server_path("subtaskspecs/complete"),
            get(
                |State(t): State<Shared>, Path(id): Path<String>| async move {
                    answer(&t, &id, |i| {
                        json!(i
                            .complete
                            .iter()
                            .filter_map(|k| i.specs.get(k))
                            .collect::<Vec<_>>())
                    })
                },
            ),
        )
        .route(
            &server_path("subtaskspec/{spec}"),
            get(
                |State(t): State<Shared>, Path((id, spec)): Path<(String, String)>| async move {
                    if id != t.task_id {
                        return not_this_task(&id);
                    }
                    match t.with(|i| i.specs.get(&spec).cloned()) {
                        Some(s) => Json(s).into_response(),
                        None => (
                            axum::http::StatusCode::NOT_FOUND,
                            Json(json!({"error": format!("no sub-task spec [{spec}]")})),
                        )
                            .into_response(),
                    }
                },
            ),
        )
        .with_state(tracker)
}
