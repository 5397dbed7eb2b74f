//! Druid's dimension filters (`transformSpec.filter`, a `druid` input source's `filter`)
//! evaluated over any row: the caller says how to read a dimension's values.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::spec::Filter;

/// Whether a row matches `filter`. `values` gives a dimension's values as text (`None` for null
/// or missing; several for a multi-value dimension); a filter matches when any value does.
pub fn matches<'r>(filter: &Filter, values: &dyn Fn(&str) -> Vec<Option<Cow<'r, str>>>) -> bool {
    match filter {
        Filter::Selector { dimension, value } => values(dimension)
            .iter()
            .any(|v| v.as_deref() == value.as_deref()),
        Filter::In {
            dimension,
            values: wanted,
        } => values(dimension)
            .iter()
            .any(|v| wanted.iter().any(|w| w.as_deref() == v.as_deref())),
        Filter::Bound {
            dimension,
            lower,
            upper,
            lower_strict,
            upper_strict,
            numeric,
        } => values(dimension).iter().flatten().any(|v| {
            let cmp = |a: &str, b: &str| {
                if *numeric {
                    match (a.parse::<f64>(), b.parse::<f64>()) {
                        (Ok(x), Ok(y)) => x.partial_cmp(&y),
                        _ => None,
                    }
                } else {
                    Some(a.cmp(b))
                }
            };
            let above = lower.as_ref().is_none_or(|l| match cmp(v, l) {
                Some(std::cmp::Ordering::Greater) => true,
                Some(std::cmp::Ordering::Equal) => !lower_strict,
                _ => false,
            });
            let below = upper.as_ref().is_none_or(|u| match cmp(v, u) {
                Some(std::cmp::Ordering::Less) => true,
                Some(std::cmp::Ordering::Equal) => !upper_strict,
                _ => false,
            });
            above && below
        }),
        Filter::And(fs) => fs.iter().all(|f| matches(f, values)),
        Filter::Or(fs) => fs.iter().any(|f| matches(f, values)),
        Filter::Not(f) => !matches(f, values),
    }
}

/// A JSON row's values of `dimension`, as `matches` reads them.
pub fn json_values<'r>(row: &'r Map<String, Value>, dimension: &str) -> Vec<Option<Cow<'r, str>>> {
    fn text(v: &Value) -> Option<Cow<'_, str>> {
        match v {
            Value::Null => None,
            Value::String(s) => Some(Cow::Borrowed(s)),
            other => Some(Cow::Owned(other.to_string())),
        }
    }
    match row.get(dimension) {
        None | Some(Value::Null) => vec![None],
        Some(Value::Array(items)) => items.iter().map(text).collect(),
        Some(v) => vec![text(v)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_rows_are_filtered_as_records_are() {
        let row = json!({"page": "Main", "tags": ["a", "b"], "n": 12});
        let row = row.as_object().unwrap();
        let eval = |f: Filter| matches(&f, &|d: &str| json_values(row, d));
        assert!(eval(Filter::Selector {
            dimension: "page".into(),
            value: Some("Main".into())
        }));
        assert!(eval(Filter::In {
            dimension: "tags".into(),
            values: vec![Some("b".into())]
        }));
        assert!(eval(Filter::Selector {
            dimension: "missing".into(),
            value: None
        }));
        assert!(!eval(Filter::Bound {
            dimension: "n".into(),
            lower: Some("20".into()),
            upper: None,
            lower_strict: false,
            upper_strict: false,
            numeric: true
        }));
    }
}
