//! Helpers for the ingestion scenarios: tasks, segments read back from deep storage, reports.

use serde_json::{json, Value};

use drover_testkit::ApiClient;

/// An `index` task over inline data, for the lock and error scenarios.
pub fn inline_index_task(
    id: &str,
    data_source: &str,
    interval: &str,
    data: &str,
    extra_tuning: Value,
    context: Value,
) -> Value {
    let mut tuning = json!({"type": "index"});
    if let (Some(t), Some(extra)) = (tuning.as_object_mut(), extra_tuning.as_object()) {
        t.extend(extra.clone());
    }
    json!({
        "type": "index",
        "id": id,
        "spec": {
            "dataSchema": {
                "dataSource": data_source,
                "timestampSpec": {"column": "ts", "format": "iso"},
                "dimensionsSpec": {"dimensions": ["page"]},
                "metricsSpec": [{"type": "count", "name": "count"},
                                {"type": "longSum", "name": "n", "fieldName": "n"}],
                "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none",
                                    "rollup": false, "intervals": [interval]}
            },
            "ioConfig": {"type": "index", "inputSource": {"type": "inline", "data": data},
                         "inputFormat": {"type": "json"}, "appendToExisting": false},
            "tuningConfig": tuning
        },
        "context": context
    })
}

/// The used segments of a data source (`segments?full`), oldest first.
pub async fn used_segments(client: &ApiClient, data_source: &str) -> Vec<Value> {
    let r = client
        .get_root(&format!(
            "/druid/coordinator/v1/metadata/datasources/{data_source}/segments?full"
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

/// Every row of the segments, read from their Parquet files in deep storage.
pub fn segment_rows(segments: &[Value]) -> Vec<Value> {
    let mut rows = Vec::new();
    for s in segments {
        let path = s["loadSpec"]["path"].as_str().expect("a local loadSpec");
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        rows.extend(drover_ingest::segment::read_parquet(bytes).unwrap());
    }
    rows
}

/// The task's report (`GET /task/{id}/reports`).
pub async fn report(client: &ApiClient, id: &str) -> Value {
    let r = client.get(&format!("/task/{id}/reports")).await.unwrap();
    assert_eq!(r.status, 200, "reports of {id}: {}", r.body);
    serde_json::from_str(&r.body).unwrap()
}
