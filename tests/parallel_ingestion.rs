//! Parallel batch ingestion across two middle managers: Druid's wikiticker sample cut into
//! several files and ingested by `index_parallel` tasks whose sub-tasks run on both workers —
//! dynamic partitioning with a sub-task killed half way and tried again, hashed and range
//! partitioning through their phases — each giving the rows a single task gives; and a
//! sub-task failing past `maxRetry`, which fails its supervisor and publishes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use drover_ingest::partitioning::murmur3_32_abs;
use drover_scenarios::{segment_rows, used_segments, Cluster, ClusterSpec};
use drover_testkit::ApiClient;
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(240);
const SAMPLE_ROWS: usize = 39_244;

/// The wikiticker sample as `files` JSON files of consecutive lines.
fn split_sample(dir: &Path, files: usize) -> PathBuf {
    let data_dir = dir.join("wiki-split");
    std::fs::create_dir_all(&data_dir).unwrap();
    let lines = drover_scenarios::wikiticker_lines();
    assert_eq!(lines.len(), SAMPLE_ROWS);
    let per = lines.len().div_ceil(files);
    for (i, chunk) in lines.chunks(per).enumerate() {
        let mut f = std::fs::File::create(data_dir.join(format!("part-{i}.json"))).unwrap();
        for l in chunk {
            writeln!(f, "{l}").unwrap();
        }
    }
    data_dir
}

const DIMENSIONS: [&str; 6] = [
    "channel",
    "countryName",
    "isRobot",
    "namespace",
    "page",
    "user",
];

/// An ingestion task over the split sample: six-hour segments, rows rolled up per hour.
fn wiki_task(task_type: &str, data_source: &str, data_dir: &Path, tuning: Value) -> Value {
    json!({
        "type": task_type,
        "spec": {
            "dataSchema": {
                "dataSource": data_source,
                "timestampSpec": {"column": "time", "format": "iso"},
                "dimensionsSpec": {"dimensions": DIMENSIONS},
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                    {"type": "longSum", "name": "deleted", "fieldName": "deleted"},
                    {"type": "longMax", "name": "max_delta", "fieldName": "delta"}
                ],
                "granularitySpec": {"segmentGranularity": "six_hour", "queryGranularity": "hour",
                    "rollup": true}
            },
            "ioConfig": {"type": task_type,
                "inputSource": {"type": "local", "baseDir": data_dir.display().to_string(),
                    "filter": "part-*.json"},
                "inputFormat": {"type": "json"}},
            "tuningConfig": tuning
        }
    })
}

type Key = (String, Vec<String>);

/// Rows by (time, dimensions), their metrics combined: what a query sees, however the rows
/// are spread over segments.
fn combined(rows: &[Value]) -> BTreeMap<Key, [i64; 4]> {
    let mut out: BTreeMap<Key, [i64; 4]> = BTreeMap::new();
    for r in rows {
        let dims = DIMENSIONS
            .iter()
            .map(|d| r[*d].as_str().unwrap_or("").to_string())
            .collect();
        let e = out
            .entry((r["__time"].as_str().unwrap().to_string(), dims))
            .or_insert([0, 0, 0, i64::MIN]);
        e[0] += r["count"].as_i64().unwrap();
        e[1] += r["added"].as_i64().unwrap();
        e[2] += r["deleted"].as_i64().unwrap();
        e[3] = e[3].max(r["max_delta"].as_i64().unwrap());
    }
    out
}

async fn run(c: &ApiClient, task: &Value) -> (String, Value) {
    let id = c.submit(task).await.unwrap();
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    (id, status)
}

async fn succeed(cluster: &Cluster, task: &Value) -> String {
    drover_scenarios::succeed_within(cluster, task, TIMEOUT).await
}

/// The sub-tasks of `supervisor` the overlord knows, in any state.
async fn sub_tasks(c: &ApiClient, supervisor: &str) -> Vec<Value> {
    let mut all = c.tasks("").await.unwrap();
    all.retain(|t| t["groupId"] == supervisor && t["id"] != supervisor);
    all
}

