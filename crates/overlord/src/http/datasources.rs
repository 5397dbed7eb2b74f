//! The Coordinator's read routes for data sources (Druid's `DataSourcesResource`), served by the
//! overlord from the used segments in `druid_segments`: there are no historicals here, so
//! "served" means "used". `/druid/coordinator/v1/datasources[...]`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_core::ids::validate_id;
use drover_core::interval::Interval;
use drover_core::segment::DataSegment;
use drover_core::time::to_iso;
use serde_json::{json, Value};

use super::{ApiError, AppState};

fn data_source(raw: &str) -> Result<(), ApiError> {
    validate_id("dataSource", raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Druid's summary of a data source's segments: `{"tiers":{},"segments":{count,size,minTime,maxTime}}`.
pub(crate) fn summary(segments: &[DataSegment]) -> Value {
    let min = segments.iter().map(|s| s.interval.start).min();
    let max = segments.iter().map(|s| s.interval.end).max();
    json!({
        "tiers": {},
        "segments": {
            "count": segments.len(),
            "size": segments.iter().map(|s| s.size).sum::<u64>(),
            "minTime": min.map(to_iso),
            "maxTime": max.map(to_iso),
        }
    })
}

fn with_ids(segments: Vec<DataSegment>) -> Vec<DataSegment> {
    segments
        .into_iter()
        .map(|mut s| {
            s.identifier = s.id();
            s
        })
        .collect()
}

/// `GET /datasources`: names; `?simple`: name and summary each; `?full`: name and segments each.
pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let store = &s.leader()?.store;
    let names = store.data_sources().await?;
    if !q.contains_key("simple") && !q.contains_key("full") {
        return Ok(Json(names).into_response());
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let used = store.used_segments(&name, None).await?;
        out.push(if q.contains_key("full") {
            json!({"name": name, "properties": {}, "segments": with_ids(used)})
        } else {
            json!({"name": name, "properties": summary(&used)})
        });
    }
    Ok(Json(out).into_response())
}

/// `GET /druid/coordinator/v1/loadstatus?simple`: segments left to load, by data source. Without
/// historicals nothing waits to be loaded: 0 for each (`?full` and the percentage form say 100).
pub async fn load_status(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let names = s.leader()?.store.data_sources().await?;
    let out: serde_json::Map<String, Value> = names
        .into_iter()
        .map(|n| {
            let v = if q.contains_key("simple") {
                json!(0)
            } else {
                json!(100.0)
            };
            (n, v)
        })
        .collect();
    Ok(Json(out).into_response())
}

/// `GET /datasources/{ds}`: the summary; 204 when the data source has no used segment (Druid).
pub async fn get(State(s): State<AppState>, Path(ds): Path<String>) -> Result<Response, ApiError> {
    data_source(&ds)?;
    let used = s.leader()?.store.used_segments(&ds, None).await?;
    if used.is_empty() {
        return Ok(axum::http::StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(summary(&used)).into_response())
}

/// `GET /datasources/{ds}/intervals`: the intervals of its used segments, newest first.
pub async fn intervals(
    State(s): State<AppState>,
    Path(ds): Path<String>,
) -> Result<Response, ApiError> {
    data_source(&ds)?;
    let used = s.leader()?.store.used_segments(&ds, None).await?;
    let mut intervals: Vec<Interval> = used.iter().map(|s| s.interval).collect();
    intervals.sort_by_key(|i| std::cmp::Reverse((i.start, i.end)));
    intervals.dedup();
    let texts: Vec<String> = intervals.iter().map(Interval::to_string).collect();
    Ok(Json(texts).into_response())
}

/// `GET /datasources/{ds}/segments`: ids; `?full`: the DataSegments.
pub async fn segments(
    State(s): State<AppState>,
    Path(ds): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    data_source(&ds)?;
    let used = s.leader()?.store.used_segments(&ds, None).await?;
    if q.contains_key("full") {
        return Ok(Json(with_ids(used)).into_response());
    }
    let ids: Vec<String> = used.iter().map(DataSegment::id).collect();
    Ok(Json(ids).into_response())
}

/// `GET /datasources/{ds}/segments/{segmentId}`: the used segment; 404 when there is none.
pub async fn segment(
    State(s): State<AppState>,
    Path((ds, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    data_source(&ds)?;
    let used = s.leader()?.store.used_segments(&ds, None).await?;
    match with_ids(used).into_iter().find(|seg| seg.identifier == id) {
        Some(seg) => Ok(Json(seg).into_response()),
        None => Err(ApiError::NotFound(
            json!({"error": format!("no used segment [{id}] in data source [{ds}]")}),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(interval: &str, size: u64) -> DataSegment {
        serde_json::from_value(json!({
            "dataSource": "wiki", "interval": interval, "version": "v1",
            "loadSpec": {}, "dimensions": "", "metrics": "",
            "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 0},
            "size": size
        }))
        .unwrap()
    }

    #[test]
    fn a_summary_counts_sizes_and_spans_the_segments() {
        let s = summary(&[
            seg("2024-01-02/2024-01-03", 10),
            seg("2024-01-01/2024-01-02", 5),
        ]);
        assert_eq!(s["segments"]["count"], 2);
        assert_eq!(s["segments"]["size"], 15);
        assert_eq!(s["segments"]["minTime"], "2024-01-01T00:00:00.000Z");
        assert_eq!(s["segments"]["maxTime"], "2024-01-03T00:00:00.000Z");
    }
}
