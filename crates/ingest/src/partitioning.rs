//! Secondary partitioning, as Druid's `hashed`, `range` and `single_dim` partitions specs do it:
//! inside each time chunk, every row belongs to one bucket, chosen from the values of the
//! partition dimensions — by Druid's `murmur3_32_abs` over the JSON of those values (so that a
//! Druid broker prunes our hashed segments as it prunes its own), or by the range of values
//! between two boundaries. How many buckets a chunk gets comes from the spec (`numShards`) or
//! from what a first pass over the rows found ([`ChunkStats`]): distinct keys for `hashed`, the
//! distribution of values for `range`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::dictionary::{Dictionary, DimValue};
use crate::row_store::Row;
use crate::spec::Dimension;

/// `tuningConfig.partitionsSpec`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionsSpec {
    /// Rows cut into segments by `maxRowsPerSegment` (kept in the tuning).
    Dynamic,
    Hashed {
        num_shards: Option<u32>,
        target_rows_per_segment: Option<u64>,
        /// Empty: every dimension and the time, as Druid does.
        dimensions: Vec<String>,
    },
    Range {
        dimensions: Vec<String>,
        target_rows_per_segment: Option<u64>,
        max_rows_per_segment: Option<u64>,
        /// `single_dim`: one dimension, written as Druid's `single` shard spec.
        single_dim: bool,
    },
}

/// Druid's default target for `hashed` when neither `numShards` nor a row target is given.
pub const DEFAULT_TARGET_ROWS: u64 = 5_000_000;

impl PartitionsSpec {
    /// Whether rows are bucketed by their values (Druid's "perfect rollup" specs).
    pub fn is_secondary(&self) -> bool {
        !matches!(self, PartitionsSpec::Dynamic)
    }

    /// Whether the buckets need a first pass over the rows (everything but `numShards`).
    pub fn needs_stats(&self) -> bool {
        match self {
            PartitionsSpec::Dynamic => false,
            PartitionsSpec::Hashed { num_shards, .. } => num_shards.is_none(),
            PartitionsSpec::Range { .. } => true,
        }
    }

    pub fn dimensions(&self) -> &[String] {
        match self {
            PartitionsSpec::Dynamic => &[],
            PartitionsSpec::Hashed { dimensions, .. }
            | PartitionsSpec::Range { dimensions, .. } => dimensions,
        }
    }

    /// Druid's sub-task type names for the phases of this spec: (stats, generate).
    pub fn phase_task_types(&self) -> (&'static str, &'static str) {
        match self {
            PartitionsSpec::Range { .. } => (
                "partial_dimension_distribution",
                "partial_range_index_generate",
            ),
            _ => ("partial_dimension_cardinality", "partial_index_generate"),
        }
    }
}

/// Guava's `Hashing.murmur3_32()` (seed 0) over bytes, as Druid hashes rows.
pub fn murmur3_32(data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h: u32 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, b) in tail.iter().enumerate() {
            k |= (*b as u32) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Druid's `murmur3_32_abs`: `Math.abs(hash % numBuckets)` on Java's signed int.
pub fn murmur3_32_abs(data: &[u8], num_buckets: u32) -> u32 {
    ((murmur3_32(data) as i32) % (num_buckets.max(1) as i32)).unsigned_abs()
}

/// A range key: the partition dimensions' values, null first (Druid's `StringTuple` order).
pub type RangeKey = Vec<Option<String>>;

/// How one time chunk's rows are bucketed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ChunkBuckets {
    Hash {
        num_buckets: u32,
    },
    /// `boundaries[i]` is where bucket `i + 1` starts: `boundaries.len() + 1` buckets.
    Range {
        boundaries: Vec<RangeKey>,
    },
}

impl ChunkBuckets {
    pub fn count(&self) -> u32 {
        match self {
            ChunkBuckets::Hash { num_buckets } => *num_buckets,
            ChunkBuckets::Range { boundaries } => boundaries.len() as u32 + 1,
        }
    }
}

/// Every chunk's buckets, by the chunk's start (ms). Chunks missing here have one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionPlan {
    pub chunks: BTreeMap<i64, ChunkBuckets>,
    /// `hashed` with `numShards`: every chunk gets this many buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_shards: Option<u32>,
}

impl PartitionPlan {
    pub fn buckets(&self, chunk_start: i64) -> Option<ChunkBuckets> {
        match self.num_shards {
            Some(n) => Some(ChunkBuckets::Hash { num_buckets: n }),
            None => self.chunks.get(&chunk_start).cloned(),
        }
    }

