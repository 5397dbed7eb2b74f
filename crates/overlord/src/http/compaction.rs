//! The Coordinator's automatic-compaction routes (Druid's `CoordinatorCompactionConfigsResource`
//! and `CompactionResource`), served by the overlord: the configs in `druid_config` (each change
//! audited) and the duty's latest status.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_core::time::now_iso;
use drover_metadata::AuditRecord;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::compaction::config::{
    ClusterCompactionConfig, DataSourceCompactionConfig, COMPACTION_CONFIG_KEY,
};
use crate::compaction::load_config;

async fn store_config(
    s: &AppState,
    headers: &HeaderMap,
    config: &ClusterCompactionConfig,
) -> Result<(), ApiError> {
    let payload = serde_json::to_string(config).expect("serializes");
    let audit = AuditRecord {
        key: COMPACTION_CONFIG_KEY.into(),
        audit_type: COMPACTION_CONFIG_KEY.into(),
        info: super::audit::info(headers),
        payload: payload.clone(),
        created_date: now_iso(),
    };
    s.leader()?
        .store
        .set_config(COMPACTION_CONFIG_KEY, payload.as_bytes(), &audit)
        .await?;
    Ok(())
}

/// `GET /config/compaction`: Druid's `CoordinatorCompactionConfig`.
pub async fn get_all(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(load_config(&s.leader()?.store).await?).into_response())
}

/// `POST /config/compaction`: adds or replaces one data source's config.
pub async fn set(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let config = DataSourceCompactionConfig::parse(&body).map_err(|e| ApiError::BadRequest(e.0))?;
    let mut cluster = load_config(&s.leader()?.store).await?;
    cluster
        .compaction_configs
        .retain(|c| c.data_source != config.data_source);
    tracing::info!(data_source = %config.data_source, "automatic compaction configured");
    cluster.compaction_configs.push(config);
    store_config(&s, &headers, &cluster).await?;
    Ok(StatusCode::OK.into_response())
}

fn not_configured(ds: &str) -> ApiError {
    ApiError::NotFound(json!({"error": format!("no compaction config for [{ds}]")}))
}

/// `GET /config/compaction/{ds}`.
pub async fn get(State(s): State<AppState>, Path(ds): Path<String>) -> Result<Response, ApiError> {
    let cluster = load_config(&s.leader()?.store).await?;
    match cluster
        .compaction_configs
        .iter()
        .find(|c| c.data_source == ds)
    {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(not_configured(&ds)),
    }
}

/// `DELETE /config/compaction/{ds}`.
pub async fn delete(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(ds): Path<String>,
) -> Result<Response, ApiError> {
    let mut cluster = load_config(&s.leader()?.store).await?;
    let before = cluster.compaction_configs.len();
    cluster.compaction_configs.retain(|c| c.data_source != ds);
    if cluster.compaction_configs.len() == before {
        return Err(not_configured(&ds));
    }
    store_config(&s, &headers, &cluster).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /config/compaction/taskslots?ratio=&max=`: the slot budget.
pub async fn task_slots(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut cluster = load_config(&s.leader()?.store).await?;
    if let Some(ratio) = q.get("ratio") {
        cluster.compaction_task_slot_ratio = ratio
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("[ratio] must be between 0 and 1, got [{ratio}]"))
            })?;
    }
    if let Some(max) = q.get("max") {
        cluster.max_compaction_task_slots =
            max.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| {
                ApiError::BadRequest(format!("[max] must be a non-negative number, got [{max}]"))
            })?;
    }
    store_config(&s, &headers, &cluster).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /compaction/status[?dataSource=]`: `{"latestStatus": [AutoCompactionSnapshot…]}`.
pub async fn status(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let latest = s.leader()?.compaction.borrow().clone();
    let wanted = q.get("dataSource");
    let list: Vec<&Value> = latest
        .iter()
        .filter(|(ds, _)| wanted.is_none_or(|w| w == *ds))
        .map(|(_, v)| v)
        .collect();
    if wanted.is_some() && list.is_empty() {
        return Err(ApiError::NotFound(json!({"error": "unknown dataSource"})));
    }
    Ok(Json(json!({ "latestStatus": list })).into_response())
}

/// `GET /compaction/progress?dataSource=`: `{"remainingSegmentSize": bytes}`.
pub async fn progress(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let ds = q
        .get("dataSource")
        .ok_or_else(|| ApiError::BadRequest("[dataSource] is required".into()))?;
    let latest = s.leader()?.compaction.borrow().clone();
    match latest.get(ds) {
        Some(v) => {
            Ok(Json(json!({"remainingSegmentSize": v["bytesAwaitingCompaction"]})).into_response())
        }
        None => Err(ApiError::NotFound(json!({"error": "unknown dataSource"}))),
    }
}
