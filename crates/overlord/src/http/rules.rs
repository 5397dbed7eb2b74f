//! The Coordinator's retention-rule routes (Druid's `RulesResource`), served by the overlord:
//! `/druid/coordinator/v1/rules[...]`. Rules are checked when posted (a malformed one is a 400
//! naming the rule and field), stored as a new version with an audit row, and applied by the
//! leader's retention duty (`crate::retention`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_core::ids::validate_id;
use drover_core::time::now_iso;
use drover_metadata::{AuditRecord, DEFAULT_RULES_KEY};
use serde_json::{Map, Value};

use super::{ApiError, AppState};
use crate::retention::{default_rules, rules::parse_rules};

/// The audit type of rule changes, as Druid writes it.
const AUDIT_TYPE: &str = "rules";

fn data_source(raw: &str) -> Result<(), ApiError> {
    if raw == DEFAULT_RULES_KEY {
        return Ok(());
    }
    validate_id("dataSource", raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The rules in force: per data source, and `_default` (Druid's when never set).
async fn current(s: &AppState) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (ds, bytes) in s.leader()?.store.current_rules().await? {
        let rules: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Internal(format!("stored rules of [{ds}]: {e}")))?;
        out.insert(ds, rules);
    }
    out.entry(DEFAULT_RULES_KEY).or_insert_with(default_rules);
    Ok(out)
}

/// `GET /rules`: `{"<dataSource>": [rules…], "_default": [rules…]}`.
pub async fn all(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(current(&s).await?).into_response())
}

/// `GET /rules/{ds}`: its rules (`[]` when it has none); `?full`: followed by the defaults.
pub async fn get(
    State(s): State<AppState>,
    Path(ds): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    data_source(&ds)?;
    let rules = current(&s).await?;
    let mut out: Vec<Value> = rules
        .get(&ds)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if q.contains_key("full") && ds != DEFAULT_RULES_KEY {
        if let Some(defaults) = rules.get(DEFAULT_RULES_KEY).and_then(Value::as_array) {
            out.extend(defaults.iter().cloned());
        }
    }
    Ok(Json(out).into_response())
}

/// `POST /rules/{ds}` with a JSON array of rules: checked, stored with an audit row.
pub async fn set(
    State(s): State<AppState>,
    Path(ds): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    data_source(&ds)?;
    let rules: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the rules are not valid JSON: {e}")))?;
    parse_rules(&rules).map_err(|e| ApiError::BadRequest(e.0))?;
    let payload = rules.to_string();
    let audit = AuditRecord {
        key: ds.clone(),
        audit_type: AUDIT_TYPE.into(),
        info: super::audit::info(&headers),
        payload: payload.clone(),
        created_date: now_iso(),
    };
    s.leader()?
        .store
        .set_rules(&ds, payload.as_bytes(), &audit)
        .await?;
    tracing::info!(data_source = %ds, rules = %payload, author = %audit.info.author, "retention rules set");
    Ok(StatusCode::OK.into_response())
}

/// `GET /rules/{ds}/history?interval=…|count=N`: the changes, newest first.
pub async fn history(
    State(s): State<AppState>,
    Path(ds): Path<String>,
    Query(q): Query<super::audit::HistoryQuery>,
) -> Result<Response, ApiError> {
    data_source(&ds)?;
    let (since, until, limit) = q.window()?;
    let rows = s
        .leader()?
        .store
        .audit_history(&ds, AUDIT_TYPE, since.as_deref(), until.as_deref(), limit)
        .await?;
    Ok(Json(super::audit::entries(rows)).into_response())
}
