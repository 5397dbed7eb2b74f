//! Task routes (see docs/api.md).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use drover_core::interval::{parse_instant, Interval};
use drover_core::time::{parse_iso, to_iso};
use drover_core::{RunnerTaskState, TaskId, TaskLocation, TaskStatusPlus};
use drover_metadata::{CompleteTaskFilter, TaskInfo};
use drover_task::{Task, TaskKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::authorization::policy::{Action, ResourceType};
use super::authorization::{self, Access};
use super::{ApiError, AppState};
use crate::lockbox::LockFilter;
use crate::runner::TaskFilter;

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
    access: Option<axum::Extension<Access>>,
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
    if let Some((acting, _)) = access.as_deref().and_then(|a| a.acting_task.as_ref()) {
        if task.supervisor_task_id.as_ref() != Some(acting) {
            return Err(ApiError::Forbidden(format!(
                "task [{acting}] may submit only its own sub-tasks (supervisorTaskId [{acting}])"
            )));
        }
    }
    authorization::check(
        access.as_deref(),
        ResourceType::Datasource,
        task.data_source.as_str(),
        Action::Write,
    )?;
    if let Some(spec) = task.kind.ingestion() {
        authorization::check_inputs(&s, access.as_deref(), &spec.input_source)?;
    }
    if let TaskKind::Index(spec) = &task.kind {
        let field = if task.payload().get("spec").is_some() {
            "spec.ioConfig.inputSource"
        } else {
            "ioConfig.inputSource"
        };
        s.ingestion
            .check_source(&spec.input_source, field)
            .map_err(|(field, why)| {
                ApiError::BadRequest(format!("invalid field [{field}]: {why}"))
            })?;
    }
    // Refused now rather than failed later: the ZooKeeper runner could never hand it out.
    if let Some(reason) =
        crate::runner::znode_too_large(task.to_json_bytes().len(), s.max_znode_bytes)
    {
        return Err(ApiError::BadRequest(reason));
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
    match status_of(&s, &id).await? {
        Some(plus) => Ok(Json(json!({ "task": id, "status": plus })).into_response()),
        None => Err(ApiError::NotFound(json!({ "task": id, "status": null }))),
    }
}

/// A task's status as `GET /task/{id}/status` shows it; `None` for a task never stored.
pub(crate) async fn status_of(
    s: &AppState,
    id: &TaskId,
) -> Result<Option<TaskStatusPlus>, ApiError> {
    let Some(info) = s.leader()?.store.get_task_info(id).await? else {
        return Ok(None);
    };
    let view = s.runner_task(id).await?;
    Ok(Some(status_plus(
        &info,
        view.as_ref().map(|v| (v.state, &v.location)),
    )))
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
    let view = s.runner_task(&id).await?;
    if let Some(worker_url) = view.and_then(|v| v.worker_url) {
        let url = format!("{worker_url}/druid/worker/v1/task/{id}/log?offset={offset}");
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
    match s
        .task_logs
        .open(&id, offset)
        .await
        .map_err(ApiError::internal)?
    {
        Some(log) => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
            log.into_body(),
        )
            .into_response()),
        None => Err(ApiError::NotFoundText(NO_LOG.into())),
    }
}

/// `GET /task/{id}/reports`: a running task's live report, asked of its peon as Druid does;
/// otherwise the report a finished task pushed to task-log storage.
pub async fn reports(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = task_id(&id)?;
    if let Some(live) = live_report(&s, &id).await {
        return Ok(Json(live).into_response());
    }
    let report = s
        .task_logs
        .read_report(&id)
        .await
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

/// The running task's own report, if it runs and answers.
async fn live_report(s: &AppState, id: &TaskId) -> Option<Value> {
    let services = s.leader().ok()?;
    let view = s.runner_task(id).await.ok()??;
    if view.state != RunnerTaskState::Running {
        return None;
    }
    let base = crate::supervisor::chat::chat_base(&view.location)?;
    match services.chat.live_reports(&base, id).await {
        Ok(report) if report.is_object() => Some(report),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(task = %id, error = %e, "no live report from the task");
            None
        }
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
    pub state: Option<String>,
    pub datasource: Option<String>,
    pub max: Option<u32>,
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    pub created_time_interval: Option<String>,
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

/// `start_end` with `_` in place of `/`; each end an ISO-8601 instant or date
/// (`2015-09-12_2015-09-13`, as Druid's docs write it).
fn parse_interval(raw: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "invalid createdTimeInterval [{raw}]; expected <start>_<end> in ISO-8601, e.g. \
             2015-09-12_2015-09-13"
        ))
    };
    let (start, end) = raw
        .split_once('_')
        .or_else(|| raw.split_once('/'))
        .ok_or_else(bad)?;
    let (start, end) = (
        parse_instant(start).ok_or_else(bad)?,
        parse_instant(end).ok_or_else(bad)?,
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
        // A task enters the queue when it is created (Druid shows the epoch for tasks its
        // queue no longer holds).
        queue_insertion_time: info.created_date.clone(),
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
    Ok(Json(task_list(s, q).await?).into_response())
}

