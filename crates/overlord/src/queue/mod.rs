//! TaskQueue (see docs/architecture.md) as one task that owns the queue. Tasks are inserted into storage
//! before they enter the queue; a terminal status is persisted before the runner is told to clean
//! up, and only `WHERE active = TRUE`, so every accepted task ends in exactly one terminal status.
//! A status that cannot be persisted (database down) is kept and retried, never dropped.
//!
//! Unlike the runner, whose I/O is returned as effects and run elsewhere, the queue awaits its
//! store writes in place: each one is the commit point of the decision that follows (a task is
//! accepted once its row is stored, a status is final once stored, a lock is held once
//! persisted), so the next step depends on its answer. Every such call is bounded
//! (`STORAGE_TIMEOUT`), and what it asks of the runner is a message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_core::interval::Interval;
use drover_core::lock::default_priority;
use drover_core::{TaskId, TaskStatus};
use drover_metadata::{MetadataError, MetadataStore};
use drover_task::{IsReadyResult, Task, TaskKind};
use indexmap::IndexMap;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, Notify};

mod actions;
mod locks;

use crate::actions::TaskAction;
use crate::lockbox::Lockbox;

use crate::runner::{RunnerEvent, RunnerHandle};

const TICK: Duration = Duration::from_millis(500);
const STORAGE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("Task queue already contains [{size}] tasks; the limit is [{max}] (queue_max_size)")]
    Full { size: usize, max: usize },
    #[error("Task [{0}] already exists")]
    Exists(String),
    #[error(transparent)]
    Storage(#[from] MetadataError),
    #[error("the metadata store did not answer in {0:?}")]
    StorageTimeout(Duration),
    #[error("the task queue is not running")]
    Stopped,
    #[error("this overlord is no longer the leader: {0}")]
    Fenced(MetadataError),
    #[error("Task [{0}] is not active on this overlord; its actions are refused")]
    NotActive(String),
    /// A task action that cannot be done as asked (400, naming the problem).
    #[error("{0}")]
    Action(String),
}

/// What a task action came to.
#[derive(Debug)]
pub enum ActionOutcome {
    /// The action's `result`.
    Done(Value),
    /// `lockAcquire` found the interval held by others; wait for a release and ask again.
    LockBusy,
}

#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub max_size: usize,
    pub storage_sync_period: Duration,
}

enum QueueMsg {
    Add {
        task: Task,
        /// Stored by then or not at all (a submission whose client stops waiting).
        deadline: Option<tokio::time::Instant>,
        reply: oneshot::Sender<Result<(), QueueError>>,
    },
    Shutdown {
        id: TaskId,
        reason: String,
        reply: oneshot::Sender<()>,
    },
    LockedIntervals {
        filters: Vec<crate::lockbox::LockFilter>,
        reply: oneshot::Sender<std::collections::BTreeMap<String, Vec<Interval>>>,
    },
    Action {
        task: TaskId,
        action: TaskAction,
        reply: oneshot::Sender<Result<ActionOutcome, QueueError>>,
    },
}

#[derive(Clone)]
pub struct QueueHandle {
    tx: mpsc::Sender<QueueMsg>,
    /// Signalled whenever a lock is let go, for `lockAcquire` requests waiting on one.
    lock_released: Arc<Notify>,
    /// Every terminal status once stored, for supervisors that react to their tasks ending.
    completed: broadcast::Sender<Completed>,
}

/// A task that ended, once its terminal status is stored.
#[derive(Debug, Clone)]
pub struct Completed {
    pub status: TaskStatus,
    /// The `index_parallel` task it ran for, when it is a sub-task.
    pub supervisor: Option<TaskId>,
}

impl QueueHandle {
    /// Stores the task, then queues it. With a deadline, the task is stored by then or not at
    /// all, however long the queue or the store take.
    pub async fn add(
        &self,
        task: Task,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(), QueueError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(QueueMsg::Add {
                task,
                deadline,
                reply,
            })
            .await
            .map_err(|_| QueueError::Stopped)?;
        rx.await.map_err(|_| QueueError::Stopped)?
    }

