//! The decisions of a Kafka supervisor's run (Druid's `runInternal`) as pure functions: what the
//! supervisor observed and the time go in, what to do comes out; `kafka.rs` gathers the
//! observations (Kafka, the store, the tasks' chat API) and carries the decisions out. Offsets
//! and checkpoints are decided in `groups.rs`.

use std::collections::{BTreeMap, BTreeSet};
use tokio::time::Instant;

use chrono::{DateTime, Utc};
use drover_core::{TaskGroupId, TaskId, TaskState};

/// What the supervisor is doing with its reading groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reading: groups finish when their `taskDuration` is over.
    Reading,
    /// Suspended: every group finishes and publishes, nothing new starts.
    Suspended,
    /// Stopping (terminated, or replaced by a new spec): every group finishes now, without
    /// waiting for earlier groups to publish.
    Stopping,
}

/// Druid's `checkTaskDuration`: the reading groups to finish now. A group finishes when its
/// duration is over (or the supervisor winds down), but not while an earlier group of the same
/// partitions is still publishing, so that offsets commit in order.
pub fn groups_to_finish(
    reading: impl IntoIterator<Item = (TaskGroupId, DateTime<Utc>)>,
    still_publishing: &BTreeSet<TaskGroupId>,
    mode: Mode,
    task_duration: chrono::Duration,
    now: DateTime<Utc>,
) -> Vec<TaskGroupId> {
    reading
        .into_iter()
        .filter(|(group, started)| {
            let over = mode != Mode::Reading || now - *started >= task_duration;
            let waits = still_publishing.contains(group) && mode != Mode::Stopping;
            over && !waits
        })
        .map(|(group, _)| group)
        .collect()
}

/// A publishing task group as `pending_completion` sees it.
#[derive(Debug, Clone)]
pub struct Publishing {
    pub tasks: Vec<(TaskId, TaskState)>,
    /// `completionTimeout` after the group stopped reading.
    pub deadline: Option<Instant>,
}

/// What to do with one partition group's publishing task groups (oldest first).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// Replicas still running in a group another replica published for: stop them.
    pub stop: Vec<TaskId>,
    /// Indexes of the groups still publishing, to keep watching.
    pub keep: Vec<usize>,
    /// A group failed (every replica failed, or it ran past its deadline): this group, the
    /// later ones, and the reading group of these partitions start again from the stored
    /// offsets. `kill` holds the running tasks of the failed and later publishing groups.
    pub failed: bool,
    pub kill: Vec<TaskId>,
}

/// Druid's `checkPendingCompletionTasks` for one partition group.
pub fn pending_completion(groups: &[Publishing], now: Instant) -> Completion {
    let running = |g: &Publishing| -> Vec<TaskId> {
        g.tasks
            .iter()
            .filter(|(_, s)| *s == TaskState::Running)
            .map(|(id, _)| id.clone())
            .collect()
    };
    let mut out = Completion::default();
    for (i, group) in groups.iter().enumerate() {
        if group.tasks.iter().any(|(_, s)| *s == TaskState::Success) {
            out.stop.extend(running(group));
            continue;
        }
        let all_failed = group.tasks.iter().all(|(_, s)| *s == TaskState::Failed);
        let late = group.deadline.is_some_and(|d| now > d);
        if all_failed || late {
            out.failed = true;
            out.kill = groups[i..].iter().flat_map(running).collect();
            return out;
        }
        out.keep.push(i);
    }
    out
}

/// What a reading group's task statuses mean (Druid's `checkCurrentTaskState`).
#[derive(Debug, PartialEq, Eq)]
pub enum ReadingState {
    /// Carry on; these failed replicas leave the group (new ones are created in their place).
    Reading { failed: Vec<TaskId> },
    /// A replica succeeded: the group is done reading and its partitions need a new group.
    Done,
}

pub fn reading_state(tasks: &BTreeMap<TaskId, TaskState>) -> ReadingState {
    if tasks.values().any(|s| *s == TaskState::Success) {
        return ReadingState::Done;
    }
    ReadingState::Reading {
        failed: tasks
            .iter()
            .filter(|(_, s)| **s == TaskState::Failed)
            .map(|(id, _)| id.clone())
            .collect(),
    }
}

