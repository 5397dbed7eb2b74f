//! Worker selection (Druid's WorkerSelectStrategy and WorkerSelectUtils): which worker runs a
//! task. Pure functions over plain data; the dynamic config (`POST /worker`) chooses the rules.

use std::collections::{HashMap, HashSet};

use drover_core::WorkerHost;
use drover_task::Task;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How to pick among the workers that can run a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SelectStrategy {
    /// The worker with the most free capacity (Druid's default).
    EqualDistribution,
    /// The busiest worker that still has room, so whole workers stay idle.
    FillCapacity,
}

/// `affinityConfig`: data sources tied to workers (`host:port`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffinityConfig {
    #[serde(default)]
    pub affinity: HashMap<String, Vec<String>>,
    /// Strong: a data source waits for its own workers rather than use others.
    #[serde(default)]
    pub strong: bool,
}

/// `workerCategorySpec`: task types steered to worker categories.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerCategorySpec {
    #[serde(default)]
    pub category_map: HashMap<String, CategoryConfig>,
    #[serde(default)]
    pub strong: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CategoryConfig {
    #[serde(default)]
    pub default_category: Option<String>,
    #[serde(default)]
    pub category_affinity: HashMap<String, String>,
}

/// `selectStrategy` of the dynamic worker config, polymorphic on `type` as in Druid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SelectStrategySpec {
    #[serde(
        rename = "fillCapacity",
        alias = "fillCapacityWithAffinity",
        rename_all = "camelCase"
    )]
    FillCapacity {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        affinity_config: Option<AffinityConfig>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_limits: Option<Value>,
    },
    #[serde(
        rename = "equalDistribution",
        alias = "equalDistributionWithAffinity",
        rename_all = "camelCase"
    )]
    EqualDistribution {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        affinity_config: Option<AffinityConfig>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_limits: Option<Value>,
    },
    #[serde(rename = "fillCapacityWithCategorySpec", rename_all = "camelCase")]
    FillCapacityWithCategorySpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker_category_spec: Option<WorkerCategorySpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_limits: Option<Value>,
    },
    #[serde(rename = "equalDistributionWithCategorySpec", rename_all = "camelCase")]
    EqualDistributionWithCategorySpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker_category_spec: Option<WorkerCategorySpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_limits: Option<Value>,
    },
}

/// Druid's WorkerBehaviorConfig, stored in `druid_config` under `worker.config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerBehaviorConfig {
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
    pub select_strategy: SelectStrategySpec,
    #[serde(default)]
    pub auto_scaler: Option<Value>,
}

fn default_type() -> String {
    "default".into()
}

pub const WORKER_CONFIG_KEY: &str = "worker.config";

/// Why a posted worker config is refused; the message names the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WorkerConfigError(pub String);

impl From<String> for WorkerConfigError {
    fn from(message: String) -> Self {
        WorkerConfigError(message)
    }
}

impl From<&str> for WorkerConfigError {
    fn from(message: &str) -> Self {
        WorkerConfigError(message.to_string())
    }
}

impl WorkerBehaviorConfig {
    /// Parses a posted config; errors name the field and the problem. A `selectStrategy`
    /// without `type` means `equalDistribution`, as in Druid.
    pub fn parse(body: &[u8]) -> Result<WorkerBehaviorConfig, WorkerConfigError> {
        let mut v: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
        let obj = v
            .as_object_mut()
            .ok_or("the worker config must be a JSON object")?;
        match obj.get("type").and_then(Value::as_str) {
            None | Some("default") => {}
            Some(other) => {
                return Err(format!(
                    "unknown worker config type [{other}]; Drover supports [default]"
                )
                .into())
            }
        }
        let strategy = obj
            .entry("selectStrategy")
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
            .ok_or("[selectStrategy] must be a JSON object")?;
        match strategy.get("type").and_then(Value::as_str) {
            None => {
                strategy.insert("type".into(), "equalDistribution".into());
            }
            Some("javascript") => {
                return Err("[selectStrategy.type] javascript is not supported".into())
            }
            Some(_) => {}
        }
        serde_json::from_value(v).map_err(|e| format!("invalid worker config: {e}").into())
    }
}

/// The rules in force: a base strategy plus affinity or category steering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub strategy: SelectStrategy,
    pub affinity: Option<AffinityConfig>,
    pub category: Option<WorkerCategorySpec>,
}

