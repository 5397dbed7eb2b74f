//! The middle manager's side of the HTTP runner (Druid's `WorkerTaskManager` with
//! `TaskManagementResource`), used when `runner_type = "httpRemote"`: the worker announces
//! itself through node discovery in ZooKeeper, takes assignments by `POST assignTask`, and
//! serves its task announcements as a change history the overlord long-polls. No task JSON and
//! no status goes through ZooKeeper.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use drover_core::worker_sync::{ChangeCounter, DiscoveryDruidNode, MIDDLE_MANAGER_ROLE};
use drover_core::{TaskId, TaskStatus, Worker, WorkerHost};
use drover_task::Task;
use drover_zk::{claim_ephemeral, encode_json, ensure_path, ZkPaths, ZkSession};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};

use crate::monitor::{Notice, StatusWrite};
use crate::restore::WorkerFiles;
use crate::worker_history::WorkerHistory;

const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Longest a sync request may wait for a change (the overlord asks for less).
const MAX_SYNC_WAIT: Duration = Duration::from_secs(300);
/// Largest assignment taken: the overlord's largest `max_task_payload_bytes` default and more.
const MAX_TASK_BYTES: usize = 64 * 1024 * 1024;

/// Applies the monitor's status writes to the history, keeping finished tasks on disk until the
/// overlord has seen them.
pub async fn run_status_writer(
    history: WorkerHistory,
    files: WorkerFiles,
    mut writes: mpsc::UnboundedReceiver<StatusWrite>,
) {
    while let Some(write) = writes.recv().await {
        match write {
            StatusWrite::Status(announcement) => {
                if announcement.status.is_complete() {
                    if let Err(e) = files.write_completed(&announcement) {
                        tracing::error!(task = %announcement.id, error = %e, "cannot keep the finished task's status on disk");
                    }
                }
                history.update(*announcement);
            }
            StatusWrite::DeleteAssignment(_) => {}
            StatusWrite::Flush(reply) => {
                reply.send(()).ok();
            }
        }
    }
}

/// Reports the worker disabled or enabled through the history, as Druid's `Metadata` item.
pub async fn follow_enabled(history: WorkerHistory, mut enabled: watch::Receiver<bool>) {
    loop {
        history.set_disabled(!*enabled.borrow_and_update());
        if enabled.changed().await.is_err() {
            return;
        }
    }
}

/// Keeps this worker's node-discovery znode, `${base}/internal-discovery/MIDDLE_MANAGER/<host>`,
/// once per ZooKeeper session.
pub async fn run_announcer(session: ZkSession, paths: ZkPaths, host: WorkerHost, worker: Worker) {
    let dir = paths.discovery(MIDDLE_MANAGER_ROLE);
    let path = format!("{dir}/{host}");
    let node = DiscoveryDruidNode::middle_manager(&worker, drover_core::time::now_iso());
    let data = encode_json(&node);
    let mut sessions = session.subscribe();
    loop {
        let client = session.client().await;
        sessions.mark_unchanged();
        let announced = async {
            ensure_path(&client, &dir).await?;
            claim_ephemeral(&client, &path, &data).await
        }
        .await;
        match announced {
            Ok(()) => {
                tracing::info!(worker = %host, "announced through node discovery");
                if sessions.changed().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "node-discovery announcement failed; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}

/// Druid's completed-task cleanup: finished tasks the overlord has recorded as complete (or
/// does not know) are forgotten, so the history does not grow for ever.
pub async fn clean_completed(
    history: WorkerHistory,
    files: WorkerFiles,
    overlords: Arc<std::sync::RwLock<Vec<String>>>,
    client: reqwest::Client,
    period: Duration,
) {
    let mut every = tokio::time::interval(period);
    every.reset();
    loop {
        every.tick().await;
        let done = history.completed();
        if done.is_empty() {
            continue;
        }
        let Some(leader) = overlords.read().ok().and_then(|o| o.first().cloned()) else {
            continue;
        };
        let url = format!("{leader}/druid/indexer/v1/taskStatus");
        let answer = async {
            client
                .post(&url)
                .json(&done)
                .send()
                .await?
                .error_for_status()?
                .json::<std::collections::HashMap<String, TaskStatus>>()
                .await
        }
        .await;
        let known = match answer {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!(%url, error = %e, "cannot ask the overlord which finished tasks it has recorded; trying again later");
                continue;
            }
        };
        for id in done {
            if known.get(id.as_str()).is_none_or(|s| s.is_complete()) {
                files.remove_completed(&id);
                history.remove(&id);
            }
        }
    }
}

#[derive(Clone)]
pub struct SyncState {
    pub history: WorkerHistory,
    pub notices: mpsc::Sender<Notice>,
}

/// `GET /druid-internal/v1/worker` and `POST /druid-internal/v1/worker/assignTask`.
pub fn router(state: SyncState) -> Router {
    Router::new()
        .route("/druid-internal/v1/worker", get(changes))
        .route("/druid-internal/v1/worker/", get(changes))
        // A task's JSON may be as large as the overlord accepts (its max_task_payload_bytes),
        // not axum's 2 MB default.
        .route(
            "/druid-internal/v1/worker/assignTask",
            post(assign).layer(axum::extract::DefaultBodyLimit::max(MAX_TASK_BYTES)),
        )
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct SyncQuery {
    counter: Option<i64>,
    hash: Option<i64>,
    timeout: Option<i64>,
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// The changes since `counter`/`hash` (a full snapshot for a negative counter), waiting up to
/// `timeout` ms for one; 204 when none came (as Druid's async timeout answers).
async fn changes(State(s): State<SyncState>, Query(q): Query<SyncQuery>) -> Response {
    let timeout = match q.timeout {
        Some(t) if t > 0 => Duration::from_millis(t as u64).min(MAX_SYNC_WAIT),
        _ => return bad_request("timeout must be positive.".into()),
    };
    let since = ChangeCounter {
        counter: q.counter.unwrap_or(-1),
        hash: q.hash.unwrap_or(0),
    };
    match s.history.changes_since(since, timeout).await {
        Some(snapshot) => Json(snapshot).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Takes an assignment; repeating one is harmless. Answered once the worker has recorded it.
async fn assign(State(s): State<SyncState>, body: Bytes) -> Response {
    let task = match Task::from_json_bytes(&body) {
        Ok(task) => task,
        Err(e) => return bad_request(format!("the body is not a task: {e}")),
    };
    let id: TaskId = task.id.clone();
    let (tx, rx) = oneshot::channel();
    let sent = s
        .notices
        .send(Notice::AssignedOverHttp { task, reply: tx })
        .await;
    if sent.is_err() || !rx.await.unwrap_or(false) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": format!("the worker is stopping; task [{id}] not taken") })),
        )
            .into_response();
    }
    StatusCode::OK.into_response()
}