    /// The plan a first pass's statistics give.
    pub fn from_stats(spec: &PartitionsSpec, stats: &ChunkStats) -> PartitionPlan {
        let mut plan = PartitionPlan::default();
        match spec {
            PartitionsSpec::Dynamic => {}
            PartitionsSpec::Hashed {
                num_shards: Some(n),
                ..
            } => plan.num_shards = Some(*n),
            PartitionsSpec::Hashed {
                target_rows_per_segment,
                ..
            } => {
                let target = target_rows_per_segment
                    .unwrap_or(DEFAULT_TARGET_ROWS)
                    .max(1);
                for (start, chunk) in &stats.chunks {
                    let distinct = chunk.distinct.estimate();
                    let n = distinct.div_ceil(target).max(1) as u32;
                    plan.chunks
                        .insert(*start, ChunkBuckets::Hash { num_buckets: n });
                }
            }
            PartitionsSpec::Range {
                target_rows_per_segment,
                max_rows_per_segment,
                ..
            } => {
                for (start, chunk) in &stats.chunks {
                    let boundaries = range_boundaries(
                        &chunk.values,
                        *target_rows_per_segment,
                        *max_rows_per_segment,
                    );
                    plan.chunks
                        .insert(*start, ChunkBuckets::Range { boundaries });
                }
            }
        }
        plan
    }
}

/// Where to cut a chunk whose keys have these row counts (in key order) so that each range
/// holds about `target` rows (or at most `max`, when only that is given): Druid's "even
/// partitions". A key is never split; a key bigger than the target is a range of its own.
pub fn range_boundaries(
    values: &[(RangeKey, u64)],
    target: Option<u64>,
    max: Option<u64>,
) -> Vec<RangeKey> {
    let total: u64 = values.iter().map(|(_, n)| n).sum();
    let size = match (target, max) {
        (Some(t), _) => t.max(1),
        (None, Some(m)) => m.max(1),
        (None, None) => DEFAULT_TARGET_ROWS,
    };
    let parts = total.div_ceil(size).max(1);
    // Even: each range gets about total/parts rows, never more than `size` unless a key does.
    let even = total.div_ceil(parts).max(1);
    let mut boundaries = Vec::new();
    let mut in_range = 0u64;
    for (key, n) in values {
        if in_range > 0 && in_range + n > even {
            boundaries.push(key.clone());
            in_range = 0;
        }
        in_range += n;
    }
    boundaries
}

/// The bucket of a key among `boundaries` (sorted starts of buckets 1..).
pub fn range_bucket(boundaries: &[RangeKey], key: &RangeKey) -> u32 {
    boundaries.partition_point(|b| b <= key) as u32
}

/// What a first pass learns about one time chunk: an estimate of its distinct partition keys
/// (`hashed`) and its rows by range key (`range`), mergeable across the splits of a parallel
/// task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkStat {
    pub distinct: Hll,
    /// Sorted by key; at most [`MAX_DISTRIBUTION_POINTS`] (neighbours merged past that).
    pub values: Vec<(RangeKey, u64)>,
}

/// How many keys a distribution keeps: boundaries stay close to even, and a sub-task's report
/// stays small.
pub const MAX_DISTRIBUTION_POINTS: usize = 10_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkStats {
    pub chunks: BTreeMap<i64, ChunkStat>,
}

impl ChunkStats {
    pub fn merge(&mut self, other: ChunkStats) {
        for (start, stat) in other.chunks {
            let mine = self.chunks.entry(start).or_default();
            mine.distinct.merge(&stat.distinct);
            let mut all: BTreeMap<RangeKey, u64> =
                std::mem::take(&mut mine.values).into_iter().collect();
            for (k, n) in stat.values {
                *all.entry(k).or_default() += n;
            }
            mine.values = compress(all.into_iter().collect());
        }
    }
}

/// Merges neighbouring keys (the first key names the merged run) until at most
/// [`MAX_DISTRIBUTION_POINTS`] are left.
fn compress(values: Vec<(RangeKey, u64)>) -> Vec<(RangeKey, u64)> {
    if values.len() <= MAX_DISTRIBUTION_POINTS {
        return values;
    }
    let per = values.len().div_ceil(MAX_DISTRIBUTION_POINTS);
    values
        .chunks(per)
        .map(|run| (run[0].0.clone(), run.iter().map(|(_, n)| n).sum()))
        .collect()
}

