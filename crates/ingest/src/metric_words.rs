//! A held row's metrics as 32-bit words in its record (see `row_store::Held`): each value's
//! 64 bits — a long, or a double's bits, as its aggregator says — and, for `longFirst` and
//! `longLast` only, the input time they decide by. Eight bytes a metric where a [`Metric`]
//! takes 24: rolled-up rows are mostly metrics, and fewer bytes a row is fewer cache misses
//! when the merge reads them back in sorted order, and fewer pages to fault in.

use crate::aggregate::{combine, Metric, MetricValue};
use crate::spec::AggregatorKind;

/// How a held row's metrics are stored, by aggregator: a long or a double's bits as the
/// aggregator says, and an input time beside it for those that decide by one.
#[derive(Default, Clone)]
pub(crate) struct MetricLayout {
    kinds: Vec<AggregatorKind>,
    /// Words per record after the dimensions: two per value and two per kept time.
    pub words: usize,
}

/// Whether aggregator `kind` keeps the input time its value was chosen by.
fn keeps_time(kind: AggregatorKind) -> bool {
    matches!(kind, AggregatorKind::LongFirst | AggregatorKind::LongLast)
}

impl MetricLayout {
    pub(crate) fn new(kinds: &[AggregatorKind]) -> Self {
        let timed = kinds.iter().filter(|k| keeps_time(**k)).count();
        MetricLayout {
            kinds: kinds.to_vec(),
            words: 2 * (kinds.len() + timed),
        }
    }

    /// The aggregators, one per metric.
    pub(crate) fn kinds(&self) -> &[AggregatorKind] {
        &self.kinds
    }

    /// Appends `metrics` (one per aggregator) to a record.
    pub(crate) fn encode(&self, metrics: &[Metric], out: &mut Vec<u32>) {
        let push = |out: &mut Vec<u32>, bits: u64| out.extend([bits as u32, (bits >> 32) as u32]);
        for m in &metrics[..self.kinds.len()] {
            push(out, value_bits(m.value));
        }
        for (m, kind) in metrics.iter().zip(&self.kinds) {
            if keeps_time(*kind) {
                push(out, m.time as u64);
            }
        }
    }

    /// The metrics of a record's metric words.
    pub(crate) fn decode<'w>(&'w self, words: &'w [u32]) -> impl Iterator<Item = Metric> + 'w {
        let (values, mut times) = words.split_at(2 * self.kinds.len());
        values
            .chunks_exact(2)
            .zip(&self.kinds)
            .map(move |(v, kind)| {
                let time = match keeps_time(*kind) {
                    true => {
                        let t = word_pair(times) as i64;
                        times = &times[2..];
                        t
                    }
                    false => 0,
                };
                Metric {
                    value: value_of(word_pair(v), kind.is_long()),
                    time,
                }
            })
    }

    /// Folds `new` into a record's metric words, as each aggregator does.
    pub(crate) fn fold(&self, words: &mut [u32], new: &[Metric]) {
        let (values, times) = words.split_at_mut(2 * self.kinds.len());
        let mut time_at = 0;
        for (i, (kind, new)) in self.kinds.iter().zip(new).enumerate() {
            let value = &mut values[2 * i..2 * i + 2];
            let time = keeps_time(*kind).then(|| {
                time_at += 2;
                &mut times[time_at - 2..time_at]
            });
            let mut cur = Metric {
                value: value_of(word_pair(value), kind.is_long()),
                time: time.as_deref().map_or(0, |t| word_pair(t) as i64),
            };
            combine(*kind, &mut cur, *new);
            set_pair(value, value_bits(cur.value));
            if let Some(t) = time {
                set_pair(t, cur.time as u64);
            }
        }
    }
}

pub(crate) fn value_bits(value: MetricValue) -> u64 {
    match value {
        MetricValue::Long(l) => l as u64,
        MetricValue::Double(d) => d.to_bits(),
    }
}

pub(crate) fn value_of(bits: u64, long: bool) -> MetricValue {
    match long {
        true => MetricValue::Long(bits as i64),
        false => MetricValue::Double(f64::from_bits(bits)),
    }
}

fn word_pair(w: &[u32]) -> u64 {
    u64::from(w[0]) | (u64::from(w[1]) << 32)
}

fn set_pair(w: &mut [u32], bits: u64) {
    w[0] = bits as u32;
    w[1] = (bits >> 32) as u32;
}
