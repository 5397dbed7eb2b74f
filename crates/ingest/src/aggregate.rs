//! Metric values and how rollup combines two of them (`metricsSpec` aggregators).

use crate::spec::AggregatorKind;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Long(i64),
    Double(f64),
}

/// A metric of one row: its value and the time of the input row it came from (what
/// `longFirst`/`longLast` decide by).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub value: MetricValue,
    pub time: i64,
}

/// Folds `new` into `cur` as aggregator `kind` does.
pub fn combine(kind: AggregatorKind, cur: &mut Metric, new: Metric) {
    use AggregatorKind::*;
    use MetricValue::*;
    cur.value = match (kind, cur.value, new.value) {
        (Count | LongSum, Long(a), Long(b)) => Long(a.wrapping_add(b)),
        (DoubleSum | FloatSum, Double(a), Double(b)) => Double(a + b),
        (LongMin, Long(a), Long(b)) => Long(a.min(b)),
        (LongMax, Long(a), Long(b)) => Long(a.max(b)),
        (DoubleMin | FloatMin, Double(a), Double(b)) => Double(a.min(b)),
        (DoubleMax | FloatMax, Double(a), Double(b)) => Double(a.max(b)),
        (LongFirst, Long(_), Long(b)) if new.time < cur.time => {
            cur.time = new.time;
            Long(b)
        }
        (LongLast, Long(_), Long(b)) if new.time >= cur.time => {
            cur.time = new.time;
            Long(b)
        }
        (_, keep, _) => keep,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(value: MetricValue, time: i64) -> Metric {
        Metric { value, time }
    }

    #[test]
    fn aggregators_combine_like_druid() {
        let mut t = m(MetricValue::Long(5), 10);
        combine(AggregatorKind::LongMin, &mut t, m(MetricValue::Long(3), 20));
        assert_eq!(t.value, MetricValue::Long(3));
        let mut f = m(MetricValue::Long(5), 10);
        combine(
            AggregatorKind::LongFirst,
            &mut f,
            m(MetricValue::Long(7), 5),
        );
        assert_eq!(f.value, MetricValue::Long(7), "earlier row wins for first");
        let mut l = m(MetricValue::Long(5), 10);
        combine(AggregatorKind::LongLast, &mut l, m(MetricValue::Long(9), 5));
        assert_eq!(l.value, MetricValue::Long(5), "later row wins for last");
        let mut d = m(MetricValue::Double(1.5), 0);
        combine(
            AggregatorKind::DoubleMax,
            &mut d,
            m(MetricValue::Double(2.5), 0),
        );
        assert_eq!(d.value, MetricValue::Double(2.5));
        let mut s = m(MetricValue::Long(1), 0);
        combine(AggregatorKind::Count, &mut s, m(MetricValue::Long(1), 0));
        assert_eq!(s.value, MetricValue::Long(2));
    }
}
