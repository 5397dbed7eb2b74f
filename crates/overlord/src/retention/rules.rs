//! Druid's retention rules, as pure data and decisions. A data source's rules, then the
//! `_default` ones, are tried in order for each used segment; the first that applies decides:
//! a load rule keeps the segment, a drop rule marks it unused. A segment no rule applies to is
//! kept. "Now" is passed in, so the decisions are tested on fixed dates.

use chrono::{DateTime, Utc};
use drover_core::interval::Interval;
use drover_core::period::CalendarPeriod;
use drover_core::segment::DataSegment;
use drover_core::wire::{flag, Flag};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Load,
    Drop,
}

/// Which segments a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applies {
    Forever,
    /// A load rule: segments overlapping the interval. A drop rule: segments inside it.
    Interval(Interval),
    /// The last `period` up to now; with `include_future`, everything from its start on.
    Period {
        period: CalendarPeriod,
        include_future: bool,
    },
    /// Segments that ended at least `period` ago.
    Before(CalendarPeriod),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub applies: Applies,
}

/// Why posted rules are refused; the message names the rule and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub String);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleWire {
    #[serde(rename = "type")]
    kind: String,
    interval: Option<String>,
    period: Option<String>,
    include_future: Option<Flag>,
}

/// Parses a JSON array of rules as posted to `/rules/{ds}`.
pub fn parse_rules(value: &Value) -> Result<Vec<Rule>, RuleError> {
    let list = value
        .as_array()
        .ok_or_else(|| RuleError("the rules must be a JSON array".into()))?;
    list.iter()
        .enumerate()
        .map(|(i, v)| parse_rule(i, v))
        .collect()
}

fn parse_rule(i: usize, v: &Value) -> Result<Rule, RuleError> {
    let at = |field: &str| format!("[{i}].{field}");
    let wire: RuleWire = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = match e.path().to_string().as_str() {
            "." => format!("[{i}]"),
            p => at(p),
        };
        RuleError(format!("rule {path}: {}", e.inner()))
    })?;
    let interval = || -> Result<Interval, RuleError> {
        let text = wire
            .interval
            .as_deref()
            .ok_or_else(|| RuleError(format!("rule {} is required", at("interval"))))?;
        Interval::parse(text)
            .map_err(|e| RuleError(format!("rule {}: [{text}] {e}", at("interval"))))
    };
    let period = || -> Result<CalendarPeriod, RuleError> {
        let text = wire
            .period
            .as_deref()
            .ok_or_else(|| RuleError(format!("rule {} is required", at("period"))))?;
        CalendarPeriod::parse(text).map_err(|e| RuleError(format!("rule {}: {e}", at("period"))))
    };
    // Druid's defaults: a period rule includes the future unless told otherwise.
    let include_future = flag(wire.include_future, true);
    let (action, applies) = match wire.kind.as_str() {
        "loadForever" | "broadcastForever" => (Action::Load, Applies::Forever),
        "loadByInterval" | "broadcastByInterval" => (Action::Load, Applies::Interval(interval()?)),
        "loadByPeriod" | "broadcastByPeriod" => (
            Action::Load,
            Applies::Period {
                period: period()?,
                include_future,
            },
        ),
        "dropForever" => (Action::Drop, Applies::Forever),
        "dropByInterval" => (Action::Drop, Applies::Interval(interval()?)),
        "dropByPeriod" => (
            Action::Drop,
            Applies::Period {
                period: period()?,
                include_future,
            },
        ),
        "dropBeforeByPeriod" => (Action::Drop, Applies::Before(period()?)),
        other => {
            return Err(RuleError(format!(
                "rule {}: unknown rule type [{other}]; known: loadForever, loadByInterval, \
                 loadByPeriod, dropForever, dropByInterval, dropByPeriod, dropBeforeByPeriod, \
                 broadcastForever, broadcastByInterval, broadcastByPeriod",
                at("type")
            )))
        }
    };
    Ok(Rule { action, applies })
}

impl Rule {
    /// Druid's `appliesTo(interval, now)` for this rule.
    pub fn applies_to(&self, segment: &Interval, now: DateTime<Utc>) -> bool {
        match (&self.applies, self.action) {
            (Applies::Forever, _) => true,
            (Applies::Interval(i), Action::Load) => i.overlaps(segment),
            (Applies::Interval(i), Action::Drop) => i.encloses(segment),
            (
                Applies::Period {
                    period,
                    include_future,
                },
                action,
            ) => {
                let recent = Interval {
                    start: period.before(now),
                    end: now,
                };
                match (action, include_future) {
                    (Action::Load, true) => recent.start < segment.end,
                    (Action::Load, false) => recent.overlaps(segment),
                    (Action::Drop, true) => recent.start <= segment.start,
                    (Action::Drop, false) => recent.encloses(segment),
                }
            }
            (Applies::Before(period), _) => segment.end <= period.before(now),
        }
    }
}

