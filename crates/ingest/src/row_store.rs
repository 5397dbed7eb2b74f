//! Rows between reading and writing: held in memory (rolled up as they arrive when `rollup` is
//! on), spilled to disk as a sorted run whenever `maxRowsInMemory` rows are held, and finally
//! read back as one sorted stream — the runs merged, and rows with equal time and dimensions
//! from different runs rolled up again. Memory is bounded by `maxRowsInMemory` rows plus the
//! dimension dictionaries.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::aggregate::{combine, Metric, MetricValue};
use crate::dictionary::NULL_ID;
use crate::hash_index::{spread, Entry};
use crate::metric_words::{value_bits, value_of, MetricLayout};
use crate::radix::{self, Keyed};
use crate::spec::AggregatorKind;

/// A row's dimension value ids, up to 8 of them kept in the row itself: rows are built one by
/// one as the merge reaches them and dropped once the segment writer has copied them, where an
/// allocation and a free each would cost more than the rest of a rolled-up row. (Rows are held
/// in bulk only packed, in [`Held`], and by column in the writer. Room for more made every
/// row a bigger copy at each move, which cost more than the allocation it saved.)
pub type Dims = smallvec::SmallVec<[u32; 8]>;
/// A row's metrics, up to four of them kept in the row itself, as [`Dims`] are.
pub type Metrics = smallvec::SmallVec<[Metric; 4]>;

/// A segment row: time (ms, already truncated to `queryGranularity`), dimension value ids with
/// trailing nulls trimmed (so rows read before a dimension was discovered compare equal), and
/// metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub time: i64,
    pub dims: Dims,
    pub metrics: Metrics,
}

impl Row {
    /// The id of dimension `d` (null past the trimmed end).
    pub fn dim(&self, d: usize) -> u32 {
        self.dims.get(d).copied().unwrap_or(NULL_ID)
    }
}

/// How the final merge orders two value ids of dimension `d` (by ranks, or by value): shared
/// by every head of the merge.
pub type MergeOrder = Rc<dyn Fn(usize, u32, u32) -> Ordering>;

fn trimmed(dims: &[u32]) -> &[u32] {
    let end = dims
        .iter()
        .rposition(|&id| id != NULL_ID)
        .map_or(0, |i| i + 1);
    &dims[..end]
}

/// How two value ids of dimension `d` sort.
pub type DimOrder<'a> = &'a dyn Fn(usize, u32, u32) -> Ordering;

/// The ranks of a row's leading dimensions packed into one integer that sorts as they do
/// (dimension 0 in the highest bits), so that the final sort compares two integers per row
/// instead of calling the dimension order once per dimension.
pub struct PackedKey {
    /// Each packed dimension's ranks by id, and its width in bits.
    dims: Vec<(Rc<Vec<u32>>, u32)>,
    /// Whether every dimension is packed (the key then orders rows completely).
    complete: bool,
    /// The packed width.
    bits: u32,
}

impl PackedKey {
    /// Packs the leading dimensions of `ranks` (`None`: not ranked) that fit in 64 bits;
    /// `None` if not even the first does.
    pub fn new(ranks: &[Option<Rc<Vec<u32>>>]) -> Option<PackedKey> {
        let mut dims = Vec::new();
        let mut bits = 0;
        for r in ranks {
            let Some(r) = r else { break };
            let max = r.iter().copied().max().unwrap_or(0);
            let width = (32 - max.leading_zeros()).max(1);
            if bits + width > 64 {
                break;
            }
            bits += width;
            dims.push((r.clone(), width));
        }
        let complete = dims.len() == ranks.len();
        (!dims.is_empty()).then_some(PackedKey {
            dims,
            complete,
            bits,
        })
    }

    fn pack(&self, dims: &[u32]) -> u64 {
        self.dims
            .iter()
            .enumerate()
            .fold(0u64, |key, (d, (ranks, width))| {
                let id = dims.get(d).copied().unwrap_or(NULL_ID);
                (key << width) | u64::from(ranks[id as usize])
            })
    }
}

