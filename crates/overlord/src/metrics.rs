//! The overlord's metrics, with Druid's names (see `drover_service::metrics`): counters moved
//! as tasks end and publish, and gauges read from the leader's queue, runner and store when
//! Prometheus scrapes (`http::metrics`).

use std::sync::LazyLock;
use std::time::Duration;

use drover_core::TaskState;
use drover_service::metrics::{
    counters, gauges, labels, seconds_histograms, Counters, Gauges, Histograms,
};

pub struct OverlordMetrics {
    pub task_success: Counters,
    pub task_failed: Counters,
    pub task_run_time: Histograms,
    pub segment_added_bytes: Counters,
    pub task_running: Gauges,
    pub task_pending: Gauges,
    pub task_waiting: Gauges,
    pub task_slot_total: Gauges,
    pub task_slot_used: Gauges,
    pub task_slot_idle: Gauges,
    pub leader: Gauges,
    pub leader_epoch: Gauges,
    pub kafka_lag: Gauges,
    pub kafka_max_lag: Gauges,
    pub supervisor_healthy: Gauges,
}

pub static METRICS: LazyLock<OverlordMetrics> = LazyLock::new(|| OverlordMetrics {
    task_success: counters("task_success_count", "Tasks that ended SUCCESS"),
    task_failed: counters("task_failed_count", "Tasks that ended FAILED"),
    task_run_time: seconds_histograms("task_run_time_seconds", "Seconds a task took, start to end"),
    segment_added_bytes: counters("segment_added_bytes", "Bytes of segments published"),
    task_running: gauges("task_running_count", "Tasks running on a worker"),
    task_pending: gauges(
        "task_pending_count",
        "Tasks handed to the runner, not yet running",
    ),
    task_waiting: gauges(
        "task_waiting_count",
        "Tasks waiting for their locks or their turn",
    ),
    task_slot_total: gauges("taskSlot_total_count", "Task slots of the workers"),
    task_slot_used: gauges("taskSlot_used_count", "Task slots in use"),
    task_slot_idle: gauges("taskSlot_idle_count", "Task slots free"),
    leader: gauges(
        "overlord_leader",
        "1 on the leading overlord, 0 on the others",
    ),
    leader_epoch: gauges("overlord_leader_epoch", "The leader's fencing epoch"),
    kafka_lag: gauges(
        "ingest_kafka_lag",
        "Messages the supervisor's tasks are behind the latest offsets, all partitions together",
    ),
    kafka_max_lag: gauges(
        "ingest_kafka_maxLag",
        "Messages the supervisor's tasks are behind on their furthest-behind partition",
    ),
    supervisor_healthy: gauges(
        "supervisor_healthy",
        "1 when the supervisor is healthy, by supervisor and state",
    ),
});

/// A task reached its terminal status.
pub fn task_completed(data_source: &str, task_type: &str, state: TaskState, duration: Duration) {
    let l = labels(&[("dataSource", data_source), ("taskType", task_type)]);
    let m = &*METRICS;
    match state {
        TaskState::Success => m.task_success.get_or_create(&l).inc(),
        TaskState::Failed => m.task_failed.get_or_create(&l).inc(),
        TaskState::Running => return,
    };
    m.task_run_time
        .get_or_create(&l)
        .observe(duration.as_secs_f64());
}

/// A publish put `bytes` of segments in.
pub fn segments_added(data_source: &str, task_type: &str, bytes: u64) {
    METRICS
        .segment_added_bytes
        .get_or_create(&labels(&[
            ("dataSource", data_source),
            ("taskType", task_type),
        ]))
        .inc_by(bytes);
}
