//! Supervisor routes (see docs/api.md) under `/druid/indexer/v1/supervisor`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_core::stream_offsets::StreamOffsets;
use drover_kafka::KafkaSupervisorSpec;
use serde_json::{json, Value};

use super::authorization::policy::{Action, ResourceType};
use super::authorization::{self, Access};
use super::{ApiError, AppState};
use crate::supervisor::kafka::{Notice, SupervisorHandle};
use crate::supervisor::{RunError, SupervisorError, SupervisorManager};

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::WrongStream { .. } => ApiError::BadRequest(e.to_string()),
            RunError::Storage(e) => e.into(),
            RunError::Submit { error, .. } => error.into(),
            RunError::Stream(_) | RunError::Blocking(_) | RunError::BuildTask(_) => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

impl From<SupervisorError> for ApiError {
    fn from(e: SupervisorError) -> Self {
        match e {
            SupervisorError::NotFound(_) => ApiError::NotFound(json!({"error": e.to_string()})),
            SupervisorError::BadRequest(m) => ApiError::BadRequest(m),
            SupervisorError::Storage(e) => e.into(),
            SupervisorError::Stopped => ApiError::Unavailable(e.to_string()),
        }
    }
}

fn manager(s: &AppState) -> Result<SupervisorManager, ApiError> {
    Ok(s.leader()?.supervisors.clone())
}

async fn handle(s: &AppState, id: &str) -> Result<SupervisorHandle, ApiError> {
    manager(s)?
        .get(id)
        .await?
        .ok_or_else(|| SupervisorError::NotFound(id.to_string()).into())
}

/// `POST /supervisor`: create, or replace the running supervisor with this id.
pub async fn submit(
    State(s): State<AppState>,
    access: Option<axum::Extension<Access>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "the request body is empty; expected a supervisor spec".into(),
        ));
    }
    let spec = KafkaSupervisorSpec::from_json_bytes(&body)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    authorization::check(
        access.as_deref(),
        ResourceType::Datasource,
        spec.data_source.as_str(),
        Action::Write,
    )?;
    authorization::check_inputs(
        &s,
        access.as_deref(),
        &drover_ingest::spec::InputSource::Stream,
    )?;
    let id = spec.id.clone();
    manager(&s)?.submit(spec).await?;
    Ok(Json(json!({ "id": id })).into_response())
}

fn state_of(h: &SupervisorHandle) -> (String, String, bool) {
    let p = h.published();
    (p.state.clone(), p.detailed_state.clone(), p.healthy)
}

/// `GET /supervisor` (`?full`, `?state=true`, `?system`).
pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut all = manager(&s)?.list().await?;
    all.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
    let full = q.contains_key("full");
    let system = q.contains_key("system");
    let with_state = q.get("state").is_some_and(|v| v == "true");
    if !(full || system || with_state) {
        let ids: Vec<&str> = all.iter().map(|h| h.spec.id.as_str()).collect();
        return Ok(Json(ids).into_response());
    }
    let mut out = Vec::new();
    for h in &all {
        let (state, detailed, healthy) = state_of(h);
        let mut v =
            json!({"id": h.spec.id, "state": state, "detailedState": detailed, "healthy": healthy});
        if full {
            v["spec"] = h.spec.payload.clone();
        }
        if system {
            v["type"] = json!("kafka");
            v["source"] = json!(h.spec.io.topic);
            v["suspended"] = json!(h.spec.suspended);
            v["specString"] = json!(h.spec.payload.to_string());
        }
        out.push(v);
    }
    Ok(Json(out).into_response())
}

pub async fn get_spec(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(handle(&s, &id).await?.spec.payload.clone()).into_response())
}

pub async fn status(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let h = handle(&s, &id).await?;
    Ok(Json(h.published().report.clone()).into_response())
}

pub async fn health(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let h = manager(&s)?.get(&id).await?.ok_or_else(|| {
        ApiError::NotFound(
            json!({"error": format!("[{id}] does not exist or health check not implemented")}),
        )
    })?;
    let (_, _, healthy) = state_of(&h);
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(json!({ "healthy": healthy }))).into_response())
}