/// The segments the rules drop: for each, the first rule of `rules` then `defaults` that applies
/// decides.
pub fn segments_to_drop<'a>(
    rules: &[Rule],
    defaults: &[Rule],
    segments: &'a [DataSegment],
    now: DateTime<Utc>,
) -> Vec<&'a DataSegment> {
    segments
        .iter()
        .filter(|s| {
            rules
                .iter()
                .chain(defaults)
                .find(|r| r.applies_to(&s.interval, now))
                .is_some_and(|r| r.action == Action::Drop)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        drover_core::time::parse_iso(s).unwrap()
    }

    fn segment(interval: &str) -> DataSegment {
        serde_json::from_value(json!({
            "dataSource": "wiki", "interval": interval, "version": "v1",
            "loadSpec": {}, "dimensions": "", "metrics": "",
            "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 0}, "size": 0
        }))
        .unwrap()
    }

    fn dropped(rules: Value, segments: &[&str], now: &str) -> Vec<String> {
        let rules = parse_rules(&rules).unwrap();
        let defaults = parse_rules(&json!([{"type": "loadForever"}])).unwrap();
        let segments: Vec<DataSegment> = segments.iter().map(|s| segment(s)).collect();
        segments_to_drop(&rules, &defaults, &segments, at(now))
            .into_iter()
            .map(|s| s.interval.to_string()[..10].to_string())
            .collect()
    }

    const DAYS: [&str; 3] = [
        "2015-09-12/2015-09-13",
        "2015-09-13/2015-09-14",
        "2015-09-14/2015-09-15",
    ];

    #[test]
    fn the_retention_tutorial_keeps_one_day_and_drops_the_rest() {
        // Druid's tutorial: load one interval, drop everything else.
        let rules = json!([
            {"type": "loadByInterval", "interval": "2015-09-12T12:00:00Z/2015-09-13T00:00:00Z"},
            {"type": "dropForever"}
        ]);
        assert_eq!(
            dropped(rules, &DAYS, "2026-01-01T00:00:00Z"),
            ["2015-09-13", "2015-09-14"]
        );
    }

    #[test]
    fn period_rules_count_back_from_now() {
        let now = "2015-09-15T00:00:00Z";
        // Keep the last day (and anything later), drop the rest.
        let rules = json!([{"type": "loadByPeriod", "period": "P1D"}, {"type": "dropForever"}]);
        assert_eq!(dropped(rules, &DAYS, now), ["2015-09-12", "2015-09-13"]);
        // Drop what ended two days ago or earlier; the default keeps the rest.
        let rules = json!([{"type": "dropBeforeByPeriod", "period": "P2D"}]);
        assert_eq!(dropped(rules, &DAYS, now), ["2015-09-12"]);
        // dropByPeriod without the future drops segments inside the last two days only.
        let rules = json!([{"type": "dropByPeriod", "period": "P2D", "includeFuture": false}]);
        assert_eq!(dropped(rules, &DAYS, now), ["2015-09-13", "2015-09-14"]);
        // Months are calendar months.
        let rules = json!([{"type": "dropBeforeByPeriod", "period": "P1M"}]);
        assert_eq!(
            dropped(rules, &DAYS, "2015-10-14T00:00:00Z"),
            ["2015-09-12", "2015-09-13"]
        );
    }

    #[test]
    fn first_matching_rule_wins_and_unmatched_segments_stay() {
        let rules = json!([
            {"type": "dropByInterval", "interval": "2015-09-13/2015-09-14"},
            {"type": "loadForever"},
            {"type": "dropForever"}
        ]);
        assert_eq!(
            dropped(rules, &DAYS, "2026-01-01T00:00:00Z"),
            ["2015-09-13"]
        );
        // A drop interval must hold the whole segment.
        let rules =
            json!([{"type": "dropByInterval", "interval": "2015-09-13T12:00:00Z/2015-09-15"}]);
        assert_eq!(
            dropped(rules, &DAYS, "2026-01-01T00:00:00Z"),
            ["2015-09-14"]
        );
    }

    #[test]
    fn malformed_rules_name_the_rule_and_field() {
        let err = |v: Value| parse_rules(&v).unwrap_err().0;
        assert!(err(json!({"type": "loadForever"})).contains("array"));
        assert!(err(json!([{"type": "loadForever"}, {"type": "keepSome"}])).contains("[1].type"));
        assert!(err(json!([{"type": "loadByInterval"}])).contains("[0].interval"));
        assert!(err(json!([{"type": "dropByPeriod", "period": "soon"}])).contains("[0].period"));
        assert!(
            err(json!([{"type": "loadByPeriod", "period": "P1D", "includeFuture": "yes"}]))
                .contains("includeFuture")
        );
        assert!(err(json!([{"period": "P1D"}])).contains("type"));
    }
}