    /// Fails a queued task with `reason`; unknown ids are ignored, as in Druid.
    pub async fn shutdown(&self, id: TaskId, reason: impl Into<String>) -> Result<(), QueueError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(QueueMsg::Shutdown {
                id,
                reason: reason.into(),
                reply,
            })
            .await
            .map_err(|_| QueueError::Stopped)?;
        rx.await.map_err(|_| QueueError::Stopped)
    }

    /// Runs one task action for an active task (the lockbox's critical section is the queue's
    /// own task: nothing else changes locks or publishes meanwhile).
    pub async fn action(
        &self,
        task: TaskId,
        action: TaskAction,
    ) -> Result<ActionOutcome, QueueError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(QueueMsg::Action {
                task,
                action,
                reply,
            })
            .await
            .map_err(|_| QueueError::Stopped)?;
        rx.await.map_err(|_| QueueError::Stopped)?
    }

    /// Druid's `lockedIntervals`: per data source, the intervals locked at or above a priority.
    pub async fn locked_intervals(
        &self,
        filters: Vec<crate::lockbox::LockFilter>,
    ) -> Result<std::collections::BTreeMap<String, Vec<Interval>>, QueueError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(QueueMsg::LockedIntervals { filters, reply })
            .await
            .map_err(|_| QueueError::Stopped)?;
        rx.await.map_err(|_| QueueError::Stopped)
    }

    pub fn lock_released(&self) -> Arc<Notify> {
        self.lock_released.clone()
    }

    /// Terminal statuses from now on, as they are stored. A slow listener misses some (and is
    /// told it lagged); supervisors also look at their tasks on every period.
    pub fn completions(&self) -> broadcast::Receiver<Completed> {
        self.completed.subscribe()
    }
}

struct Queued {
    task: Arc<Task>,
    /// When it entered this queue (a noop's `isReadyTime` counts from here).
    added: Instant,
    /// When the task was created (as near as an `Instant` can say), for the duration of a task
    /// that ends without running to its end (shut down, failed to start).
    created: Instant,
    /// Handed to the runner.
    submitted: bool,
    /// Druid's task priority: context `priority`, else the type's default.
    priority: i32,
    /// What `isReady` locks: a batch task's `granularitySpec.intervals`, a kill's interval.
    ready_locks: Vec<Interval>,
}

impl Queued {
    /// `age`: how long ago the task was created.
    fn new(task: Task, age: Duration) -> Queued {
        let priority = task
            .context()
            .and_then(|c| c.get("priority"))
            .and_then(Value::as_i64)
            .map(|p| p as i32)
            .unwrap_or_else(|| default_priority(&task.task_type));
        let ready_locks = match &task.kind {
            TaskKind::Index(spec) => crate::actions::lock_intervals(
                &spec.granularity.intervals,
                spec.granularity.segment,
            ),
            // A kill deletes what is in its interval: nobody may publish there meanwhile.
            TaskKind::Kill(spec) => vec![spec.interval],
            // A compaction rewrites its interval (widened to whole new buckets).
            TaskKind::Compact(spec) => spec.lock_intervals(),
            // A streaming task locks each segment as it allocates it (Druid's isReady: true).
            TaskKind::Noop(_) | TaskKind::Kafka(_) => Vec::new(),
        };
        Queued {
            task: Arc::new(task),
            added: Instant::now(),
            created: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
            submitted: false,
            priority,
            ready_locks,
        }
    }
}

struct TaskQueue {
    config: QueueConfig,
    store: MetadataStore,
    runner: RunnerHandle,
    tasks: IndexMap<TaskId, Queued>,
    /// Terminal statuses the store has not taken yet, retried every tick: (status, from the
    /// runner, the supervisor task it ran for).
    unpersisted: IndexMap<TaskId, (TaskStatus, bool, Option<TaskId>)>,
    runner_ready: bool,
    last_storage_sync: Instant,
    lockbox: Lockbox,
    lock_released: Arc<Notify>,
    completed: broadcast::Sender<Completed>,
}

pub fn start(
    config: QueueConfig,
    store: MetadataStore,
    runner: RunnerHandle,
    runner_events: mpsc::UnboundedReceiver<RunnerEvent>,
    scope: crate::scope::LeaderScope,
) -> QueueHandle {
    let (tx, rx) = mpsc::channel(1024);
    let lock_released = Arc::new(Notify::new());
    let (completed, _) = broadcast::channel(256);
    let queue = TaskQueue {
        completed: completed.clone(),
        lockbox: Lockbox::new(),
        lock_released: lock_released.clone(),
        config,
        store,
        runner,
        tasks: IndexMap::new(),
        unpersisted: IndexMap::new(),
        runner_ready: false,
        last_storage_sync: Instant::now(),
    };
    scope.spawn(queue.run(rx, runner_events));
    QueueHandle {
        tx,
        lock_released,
        completed,
    }
}

