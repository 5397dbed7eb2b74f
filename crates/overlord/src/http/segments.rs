//! The Coordinator's metadata routes that describe published segments (Druid's
//! `MetadataResource`), served by the overlord so ingestion results can be checked without a
//! Coordinator: `/druid/coordinator/v1/metadata/datasources[/{ds}/segments[?full]]`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_core::ids::validate_id;
use serde_json::json;

use super::{ApiError, AppState};

/// Names of the data sources with used segments.
pub async fn data_sources(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(s.leader()?.store.data_sources().await?).into_response())
}

/// `?full`: the used segments' DataSegment JSON; otherwise their ids.
pub async fn segments(
    State(s): State<AppState>,
    Path(ds): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    validate_id("dataSource", &ds).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let used = s.leader()?.store.used_segments(&ds, None).await?;
    if q.contains_key("full") {
        let full: Vec<_> = used
            .into_iter()
            .map(|mut seg| {
                seg.identifier = seg.id();
                seg
            })
            .collect();
        return Ok(Json(full).into_response());
    }
    let ids: Vec<String> = used.iter().map(|seg| seg.id()).collect();
    Ok(Json(json!(ids)).into_response())
}