/// A HyperLogLog sketch (2^11 registers, about 2% error): distinct keys of a chunk, mergeable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hll {
    /// Non-zero registers only: (index, rank).
    registers: Vec<(u16, u8)>,
    #[serde(skip)]
    dense: Option<Box<[u8; HLL_M]>>,
}

const HLL_P: u32 = 11;
const HLL_M: usize = 1 << HLL_P;

impl Hll {
    fn dense(&mut self) -> &mut [u8; HLL_M] {
        if self.dense.is_none() {
            let mut d = Box::new([0u8; HLL_M]);
            for (i, r) in self.registers.drain(..) {
                d[i as usize] = r;
            }
            self.dense = Some(d);
        }
        self.dense.as_mut().expect("made above")
    }

    pub fn add_hash(&mut self, hash: u64) {
        let index = (hash >> (64 - HLL_P)) as usize;
        let rank = ((hash << HLL_P) | (1 << (HLL_P - 1))).leading_zeros() as u8 + 1;
        let d = self.dense();
        d[index] = d[index].max(rank);
    }

    /// Packs the registers for serialization.
    pub fn seal(&mut self) {
        if let Some(d) = self.dense.take() {
            self.registers = d
                .iter()
                .enumerate()
                .filter(|(_, r)| **r > 0)
                .map(|(i, r)| (i as u16, *r))
                .collect();
        }
    }

    pub fn merge(&mut self, other: &Hll) {
        let theirs: Vec<(u16, u8)> = match &other.dense {
            Some(d) => d
                .iter()
                .enumerate()
                .filter(|(_, r)| **r > 0)
                .map(|(i, r)| (i as u16, *r))
                .collect(),
            None => other.registers.clone(),
        };
        let d = self.dense();
        for (i, r) in theirs {
            d[i as usize] = d[i as usize].max(r);
        }
    }

    pub fn estimate(&self) -> u64 {
        let mut registers = [0u8; HLL_M];
        match &self.dense {
            Some(d) => registers.copy_from_slice(&d[..]),
            None => self
                .registers
                .iter()
                .for_each(|(i, r)| registers[*i as usize] = *r),
        }
        let m = HLL_M as f64;
        let sum: f64 = registers.iter().map(|r| 2f64.powi(-(*r as i32))).sum();
        let zeros = registers.iter().filter(|r| **r == 0).count();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }
}

/// Reads the partition key of rows: which columns, and their values from the dictionaries.
pub struct KeyReader<'a> {
    columns: Vec<usize>,
    /// No partition dimensions: the hash covers the time and every dimension.
    all: bool,
    dimensions: &'a [Dimension],
    dictionaries: &'a [Dictionary],
}

/// A dimension that is not among a segment's columns.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("partition dimension [{0}] is not a dimension of the data")]
pub struct UnknownDimension(pub String);

