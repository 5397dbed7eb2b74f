//! Runs one phase of an `index_parallel` task: its sub-tasks submitted to the overlord as real
//! tasks (any middle manager may run them), at most `maxNumConcurrentSubTasks` at a time, each
//! watched until it ends. A failed sub-task is submitted again, as a new task, up to
//! `maxRetry` times; past that the phase fails with the sub-task's reason. What a sub-task
//! hands back is the `subTaskReport` in its stored report.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use drover_core::TaskId;
use drover_task::Task;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::progress::{Tracker, Wake};
use crate::failure::TaskFailure;
use crate::overlord_client::OverlordClient;

/// How often every running sub-task's status is asked when the overlord has said nothing:
/// Druid's `taskStatusCheckPeriodMs` default. The overlord tells the task as soon as one of its
/// sub-tasks ends (see [`Tracker::next_wake`]), and only that one is asked then; this poll is
/// for an end it could not tell.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// How often a finished sub-task's report is asked for, and how many times.
const REPORT_RETRY_EVERY: Duration = Duration::from_millis(50);
const REPORT_TRIES: u32 = 600;

/// Whether the sub-task `id` is to be asked for its status after `wake`.
fn asks(wake: &Wake, id: &str) -> bool {
    match wake {
        Wake::Poll => true,
        Wake::Told(ended) => ended.contains(id),
    }
}

/// One unit of a phase's work: the sub-task JSON, less what each attempt adds (`id`,
/// `numAttempts`).
pub struct SubTaskSpec {
    pub spec_id: String,
    pub payload: Value,
}

pub struct Runner<'a> {
    pub overlord: &'a OverlordClient,
    pub supervisor: &'a Task,
    pub max_concurrent: usize,
    pub max_retry: u32,
    pub tracker: Arc<Tracker>,
}

struct Running {
    index: usize,
    attempt: u32,
    id: TaskId,
}

impl Runner<'_> {
    /// Runs every spec to success and answers their reports in spec order, or fails with the
    /// first sub-task that failed more than `maxRetry` times.
    pub async fn run_phase(
        &self,
        phase: &'static str,
        specs: Vec<SubTaskSpec>,
    ) -> Result<Vec<Value>, TaskFailure> {
        println!("phase [{phase}]: {} sub-task(s)", specs.len());
        self.tracker.start_phase(
            phase,
            specs
                .iter()
                .map(|s| (s.spec_id.clone(), s.payload.clone()))
                .collect(),
        );
        let mut pending: VecDeque<(usize, u32)> = (0..specs.len()).map(|i| (i, 1)).collect();
        let mut running: Vec<Running> = Vec::new();
        let mut reports: Vec<Option<Value>> = vec![None; specs.len()];
        // Every running sub-task is asked on this schedule, whatever the overlord tells: a
        // stream of told ends must not hold off the poll that finds an end it did not tell.
        let mut poll_at = Instant::now() + POLL_EVERY;
        loop {
            // Every free slot's sub-task is submitted at once: one after the other, each would
            // start only after the overlord had answered for all those before it.
            let free = self.max_concurrent.max(1).saturating_sub(running.len());
            let batch: Vec<(usize, u32)> = (0..free).map_while(|_| pending.pop_front()).collect();
            let ids = futures::future::try_join_all(
                batch
                    .iter()
                    .map(|&(index, attempt)| self.submit(&specs[index], attempt)),
            )
            .await?;
            for ((index, attempt), id) in batch.into_iter().zip(ids) {
                self.tracker.started(&specs[index].spec_id, id.as_str());
                running.push(Running { index, attempt, id });
            }
            if running.is_empty() {
                break;
            }
            let wake = self.tracker.next_wake(poll_at).await;
            if wake == Wake::Poll {
                poll_at = Instant::now() + POLL_EVERY;
            }
            let told = match wake {
                Wake::Told(_) => " (told by the overlord)",
                Wake::Poll => "",
            };
            let mut still = Vec::new();
            for r in running {
                if !asks(&wake, r.id.as_str()) {
                    still.push(r);
                    continue;
                }
                let status = self.status(&r.id).await?;
                match status["statusCode"].as_str() {
                    Some("SUCCESS") => {
                        reports[r.index] = Some(self.report(&r.id).await?);
                        self.tracker.ended(&specs[r.index].spec_id, true);
                        println!("sub-task [{}] succeeded{told}", r.id);
                    }
                    Some("FAILED") => {
                        self.tracker.ended(&specs[r.index].spec_id, false);
                        let reason = status["errorMsg"].as_str().unwrap_or("no reason given");
                        if r.attempt <= self.max_retry {
                            println!(
                                "sub-task [{}] failed{told} ({reason}); trying spec [{}] again (attempt {} of {})",
                                r.id,
                                specs[r.index].spec_id,
                                r.attempt + 1,
                                self.max_retry + 1
                            );
                            pending.push_front((r.index, r.attempt + 1));
                        } else {
                            return Err(fail!(
                                "{reason} (sub-task [{}] of phase [{phase}] failed {} time(s); maxRetry is {})",
                                r.id,
                                r.attempt,
                                self.max_retry
                            ));
                        }
                    }
                    _ => still.push(r),
                }
            }
            running = still;
        }
        Ok(reports.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn submit(&self, spec: &SubTaskSpec, attempt: u32) -> Result<TaskId, TaskFailure> {
        let task_type = spec.payload["type"]
            .as_str()
            .unwrap_or("single_phase_sub_task");
        let id = TaskId::generate(task_type, self.supervisor.data_source.as_str());
        let mut payload = spec.payload.clone();
        payload["id"] = json!(id);
        payload["numAttempts"] = json!(attempt - 1);
        payload["resource"] = json!({"availabilityGroup": id, "requiredCapacity": 1});
        self.overlord
            .post("/druid/indexer/v1/task", &payload)
            .await?;
        println!(
            "submitted sub-task [{id}] for spec [{}] (attempt {attempt})",
            spec.spec_id
        );
        Ok(id)
    }

    /// The sub-task's `TaskStatusPlus` (`statusCode`, `errorMsg`); null while the overlord
    /// does not know it (a leader that has not loaded it yet).
    async fn status(&self, id: &TaskId) -> Result<Value, TaskFailure> {
        let answer = self
            .overlord
            .get(&format!("/druid/indexer/v1/task/{id}/status"))
            .await?;
        Ok(answer
            .and_then(|a| a.get("status").cloned())
            .unwrap_or(Value::Null))
    }

    /// What the sub-task handed back: its report's `subTaskReport`. The report reaches task-log
    /// storage as the task ends; it is asked again for a while if it is not there yet.
    async fn report(&self, id: &TaskId) -> Result<Value, TaskFailure> {
        let path = format!("/druid/indexer/v1/task/{id}/reports");
        for _ in 0..REPORT_TRIES {
            if let Some(report) = self.overlord.get(&path).await? {
                return report.get("subTaskReport").cloned().ok_or_else(|| {
                    fail!("sub-task [{id}] succeeded but its report says nothing of its work")
                });
            }
            tokio::time::sleep(REPORT_RETRY_EVERY).await;
        }
        Err(fail!(
            "sub-task [{id}] succeeded but its report cannot be found"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_told_end_asks_for_that_sub_task_only_and_a_poll_for_all() {
        let told = Wake::Told(["a".to_string()].into());
        assert!(asks(&told, "a"));
        assert!(!asks(&told, "b"));
        assert!(asks(&Wake::Poll, "a") && asks(&Wake::Poll, "b"));
        assert!(!asks(&Wake::Told(Default::default()), "a"));
    }
}
