//! The queue's lockbox: locks taken for `isReady`, by `lockAcquire`, restored from
//! `druid_tasklocks` on leadership, released when a task completes. Every change is written to
//! the store (fenced) before anyone is told about it.

use drover_core::interval::Interval;
use drover_core::lock::{LockType, TaskLock};
use drover_core::{TaskId, TaskStatus};

use super::{bounded, QueueError, Readiness, TaskQueue};
use crate::lockbox::{LockRequest, LockResult};

impl TaskQueue {
    /// A new leader takes back the stored locks of the tasks still active, as they were (same
    /// version, revoked or not); the rows of tasks no longer active are dropped.
    pub(super) async fn restore_locks(&mut self) -> Result<(), QueueError> {
        let stored = bounded(self.store.all_locks()).await?;
        for (task, lock) in stored {
            match TaskId::new(task.clone()) {
                Ok(id) if self.tasks.contains_key(&id) => {
                    tracing::info!(task = %id, interval = %lock.interval, version = %lock.version, "lock re-acquired");
                    self.lockbox.restore(&id, lock);
                }
                Ok(id) => {
                    tracing::info!(task = %id, "dropping the stored lock of a task that is no longer active");
                    bounded(self.store.delete_lock(&id, &lock)).await?;
                }
                Err(_) => tracing::warn!(%task, "ignoring a stored lock with an invalid task id"),
            }
        }
        Ok(())
    }

    /// Lets go of every lock the task holds and wakes `lockAcquire` requests waiting for one.
    pub(super) async fn release_locks(&mut self, id: &TaskId) {
        let released = self.lockbox.remove_task(id);
        if released.is_empty() {
            return;
        }
        for lock in &released {
            if let Err(e) = bounded(self.store.delete_lock(id, lock)).await {
                // The row is dropped by the next leader's restore (the task is not active).
                tracing::warn!(task = %id, interval = %lock.interval, error = %e, "could not delete a released lock row");
            }
            self.forget_appended_under(lock).await;
        }
        self.lock_released.notify_waiters();
    }

    /// Once nobody holds a REPLACE lock any more, what was appended under it has been carried
    /// into its version (or never will be): its `druid_upgradeSegments` rows go.
    pub(super) async fn forget_appended_under(&mut self, released: &TaskLock) {
        if released.lock_type != LockType::Replace {
            return;
        }
        if let Err(e) = bounded(self.store.delete_upgrade_records(&released.group_id)).await {
            tracing::warn!(group = %released.group_id, error = %e, "could not delete the upgradeSegments rows of a released REPLACE lock");
        }
    }

    /// The request a queued task makes for `interval`.
    pub(super) fn lock_request(
        &self,
        id: &TaskId,
        interval: Interval,
        lock_type: LockType,
    ) -> Option<LockRequest> {
        let q = self.tasks.get(id)?;
        Some(LockRequest {
            task: id.clone(),
            group_id: q.task.group_id.clone(),
            data_source: q.task.data_source.clone(),
            interval,
            lock_type,
            priority: q.priority,
            preferred_version: None,
        })
    }

    /// Druid's `tryLock`, persisted: a new lock's row is inserted; locks it revoked are
    /// rewritten `revoked: true` and their holders fail, saying why.
    pub(super) async fn lock(&mut self, req: LockRequest) -> Result<LockResult, QueueError> {
        // A parallel task's sub-task locks for its supervisor task too, first: the lock (and
        // its version) then lasts until the supervisor publishes what every sub-task wrote,
        // whichever sub-tasks have ended by then (Druid's supervisor takes its locks itself).
        if let Some(sup) = self.supervisor_sharing_locks(&req) {
            let for_supervisor = LockRequest {
                task: sup.clone(),
                priority: self.tasks.get(&sup).map_or(req.priority, |q| q.priority),
                ..req.clone()
            };
            match Box::pin(self.lock(for_supervisor)).await? {
                LockResult::Acquired { .. } => {}
                refused => return Ok(refused),
            }
        }
        let (result, changes) = self.lockbox.try_lock(&req, chrono::Utc::now());
        for revoked in &changes.revoked {
            let original = TaskLock {
                revoked: false,
                ..revoked.clone()
            };
            for holder in self.lockbox.holders(revoked) {
                bounded(self.store.replace_lock(&holder, &original, revoked)).await?;
            }
        }
        if let LockResult::Acquired { lock, new: true } = &result {
            if let Err(e) = bounded(self.store.insert_lock(&req.task, lock)).await {
                self.lockbox.unlock(&req.task, &lock.interval);
                return Err(e);
            }
        }
        for revoked in changes.revoked {
            for holder in self.lockbox.holders(&revoked) {
                let msg = format!(
                    "Task lock on interval [{}] was revoked by higher-priority task [{}] (priority {} > {})",
                    revoked.interval, req.task, req.priority, revoked.priority
                );
                tracing::warn!(task = %holder, %msg, "lock revoked");
                self.complete(TaskStatus::failure(holder, msg), false).await;
            }
        }
        Ok(result)
    }

    /// The active supervisor task of `req`'s task, when they share its lock group.
    fn supervisor_sharing_locks(&self, req: &LockRequest) -> Option<TaskId> {
        let sup = self.tasks.get(&req.task)?.task.supervisor_task_id.clone()?;
        let q = self.tasks.get(&sup)?;
        (q.task.group_id == req.group_id).then_some(sup)
    }

    /// An ingestion task's `isReady`: all of its intervals locked, or none (a partial set is
    /// let go so two tasks never hold halves of each other's intervals).
    pub(super) async fn take_ready_locks(&mut self, id: &TaskId) -> Readiness {
        let Some(intervals) = self.tasks.get(id).map(|q| q.ready_locks.clone()) else {
            return Readiness::NotYet;
        };
        let mut taken: Vec<Interval> = Vec::new();
        let lock_type = self.tasks.get(id).map(|q| q.task.write_lock);
        for interval in intervals {
            let Some(req) = lock_type.and_then(|t| self.lock_request(id, interval, t)) else {
                return Readiness::NotYet;
            };
            match self.lock(req).await {
                Ok(LockResult::Acquired { new, .. }) => {
                    if new {
                        taken.push(interval);
                    }
                }
                Ok(LockResult::Revoked) => {
                    return Readiness::Failed(format!(
                        "Task lock on interval [{interval}] was revoked by a higher-priority task"
                    ))
                }
                Ok(LockResult::Conflict) | Err(_) => {
                    for i in taken {
                        if let Some(lock) = self.lockbox.unlock(id, &i) {
                            bounded(self.store.delete_lock(id, &lock)).await.ok();
                        }
                    }
                    return Readiness::NotYet;
                }
            }
        }
        Readiness::Ready
    }
}