impl<'a> KeyReader<'a> {
    pub fn new(
        spec: &PartitionsSpec,
        dimensions: &'a [Dimension],
        dictionaries: &'a [Dictionary],
    ) -> Result<Self, UnknownDimension> {
        let columns = spec
            .dimensions()
            .iter()
            .map(|name| {
                dimensions
                    .iter()
                    .position(|d| d.name == *name)
                    .ok_or_else(|| UnknownDimension(name.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyReader {
            all: columns.is_empty(),
            columns: if spec.dimensions().is_empty() {
                (0..dimensions.len()).collect()
            } else {
                columns
            },
            dimensions,
            dictionaries,
        })
    }

    fn strings(&self, row: &Row, column: usize) -> Vec<String> {
        match self.dictionaries[column].get(row.dim(column)) {
            DimValue::Null => Vec::new(),
            DimValue::String(s) => vec![s.to_string()],
            DimValue::Multi(items) => items.iter().map(|s| s.to_string()).collect(),
            DimValue::Long(v) => vec![v.to_string()],
            DimValue::Double(v) => vec![v.to_string()],
        }
    }

    /// The bytes Druid hashes: the JSON of each partition dimension's values as a list
    /// (`[["en"],[]]`), or of the time and every dimension when none is named.
    pub fn hash_bytes(&self, row: &Row) -> Vec<u8> {
        let values: Vec<Value> = self
            .columns
            .iter()
            .map(|&c| json!(self.strings(row, c)))
            .collect();
        let key = if self.all {
            let dims: serde_json::Map<String, Value> = self
                .columns
                .iter()
                .zip(values)
                .filter(|(_, v)| v.as_array().is_some_and(|a| !a.is_empty()))
                .map(|(&c, v)| (self.dimensions[c].name.clone(), v))
                .collect();
            json!([row.time, dims])
        } else {
            Value::Array(values)
        };
        serde_json::to_vec(&key).expect("JSON values serialize")
    }

    /// The range key: each partition dimension's value (a list's first, as none is allowed).
    pub fn range_key(&self, row: &Row) -> RangeKey {
        self.columns
            .iter()
            .map(|&c| self.strings(row, c).into_iter().next())
            .collect()
    }

    /// The bucket of `row` in a chunk bucketed as `buckets`.
    pub fn bucket(&self, buckets: &ChunkBuckets, row: &Row) -> u32 {
        match buckets {
            ChunkBuckets::Hash { num_buckets } => {
                murmur3_32_abs(&self.hash_bytes(row), *num_buckets)
            }
            ChunkBuckets::Range { boundaries } => range_bucket(boundaries, &self.range_key(row)),
        }
    }
}

/// Gathers a first pass's [`ChunkStats`] from rows.
pub struct StatsCollector<'s> {
    spec: &'s PartitionsSpec,
    chunks: BTreeMap<i64, (Hll, BTreeMap<RangeKey, u64>)>,
}

impl<'s> StatsCollector<'s> {
    pub fn new(spec: &'s PartitionsSpec) -> Self {
        StatsCollector {
            spec,
            chunks: BTreeMap::new(),
        }
    }

    /// Adds a row of the chunk starting at `chunk_start`.
    pub fn observe(&mut self, keys: &KeyReader<'_>, chunk_start: i64, row: &Row) {
        let (distinct, values) = self.chunks.entry(chunk_start).or_default();
        match self.spec {
            PartitionsSpec::Range { .. } => *values.entry(keys.range_key(row)).or_default() += 1,
            _ => {
                let bytes = keys.hash_bytes(row);
                let salted = [bytes.as_slice(), b"#"].concat();
                distinct
                    .add_hash(u64::from(murmur3_32(&bytes)) << 32 | u64::from(murmur3_32(&salted)));
            }
        }
    }

    pub fn finish(self) -> ChunkStats {
        ChunkStats {
            chunks: self
                .chunks
                .into_iter()
                .map(|(start, (mut distinct, values))| {
                    distinct.seal();
                    let values = compress(values.into_iter().collect());
                    (start, ChunkStat { distinct, values })
                })
                .collect(),
        }
    }
}

/// Druid's shard spec for a bucketed segment: `partition_num` of `core` segments in its chunk.
pub fn shard_spec(
    spec: &PartitionsSpec,
    buckets: &ChunkBuckets,
    bucket: u32,
    partition_num: u32,
    core: u32,
) -> Value {
    match (spec, buckets) {
        (
            PartitionsSpec::Range {
                dimensions,
                single_dim,
                ..
            },
            ChunkBuckets::Range { boundaries },
        ) => {
            let start = (bucket > 0).then(|| boundaries[bucket as usize - 1].clone());
            let end = boundaries.get(bucket as usize).cloned();
            if *single_dim {
                let first = |k: Option<RangeKey>| k.and_then(|k| k.into_iter().next().flatten());
                json!({"type": "single", "dimension": dimensions[0], "start": first(start),
                    "end": first(end), "partitionNum": partition_num, "numCorePartitions": core})
            } else {
                json!({"type": "range", "dimensions": dimensions, "start": start, "end": end,
                    "partitionNum": partition_num, "numCorePartitions": core})
            }
        }
        _ => json!({"type": "hashed", "partitionNum": partition_num, "partitions": core,
            "bucketId": bucket, "numBuckets": buckets.count(),
            "partitionDimensions": spec.dimensions(), "partitionFunction": "murmur3_32_abs"}),
    }
}

/// The shard specs of the segments written for `written` — (time chunk start, bucket) in
/// chunk order, buckets ascending within a chunk: numbered 0.. in each chunk, with Druid's
/// hashed/range/single shard spec naming the bucket and the chunk's segment count.
pub fn shard_specs(
    spec: &PartitionsSpec,
    plan: &PartitionPlan,
    written: &[(i64, u32)],
) -> Vec<Value> {
    let mut out = Vec::with_capacity(written.len());
    let mut i = 0;
    while i < written.len() {
        let chunk = written[i].0;
        let end = written[i..]
            .iter()
            .position(|(c, _)| *c != chunk)
            .map_or(written.len(), |n| i + n);
        let buckets = plan
            .buckets(chunk)
            .unwrap_or(ChunkBuckets::Hash { num_buckets: 1 });
        let core = (end - i) as u32;
        for (n, (_, bucket)) in written[i..end].iter().enumerate() {
            out.push(shard_spec(spec, &buckets, *bucket, n as u32, core));
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_guava() {
        // Known values of Guava's murmur3_32().hashBytes (and the reference implementation).
        assert_eq!(murmur3_32(b""), 0);
        assert_eq!(murmur3_32(b"hello"), 0x248b_fa47);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog"),
            0x2e4f_f723
        );
    }

    #[test]
    fn abs_of_a_negative_remainder_as_java_does() {
        // A hash with the top bit set is negative in Java; its remainder is negative too.
        let data = b"hello world";
        let h = murmur3_32(data) as i32;
        assert_eq!(murmur3_32_abs(data, 7) as i32, (h % 7).abs());
    }

    fn key(s: &str) -> RangeKey {
        vec![Some(s.to_string())]
    }

    #[test]
    fn range_boundaries_are_even_and_never_split_a_key() {
        let values: Vec<(RangeKey, u64)> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|k| (key(k), 10))
            .collect();
        // 60 rows, 20 a range: cut before c and e.
        assert_eq!(
            range_boundaries(&values, Some(20), None),
            vec![key("c"), key("e")]
        );
        // 25 a range: three ranges of 20.
        assert_eq!(range_boundaries(&values, Some(25), None).len(), 2);
        // One huge key stays whole.
        let skewed = vec![(key("a"), 100), (key("b"), 1)];
        assert_eq!(range_boundaries(&skewed, Some(10), None), vec![key("b")]);
        assert!(range_boundaries(&values, Some(1000), None).is_empty());
    }

    #[test]
    fn range_buckets_put_nulls_first_and_boundaries_start_buckets() {
        let b = vec![key("c"), key("e")];
        assert_eq!(range_bucket(&b, &vec![None]), 0);
        assert_eq!(range_bucket(&b, &key("b")), 0);
        assert_eq!(range_bucket(&b, &key("c")), 1);
        assert_eq!(range_bucket(&b, &key("d")), 1);
        assert_eq!(range_bucket(&b, &key("z")), 2);
    }

    #[test]
    fn hll_estimates_and_merges() {
        let mut a = Hll::default();
        let mut b = Hll::default();
        for i in 0..20_000u64 {
            let h = u64::from(murmur3_32(&i.to_le_bytes())) << 32
                | u64::from(murmur3_32(&(i + 7).to_be_bytes()));
            if i % 2 == 0 {
                a.add_hash(h)
            } else {
                b.add_hash(h)
            }
        }
        a.seal();
        let a: Hll = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        let mut merged = a.clone();
        merged.merge(&b);
        let e = merged.estimate() as f64;
        assert!((e - 20_000.0).abs() / 20_000.0 < 0.06, "{e}");
        let small = {
            let mut h = Hll::default();
            (0..50u64).for_each(|i| h.add_hash(u64::from(murmur3_32(&i.to_le_bytes())) << 32 | i));
            h.estimate()
        };
        assert!((45..=55).contains(&small), "{small}");
    }

    #[test]
    fn stats_make_plans() {
        let spec = PartitionsSpec::Range {
            dimensions: vec!["d".into()],
            target_rows_per_segment: Some(20),
            max_rows_per_segment: None,
            single_dim: true,
        };
        let mut one = ChunkStats::default();
        one.chunks.insert(
            0,
            ChunkStat {
                values: vec![(key("a"), 10), (key("c"), 10)],
                ..Default::default()
            },
        );
        let mut two = ChunkStats::default();
        two.chunks.insert(
            0,
            ChunkStat {
                values: vec![(key("b"), 10), (key("d"), 10)],
                ..Default::default()
            },
        );
        one.merge(two);
        let plan = PartitionPlan::from_stats(&spec, &one);
        let buckets = plan.buckets(0).unwrap();
        assert_eq!(
            buckets,
            ChunkBuckets::Range {
                boundaries: vec![key("c")]
            }
        );
        assert_eq!(
            shard_spec(&spec, &buckets, 1, 1, 2),
            json!({"type": "single", "dimension": "d", "start": "c", "end": null,
                "partitionNum": 1, "numCorePartitions": 2})
        );
    }
}
