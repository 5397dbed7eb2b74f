//! The overlord's HTTP API under `/druid/indexer/v1` (reference §2).

mod error;
mod tasks;
mod workers;

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use drover_core::task_logs::FileTaskLogs;
use drover_metadata::MetadataStore;
use serde_json::json;

pub use error::ApiError;

use crate::queue::QueueHandle;
use crate::runner::{RunnerHandle, RunnerSnapshot};

#[derive(Clone)]
pub struct AppState {
    pub store: MetadataStore,
    pub queue: QueueHandle,
    pub runner: RunnerHandle,
    pub task_logs: FileTaskLogs,
    pub http: reqwest::Client,
    pub advertised_url: String,
    pub max_task_payload_bytes: usize,
    pub recently_finished_threshold: Duration,
}

impl AppState {
    pub(crate) async fn runner_snapshot(&self) -> Result<RunnerSnapshot, ApiError> {
        self.runner
            .snapshot()
            .await
            .ok_or_else(|| ApiError::Unavailable("the task runner is not running".into()))
    }
}

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/task", post(tasks::submit))
        .route("/task/{id}", get(tasks::payload))
        .route("/task/{id}/status", get(tasks::status))
        .route("/task/{id}/shutdown", post(tasks::shutdown))
        .route("/task/{id}/log", get(tasks::log))
        .route("/task/{id}/reports", get(tasks::reports))
        .route("/task/{id}/segments", get(tasks::segments))
        .route("/taskStatus", post(tasks::statuses))
        .route("/tasks", get(tasks::list))
        .route("/runningTasks", get(tasks::running))
        .route("/pendingTasks", get(tasks::pending))
        .route("/waitingTasks", get(tasks::waiting))
        .route("/completeTasks", get(tasks::complete))
        .route("/workers", get(workers::list))
        .route(
            "/worker",
            get(workers::get_config).post(workers::set_config),
        )
        .route("/worker/history", get(workers::history))
        .route("/worker/{host}/enable", post(workers::enable))
        .route("/worker/{host}/disable", post(workers::disable))
        .route("/totalWorkerCapacity", get(workers::total_capacity))
        .route("/leader", get(leader))
        .route("/isLeader", get(is_leader));
    Router::new()
        .nest("/druid/indexer/v1", v1)
        .route("/status/health", get(|| async { Json(true) }))
        .fallback(|| async { ApiError::NotFound(json!({ "error": "no such route" })) })
        .with_state(state)
}

/// The leader's URL as plain text. One overlord leads alone until leader election lands.
async fn leader(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        s.advertised_url.clone(),
    )
}

async fn is_leader() -> impl IntoResponse {
    Json(json!({ "leader": true }))
}
