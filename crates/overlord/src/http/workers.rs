//! Worker routes (see docs/api.md): the worker list, dynamic worker config with its audit
//! history, enable/disable forwarded to a middle manager, and total capacity.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_core::time::now_iso;
use drover_metadata::AuditRecord;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::runner::select::{Selection, WorkerBehaviorConfig, WORKER_CONFIG_KEY};

pub async fn list(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(s.runner_snapshot().await?.workers).into_response())
}

/// `GET /worker`: the stored WorkerBehaviorConfig, or `null`.
pub async fn get_config(State(s): State<AppState>) -> Result<Response, ApiError> {
    match s.leader()?.store.get_config(WORKER_CONFIG_KEY).await? {
        Some(bytes) => {
            let v: Value = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
            Ok(Json(v).into_response())
        }
        None => Ok(Json(Value::Null).into_response()),
    }
}

/// `POST /worker`: validated, stored with an audit row, and applied at once.
pub async fn set_config(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let config = WorkerBehaviorConfig::parse(&body).map_err(|e| ApiError::BadRequest(e.0))?;
    let payload = serde_json::to_string(&config).expect("serializes");
    let audit = AuditRecord {
        key: WORKER_CONFIG_KEY.into(),
        audit_type: WORKER_CONFIG_KEY.into(),
        info: super::audit::info(&headers),
        payload: payload.clone(),
        created_date: now_iso(),
    };
    let leader = s.leader()?;
    leader
        .store
        .set_config(WORKER_CONFIG_KEY, payload.as_bytes(), &audit)
        .await?;
    tracing::info!(config = %payload, author = %audit.info.author, "worker config updated");
    leader
        .runner
        .set_selection(Some(Selection::from(&config.select_strategy)));
    Ok(StatusCode::OK.into_response())
}

/// `GET /worker/history?interval=start/end` or `?count=N`: Druid's AuditEntry list, newest first.
pub async fn history(
    State(s): State<AppState>,
    Query(q): Query<super::audit::HistoryQuery>,
) -> Result<Response, ApiError> {
    let (since, until, limit) = q.window()?;
    let rows = s
        .leader()?
        .store
        .audit_history(
            WORKER_CONFIG_KEY,
            WORKER_CONFIG_KEY,
            since.as_deref(),
            until.as_deref(),
            limit,
        )
        .await?;
    Ok(Json(super::audit::entries(rows)).into_response())
}

/// `POST /worker/{host}/enable` and `/disable`, forwarded to the middle manager.
pub async fn enable(s: State<AppState>, host: Path<String>) -> Result<Response, ApiError> {
    forward(s, host, "enable").await
}

pub async fn disable(s: State<AppState>, host: Path<String>) -> Result<Response, ApiError> {
    forward(s, host, "disable").await
}

async fn forward(
    State(s): State<AppState>,
    Path(host): Path<String>,
    action: &str,
) -> Result<Response, ApiError> {
    let snapshot = s.runner_snapshot().await?;
    let Some(worker) = snapshot.workers.iter().find(|w| w.worker.host == host) else {
        return Err(ApiError::NotFound(
            json!({ "error": format!("Worker [{host}] is not announced") }),
        ));
    };
    let url = format!("{}/druid/worker/v1/{action}", worker.worker.base_url());
    let r = s
        .http
        .post(&url)
        .send()
        .await
        .map_err(|e| ApiError::Internal(format!("{url}: {e}")))?;
    if !r.status().is_success() {
        return Err(ApiError::Internal(format!("{url} answered {}", r.status())));
    }
    let body: Value = r
        .json()
        .await
        .map_err(|e| ApiError::Internal(format!("{url}: {e}")))?;
    Ok(Json(body).into_response())
}

/// `GET /totalWorkerCapacity`. There is no autoscaler, so the maximum is the current capacity.
pub async fn total_capacity(State(s): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = s.runner_snapshot().await?;
    let current: i64 = snapshot
        .workers
        .iter()
        .map(|w| w.worker.capacity as i64)
        .sum();
    let used: i64 = snapshot
        .workers
        .iter()
        .map(|w| w.curr_capacity_used as i64)
        .sum();
    Ok(Json(json!({
        "currentClusterCapacity": current,
        "maximumCapacityWithAutoScale": current,
        "usedClusterCapacity": used,
    }))
    .into_response())
}