async fn bounded<T>(
    f: impl std::future::Future<Output = Result<T, MetadataError>>,
) -> Result<T, QueueError> {
    match tokio::time::timeout(STORAGE_TIMEOUT, f).await {
        Ok(Err(e @ MetadataError::Fenced { .. })) => Err(QueueError::Fenced(e)),
        Ok(r) => Ok(r?),
        Err(_) => Err(QueueError::StorageTimeout(STORAGE_TIMEOUT)),
    }
}

impl TaskQueue {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<QueueMsg>,
        mut events: mpsc::UnboundedReceiver<RunnerEvent>,
    ) {
        // Active tasks from storage first: everything accepted before a restart runs again, and
        // statuses the runner rediscovers find their tasks here.
        let mut backoff = Duration::from_millis(200);
        while let Err(e) = self.sync_from_storage().await {
            tracing::error!(error = %e, "cannot load active tasks from the metadata store; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        tracing::info!(tasks = self.tasks.len(), "task queue loaded from storage");
        let mut backoff = Duration::from_millis(200);
        while let Err(e) = self.restore_locks().await {
            tracing::error!(error = %e, "cannot load task locks from the metadata store; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(QueueMsg::Add { task, deadline, reply }) => {
                        let r = self.add(task, deadline).await;
                        reply.send(r).ok();
                    }
                    Some(QueueMsg::Shutdown { id, reason, reply }) => {
                        if self.tasks.contains_key(&id) {
                            tracing::info!(task = %id, %reason, "shutting down task");
                            self.complete(TaskStatus::failure(id, reason), false).await;
                        }
                        reply.send(()).ok();
                    }
                    Some(QueueMsg::LockedIntervals { filters, reply }) => {
                        reply.send(self.lockbox.locked_intervals(&filters)).ok();
                    }
                    Some(QueueMsg::Action { task, action, reply }) => {
                        let r = self.action(task, action).await;
                        reply.send(r).ok();
                    }
                    None => return,
                },
                event = events.recv() => match event {
                    Some(event) => self.on_runner_event(event).await,
                    None => return,
                },
                _ = tick.tick() => self.on_tick().await,
            }
            self.manage().await;
        }
    }

    async fn add(
        &mut self,
        task: Task,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(), QueueError> {
        // Waited in the channel past its deadline (the queue was busy): its client has been
        // told it was not stored, so it is not.
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Err(QueueError::Storage(MetadataError::Deadline {
                maybe_stored: false,
            }));
        }
        if self.tasks.len() >= self.config.max_size {
            return Err(QueueError::Full {
                size: self.tasks.len(),
                max: self.config.max_size,
            });
        }
        let created = drover_core::time::now_iso();
        match bounded(self.store.insert_task_by(
            &task,
            &created,
            &TaskStatus::running(task.id.clone()),
            deadline,
        ))
        .await
        {
            Ok(()) => {}
            Err(e @ QueueError::Storage(MetadataError::Deadline { maybe_stored: true })) => {
                // If the commit went through, the task is active in storage and the next
                // storage sync queues it.
                tracing::warn!(task = %task.id, "the metadata store answered the task's commit too late; it is queued at the next storage sync if it was stored");
                return Err(e);
            }
            Err(QueueError::Storage(MetadataError::TaskExists(id))) => {
                return Err(QueueError::Exists(id))
            }
            Err(e) => return Err(e),
        }
        tracing::info!(task = %task.id, r#type = %task.task_type, "task accepted");
        self.tasks
            .insert(task.id.clone(), Queued::new(task, Duration::ZERO));
        Ok(())
    }

    async fn on_runner_event(&mut self, event: RunnerEvent) {
        match event {
            RunnerEvent::Ready => self.runner_ready = true,
            RunnerEvent::Status(status) if status.is_complete() => {
                if self.tasks.contains_key(&status.id) {
                    self.complete(status, true).await;
                } else if !self.unpersisted.contains_key(&status.id) {
                    // Already complete in storage (or never ours): just clean up ZooKeeper.
                    self.runner.cleanup(status.id);
                }
            }
            RunnerEvent::Status(status) => {
                if !self.tasks.contains_key(&status.id)
                    && !self.unpersisted.contains_key(&status.id)
                {
                    tracing::warn!(task = %status.id, "runner has a task that is not active in storage; shutting it down");
                    self.runner
                        .shutdown(status.id, "Task is not in knownTaskIds");
                }
            }
        }
    }

    /// Persists a terminal status first, then tells the runner: `cleanup` when the runner
    /// reported it, `shutdown` when the queue decided it.
    /// A parallel task's sub-tasks end with it: nobody is left to use what they write.
    async fn stop_sub_tasks_of(&mut self, id: &TaskId) {
        let orphans: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|q| q.task.supervisor_task_id.as_ref() == Some(id))
            .map(|q| q.task.id.clone())
            .collect();
        for orphan in orphans {
            let reason = format!("its supervisor task [{id}] has ended");
            tracing::info!(task = %orphan, %reason, "shutting down sub-task");
            Box::pin(self.complete(TaskStatus::failure(orphan, reason), false)).await;
        }
    }

    async fn complete(&mut self, status: TaskStatus, from_runner: bool) {
        let id = status.id.clone();
        let queued = self.tasks.get(&id).map(|q| &q.task);
        let described = queued.map(|t| (t.data_source.to_string(), t.task_type.clone()));
        let supervisor = queued.and_then(|t| t.supervisor_task_id.clone());
        let status = match self.tasks.shift_remove(&id) {
            // Ended without a duration of its own (shut down, never started): it lasted from
            // its creation until now, rather than Druid's -1.
            Some(q) if status.duration < 0 => {
                let lasted = q.created.elapsed().as_millis() as i64;
                status.with_duration(lasted)
            }
            _ => status,
        };
        let result = bounded(self.store.set_task_status(&status)).await;
        // Its locks go whatever the store said: a task that is not in the queue holds nothing.
        self.release_locks(&id).await;
        self.stop_sub_tasks_of(&id).await;
        match result {
            Ok(updated) => {
                if !updated {
                    tracing::warn!(task = %id, "ignoring status for a task already complete in storage");
                } else if let Some((data_source, task_type)) = &described {
                    crate::metrics::task_completed(
                        data_source,
                        task_type,
                        status.status,
                        Duration::from_millis(status.duration.max(0) as u64),
                    );
                }
                tracing::info!(task = %id, status = ?status.status, error = ?status.error_msg, "task complete");
                self.after_persist(&status, from_runner, supervisor);
            }
            Err(QueueError::Fenced(e)) => {
                // The new leader will read this status from ZooKeeper and store it; the store
                // has told the leadership task to step down.
                tracing::error!(task = %id, error = %e, "status not stored: fenced");
            }
            Err(e) => {
                tracing::error!(task = %id, error = %e, "cannot persist task status; will retry");
                self.unpersisted
                    .insert(id, (status, from_runner, supervisor));
            }
        }
    }

    fn after_persist(&self, status: &TaskStatus, from_runner: bool, supervisor: Option<TaskId>) {
        // No listener is not an error.
        self.completed
            .send(Completed {
                status: status.clone(),
                supervisor,
            })
            .ok();
        if from_runner {
            self.runner.cleanup(status.id.clone());
        } else {
            self.runner.shutdown(
                status.id.clone(),
                status.error_msg.clone().unwrap_or_default(),
            );
        }
    }

    async fn on_tick(&mut self) {
        let pending: Vec<_> = self.unpersisted.drain(..).collect();
        for (id, (status, from_runner, supervisor)) in pending {
            match bounded(self.store.set_task_status(&status)).await {
                Ok(_) => self.after_persist(&status, from_runner, supervisor),
                // The store has told the leadership task; the new leader stores it.
                Err(QueueError::Fenced(_)) => {}
                Err(_) => {
                    self.unpersisted
                        .insert(id, (status, from_runner, supervisor));
                }
            }
        }
        if self.last_storage_sync.elapsed() >= self.config.storage_sync_period {
            if let Err(e) = self.sync_from_storage().await {
                tracing::warn!(error = %e, "storage sync failed");
            }
        }
    }

    /// Druid's `syncFromStorage`: tasks added to storage by someone else join the queue; tasks
    /// no longer active there leave it.
    async fn sync_from_storage(&mut self) -> Result<(), QueueError> {
        self.last_storage_sync = Instant::now();
        let active = bounded(self.store.active_task_infos()).await?;
        let active_ids: std::collections::HashSet<&str> =
            active.iter().map(|i| i.id.as_str()).collect();
        let gone: Vec<TaskId> = self
            .tasks
            .keys()
            .filter(|id| !active_ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            tracing::info!(task = %id, "task is no longer active in storage; removing it from the queue");
            self.tasks.shift_remove(&id);
            self.release_locks(&id).await;
            self.runner
                .shutdown(id, "Task is no longer active in storage");
        }
        for info in active {
            let Ok(id) = TaskId::new(info.id.clone()) else {
                continue;
            };
            if self.tasks.contains_key(&id) || self.unpersisted.contains_key(&id) {
                continue;
            }
            let row = match bounded(self.store.get_task(&id)).await {
                Ok(row) => row,
                // A payload this version cannot read (written by hand, or by a version that
                // accepted something this one refuses) must not stop the queue from loading the
                // others, nor stay active for ever: it fails, with the reason.
                Err(QueueError::Storage(MetadataError::Corrupt(reason))) => {
                    tracing::error!(task = %id, %reason, "failing an active task whose payload cannot be read");
                    let status = TaskStatus::failure(id, format!("cannot read the task: {reason}"));
                    bounded(self.store.set_task_status(&status)).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(row) = row {
                let age = drover_core::time::parse_iso(&row.info.created_date)
                    .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
                    .unwrap_or_default();
                self.tasks.insert(id, Queued::new(row.task, age));
            }
        }
        Ok(())
    }

    /// Hands ready tasks to the runner, in insertion order.
    async fn manage(&mut self) {
        if !self.runner_ready {
            return;
        }
        let mut failed = Vec::new();
        let waiting: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, q)| !q.submitted)
            .map(|(id, _)| id.clone())
            .collect();
        for id in waiting {
            let Some(q) = self.tasks.get(&id) else {
                continue; // failed by a revocation meanwhile
            };
            let readiness = match is_ready(&q.task, q.added) {
                Readiness::Ready => self.take_ready_locks(&id).await,
                other => other,
            };
            match readiness {
                Readiness::Ready => {
                    if let Some(q) = self.tasks.get_mut(&id) {
                        self.runner.run(q.task.clone());
                        q.submitted = true;
                    }
                }
                Readiness::NotYet => {}
                Readiness::Failed(msg) => failed.push(TaskStatus::failure(id, msg)),
            }
        }
        for status in failed {
            self.complete(status, false).await;
        }
    }
}

