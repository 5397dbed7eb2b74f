//! The overlord's HTTP API under `/druid/indexer/v1` (see docs/api.md).

mod actions;
mod audit;
pub mod authorization;
pub mod basic_security;
mod compaction;
mod console;
mod current_view;
mod data_management;
mod datasources;
mod error;
mod metrics;
mod openapi;
mod redirect;
mod rules;
mod segments;
mod supervisors;
mod tasks;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use drover_core::TaskId;
use drover_service::task_log_storage::TaskLogStorage;
use drover_zk::LatchState;
use serde_json::json;

pub use error::ApiError;

use crate::leader::{LeaderServices, Leadership};
use crate::runner::{RunnerSnapshot, RunnerTaskView, TaskFilter};

#[derive(Clone)]
pub struct AppState {
    pub leadership: Leadership,
    pub task_logs: TaskLogStorage,
    pub http: reqwest::Client,
    pub max_task_payload_bytes: usize,
    /// What the runner can hand a worker through ZooKeeper; larger tasks get a 400 at submission.
    pub max_znode_bytes: usize,
    /// How long `POST /task` may take to store a task before it answers 503 (and stores nothing).
    pub task_submit_timeout: Duration,
    /// Longest a request may take before it is answered 503 (task actions excepted).
    pub request_timeout: Duration,
    /// How long a follower waits for the leader's health check before answering 503 instead
    /// of redirecting there.
    pub leader_probe_timeout: Duration,
    pub recently_finished_threshold: Duration,
    /// What batch tasks may read; a task whose spec asks for more is refused at submission.
    pub ingestion: drover_ingest::input_policy::InputPolicy,
    /// Checks every request's credentials (when `security.basic_auth` is on).
    pub authenticator: std::sync::Arc<drover_service::auth::Authenticator>,
    /// How this overlord calls other Drover processes (TLS trust, internal credentials).
    pub internal_client: drover_service::client::InternalClient,
    /// The authorization policy, as recently read.
    pub policies: std::sync::Arc<authorization::PolicyCache>,
}

impl AppState {
    /// The leader's services; 503 while this overlord does not lead (or is still starting), as
    /// Druid's `asLeaderWith` answers.
    pub(crate) fn leader(&self) -> Result<Arc<LeaderServices>, ApiError> {
        self.leadership.services().ok_or_else(|| {
            ApiError::Unavailable("this overlord is not the leader, or is still starting".into())
        })
    }

    /// The runner's view of the tasks `filter` picks.
    pub(crate) async fn runner_tasks(
        &self,
        filter: TaskFilter,
    ) -> Result<Vec<RunnerTaskView>, ApiError> {
        self.leader()?
            .runner
            .tasks(filter)
            .await
            .ok_or_else(|| ApiError::Unavailable("the task runner is not running".into()))
    }

    /// One task as the runner sees it; `None` when the runner does not hold it.
    pub(crate) async fn runner_task(
        &self,
        id: &TaskId,
    ) -> Result<Option<RunnerTaskView>, ApiError> {
        Ok(self.runner_tasks(TaskFilter::One(id.clone())).await?.pop())
    }

    pub(crate) async fn runner_snapshot(&self) -> Result<RunnerSnapshot, ApiError> {
        self.leader()?
            .runner
            .snapshot()
            .await
            .ok_or_else(|| ApiError::Unavailable("the task runner is not running".into()))
    }
}