impl Selection {
    pub fn plain(strategy: SelectStrategy) -> Self {
        Selection {
            strategy,
            affinity: None,
            category: None,
        }
    }
}

impl From<&SelectStrategySpec> for Selection {
    fn from(spec: &SelectStrategySpec) -> Self {
        use SelectStrategySpec::*;
        match spec {
            FillCapacity {
                affinity_config, ..
            } => Selection {
                strategy: SelectStrategy::FillCapacity,
                affinity: affinity_config.clone(),
                category: None,
            },
            EqualDistribution {
                affinity_config, ..
            } => Selection {
                strategy: SelectStrategy::EqualDistribution,
                affinity: affinity_config.clone(),
                category: None,
            },
            FillCapacityWithCategorySpec {
                worker_category_spec,
                ..
            } => Selection {
                strategy: SelectStrategy::FillCapacity,
                affinity: None,
                category: worker_category_spec.clone(),
            },
            EqualDistributionWithCategorySpec {
                worker_category_spec,
                ..
            } => Selection {
                strategy: SelectStrategy::EqualDistribution,
                affinity: None,
                category: worker_category_spec.clone(),
            },
        }
    }
}

/// What the strategy sees of one worker.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub host: &'a WorkerHost,
    pub capacity: i32,
    pub used: i32,
    pub version: &'a str,
    pub category: &'a str,
    /// Availability groups of the tasks it has.
    pub availability_groups: Vec<&'a str>,
    /// It has an assignment it has not acknowledged yet (at most one in flight per worker): a
    /// task that would go there waits for the acknowledgement rather than going elsewhere, as
    /// Druid's one-assignment-at-a-time runner behaves.
    pub awaiting_ack: bool,
    /// Failed too many tasks in a row lately (see docs/architecture.md), or cooling down after a failed assignment.
    pub blacklisted: bool,
    /// Announced right now (a vanished worker waits for cleanup but takes nothing new).
    pub announced: bool,
}

/// Druid's `canRunTask` plus the version check: enough free capacity, no task of the same
/// availability group, a version at least `min_version` compared as strings.
pub fn can_run(c: &Candidate<'_>, task: &Task, min_version: &str) -> bool {
    c.announced
        && !c.blacklisted
        && c.capacity - c.used >= task.resource.required_capacity
        && !c
            .availability_groups
            .contains(&task.resource.availability_group.as_str())
        && c.version >= min_version
}

fn pick<'a, 'b>(
    strategy: SelectStrategy,
    eligible: impl Iterator<Item = &'b Candidate<'a>>,
) -> Option<&'b Candidate<'a>>
where
    'a: 'b,
{
    match strategy {
        SelectStrategy::EqualDistribution => eligible.min_by(|a, b| {
            (b.capacity - b.used)
                .cmp(&(a.capacity - a.used))
                .then(a.host.cmp(b.host))
        }),
        SelectStrategy::FillCapacity => {
            eligible.min_by(|a, b| b.used.cmp(&a.used).then(a.host.cmp(b.host)))
        }
    }
}

/// The worker to run `task` on, or `None` to keep it pending. Ties go to the smallest host name,
/// so choices are reproducible.
pub fn select_worker<'a>(
    selection: &Selection,
    task: &Task,
    min_version: &str,
    candidates: &[Candidate<'a>],
) -> Option<&'a WorkerHost> {
    select_candidate(selection, task, min_version, candidates)
        .filter(|c| !c.awaiting_ack)
        .map(|c| c.host)
}