enum Readiness {
    Ready,
    /// Stays WAITING (Druid: `isReady` returned false).
    NotYet,
    Failed(String),
}

/// Druid's `Task.isReady`, without blocking: a noop's `isReadyTime` delays readiness from the
/// moment it was queued.
fn is_ready(task: &Task, added: Instant) -> Readiness {
    match &task.kind {
        TaskKind::Index(_) | TaskKind::Kafka(_) | TaskKind::Kill(_) | TaskKind::Compact(_) => {
            Readiness::Ready
        }
        TaskKind::Noop(spec) => match spec.is_ready_result {
            IsReadyResult::Exception => {
                Readiness::Failed("isReady failed: isReadyResult is EXCEPTION".into())
            }
            IsReadyResult::No => Readiness::NotYet,
            IsReadyResult::Yes
                if added.elapsed() < Duration::from_millis(spec.is_ready_time_ms) =>
            {
                Readiness::NotYet
            }
            IsReadyResult::Yes => Readiness::Ready,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(extra: &str) -> Task {
        Task::from_json_bytes(format!(r#"{{"type":"noop","id":"t"{extra}}}"#).as_bytes()).unwrap()
    }

    #[test]
    fn readiness_follows_noop_settings() {
        let now = Instant::now();
        assert!(matches!(is_ready(&noop(""), now), Readiness::Ready));
        assert!(matches!(
            is_ready(&noop(r#","isReadyResult":"NO""#), now),
            Readiness::NotYet
        ));
        assert!(matches!(
            is_ready(&noop(r#","isReadyResult":"EXCEPTION""#), now),
            Readiness::Failed(_)
        ));
        assert!(matches!(
            is_ready(&noop(r#","isReadyTime":60000"#), now),
            Readiness::NotYet
        ));
    }
}