/// The tasks `q` picks: active ones first, then the newest complete ones.
pub(crate) async fn task_list(s: &AppState, q: ListQuery) -> Result<Vec<TaskStatusPlus>, ApiError> {
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

    // `max` bounds the whole answer: active tasks first, then the newest complete ones.
    let max = q.max.map_or(usize::MAX, |m| m as usize);
    let mut out = Vec::new();
    let leader = s.leader()?;
    match state {
        // Only what the runner holds in these states, and their rows: cheap when little runs,
        // however many tasks wait.
        Some(ListState::Running | ListState::Pending) => {
            let wanted = if state == Some(ListState::Running) {
                vec![RunnerTaskState::Running, RunnerTaskState::None]
            } else {
                vec![RunnerTaskState::Pending]
            };
            let views = s.runner_tasks(TaskFilter::InStates(wanted)).await?;
            let ids: Vec<TaskId> = views.iter().map(|v| v.id.clone()).collect();
            let by_id: HashMap<&str, _> = views.iter().map(|v| (v.id.as_str(), v)).collect();
            for info in leader.store.get_task_infos(&ids).await? {
                if out.len() >= max {
                    break;
                }
                if info.status.is_complete() || !matches(&info) {
                    continue;
                }
                let view = by_id.get(info.id.as_str());
                out.push(status_plus(&info, view.map(|v| (v.state, &v.location))));
            }
        }
        Some(ListState::Waiting) | None => {
            // Every active task is listed without a state, so the store can filter and limit
            // the rows itself; waiting ones are told apart by the runner, row by row.
            let rows = if state.is_none() {
                let filter = CompleteTaskFilter {
                    created_after: interval.map(|(start, _)| to_iso(start)),
                    created_before: interval.map(|(_, end)| to_iso(end)),
                    datasource: q.datasource.clone(),
                    task_type: q.task_type.clone(),
                    max: q.max,
                };
                leader.store.active_task_infos_where(&filter).await?
            } else {
                leader.store.active_task_infos().await?
            };
            let ids: Vec<TaskId> = rows
                .iter()
                .filter_map(|info| TaskId::new(info.id.clone()).ok())
                .collect();
            let views = s.runner_tasks(TaskFilter::Ids(ids)).await?;
            let by_id: HashMap<&str, _> = views.iter().map(|v| (v.id.as_str(), v)).collect();
            for info in rows {
                if out.len() >= max {
                    break;
                }
                if !matches(&info) {
                    continue;
                }
                let view = by_id.get(info.id.as_str());
                let plus = status_plus(&info, view.map(|v| (v.state, &v.location)));
                if state.is_none() || plus.runner_status_code == Some(RunnerTaskState::Waiting) {
                    out.push(plus);
                }
            }
        }
        Some(ListState::Complete) => {}
    }
    let room = max.saturating_sub(out.len());
    if (state.is_none() || state == Some(ListState::Complete)) && room > 0 {
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
            max: u32::try_from(room).ok(),
        };
        for info in leader.store.complete_task_infos(&filter).await? {
            out.push(status_plus(&info, None));
        }
    }
    Ok(out)
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

