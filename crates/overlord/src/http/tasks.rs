//! Task routes (reference §2.2).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use drover_core::time::{parse_iso, to_iso, EPOCH_ISO};
use drover_core::{RunnerTaskState, Task, TaskId, TaskKind, TaskLocation, TaskStatusPlus};
use drover_metadata::{CompleteTaskFilter, TaskInfo};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::runner::RunnerSnapshot;

const NO_LOG: &str =
    "No log was found for this task. The task may not exist, or it may not have begun running yet.";
const NO_REPORTS: &str =
    "No task reports were found for this task. The task may not exist, or it may not have begun running yet.";

/// How much longer than the queue's own deadline a submission waits for the queue's answer: the
/// queue answers by its deadline unless it is busy with something else.
const SUBMIT_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    TaskId::new(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// `POST /task`. The body is read against the size limit before anything is parsed or stored.
pub async fn submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = s.max_task_payload_bytes;
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "Task payload is larger than the limit of {limit} bytes (max_task_payload_bytes)"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes: Bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.to_string().contains("length limit") {
            too_large()
        } else if drover_service::http_server::is_body_timeout(&e) {
            ApiError::RequestTimeout(e.to_string())
        } else {
            ApiError::BadRequest(format!("cannot read the request body: {e}"))
        }
    })?;
    let task = Task::from_json_bytes(&bytes).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // Refused now rather than failed later: the ZooKeeper runner could never hand it out.
    if let Some(reason) =
        crate::runner::znode_too_large(task.to_json_bytes().len(), s.max_znode_bytes)
    {
        return Err(ApiError::BadRequest(reason));
    }
    if task.kind == TaskKind::Index {
        // The whole ingestion spec is checked now, so a bad one is a 400 naming the field, not
        // a task that fails later on a middle manager.
        drover_ingest::IngestionSpec::from_task(task.payload())
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    if task.kind == TaskKind::Kafka {
        drover_ingest::IngestionSpec::from_stream_task(task.payload())
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        drover_kafka::KafkaTaskIo::from_task(task.payload()).map_err(ApiError::BadRequest)?;
    }
    let id = task.id.clone();
    // Answered by the deadline, and stored by then or never: a client that gives up on a slow
    // metadata store must not find its task running later.
    let deadline = tokio::time::Instant::now() + s.task_submit_timeout;
    let queue = s.leader()?.queue.clone();
    let added = tokio::time::timeout_at(deadline + SUBMIT_GRACE, queue.add(task, Some(deadline)))
        .await
        .map_err(|_| {
            ApiError::Unavailable(format!(
                "the task queue did not take task [{id}] within {:?} (task_submit_timeout); \
                 it was not stored, submit it again",
                s.task_submit_timeout
            ))
        })?;
    added.map_err(|e| match e {
        crate::queue::QueueError::Fenced(_) => {
            s.leadership.report_fenced();
            e.into()
        }
        crate::queue::QueueError::Storage(drover_metadata::MetadataError::Deadline {
            maybe_stored: true,
        }) => ApiError::Unavailable(format!(
            "the metadata store answered too late: task [{id}] may or may not have been stored; \
             GET /druid/indexer/v1/task/{id}/status tells, and submitting it again answers \
             400 \"already exists\" if it was"
        )),
        crate::queue::QueueError::Storage(drover_metadata::MetadataError::Deadline {
            maybe_stored: false,
        }) => ApiError::Unavailable(format!(
            "the metadata store did not answer within {:?} (task_submit_timeout); task [{id}] \
             was not stored, submit it again",
            s.task_submit_timeout
        )),
        e => e.into(),
    })?;
    Ok(Json(json!({ "task": id })).into_response())
}

/// `GET /task/{id}`: `{"task","payload"}`, 404 with a null payload.
pub async fn payload(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = task_id(&id)?;
    match s.leader()?.store.get_task(&id).await? {
        Some(row) => Ok(Json(json!({ "task": id, "payload": row.task.payload() })).into_response()),
        None => Err(ApiError::NotFound(json!({ "task": id, "payload": null }))),
    }
}

/// `GET /task/{id}/status`: `{"task","status":TaskStatusPlus}`, 404 with a null status.
pub async fn status(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = task_id(&id)?;
    let Some(info) = s.leader()?.store.get_task_info(&id).await? else {
        return Err(ApiError::NotFound(json!({ "task": id, "status": null })));
    };
    let snapshot = s.runner_snapshot().await?;
    let view = snapshot.task(&id);
    let mut plus = status_plus(&info, view.map(|v| (v.state, &v.location)));
    if info.status.is_complete() && view.is_none() {
        // Druid's status route says WAITING for any task its runner does not hold.
        plus.runner_status_code = Some(RunnerTaskState::Waiting);
    }
    Ok(Json(json!({ "task": id, "status": plus })).into_response())
}