fn order_by(a_time: i64, a: &[u32], b_time: i64, b: &[u32], dim: DimOrder) -> Ordering {
    a_time.cmp(&b_time).then_with(|| {
        for d in 0..a.len().max(b.len()) {
            let x = a.get(d).copied().unwrap_or(NULL_ID);
            let y = b.get(d).copied().unwrap_or(NULL_ID);
            if x != y {
                match dim(d, x, y) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
        }
        Ordering::Equal
    })
}

/// Rows held in memory, packed: each row is one record in a shared vector of 32-bit words —
/// its dimension count, its dimension ids, then its metrics as raw 64-bit values (and, for
/// `longFirst`/`longLast` only, the input time they were chosen by). A row then costs no
/// allocation of its own, and reading it back in sorted order touches one or two cache lines
/// rather than one in each of several vectors: that read, in the merge, is a cache miss per
/// row, and it was the costliest step of writing rolled-up rows. Sorting moves the slots only.
#[derive(Default)]
struct Held {
    slots: Vec<Slot>,
    words: Vec<u32>,
    metrics: MetricLayout,
}

/// Where a held row is: its time (the sort's first key, kept beside the record so a sort on
/// time reads no record) and the record's first word.
#[derive(Debug, Clone, Copy)]
struct Slot {
    time: i64,
    at: usize,
}

impl Held {
    fn new(aggregators: &[AggregatorKind]) -> Self {
        Held {
            metrics: MetricLayout::new(aggregators),
            ..Held::default()
        }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn push(&mut self, time: i64, dims: &[u32], metrics: &[Metric]) {
        self.slots.push(Slot {
            time,
            at: self.words.len(),
        });
        self.words.push(dims.len() as u32);
        self.words.extend_from_slice(dims);
        self.metrics.encode(metrics, &mut self.words);
    }

    fn dims_of<'w>(words: &'w [u32], s: &Slot) -> &'w [u32] {
        let len = words[s.at] as usize;
        &words[s.at + 1..s.at + 1 + len]
    }

    /// Folds `metrics` into the row in slot `slot`.
    fn fold(&mut self, slot: usize, metrics: &[Metric]) {
        let s = self.slots[slot];
        let start = s.at + 1 + self.words[s.at] as usize;
        self.metrics
            .fold(&mut self.words[start..start + self.metrics.words], metrics);
    }

    fn row(&self, s: &Slot) -> Row {
        let dims = Held::dims_of(&self.words, s);
        let start = s.at + 1 + dims.len();
        Row {
            time: s.time,
            dims: Dims::from_slice(dims),
            metrics: self
                .metrics
                .decode(&self.words[start..start + self.metrics.words])
                .collect(),
        }
    }

    /// Forgets the rows, keeping the room they took.
    fn clear(&mut self) {
        self.slots.clear();
        self.words.clear();
    }

    /// Orders the slots by time then dimensions: by `key` first when there is one.
    fn sort(&mut self, dim: DimOrder, key: Option<&PackedKey>) {
        let Held {
            slots, words: dims, ..
        } = self;
        let full = |a: &Slot, b: &Slot| {
            order_by(
                a.time,
                Held::dims_of(dims, a),
                b.time,
                Held::dims_of(dims, b),
                dim,
            )
        };
        let Some(key) = key else {
            slots.sort_by(full);
            return;
        };
        if key.complete && sort_by_radix(slots, dims, key) {
            return;
        }
        let packed = |s: &Slot| (s.time, key.pack(Held::dims_of(dims, s)));
        slots.sort_by_cached_key(packed);
        if !key.complete {
            // Rows equal in time and the packed dimensions: ordered by the rest.
            let mut start = 0;
            while start < slots.len() {
                let first = packed(&slots[start]);
                let end = start
                    + 1
                    + slots[start + 1..]
                        .iter()
                        .take_while(|s| packed(s) == first)
                        .count();
                if end - start > 1 {
                    slots[start..end].sort_by(full);
                }
                start = end;
            }
        }
    }
}

