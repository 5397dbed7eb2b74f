//! TaskLockbox (see docs/architecture.md): time-chunk locks held by task groups, as plain data and pure
//! decisions. The owner (the TaskQueue's task) persists what these calls return to
//! `druid_tasklocks`; nothing here does I/O.
//!
//! Rules, as Druid's `createOrFindLockPosse`: a request conflicts with the locks of the same data
//! source whose interval overlaps it. No conflict: a new lock. A lock of the same group and type
//! that encloses the request: shared with it. Otherwise the request is granted when it can
//! coexist with every live conflicting lock (`coexists`: SHARED with SHARED; APPEND with APPEND
//! and with one REPLACE that encloses it; REPLACE with APPENDs it encloses); and when *every*
//! conflicting lock is revoked already or has a strictly lower priority, they are revoked and a
//! new lock is granted; else the request must wait. Revoked locks stay (marked) until their
//! tasks release them, and a task whose lock was revoked is told so.
//!
//! APPEND locks carry the epoch as their version, as in Druid: an appending task writes into the
//! version already in its time chunk, never a newer one that would overshadow a concurrent
//! REPLACE (see `queue::actions` for how appended segments are carried into a replace's version).

use std::collections::{BTreeMap, BTreeSet};

use drover_core::interval::Interval;
use drover_core::lock::{LockType, TaskLock};
use drover_core::time::{parse_iso, to_iso};
use drover_core::{DataSource, TaskId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    pub task: TaskId,
    pub group_id: String,
    pub data_source: DataSource,
    pub interval: Interval,
    pub lock_type: LockType,
    pub priority: i32,
    /// Re-acquiring a stored lock (leadership change) asks for its old version.
    pub preferred_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockResult {
    /// Granted; `new` when a lock was created (a `druid_tasklocks` row to insert for the task).
    Acquired { lock: TaskLock, new: bool },
    /// The task's group held a lock here that a higher priority revoked: the task must fail.
    Revoked,
    /// Held by others that cannot be revoked: wait and try again.
    Conflict,
}

#[derive(Debug, Clone)]
struct Posse {
    lock: TaskLock,
    tasks: BTreeSet<TaskId>,
}

#[derive(Debug, Default)]
pub struct Lockbox {
    posses: Vec<Posse>,
}

/// Druid's `LockFilterPolicy`: the locks of one data source held at `min_priority` or above,
/// optionally only those overlapping `intervals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockFilter {
    pub data_source: String,
    pub min_priority: i32,
    pub intervals: Option<Vec<Interval>>,
    /// Leave APPEND locks out (the filter's context asks for concurrent locks).
    pub ignore_append_locks: bool,
}

/// Why a task may not publish segments in an interval (Druid's critical-section check).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPublishable {
    #[error("task [{task}] holds no lock covering [{interval}]")]
    NoLock { task: TaskId, interval: Interval },
    #[error("the lock of task [{task}] on [{interval}] was revoked by a higher priority task")]
    Revoked { task: TaskId, interval: Interval },
    #[error("task [{task}] holds only a SHARED lock on [{interval}]; it cannot publish")]
    SharedOnly { task: TaskId, interval: Interval },
}

/// What a decision changed, for the owner to persist.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LockChanges {
    /// Locks newly marked revoked (their rows are rewritten with `revoked: true`).
    pub revoked: Vec<TaskLock>,
}