/// The rows of a single `index` task over the same files: what every parallel run must give.
async fn single_task_rows(cluster: &Cluster, data_dir: &Path) -> BTreeMap<Key, [i64; 4]> {
    succeed(
        cluster,
        &wiki_task("index", "wiki-single", data_dir, json!({"type": "index"})),
    )
    .await;
    let rows = segment_rows(&used_segments(&cluster.client, "wiki-single").await);
    let expected = combined(&rows);
    assert_eq!(
        expected.values().map(|m| m[0]).sum::<i64>(),
        SAMPLE_ROWS as i64,
        "every sample row counted once"
    );
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_partitioning_spreads_sub_tasks_over_both_workers_and_retries_a_killed_one() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2, 2])).await;
    let c = cluster.client.clone();
    let data_dir = split_sample(&cluster.dir, 6);
    let expected = single_task_rows(&cluster, &data_dir).await;

    let mut task = wiki_task(
        "index_parallel",
        "wiki-dynamic",
        &data_dir,
        json!({"type": "index_parallel", "maxNumConcurrentSubTasks": 2, "maxRetry": 2,
            "splitHintSpec": {"type": "maxSize", "maxNumFiles": 1}}),
    );
    // Each sub-task waits a while before it hands its segments back: time to see it, and to
    // kill one.
    task["context"] = json!({"drover.pauseBeforePublishMs": 1500});
    let id = c.submit(&task).await.unwrap();

    // The supervisor's chat API says what it is doing.
    let running = c.wait_running(&id, TIMEOUT).await.unwrap();
    let location = &running["location"];
    let chat = format!(
        "http://{}:{}/druid/worker/v1/chat/{id}",
        location["host"].as_str().unwrap(),
        location["port"]
    );
    let http = reqwest::Client::new();
    // A tell of a sub-task's end without its id is refused, naming what is missing (the peon
    // may still be opening its port when the overlord first says it runs).
    let up_by = tokio::time::Instant::now() + TIMEOUT;
    let refused = loop {
        match http
            .post(format!("{chat}/subtaskEnded"))
            .body("{}")
            .send()
            .await
        {
            Ok(r) => break r,
            Err(e) if tokio::time::Instant::now() < up_by => {
                eprintln!("chat API not up yet: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the supervisor's chat API never answered: {e}"),
        }
    };
    assert_eq!(refused.status(), 400);
    let body = refused.text().await.unwrap();
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("\"id\""),
        "{body}"
    );
    let mut killed: Option<String> = None;
    let mut mode_seen = None;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Ok(r) = http.get(format!("{chat}/mode")).send().await {
            if let Ok(v) = r.json::<Value>().await {
                mode_seen = Some(v);
            }
        }
        for t in sub_tasks(&c, &id).await {
            if t["statusCode"] == "RUNNING" {
                // The first sub-task seen running is shut down half way through.
                if killed.is_none() {
                    let sub = t["id"].as_str().unwrap().to_string();
                    c.shutdown(&sub).await.unwrap();
                    killed = Some(sub);
                }
            }
        }
        let status = c.status(&id).await.unwrap().unwrap_or_default();
        if status["statusCode"] != "RUNNING"
            && status["statusCode"] != "WAITING"
            && status["statusCode"] != "PENDING"
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the parallel task hangs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    if status["statusCode"] != "SUCCESS" {
        let log = c.log(&id).await.ok().flatten().unwrap_or_default();
        cluster.fail(format!("parallel task failed: {status}\n{log}"));
    }
    assert_eq!(mode_seen, Some(json!("parallel")));
    // The overlord told the supervisor when its sub-tasks ended, rather than leaving it to
    // notice on a poll.
    let log = c.log(&id).await.unwrap().unwrap_or_default();
    assert!(log.contains("(told by the overlord)"), "{log}");

    // Six splits, one killed and tried again: seven sub-tasks, on both workers.
    let subs = sub_tasks(&c, &id).await;
    let killed = killed.expect("a sub-task was seen running");
    assert_eq!(subs.len(), 7, "{subs:#?}");
    assert!(subs.iter().all(|t| t["type"] == "single_phase_sub_task"));
    let failed: Vec<&Value> = subs
        .iter()
        .filter(|t| t["statusCode"] == "FAILED")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["id"], killed);
    // Each middle manager started some of them.
    for mm in &cluster.middle_managers {
        let log = std::fs::read_to_string(&mm.process.log).unwrap_or_default();
        assert!(
            log.lines()
                .any(|l| l.contains("peon started task=single_phase_sub_task")),
            "no sub-task on {}",
            mm.url
        );
    }

    let segments = used_segments(&c, "wiki-dynamic").await;
    // One version per time chunk, partitions numbered 0.. across the sub-tasks.
    let mut chunks: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for s in &segments {
        chunks
            .entry(format!("{}@{}", s["interval"], s["version"]))
            .or_default()
            .push(s["shardSpec"]["partitionNum"].as_u64().unwrap());
    }
    for (chunk, mut nums) in chunks.clone() {
        nums.sort();
        assert_eq!(nums, (0..nums.len() as u64).collect::<Vec<_>>(), "{chunk}");
    }
    assert_eq!(
        chunks.len(),
        4,
        "four six-hour chunks, one version each: {chunks:?}"
    );
    assert_eq!(combined(&segment_rows(&segments)), expected);

    // The supervisor's report counts every row its sub-tasks read.
    let report = drover_scenarios::report(&c, &id).await;
    let stats = &report["ingestionStatsAndErrors"]["payload"]["rowStats"]["buildSegments"];
    assert!(
        stats["processed"].as_u64().unwrap() >= SAMPLE_ROWS as u64,
        "{stats}"
    );
}