/// Sorts `slots` by one radix-sorted `u64` per row — its time after the earliest row's above
/// its packed dimensions — when `key` orders rows completely and both fit (rolled-up rows: a
/// day of hours is 27 bits). Answers false, leaving `slots` as they were, when they do not.
fn sort_by_radix(slots: &mut Vec<Slot>, dims: &[u32], key: &PackedKey) -> bool {
    let Some((earliest, latest)) = slots.iter().fold(None, |span, s| match span {
        None => Some((s.time, s.time)),
        Some((lo, hi)) => Some((s.time.min(lo), s.time.max(hi))),
    }) else {
        return true;
    };
    let span = latest.wrapping_sub(earliest) as u64;
    if (64 - span.leading_zeros()) + key.bits > 64 {
        return false;
    }
    let mut keyed: Vec<Keyed> = slots
        .iter()
        .enumerate()
        .map(|(at, s)| {
            let since = (s.time.wrapping_sub(earliest) as u64)
                .checked_shl(key.bits)
                .unwrap_or(0);
            Keyed {
                key: since | key.pack(Held::dims_of(dims, s)),
                at: at as u32,
            }
        })
        .collect();
    radix::sort(&mut keyed);
    let mut sorted = Vec::with_capacity(slots.len());
    for (i, k) in keyed.iter().enumerate() {
        if let Some(ahead) = keyed.get(i + PREFETCH_AHEAD) {
            prefetch(&slots[ahead.at as usize]);
        }
        sorted.push(slots[k.at as usize]);
    }
    *slots = sorted;
    true
}

pub struct RowStore {
    rollup: bool,
    /// The rows in memory; their metric layout holds the aggregators.
    rows: Held,
    /// Rollup's index: positions in `rows`, by time and dimensions.
    table: HashTable<Entry>,
    hasher: DefaultHashBuilder,
    /// Whether rows are rolled up as they arrive (see [`RowStore::add`]), and how many of the
    /// rows added since the index was started it found a row for.
    indexing: bool,
    indexed: u64,
    rolled_up: u64,
    spill_dir: PathBuf,
    runs: Vec<File>,
    spill_time: std::time::Duration,
    /// Rows room is made for at once (see [`RowStore::expecting`]).
    expected_rows: usize,
}

/// The most rows [`RowStore::expecting`] makes room for at once: 1M rows of 19 dimensions is
/// about 100 MB of address space, touched only as rows arrive.
const MAX_EXPECTED_ROWS: usize = 1 << 20;

/// Rows added before deciding whether the index earns its keep.
const ROLLUP_SAMPLE: u64 = 1 << 16;

fn key_hash(hasher: &DefaultHashBuilder, time: i64, dims: &[u32]) -> u32 {
    let mut h = hasher.build_hasher();
    time.hash(&mut h);
    dims.hash(&mut h);
    h.finish() as u32
}