impl Lockbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Druid's `tryLock`: decide at once.
    pub fn try_lock(
        &mut self,
        req: &LockRequest,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (LockResult, LockChanges) {
        let mut changes = LockChanges::default();
        let conflicting: Vec<usize> = self
            .posses
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.lock.data_source == req.data_source && p.lock.interval.overlaps(&req.interval)
            })
            .map(|(i, _)| i)
            .collect();

        // The group's own lock here was revoked: the task learns it now.
        if conflicting
            .iter()
            .any(|&i| self.posses[i].lock.group_id == req.group_id && self.posses[i].lock.revoked)
        {
            return (LockResult::Revoked, changes);
        }
        let reusable: Vec<usize> = conflicting
            .iter()
            .copied()
            .filter(|&i| {
                let l = &self.posses[i].lock;
                l.group_id == req.group_id
                    && l.lock_type == req.lock_type
                    && l.interval.encloses(&req.interval)
                    && req
                        .preferred_version
                        .as_ref()
                        .is_none_or(|v| *v == l.version)
            })
            .collect();
        if let Some(&i) = reusable.first() {
            let posse = &mut self.posses[i];
            let new = posse.tasks.insert(req.task.clone());
            return (
                LockResult::Acquired {
                    lock: posse.lock.clone(),
                    new,
                },
                changes,
            );
        }

        let live: Vec<&TaskLock> = conflicting
            .iter()
            .map(|&i| &self.posses[i].lock)
            .filter(|l| !l.revoked)
            .collect();
        // Otherwise the live locks it cannot coexist with are revoked, if every one of them has
        // a strictly lower priority (Druid's `revokeAllIncompatibleActiveLocksIfPossible`).
        let grant = coexists(req, &live) || {
            let incompatible: Vec<usize> = conflicting
                .iter()
                .copied()
                .filter(|&i| {
                    let l = &self.posses[i].lock;
                    !l.revoked && !coexists(req, &[l])
                })
                .collect();
            let revocable = !incompatible.is_empty()
                && incompatible
                    .iter()
                    .all(|&i| self.posses[i].lock.priority < req.priority);
            if revocable {
                for i in incompatible {
                    let lock = &mut self.posses[i].lock;
                    lock.revoked = true;
                    changes.revoked.push(lock.clone());
                }
            }
            revocable
        };
        if !grant {
            return (LockResult::Conflict, changes);
        }
        let version = match (&req.preferred_version, req.lock_type) {
            (Some(v), _) => v.clone(),
            (None, LockType::Append) => APPEND_LOCK_VERSION.to_string(),
            (None, _) => self.next_version(req, now),
        };
        let lock = TaskLock {
            lock_type: req.lock_type,
            group_id: req.group_id.clone(),
            data_source: req.data_source.clone(),
            interval: req.interval,
            version,
            priority: req.priority,
            revoked: false,
        };
        self.posses.push(Posse {
            lock: lock.clone(),
            tasks: [req.task.clone()].into(),
        });
        (LockResult::Acquired { lock, new: true }, changes)
    }

    /// `now`, or just after the newest version ever given on an overlapping interval of the data
    /// source: versions must grow even if the clock steps back (Druid only assumes it does not).
    fn next_version(&self, req: &LockRequest, now: chrono::DateTime<chrono::Utc>) -> String {
        let newest = self
            .posses
            .iter()
            .filter(|p| {
                p.lock.data_source == req.data_source && p.lock.interval.overlaps(&req.interval)
            })
            .filter_map(|p| parse_iso(&p.lock.version))
            .max();
        match newest {
            Some(v) if v >= now => to_iso(v + chrono::Duration::milliseconds(1)),
            _ => to_iso(now),
        }
    }

    /// The task lets go of its lock on `interval`; returns the lock if nobody holds it any more
    /// (its row is deleted).
    pub fn unlock(&mut self, task: &TaskId, interval: &Interval) -> Option<TaskLock> {
        let i = self
            .posses
            .iter()
            .position(|p| p.tasks.contains(task) && p.lock.interval == *interval)?;
        self.posses[i].tasks.remove(task);
        if self.posses[i].tasks.is_empty() {
            return Some(self.posses.remove(i).lock);
        }
        None
    }

    /// The task is done: every lock it held is released.
    pub fn remove_task(&mut self, task: &TaskId) -> Vec<TaskLock> {
        let intervals: Vec<Interval> = self
            .locks_of(task)
            .into_iter()
            .map(|l| l.interval)
            .collect();
        intervals
            .iter()
            .filter_map(|i| self.unlock(task, i))
            .collect()
    }

    /// Puts back a lock read from `druid_tasklocks` as it was stored (revoked or not), when a
    /// new leader takes over.
    pub fn restore(&mut self, task: &TaskId, lock: TaskLock) {
        match self.posses.iter_mut().find(|p| p.lock == lock) {
            Some(p) => {
                p.tasks.insert(task.clone());
            }
            None => self.posses.push(Posse {
                lock,
                tasks: [task.clone()].into(),
            }),
        }
    }

    /// Druid's `findReplaceLocksCoveringSegments`: the live REPLACE lock of another group whose
    /// interval encloses `interval`, if there is one. A segment appended under it is carried into
    /// that lock's version when its holder publishes.
    pub fn replace_lock_covering(
        &self,
        data_source: &str,
        interval: &Interval,
        not_group: &str,
    ) -> Option<&TaskLock> {
        self.posses.iter().map(|p| &p.lock).find(|l| {
            l.lock_type == LockType::Replace
                && !l.revoked
                && l.group_id != not_group
                && l.data_source == data_source
                && l.interval.encloses(interval)
        })
    }

    /// The task's live lock that encloses `interval`, if any: its type says how a publish there
    /// goes in (appended, replacing or overwriting).
    pub fn covering_lock(&self, task: &TaskId, interval: &Interval) -> Option<&TaskLock> {
        self.posses
            .iter()
            .filter(|p| p.tasks.contains(task) && !p.lock.revoked)
            .map(|p| &p.lock)
            .find(|l| l.interval.encloses(interval))
    }

    /// The tasks sharing `lock`.
    pub fn holders(&self, lock: &TaskLock) -> Vec<TaskId> {
        self.posses
            .iter()
            .filter(|p| {
                p.lock.group_id == lock.group_id
                    && p.lock.interval == lock.interval
                    && p.lock.version == lock.version
            })
            .flat_map(|p| p.tasks.iter().cloned())
            .collect()
    }

    /// Druid's `getLockedIntervals`: per data source asked about, the intervals its live (not
    /// revoked) locks cover, sorted; data sources with none are left out.
    pub fn locked_intervals(&self, filters: &[LockFilter]) -> BTreeMap<String, Vec<Interval>> {
        let mut out: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
        for f in filters {
            for p in &self.posses {
                let lock = &p.lock;
                let left_out =
                    lock.revoked || (f.ignore_append_locks && lock.lock_type == LockType::Append);
                let wanted = !left_out
                    && lock.data_source == f.data_source
                    && lock.priority >= f.min_priority
                    && f.intervals
                        .as_ref()
                        .is_none_or(|ivs| ivs.iter().any(|i| i.overlaps(&lock.interval)));
                if wanted {
                    out.entry(f.data_source.clone())
                        .or_default()
                        .push(lock.interval);
                }
            }
        }
        for intervals in out.values_mut() {
            intervals.sort_by_key(|i| (i.start, i.end));
            intervals.dedup();
        }
        out
    }

    pub fn locks_of(&self, task: &TaskId) -> Vec<TaskLock> {
        self.posses
            .iter()
            .filter(|p| p.tasks.contains(task))
            .map(|p| p.lock.clone())
            .collect()
    }

    /// Druid's `doInCriticalSection` check before publishing: every interval is covered by a lock
    /// of the task that is neither revoked nor SHARED.
    pub fn check_publishable(
        &self,
        task: &TaskId,
        intervals: &[Interval],
    ) -> Result<(), NotPublishable> {
        for interval in intervals {
            let covering: Vec<&TaskLock> = self
                .posses
                .iter()
                .filter(|p| p.tasks.contains(task) && p.lock.interval.encloses(interval))
                .map(|p| &p.lock)
                .collect();
            match covering.first() {
                None => {
                    return Err(NotPublishable::NoLock {
                        task: task.clone(),
                        interval: *interval,
                    })
                }
                Some(l) if l.revoked => {
                    return Err(NotPublishable::Revoked {
                        task: task.clone(),
                        interval: *interval,
                    })
                }
                Some(l) if l.lock_type == LockType::Shared => {
                    return Err(NotPublishable::SharedOnly {
                        task: task.clone(),
                        interval: *interval,
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// The version of every APPEND lock (Druid's `DateTimes.EPOCH`).
pub const APPEND_LOCK_VERSION: &str = "1970-01-01T00:00:00.000Z";

/// Druid's `canLockCoexist`: whether `req` may be granted beside the live (not revoked) locks
/// it overlaps, without revoking any.
fn coexists(req: &LockRequest, live: &[&TaskLock]) -> bool {
    match req.lock_type {
        LockType::Exclusive => live.is_empty(),
        LockType::Shared => live.iter().all(|l| l.lock_type == LockType::Shared),
        LockType::Append => {
            let mut replaces = 0;
            live.iter().all(|l| match l.lock_type {
                LockType::Append => true,
                LockType::Replace => {
                    replaces += 1;
                    replaces == 1 && l.interval.encloses(&req.interval)
                }
                LockType::Exclusive | LockType::Shared => false,
            })
        }
        LockType::Replace => live
            .iter()
            .all(|l| l.lock_type == LockType::Append && req.interval.encloses(&l.interval)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_core::interval::parse_instant;

    fn req(
        task: &str,
        group: &str,
        interval: &str,
        lock_type: LockType,
        priority: i32,
    ) -> LockRequest {
        LockRequest {
            task: TaskId::new(task).unwrap(),
            group_id: group.into(),
            data_source: DataSource::new("wiki").unwrap(),
            interval: Interval::parse(interval).unwrap(),
            lock_type,
            priority,
            preferred_version: None,
        }
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        parse_instant("2024-05-01T00:00:00Z").unwrap()
    }

    const DAY1: &str = "2024-01-01/2024-01-02";

    #[test]
    fn locked_intervals_by_data_source_priority_and_interval() {
        let mut b = Lockbox::new();
        b.try_lock(&req("t1", "g1", DAY1, LockType::Exclusive, 50), now());
        b.try_lock(
            &req("t2", "g2", "2024-01-03/2024-01-04", LockType::Exclusive, 75),
            now(),
        );
        let filter = |min_priority, intervals: Option<&str>| LockFilter {
            ignore_append_locks: false,
            data_source: "wiki".into(),
            min_priority,
            intervals: intervals.map(|i| vec![Interval::parse(i).unwrap()]),
        };
        let all = b.locked_intervals(&[filter(0, None)]);
        assert_eq!(all["wiki"].len(), 2);
        assert_eq!(all["wiki"][0], Interval::parse(DAY1).unwrap());
        let high = b.locked_intervals(&[filter(60, None)]);
        assert_eq!(
            high["wiki"],
            vec![Interval::parse("2024-01-03/2024-01-04").unwrap()]
        );
        let first_day = b.locked_intervals(&[filter(0, Some("2024-01-01T12:00:00Z/2024-01-02"))]);
        assert_eq!(first_day["wiki"], vec![Interval::parse(DAY1).unwrap()]);
        let none = b.locked_intervals(&[LockFilter {
            ignore_append_locks: false,
            data_source: "other".into(),
            min_priority: 0,
            intervals: None,
        }]);
        assert!(none.is_empty());
    }

    #[test]
    fn equal_priority_waits_first_come_first_served() {
        let mut b = Lockbox::new();
        let (first, _) = b.try_lock(&req("t1", "g1", DAY1, LockType::Exclusive, 50), now());
        assert!(matches!(first, LockResult::Acquired { new: true, .. }));
        let (second, _) = b.try_lock(&req("t2", "g2", DAY1, LockType::Exclusive, 50), now());
        assert_eq!(second, LockResult::Conflict);
        // Another data source or a disjoint interval is free.
        let (other, _) = b.try_lock(
            &req("t3", "g3", "2024-01-02/2024-01-03", LockType::Exclusive, 50),
            now(),
        );
        assert!(matches!(other, LockResult::Acquired { .. }));
        // Released: the waiting task gets it.
        assert!(b.remove_task(&TaskId::new("t1").unwrap()).len() == 1);
        let (again, _) = b.try_lock(&req("t2", "g2", DAY1, LockType::Exclusive, 50), now());
        assert!(matches!(again, LockResult::Acquired { .. }));
    }

    #[test]
    fn restored_locks_keep_their_version_and_revocation() {
        let mut b = Lockbox::new();
        let (r, _) = b.try_lock(&req("t1", "g", DAY1, LockType::Exclusive, 50), now());
        let LockResult::Acquired { lock, .. } = r else {
            panic!()
        };
        let mut fresh = Lockbox::new();
        let t1 = TaskId::new("t1").unwrap();
        fresh.restore(&t1, lock.clone());
        fresh.restore(&t1, lock.clone());
        assert_eq!(fresh.locks_of(&t1), std::slice::from_ref(&lock));
        let (other, _) = fresh.try_lock(&req("t2", "g2", DAY1, LockType::Exclusive, 50), now());
        assert_eq!(
            other,
            LockResult::Conflict,
            "a restored lock still excludes"
        );
        let mut revoked = Lockbox::new();
        revoked.restore(
            &t1,
            TaskLock {
                revoked: true,
                ..lock
            },
        );
        let (again, _) = revoked.try_lock(&req("t1", "g", DAY1, LockType::Exclusive, 50), now());
        assert_eq!(again, LockResult::Revoked);
    }

    #[test]
    fn higher_priority_revokes_and_the_holder_learns_it() {
        let mut b = Lockbox::new();
        b.try_lock(&req("low", "gl", DAY1, LockType::Exclusive, 25), now());
        let (high, changes) = b.try_lock(
            &req(
                "high",
                "gh",
                "2024-01-01T12:00/2024-01-03",
                LockType::Exclusive,
                75,
            ),
            now(),
        );
        let LockResult::Acquired { lock, .. } = high else {
            panic!("{high:?}")
        };
        assert_eq!(changes.revoked.len(), 1);
        assert!(changes.revoked[0].revoked);
        assert!(
            lock.version > changes.revoked[0].version,
            "newer lock, larger version"
        );
        assert_eq!(
            b.holders(&changes.revoked[0]),
            [TaskId::new("low").unwrap()],
            "the revoked holder can be told"
        );
        let (low_again, _) = b.try_lock(&req("low", "gl", DAY1, LockType::Exclusive, 25), now());
        assert_eq!(low_again, LockResult::Revoked);
        let err = b
            .check_publishable(
                &TaskId::new("low").unwrap(),
                &[Interval::parse(DAY1).unwrap()],
            )
            .unwrap_err();
        assert!(matches!(err, NotPublishable::Revoked { .. }), "{err}");
        // Only *strictly* lower priorities are revoked; one unrevocable conflict means waiting.
        let (mid, _) = b.try_lock(&req("mid", "gm", DAY1, LockType::Exclusive, 75), now());
        assert_eq!(mid, LockResult::Conflict);
    }

    #[test]
    fn a_group_shares_its_lock_and_shared_locks_coexist() {
        let mut b = Lockbox::new();
        let (a, _) = b.try_lock(
            &req("a1", "kafka_wiki", DAY1, LockType::Exclusive, 75),
            now(),
        );
        let (a2, _) = b.try_lock(
            &req(
                "a2",
                "kafka_wiki",
                "2024-01-01T06:00/2024-01-01T07:00",
                LockType::Exclusive,
                75,
            ),
            now(),
        );
        let (
            LockResult::Acquired {
                lock: l1,
                new: true,
            },
            LockResult::Acquired {
                lock: l2,
                new: true,
            },
        ) = (a, a2)
        else {
            panic!()
        };
        assert_eq!(l1, l2, "the group's enclosing lock is shared");
        // Released by one task, kept by the other.
        assert!(b
            .unlock(&TaskId::new("a1").unwrap(), &Interval::parse(DAY1).unwrap())
            .is_none());
        assert!(b
            .unlock(&TaskId::new("a2").unwrap(), &Interval::parse(DAY1).unwrap())
            .is_some());

        let (s1, _) = b.try_lock(&req("s1", "gs1", DAY1, LockType::Shared, 50), now());
        let (s2, _) = b.try_lock(&req("s2", "gs2", DAY1, LockType::Shared, 50), now());
        assert!(
            matches!(s1, LockResult::Acquired { .. }) && matches!(s2, LockResult::Acquired { .. })
        );
        let (x, _) = b.try_lock(&req("x", "gx", DAY1, LockType::Exclusive, 50), now());
        assert_eq!(x, LockResult::Conflict);
        let err = b
            .check_publishable(
                &TaskId::new("s1").unwrap(),
                &[Interval::parse(DAY1).unwrap()],
            )
            .unwrap_err();
        assert!(matches!(err, NotPublishable::SharedOnly { .. }), "{err}");
    }

    #[test]
    fn versions_grow_even_if_the_clock_does_not() {
        let mut b = Lockbox::new();
        let (LockResult::Acquired { lock: first, .. }, _) =
            b.try_lock(&req("t1", "g1", DAY1, LockType::Exclusive, 25), now())
        else {
            panic!()
        };
        let earlier = parse_instant("2020-01-01T00:00:00Z").unwrap();
        let (LockResult::Acquired { lock: second, .. }, _) =
            b.try_lock(&req("t2", "g2", DAY1, LockType::Exclusive, 75), earlier)
        else {
            panic!()
        };
        assert!(
            second.version > first.version,
            "{} > {}",
            second.version,
            first.version
        );
        // A re-acquired lock keeps its stored version.
        let mut b2 = Lockbox::new();
        let mut r = req("t9", "g9", DAY1, LockType::Exclusive, 50);
        r.preferred_version = Some("2023-03-03T00:00:00.000Z".into());
        let (LockResult::Acquired { lock, .. }, _) = b2.try_lock(&r, now()) else {
            panic!()
        };
        assert_eq!(lock.version, "2023-03-03T00:00:00.000Z");
    }

    #[test]
    fn publishing_needs_a_covering_lock() {
        let mut b = Lockbox::new();
        let t = TaskId::new("t").unwrap();
        assert!(b
            .check_publishable(&t, &[Interval::parse(DAY1).unwrap()])
            .is_err());
        b.try_lock(
            &req("t", "g", "2024-01-01/2024-01-03", LockType::Exclusive, 50),
            now(),
        );
        assert!(b
            .check_publishable(&t, &[Interval::parse(DAY1).unwrap()])
            .is_ok());
        assert!(b
            .check_publishable(&t, &[Interval::parse("2024-01-02/2024-01-04").unwrap()])
            .is_err());
    }
    #[test]
    fn append_and_replace_locks_coexist_as_druid_allows() {
        let mut b = Lockbox::new();
        let hour = "2024-01-01T05:00/2024-01-01T06:00";
        let (a1, _) = b.try_lock(&req("k1", "kafka", hour, LockType::Append, 75), now());
        let LockResult::Acquired { lock: append, .. } = a1 else {
            panic!("{a1:?}")
        };
        assert_eq!(
            append.version, APPEND_LOCK_VERSION,
            "appends write into existing versions"
        );
        // Another appender of the same hour, and a REPLACE of the day around it: all granted.
        let (a2, _) = b.try_lock(&req("k2", "kafka2", hour, LockType::Append, 75), now());
        assert!(matches!(a2, LockResult::Acquired { .. }), "{a2:?}");
        let (r, changes) = b.try_lock(&req("c1", "compact", DAY1, LockType::Replace, 25), now());
        let LockResult::Acquired { lock: replace, .. } = r else {
            panic!("{r:?}")
        };
        assert!(changes.revoked.is_empty(), "nothing revoked: they coexist");
        assert!(replace.version > append.version);
        assert_eq!(
            b.replace_lock_covering("wiki", &Interval::parse(hour).unwrap(), "kafka")
                .map(|l| l.group_id.as_str()),
            Some("compact"),
            "a segment appended in the hour is carried into the replace"
        );
        assert!(b
            .replace_lock_covering("wiki", &Interval::parse(hour).unwrap(), "compact")
            .is_none());
        // lockedIntervals/v2 with useConcurrentLocks leaves the APPEND locks out.
        let filter = |ignore_append_locks| LockFilter {
            data_source: "wiki".into(),
            min_priority: 50,
            intervals: None,
            ignore_append_locks,
        };
        assert_eq!(
            b.locked_intervals(&[filter(false)])["wiki"].len(),
            1,
            "the appends' hour"
        );
        assert!(b.locked_intervals(&[filter(true)]).is_empty());
        // One REPLACE at a time, and none beside EXCLUSIVE or SHARED work.
        let (r2, _) = b.try_lock(&req("c2", "compact2", DAY1, LockType::Replace, 25), now());
        assert_eq!(r2, LockResult::Conflict);
        let (x, _) = b.try_lock(&req("x", "gx", hour, LockType::Exclusive, 25), now());
        assert_eq!(x, LockResult::Conflict);
        // An append reaching outside the REPLACE's interval cannot be carried into it
        // (and at no higher priority, it cannot revoke it).
        let (wide, _) = b.try_lock(
            &req(
                "k3",
                "kafka3",
                "2024-01-01T23:00/2024-01-02T01:00",
                LockType::Append,
                25,
            ),
            now(),
        );
        assert_eq!(wide, LockResult::Conflict);
        // Publishing is allowed under APPEND and REPLACE locks.
        for t in ["k1", "c1"] {
            assert!(b
                .check_publishable(&TaskId::new(t).unwrap(), &[Interval::parse(hour).unwrap()])
                .is_ok());
        }
    }

    #[test]
    fn a_replace_needs_its_appends_inside_it_and_revokes_only_what_it_cannot_live_with() {
        let mut b = Lockbox::new();
        b.try_lock(
            &req(
                "k1",
                "kafka",
                "2024-01-01T23:00/2024-01-02T01:00",
                LockType::Append,
                75,
            ),
            now(),
        );
        let (r, _) = b.try_lock(&req("c1", "compact", DAY1, LockType::Replace, 25), now());
        assert_eq!(r, LockResult::Conflict, "the append sticks out of the day");

        let mut b = Lockbox::new();
        b.try_lock(
            &req(
                "k1",
                "kafka",
                "2024-01-01T05:00/2024-01-01T06:00",
                LockType::Append,
                25,
            ),
            now(),
        );
        b.try_lock(
            &req(
                "old",
                "gold",
                "2024-01-01T07:00/2024-01-01T08:00",
                LockType::Exclusive,
                25,
            ),
            now(),
        );
        let (r, changes) = b.try_lock(&req("c1", "compact", DAY1, LockType::Replace, 50), now());
        assert!(matches!(r, LockResult::Acquired { .. }), "{r:?}");
        assert_eq!(changes.revoked.len(), 1);
        assert_eq!(
            changes.revoked[0].group_id, "gold",
            "the append is left alone"
        );
    }
}