/// Routes every overlord answers itself, leader or not (no redirect, no request timeout).
pub fn local_routes(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::openapi))
        .with_state(state)
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
        .route("/tasks/", get(tasks::list))
        .route(
            "/datasources/{ds}/shutdownAllTasks",
            post(tasks::shutdown_all),
        )
        .route(
            "/datasources/{ds}",
            post(data_management::mark_all_used).delete(data_management::mark_all_unused),
        )
        .route(
            "/datasources/{ds}/markUnused",
            post(data_management::mark_unused_route),
        )
        .route(
            "/datasources/{ds}/markUsed",
            post(data_management::mark_used_route),
        )
        .route(
            "/datasources/{ds}/segments/{segment}",
            post(data_management::mark_segment_used).delete(data_management::mark_segment_unused),
        )
        .route("/lockedIntervals", post(tasks::locked_intervals_v1))
        .route("/lockedIntervals/v2", post(tasks::locked_intervals))
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
        // A publish carries every segment of the task (10,000 one-row segments are ~6 MB): the
        // same limit as a task's payload, not axum's 2 MB default.
        .route(
            "/action",
            post(actions::action).layer(axum::extract::DefaultBodyLimit::max(
                state.max_task_payload_bytes,
            )),
        )
        .route(
            "/supervisor",
            get(supervisors::list).post(supervisors::submit),
        )
        .route("/supervisor/history", get(supervisors::history))
        .route("/supervisor/suspendAll", post(supervisors::suspend_all))
        .route("/supervisor/resumeAll", post(supervisors::resume_all))
        .route("/supervisor/terminateAll", post(supervisors::terminate_all))
        .route("/supervisor/{id}", get(supervisors::get_spec))
        .route("/supervisor/{id}/status", get(supervisors::status))
        .route("/supervisor/{id}/health", get(supervisors::health))
        .route("/supervisor/{id}/stats", get(supervisors::stats))
        .route(
            "/supervisor/{id}/parseErrors",
            get(supervisors::parse_errors),
        )
        .route("/supervisor/{id}/history", get(supervisors::history_of))
        .route("/supervisor/{id}/suspend", post(supervisors::suspend))
        .route("/supervisor/{id}/resume", post(supervisors::resume))
        .route("/supervisor/{id}/terminate", post(supervisors::terminate))
        .route("/supervisor/{id}/shutdown", post(supervisors::terminate))
        .route("/supervisor/{id}/reset", post(supervisors::reset))
        .route(
            "/supervisor/{id}/resetOffsets",
            post(supervisors::reset_offsets),
        )
        .route("/leader", get(leader))
        .route("/isLeader", get(is_leader));
    Router::new()
        .nest("/druid/indexer/v1", v1)
        .route(
            "/druid/coordinator/v1/metadata/datasources",
            get(segments::data_sources),
        )
        .route(
            "/druid/coordinator/v1/metadata/datasources/{ds}/segments",
            get(segments::segments),
        )
        .route("/druid/coordinator/v1/datasources", get(datasources::list))
        // What Druid's web console probes to find a Coordinator: the overlord plays its
        // segment-management part (there are no historicals to load segments onto).
        .route("/druid/coordinator/v1/isLeader", get(is_leader))
        .route("/druid/coordinator/v1/leader", get(leader))
        .route(
            "/druid/coordinator/v1/servers",
            get(|| async { Json(json!([])) }),
        )
        .route(
            "/druid/coordinator/v1/loadstatus",
            get(datasources::load_status),
        )
        .route(
            "/druid/coordinator/v1/datasources/{ds}",
            get(datasources::get)
                .post(data_management::mark_all_used)
                .delete(data_management::mark_all_unused),
        )
        .route(
            "/druid/coordinator/v1/datasources/{ds}/markUnused",
            post(data_management::mark_unused_route),
        )
        .route(
            "/druid/coordinator/v1/datasources/{ds}/markUsed",
            post(data_management::mark_used_route),
        )
        .route(
            "/druid/coordinator/v1/datasources/{ds}/intervals",
            get(datasources::intervals),
        )
        .route(
            "/druid/coordinator/v1/datasources/{ds}/intervals/{interval}",
            delete(data_management::kill_interval),
        )
        .route(
            "/druid/coordinator/v1/datasources/{ds}/segments",
            get(datasources::segments),
        )
        .route(
            "/druid/coordinator/v1/datasources/{ds}/segments/{segment}",
            get(datasources::segment)
                .post(data_management::mark_segment_used)
                .delete(data_management::mark_segment_unused),
        )
        .route(
            "/druid/coordinator/v1/config/compaction",
            get(compaction::get_all).post(compaction::set),
        )
        .route(
            "/druid/coordinator/v1/config/compaction/taskslots",
            post(compaction::task_slots),
        )
        .route(
            "/druid/coordinator/v1/config/compaction/{ds}",
            get(compaction::get).delete(compaction::delete),
        )
        .route(
            "/druid/coordinator/v1/compaction/status",
            get(compaction::status),
        )
        .route(
            "/druid/coordinator/v1/compaction/progress",
            get(compaction::progress),
        )
        .route(
            "/drover/v1/datasources/{ds}/current",
            get(current_view::current),
        )
        .route("/druid/coordinator/v1/rules", get(rules::all))
        .route(
            "/druid/coordinator/v1/rules/{ds}",
            get(rules::get).post(rules::set),
        )
        .route(
            "/druid/coordinator/v1/rules/{ds}/history",
            get(rules::history),
        )
        .route(
            "/druid-ext/basic-security/authentication/loadStatus",
            get(basic_security::load_status),
        )
        .route(
            "/druid-ext/basic-security/authentication/refreshAll",
            post(basic_security::refresh_all),
        )
        .route(
            "/druid-ext/basic-security/authentication/db/{name}/users",
            get(basic_security::list),
        )
        .route(
            "/druid-ext/basic-security/authentication/db/{name}/users/{user}",
            get(basic_security::get)
                .post(basic_security::create)
                .delete(basic_security::delete),
        )
        .route(
            "/druid-ext/basic-security/authentication/db/{name}/users/{user}/credentials",
            post(basic_security::set_credentials),
        )
        .route(
            "/druid-ext/basic-security/authorization/loadStatus",
            get(authorization::routes::load_status),
        )
        .route(
            "/druid-ext/basic-security/authorization/db/{name}/users",
            get(authorization::routes::list_users),
        )
        .route(
            "/druid-ext/basic-security/authorization/db/{name}/users/{user}",
            get(authorization::routes::get_user)
                .post(authorization::routes::create_user)
                .delete(authorization::routes::delete_user),
        )
        .route(
            "/druid-ext/basic-security/authorization/db/{name}/users/{user}/roles/{role}",
            post(authorization::routes::assign_role).delete(authorization::routes::unassign_role),
        )
        .route(
            "/druid-ext/basic-security/authorization/db/{name}/roles",
            get(authorization::routes::list_roles),
        )
        .route(
            "/druid-ext/basic-security/authorization/db/{name}/roles/{role}",
            get(authorization::routes::get_role)
                .post(authorization::routes::create_role)
                .delete(authorization::routes::delete_role),
        )
        .route(
            "/druid-ext/basic-security/authorization/db/{name}/roles/{role}/permissions",
            get(authorization::routes::get_permissions)
                .post(authorization::routes::set_permissions),
        )
        .route("/status/health", get(|| async { Json(true) }))
        .merge(console::routes())
        .fallback(|| async { ApiError::NotFound(json!({ "error": "no such route" })) })
        .layer(axum::middleware::from_fn_with_state(
            state.request_timeout,
            answer_in_time,
        ))
        .layer(axum::middleware::from_fn_with_state(
            redirect::RedirectState {
                leadership: state.leadership.clone(),
                probe: redirect::LeaderProbe::new(
                    state.leader_probe_timeout,
                    &state.internal_client,
                ),
            },
            redirect::to_leader,
        ))
        .with_state(state)
}