/// Whether two rows' dimension ids are the same (compared in place: a call to `memcmp` costs
/// more than the few ids a row has).
fn same_dims(a: &[u32], b: &[u32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

impl RowStore {
    pub fn new(rollup: bool, aggregators: Vec<AggregatorKind>, spill_dir: &Path) -> Self {
        RowStore {
            rollup,
            rows: Held::new(&aggregators),
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            indexing: true,
            indexed: 0,
            rolled_up: 0,
            spill_dir: spill_dir.to_path_buf(),
            runs: Vec::new(),
            spill_time: std::time::Duration::ZERO,
            expected_rows: 0,
        }
    }

    /// Makes room for `rows` rows (at most about a million) when the first row arrives:
    /// growing a vector of a million rows by doubling copies them all once more and faults in
    /// twice the memory.
    pub fn expecting(mut self, rows: u64) -> Self {
        self.expected_rows = rows.min(MAX_EXPECTED_ROWS as u64) as usize;
        self
    }

    /// Time spent writing sorted runs to disk (Druid's `ingest/persists/timeMs`).
    pub fn spill_time(&self) -> std::time::Duration {
        self.spill_time
    }

    /// Rows held in memory.
    pub fn in_memory(&self) -> usize {
        self.rows.len()
    }

    /// Sorted runs written to disk so far.
    pub fn spills(&self) -> usize {
        self.runs.len()
    }

    /// Adds a row, rolled up with an equal one in memory. When fewer than one in ten of the
    /// first 65,536 rows since the last spill found an equal row, the index stops: looking up
    /// a row that is nearly always new costs a cache miss or two for nothing, and rows left
    /// apart are rolled up all the same when the sorted rows are merged ([`SortedRows`]).
    pub fn add(&mut self, time: i64, dims: &[u32], metrics: &[Metric]) {
        let dims = trimmed(dims);
        if self.rows.slots.capacity() == 0 {
            let n = self.expected_rows;
            self.rows.slots.reserve_exact(n);
            let record = 1 + dims.len() + self.rows.metrics.words;
            self.rows.words.reserve_exact(n * record);
        }
        if !self.rollup || !self.indexing {
            self.rows.push(time, dims, metrics);
            return;
        }
        let RowStore {
            rows,
            table,
            hasher,
            ..
        } = self;
        let hash = key_hash(hasher, time, dims);
        let found = table.find(spread(hash), |e| {
            e.hash == hash && {
                let s = &rows.slots[e.id as usize];
                s.time == time && same_dims(Held::dims_of(&rows.words, s), dims)
            }
        });
        self.indexed += 1;
        match found {
            Some(e) => {
                self.rolled_up += 1;
                // Nothing has been sorted since the index started: a row's slot is its id.
                rows.fold(e.id as usize, metrics);
            }
            None => {
                rows.push(time, dims, metrics);
                let entry = Entry {
                    hash,
                    id: (rows.len() - 1) as u32,
                };
                table.insert_unique(spread(hash), entry, Entry::table_hash);
            }
        }
        if self.indexed == ROLLUP_SAMPLE && self.rolled_up * 10 < self.indexed {
            self.indexing = false;
            self.table = HashTable::new();
        }
    }

    /// Sorts the rows in memory and starts a new rollup index (rows added after a sort are
    /// not rolled up with earlier ones in memory; the merge does that).
    fn sort_held(&mut self, dim: DimOrder, key: Option<&PackedKey>) {
        self.table.clear();
        (self.indexing, self.indexed, self.rolled_up) = (true, 0, 0);
        self.rows.sort(dim, key);
    }

    /// Writes the rows in memory to disk as one run sorted by `dim` (which must agree with the
    /// ranks given to `finish`) and forgets them. Comparing values here rather than ranking
    /// whole dictionaries keeps a spill's cost in the rows spilled.
    pub fn spill(&mut self, dim: DimOrder) -> io::Result<()> {
        let started = std::time::Instant::now();
        self.sort_held(dim, None);
        let mut file = tempfile::tempfile_in(&self.spill_dir)?;
        {
            let mut w = BufWriter::with_capacity(1 << 16, &mut file);
            for slot in &self.rows.slots {
                write_row(&mut w, &self.rows.row(slot))?;
            }
            w.flush()?;
        }
        // The room is kept for the next run's rows.
        self.rows.clear();
        file.rewind()?;
        self.runs.push(file);
        self.spill_time += started.elapsed();
        Ok(())
    }

    /// Every row, sorted by time then dimension values, rolled up across runs.
    pub fn finish(self, order: MergeOrder) -> io::Result<SortedRows> {
        self.finish_by(order, None)
    }

    /// [`Self::finish`], the rows in memory sorted by `key` first (which must agree with
    /// `order`).
    pub fn finish_by(
        mut self,
        order: MergeOrder,
        key: Option<&PackedKey>,
    ) -> io::Result<SortedRows> {
        self.sort_held(&*order, key);
        let aggregators = self.rows.metrics.kinds().to_vec();
        let mut memory = std::mem::take(&mut self.rows);
        let slots = std::mem::take(&mut memory.slots);
        let mut sources: Vec<Source> = self
            .runs
            .drain(..)
            .map(|f| Source::Run(BufReader::with_capacity(1 << 16, f)))
            .collect();
        sources.push(Source::Memory(memory, slots.into_iter()));
        let mut heap = BinaryHeap::new();
        if let [only] = &mut sources[..] {
            // Nothing was spilled: the rows are merged with none, without a heap.
            let ahead = only.next()?;
            return Ok(SortedRows {
                sources,
                heap,
                ahead,
                rollup: self.rollup,
                aggregators,
            });
        }
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some(row) = s.next()? {
                heap.push(Head {
                    row,
                    source: i,
                    order: order.clone(),
                });
            }
        }
        Ok(SortedRows {
            sources,
            heap,
            ahead: None,
            rollup: self.rollup,
            aggregators,
        })
    }
}

enum Source {
    /// The rows held at the end, and their slots in order.
    Memory(Held, std::vec::IntoIter<Slot>),
    Run(BufReader<File>),
}

impl Source {
    fn next(&mut self) -> io::Result<Option<Row>> {
        match self {
            Source::Memory(held, slots) => {
                if let Some(ahead) = slots.as_slice().get(PREFETCH_AHEAD) {
                    prefetch(&held.words[ahead.at]);
                }
                Ok(slots.next().map(|s| held.row(&s)))
            }
            Source::Run(r) => read_row(r),
        }
    }
}

/// How many rows ahead a held row's slot or record is asked for when they are read in sorted
/// order: they are scattered then, each a cache miss, and asking early lets the misses
/// overlap.
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to bring `at`'s cache line in, without waiting for it.
fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of every x86_64 CPU, and a prefetch only hints: it reads nothing
        // the program sees and cannot fault (here the address is a live reference anyway).
        unsafe { _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// A source's next row in the merge; the heap's greatest is the smallest row.
struct Head {
    row: Row,
    source: usize,
    order: MergeOrder,
}

impl Head {
    fn cmp_rows(&self, other: &Head) -> Ordering {
        order_by(
            self.row.time,
            &self.row.dims,
            other.row.time,
            &other.row.dims,
            &*self.order,
        )
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed for a min-heap; earlier sources first among equals, for a stable merge.
        other
            .cmp_rows(self)
            .then_with(|| other.source.cmp(&self.source))
    }
}

/// The merged, sorted rows.
pub struct SortedRows {
    sources: Vec<Source>,
    /// Each source's next row, when there are several.
    heap: BinaryHeap<Head>,
    /// The next row, when there is one source (and the heap stays empty).
    ahead: Option<Row>,
    rollup: bool,
    aggregators: Vec<AggregatorKind>,
}

impl SortedRows {
    fn pop(&mut self) -> io::Result<Option<Row>> {
        if let Some(row) = self.ahead.take() {
            self.ahead = self.sources[0].next()?;
            return Ok(Some(row));
        }
        let Some(head) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(row) = self.sources[head.source].next()? {
            self.heap.push(Head {
                row,
                source: head.source,
                order: head.order,
            });
        }
        Ok(Some(head.row))
    }

    fn peek(&self) -> Option<&Row> {
        match &self.ahead {
            Some(row) => Some(row),
            None => self.heap.peek().map(|h| &h.row),
        }
    }

    pub fn next_row(&mut self) -> io::Result<Option<Row>> {
        let Some(mut row) = self.pop()? else {
            return Ok(None);
        };
        if self.rollup {
            while self
                .peek()
                .is_some_and(|h| h.time == row.time && same_dims(&h.dims, &row.dims))
            {
                let Some(same) = self.pop()? else { break };
                for ((kind, cur), new) in self
                    .aggregators
                    .iter()
                    .zip(row.metrics.iter_mut())
                    .zip(same.metrics.iter())
                {
                    combine(*kind, cur, *new);
                }
            }
        }
        Ok(Some(row))
    }
}

fn write_row(w: &mut impl Write, row: &Row) -> io::Result<()> {
    w.write_all(&row.time.to_le_bytes())?;
    w.write_all(&(row.dims.len() as u32).to_le_bytes())?;
    for id in row.dims.iter() {
        w.write_all(&id.to_le_bytes())?;
    }
    w.write_all(&(row.metrics.len() as u32).to_le_bytes())?;
    for m in row.metrics.iter() {
        let tag = matches!(m.value, MetricValue::Double(_)) as u8;
        w.write_all(&[tag])?;
        w.write_all(&value_bits(m.value).to_le_bytes())?;
        w.write_all(&m.time.to_le_bytes())?;
    }
    Ok(())
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_row(r: &mut impl Read) -> io::Result<Option<Row>> {
    let mut b = [0; 8];
    match r.read_exact(&mut b) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let time = i64::from_le_bytes(b);
    let n = read_u32(r)? as usize;
    let dims = (0..n).map(|_| read_u32(r)).collect::<io::Result<Dims>>()?;
    let m = read_u32(r)? as usize;
    let mut metrics = Metrics::with_capacity(m);
    for _ in 0..m {
        let mut tag = [0; 1];
        r.read_exact(&mut tag)?;
        let bits = read_u64(r)?;
        let time = read_u64(r)? as i64;
        metrics.push(Metric {
            value: value_of(bits, tag[0] == 0),
            time,
        });
    }
    Ok(Some(Row {
        time,
        dims,
        metrics,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(n: i64) -> Metric {
        Metric {
            value: MetricValue::Long(n),
            time: 0,
        }
    }

    fn drain(mut rows: SortedRows) -> Vec<Row> {
        let mut out = Vec::new();
        while let Some(r) = rows.next_row().unwrap() {
            out.push(r);
        }
        out
    }

    /// Ranks where id order is value order, for `dims` dimensions of `ids` values.
    /// Ids in their own order (the tests' ids are interned in value order).
    fn identity_ranks(_dims: usize, _ids: u32) -> MergeOrder {
        Rc::new(|_, x, y| x.cmp(&y))
    }

    #[test]
    fn spilled_runs_merge_sorted_and_roll_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let ranks = identity_ranks(2, 10);
        let mut store = RowStore::new(true, vec![AggregatorKind::Count], dir.path());
        // Expected, computed independently: a count per (time, dims).
        let mut expected: std::collections::BTreeMap<(i64, Vec<u32>), i64> = Default::default();
        for i in 0..1000i64 {
            let (time, dims) = (i % 7, vec![(i % 3) as u32, (i % 5) as u32]);
            store.add(time, &dims, &[count(1)]);
            *expected.entry((time, trimmed(&dims).to_vec())).or_default() += 1;
            if store.in_memory() >= 20 {
                store.spill(&|_, x, y| x.cmp(&y)).unwrap();
            }
        }
        assert!(store.spills() > 1);
        let rows = drain(store.finish(ranks).unwrap());
        let got: Vec<((i64, Vec<u32>), i64)> = rows
            .iter()
            .map(|r| {
                let MetricValue::Long(n) = r.metrics[0].value else {
                    panic!()
                };
                ((r.time, r.dims.to_vec()), n)
            })
            .collect();
        assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
    }

    /// Every kind of metric through a held record: rolled up in memory, spilled, merged.
    /// Expected values are folded independently, row by row, with `combine`.
    #[test]
    fn held_records_keep_every_metric_kind_and_first_last_times() {
        use AggregatorKind::*;
        let kinds = vec![
            Count, LongSum, DoubleSum, LongMin, LongMax, DoubleMin, DoubleMax, LongFirst, LongLast,
        ];
        let metric = |i: i64| -> Vec<Metric> {
            let (l, d) = (i * 37 % 101 - 50, (i * 13 % 29) as f64 / 4.0 - 3.0);
            // The input time first/last decide by runs against the order of arrival.
            let time = 1_000 - i;
            kinds
                .iter()
                .map(|k| Metric {
                    value: match k {
                        Count => MetricValue::Long(1),
                        k if k.is_long() => MetricValue::Long(l),
                        _ => MetricValue::Double(d),
                    },
                    time,
                })
                .collect()
        };
        for spill_every in [None, Some(7)] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = RowStore::new(true, kinds.clone(), dir.path());
            let mut expected: std::collections::BTreeMap<(i64, u32), Vec<Metric>> =
                Default::default();
            for i in 0..300i64 {
                let (time, dim) = (i % 3, (i % 5) as u32);
                store.add(time, &[dim], &metric(i));
                match expected.entry((time, dim)) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(metric(i));
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        for ((k, cur), new) in kinds.iter().zip(o.get_mut()).zip(metric(i)) {
                            combine(*k, cur, new);
                        }
                    }
                }
                if spill_every.is_some_and(|n| store.in_memory() >= n) {
                    store.spill(&|_, x, y| x.cmp(&y)).unwrap();
                }
            }
            let rows = drain(store.finish(identity_ranks(1, 5)).unwrap());
            assert_eq!(rows.len(), expected.len());
            for (row, ((time, dim), want)) in rows.iter().zip(expected) {
                assert_eq!((row.time, row.dim(0)), (time, dim));
                let values = |m: &[Metric]| m.iter().map(|m| m.value).collect::<Vec<_>>();
                assert_eq!(values(&row.metrics), values(&want), "{spill_every:?}");
                // First and last keep the time they were chosen by.
                assert_eq!(row.metrics[7].time, want[7].time);
                assert_eq!(row.metrics[8].time, want[8].time);
            }
        }
    }

    #[test]
    fn rows_that_seldom_roll_up_skip_the_index_and_still_roll_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RowStore::new(true, vec![AggregatorKind::Count], dir.path());
        let n = ROLLUP_SAMPLE as i64;
        for i in 0..n {
            store.add(i, &[1], &[count(1)]);
        }
        assert!(!store.indexing, "unique rows stop the index");
        // Every row again: kept apart in memory, rolled up by the merge.
        for i in 0..n {
            store.add(i, &[1], &[count(1)]);
        }
        assert_eq!(store.in_memory(), 2 * n as usize);
        let rows = drain(store.finish(identity_ranks(1, 2)).unwrap());
        assert_eq!(rows.len(), n as usize);
        assert!(rows
            .iter()
            .all(|r| r.metrics[0].value == MetricValue::Long(2)));

        let mut rolling = RowStore::new(true, vec![AggregatorKind::Count], dir.path());
        for i in 0..2 * n {
            rolling.add(i % 100, &[1], &[count(1)]);
        }
        assert!(rolling.indexing, "rows that roll up keep it");
        assert_eq!(rolling.in_memory(), 100);
    }

    #[test]
    fn trailing_nulls_do_not_split_groups_and_plain_rows_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RowStore::new(true, vec![AggregatorKind::LongSum], dir.path());
        store.add(1, &[2], &[count(1)]);
        store.add(1, &[2, NULL_ID], &[count(2)]);
        let rows = drain(store.finish(identity_ranks(2, 3)).unwrap());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].metrics[0].value, MetricValue::Long(3));

        let mut plain = RowStore::new(false, vec![AggregatorKind::LongSum], dir.path());
        for t in [3, 1, 2, 1] {
            plain.add(t, &[1], &[count(t)]);
            plain.spill(&|_, x, y| x.cmp(&y)).unwrap();
        }
        let rows = drain(plain.finish(identity_ranks(1, 2)).unwrap());
        let times: Vec<i64> = rows.iter().map(|r| r.time).collect();
        assert_eq!(times, [1, 1, 2, 3], "no rollup: every row kept, in order");
    }

    #[test]
    fn a_packed_key_sorts_as_the_dimension_order_does() {
        let dir = tempfile::tempdir().unwrap();
        // Ranks that are not id order: dimension d's id x ranks (x * 7 + d) % 11.
        let rank = |d: usize, x: u32| (x * 7 + d as u32) % 11;
        let ranks: Vec<Rc<Vec<u32>>> = (0..3)
            .map(|d| Rc::new((0..11).map(|x| rank(d, x)).collect()))
            .collect();
        let order: MergeOrder = Rc::new(move |d, x, y| rank(d, x).cmp(&rank(d, y)));
        // Times a few ms apart, hours apart before the epoch, and too far apart to share a
        // `u64` with the packed dimensions (the radix sort then gives way to comparisons).
        let times: [fn(u32) -> i64; 3] = [
            |i| (i % 4) as i64,
            |i| -((i % 5) as i64) * 3_600_000,
            |i| ((i % 4) as i64) << 60,
        ];
        for time in times {
            let rows = |store: &mut RowStore| {
                for i in 0..500u32 {
                    let dims = [i % 11, (i / 3) % 11, (i / 5) % 11];
                    // Trailing nulls trimmed from some rows.
                    let n = [3, 2, 1][i as usize % 3];
                    store.add(time(i), &dims[..n], &[count(i as i64)]);
                }
            };
            let sorted = |key: Option<PackedKey>| {
                let mut store = RowStore::new(false, vec![AggregatorKind::LongSum], dir.path());
                rows(&mut store);
                drain(store.finish_by(order.clone(), key.as_ref()).unwrap())
            };
            let expected = sorted(None);
            let complete = PackedKey::new(&ranks.iter().cloned().map(Some).collect::<Vec<_>>());
            assert!(complete.as_ref().unwrap().complete);
            assert_eq!(sorted(complete), expected);
            let partial = PackedKey::new(&[Some(ranks[0].clone()), None, Some(ranks[2].clone())]);
            assert!(!partial.as_ref().unwrap().complete);
            assert_eq!(sorted(partial), expected);
        }
        assert!(PackedKey::new(&[None, Some(ranks[0].clone())]).is_none());
    }

    #[test]
    fn rows_sort_by_value_rank_not_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RowStore::new(true, vec![AggregatorKind::Count], dir.path());
        store.add(0, &[1], &[count(1)]);
        store.add(0, &[2], &[count(1)]);
        // Value of id 2 sorts before id 1.
        let ranks = [0u32, 2, 1];
        let rows = drain(
            store
                .finish(Rc::new(move |_, x, y| {
                    ranks[x as usize].cmp(&ranks[y as usize])
                }))
                .unwrap(),
        );
        assert_eq!(rows[0].dims[0], 2);
    }
}