/// Each segment's rows: (shard spec, rows).
fn rows_by_segment(segments: &[Value]) -> Vec<(Value, Vec<Value>)> {
    segments
        .iter()
        .map(|s| {
            (
                s["shardSpec"].clone(),
                segment_rows(std::slice::from_ref(s)),
            )
        })
        .collect()
}

/// Perfect rollup: no (time, dimensions) in two rows of a time chunk.
fn assert_perfect_rollup(segments: &[Value]) {
    let mut seen = BTreeSet::new();
    for s in segments {
        for r in segment_rows(std::slice::from_ref(s)) {
            let dims: Vec<String> = DIMENSIONS.iter().map(|d| r[*d].to_string()).collect();
            assert!(
                seen.insert((r["__time"].to_string(), dims)),
                "a row in two segments: {r}"
            );
        }
    }
}

/// Every segment's shard spec numbers it within its chunk and names how many there are.
fn assert_core_partitions(segments: &[Value], core_key: &str) {
    let mut by_chunk: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for s in segments {
        by_chunk
            .entry(s["interval"].to_string())
            .or_default()
            .push(&s["shardSpec"]);
    }
    for (chunk, specs) in by_chunk {
        let mut nums: Vec<u64> = specs
            .iter()
            .map(|s| s["partitionNum"].as_u64().unwrap())
            .collect();
        nums.sort();
        assert_eq!(nums, (0..specs.len() as u64).collect::<Vec<_>>(), "{chunk}");
        for s in &specs {
            assert_eq!(s[core_key], specs.len() as u64, "{chunk}: {s}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_and_range_partitioning_give_the_rows_of_a_single_task() {
    let cluster = Cluster::start(ClusterSpec::workers(&[3, 3])).await;
    let c = cluster.client.clone();
    let data_dir = split_sample(&cluster.dir, 4);
    let expected = single_task_rows(&cluster, &data_dir).await;
    let parallel = |ds: &str, partitions: Value| {
        wiki_task(
            "index_parallel",
            ds,
            &data_dir,
            json!({"type": "index_parallel", "maxNumConcurrentSubTasks": 2,
                "forceGuaranteedRollup": true, "totalNumMergeTasks": 3,
                "partitionsSpec": partitions}),
        )
    };

    // hashed, numShards: no measuring phase; each row's bucket is Druid's hash of its channel.
    let id = succeed(
        &cluster,
        &parallel(
            "wiki-hashed",
            json!({"type": "hashed", "numShards": 3,
            "partitionDimensions": ["channel"]}),
        ),
    )
    .await;
    let segments = used_segments(&c, "wiki-hashed").await;
    assert_eq!(combined(&segment_rows(&segments)), expected);
    assert_perfect_rollup(&segments);
    assert_core_partitions(&segments, "partitions");
    for (spec, rows) in rows_by_segment(&segments) {
        assert_eq!(spec["type"], "hashed");
        assert_eq!(spec["numBuckets"], 3);
        assert_eq!(spec["partitionDimensions"], json!(["channel"]));
        assert_eq!(spec["partitionFunction"], "murmur3_32_abs");
        for r in rows {
            let key = serde_json::to_vec(&json!([[r["channel"]]])).unwrap();
            assert_eq!(
                murmur3_32_abs(&key, 3),
                spec["bucketId"].as_u64().unwrap() as u32
            );
        }
    }
    let types: BTreeSet<String> = sub_tasks(&c, &id)
        .await
        .iter()
        .map(|t| t["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "partial_index_generate".into(),
            "partial_index_generic_merge".into()
        ])
    );

    // hashed by row target: a cardinality phase first; about 4,000 rows a segment.
    let id = succeed(
        &cluster,
        &parallel(
            "wiki-hashed-target",
            json!({"type": "hashed", "targetRowsPerSegment": 4000}),
        ),
    )
    .await;
    let segments = used_segments(&c, "wiki-hashed-target").await;
    assert_eq!(combined(&segment_rows(&segments)), expected);
    assert_perfect_rollup(&segments);
    assert_core_partitions(&segments, "partitions");
    assert!(
        segments.len() > 4,
        "more than one bucket a chunk: {}",
        segments.len()
    );
    assert!(sub_tasks(&c, &id)
        .await
        .iter()
        .any(|t| t["type"] == "partial_dimension_cardinality"));

    // range over two dimensions, and single_dim: distribution, generate, merge phases.
    for (ds, partitions, single) in [
        (
            "wiki-range",
            json!({"type": "range", "partitionDimensions": ["channel", "page"],
                "targetRowsPerSegment": 4000}),
            false,
        ),
        (
            "wiki-single-dim",
            json!({"type": "single_dim", "partitionDimension": "page", "maxRowsPerSegment": 5000}),
            true,
        ),
    ] {
        let id = succeed(&cluster, &parallel(ds, partitions)).await;
        let segments = used_segments(&c, ds).await;
        assert_eq!(combined(&segment_rows(&segments)), expected, "{ds}");
        assert_perfect_rollup(&segments);
        assert_core_partitions(&segments, "numCorePartitions");
        assert!(segments.len() > 4, "{ds}: {}", segments.len());
        for (spec, rows) in rows_by_segment(&segments) {
            let key = |r: &Value| -> Vec<Value> {
                if single {
                    vec![r["page"].clone()]
                } else {
                    vec![r["channel"].clone(), r["page"].clone()]
                }
            };
            let bound = |b: &Value| -> Option<Vec<Value>> {
                match b {
                    Value::Null => None,
                    Value::Array(items) => Some(items.clone()),
                    other => Some(vec![other.clone()]),
                }
            };
            let text = |k: &[Value]| -> Vec<String> {
                k.iter()
                    .map(|v| v.as_str().unwrap_or("").to_string())
                    .collect()
            };
            assert_eq!(spec["type"], if single { "single" } else { "range" });
            let (start, end) = (bound(&spec["start"]), bound(&spec["end"]));
            for r in rows {
                let k = text(&key(&r));
                assert!(
                    start.as_ref().is_none_or(|s| text(s) <= k),
                    "{ds}: {r} before {spec}"
                );
                assert!(
                    end.as_ref().is_none_or(|e| k < text(e)),
                    "{ds}: {r} after {spec}"
                );
            }
        }
        assert!(sub_tasks(&c, &id)
            .await
            .iter()
            .any(|t| t["type"] == "partial_dimension_distribution"));
    }
    // One task alone (no sub-tasks) partitions the same way, reading its input twice.
    let mut alone = wiki_task(
        "index",
        "wiki-range-alone",
        &data_dir,
        json!({"type": "index", "forceGuaranteedRollup": true,
            "partitionsSpec": {"type": "range", "partitionDimensions": ["channel"],
                "targetRowsPerSegment": 4000}}),
    );
    alone["context"] = json!({});
    let id = succeed(&cluster, &alone).await;
    assert!(sub_tasks(&c, &id).await.is_empty());
    let segments = used_segments(&c, "wiki-range-alone").await;
    assert_eq!(combined(&segment_rows(&segments)), expected);
    assert_perfect_rollup(&segments);
    assert_core_partitions(&segments, "numCorePartitions");
    assert!(segments.len() > 4, "{}", segments.len());

    // The partial segments are gone from deep storage once published.
    let leftovers: Vec<_> = drover_scenarios::files_under(&cluster.dir)
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "shuffle") && p.is_file())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_task_failing_past_max_retry_fails_the_task_and_publishes_nothing() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2, 2])).await;
    let c = cluster.client.clone();
    let data_dir = split_sample(&cluster.dir, 3);
    // One split holds a line that is not JSON; no parse error is allowed.
    let mut bad = std::fs::OpenOptions::new()
        .append(true)
        .open(data_dir.join("part-1.json"))
        .unwrap();
    writeln!(bad, "this is not json").unwrap();
    let task = wiki_task(
        "index_parallel",
        "wiki-failing",
        &data_dir,
        json!({"type": "index_parallel", "maxNumConcurrentSubTasks": 2, "maxRetry": 1,
            "maxParseExceptions": 0, "splitHintSpec": {"type": "maxSize", "maxNumFiles": 1}}),
    );
    let (id, status) = run(&c, &task).await;
    assert_eq!(status["statusCode"], "FAILED", "{status}");
    let reason = status["errorMsg"].as_str().unwrap_or_default();
    assert!(reason.contains("Max parse exceptions"), "{reason}");
    // The bad split was tried twice (maxRetry 1); nothing was published.
    let subs = sub_tasks(&c, &id).await;
    let failed = subs.iter().filter(|t| t["statusCode"] == "FAILED").count();
    assert!(failed >= 2, "{subs:#?}");
    assert!(used_segments(&c, "wiki-failing").await.is_empty());
    // No sub-task outlives its supervisor.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for t in sub_tasks(&c, &id).await {
        assert!(
            t["statusCode"] == "SUCCESS" || t["statusCode"] == "FAILED",
            "still running: {t}"
        );
    }
}

