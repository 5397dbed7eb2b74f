//! Worker selection (Druid's WorkerSelectStrategy): pure functions over plain data.

use drover_core::{Task, WorkerHost};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SelectStrategy {
    /// The worker with the most free capacity (Druid's default).
    EqualDistribution,
    /// The busiest worker that still has room, so whole workers stay idle.
    FillCapacity,
}

/// What the strategy sees of one worker.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub host: &'a WorkerHost,
    pub capacity: i32,
    pub used: i32,
    pub version: &'a str,
    /// Availability groups of the tasks it has.
    pub availability_groups: Vec<&'a str>,
    /// It has an assignment it has not acknowledged yet (at most one in flight per worker).
    pub awaiting_ack: bool,
    /// Announced right now (a vanished worker waits for cleanup but takes nothing new).
    pub announced: bool,
}

/// Druid's `canRunTask` plus the version check: enough free capacity, no task of the same
/// availability group, a version at least `min_version` compared as strings.
pub fn can_run(c: &Candidate<'_>, task: &Task, min_version: &str) -> bool {
    c.announced
        && !c.awaiting_ack
        && c.capacity - c.used >= task.resource.required_capacity
        && !c
            .availability_groups
            .contains(&task.resource.availability_group.as_str())
        && c.version >= min_version
}

/// The worker to run `task` on, or `None` to keep it pending. Ties go to the smallest host name,
/// so choices are reproducible.
pub fn select_worker<'a>(
    strategy: SelectStrategy,
    task: &Task,
    min_version: &str,
    candidates: &[Candidate<'a>],
) -> Option<&'a WorkerHost> {
    let eligible = candidates.iter().filter(|c| can_run(c, task, min_version));
    let best = match strategy {
        SelectStrategy::EqualDistribution => eligible.min_by(|a, b| {
            (b.capacity - b.used)
                .cmp(&(a.capacity - a.used))
                .then(a.host.cmp(b.host))
        }),
        SelectStrategy::FillCapacity => {
            eligible.min_by(|a, b| b.used.cmp(&a.used).then(a.host.cmp(b.host)))
        }
    };
    best.map(|c| c.host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(json: &str) -> Task {
        Task::from_json_bytes(json.as_bytes()).unwrap()
    }

    fn cand<'a>(host: &'a WorkerHost, capacity: i32, used: i32) -> Candidate<'a> {
        Candidate {
            host,
            capacity,
            used,
            version: "0",
            availability_groups: vec![],
            awaiting_ack: false,
            announced: true,
        }
    }

    #[test]
    fn equal_distribution_prefers_most_free() {
        let (a, b) = (
            WorkerHost::new("a:1").unwrap(),
            WorkerHost::new("b:1").unwrap(),
        );
        let t = task(r#"{"type":"noop","id":"t"}"#);
        let cs = [cand(&a, 3, 2), cand(&b, 3, 1)];
        assert_eq!(
            select_worker(SelectStrategy::EqualDistribution, &t, "0", &cs),
            Some(&b)
        );
        let tie = [cand(&b, 3, 1), cand(&a, 3, 1)];
        assert_eq!(
            select_worker(SelectStrategy::EqualDistribution, &t, "0", &tie),
            Some(&a)
        );
    }

    #[test]
    fn fill_capacity_prefers_busiest_with_room() {
        let (a, b) = (
            WorkerHost::new("a:1").unwrap(),
            WorkerHost::new("b:1").unwrap(),
        );
        let t = task(r#"{"type":"noop","id":"t"}"#);
        let cs = [cand(&a, 3, 2), cand(&b, 3, 1)];
        assert_eq!(
            select_worker(SelectStrategy::FillCapacity, &t, "0", &cs),
            Some(&a)
        );
        let full = [cand(&a, 3, 3), cand(&b, 3, 1)];
        assert_eq!(
            select_worker(SelectStrategy::FillCapacity, &t, "0", &full),
            Some(&b)
        );
    }

    #[test]
    fn respects_capacity_groups_acks_versions_and_announcement() {
        let a = WorkerHost::new("a:1").unwrap();
        let t = task(
            r#"{"type":"noop","id":"t","resource":{"availabilityGroup":"g","requiredCapacity":2}}"#,
        );
        let mut c = cand(&a, 3, 2);
        assert!(!can_run(&c, &t, "0"), "needs 2 slots, 1 free");
        c.used = 1;
        assert!(can_run(&c, &t, "0"));
        c.availability_groups = vec!["g"];
        assert!(!can_run(&c, &t, "0"), "same availability group");
        c.availability_groups = vec![];
        c.awaiting_ack = true;
        assert!(
            !can_run(&c, &t, "0"),
            "one unacknowledged assignment at a time"
        );
        c.awaiting_ack = false;
        c.version = "";
        assert!(
            !can_run(&c, &t, "0"),
            "disabled workers announce version \"\""
        );
        c.version = "10";
        assert!(
            !can_run(&c, &t, "9"),
            "versions compare as strings, as in Druid"
        );
        c.version = "0";
        c.announced = false;
        assert!(!can_run(&c, &t, "0"));
        assert_eq!(
            select_worker(SelectStrategy::EqualDistribution, &t, "0", &[c]),
            None
        );
    }
}