pub async fn stats(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let h = handle(&s, &id).await?;
    Ok(Json(h.ask(Notice::Stats).await.unwrap_or_else(|| json!({}))).into_response())
}

/// `GET /supervisor/{id}/parseErrors`: the newest `ParseExceptionReport`s of its tasks.
pub async fn parse_errors(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let h = handle(&s, &id).await?;
    Ok(Json(h.ask(Notice::ParseErrors).await.unwrap_or_default()).into_response())
}

pub async fn suspend(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(manager(&s)?.set_suspended(&id, true).await?).into_response())
}

pub async fn resume(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(manager(&s)?.set_suspended(&id, false).await?).into_response())
}

pub async fn terminate(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    manager(&s)?.terminate(&id).await?;
    Ok(Json(json!({ "id": id })).into_response())
}

/// `suspendAll`, `resumeAll`, `terminateAll`: every supervisor the request may change.
async fn for_all(s: &AppState, op: &str) -> Result<Response, ApiError> {
    let m = manager(s)?;
    for h in m.list().await? {
        let id = h.spec.id.clone();
        let r = match op {
            "suspend" if !h.spec.suspended => m.set_suspended(&id, true).await.map(|_| ()),
            "resume" if h.spec.suspended => m.set_suspended(&id, false).await.map(|_| ()),
            "terminate" => m.terminate(&id).await,
            _ => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!(supervisor = %id, error = %e, op, "could not apply to every supervisor");
        }
    }
    Ok(Json(json!({"status": "success"})).into_response())
}

pub async fn suspend_all(State(s): State<AppState>) -> Result<Response, ApiError> {
    for_all(&s, "suspend").await
}

pub async fn resume_all(State(s): State<AppState>) -> Result<Response, ApiError> {
    for_all(&s, "resume").await
}

pub async fn terminate_all(State(s): State<AppState>) -> Result<Response, ApiError> {
    for_all(&s, "terminate").await
}

fn versioned(v: &drover_metadata::SupervisorVersion) -> Value {
    let spec: Value = serde_json::from_slice(&v.payload).unwrap_or(Value::Null);
    json!({"spec": spec, "version": v.created_date})
}

pub async fn history(State(s): State<AppState>) -> Result<Response, ApiError> {
    let services = s.leader()?;
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for v in services.store.supervisor_history(None).await? {
        out.entry(v.spec_id.clone())
            .or_default()
            .push(versioned(&v));
    }
    Ok(Json(out).into_response())
}

pub async fn history_of(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let services = s.leader()?;
    let versions = services.store.supervisor_history(Some(&id)).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(
            json!({"error": format!("No history for [{id}].")}),
        ));
    }
    Ok(Json(versions.iter().map(versioned).collect::<Vec<_>>()).into_response())
}

/// `POST /{id}/reset`: forget the stored offsets and restart reading per `useEarliestOffset`.
pub async fn reset(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let h = handle(&s, &id).await?;
    h.ask(|r| Notice::Reset(None, r))
        .await
        .ok_or_else(|| ApiError::Unavailable(format!("supervisor [{id}] is stopping")))??;
    Ok(Json(json!({ "id": id })).into_response())
}

/// `POST /{id}/resetOffsets` with Druid's DataSourceMetadata: store these offsets for their
/// partitions and restart the task groups that read them.
pub async fn reset_offsets(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let h = handle(&s, &id).await?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let offsets = StreamOffsets::from_metadata(&v).map_err(|e| ApiError::BadRequest(e.0))?;
    for (p, o) in &offsets.offsets {
        if p.parse::<i32>().map_or(true, |p| p < 0) || *o < 0 {
            return Err(ApiError::BadRequest(format!(
                "[partitions.partitionOffsetMap]: partition [{p}] offset [{o}] is not a valid Kafka position"
            )));
        }
    }
    h.ask(|r| Notice::Reset(Some(offsets), r))
        .await
        .ok_or_else(|| ApiError::Unavailable(format!("supervisor [{id}] is stopping")))??;
    Ok(Json(json!({ "id": id })).into_response())
}