fn select_candidate<'a, 'b>(
    selection: &Selection,
    task: &Task,
    min_version: &str,
    candidates: &'b [Candidate<'a>],
) -> Option<&'b Candidate<'a>> {
    let runnable: Vec<&Candidate<'a>> = candidates
        .iter()
        .filter(|c| can_run(c, task, min_version))
        .collect();
    let strategy = selection.strategy;

    if let Some(spec) = &selection.category {
        if let Some(config) = spec.category_map.get(&task.task_type) {
            let preferred = config
                .category_affinity
                .get(task.data_source.as_str())
                .or(config.default_category.as_ref());
            if let Some(preferred) = preferred {
                let chosen = pick(
                    strategy,
                    runnable.iter().copied().filter(|c| c.category == preferred),
                );
                if chosen.is_some() || spec.strong {
                    return chosen;
                }
            }
        }
        return pick(strategy, runnable.into_iter());
    }

    if let Some(affinity) = &selection.affinity {
        if let Some(hosts) = affinity
            .affinity
            .get(task.data_source.as_str())
            .filter(|h| !h.is_empty())
        {
            let chosen = pick(
                strategy,
                runnable
                    .iter()
                    .copied()
                    .filter(|c| hosts.iter().any(|h| h == c.host.as_str())),
            );
            if chosen.is_some() || affinity.strong {
                return chosen;
            }
        }
        // Workers with an affinity are kept for their data sources.
        let reserved: HashSet<&str> = affinity
            .affinity
            .values()
            .flatten()
            .map(String::as_str)
            .collect();
        return pick(
            strategy,
            runnable
                .into_iter()
                .filter(|c| !reserved.contains(c.host.as_str())),
        );
    }

    pick(strategy, runnable.into_iter())
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
            category: drover_core::DEFAULT_WORKER_CATEGORY,
            availability_groups: vec![],
            awaiting_ack: false,
            blacklisted: false,
            announced: true,
        }
    }

    fn hosts() -> (WorkerHost, WorkerHost, WorkerHost) {
        (
            WorkerHost::new("a:1").unwrap(),
            WorkerHost::new("b:1").unwrap(),
            WorkerHost::new("c:1").unwrap(),
        )
    }

    const EQUAL: Selection = Selection {
        strategy: SelectStrategy::EqualDistribution,
        affinity: None,
        category: None,
    };
    const FILL: Selection = Selection {
        strategy: SelectStrategy::FillCapacity,
        affinity: None,
        category: None,
    };

    #[test]
    fn equal_distribution_prefers_most_free() {
        let (a, b, _) = hosts();
        let t = task(r#"{"type":"noop","id":"t"}"#);
        assert_eq!(
            select_worker(&EQUAL, &t, "0", &[cand(&a, 3, 2), cand(&b, 3, 1)]),
            Some(&b)
        );
        assert_eq!(
            select_worker(&EQUAL, &t, "0", &[cand(&b, 3, 1), cand(&a, 3, 1)]),
            Some(&a),
            "ties: smallest host"
        );
    }

    #[test]
    fn fill_capacity_prefers_busiest_with_room() {
        let (a, b, _) = hosts();
        let t = task(r#"{"type":"noop","id":"t"}"#);
        assert_eq!(
            select_worker(&FILL, &t, "0", &[cand(&a, 3, 2), cand(&b, 3, 1)]),
            Some(&a)
        );
        assert_eq!(
            select_worker(&FILL, &t, "0", &[cand(&a, 3, 3), cand(&b, 3, 1)]),
            Some(&b)
        );
    }

    #[test]
    fn respects_capacity_groups_acks_versions_and_announcement() {
        let (a, _, _) = hosts();
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
        c.blacklisted = true;
        assert!(!can_run(&c, &t, "0"), "blacklisted");
        c.blacklisted = false;
        c.announced = false;
        assert!(!can_run(&c, &t, "0"));
        assert_eq!(select_worker(&EQUAL, &t, "0", &[c]), None);
    }

    fn affinity(strong: bool) -> Selection {
        Selection {
            affinity: Some(AffinityConfig {
                affinity: [("wiki".to_string(), vec!["a:1".to_string()])]
                    .into_iter()
                    .collect(),
                strong,
            }),
            ..EQUAL
        }
    }

    #[test]
    fn affinity_steers_data_sources_and_reserves_their_workers() {
        let (a, b, _) = hosts();
        let wiki = task(r#"{"type":"noop","id":"t","dataSource":"wiki"}"#);
        let other = task(r#"{"type":"noop","id":"u","dataSource":"other"}"#);
        let cs = [cand(&a, 3, 2), cand(&b, 3, 0)];
        assert_eq!(
            select_worker(&affinity(false), &wiki, "0", &cs),
            Some(&a),
            "its own worker, though busier"
        );
        assert_eq!(select_worker(&affinity(false), &other, "0", &cs), Some(&b));
        // Only the reserved worker has room: other data sources wait.
        let only_a = [cand(&a, 3, 0), cand(&b, 3, 3)];
        assert_eq!(select_worker(&affinity(false), &other, "0", &only_a), None);
        // Its own worker is full: weak affinity falls back to non-affinity workers, strong waits.
        let a_full = [cand(&a, 3, 3), cand(&b, 3, 0)];
        assert_eq!(
            select_worker(&affinity(false), &wiki, "0", &a_full),
            Some(&b)
        );
        assert_eq!(select_worker(&affinity(true), &wiki, "0", &a_full), None);
        // Its own worker has room but has not acknowledged its last assignment yet: the task
        // waits for it, even with weak affinity (one assignment in flight per worker).
        let mut a_acking = [cand(&a, 3, 1), cand(&b, 3, 0)];
        a_acking[0].awaiting_ack = true;
        assert_eq!(select_worker(&affinity(false), &wiki, "0", &a_acking), None);
        a_acking[0].awaiting_ack = false;
        assert_eq!(
            select_worker(&affinity(false), &wiki, "0", &a_acking),
            Some(&a)
        );
    }

    fn categories(strong: bool) -> Selection {
        let config = CategoryConfig {
            default_category: Some("hot".into()),
            category_affinity: [("wiki".to_string(), "cold".to_string())]
                .into_iter()
                .collect(),
        };
        Selection {
            category: Some(WorkerCategorySpec {
                category_map: [("noop".to_string(), config)].into_iter().collect(),
                strong,
            }),
            ..FILL
        }
    }

    #[test]
    fn category_spec_steers_task_types() {
        let (a, b, c) = hosts();
        let mut hot = cand(&a, 3, 0);
        hot.category = "hot";
        let mut cold = cand(&b, 3, 0);
        cold.category = "cold";
        let plain = cand(&c, 3, 2);
        let noop = task(r#"{"type":"noop","id":"t"}"#);
        let wiki = task(r#"{"type":"noop","id":"u","dataSource":"wiki"}"#);
        let cs = [hot.clone(), cold.clone(), plain.clone()];
        assert_eq!(
            select_worker(&categories(false), &noop, "0", &cs),
            Some(&a),
            "default category"
        );
        assert_eq!(
            select_worker(&categories(false), &wiki, "0", &cs),
            Some(&b),
            "per data source"
        );
        // No worker of the category: weak falls back to any runnable worker, strong waits.
        let no_hot = [cold.clone(), plain.clone()];
        assert_eq!(
            select_worker(&categories(false), &noop, "0", &no_hot),
            Some(&c),
            "fillCapacity: busiest"
        );
        assert_eq!(select_worker(&categories(true), &noop, "0", &no_hot), None);
    }

    #[test]
    fn parses_druid_worker_configs() {
        let c = WorkerBehaviorConfig::parse(br#"{"selectStrategy":{"type":"fillCapacityWithAffinity","affinityConfig":{"affinity":{"wiki":["a:1"]},"strong":true}}}"#).unwrap();
        let sel = Selection::from(&c.select_strategy);
        assert_eq!(sel.strategy, SelectStrategy::FillCapacity);
        assert!(sel.affinity.unwrap().strong);
        let c = WorkerBehaviorConfig::parse(br#"{"type":"default","selectStrategy":{"type":"equalDistributionWithCategorySpec","workerCategorySpec":{"strong":false,"categoryMap":{"index_kafka":{"defaultCategory":"c1","categoryAffinity":{"ds1":"c2"}}}}},"autoScaler":null}"#).unwrap();
        assert_eq!(
            Selection::from(&c.select_strategy)
                .category
                .unwrap()
                .category_map["index_kafka"]
                .default_category
                .as_deref(),
            Some("c1")
        );
        let c = WorkerBehaviorConfig::parse(br#"{"selectStrategy":{}}"#).unwrap();
        assert_eq!(Selection::from(&c.select_strategy), EQUAL);
        assert!(WorkerBehaviorConfig::parse(
            br#"{"selectStrategy":{"type":"javascript","function":"x"}}"#
        )
        .unwrap_err()
        .0
        .contains("javascript"));
        assert!(
            WorkerBehaviorConfig::parse(br#"{"selectStrategy":{"type":"random"}}"#)
                .unwrap_err()
                .0
                .contains("random")
        );
        assert!(WorkerBehaviorConfig::parse(b"[]").is_err());
        assert!(WorkerBehaviorConfig::parse(br#"{"selectStrategy":{"type":"fillCapacity","affinityConfig":{"affinity":{"wiki":"a:1"}}}}"#).is_err());
    }
}