/// With authentication on, the supervisor's peon runs its sub-tasks with its own task token:
/// it may submit its own sub-tasks and read them, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_tasks_run_with_the_supervisors_token_when_authentication_is_on() {
    let cluster = Cluster::start(
        ClusterSpec::workers(&[2, 2])
            .basic_auth("admin-secret", "internal-secret")
            .tls(),
    )
    .await;
    let data_dir = split_sample(&cluster.dir, 2);
    let task = wiki_task(
        "index_parallel",
        "wiki-secure",
        &data_dir,
        json!({"type": "index_parallel", "maxNumConcurrentSubTasks": 2,
            "forceGuaranteedRollup": true,
            "partitionsSpec": {"type": "hashed", "numShards": 2, "partitionDimensions": ["channel"]}}),
    );
    let id = succeed(&cluster, &task).await;
    let subs = sub_tasks(&cluster.client, &id).await;
    assert!(subs.len() >= 4, "generate and merge sub-tasks: {subs:#?}");
    // The overlord reaches the supervisor's chat API with its token, over TLS.
    let log = cluster.client.log(&id).await.unwrap().unwrap_or_default();
    assert!(log.contains("(told by the overlord)"), "{log}");
    let segments = used_segments(&cluster.client, "wiki-secure").await;
    let counted: i64 = segment_rows(&segments)
        .iter()
        .map(|r| r["count"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, SAMPLE_ROWS as i64);

    // A task's token submits only its own sub-tasks: not a task of its own naming.
    let token = drover_service::auth::task_token("internal-secret", &id);
    let peon = drover_testkit::ApiClient::configured(
        &cluster.overlords[0].url,
        Some(&format!("{id}:{token}")),
        cluster.ca_pem.as_deref().map(str::as_bytes),
        false,
    );
    let r = peon
        .post(
            "/task",
            drover_scenarios::noop("not-a-sub-task", 0).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("only its own sub-tasks"), "{}", r.body);
}
