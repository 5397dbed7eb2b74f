//! S3 for real, against a local S3-compatible server (moto): deep storage and task logs in a
//! bucket, the `s3` input source by prefix (split over parallel sub-tasks) and by URI with the
//! source's own credentials, and a segment big enough to go up as a multipart upload.

use std::time::Duration;

use drover_scenarios::{used_segments, Cluster, ClusterSpec};
use drover_testkit::{MiddleManagerSpec, S3Server, S3Storage};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(240);

fn task(task_type: &str, data_source: &str, input_source: Value, tuning: Value) -> Value {
    json!({
        "type": task_type,
        "spec": {
            "dataSchema": {
                "dataSource": data_source,
                "timestampSpec": {"column": "time", "format": "iso"},
                "dimensionsSpec": {"dimensions": ["channel", "page", "user"]},
                "metricsSpec": [{"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"}],
                "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none",
                    "rollup": true}
            },
            "ioConfig": {"type": task_type, "inputSource": input_source,
                "inputFormat": {"type": "json"}},
            "tuningConfig": tuning
        }
    })
}

/// The rows of segments kept in the bucket, read back through the S3 API.
async fn rows_in_s3(s3: &S3Server, segments: &[Value]) -> Vec<Value> {
    let mut rows = Vec::new();
    for s in segments {
        let spec = &s["loadSpec"];
        assert_eq!(spec["type"], "s3", "{spec}");
        assert_eq!(spec["bucket"], "drover");
        let key = spec["key"].as_str().unwrap();
        assert!(key.starts_with("segments/"), "{key}");
        let bytes = match s3.get("drover", key).await {
            Some(b) => b,
            None => panic!(
                "no object [{key}]; there are {:?}",
                s3.keys("drover", "segments/").await
            ),
        };
        rows.extend(drover_ingest::segment::read_parquet(bytes).unwrap());
    }
    rows
}

async fn succeed(cluster: &Cluster, task: &Value) -> String {
    drover_scenarios::succeed_within(cluster, task, TIMEOUT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_storage_task_logs_and_inputs_in_s3() {
    let scratch = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(scratch.path());
    s3.create_bucket("drover").await;
    s3.create_bucket("wiki-input").await;

    // The wikiticker sample as four objects under a prefix, and one the glob leaves out.
    let lines = drover_scenarios::wikiticker_lines();
    let per = lines.len().div_ceil(4);
    for (i, chunk) in lines.chunks(per).enumerate() {
        let body = chunk.join("\n") + "\n";
        s3.put(
            "wiki-input",
            &format!("edits/part-{i}.json"),
            body.into_bytes(),
        )
        .await;
    }
    s3.put("wiki-input", "edits/part-x.txt", b"not json\n".to_vec())
        .await;

    let cluster = Cluster::start(ClusterSpec {
        middle_managers: vec![MiddleManagerSpec::with_capacity(2); 2],
        s3: Some(S3Storage {
            bucket: "drover".into(),
            env: s3.env(),
        }),
        ..Default::default()
    })
    .await;
    let c = cluster.client.clone();

    // By prefix, over two sub-tasks.
    let id = succeed(
        &cluster,
        &task(
            "index_parallel",
            "wiki-s3",
            json!({"type": "s3", "prefixes": ["s3://wiki-input/edits/part-"],
                "objectGlob": "*.json"}),
            json!({"type": "index_parallel", "maxNumConcurrentSubTasks": 2,
                "splitHintSpec": {"type": "maxSize", "maxNumFiles": 2}}),
        ),
    )
    .await;
    let segments = used_segments(&c, "wiki-s3").await;
    let rows = rows_in_s3(&s3, &segments).await;
    let counted: i64 = rows.iter().map(|r| r["count"].as_i64().unwrap()).sum();
    assert_eq!(counted, lines.len() as i64, "every edit once");
    let subs: Vec<Value> = c
        .tasks("")
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t["groupId"] == id.as_str() && t["id"] != id.as_str())
        .collect();
    assert_eq!(subs.len(), 2, "two splits of two objects: {subs:#?}");

    // Task logs and reports are objects in the bucket, served by the overlord.
    let log = c.log(&id).await.unwrap().expect("the supervisor's log");
    assert!(log.contains("published"), "{log}");
    let keys = s3.keys("drover", "task-logs/").await;
    assert!(keys.contains(&format!("task-logs/{id}/log")), "{keys:?}");
    assert!(
        keys.contains(&format!("task-logs/{id}/report.json")),
        "{keys:?}"
    );
    let report = drover_scenarios::report(&c, &id).await;
    assert_eq!(
        report["ingestionStatsAndErrors"]["payload"]["ingestionState"],
        "COMPLETED"
    );

    // By URI, with the source's own credentials: rows of random text, over 8 MiB as a
    // segment, which goes up in parts.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        format!("{seed:016x}{:016x}", seed.rotate_left(32))
    };
    let mut body = String::new();
    let rows_big = 150_000;
    for i in 0..rows_big {
        body.push_str(
            &json!({"time": format!("2015-09-13T{:02}:{:02}:00Z", (i / 60) % 24, i % 60),
                "channel": random(), "page": random(), "user": random(), "added": i})
            .to_string(),
        );
        body.push('\n');
    }
    s3.put("wiki-input", "big/random.json", body.into_bytes())
        .await;
    succeed(
        &cluster,
        &task(
            "index",
            "big-s3",
            json!({"type": "s3", "uris": ["s3://wiki-input/big/random.json"],
                "properties": {"accessKeyId": drover_testkit::s3::ACCESS_KEY,
                    "secretAccessKey": {"type": "default",
                        "password": drover_testkit::s3::SECRET_KEY}}}),
            json!({"type": "index"}),
        ),
    )
    .await;
    let segments = used_segments(&c, "big-s3").await;
    assert_eq!(segments.len(), 1);
    let size = segments[0]["size"].as_u64().unwrap();
    assert!(
        size > 8 << 20,
        "a segment bigger than one 8 MiB part: {size}"
    );
    let key = segments[0]["loadSpec"]["key"].as_str().unwrap();
    let etag = s3.etag("drover", key).await.unwrap();
    assert!(etag.contains('-'), "a multipart upload's ETag: {etag}");
    assert_eq!(rows_in_s3(&s3, &segments).await.len(), rows_big);

    // A bad source is refused before it runs, naming the field.
    let r = c
        .post(
            "/task",
            task(
                "index",
                "bad-s3",
                json!({"type": "s3", "uris": ["http://wiki-input/x.json"]}),
                json!({"type": "index"}),
            )
            .to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("spec.ioConfig.inputSource.uris[0]"),
        "{}",
        r.body
    );
}
