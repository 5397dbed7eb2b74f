//! The streaming task chat API (see docs/api.md), base `/druid/worker/v1/chat/{taskId}`: what
//! the supervisor uses to pause a task, read its offsets, set its end offsets and stop it.
//! Reads come from the reader's snapshot; changes are messages to the reader.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use drover_kafka::Offsets;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use super::reader::{Control, Snapshot, Status};
use crate::chat_server::not_this_task;
use crate::live::LiveReport;

#[derive(Clone)]
pub struct ChatState {
    pub task_id: String,
    pub controls: Sender<Control>,
    pub snapshot: watch::Receiver<Snapshot>,
    /// Row counts, moving averages and recent parse errors.
    pub live: Arc<LiveReport>,
}

pub fn router(state: ChatState) -> Router {
    use drover_kafka::chat::{self as route, server_path};
    Router::new()
        .route(&server_path(route::STATUS), get(status))
        .route(&server_path(route::OFFSETS_CURRENT), get(current))
        .route(&server_path(route::OFFSETS_END), get(end).post(set_end))
        .route(&server_path(route::PAUSE), post(pause))
        .route(&server_path(route::RESUME), post(resume))
        .route(&server_path(route::STOP), post(stop))
        .route(&server_path(route::CHECKPOINTS), get(checkpoints))
        .route(&server_path(route::TIME_START), get(start_time))
        .route(&server_path(route::ROW_STATS), get(row_stats))
        .route(&server_path(route::LIVE_REPORTS), get(live_reports))
        .route(
            &server_path(route::UNPARSEABLE_EVENTS),
            get(unparseable_events),
        )
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The snapshot, if `id` is this task.
fn snap(s: &ChatState, id: &str) -> Result<Snapshot, Box<Response>> {
    if id != s.task_id {
        return Err(Box::new(not_this_task(id)));
    }
    Ok(s.snapshot.borrow().clone())
}

async fn status(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    match snap(&s, &id) {
        Ok(snap) => Json(snap.status).into_response(),
        Err(r) => *r,
    }
}

async fn current(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    match snap(&s, &id) {
        Ok(snap) => Json(snap.current).into_response(),
        Err(r) => *r,
    }
}

async fn end(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    match snap(&s, &id) {
        Ok(snap) => Json(snap.sequences.last().end.clone()).into_response(),
        Err(r) => *r,
    }
}

async fn checkpoints(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    match snap(&s, &id) {
        Ok(snap) => {
            let map: serde_json::Map<String, Value> = snap
                .sequences
                .all()
                .iter()
                .map(|q| (q.id.to_string(), json!(q.start)))
                .collect();
            Json(map).into_response()
        }
        Err(r) => *r,
    }
}

async fn start_time(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    match snap(&s, &id) {
        Ok(snap) => Json(snap.start_time).into_response(),
        Err(r) => *r,
    }
}

async fn row_stats(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    match snap(&s, &id) {
        Ok(_) => Json(s.live.row_stats()).into_response(),
        Err(r) => *r,
    }
}

async fn live_reports(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    match snap(&s, &id) {
        Ok(_) => Json(s.live.live_reports()).into_response(),
        Err(r) => *r,
    }
}

/// A streaming task's parse errors are one list, newest first (Druid's
/// `SeekableStreamIndexTaskRunner`), not a map by phase as a batch task's.
async fn unparseable_events(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    match snap(&s, &id) {
        Ok(_) => Json(s.live.errors()).into_response(),
        Err(r) => *r,
    }
}

async fn pause(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    let snapshot = match snap(&s, &id) {
        Ok(snap) => snap,
        Err(r) => return *r,
    };
    if !matches!(snapshot.status, Status::Reading | Status::Paused) {
        return error(
            StatusCode::CONFLICT,
            format!(
                "Can't pause, task is not in a pausable state (state: [{}])",
                serde_json::to_value(snapshot.status)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("?")
            ),
        );
    }
    let (tx, rx) = oneshot::channel();
    if s.controls.send(Control::Pause(tx)).is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the task is no longer reading",
        );
    }
    match tokio::time::timeout(Duration::from_secs(2), rx).await {
        Ok(Ok(offsets)) => Json(offsets).into_response(),
        Ok(Err(_)) => error(
            StatusCode::CONFLICT,
            "Can't pause, task is not in a pausable state",
        ),
        Err(_) => (
            StatusCode::ACCEPTED,
            "Request accepted but task has not yet paused",
        )
            .into_response(),
    }
}

async fn resume(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    if let Err(r) = snap(&s, &id) {
        return *r;
    }
    let (tx, rx) = oneshot::channel();
    if s.controls.send(Control::Resume(tx)).is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the task is no longer reading",
        );
    }
    match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the task did not resume within 5 s",
        ),
    }
}

#[derive(Deserialize)]
struct Finish {
    finish: Option<bool>,
}

async fn set_end(
    State(s): State<ChatState>,
    Path(id): Path<String>,
    Query(q): Query<Finish>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = snap(&s, &id) {
        return *r;
    }
    let end: Offsets = match serde_json::from_slice::<Option<serde_json::Map<String, Value>>>(&body)
    {
        Ok(Some(map)) => match drover_kafka::task::parse_offset_map("body", &map) {
            Ok(o) => o,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
        },
        Ok(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Request body must contain a map of { partition:endOffset }",
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not an offset map: {e}"),
            )
        }
    };
    let (tx, rx) = oneshot::channel();
    let msg = Control::SetEndOffsets {
        end,
        finish: q.finish.unwrap_or(true),
        reply: tx,
    };
    if s.controls.send(msg).is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the task is no longer reading",
        );
    }
    match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok(Ok(end))) => Json(end).into_response(),
        Ok(Ok(Err(e))) => error(StatusCode::BAD_REQUEST, e.0),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the task did not answer within 10 s",
        ),
    }
}

async fn stop(State(s): State<ChatState>, Path(id): Path<String>) -> Response {
    if let Err(r) = snap(&s, &id) {
        return *r;
    }
    s.controls.send(Control::Stop).ok();
    StatusCode::OK.into_response()
}