/// The groups that read any of `partitions`: the ones a `resetOffsets` restarts.
pub fn groups_reading<V>(
    partition_groups: &BTreeMap<TaskGroupId, BTreeMap<i32, V>>,
    partitions: &BTreeSet<i32>,
) -> Vec<TaskGroupId> {
    partition_groups
        .iter()
        .filter(|(_, parts)| parts.keys().any(|p| partitions.contains(p)))
        .map(|(g, _)| *g)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(s: &str) -> TaskId {
        TaskId::new(s).unwrap()
    }

    fn g(id: u32) -> TaskGroupId {
        TaskGroupId(id)
    }

    fn at(s: &str) -> DateTime<Utc> {
        drover_core::time::parse_iso(s).unwrap()
    }

    #[test]
    fn groups_roll_over_at_their_duration_in_order_of_publishing() {
        let hour = chrono::Duration::hours(1);
        let reading = [
            (g(0), at("2026-01-01T00:00:00Z")),
            (g(1), at("2026-01-01T00:30:00Z")),
        ];
        let none = BTreeSet::new();
        // 59 minutes in: nothing is due.
        let now = at("2026-01-01T00:59:00Z");
        assert!(groups_to_finish(reading, &none, Mode::Reading, hour, now).is_empty());
        // One hour in: group 0 is due, group 1 is not.
        let now = at("2026-01-01T01:00:00Z");
        assert_eq!(
            groups_to_finish(reading, &none, Mode::Reading, hour, now),
            [g(0)]
        );
        // Group 0's previous group is still publishing: it waits.
        let publishing = BTreeSet::from([g(0)]);
        assert!(groups_to_finish(reading, &publishing, Mode::Reading, hour, now).is_empty());
        // Suspending finishes everything that may finish; stopping does not wait at all.
        let early = at("2026-01-01T00:31:00Z");
        assert_eq!(
            groups_to_finish(reading, &publishing, Mode::Suspended, hour, early),
            [g(1)]
        );
        assert_eq!(
            groups_to_finish(reading, &publishing, Mode::Stopping, hour, early),
            [g(0), g(1)]
        );
    }

    /// On paused time: the supervisor's deadlines are tokio instants, so a test moves the clock
    /// past `completionTimeout` instead of waiting for it.
    #[tokio::test(start_paused = true)]
    async fn a_publishing_group_succeeds_waits_or_fails_with_the_later_ones() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let group = |tasks: &[(&str, TaskState)], deadline| Publishing {
            tasks: tasks.iter().map(|(t, s)| (id(t), *s)).collect(),
            deadline: Some(deadline),
        };
        // One replica published: the other is stopped, nothing kept.
        let done = pending_completion(
            &[group(
                &[("a1", TaskState::Success), ("a2", TaskState::Running)],
                later,
            )],
            now,
        );
        assert_eq!(done.stop, [id("a2")]);
        assert!(done.keep.is_empty() && !done.failed);
        // Still publishing within completionTimeout: kept.
        let waiting = pending_completion(&[group(&[("b1", TaskState::Running)], later)], now);
        assert_eq!(waiting.keep, [0]);
        // Past completionTimeout: it and every later group fail, their tasks are killed.
        let groups = [
            group(&[("c1", TaskState::Running)], now + Duration::from_secs(30)),
            group(
                &[("d1", TaskState::Running), ("d2", TaskState::Failed)],
                later,
            ),
        ];
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(!pending_completion(&groups, Instant::now()).failed);
        tokio::time::advance(Duration::from_millis(1)).await;
        let late = pending_completion(&groups, Instant::now());
        assert!(late.failed);
        assert_eq!(late.kill, [id("c1"), id("d1")]);
        assert!(late.keep.is_empty());
        // Every replica failed: failed at once, however early.
        let failed = pending_completion(&[group(&[("e1", TaskState::Failed)], later)], now);
        assert!(failed.failed && failed.kill.is_empty());
    }

    #[test]
    fn failed_replicas_are_replaced_and_a_success_ends_the_group() {
        let tasks = BTreeMap::from([
            (id("r1"), TaskState::Running),
            (id("r2"), TaskState::Failed),
        ]);
        assert_eq!(
            reading_state(&tasks),
            ReadingState::Reading {
                failed: vec![id("r2")]
            }
        );
        let tasks = BTreeMap::from([
            (id("r1"), TaskState::Success),
            (id("r2"), TaskState::Running),
        ]);
        assert_eq!(reading_state(&tasks), ReadingState::Done);
    }

    #[test]
    fn a_reset_of_some_partitions_restarts_the_groups_reading_them() {
        let groups: BTreeMap<TaskGroupId, BTreeMap<i32, ()>> = BTreeMap::from([
            (g(0), BTreeMap::from([(0, ()), (2, ())])),
            (g(1), BTreeMap::from([(1, ()), (3, ())])),
        ]);
        assert_eq!(groups_reading(&groups, &BTreeSet::from([3])), [g(1)]);
        assert_eq!(
            groups_reading(&groups, &BTreeSet::from([0, 1])),
            [g(0), g(1)]
        );
        assert!(groups_reading(&groups, &BTreeSet::from([7])).is_empty());
    }
}
