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

use super::progress::Tracker;
use crate::failure::TaskFailure;
use crate::overlord_client::OverlordClient;

/// How often running sub-tasks' statuses are asked (see [`poll_interval`]): every 50 ms, and
/// in a phase's tail every 10 ms per running sub-task — never more often than that, so the
/// overlord is asked at most 100 times a second.
const POLL_EVERY: Duration = Duration::from_millis(50);
const POLL_PER_SUB_TASK: Duration = Duration::from_millis(10);

/// How long to wait before asking the running sub-tasks' statuses again. A phase ends no later
/// than one poll after its last sub-task, which on a task of a second is a few percent of it;
/// but each ask costs the overlord, on the same machines as the sub-tasks. So the asking is
/// quicker only in the phase's tail: nothing left to submit and some sub-task already done —
/// the splits are even, so the rest end soon after, and the cores the finished ones used are
/// free to answer.
fn poll_interval(running: usize, pending: usize, done: usize) -> Duration {
    let floor = POLL_PER_SUB_TASK * running.max(1) as u32;
    if pending == 0 && done > 0 {
        floor
    } else {
        POLL_EVERY.max(floor)
    }
}

/// How often a finished sub-task's report is asked for (every [`POLL_EVERY`]).
const REPORT_TRIES: u32 = 600;

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
            let done = reports.iter().filter(|r| r.is_some()).count();
            tokio::time::sleep(poll_interval(running.len(), pending.len(), done)).await;
            let mut still = Vec::new();
            for r in running {
                let status = self.status(&r.id).await?;
                match status["statusCode"].as_str() {
                    Some("SUCCESS") => {
                        reports[r.index] = Some(self.report(&r.id).await?);
                        self.tracker.ended(&specs[r.index].spec_id, true);
                        println!("sub-task [{}] succeeded", r.id);
                    }
                    Some("FAILED") => {
                        self.tracker.ended(&specs[r.index].spec_id, false);
                        let reason = status["errorMsg"].as_str().unwrap_or("no reason given");
                        if r.attempt <= self.max_retry {
                            println!(
                                "sub-task [{}] failed ({reason}); trying spec [{}] again (attempt {} of {})",
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
            tokio::time::sleep(POLL_EVERY).await;
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
    fn asks_quicker_only_in_a_phase_tail_and_never_above_100_times_a_second() {
        let ms = |d: Duration| d.as_millis();
        // Two sub-tasks running: 50 ms until one of them is done, then 10 ms for the other.
        assert_eq!(ms(poll_interval(2, 0, 0)), 50);
        assert_eq!(ms(poll_interval(1, 0, 1)), 10);
        // Two still running in the tail: 10 ms per sub-task.
        assert_eq!(ms(poll_interval(2, 0, 1)), 20);
        // Splits still waiting for a slot: not the tail.
        assert_eq!(ms(poll_interval(2, 3, 4)), 50);
        // Many running: 10 ms per sub-task, in the tail or not.
        assert_eq!(ms(poll_interval(8, 0, 1)), 80);
        assert_eq!(ms(poll_interval(8, 5, 0)), 80);
        for running in 1..50 {
            for (pending, done) in [(0, 0), (0, 1), (1, 0), (3, 7)] {
                let every = poll_interval(running, pending, done);
                assert!(
                    running as f64 / every.as_secs_f64() <= 100.0,
                    "{running} {every:?}"
                );
            }
        }
    }
}