/// A request that cannot be answered within `request_timeout` (a frozen metadata store or
/// ZooKeeper) gets a 503 instead of holding its client. Left out: task actions (a `lockAcquire`
/// waits for a lock as long as its own timeout says) and supervisor changes (a terminate or a
/// replaced spec waits for the old supervisor's graceful stop, up to its `shutdownTimeout`).
async fn answer_in_time(
    State(timeout): State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let waits_by_design = path == "/druid/indexer/v1/action"
        || (request.method() == axum::http::Method::POST
            && path.starts_with("/druid/indexer/v1/supervisor"));
    if waits_by_design {
        return next.run(request).await;
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable(format!(
            "no answer within {timeout:?} (request_timeout): the metadata store or ZooKeeper may \
             be unreachable"
        ))
        .into_response(),
    }
}

/// The leader's URL, as text; 503 when no leader is known.
async fn leader(State(s): State<AppState>) -> Response {
    let url = match s.leadership.latch() {
        LatchState::Leader => s.leadership.own_url.clone(),
        LatchState::Follower { leader } => leader,
        LatchState::Unknown => {
            return ApiError::Unavailable("no leader is known".into()).into_response()
        }
    };
    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], url).into_response()
}

/// 200 `{"leader":true}` on the leader, 404 `{"leader":false}` elsewhere (for load balancers).
async fn is_leader(State(s): State<AppState>) -> Response {
    if s.leadership.services().is_some() {
        Json(json!({ "leader": true })).into_response()
    } else {
        (StatusCode::NOT_FOUND, Json(json!({ "leader": false }))).into_response()
    }
}
