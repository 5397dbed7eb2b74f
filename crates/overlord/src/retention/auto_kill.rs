//! Automatic kill (Druid's `druid.coordinator.kill.*`), off unless `kill_unused_segments` is set:
//! every `kill_period` the leader submits, per data source, a `kill` task for its segments that
//! have been unused for at least `kill_buffer_period` and whose time ended at least
//! `kill_duration_to_retain` ago, at most `kill_max_segments` a task, and never a second one while
//! one for that data source is still active.

use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_core::interval::Interval;
use drover_metadata::{MetadataError, MetadataStore};
use drover_task::{Task, TaskKind};
use serde_json::json;

use crate::queue::QueueHandle;
use crate::scope::LeaderScope;

pub struct AutoKill {
    pub store: MetadataStore,
    pub queue: QueueHandle,
    /// Unused at least this long before a kill deletes them.
    pub buffer_period: Duration,
    /// Segments whose time ended less than this long ago are kept.
    pub duration_to_retain: Duration,
    pub max_segments: u64,
}

pub fn start(kill: AutoKill, period: Duration, scope: &LeaderScope) {
    let kill = std::sync::Arc::new(kill);
    scope.spawn_every(period, move || {
        let kill = kill.clone();
        async move {
            if let Err(e) = kill.run_once(Utc::now()).await {
                tracing::warn!(error = %e, "automatic kill could not run; trying again next period");
            }
        }
    });
}

fn before(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl AutoKill {
    async fn run_once(&self, now: DateTime<Utc>) -> Result<(), MetadataError> {
        let marked_before = before(now, self.buffer_period);
        let ended_before = before(now, self.duration_to_retain);
        let busy: Vec<String> = self
            .store
            .active_tasks()
            .await?
            .into_iter()
            .filter(|row| matches!(row.task.kind, TaskKind::Kill(_)))
            .map(|row| row.task.data_source.to_string())
            .collect();
        for (ds, span) in self.store.unused_spans(marked_before).await? {
            if busy.contains(&ds) {
                continue;
            }
            let Ok(interval) = Interval::new(span.start, span.end.min(ended_before)) else {
                continue; // everything it has is still retained
            };
            if interval.start >= interval.end {
                continue;
            }
            let stamp = drover_core::time::now_iso().replace(':', "");
            let task = json!({
                "type": "kill",
                "id": format!("coordinator-issued_kill_{ds}_{stamp}"),
                "dataSource": ds,
                "interval": interval,
                "maxUsedStatusLastUpdatedTime": drover_core::time::to_iso(marked_before),
                "limit": self.max_segments,
            });
            match Task::from_value(task) {
                Ok(task) => {
                    let id = task.id.clone();
                    match self.queue.add(task, None).await {
                        Ok(()) => {
                            tracing::info!(data_source = %ds, %interval, task = %id, "automatic kill submitted")
                        }
                        Err(e) => {
                            tracing::warn!(data_source = %ds, error = %e, "automatic kill could not submit a task")
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(data_source = %ds, error = %e, "cannot build a kill task")
                }
            }
        }
        Ok(())
    }
}
