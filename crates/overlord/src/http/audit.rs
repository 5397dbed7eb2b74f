//! Druid's audit trail as the routes show it: who changed a config (`X-Druid-Author`,
//! `X-Druid-Comment`) and the `AuditEntry` list a history route answers.

use axum::http::HeaderMap;
use chrono::Utc;
use drover_core::time::{parse_iso, to_iso};
use drover_metadata::{AuditInfo, AuditRecord};
use serde_json::{json, Value};

use super::ApiError;

/// The audit information a request carries in Druid's headers.
pub fn info(headers: &HeaderMap) -> AuditInfo {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    AuditInfo {
        author: header("X-Druid-Author"),
        comment: header("X-Druid-Comment"),
        ip: String::new(),
    }
}

/// Druid's `AuditEntry` JSON for each row.
pub fn entries(rows: Vec<AuditRecord>) -> Vec<Value> {
    rows.into_iter()
        .map(|r| {
            json!({
                "key": r.key,
                "type": r.audit_type,
                "auditInfo": {"author": r.info.author, "comment": r.info.comment, "ip": r.info.ip},
                "payload": r.payload,
                "auditTime": r.created_date,
            })
        })
        .collect()
}

/// How far back a history route looks when neither `interval` nor `count` is given.
const DEFAULT_HISTORY_DAYS: i64 = 7;

/// `?interval=start/end` or `?count=N` of a history route.
#[derive(Debug, serde::Deserialize)]
pub struct HistoryQuery {
    interval: Option<String>,
    count: Option<u32>,
}

/// Which audit rows a history route wants: created in `[since, until)`, at most `limit`.
pub type Window = (Option<String>, Option<String>, Option<u32>);

impl HistoryQuery {
    /// The audit rows wanted: created in `[since, until)`, or the newest `limit`; the last week
    /// when nothing is asked.
    pub fn window(&self) -> Result<Window, ApiError> {
        match (&self.interval, self.count) {
            (Some(interval), _) => {
                let bad = || {
                    ApiError::BadRequest(format!(
                        "invalid interval [{interval}]; expected <start>/<end> in ISO-8601"
                    ))
                };
                let (start, end) = interval
                    .split_once('/')
                    .or_else(|| interval.split_once('_'))
                    .ok_or_else(bad)?;
                let (start, end) = (
                    parse_iso(start).ok_or_else(bad)?,
                    parse_iso(end).ok_or_else(bad)?,
                );
                Ok((Some(to_iso(start)), Some(to_iso(end)), None))
            }
            (None, Some(0)) => Err(ApiError::BadRequest("[count] must be positive".into())),
            (None, Some(count)) => Ok((None, None, Some(count))),
            (None, None) => Ok((
                Some(to_iso(
                    Utc::now() - chrono::Duration::days(DEFAULT_HISTORY_DAYS),
                )),
                None,
                None,
            )),
        }
    }
}
