//! What an `index_parallel` task's chat API tells about its sub-tasks, as Druid's parallel
//! task answers it: `/mode`, `/phase`, `/progress`, `/subtasks/running`, `/subtaskspecs`
//! (`/running`, `/complete`) and `/subtaskspec/{specId}`. The overlord also tells it here
//! when one of its sub-tasks has ended (`POST …/subtaskEnded`, Drover's own).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use drover_kafka::chat::{server_path, SUB_TASK_ENDED};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::chat_server::not_this_task;

/// The supervisor task's view of its sub-tasks; shared with its chat API.
pub struct Tracker {
    task_id: String,
    inner: Mutex<Inner>,
    /// Signalled when the overlord says a sub-task has ended.
    ended: Notify,
}

/// The most sub-task ends held until the runner next looks; past it, one more end makes the
/// runner ask about every running sub-task, as a poll would.
const MAX_TOLD: usize = 1024;

/// What woke the runner up.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// The overlord said these sub-tasks have ended (ids as it gave them).
    Told(BTreeSet<String>),
    /// Time to poll every running sub-task.
    Poll,
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
    /// Sub-tasks the overlord said have ended, since the runner last looked.
    told: BTreeSet<String>,
    /// More were told than `told` holds.
    told_overflow: bool,
}

impl Tracker {
    pub fn new(task_id: &str) -> Arc<Tracker> {
        Arc::new(Tracker {
            task_id: task_id.to_string(),
            inner: Mutex::new(Inner::default()),
            ended: Notify::new(),
        })
    }

    /// The overlord says sub-task `id` has ended.
    pub fn told_ended(&self, id: &str) {
        self.with(|i| {
            if i.told.len() < MAX_TOLD {
                i.told.insert(id.to_string());
            } else {
                i.told_overflow = true;
            }
        });
        self.ended.notify_one();
    }

    /// Waits until the overlord says a sub-task has ended, or until `poll_at`. The ends told
    /// before this call count: they are held until the runner looks.
    pub async fn next_wake(&self, poll_at: Instant) -> Wake {
        let told = tokio::time::timeout_at(poll_at, self.ended.notified()).await;
        self.with(|i| {
            let overflow = std::mem::take(&mut i.told_overflow);
            let ended = std::mem::take(&mut i.told);
            if told.is_err() || overflow {
                Wake::Poll
            } else {
                Wake::Told(ended)
            }
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
            &server_path(SUB_TASK_ENDED),
            post(
                |State(t): State<Shared>, Path(id): Path<String>, body: axum::body::Bytes| async move {
                    if id != t.task_id {
                        return not_this_task(&id);
                    }
                    let ended = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|b| b.get("id").and_then(Value::as_str).map(String::from));
                    match ended {
                        Some(sub_task) => {
                            t.told_ended(&sub_task);
                            Json(json!({})).into_response()
                        }
                        None => (
                            axum::http::StatusCode::BAD_REQUEST,
                            Json(json!({"error": "the body must be {\"id\": <the sub-task's id>}"})),
                        )
                            .into_response(),
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const POLL: Duration = Duration::from_secs(1);

    fn poll_at() -> Instant {
        Instant::now() + POLL
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_told_end_the_runner_polls_after_the_interval() {
        let t = Tracker::new("sup");
        let started = tokio::time::Instant::now();
        assert_eq!(t.next_wake(poll_at()).await, Wake::Poll);
        assert_eq!(started.elapsed(), POLL);
    }

    #[tokio::test(start_paused = true)]
    async fn an_end_told_before_the_runner_waits_wakes_it_at_once() {
        let t = Tracker::new("sup");
        t.told_ended("a");
        t.told_ended("b");
        let started = tokio::time::Instant::now();
        let ids = BTreeSet::from(["a".to_string(), "b".to_string()]);
        assert_eq!(t.next_wake(poll_at()).await, Wake::Told(ids));
        assert_eq!(started.elapsed(), Duration::ZERO);
        // Taken: the next wait is a poll again.
        assert_eq!(t.next_wake(poll_at()).await, Wake::Poll);
    }

    #[tokio::test(start_paused = true)]
    async fn an_end_told_while_the_runner_waits_wakes_it() {
        let t = Tracker::new("sup");
        let teller = t.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            teller.told_ended("a");
        });
        let started = tokio::time::Instant::now();
        let ids = BTreeSet::from(["a".to_string()]);
        assert_eq!(t.next_wake(poll_at()).await, Wake::Told(ids));
        assert_eq!(started.elapsed(), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn ends_told_one_after_another_do_not_put_off_the_poll() {
        let t = Tracker::new("sup");
        let teller = t.clone();
        tokio::spawn(async move {
            for i in 0..10 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                teller.told_ended(&format!("t{i}"));
            }
        });
        let poll = poll_at();
        let mut wakes = Vec::new();
        loop {
            let wake = t.next_wake(poll).await;
            let polled = wake == Wake::Poll;
            wakes.push(wake);
            if polled {
                break;
            }
        }
        // Told at 300, 600 and 900 ms; polled at 1 s as planned.
        assert_eq!(wakes.len(), 4, "{wakes:?}");
        assert_eq!(Instant::now(), poll);
    }

    #[tokio::test(start_paused = true)]
    async fn too_many_told_ends_make_a_poll_of_everything() {
        let t = Tracker::new("sup");
        for i in 0..=MAX_TOLD {
            t.told_ended(&format!("t{i}"));
        }
        assert_eq!(t.next_wake(poll_at()).await, Wake::Poll);
        assert!(t.with(|i| i.told.is_empty() && !i.told_overflow));
    }
}
