//! Prometheus metrics at `/metrics`, named as Druid's prometheus-emitter names them: they are
//! there and they move after a noop and a batch task, the running and slot gauges follow a task
//! that runs, and the middle manager serves its own.

use std::time::Duration;

use drover_scenarios::{noop, one_row_task, Cluster, ClusterSpec};
use drover_testkit::ApiClient;

const TIMEOUT: Duration = Duration::from_secs(60);

async fn scrape(client: &ApiClient) -> String {
    let r = client.get_root("/metrics").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// The value of the series `name{labels}` (labels exactly as written), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_there_and_move_with_tasks() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    let id = c.submit(&noop("metrics-noop", 0)).await.unwrap();
    c.wait_complete(&id, TIMEOUT).await.unwrap();
    let task = one_row_task("metrics-index", "metrics_ds");
    let id = c.submit(&task).await.unwrap();
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");

    let text = scrape(c).await;
    let index = r#"{dataSource="metrics_ds",taskType="index"}"#;
    assert_eq!(value(&text, "druid_overlord_leader"), Some(1.0), "{text}");
    assert_eq!(
        value(&text, &format!("druid_task_success_count_total{index}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"druid_task_success_count_total{dataSource="none",taskType="noop"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, &format!("druid_task_run_time_seconds_count{index}")),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(&text, &format!("druid_segment_added_bytes_total{index}")).unwrap_or(0.0) > 0.0,
        "{text}"
    );
    assert!(
        value(
            &text,
            r#"druid_http_requests_total{method="POST",route="/druid/indexer/v1/task",status="200"}"#
        )
        .unwrap_or(0.0)
            >= 2.0,
        "{text}"
    );
    let slots = r#"{category="_default_worker_category"}"#;
    assert_eq!(
        value(&text, &format!("druid_taskSlot_total_count{slots}")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, &format!("druid_taskSlot_used_count{slots}")),
        Some(0.0),
        "{text}"
    );

    // A running task shows in the running and slot gauges, and leaves them when it ends.
    let id = c.submit(&noop("metrics-long", 60_000)).await.unwrap();
    c.wait_running(&id, TIMEOUT).await.unwrap();
    let text = scrape(c).await;
    assert_eq!(
        value(&text, r#"druid_task_running_count{dataSource="none"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, &format!("druid_taskSlot_used_count{slots}")),
        Some(1.0),
        "{text}"
    );
    c.shutdown(&id).await.unwrap();
    c.wait_complete(&id, TIMEOUT).await.unwrap();
    let text = scrape(c).await;
    assert_eq!(
        value(&text, r#"druid_task_running_count{dataSource="none"}"#),
        None,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"druid_task_failed_count_total{dataSource="none",taskType="noop"}"#
        ),
        Some(1.0),
        "{text}"
    );

    // The middle manager serves its own: its tasks' outcomes and rows.
    let mm = ApiClient::new(cluster.middle_managers[0].url.clone());
    scrape(&mm).await;
    let text = scrape(&mm).await;
    assert_eq!(
        value(
            &text,
            &format!("druid_ingest_events_processed_total{index}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("druid_worker_task_success_count_total{index}")
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(
            &text,
            r#"druid_http_requests_total{method="GET",route="/metrics",status="200"}"#
        )
        .is_some(),
        "{text}"
    );
}
