//! What the HTTP runner syncs from this worker (Druid's `WorkerTaskManager` change history): the
//! latest announcement of every task the worker knows, whether it is disabled, and the last
//! changes to both, numbered, so an overlord that holds a counter gets only what changed since.
//!
//! The state is plain data behind a mutex that is never held across an `.await`; waiting
//! readers are woken through a watch channel carrying the last counter.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_core::worker_sync::{ChangeCounter, ChangeRequestsSnapshot, WorkerHistoryItem};
use drover_core::{TaskAnnouncement, TaskId};
use indexmap::IndexMap;
use tokio::sync::watch;

/// Changes kept; an overlord further behind starts again from a full snapshot (Druid keeps 1000).
const MAX_CHANGES: usize = 1000;

#[derive(Clone)]
pub struct WorkerHistory {
    inner: Arc<Mutex<History>>,
    last: watch::Sender<i64>,
    /// The highest counter an answer has carried to the overlord.
    served: watch::Sender<i64>,
    /// Set when the worker stops: waiting sync requests answer at once.
    closed: watch::Sender<bool>,
}

struct History {
    /// Tells this life of the worker from earlier ones: counters from another life never match.
    life: i64,
    tasks: IndexMap<TaskId, TaskAnnouncement>,
    disabled: bool,
    changes: VecDeque<(ChangeCounter, WorkerHistoryItem)>,
    last: ChangeCounter,
}

impl History {
    fn counter(&self, n: i64) -> ChangeCounter {
        ChangeCounter {
            counter: n,
            hash: if n == 0 {
                0
            } else {
                self.life.wrapping_add(n) & i64::MAX
            },
        }
    }

    fn push(&mut self, item: WorkerHistoryItem) -> i64 {
        let next = self.counter(self.last.counter + 1);
        self.changes.push_back((next, item));
        if self.changes.len() > MAX_CHANGES {
            self.changes.pop_front();
        }
        self.last = next;
        next.counter
    }

    /// Everything the worker knows now, as Druid answers counter `-1`.
    fn full(&self) -> ChangeRequestsSnapshot {
        let mut items = vec![WorkerHistoryItem::Metadata {
            disabled: self.disabled,
        }];
        items.extend(self.tasks.values().map(|a| WorkerHistoryItem::TaskUpdate {
            task_announcement: Box::new(a.clone()),
        }));
        ChangeRequestsSnapshot::success(self.last, items)
    }

    /// The changes after `since`, or a reset when they are not all kept or `since` is from
    /// another life; `None` when there is nothing new yet.
    fn since(&self, since: ChangeCounter) -> Option<ChangeRequestsSnapshot> {
        if since.counter == self.last.counter {
            return (since != self.last).then(|| {
                ChangeRequestsSnapshot::reset(format!(
                    "counter[{since:?}] failed to match with [{:?}]",
                    self.last
                ))
            });
        }
        if since.counter > self.last.counter {
            return Some(ChangeRequestsSnapshot::reset(format!(
                "counter[{since:?}] > last counter[{:?}]",
                self.last
            )));
        }
        // The change at `since` must still be kept, to check its hash (or be the start, while
        // the first change is kept).
        let first = self.changes.front().map(|(c, _)| c.counter).unwrap_or(0);
        let known = since.counter == 0 && since.hash == 0 && first == 1
            || self.changes.iter().any(|(c, _)| *c == since);
        if !known {
            return Some(ChangeRequestsSnapshot::reset(format!(
                "can't serve request, not enough history is kept or counter[{since:?}] is from another life; last counter [{:?}]",
                self.last
            )));
        }
        let items = self
            .changes
            .iter()
            .filter(|(c, _)| c.counter > since.counter)
            .map(|(_, item)| item.clone())
            .collect();
        Some(ChangeRequestsSnapshot::success(self.last, items))
    }
}

