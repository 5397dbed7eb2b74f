//! `GET /supervisor/{id}/parseErrors`: the newest parse errors of a supervisor's tasks, kept
//! across calls (a task that ended takes its errors with it), as Druid's
//! `SeekableStreamSupervisor.getCurrentParseErrors` does.

use serde_json::Value;

fn time_of(report: &Value) -> i64 {
    report
        .get("timeOfExceptionMillis")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `known` and `fresh` together, without repeats, newest first, at most `limit`.
pub fn merge(known: Vec<Value>, fresh: Vec<Value>, limit: usize) -> Vec<Value> {
    let mut all = known;
    for report in fresh {
        if !all.contains(&report) {
            all.push(report);
        }
    }
    all.sort_by_key(|r| std::cmp::Reverse(time_of(r)));
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(t: i64) -> Value {
        json!({"input": format!("row {t}"), "timeOfExceptionMillis": t})
    }

    #[test]
    fn keeps_the_newest_without_repeats() {
        let known = merge(Vec::new(), vec![at(1), at(3)], 10);
        assert_eq!(known, vec![at(3), at(1)]);
        // The same task asked again, plus a newer error; the limit drops the oldest.
        let merged = merge(known, vec![at(1), at(3), at(5)], 2);
        assert_eq!(merged, vec![at(5), at(3)]);
        assert!(merge(vec![at(1)], vec![at(2)], 0).is_empty());
    }
}
