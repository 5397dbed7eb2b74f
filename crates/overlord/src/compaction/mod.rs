//! Automatic compaction, a segment-management duty beside the supervisors (see
//! docs/data-management.md): every `coordinator_period` the leader plans each configured data
//! source (`plan.rs`) and submits `compact` tasks for the due time chunks, newest first, within
//! its slot budget (`compactionTaskSlotRatio` of the workers' capacity, at most
//! `maxCompactionTaskSlots`), never two for overlapping intervals. Its latest view of each data
//! source is published for the status routes.

pub mod config;
pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drover_core::interval::Interval;
use drover_metadata::{MetadataError, MetadataStore};
use drover_task::{Task, TaskKind};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::queue::QueueHandle;
use crate::runner::RunnerHandle;
use crate::scope::LeaderScope;
use config::{ClusterCompactionConfig, COMPACTION_CONFIG_KEY};

/// Per data source, Druid's `AutoCompactionSnapshot` from the latest run.
pub type CompactionStatus = Arc<BTreeMap<String, Value>>;

pub struct CompactionDuty {
    pub store: MetadataStore,
    pub queue: QueueHandle,
    pub runner: RunnerHandle,
}

/// Starts the duty in the leader's scope; the receiver sees its latest status.
pub fn start(
    duty: CompactionDuty,
    period: Duration,
    scope: &LeaderScope,
) -> watch::Receiver<CompactionStatus> {
    let (tx, rx) = watch::channel(CompactionStatus::default());
    let (duty, tx) = (Arc::new(duty), Arc::new(tx));
    scope.spawn_every(period, move || {
        let (duty, tx) = (duty.clone(), tx.clone());
        async move {
            match duty.run_once().await {
                Ok(status) => {
                    tx.send_replace(Arc::new(status));
                }
                Err(e) => tracing::warn!(error = %e, "automatic compaction could not run; trying again next period"),
            }
        }
    });
    rx
}

/// The stored cluster config, or Druid's default (no data source configured).
pub async fn load_config(store: &MetadataStore) -> Result<ClusterCompactionConfig, MetadataError> {
    Ok(match store.get_config(COMPACTION_CONFIG_KEY).await? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            MetadataError::Corrupt(format!("stored [{COMPACTION_CONFIG_KEY}]: {e}"))
        })?,
        None => ClusterCompactionConfig::default(),
    })
}

impl CompactionDuty {
    async fn run_once(&self) -> Result<BTreeMap<String, Value>, MetadataError> {
        let cluster = load_config(&self.store).await?;
        if cluster.compaction_configs.is_empty() {
            return Ok(BTreeMap::new());
        }
        // Compactions running now, and the intervals they hold.
        let mut busy: Vec<(String, Interval)> = Vec::new();
        for row in self.store.active_tasks().await? {
            if let TaskKind::Compact(spec) = &row.task.kind {
                busy.push((row.task.data_source.to_string(), spec.interval));
            }
        }
        let capacity: i64 = match self.runner.snapshot().await {
            Some(s) => s.workers.iter().map(|w| i64::from(w.worker.capacity)).sum(),
            None => 0,
        };
        let budget = ((capacity as f64 * cluster.compaction_task_slot_ratio) as i64)
            .max(1)
            .min(cluster.max_compaction_task_slots);
        let mut free = budget - busy.len() as i64;
        let mut status = BTreeMap::new();
        for config in &cluster.compaction_configs {
            let ds = &config.data_source;
            let Ok(skip) = config.skip_offset() else {
                continue;
            };
            // The state a compaction as configured records: compare what the task would say.
            let sample_interval = Interval::parse("2000-01-01/2000-01-02").expect("an interval");
            let sample = config.task(
                config
                    .segment_granularity()
                    .map_or(sample_interval, |g| g.cover(&sample_interval)),
                "plan",
            );
            let desired = match Task::from_value(sample).map(|t| t.kind) {
                Ok(TaskKind::Compact(spec)) => spec.state(),
                _ => {
                    tracing::error!(data_source = %ds, "stored compaction config is unusable; skipped");
                    continue;
                }
            };
            let used = self.store.used_segments(ds, None).await?;
            let plan = plan::plan(
                &used,
                config.segment_granularity(),
                &desired,
                skip,
                config.input_segment_size_bytes,
            );
            let mut submitted = 0;
            for chunk in &plan.due {
                if free <= 0 {
                    break;
                }
                if busy
                    .iter()
                    .any(|(d, i)| d == ds && i.overlaps(&chunk.interval))
                {
                    continue;
                }
                let suffix = format!(
                    "{}_{}",
                    drover_core::time::to_iso(chunk.interval.start).replace(':', ""),
                    drover_core::time::now_iso().replace(':', "")
                );
                let task = match Task::from_value(config.task(chunk.interval, &suffix)) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::error!(data_source = %ds, error = %e, "cannot build a compaction task");
                        break;
                    }
                };
                let id = task.id.clone();
                match self.queue.add(task, None).await {
                    Ok(()) => {
                        tracing::info!(data_source = %ds, interval = %chunk.interval, task = %id, segments = chunk.segments, "automatic compaction submitted");
                        busy.push((ds.clone(), chunk.interval));
                        free -= 1;
                        submitted += 1;
                    }
                    Err(e) => {
                        tracing::warn!(data_source = %ds, error = %e, "automatic compaction could not submit a task");
                        break;
                    }
                }
            }
            status.insert(ds.clone(), snapshot(ds, &plan, submitted));
        }
        Ok(status)
    }
}

/// Druid's `AutoCompactionSnapshot` for a data source.
fn snapshot(ds: &str, plan: &plan::Plan, submitted: usize) -> Value {
    let sum = |chunks: &[plan::Chunk]| {
        (
            chunks.iter().map(|c| c.bytes).sum::<u64>(),
            chunks.iter().map(|c| c.segments).sum::<usize>(),
            chunks.len(),
        )
    };
    let (due_bytes, due_segments, due_intervals) = sum(&plan.due);
    let (done_bytes, done_segments, done_intervals) = sum(&plan.compacted);
    let (skip_bytes, skip_segments, skip_intervals) = sum(&plan.skipped);
    json!({
        "dataSource": ds,
        "scheduleStatus": "RUNNING",
        "message": format!("{submitted} compaction task(s) submitted in the latest run"),
        "bytesAwaitingCompaction": due_bytes,
        "bytesCompacted": done_bytes,
        "bytesSkipped": skip_bytes,
        "segmentCountAwaitingCompaction": due_segments,
        "segmentCountCompacted": done_segments,
        "segmentCountSkipped": skip_segments,
        "intervalCountAwaitingCompaction": due_intervals,
        "intervalCountCompacted": done_intervals,
        "intervalCountSkipped": skip_intervals,
    })
}