/// `POST /datasources/{ds}/shutdownAllTasks`: shuts down every active task of the data source;
/// 404 with an empty body when it has none, as Druid answers.
pub async fn shutdown_all(
    State(s): State<AppState>,
    Path(ds): Path<String>,
) -> Result<Response, ApiError> {
    let leader = s.leader()?;
    let of_data_source = CompleteTaskFilter {
        datasource: Some(ds.clone()),
        ..Default::default()
    };
    let ids: Vec<TaskId> = leader
        .store
        .active_task_infos_where(&of_data_source)
        .await?
        .into_iter()
        .filter_map(|info| TaskId::new(info.id).ok())
        .collect();
    if ids.is_empty() {
        // Druid answers an empty 404; a reason costs nothing.
        return Err(ApiError::NotFound(
            json!({ "error": format!("no active task of data source [{ds}]") }),
        ));
    }
    for id in ids {
        leader
            .queue
            .shutdown(id, "Shutdown request from user")
            .await?;
    }
    Ok(Json(json!({ "dataSource": ds })).into_response())
}

/// Druid's `LockFilterPolicy`, as `lockedIntervals/v2` takes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFilterPolicy {
    datasource: String,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    intervals: Option<Vec<String>>,
    /// `useConcurrentLocks` (or `taskLockType: APPEND`) leaves APPEND locks out: a task that
    /// would take a REPLACE lock can run beside them.
    #[serde(default)]
    context: Option<serde_json::Map<String, Value>>,
}

impl LockFilterPolicy {
    /// Druid's rule: `useConcurrentLocks` when given, else whether `taskLockType` is APPEND.
    fn ignores_append_locks(&self) -> bool {
        let get = |key: &str| self.context.as_ref().and_then(|c| c.get(key));
        let truthy = |v: &Value| v.as_bool() == Some(true) || v.as_str() == Some("true");
        match get("useConcurrentLocks") {
            Some(v) if !v.is_null() => truthy(v),
            _ => get("taskLockType").and_then(Value::as_str) == Some("APPEND"),
        }
    }
}

async fn answer_locked_intervals(
    s: &AppState,
    filters: Vec<LockFilter>,
) -> Result<Response, ApiError> {
    let locked = s.leader()?.queue.locked_intervals(filters).await?;
    let body: serde_json::Map<String, Value> = locked
        .into_iter()
        .map(|(ds, intervals)| {
            let list = intervals
                .iter()
                .map(|i| Value::String(i.to_string()))
                .collect();
            (ds, Value::Array(list))
        })
        .collect();
    Ok(Json(Value::Object(body)).into_response())
}

fn body_or_no_filter(body: &Bytes) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequestText("No filter provided".into()));
    }
    Ok(())
}

/// `POST /lockedIntervals/v2`: `[{"datasource","priority","intervals"?}]` → per data source,
/// the intervals locked by tasks of at least that priority.
pub async fn locked_intervals(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    body_or_no_filter(&body)?;
    let policies: Vec<LockFilterPolicy> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be a JSON array of lock filters {{\"datasource\", \"priority\", \
             \"intervals\"}}: {e}"
        ))
    })?;
    let mut filters = Vec::with_capacity(policies.len());
    for p in policies {
        let ignore_append_locks = p.ignores_append_locks();
        let intervals = p
            .intervals
            .map(|list| {
                list.iter()
                    .map(|i| {
                        Interval::parse(i).map_err(|e| {
                            ApiError::BadRequest(format!("[intervals] of [{}]: {e}", p.datasource))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        filters.push(LockFilter {
            data_source: p.datasource,
            min_priority: p.priority,
            intervals,
            ignore_append_locks,
        });
    }
    answer_locked_intervals(&s, filters).await
}

/// `POST /lockedIntervals` (older Druid releases): `{"<datasource>": <minTaskPriority>}`.
pub async fn locked_intervals_v1(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    body_or_no_filter(&body)?;
    let by_ds: std::collections::BTreeMap<String, i32> =
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be a JSON object of data source to minimum priority: {e}"
            ))
        })?;
    let filters = by_ds
        .into_iter()
        .map(|(data_source, min_priority)| LockFilter {
            ignore_append_locks: false,
            data_source,
            min_priority,
            intervals: None,
        })
        .collect();
    answer_locked_intervals(&s, filters).await
}
