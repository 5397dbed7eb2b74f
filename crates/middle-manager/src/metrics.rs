//! The middle manager's metrics (served at its `/metrics`), with Druid's names: its tasks'
//! outcomes (`worker/task/*/count`), their row counts (`ingest/events/*`), the rows they wrote
//! (`ingest/rows/output`) and their spills to disk (`ingest/persists/*`). Counts come from the
//! `live-stats.json` each ingestion peon keeps in its attempt directory: read at every scrape while
//! the task runs (so a streaming task's counts move as it reads), and once more when its peon
//! exits. Each task's counts are added once, however often they are read.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{LazyLock, Mutex};

use drover_core::TaskState;
use drover_service::metrics::{counters, labels, Counters};
use serde_json::Value;

struct WorkerMetrics {
    success: Counters,
    failed: Counters,
    /// In the order of [`FIELDS`].
    counts: [Counters; 7],
}

/// Where each count is in `live-stats.json`, and its metric.
const FIELDS: [(&str, &str, &str); 7] = [
    (
        "/totals/processed",
        "ingest_events_processed",
        "Rows ingested",
    ),
    (
        "/totals/processedWithError",
        "ingest_events_processedWithError",
        "Rows ingested with a parse error in some column",
    ),
    (
        "/totals/thrownAway",
        "ingest_events_thrownAway",
        "Rows thrown away (outside the intervals, or filtered out)",
    ),
    (
        "/totals/unparseable",
        "ingest_events_unparseable",
        "Rows that could not be parsed",
    ),
    (
        "/rowsOutput",
        "ingest_rows_output",
        "Rows written to segments, after rollup",
    ),
    (
        "/persists",
        "ingest_persists_count",
        "Sorted runs spilled to disk (maxRowsInMemory)",
    ),
    (
        "/persistMs",
        "ingest_persists_timeMs",
        "Milliseconds spent spilling to disk",
    ),
];

static METRICS: LazyLock<WorkerMetrics> = LazyLock::new(|| WorkerMetrics {
    success: counters(
        "worker_task_success_count",
        "Tasks of this worker that succeeded",
    ),
    failed: counters(
        "worker_task_failed_count",
        "Tasks of this worker that failed",
    ),
    counts: FIELDS.map(|(_, name, help)| counters(name, help)),
});

/// What has been added of each task's counts, and whether its peon has exited.
#[derive(Default)]
struct Counted {
    counts: [u64; 7],
    ended: bool,
}

static COUNTED: LazyLock<Mutex<HashMap<String, Counted>>> = LazyLock::new(Default::default);

/// Adds what `stats` (a `live-stats.json`) counts beyond what was added before.
fn take_in(stats: &Value, ended: bool) {
    let Some(task) = stats.get("taskId").and_then(Value::as_str) else {
        return;
    };
    let text = |key: &str| stats.get(key).and_then(Value::as_str).unwrap_or("none");
    let l = labels(&[
        ("dataSource", text("dataSource")),
        ("taskType", text("taskType")),
    ]);
    let mut counted = COUNTED.lock().unwrap_or_else(|p| p.into_inner());
    let entry = counted.entry(task.to_string()).or_default();
    if entry.ended {
        return;
    }
    for (i, (pointer, _, _)) in FIELDS.iter().enumerate() {
        let now = stats.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
        // Created at 0 too, so that a series is there from a task's first read.
        let counter = METRICS.counts[i].get_or_create(&l);
        if now > entry.counts[i] {
            counter.inc_by(now - entry.counts[i]);
            entry.counts[i] = now;
        }
    }
    entry.ended |= ended;
}

/// Reads the live counts of every task under `base_task_dir` (before a scrape), and forgets the
/// tasks whose directories are gone.
pub fn refresh_live(base_task_dir: &Path) {
    let mut present = Vec::new();
    for task in std::fs::read_dir(base_task_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        present.push(task.file_name().to_string_lossy().into_owned());
        let attempts = std::fs::read_dir(task.path().join("attempt"));
        for attempt in attempts.into_iter().flatten().flatten() {
            let file = attempt.path().join("live-stats.json");
            if let Some(stats) = std::fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                take_in(&stats, false);
            }
        }
    }
    COUNTED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|task, _| present.contains(task));
}

/// A task's peon exited with `state`; `live_stats` is its last `live-stats.json` (an ingestion
/// peon writes it before its report, and every 5 s before that; other tasks have none).
pub fn task_ended(
    task: &str,
    data_source: &str,
    task_type: &str,
    state: TaskState,
    live_stats: Option<&Value>,
) {
    let l = labels(&[("dataSource", data_source), ("taskType", task_type)]);
    match state {
        TaskState::Success => METRICS.success.get_or_create(&l).inc(),
        TaskState::Failed => METRICS.failed.get_or_create(&l).inc(),
        TaskState::Running => return,
    };
    match live_stats {
        Some(stats) => take_in(stats, true),
        None => {
            // Nothing to count (a noop); the task is done all the same.
            COUNTED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(task.to_string())
                .or_default()
                .ended = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(name: &str, task_type: &str) -> f64 {
        let text = drover_service::metrics::render();
        let series = format!("druid_{name}_total{{dataSource=\"ds\",taskType=\"{task_type}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series)?.parse().ok())
            .unwrap_or(0.0)
    }

    fn stats(task: &str, processed: u64, rows: u64) -> Value {
        json!({"taskId": task, "dataSource": "ds", "taskType": "t_counts_once",
            "totals": {"processed": processed}, "rowsOutput": rows})
    }

    #[test]
    fn each_tasks_counts_are_added_once() {
        take_in(&stats("a", 10, 0), false);
        take_in(&stats("a", 10, 0), false);
        take_in(&stats("a", 25, 0), false);
        assert_eq!(value("ingest_events_processed", "t_counts_once"), 25.0);
        // The end: the rest, once; reads after it change nothing.
        task_ended(
            "a",
            "ds",
            "t_counts_once",
            TaskState::Success,
            Some(&stats("a", 30, 7)),
        );
        take_in(&stats("a", 30, 7), false);
        assert_eq!(value("ingest_events_processed", "t_counts_once"), 30.0);
        assert_eq!(value("ingest_rows_output", "t_counts_once"), 7.0);
        assert_eq!(value("worker_task_success_count", "t_counts_once"), 1.0);
    }
}
