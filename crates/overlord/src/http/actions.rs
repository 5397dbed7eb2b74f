//! `POST /druid/indexer/v1/action` (reference §4.7): peons' task actions, answered as Druid does
//! with `{"result": …}`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_core::TaskId;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::actions::{ActionHolder, TaskAction};
use crate::queue::ActionOutcome;

/// Druid's `taskLockTimeout` default (5 minutes).
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn action(State(s): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let holder: ActionHolder = serde_json::from_slice(&body)
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
            .await
            .inspect_err(|e| {
                if matches!(e, crate::queue::QueueError::Fenced(_)) {
                    s.leadership.report_fenced();
                }
            })?;
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