/// `POST /task/{id}/shutdown`: 200 also for unknown or finished tasks, as in Druid.
pub async fn shutdown(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = task_id(&id)?;
    s.leader()?
        .queue
        .shutdown(id.clone(), "Shutdown request from user")
        .await?;
    Ok(Json(json!({ "task": id })).into_response())
}

#[derive(Deserialize)]
pub struct LogQuery {
    offset: Option<i64>,
}

/// `GET /task/{id}/log`: streamed from the middle manager while the task runs, from task-log
/// storage afterwards.
pub async fn log(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let id = task_id(&id)?;
    let offset = q.offset.unwrap_or(0);
    let snapshot = s.runner_snapshot().await?;
    if let Some(worker) = snapshot.task(&id).and_then(|v| v.worker.clone()) {
        let url = format!(
            "{}/druid/worker/v1/task/{id}/log?offset={offset}",
            snapshot.worker_url(&worker)
        );
        match s.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => {
                let body = Body::from_stream(r.bytes_stream());
                return Ok(
                    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], body).into_response(),
                );
            }
            Ok(r) => {
                tracing::debug!(%url, status = %r.status(), "worker has no log; trying task-log storage")
            }
            Err(e) => {
                tracing::debug!(%url, error = %e, "worker unreachable; trying task-log storage")
            }
        }
    }
    let logs = s.task_logs.clone();
    let opened = tokio::task::spawn_blocking(move || logs.open(&id, offset))
        .await
        .map_err(ApiError::internal)?;
    match opened.map_err(ApiError::internal)? {
        Some(file) => {
            let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
            Ok((
                [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
                Body::from_stream(stream),
            )
                .into_response())
        }
        None => Err(ApiError::NotFoundText(NO_LOG.into())),
    }
}

/// `GET /task/{id}/reports`: the report a finished task pushed to task-log storage. (Druid also
/// asks a running peon for live reports; batch peons here report once, at the end.)
pub async fn reports(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = task_id(&id)?;
    let logs = s.task_logs.clone();
    let report = tokio::task::spawn_blocking(move || logs.read_report(&id))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    match report {
        Some(bytes) => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(bytes),
        )
            .into_response()),
        None => Err(ApiError::NotFoundText(NO_REPORTS.into())),
    }
}

/// `GET /task/{id}/segments`: deprecated in Druid, always 404.
pub async fn segments(Path(id): Path<String>) -> Result<Response, ApiError> {
    task_id(&id)?;
    Err(ApiError::NotFound(json!({
        "error": "Segment IDs committed by a task action are not persisted anymore. Use the metric 'segment/added/bytes' to identify the segments created by a task."
    })))
}

/// `POST /taskStatus`: `taskId → TaskStatus` for the ids found.
pub async fn statuses(State(s): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let ids: Vec<String> = if body.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!("the body must be a JSON array of task ids: {e}"))
        })?
    };
    if ids.is_empty() {
        return Err(ApiError::BadRequestText("No Task IDs provided.".into()));
    }
    let ids: Vec<TaskId> = ids
        .into_iter()
        .filter_map(|i| TaskId::new(i).ok())
        .collect();
    let found = s.leader()?.store.get_statuses(&ids).await?;
    let map: serde_json::Map<String, Value> = found
        .into_iter()
        .map(|st| {
            (
                st.id.to_string(),
                serde_json::to_value(st).expect("serializes"),
            )
        })
        .collect();
    Ok(Json(Value::Object(map)).into_response())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListState {
    Pending,
    Waiting,
    Running,
    Complete,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    state: Option<String>,
    datasource: Option<String>,
    max: Option<u32>,
    #[serde(rename = "type")]
    task_type: Option<String>,
    created_time_interval: Option<String>,
}

fn parse_state(raw: &str) -> Result<ListState, ApiError> {
    match raw.to_ascii_lowercase().as_str() {
        "pending" => Ok(ListState::Pending),
        "waiting" => Ok(ListState::Waiting),
        "running" => Ok(ListState::Running),
        "complete" => Ok(ListState::Complete),
        _ => Err(ApiError::BadRequestText(format!(
            "Invalid task state[{raw}]. Must be one of [pending, waiting, running, complete]."
        ))),
    }
}

/// `start_end` with `_` in place of `/`.
fn parse_interval(raw: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "invalid createdTimeInterval [{raw}]; expected <start>_<end> in ISO-8601"
        ))
    };
    let (start, end) = raw
        .split_once('_')
        .or_else(|| raw.split_once('/'))
        .ok_or_else(bad)?;
    let (start, end) = (
        parse_iso(start).ok_or_else(bad)?,
        parse_iso(end).ok_or_else(bad)?,
    );
    if end < start {
        return Err(bad());
    }
    Ok((start, end))
}

