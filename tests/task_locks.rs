//! Task locks, parse errors, crashes before publishing, overwrite and append — each through the
//! HTTP API of a real cluster.

use std::time::Duration;

use drover_scenarios::{
    inline_index_task, log_facts, process_alive, report, segment_rows, used_segments, Cluster,
    ClusterSpec,
};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(120);
const DAY: &str = "2024-01-01/2024-01-02";

fn rows(n: usize, page: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"ts\":\"2024-01-01T{:02}:{:02}:00Z\",\"page\":\"{page}\",\"n\":{i}}}\n",
                i / 60 % 24,
                i % 60
            )
        })
        .collect()
}

fn slow_task(id: &str, ds: &str, pause_ms: u64, priority: Option<i64>) -> Value {
    let mut context = json!({ "drover.pauseBeforePublishMs": pause_ms });
    if let Some(p) = priority {
        context["priority"] = json!(p);
    }
    inline_index_task(id, ds, DAY, &rows(10, id), json!({}), context)
}

async fn runner_state(cluster: &Cluster, id: &str) -> String {
    let s = cluster.client.status(id).await.unwrap().unwrap();
    s["runnerStatusCode"].as_str().unwrap_or("").to_string()
}

async fn wait_log(cluster: &Cluster, id: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Ok(Some(log)) = cluster.client.log(id).await {
            if log.contains(needle) {
                return log;
            }
        }
        if tokio::time::Instant::now() > deadline {
            cluster.fail(format!("{id}'s log never said {needle:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn same_priority_waits_higher_priority_revokes() {
    let cluster = Cluster::start(ClusterSpec::workers(&[3])).await;
    let c = &cluster.client;

    // Same interval, same priority: the second waits until the first is done.
    let first = c
        .submit(&slow_task("first", "locks", 3000, None))
        .await
        .unwrap();
    c.wait_running("first", TIMEOUT).await.unwrap();
    let second = c
        .submit(&slow_task("second", "locks", 0, None))
        .await
        .unwrap();
    for _ in 0..10 {
        assert_eq!(runner_state(&cluster, &second).await, "WAITING");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(
        c.wait_complete(&first, TIMEOUT).await.unwrap()["statusCode"],
        "SUCCESS"
    );
    assert_eq!(
        c.wait_complete(&second, TIMEOUT).await.unwrap()["statusCode"],
        "SUCCESS"
    );
    let segments = used_segments(c, "locks").await;
    assert_eq!(segments.len(), 1, "the second overwrote the first");
    let pages: Vec<Value> = segment_rows(&segments)
        .iter()
        .map(|r| r["page"].clone())
        .collect();
    assert!(pages.iter().all(|p| p == "second"), "{pages:?}");

    // A higher priority takes the interval from a running lower one, which fails saying so.
    let low = c
        .submit(&slow_task("low", "revoke", 60_000, Some(10)))
        .await
        .unwrap();
    wait_log(&cluster, &low, "pausing").await;
    let high = c
        .submit(&slow_task("high", "revoke", 0, Some(90)))
        .await
        .unwrap();
    let low_status = c.wait_complete(&low, TIMEOUT).await.unwrap();
    assert_eq!(low_status["statusCode"], "FAILED");
    assert!(
        low_status["errorMsg"].as_str().unwrap().contains("revoked"),
        "{low_status}"
    );
    assert_eq!(
        c.wait_complete(&high, TIMEOUT).await.unwrap()["statusCode"],
        "SUCCESS"
    );
    let pages: Vec<Value> = segment_rows(&used_segments(c, "revoke").await)
        .iter()
        .map(|r| r["page"].clone())
        .collect();
    assert!(!pages.is_empty() && pages.iter().all(|p| p == "high"));
}

#[tokio::test(flavor = "multi_thread")]
async fn locks_survive_an_overlord_restart() {
    let mut cluster = Cluster::start(ClusterSpec::workers(&[3])).await;
    let holder = cluster
        .client
        .submit(&slow_task("holder", "restart", 6000, None))
        .await
        .unwrap();
    wait_log(&cluster, &holder, "pausing").await;
    cluster.restart_overlord().await;
    cluster.wait_for_leader(TIMEOUT).await;
    let c = cluster.client.clone();
    let waiter = c
        .submit(&slow_task("waiter", "restart", 0, None))
        .await
        .unwrap();
    // The restored lock keeps the newcomer waiting while the holder still runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let holder_state = c.status(&holder).await.unwrap().unwrap();
    if holder_state["statusCode"] == "RUNNING" {
        assert_eq!(runner_state(&cluster, &waiter).await, "WAITING");
    }
    // The holder publishes under its restored lock; then the waiter runs.
    let h = c.wait_complete(&holder, TIMEOUT).await.unwrap();
    assert_eq!(h["statusCode"], "SUCCESS", "{h}");
    assert_eq!(
        c.wait_complete(&waiter, TIMEOUT).await.unwrap()["statusCode"],
        "SUCCESS"
    );
    let versions: Vec<Value> = used_segments(&c, "restart")
        .await
        .iter()
        .map(|s| s["version"].clone())
        .collect();
    assert_eq!(versions.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn parse_errors_crashes_overwrite_and_append() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    let data = format!("{}not json\n{{\"ts\":\"garbage\"}}\n[1]\n", rows(5, "p"));

    // More parse errors than allowed: FAILED, saying so; nothing published.
    let strict = inline_index_task(
        "strict",
        "errs",
        DAY,
        &data,
        json!({"maxParseExceptions": 2}),
        json!({}),
    );
    let s = c.submit(&strict).await.unwrap();
    let status = c.wait_complete(&s, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "FAILED");
    assert!(
        status["errorMsg"]
            .as_str()
            .unwrap()
            .contains("Max parse exceptions[2] exceeded"),
        "{status}"
    );
    assert!(used_segments(c, "errs").await.is_empty());
    // The failed task's report still has the counts it reached: the 5 good rows, then the third
    // error stopped it.
    let failed =
        &report(c, &s).await["ingestionStatsAndErrors"]["payload"]["rowStats"]["buildSegments"];
    assert_eq!(failed["processed"], 5, "{failed}");
    assert_eq!(failed["unparseable"], 3, "{failed}");
    // Fewer: SUCCESS, with the counts in the report.
    let lenient = inline_index_task(
        "lenient",
        "errs",
        DAY,
        &data,
        json!({"maxParseExceptions": 3, "logParseExceptions": true, "maxSavedParseExceptions": 2}),
        json!({}),
    );
    let l = c.submit(&lenient).await.unwrap();
    assert_eq!(
        c.wait_complete(&l, TIMEOUT).await.unwrap()["statusCode"],
        "SUCCESS"
    );
    let stats =
        &report(c, &l).await["ingestionStatsAndErrors"]["payload"]["rowStats"]["buildSegments"];
    assert_eq!(stats["processed"], 5);
    assert_eq!(stats["unparseable"], 3);
    let saved = &report(c, &l).await["ingestionStatsAndErrors"]["payload"]["unparseableEvents"]
        ["buildSegments"];
    let saved = saved.as_array().expect("saved parse errors");
    // The newest ones, newest first (Druid's order), as ParseExceptionReports.
    assert_eq!(saved.len(), 2, "maxSavedParseExceptions of them");
    assert_eq!(saved[0]["input"], "[1]", "{saved:?}");
    assert_eq!(saved[1]["input"], "{\"ts\":\"garbage\"}", "{saved:?}");
    assert!(
        saved.iter().all(|e| e["errorType"] == "unparseable"),
        "{saved:?}"
    );
    assert!(
        saved[1]["details"][0].as_str().unwrap().contains("line 7"),
        "{saved:?}"
    );
    assert_eq!(segment_rows(&used_segments(c, "errs").await).len(), 5);

    // A peon killed after writing its files but before publishing leaves no segments.
    let crash = inline_index_task(
        "crash",
        "crashy",
        DAY,
        &rows(20, "crash"),
        json!({}),
        json!({"drover.pauseBeforePublishMs": 60_000}),
    );
    c.submit(&crash).await.unwrap();
    let log = wait_log(&cluster, "crash", "pausing").await;
    assert!(log.contains("wrote segment"), "{log}");
    let pid = log_facts(&log).pid.expect("the peon's pid in its log");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let crashed = c.wait_complete("crash", TIMEOUT).await.unwrap();
    assert_eq!(crashed["statusCode"], "FAILED");
    assert!(!process_alive(pid));
    assert!(
        used_segments(c, "crashy").await.is_empty(),
        "nothing published"
    );
    let files = drover_scenarios::files_under(&cluster.deep_storage_dir.join("crashy"));
    assert!(!files.is_empty(), "the crashed peon did write files");
    // A rerun succeeds.
    let rerun = inline_index_task(
        "rerun",
        "crashy",
        DAY,
        &rows(20, "rerun"),
        json!({}),
        json!({}),
    );
    c.submit(&rerun).await.unwrap();
    assert_eq!(
        c.wait_complete("rerun", TIMEOUT).await.unwrap()["statusCode"],
        "SUCCESS"
    );
    let first = used_segments(c, "crashy").await;
    assert_eq!(first.len(), 1);
    assert_eq!(segment_rows(&first).len(), 20);

    // Overwrite: a new version replaces the old one, which is no longer used.
    let over = inline_index_task(
        "over",
        "crashy",
        DAY,
        &rows(7, "over"),
        json!({}),
        json!({}),
    );
    c.submit(&over).await.unwrap();
    assert_eq!(
        c.wait_complete("over", TIMEOUT).await.unwrap()["statusCode"],
        "SUCCESS"
    );
    let second = used_segments(c, "crashy").await;
    assert_eq!(second.len(), 1);
    assert!(second[0]["version"].as_str() > first[0]["version"].as_str());
    assert_eq!(segment_rows(&second).len(), 7);

    // Append: a new partition of the same version beside the existing one.
    let mut append = inline_index_task(
        "append",
        "crashy",
        DAY,
        &rows(4, "append"),
        json!({}),
        json!({}),
    );
    append["spec"]["ioConfig"]["appendToExisting"] = json!(true);
    append["spec"]["dataSchema"]["granularitySpec"]
        .as_object_mut()
        .unwrap()
        .remove("intervals");
    c.submit(&append).await.unwrap();
    let a = c.wait_complete("append", TIMEOUT).await.unwrap();
    assert_eq!(a["statusCode"], "SUCCESS", "{a}");
    let third = used_segments(c, "crashy").await;
    assert_eq!(third.len(), 2);
    assert!(third.iter().all(|s| s["version"] == second[0]["version"]));
    let parts: Vec<u64> = third
        .iter()
        .map(|s| s["shardSpec"]["partitionNum"].as_u64().unwrap())
        .collect();
    assert_eq!(parts, [0, 1]);
    assert_eq!(segment_rows(&third).len(), 11);
}

/// A streaming publish through the action API, as an `index_kafka` task will make it: segments
/// and offsets commit together, only from the stored offsets; a replica repeating a committed
/// publish succeeds without writing twice; a stale start is refused.
#[tokio::test(flavor = "multi_thread")]
async fn stream_offsets_commit_with_their_segments() {
    let cluster = Cluster::start(ClusterSpec::workers(&[1])).await;
    let c = &cluster.client;
    let holder =
        json!({"type": "noop", "id": "streamer", "runTime": 60_000, "dataSource": "events"});
    c.submit(&holder).await.unwrap();
    c.wait_running("streamer", TIMEOUT).await.unwrap();
    let act = |action: Value| {
        let body = json!({"task": holder, "action": action}).to_string();
        async move {
            let r = c.post("/action", body).await.unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()["result"].clone()
        }
    };
    let hour = "2024-01-01T00:00:00.000Z/2024-01-01T01:00:00.000Z";
    let lock = act(json!({"type": "lockAcquire", "lockType": "EXCLUSIVE", "interval": hour, "timeoutMs": 10_000})).await;
    let version = lock["version"].as_str().unwrap().to_string();
    let segment = |partition: u32| {
        json!({"dataSource": "events", "interval": hour, "version": version,
               "loadSpec": {"type": "local", "path": format!("/deep/{partition}")},
               "dimensions": "page", "metrics": "count",
               "shardSpec": {"type": "numbered", "partitionNum": partition, "partitions": 0},
               "binaryVersion": 9, "size": 1})
    };
    let offsets = |kind: &str, o: i64| {
        json!({"type": "kafka", "partitions": {"type": kind, "stream": "events",
               "partitionSequenceNumberMap": {"0": o}}})
    };
    let publish = |partition: u32, start: i64, end: i64| {
        act(
            json!({"type": "segmentTransactionalInsert", "segments": [segment(partition)],
                   "startMetadata": offsets("start", start), "endMetadata": offsets("end", end)}),
        )
    };

    let first = publish(0, 0, 100).await;
    assert_eq!(first["success"], true, "{first}");
    // The replica of that sequence publishes the same segment from the same start: it lost the
    // race, its segment is there, so it succeeds.
    let replica = publish(0, 0, 100).await;
    assert_eq!(replica["success"], true, "{replica}");
    // A new segment claiming to start from offset 0 again would duplicate rows: refused.
    let stale = publish(1, 0, 100).await;
    assert_eq!(stale["success"], false, "{stale}");
    assert!(
        stale["errorMsg"].as_str().unwrap().contains("do not match"),
        "{stale}"
    );
    // From where the stored offsets are, it goes in.
    let next = publish(1, 100, 180).await;
    assert_eq!(next["success"], true, "{next}");
    assert_eq!(used_segments(c, "events").await.len(), 2);
    // Half the offset pair is a bad request, not a silent publish.
    let r = c
        .post(
            "/action",
            json!({"task": holder, "action": {"type": "segmentTransactionalInsert",
                   "segments": [segment(2)], "startMetadata": offsets("start", 180)}})
            .to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(used_segments(c, "events").await.len(), 2);
    c.shutdown("streamer").await.unwrap();
}
