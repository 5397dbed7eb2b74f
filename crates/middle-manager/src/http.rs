//! The worker API (Druid's WorkerResource, base `/druid/worker/v1`).

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use drover_core::task_logs::open_at;
use drover_core::TaskId;
use drover_service::task_log_storage::{StoredLog, TaskLogStorage};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};

use crate::forking::TaskDir;
use crate::monitor::Notice;

#[derive(Clone)]
pub struct HttpState {
    pub worker_host: String,
    pub enabled: watch::Sender<bool>,
    pub notices: mpsc::Sender<Notice>,
    pub base_task_dir: PathBuf,
    pub task_logs: TaskLogStorage,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/druid/worker/v1/enable", post(enable))
        .route("/druid/worker/v1/disable", post(disable))
        .route("/druid/worker/v1/enabled", get(enabled))
        .route("/druid/worker/v1/tasks", get(tasks))
        .route("/druid/worker/v1/task/{id}/shutdown", post(shutdown))
        .route("/druid/worker/v1/task/{id}/log", get(log))
        .route("/status/health", get(|| async { Json(true) }))
        .with_state(state)
}

/// Every error this API returns: a status and `{"error": message}`.
struct HttpError(StatusCode, String);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    HttpError(status, message.into()).into_response()
}

fn task_id(raw: &str) -> Result<TaskId, HttpError> {
    TaskId::new(raw).map_err(|e| HttpError(StatusCode::BAD_REQUEST, e.to_string()))
}

async fn enable(State(s): State<HttpState>) -> Response {
    s.enabled.send_replace(true);
    Json(json!({ s.worker_host.clone(): "enabled" })).into_response()
}

async fn disable(State(s): State<HttpState>) -> Response {
    s.enabled.send_replace(false);
    Json(json!({ s.worker_host.clone(): "disabled" })).into_response()
}

async fn enabled(State(s): State<HttpState>) -> Response {
    let on = *s.enabled.borrow();
    Json(json!({ s.worker_host.clone(): on })).into_response()
}

async fn ask<T>(
    s: &HttpState,
    make: impl FnOnce(oneshot::Sender<T>) -> Notice,
) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    let unavailable = || {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the middle manager is stopping",
        )
    };
    s.notices.send(make(tx)).await.map_err(|_| unavailable())?;
    rx.await.map_err(|_| unavailable())
}

async fn tasks(State(s): State<HttpState>) -> Response {
    match ask(&s, |reply| Notice::ListTasks { reply }).await {
        Ok(ids) => Json(ids).into_response(),
        Err(e) => e.into_response(),
    }
}

/// 200 also for unknown ids, as Druid answers.
async fn shutdown(State(s): State<HttpState>, Path(id): Path<String>) -> Response {
    let id = match task_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match ask(&s, |reply| Notice::Shutdown {
        id: id.clone(),
        reply,
    })
    .await
    {
        Ok(()) => Json(json!({ "task": id })).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct LogQuery {
    offset: Option<i64>,
}

/// The live log of a running task, else the pushed one.
async fn log(
    State(s): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    let id = match task_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let offset = q.offset.unwrap_or(0);
    let shown = id.to_string();
    let live = TaskDir::for_task(&s.base_task_dir, &id).join("log");
    let live = tokio::task::spawn_blocking(move || open_at(&live, offset))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    let opened = match live {
        Ok(Some(f)) => Ok(Some(StoredLog::File(f))),
        Ok(None) => s.task_logs.open(&id, offset).await,
        Err(e) => Err(e),
    };
    match opened {
        Ok(Some(log)) => (
            [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
            log.into_body(),
        )
            .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no log for task [{shown}] on this worker"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub fn stream_file(file: std::fs::File) -> Response {
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    (
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        Body::from_stream(stream),
    )
        .into_response()
}
