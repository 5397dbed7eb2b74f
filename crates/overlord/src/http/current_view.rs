//! The current view of a data source for readers that do not go through an API (DuckDB, pandas,
//! Spark): exactly the files of its used segments and, for a segment that a newer one partly
//! overshadows (a daily overwrite of a weekly segment), the time ranges of it to leave out.
//! `GET /drover/v1/datasources/{ds}/current`; `?format=duckdb` answers one SQL query.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_core::ids::DataSource;
use drover_core::interval::Interval;
use drover_core::segment::DataSegment;
use drover_core::time::to_iso;
use serde_json::{json, Value};

use super::{ApiError, AppState};

/// One used segment as a reader takes it.
#[derive(Debug, Clone, PartialEq)]
struct CurrentFile {
    /// A local path, or `s3://bucket/key`.
    location: String,
    interval: Interval,
    /// Time ranges of this file that newer segments replace.
    exclude: Vec<Interval>,
}

fn location(load_spec: &Value) -> Option<String> {
    let text = |k: &str| load_spec.get(k).and_then(Value::as_str);
    match text("type")? {
        "local" | "object_store" => text("path").map(str::to_string),
        "s3" => Some(format!("s3://{}/{}", text("bucket")?, text("key")?)),
        _ => None,
    }
}

/// The used segments as files to read, each with what newer segments replace of it.
fn current_files(used: &[DataSegment]) -> Vec<CurrentFile> {
    used.iter()
        .filter_map(|s| {
            let exclude = used
                .iter()
                .filter(|o| o.version > s.version && o.interval.overlaps(&s.interval))
                .map(|o| o.interval)
                .collect();
            Some(CurrentFile {
                location: location(&s.load_spec)?,
                interval: s.interval,
                exclude,
            })
        })
        .collect()
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// One DuckDB query over the files: whole files read together, partly replaced ones each with
/// the replaced ranges filtered out, combined `UNION ALL BY NAME`.
fn duckdb_sql(files: &[CurrentFile]) -> String {
    let whole: Vec<String> = files
        .iter()
        .filter(|f| f.exclude.is_empty())
        .map(|f| quote(&f.location))
        .collect();
    let mut parts = Vec::new();
    if !whole.is_empty() {
        parts.push(format!(
            "SELECT * FROM read_parquet([{}], union_by_name = true)",
            whole.join(", ")
        ));
    }
    for f in files.iter().filter(|f| !f.exclude.is_empty()) {
        let conditions: Vec<String> = f
            .exclude
            .iter()
            .map(|i| {
                format!(
                    "NOT (__time >= TIMESTAMPTZ {} AND __time < TIMESTAMPTZ {})",
                    quote(&to_iso(i.start)),
                    quote(&to_iso(i.end))
                )
            })
            .collect();
        parts.push(format!(
            "SELECT * FROM read_parquet({}) WHERE {}",
            quote(&f.location),
            conditions.join(" AND ")
        ));
    }
    if parts.is_empty() {
        // No used segment: a query that answers no rows rather than an error.
        return "SELECT NULL::TIMESTAMPTZ AS __time WHERE false;\n".into();
    }
    format!("{};\n", parts.join("\nUNION ALL BY NAME\n"))
}

/// `GET /drover/v1/datasources/{ds}/current[?format=duckdb]`.
pub async fn current(
    State(s): State<AppState>,
    Path(ds): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let ds = DataSource::new(ds).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let used = s.leader()?.store.used_segments(&ds, None).await?;
    let files = current_files(&used);
    match q.get("format").map(String::as_str) {
        Some("duckdb") => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            duckdb_sql(&files),
        )
            .into_response()),
        None | Some("json") => Ok(Json(json!({
            "dataSource": ds,
            "files": files.iter().map(|f| json!({
                "path": f.location,
                "interval": f.interval,
                "exclude": f.exclude,
            })).collect::<Vec<_>>(),
        }))
        .into_response()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "unknown [format] [{other}]; use json or duckdb"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(interval: &str, version: &str, path: &str) -> DataSegment {
        serde_json::from_value(json!({
            "dataSource": "wiki", "interval": interval, "version": version,
            "loadSpec": {"type": "local", "path": path}, "dimensions": "", "metrics": "",
            "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 0}, "size": 0
        }))
        .unwrap()
    }

    #[test]
    fn a_partly_overshadowed_segment_is_read_without_the_newer_range() {
        let used = [
            segment("2018-01-01/2018-01-08", "v1", "/deep/week.parquet"),
            segment("2018-01-01/2018-01-02", "v2", "/deep/day's.parquet"),
        ];
        let files = current_files(&used);
        assert_eq!(files[0].exclude, [used[1].interval]);
        assert!(files[1].exclude.is_empty());
        let sql = duckdb_sql(&files);
        assert!(
            sql.starts_with("SELECT * FROM read_parquet(['/deep/day''s.parquet']"),
            "{sql}"
        );
        assert!(sql.contains("UNION ALL BY NAME"), "{sql}");
        assert!(sql.contains(
            "FROM read_parquet('/deep/week.parquet') WHERE NOT (__time >= TIMESTAMPTZ '2018-01-01T00:00:00.000Z' AND __time < TIMESTAMPTZ '2018-01-02T00:00:00.000Z')"
        ), "{sql}");
        assert!(duckdb_sql(&[]).contains("WHERE false"));
    }
}