impl WorkerHistory {
    pub fn new() -> Self {
        let life = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(1);
        let (last, _) = watch::channel(0);
        let (served, _) = watch::channel(0);
        let (closed, _) = watch::channel(false);
        WorkerHistory {
            served,
            closed,
            inner: Arc::new(Mutex::new(History {
                life,
                tasks: IndexMap::new(),
                disabled: false,
                changes: VecDeque::new(),
                last: ChangeCounter {
                    counter: 0,
                    hash: 0,
                },
            })),
            last,
        }
    }

    fn change(&self, f: impl FnOnce(&mut History) -> Option<WorkerHistoryItem>) {
        let counter = {
            let mut h = self.inner.lock().expect("history lock");
            match f(&mut h) {
                Some(item) => h.push(item),
                None => return,
            }
        };
        self.last.send_replace(counter);
    }

    /// A task's announcement changed (assigned, running, finished).
    pub fn update(&self, announcement: TaskAnnouncement) {
        self.change(|h| {
            if h.tasks.get(&announcement.id) == Some(&announcement) {
                return None;
            }
            h.tasks
                .insert(announcement.id.clone(), announcement.clone());
            Some(WorkerHistoryItem::TaskUpdate {
                task_announcement: Box::new(announcement),
            })
        });
    }

    /// The worker forgets a finished task.
    pub fn remove(&self, id: &TaskId) {
        self.change(|h| {
            h.tasks.shift_remove(id)?;
            Some(WorkerHistoryItem::TaskRemoval {
                task_id: id.to_string(),
            })
        });
    }

    pub fn set_disabled(&self, disabled: bool) {
        self.change(|h| {
            if h.disabled == disabled {
                return None;
            }
            h.disabled = disabled;
            Some(WorkerHistoryItem::Metadata { disabled })
        });
    }

    /// Ids of the finished tasks the worker still reports.
    pub fn completed(&self) -> Vec<TaskId> {
        let h = self.inner.lock().expect("history lock");
        h.tasks
            .values()
            .filter(|a| a.status.is_complete())
            .map(|a| a.id.clone())
            .collect()
    }

    /// Druid's `getChangesSince`: a full snapshot for a negative counter, else the changes after
    /// `since`, waiting up to `timeout` for one; `None` if none came in time.
    pub async fn changes_since(
        &self,
        since: ChangeCounter,
        timeout: Duration,
    ) -> Option<ChangeRequestsSnapshot> {
        let mut last = self.last.subscribe();
        let mut closed = self.closed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let answer = {
                let h = self.inner.lock().expect("history lock");
                if since.counter < 0 {
                    Some(h.full())
                } else {
                    h.since(since)
                }
            };
            if let Some(answer) = answer {
                if let Some(c) = answer.counter {
                    self.served.send_if_modified(|s| {
                        let newer = c.counter > *s;
                        *s = (*s).max(c.counter);
                        newer
                    });
                }
                return Some(answer);
            }
            if *closed.borrow_and_update() {
                return None;
            }
            last.mark_unchanged();
            tokio::select! {
                changed = tokio::time::timeout_at(deadline, last.changed()) => match changed {
                    Ok(Ok(())) => continue,
                    _ => return None,
                },
                _ = closed.changed() => return None,
            }
        }
    }
}

