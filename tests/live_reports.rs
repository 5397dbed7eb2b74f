//! Live reports: while a batch task runs, `GET /task/{id}/reports` answers the peon's own
//! report (Druid's `ingestionStatsAndErrors` with row counts, moving averages and parse errors
//! shaped as `ParseExceptionReport`s); once it ends, the stored final report.

use std::time::{Duration, Instant};

use drover_scenarios::{inline_index_task, report, Cluster, ClusterSpec};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_running_batch_task_reports_live_then_finally() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    let data = "{\"ts\":\"2024-01-01T01:00:00Z\",\"page\":\"a\",\"n\":1}\n\
                {\"ts\":\"2024-01-01T02:00:00Z\",\"page\":\"b\",\"n\":2}\n\
                not json\n\
                {\"ts\":\"2024-01-01T03:00:00Z\",\"page\":\"c\",\"n\":3}\n";
    // The task holds on for a while after building, before it publishes: long enough to be
    // asked for its report while it runs.
    let task = inline_index_task(
        "live-report-task",
        "live_ds",
        "2024-01-01/2024-01-02",
        data,
        json!({"maxSavedParseExceptions": 5, "maxParseExceptions": 10}),
        json!({"drover.pauseBeforePublishMs": 6000}),
    );
    let id = c.submit(&task).await.unwrap();

    let deadline = Instant::now() + TIMEOUT;
    let live = loop {
        let r = c.get(&format!("/task/{id}/reports")).await.unwrap();
        if r.status == 200 {
            let payload = r.json()["ingestionStatsAndErrors"]["payload"].clone();
            if payload["rowStats"]["totals"]["buildSegments"]["processed"] == 3 {
                break payload;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no live report: {} {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = c.get(&format!("/task/{id}/status")).await.unwrap().json();
    assert_eq!(
        status["status"]["status"], "RUNNING",
        "live while running: {status}"
    );
    assert_eq!(live["ingestionState"], "BUILD_SEGMENTS", "{live}");
    assert_eq!(
        live["rowStats"]["totals"]["buildSegments"]["unparseable"],
        1
    );
    for window in ["1m", "5m", "15m"] {
        assert!(
            live["rowStats"]["movingAverages"]["buildSegments"][window]["processed"].is_f64(),
            "{live}"
        );
    }
    let error = &live["unparseableEvents"]["buildSegments"][0];
    assert_eq!(error["input"], "not json", "{live}");
    assert_eq!(error["errorType"], "unparseable");
    assert!(
        error["details"][0].as_str().unwrap().contains("line 3"),
        "{error}"
    );

    let done = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(done["statusCode"], "SUCCESS", "{done}");
    let last = report(c, &id).await;
    let payload = &last["ingestionStatsAndErrors"]["payload"];
    assert_eq!(payload["ingestionState"], "COMPLETED", "{last}");
    assert_eq!(payload["rowStats"]["buildSegments"]["processed"], 3);
    assert_eq!(
        payload["unparseableEvents"]["buildSegments"][0]["input"],
        "not json"
    );
}
