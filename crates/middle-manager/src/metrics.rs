//! The middle manager's metrics (served at its `/metrics`), with Druid's names: its tasks'
//! outcomes (`worker/task/*/count`) and their row counts (`ingest/events/*`), taken from each
//! task's report when its peon exits. Streaming tasks count at their end, not as they read.

use std::sync::LazyLock;

use drover_core::TaskState;
use drover_service::metrics::{counters, labels, Counters};
use serde_json::Value;

struct WorkerMetrics {
    success: Counters,
    failed: Counters,
    processed: Counters,
    processed_with_error: Counters,
    thrown_away: Counters,
    unparseable: Counters,
}

static METRICS: LazyLock<WorkerMetrics> = LazyLock::new(|| WorkerMetrics {
    success: counters(
        "worker_task_success_count",
        "Tasks of this worker that succeeded",
    ),
    failed: counters(
        "worker_task_failed_count",
        "Tasks of this worker that failed",
    ),
    processed: counters("ingest_events_processed", "Rows ingested"),
    processed_with_error: counters(
        "ingest_events_processedWithError",
        "Rows ingested with a parse error in some column",
    ),
    thrown_away: counters(
        "ingest_events_thrownAway",
        "Rows thrown away (outside the intervals, or filtered out)",
    ),
    unparseable: counters("ingest_events_unparseable", "Rows that could not be parsed"),
});

/// A task's peon exited with `state`; `report` is its `report.json`, when it wrote one.
pub fn task_ended(data_source: &str, task_type: &str, state: TaskState, report: Option<&Value>) {
    let m = &*METRICS;
    let l = labels(&[("dataSource", data_source), ("taskType", task_type)]);
    match state {
        TaskState::Success => m.success.get_or_create(&l).inc(),
        TaskState::Failed => m.failed.get_or_create(&l).inc(),
        TaskState::Running => return,
    };
    let Some(stats) =
        report.and_then(|r| r.pointer("/ingestionStatsAndErrors/payload/rowStats/buildSegments"))
    else {
        return;
    };
    for (field, family) in [
        ("processed", &m.processed),
        ("processedWithError", &m.processed_with_error),
        ("thrownAway", &m.thrown_away),
        ("unparseable", &m.unparseable),
    ] {
        if let Some(n) = stats.get(field).and_then(Value::as_u64) {
            family.get_or_create(&l).inc_by(n);
        }
    }
}