impl WorkerHistory {
    /// The worker is stopping: sync requests waiting for a change answer now, so the HTTP
    /// server can stop without waiting out their long polls.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Waits until every change so far has been answered to a sync request, or `timeout`: a
    /// stopping worker keeps serving until the overlord has its tasks' last statuses.
    pub async fn wait_until_served(&self, timeout: Duration) -> bool {
        let last = *self.last.borrow();
        let mut served = self.served.subscribe();
        tokio::time::timeout(timeout, served.wait_for(|s| *s >= last))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Default for WorkerHistory {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_core::{TaskResource, TaskStatus};

    fn announcement(id: &str, done: bool) -> TaskAnnouncement {
        let id = TaskId::new(id).unwrap();
        let status = if done {
            TaskStatus::success(id.clone())
        } else {
            TaskStatus::running(id.clone())
        };
        TaskAnnouncement::new(status, "noop", TaskResource::for_task(&id), "ds")
    }

    const NOW: Duration = Duration::ZERO;
    const FULL: ChangeCounter = ChangeCounter {
        counter: -1,
        hash: 0,
    };

    #[tokio::test]
    async fn full_snapshot_then_changes_since_its_counter() {
        let h = WorkerHistory::new();
        h.update(announcement("a", false));
        let full = h.changes_since(FULL, NOW).await.unwrap();
        assert!(!full.reset_counter);
        assert_eq!(full.requests.as_ref().unwrap().len(), 2);
        let at = full.counter.unwrap();
        assert_eq!(at.counter, 1);
        // Nothing new yet.
        assert!(h.changes_since(at, NOW).await.is_none());
        h.update(announcement("a", true));
        h.update(announcement("a", true)); // unchanged: no new entry
        h.set_disabled(true);
        let next = h.changes_since(at, NOW).await.unwrap();
        assert_eq!(next.counter.unwrap().counter, 3);
        let items = next.requests.unwrap();
        assert!(
            matches!(&items[0], WorkerHistoryItem::TaskUpdate { task_announcement } if task_announcement.status.is_complete())
        );
        assert_eq!(items[1], WorkerHistoryItem::Metadata { disabled: true });
        assert_eq!(h.completed(), vec![TaskId::new("a").unwrap()]);
        h.remove(&TaskId::new("a").unwrap());
        assert!(h.completed().is_empty());
    }

    #[tokio::test]
    async fn counters_from_zero_and_from_nowhere() {
        let h = WorkerHistory::new();
        h.update(announcement("a", false));
        let zero = ChangeCounter {
            counter: 0,
            hash: 0,
        };
        assert_eq!(
            h.changes_since(zero, NOW)
                .await
                .unwrap()
                .requests
                .unwrap()
                .len(),
            1
        );
        // A counter from another life of the worker, or from the future, asks for a reset.
        for stale in [
            ChangeCounter {
                counter: 1,
                hash: 12345,
            },
            ChangeCounter {
                counter: 9,
                hash: 1,
            },
        ] {
            assert!(h.changes_since(stale, NOW).await.unwrap().reset_counter);
        }
    }

    #[tokio::test]
    async fn an_overlord_too_far_behind_starts_again() {
        let h = WorkerHistory::new();
        h.update(announcement("t0", false));
        let early = h.changes_since(FULL, NOW).await.unwrap().counter.unwrap();
        for i in 0..MAX_CHANGES + 5 {
            h.update(announcement(&format!("t{}", i + 1), false));
        }
        assert!(h.changes_since(early, NOW).await.unwrap().reset_counter);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_reader_wakes_on_a_change() {
        let h = WorkerHistory::new();
        let at = h.changes_since(FULL, NOW).await.unwrap().counter.unwrap();
        let reader = {
            let h = h.clone();
            tokio::spawn(async move { h.changes_since(at, Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        h.update(announcement("a", false));
        let got = reader.await.unwrap().unwrap();
        assert_eq!(got.requests.unwrap().len(), 1);
        // Everything so far has been served; a change nobody read yet has not.
        assert!(h.wait_until_served(Duration::from_secs(1)).await);
        h.set_disabled(true);
        assert!(!h.wait_until_served(Duration::from_secs(1)).await);
        let got = h
            .changes_since(got.counter.unwrap(), Duration::ZERO)
            .await
            .unwrap();
        assert!(h.wait_until_served(Duration::from_secs(1)).await);
        // And one that waits in vain gets nothing when its time is up.
        assert!(h
            .changes_since(got.counter.unwrap(), Duration::from_secs(5))
            .await
            .is_none());
    }
}
