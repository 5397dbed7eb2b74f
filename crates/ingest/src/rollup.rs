//! Turning parsed records into segment rows: timestamp, interval and filter checks, dimension
//! typing (with schemaless discovery), `queryGranularity` truncation, and rollup — rows with the
//! same truncated time and dimension values combined by the metrics' aggregators.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::format::RawRow;
use crate::spec::{Aggregator, AggregatorKind, Dimension, Filter, IngestionSpec, ValueType};

/// A dimension value in a segment row.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum DimValue {
    Null,
    String(String),
    Multi(Vec<String>),
    Long(i64),
    Double(f64),
}

impl DimValue {
    /// An order and equality for grouping (floats compared by bits).
    fn key(&self) -> String {
        match self {
            DimValue::Null => "\u{0}".into(),
            DimValue::String(s) => format!("s{s}"),
            DimValue::Multi(v) => format!("m{}", v.join("\u{1}")),
            DimValue::Long(l) => format!("l{l:020}"),
            DimValue::Double(d) => format!("d{}", d.to_bits()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Long(i64),
    Double(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    pub time: DateTime<Utc>,
    pub dims: Vec<DimValue>,
    pub metrics: Vec<MetricValue>,
}

/// Druid's row stats (`ingestionStatsAndErrors.rowStats.buildSegments`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowStats {
    pub processed: u64,
    pub processed_with_error: u64,
    pub thrown_away: u64,
    pub unparseable: u64,
}

struct Acc {
    time: DateTime<Utc>,
    dims: Vec<DimValue>,
    metrics: Vec<(MetricValue, i64)>,
}

pub struct Rollup {
    spec: IngestionSpec,
    dimensions: Vec<Dimension>,
    discover: bool,
    groups: BTreeMap<(i64, Vec<String>), Acc>,
    plain: Vec<SegmentRow>,
    pub stats: RowStats,
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(*b as i64 as f64),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Rollup {
    pub fn new(spec: &IngestionSpec) -> Self {
        Rollup {
            dimensions: spec.dimensions.dimensions.clone(),
            discover: spec.dimensions.dimensions.is_empty(),
            spec: spec.clone(),
            groups: BTreeMap::new(),
            plain: Vec::new(),
            stats: RowStats::default(),
        }
    }

    /// The dimensions so far (grows with schemaless discovery).
    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    pub fn metrics(&self) -> &[Aggregator] {
        &self.spec.metrics
    }

    /// Rows held in memory.
    pub fn len(&self) -> usize {
        self.groups.len() + self.plain.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A record that could not be parsed at all.
    pub fn unparseable(&mut self) {
        self.stats.unparseable += 1;
    }

    /// Adds a record; `Err` says why it is unusable (it was counted as unparseable).
    pub fn add(&mut self, raw: &RawRow) -> Result<(), String> {
        let time = match self
            .spec
            .timestamp
            .extract(raw.get(&self.spec.timestamp.column))
        {
            Ok(t) => t,
            Err(e) => {
                self.stats.unparseable += 1;
                return Err(e);
            }
        };
        let intervals = &self.spec.granularity.intervals;
        if !intervals.is_empty() && !intervals.iter().any(|i| i.contains(time)) {
            self.stats.thrown_away += 1;
            return Ok(());
        }
        if let Some(f) = &self.spec.filter {
            if !matches(f, raw) {
                self.stats.thrown_away += 1;
                return Ok(());
            }
        }
        if self.discover {
            self.discover_dimensions(raw);
        }
        let mut had_error = false;
        let dims: Vec<DimValue> = self
            .dimensions
            .iter()
            .map(|d| {
                let v = raw.get(&d.name).unwrap_or(&Value::Null);
                let typed = match (d.value_type, v) {
                    (_, Value::Null) => DimValue::Null,
                    (ValueType::String, Value::Array(items)) => {
                        DimValue::Multi(items.iter().filter_map(text).collect())
                    }
                    (ValueType::String, v) => {
                        text(v).map(DimValue::String).unwrap_or(DimValue::Null)
                    }
                    (ValueType::Long, v) => match number(Some(v)) {
                        Some(n) => DimValue::Long(n as i64),
                        None => {
                            had_error = true;
                            DimValue::Null
                        }
                    },
                    (ValueType::Float | ValueType::Double, v) => match number(Some(v)) {
                        Some(n) => DimValue::Double(n),
                        None => {
                            had_error = true;
                            DimValue::Null
                        }
                    },
                };
                typed
            })
            .collect();
        let metrics: Vec<(MetricValue, i64)> = self
            .spec
            .metrics
            .iter()
            .map(|m| {
                let input = m.field.as_ref().and_then(|f| raw.get(f));
                let x = number(input);
                if input.is_some_and(|v| !v.is_null()) && x.is_none() {
                    had_error = true;
                }
                let value = match m.kind {
                    AggregatorKind::Count => MetricValue::Long(1),
                    k if k.is_long() => MetricValue::Long(x.unwrap_or(0.0) as i64),
                    _ => MetricValue::Double(x.unwrap_or(0.0)),
                };
                (value, time.timestamp_millis())
            })
            .collect();
        self.stats.processed += 1;
        if had_error {
            self.stats.processed_with_error += 1;
        }
        let time = self.spec.granularity.query.truncate(time);
        if !self.spec.granularity.rollup {
            let metrics = metrics.into_iter().map(|(v, _)| v).collect();
            self.plain.push(SegmentRow {
                time,
                dims,
                metrics,
            });
            return Ok(());
        }
        let key = (
            time.timestamp_millis(),
            dims.iter().map(DimValue::key).collect::<Vec<_>>(),
        );
        match self.groups.get_mut(&key) {
            None => {
                self.groups.insert(
                    key,
                    Acc {
                        time,
                        dims,
                        metrics,
                    },
                );
            }
            Some(acc) => {
                for ((agg, (cur, cur_t)), (new, new_t)) in self
                    .spec
                    .metrics
                    .iter()
                    .zip(acc.metrics.iter_mut())
                    .zip(metrics)
                {
                    combine(agg.kind, cur, cur_t, new, new_t);
                }
            }
        }
        Ok(())
    }

    fn discover_dimensions(&mut self, raw: &RawRow) {
        for key in raw.keys() {
            let known = *key == self.spec.timestamp.column
                || self.spec.dimensions.exclusions.contains(key)
                || self
                    .spec
                    .metrics
                    .iter()
                    .any(|m| m.field.as_ref() == Some(key) || m.name == *key)
                || self.dimensions.iter().any(|d| d.name == *key);
            if !known {
                self.dimensions.push(Dimension {
                    name: key.clone(),
                    value_type: ValueType::String,
                });
            }
        }
        // Rows seen before a new dimension appeared have no value for it.
        let n = self.dimensions.len();
        for acc in self.groups.values_mut() {
            acc.dims.resize(n, DimValue::Null);
        }
        for row in &mut self.plain {
            row.dims.resize(n, DimValue::Null);
        }
    }

    /// The rows, in time order (then dimension order when rolled up).
    pub fn finish(&mut self) -> Vec<SegmentRow> {
        let n = self.dimensions.len();
        let mut out: Vec<SegmentRow> = std::mem::take(&mut self.groups)
            .into_values()
            .map(|mut a| {
                a.dims.resize(n, DimValue::Null);
                SegmentRow {
                    time: a.time,
                    dims: a.dims,
                    metrics: a.metrics.into_iter().map(|(v, _)| v).collect(),
                }
            })
            .collect();
        let mut plain = std::mem::take(&mut self.plain);
        for r in &mut plain {
            r.dims.resize(n, DimValue::Null);
        }
        plain.sort_by_key(|r| r.time);
        out.extend(plain);
        out
    }
}

fn combine(
    kind: AggregatorKind,
    cur: &mut MetricValue,
    cur_t: &mut i64,
    new: MetricValue,
    new_t: i64,
) {
    use AggregatorKind::*;
    use MetricValue::*;
    *cur = match (kind, *cur, new) {
        (Count | LongSum, Long(a), Long(b)) => Long(a.wrapping_add(b)),
        (DoubleSum | FloatSum, Double(a), Double(b)) => Double(a + b),
        (LongMin, Long(a), Long(b)) => Long(a.min(b)),
        (LongMax, Long(a), Long(b)) => Long(a.max(b)),
        (DoubleMin | FloatMin, Double(a), Double(b)) => Double(a.min(b)),
        (DoubleMax | FloatMax, Double(a), Double(b)) => Double(a.max(b)),
        (LongFirst, Long(_), Long(b)) if new_t < *cur_t => {
            *cur_t = new_t;
            Long(b)
        }
        (LongLast, Long(_), Long(b)) if new_t >= *cur_t => {
            *cur_t = new_t;
            Long(b)
        }
        (_, keep, _) => keep,
    };
}

fn matches(filter: &Filter, row: &RawRow) -> bool {
    let values = |dim: &str| -> Vec<Option<String>> {
        match row.get(dim) {
            None | Some(Value::Null) => vec![None],
            Some(Value::Array(items)) => items.iter().map(text).collect(),
            Some(v) => vec![text(v)],
        }
    };
    match filter {
        Filter::Selector { dimension, value } => values(dimension).iter().any(|v| v == value),
        Filter::In {
            dimension,
            values: wanted,
        } => values(dimension).iter().any(|v| wanted.contains(v)),
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
        Filter::And(fs) => fs.iter().all(|f| matches(f, row)),
        Filter::Or(fs) => fs.iter().any(|f| matches(f, row)),
        Filter::Not(f) => !matches(f, row),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::format::RecordReader;
    use crate::spec::InputFormat;

    fn tutorial_spec() -> IngestionSpec {
        IngestionSpec::from_task(
            &serde_json::from_str(&crate::tutorial::tutorial_file("rollup-index.json")).unwrap(),
        )
        .unwrap()
    }

    fn tutorial_rows() -> Vec<RawRow> {
        let mut reader = RecordReader::new(InputFormat::Json);
        crate::tutorial::tutorial_file("rollup-data.json")
            .lines()
            .filter_map(|l| reader.read(l).unwrap())
            .collect()
    }

    #[test]
    fn the_rollup_tutorial_sums_per_minute() {
        let spec = tutorial_spec();
        let raws = tutorial_rows();
        // Expected, computed independently: group by minute, srcIP, dstIP.
        let mut expected: HashMap<(String, String, String), (i64, i64, i64)> = HashMap::new();
        for r in &raws {
            let minute = r["timestamp"].as_str().unwrap()[..16].to_string();
            let e = expected
                .entry((
                    minute,
                    r["srcIP"].as_str().unwrap().into(),
                    r["dstIP"].as_str().unwrap().into(),
                ))
                .or_default();
            e.0 += 1;
            e.1 += r["packets"].as_i64().unwrap();
            e.2 += r["bytes"].as_i64().unwrap();
        }
        let mut rollup = Rollup::new(&spec);
        for r in &raws {
            rollup.add(r).unwrap();
        }
        let rows = rollup.finish();
        assert_eq!(rows.len(), expected.len());
        assert_eq!(rows.len(), 5, "the tutorial's documented result");
        for row in &rows {
            let minute = drover_core::time::to_iso(row.time)[..16].to_string();
            let (DimValue::String(src), DimValue::String(dst)) = (&row.dims[0], &row.dims[1])
            else {
                panic!()
            };
            let want = expected[&(minute, src.clone(), dst.clone())];
            assert_eq!(
                row.metrics,
                vec![
                    MetricValue::Long(want.0),
                    MetricValue::Long(want.1),
                    MetricValue::Long(want.2)
                ]
            );
        }
        assert_eq!(rollup.stats.processed, raws.len() as u64);
        assert!(rows.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn intervals_filters_parse_errors_and_discovery() {
        let mut spec = tutorial_spec();
        spec.dimensions.dimensions.clear();
        spec.dimensions.exclusions = vec!["dstIP".into()];
        spec.granularity.rollup = false;
        spec.filter = Some(Filter::Not(Box::new(Filter::Selector {
            dimension: "srcIP".into(),
            value: Some("7.7.7.7".into()),
        })));
        let mut rollup = Rollup::new(&spec);
        let row = |json: &str| serde_json::from_str::<RawRow>(json).unwrap();
        rollup.add(&row(r#"{"timestamp":"2018-01-01T01:01:35Z","srcIP":"1.1.1.1","dstIP":"x","packets":1,"bytes":2}"#)).unwrap();
        rollup
            .add(&row(
                r#"{"timestamp":"2019-01-01T00:00:00Z","srcIP":"1.1.1.1","packets":1,"bytes":2}"#,
            ))
            .unwrap();
        rollup
            .add(&row(
                r#"{"timestamp":"2018-01-01T02:00:00Z","srcIP":"7.7.7.7","packets":1,"bytes":2}"#,
            ))
            .unwrap();
        assert!(rollup.add(&row(r#"{"srcIP":"1.1.1.1"}"#)).is_err());
        rollup.add(&row(r#"{"timestamp":"2018-01-01T03:00:00Z","srcIP":"1.1.1.1","port":"80","packets":"many","bytes":2}"#)).unwrap();
        let names: Vec<&str> = rollup
            .dimensions()
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["srcIP", "port"],
            "discovered, without the timestamp, metric inputs and exclusions"
        );
        assert_eq!(
            rollup.stats,
            RowStats {
                processed: 2,
                processed_with_error: 1,
                thrown_away: 2,
                unparseable: 1
            }
        );
        let rows = rollup.finish();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].dims,
            vec![DimValue::String("1.1.1.1".into()), DimValue::Null]
        );
        assert_eq!(rows[1].dims[1], DimValue::String("80".into()));
    }

    #[test]
    fn aggregators_combine_like_druid() {
        let mut t = (MetricValue::Long(5), 10);
        combine(
            AggregatorKind::LongMin,
            &mut t.0,
            &mut t.1,
            MetricValue::Long(3),
            20,
        );
        assert_eq!(t.0, MetricValue::Long(3));
        let mut f = (MetricValue::Long(5), 10);
        combine(
            AggregatorKind::LongFirst,
            &mut f.0,
            &mut f.1,
            MetricValue::Long(7),
            5,
        );
        assert_eq!(f.0, MetricValue::Long(7), "earlier row wins for first");
        let mut l = (MetricValue::Long(5), 10);
        combine(
            AggregatorKind::LongLast,
            &mut l.0,
            &mut l.1,
            MetricValue::Long(9),
            5,
        );
        assert_eq!(l.0, MetricValue::Long(5), "later row wins for last");
        let mut d = (MetricValue::Double(1.5), 0);
        combine(
            AggregatorKind::DoubleMax,
            &mut d.0,
            &mut d.1,
            MetricValue::Double(2.5),
            0,
        );
        assert_eq!(d.0, MetricValue::Double(2.5));
    }
}
