//! `POST /druid/indexer/v1/action` (see docs/api.md): peons' task actions, answered as Druid does
//! with `{"result": …}`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_core::stream_offsets::StreamOffsets;
use drover_core::TaskId;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::actions::{ActionHolder, TaskAction};
use crate::queue::ActionOutcome;

/// `checkPointDataSourceMetadata` (see docs/architecture.md): a reading task asks its supervisor to close
/// its open sequence. The answer is whether the supervisor took the request; the checkpoint
/// itself reaches the task as `POST /offsets/end?finish=false`.
async fn checkpoint(s: &AppState, raw: &Value) -> Result<Response, ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("invalid task action: {why}"));
    let task = raw
        .pointer("/task/id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("[task.id] is required"))?;
    let task = TaskId::new(task).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let action = &raw["action"];
    let supervisor = action
        .get("supervisorId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("[action.supervisorId] is required"))?;
    let group = action
        .get("taskGroupId")
        .and_then(Value::as_u64)
        .and_then(|g| u32::try_from(g).ok())
        .map(drover_core::TaskGroupId)
        .ok_or_else(|| bad("[action.taskGroupId] must be a task group number"))?;
    let metadata = action
        .get("checkpointMetadata")
        .or_else(|| action.get("previousCheckPoint"))
        .ok_or_else(|| bad("[action.checkpointMetadata] is required"))?;
    let start = StreamOffsets::from_metadata(metadata)
        .map_err(|e| bad(&format!("[action.checkpointMetadata]: {e}")))?;
    let accepted = s
        .leader()?
        .supervisors
        .checkpoint(supervisor, task, group, start)
        .await?;
    Ok(Json(json!({ "result": accepted })).into_response())
}

/// Druid's `taskLockTimeout` default (5 minutes).
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn action(
    State(s): State<AppState>,
    peon: Option<axum::Extension<drover_service::auth::TaskIdentity>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let raw: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid task action: {e}")))?;
    // A peon authenticated with its task's token acts for that task alone.
    if let Some(axum::Extension(drover_service::auth::TaskIdentity(own))) = &peon {
        let claimed = raw.pointer("/task/id").and_then(Value::as_str);
        if claimed != Some(own.as_str()) {
            return Err(ApiError::Forbidden(format!(
                "the peon of task [{own}] may not act for task [{}]",
                claimed.unwrap_or("")
            )));
        }
    }
    if raw.pointer("/action/type").and_then(Value::as_str) == Some("checkPointDataSourceMetadata") {
        return checkpoint(&s, &raw).await;
    }
    let holder: ActionHolder = serde_json::from_value(raw)
        .map_err(|e| ApiError::BadRequest(format!("invalid task action: {e}")))?;
    let id = holder
        .task
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("invalid task action: [task.id] is required".into()))?;
    let id = TaskId::new(id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let wait = match &holder.action {
        TaskAction::LockAcquire { timeout_ms: 0, .. } => holder
            .task
            .get("context")
            .and_then(|c| c.get("taskLockTimeout"))
            .and_then(Value::as_u64)
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_LOCK_TIMEOUT),
        TaskAction::LockAcquire { timeout_ms, .. } => Duration::from_millis(*timeout_ms),
        _ => Duration::ZERO,
    };
    let deadline = tokio::time::Instant::now() + wait;
    let leader = s.leader()?;
    let released = leader.queue.lock_released();
    loop {
        // Registered before asking, so a release between the answer and the wait is not missed.
        let notified = released.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let outcome = leader
            .queue
            .action(id.clone(), holder.action.clone())
            .await?;
        match outcome {
            ActionOutcome::Done(result) => {
                return Ok(Json(json!({ "result": result })).into_response())
            }
            ActionOutcome::LockBusy if tokio::time::Instant::now() >= deadline => {
                return Ok(Json(json!({ "result": null })).into_response())
            }
            ActionOutcome::LockBusy => {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                    // Locks also free up when their holders are revoked or removed elsewhere.
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