fn status_plus(
    info: &TaskInfo,
    runner: Option<(RunnerTaskState, &TaskLocation)>,
) -> TaskStatusPlus {
    let stored = &info.status;
    let (runner_state, location) = match runner {
        Some((state, loc)) if !stored.is_complete() => (state, loc.clone()),
        _ if stored.is_complete() => (RunnerTaskState::None, stored.location.clone()),
        _ => (RunnerTaskState::Waiting, TaskLocation::unknown()),
    };
    TaskStatusPlus {
        id: info.id.clone(),
        group_id: info.group_id.clone(),
        task_type: info.task_type.clone(),
        created_time: info.created_date.clone(),
        queue_insertion_time: EPOCH_ISO.to_string(),
        status_code: Some(stored.status),
        status: Some(stored.status),
        runner_status_code: Some(runner_state),
        duration: Some(stored.duration),
        location,
        data_source: Some(info.datasource.clone()),
        error_msg: stored.error_msg.clone(),
    }
}

/// `GET /tasks` and its shortcuts.
async fn list_tasks(s: &AppState, q: ListQuery) -> Result<Response, ApiError> {
    let state = q.state.as_deref().map(parse_state).transpose()?;
    let interval = q
        .created_time_interval
        .as_deref()
        .map(parse_interval)
        .transpose()?;
    let in_interval = |created: &str| match (&interval, parse_iso(created)) {
        (Some((start, end)), Some(t)) => t >= *start && t < *end,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let matches = |info: &TaskInfo| {
        q.datasource
            .as_deref()
            .is_none_or(|ds| info.datasource == ds)
            && q.task_type
                .as_deref()
                .is_none_or(|t| info.task_type.as_deref() == Some(t))
            && in_interval(&info.created_date)
    };

    let mut out = Vec::new();
    if state != Some(ListState::Complete) {
        let snapshot: RunnerSnapshot = s.runner_snapshot().await?;
        let views: HashMap<&str, _> = snapshot.tasks.iter().map(|v| (v.id.as_str(), v)).collect();
        for info in s.leader()?.store.active_task_infos().await? {
            if !matches(&info) {
                continue;
            }
            let view = views.get(info.id.as_str());
            let plus = status_plus(&info, view.map(|v| (v.state, &v.location)));
            let keep = match state {
                None => true,
                Some(ListState::Waiting) => {
                    plus.runner_status_code == Some(RunnerTaskState::Waiting)
                }
                Some(ListState::Pending) => {
                    plus.runner_status_code == Some(RunnerTaskState::Pending)
                }
                Some(ListState::Running) => matches!(
                    plus.runner_status_code,
                    Some(RunnerTaskState::Running | RunnerTaskState::None)
                ),
                Some(ListState::Complete) => false,
            };
            if keep {
                out.push(plus);
            }
        }
    }
    if state.is_none() || state == Some(ListState::Complete) {
        let (after, before) = match interval {
            Some((start, end)) => (to_iso(start), Some(to_iso(end))),
            None => {
                let threshold = chrono::Duration::from_std(s.recently_finished_threshold)
                    .unwrap_or(chrono::Duration::days(1));
                (to_iso(Utc::now() - threshold), None)
            }
        };
        let filter = CompleteTaskFilter {
            created_after: Some(after),
            created_before: before,
            datasource: q.datasource.clone(),
            task_type: q.task_type.clone(),
            max: q.max,
        };
        for info in s.leader()?.store.complete_task_infos(&filter).await? {
            out.push(status_plus(&info, None));
        }
    }
    Ok(Json(out).into_response())
}

pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    list_tasks(&s, q).await
}

#[derive(Deserialize)]
pub struct TypeQuery {
    #[serde(rename = "type")]
    task_type: Option<String>,
}

pub async fn running(
    State(s): State<AppState>,
    Query(q): Query<TypeQuery>,
) -> Result<Response, ApiError> {
    list_tasks(
        &s,
        ListQuery {
            state: Some("running".into()),
            task_type: q.task_type,
            ..Default::default()
        },
    )
    .await
}

pub async fn pending(State(s): State<AppState>) -> Result<Response, ApiError> {
    list_tasks(
        &s,
        ListQuery {
            state: Some("pending".into()),
            ..Default::default()
        },
    )
    .await
}

pub async fn waiting(State(s): State<AppState>) -> Result<Response, ApiError> {
    list_tasks(
        &s,
        ListQuery {
            state: Some("waiting".into()),
            ..Default::default()
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct CompleteQuery {
    n: Option<u32>,
}

pub async fn complete(
    State(s): State<AppState>,
    Query(q): Query<CompleteQuery>,
) -> Result<Response, ApiError> {
    list_tasks(
        &s,
        ListQuery {
            state: Some("complete".into()),
            max: q.n,
            ..Default::default()
        },
    )
    .await
}
