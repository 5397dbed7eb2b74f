//! Helpers for the ingestion scenarios: tasks, segments read back from deep storage, reports.

use serde_json::{json, Value};

use drover_testkit::{ApiClient, Cluster};

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

/// An `index` task of one inline row (2024-01-01T01:00, page `a`, n 1) into `data_source`.
pub fn one_row_task(id: &str, data_source: &str) -> Value {
    inline_index_task(
        id,
        data_source,
        "2024-01-01/2024-01-02",
        "{\"ts\":\"2024-01-01T01:00:00Z\",\"page\":\"a\",\"n\":1}\n",
        json!({}),
        json!({}),
    )
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

/// A minimal HTTP/1.1 server on a local port: every request gets `HTTP/1.1 {status_and_headers}`
/// and `body`. Answers the port.
pub async fn serve_http(status_and_headers: &str, body: Vec<u8>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let head = format!(
        "HTTP/1.1 {status_and_headers}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (head, body) = (head.clone(), body.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
            });
        }
    });
    port
}

/// Submits `task`, waits up to `timeout` for it to end and answers its id; a task that did not
/// succeed fails the test with its status and log.
pub async fn succeed_within(
    cluster: &Cluster,
    task: &Value,
    timeout: std::time::Duration,
) -> String {
    let id = cluster.client.submit(task).await.unwrap();
    let status = cluster.client.wait_complete(&id, timeout).await.unwrap();
    if status["statusCode"] != "SUCCESS" {
        let log = cluster
            .client
            .log(&id)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        cluster.fail(format!("task {id} did not succeed: {status}\n{log}"));
    }
    id
}

/// The lines of Druid's wikiticker sample (39,244 edits), as shipped in tests/data.
pub fn wikiticker_lines() -> Vec<String> {
    use std::io::BufRead;
    let gz = std::fs::File::open(
        drover_ingest::tutorial::tutorial_dir().join("wikiticker-2015-09-12-sampled.json.gz"),
    )
    .unwrap();
    std::io::BufReader::new(flate2::read::GzDecoder::new(gz))
        .lines()
        .map(Result::unwrap)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
