//! Druid's data-management routes, which change which segments are used: the Coordinator's
//! (`/druid/coordinator/v1/datasources/...`) and the Overlord's newer forms
//! (`/druid/indexer/v1/datasources/...`), served alike. A segment marked unused is no longer part
//! of its data source; a `kill` task deletes unused segments for good. Marking used brings back
//! only segments that no used segment overshadows, as Druid does.

use axum::body::Bytes;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_core::ids::DataSource;
use drover_core::interval::Interval;
use drover_core::segment::DataSegment;
use drover_metadata::{MetadataStore, SegmentFilter, Usage};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState};

fn data_source(raw: String) -> Result<DataSource, ApiError> {
    DataSource::new(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The body of `markUsed` / `markUnused`: an interval (with versions) or segment ids.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SegmentsToUpdate {
    interval: Option<String>,
    segment_ids: Option<Vec<String>>,
    versions: Option<Vec<String>>,
}

/// What the body selects, checked.
enum Selection {
    Interval {
        interval: Interval,
        versions: Option<Vec<String>>,
    },
    Ids(Vec<String>),
}

impl Selection {
    fn filter(&self) -> SegmentFilter<'_> {
        match self {
            Selection::Interval { interval, versions } => SegmentFilter::Interval {
                interval,
                versions: versions.as_deref(),
            },
            Selection::Ids(ids) => SegmentFilter::Ids(ids),
        }
    }
}

fn selection(body: &[u8]) -> Result<Selection, ApiError> {
    let bad = |m: String| ApiError::BadRequest(m);
    let body: SegmentsToUpdate = serde_path_to_error::deserialize(
        &mut serde_json::Deserializer::from_slice(body),
    )
    .map_err(|e| match e.path().to_string().as_str() {
        "." => bad(format!("invalid request body: {}", e.inner())),
        path => bad(format!("invalid [{path}]: {}", e.inner())),
    })?;
    match (body.interval, body.segment_ids) {
        (Some(text), None) => {
            let interval = Interval::parse(&text)
                .map_err(|e| bad(format!("invalid [interval] [{text}]: {e}")))?;
            if body.versions.as_ref().is_some_and(Vec::is_empty) {
                return Err(bad("[versions] must not be empty when given".into()));
            }
            Ok(Selection::Interval {
                interval,
                versions: body.versions,
            })
        }
        (None, Some(ids)) => {
            if ids.is_empty() {
                return Err(bad("[segmentIds] must not be empty".into()));
            }
            if body.versions.is_some() {
                return Err(bad(
                    "[versions] can only be given with [interval], not with [segmentIds]".into(),
                ));
            }
            Ok(Selection::Ids(ids))
        }
        _ => Err(bad(
            "exactly one of [interval] or [segmentIds] must be given".into(),
        )),
    }
}

fn changed(n: u64) -> Response {
    Json(json!({ "numChangedSegments": n })).into_response()
}

/// Marks used the unused segments `filter` selects that no used segment (nor a newer one among
/// them) overshadows.
async fn mark_used(
    store: &MetadataStore,
    ds: &DataSource,
    filter: SegmentFilter<'_>,
) -> Result<u64, ApiError> {
    let candidates = store
        .segments_where(
            ds,
            Usage::Unused {
                marked_before: None,
            },
            filter,
            None,
        )
        .await?;
    if candidates.is_empty() {
        return Ok(0);
    }
    let mut timeline = store.used_segments(ds, None).await?;
    timeline.extend(candidates.iter().cloned());
    let overshadowed = crate::actions::overshadowed(&timeline, &candidates);
    let ids: Vec<String> = candidates
        .iter()
        .map(DataSegment::id)
        .filter(|id| !overshadowed.contains(id))
        .collect();
    Ok(store
        .mark_segments(ds, &ids, drover_metadata::MarkAs::Used)
        .await?)
}

async fn mark_unused(
    store: &MetadataStore,
    ds: &DataSource,
    filter: SegmentFilter<'_>,
) -> Result<u64, ApiError> {
    let ids: Vec<String> = store
        .segments_where(ds, Usage::Used, filter, None)
        .await?
        .iter()
        .map(DataSegment::id)
        .collect();
    Ok(store
        .mark_segments(ds, &ids, drover_metadata::MarkAs::Unused)
        .await?)
}

/// `POST /datasources/{ds}/markUnused` with `{"interval"}` (and `versions`) or `{"segmentIds"}`.
pub async fn mark_unused_route(
    State(s): State<AppState>,
    Path(ds): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    mark_selected(
        &s,
        ds,
        &body,
        Usage::Unused {
            marked_before: None,
        },
    )
    .await
}

/// `POST /datasources/{ds}/markUsed`, with the same body.
pub async fn mark_used_route(
    State(s): State<AppState>,
    Path(ds): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    mark_selected(&s, ds, &body, Usage::Used).await
}

/// Marks the segments the body selects as `to`.
async fn mark_selected(
    s: &AppState,
    ds: String,
    body: &[u8],
    to: Usage,
) -> Result<Response, ApiError> {
    let ds = data_source(ds)?;
    let which = selection(body)?;
    let store = &s.leader()?.store;
    let n = match to {
        Usage::Used => mark_used(store, &ds, which.filter()).await?,
        Usage::Unused { .. } => mark_unused(store, &ds, which.filter()).await?,
    };
    tracing::info!(data_source = %ds, segments = n, state = ?to, "marked segments");
    Ok(changed(n))
}

/// Submits a `kill` task for the unused segments of `ds` inside `interval` (the Coordinator's
/// way to delete data for good); answers its id.
async fn submit_kill(s: &AppState, ds: &DataSource, interval: &str) -> Result<String, ApiError> {
    let task = drover_task::Task::from_value(json!({
        "type": "kill",
        "dataSource": ds,
        "interval": interval.replacen('_', "/", 1),
    }))
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let id = task.id.to_string();
    s.leader()?.queue.add(task, None).await?;
    tracing::info!(data_source = %ds, %interval, task = %id, "kill task submitted");
    Ok(id)
}

/// `DELETE /datasources/{ds}/intervals/{interval}` (`start_end`): a kill task for the unused
/// segments there. 200 with an empty body, as Druid answers.
pub async fn kill_interval(
    State(s): State<AppState>,
    Path((ds, interval)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ds = data_source(ds)?;
    submit_kill(&s, &ds, &interval).await?;
    Ok(axum::http::StatusCode::OK.into_response())
}

/// `DELETE /datasources/{ds}`: every used segment of the data source becomes unused. The legacy
/// `?kill=true&interval=start_end` submits a kill task instead.
pub async fn mark_all_unused(
    State(s): State<AppState>,
    Path(ds): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let ds = data_source(ds)?;
    if q.get("kill").is_some_and(|k| k == "true") {
        let interval = q
            .get("interval")
            .ok_or_else(|| ApiError::BadRequest("[interval] is required with kill=true".into()))?;
        submit_kill(&s, &ds, interval).await?;
        return Ok(axum::http::StatusCode::OK.into_response());
    }
    let n = mark_unused(&s.leader()?.store, &ds, SegmentFilter::All).await?;
    tracing::info!(data_source = %ds, segments = n, "marked every segment unused");
    Ok(changed(n))
}

/// `POST /datasources/{ds}`: every unused segment that nothing overshadows becomes used.
pub async fn mark_all_used(
    State(s): State<AppState>,
    Path(ds): Path<String>,
) -> Result<Response, ApiError> {
    let ds = data_source(ds)?;
    let n = mark_used(&s.leader()?.store, &ds, SegmentFilter::All).await?;
    tracing::info!(data_source = %ds, segments = n, "marked every segment used");
    Ok(changed(n))
}

/// `DELETE /datasources/{ds}/segments/{id}`: `{"segmentStateChanged": bool}`.
pub async fn mark_segment_unused(
    State(s): State<AppState>,
    Path((ds, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ds = data_source(ds)?;
    let ids = [id];
    let n = mark_unused(&s.leader()?.store, &ds, SegmentFilter::Ids(&ids)).await?;
    Ok(Json(json!({ "segmentStateChanged": n > 0 })).into_response())
}

/// `POST /datasources/{ds}/segments/{id}`: `{"segmentStateChanged": bool}`.
pub async fn mark_segment_used(
    State(s): State<AppState>,
    Path((ds, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ds = data_source(ds)?;
    let ids = [id];
    let n = mark_used(&s.leader()?.store, &ds, SegmentFilter::Ids(&ids)).await?;
    Ok(Json(json!({ "segmentStateChanged": n > 0 })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        match selection(body.as_bytes()) {
            Err(ApiError::BadRequest(m)) => m,
            Err(other) => panic!("not a 400: {other:?}"),
            Ok(_) => panic!("accepted: {body}"),
        }
    }

    #[test]
    fn a_selection_is_an_interval_or_ids_never_both() {
        assert!(matches!(
            selection(br#"{"interval":"2015-09-12/2015-09-13"}"#),
            Ok(Selection::Interval { versions: None, .. })
        ));
        assert!(matches!(
            selection(br#"{"interval":"2015-09-12/2015-09-13","versions":["v1"]}"#),
            Ok(Selection::Interval {
                versions: Some(_),
                ..
            })
        ));
        assert!(matches!(
            selection(br#"{"segmentIds":["a","b"]}"#),
            Ok(Selection::Ids(ids)) if ids.len() == 2
        ));
        assert!(err("{}").contains("exactly one"));
        assert!(
            err(r#"{"interval":"2015-09-12/2015-09-13","segmentIds":["a"]}"#)
                .contains("exactly one")
        );
        assert!(err(r#"{"interval":"yesterday"}"#).contains("[interval]"));
        assert!(err(r#"{"segmentIds":[]}"#).contains("[segmentIds]"));
        assert!(err(r#"{"segmentIds":"a"}"#).contains("[segmentIds]"));
        assert!(err(r#"{"segmentIds":["a"],"versions":["v"]}"#).contains("[versions]"));
        assert!(err(r#"{"intervals":"x"}"#).contains("intervals"));
        assert!(err("not json").contains("invalid request body"));
    }
}
