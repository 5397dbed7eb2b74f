//! Turning records into segment rows: expression transforms, the timestamp, `intervals` and the
//! filter, dimension typing (with schemaless discovery) and interning, metric inputs,
//! `queryGranularity` truncation, and the row stats Druid reports.

use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::rc::Rc;

use crate::aggregate::{Metric, MetricValue};
use crate::dictionary::{Dictionary, Probe, NULL_ID};
use crate::expr::{Expr, ExprError};
use crate::record::{Cell, Fields, Record, RowError};
use crate::row_store::{MergeOrder, PackedKey, RowStore, SortedRows};
use crate::spec::{AggregatorKind, Dimension, Filter, IngestionSpec, ValueType};

/// Druid's row stats (`ingestionStatsAndErrors.rowStats.buildSegments`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowStats {
    pub processed: u64,
    pub processed_with_error: u64,
    pub thrown_away: u64,
    pub unparseable: u64,
}

struct DimColumn {
    dimension: Dimension,
    slot: usize,
    dictionary: Dictionary,
    /// The ids of "false" and "true" once interned: JSON booleans are common dimension values
    /// (`isRobot`), and two ids need no lookup.
    bool_ids: [Option<u32>; 2],
}

impl DimColumn {
    fn new(dimension: Dimension, slot: usize, granularity: &crate::spec::GranularitySpec) -> Self {
        DimColumn {
            dimension,
            slot,
            dictionary: new_dictionary(granularity),
            bool_ids: [None; 2],
        }
    }
}

/// What the builder hands to the segment writer once every record is in.
/// Dictionaries at most this big are ranked once for the final merge; bigger ones are compared
/// by value.
const RANKED_MAX: usize = 1 << 16;

pub struct Finished {
    pub dimensions: Vec<Dimension>,
    pub dictionaries: Rc<Vec<Dictionary>>,
    pub rows: SortedRows,
}

pub struct RowBuilder {
    spec: IngestionSpec,
    fields: Fields,
    timestamp_slot: usize,
    transforms: Vec<(usize, Expr)>,
    columns: Vec<DimColumn>,
    metric_slots: Vec<Option<usize>>,
    /// Schemaless: fields known to the registry but not seen in a record yet, and how many
    /// registered fields have been looked at.
    discover: bool,
    undiscovered: Vec<usize>,
    fields_seen: usize,
    store: RowStore,
    dims_scratch: Vec<u32>,
    metrics_scratch: Vec<Metric>,
    pub stats: RowStats,
}

fn filter_fields<'f>(f: &'f Filter, out: &mut Vec<&'f str>) {
    match f {
        Filter::Selector { dimension, .. }
        | Filter::In { dimension, .. }
        | Filter::Bound { dimension, .. } => out.push(dimension),
        Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| filter_fields(f, out)),
        Filter::Not(f) => filter_fields(f, out),
    }
}

impl RowBuilder {
    /// `spill_dir` receives the sorted runs written when `maxRowsInMemory` rows are held.
    pub fn new(spec: &IngestionSpec, spill_dir: &Path) -> Result<Self, ExprError> {
        let discover = spec.dimensions.dimensions.is_empty();
        let mut fields = Fields::new(discover);
        let timestamp_slot = fields.register(&spec.timestamp.column);
        let mut columns = Vec::new();
        for d in &spec.dimensions.dimensions {
            columns.push(DimColumn::new(
                d.clone(),
                fields.register(&d.name),
                &spec.granularity,
            ));
        }
        let metric_slots = spec
            .metrics
            .iter()
            .map(|m| m.field.as_ref().map(|f| fields.register(f)))
            .collect();
        let mut transforms = Vec::new();
        for t in &spec.transforms {
            let expr = crate::expr::parse(&t.expression, &mut |n| fields.register(n))?;
            transforms.push((fields.register(&t.name), expr));
        }
        if let Some(f) = &spec.filter {
            let mut names = Vec::new();
            filter_fields(f, &mut names);
            names.into_iter().for_each(|n| {
                fields.register(n);
            });
        }
        let aggregators = spec.metrics.iter().map(|m| m.kind).collect();
        Ok(RowBuilder {
            undiscovered: if discover {
                (0..fields.len()).collect()
            } else {
                Vec::new()
            },
            fields_seen: fields.len(),
            discover,
            store: RowStore::new(spec.granularity.rollup, aggregators, spill_dir)
                .expecting(spec.tuning.max_rows_in_memory),
            spec: spec.clone(),
            fields,
            timestamp_slot,
            transforms,
            columns,
            metric_slots,
            dims_scratch: Vec::new(),
            metrics_scratch: Vec::new(),
            stats: RowStats::default(),
        })
    }

    /// The registry records are read against.
    pub fn fields(&mut self) -> &mut Fields {
        &mut self.fields
    }

    /// The dimensions so far (grows with schemaless discovery).
    pub fn dimensions(&self) -> Vec<Dimension> {
        self.columns.iter().map(|c| c.dimension.clone()).collect()
    }

    /// Sorted runs spilled to disk so far.
    pub fn spills(&self) -> usize {
        self.store.spills()
    }

    /// Time spent spilling sorted runs to disk.
    pub fn spill_time(&self) -> std::time::Duration {
        self.store.spill_time()
    }

    /// A record that could not be parsed at all.
    pub fn unparseable(&mut self) {
        self.stats.unparseable += 1;
    }

    /// Adds a record; `Err` says why it is unusable (it was counted as unparseable). I/O errors
    /// come from spilling.
    pub fn add(&mut self, record: &mut Record) -> io::Result<Result<(), RowError>> {
        if !self.transforms.is_empty() {
            // Every transform reads the input as it came, then all are set.
            let values: Vec<Cell<'static>> = self
                .transforms
                .iter()
                .map(|(_, e)| e.eval(record))
                .collect();
            for ((slot, _), v) in self.transforms.iter().zip(values) {
                record.set(*slot, v);
            }
        }
        let time = match self.spec.timestamp.extract(record.get(self.timestamp_slot)) {
            Ok(t) => t,
            Err(e) => {
                self.stats.unparseable += 1;
                return Ok(Err(e.into()));
            }
        };
        let intervals = &self.spec.granularity.intervals;
        if !intervals.is_empty() && !intervals.iter().any(|i| i.contains(time)) {
            self.stats.thrown_away += 1;
            return Ok(Ok(()));
        }
        if let Some(f) = &self.spec.filter {
            if !matches(f, record, &self.fields) {
                self.stats.thrown_away += 1;
                return Ok(Ok(()));
            }
        }
        if self.discover {
            self.discover_dimensions(record);
        }
        let mut had_error = false;
        self.dims_scratch.clear();
        for c in &mut self.columns {
            let cell = record.get(c.slot);
            let probe_id = match (c.dimension.value_type, cell) {
                (_, Cell::Missing | Cell::Null) => NULL_ID,
                (ValueType::String, Cell::List(items)) => {
                    let texts: Vec<Cow<str>> = items.iter().filter_map(Cell::text).collect();
                    match texts.len() {
                        0 => NULL_ID,
                        1 => c.dictionary.intern(Probe::Str(&texts[0])),
                        _ => c.dictionary.intern(Probe::Multi(&texts)),
                    }
                }
                (ValueType::String, Cell::Str(s)) => c.dictionary.intern(Probe::Str(s)),
                (ValueType::String, Cell::Bool(b)) => {
                    let dictionary = &mut c.dictionary;
                    *c.bool_ids[usize::from(*b)].get_or_insert_with(|| {
                        dictionary.intern(Probe::Str(if *b { "true" } else { "false" }))
                    })
                }
                (ValueType::String, other) => match other.text() {
                    Some(t) => c.dictionary.intern(Probe::Str(&t)),
                    None => NULL_ID,
                },
                (ValueType::Long, cell) => match cell.as_i64() {
                    Some(n) => c.dictionary.intern(Probe::Long(n)),
                    None => {
                        had_error = true;
                        NULL_ID
                    }
                },
                (ValueType::Float | ValueType::Double, cell) => match cell.as_f64() {
                    Some(n) => c.dictionary.intern(Probe::Double(n)),
                    None => {
                        had_error = true;
                        NULL_ID
                    }
                },
            };
            self.dims_scratch.push(probe_id);
        }
        let millis = time.timestamp_millis();
        self.metrics_scratch.clear();
        for (m, slot) in self.spec.metrics.iter().zip(&self.metric_slots) {
            let input = slot.map(|s| record.get(s)).unwrap_or(&Cell::Missing);
            let value = match m.kind {
                AggregatorKind::Count => MetricValue::Long(1),
                k if k.is_long() => MetricValue::Long(match input.as_i64() {
                    Some(n) => n,
                    None => {
                        had_error |= !input.is_null();
                        0
                    }
                }),
                _ => MetricValue::Double(match input.as_f64() {
                    Some(n) => n,
                    None => {
                        had_error |= !input.is_null();
                        0.0
                    }
                }),
            };
            self.metrics_scratch.push(Metric {
                value,
                time: millis,
            });
        }
        self.stats.processed += 1;
        if had_error {
            self.stats.processed_with_error += 1;
        }
        let time = self
            .spec
            .granularity
            .query
            .truncate_millis(time.timestamp_millis());
        // Spill before going past the limit, not on reaching it: input that fits exactly is
        // never written out and read back.
        if self.store.in_memory() as u64 >= self.spec.tuning.max_rows_in_memory {
            let columns = &self.columns;
            self.store.spill(&|d, x, y| {
                let dict = &columns[d].dictionary;
                dict.get(x).order(dict.get(y))
            })?;
        }
        self.store
            .add(time, &self.dims_scratch, &self.metrics_scratch);
        Ok(Ok(()))
    }

    /// Schemaless: a field becomes a dimension the first time a record has it, unless it is
    /// the timestamp, excluded, or a metric's input or name.
    fn discover_dimensions(&mut self, record: &Record) {
        for slot in self.fields_seen..self.fields.len() {
            self.undiscovered.push(slot);
        }
        self.fields_seen = self.fields.len();
        if self.undiscovered.is_empty() {
            return;
        }
        let mut still = Vec::new();
        for slot in std::mem::take(&mut self.undiscovered) {
            if matches!(record.get(slot), Cell::Missing) {
                still.push(slot);
                continue;
            }
            let name = &self.fields.names()[slot];
            let known = slot == self.timestamp_slot
                || self.spec.dimensions.exclusions.contains(name)
                || self
                    .spec
                    .metrics
                    .iter()
                    .any(|m| m.field.as_ref() == Some(name) || m.name == *name)
                || self.columns.iter().any(|c| c.slot == slot);
            if !known {
                self.columns.push(DimColumn::new(
                    Dimension {
                        name: name.clone(),
                        value_type: ValueType::String,
                    },
                    slot,
                    &self.spec.granularity,
                ));
            }
        }
        self.undiscovered = still;
    }

    /// Every row, sorted and rolled up, with what is needed to write them.
    pub fn finish(self) -> io::Result<Finished> {
        let (dimensions, dictionaries): (Vec<Dimension>, Vec<Dictionary>) = self
            .columns
            .into_iter()
            .map(|c| (c.dimension, c.dictionary))
            .unzip();
        let dictionaries = Rc::new(dictionaries);
        // Dimensions with many values (a comment, an id) are compared by value when the merge
        // gets to them, which it seldom does: ranking them would sort the whole dictionary.
        let ranks: Vec<Option<Rc<Vec<u32>>>> = dictionaries
            .iter()
            .map(|d| (d.len() <= RANKED_MAX).then(|| Rc::new(d.ranks())))
            .collect();
        let key = PackedKey::new(&ranks);
        let values = dictionaries.clone();
        let order: MergeOrder = Rc::new(move |d, x, y| match &ranks[d] {
            Some(r) => r[x as usize].cmp(&r[y as usize]),
            None => values[d].get(x).order(values[d].get(y)),
        });
        let rows = self.store.finish_by(order, key.as_ref())?;
        Ok(Finished {
            dimensions,
            dictionaries,
            rows,
        })
    }
}

/// A dimension's dictionary: ids shared by equal values only where rows are rolled up.
fn new_dictionary(granularity: &crate::spec::GranularitySpec) -> Dictionary {
    if granularity.rollup {
        Dictionary::default()
    } else {
        Dictionary::unshared()
    }
}

fn matches(filter: &Filter, record: &Record, fields: &Fields) -> bool {
    // Borrowed from the record: no copy of a value per row and filter.
    crate::filter::matches(filter, &|dim: &str| {
        let cell = fields.slot(dim).map_or(&Cell::Missing, |s| record.get(s));
        match cell {
            Cell::Missing | Cell::Null => vec![None],
            Cell::List(items) => items.iter().map(Cell::text).collect(),
            c => vec![c.text()],
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::dictionary::DimValue;
    use crate::row_store::Row;

    fn tutorial_spec() -> IngestionSpec {
        IngestionSpec::from_task(
            &serde_json::from_str(&crate::tutorial::tutorial_file("rollup-index.json")).unwrap(),
        )
        .unwrap()
    }

    fn feed(b: &mut RowBuilder, line: &str) -> Result<(), RowError> {
        let mut rec = Record::new(b.fields());
        match rec.read_json(line, b.fields()) {
            Err(e) => {
                b.unparseable();
                Err(e)
            }
            Ok(()) => b.add(&mut rec).unwrap(),
        }
    }

    fn rows(b: RowBuilder) -> (Vec<Dimension>, Vec<Dictionary>, Vec<Row>) {
        let mut f = b.finish().unwrap();
        let f_dims = std::mem::take(&mut f.dimensions);
        let mut out = Vec::new();
        while let Some(r) = f.rows.next_row().unwrap() {
            out.push(r);
        }
        let dictionaries = std::mem::take(&mut f.dictionaries);
        drop(f);
        let Ok(dictionaries) = Rc::try_unwrap(dictionaries) else {
            panic!("the merge, which shares the dictionaries, is over");
        };
        (f_dims, dictionaries, out)
    }

    fn string(dicts: &[Dictionary], row: &Row, d: usize) -> Option<String> {
        match dicts[d].get(row.dim(d)) {
            DimValue::String(s) => Some(s.to_string()),
            DimValue::Null => None,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_rollup_tutorial_sums_per_minute_even_when_spilling() {
        let lines: Vec<String> = crate::tutorial::tutorial_file("rollup-data.json")
            .lines()
            .map(str::to_string)
            .collect();
        // Expected, computed independently: group by minute, srcIP, dstIP.
        let mut expected: HashMap<(String, String, String), (i64, i64, i64)> = HashMap::new();
        for l in &lines {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            let e = expected
                .entry((
                    r["timestamp"].as_str().unwrap()[..16].to_string(),
                    r["srcIP"].as_str().unwrap().into(),
                    r["dstIP"].as_str().unwrap().into(),
                ))
                .or_default();
            e.0 += 1;
            e.1 += r["packets"].as_i64().unwrap();
            e.2 += r["bytes"].as_i64().unwrap();
        }
        for max_rows_in_memory in [1_000_000, 2, 1] {
            let mut spec = tutorial_spec();
            spec.tuning.max_rows_in_memory = max_rows_in_memory;
            let dir = tempfile::tempdir().unwrap();
            let mut b = RowBuilder::new(&spec, dir.path()).unwrap();
            for l in &lines {
                feed(&mut b, l).unwrap();
            }
            assert_eq!(b.stats.processed, lines.len() as u64);
            assert_eq!(b.spills() > 0, max_rows_in_memory < 5);
            assert!(b.store.in_memory() as u64 <= max_rows_in_memory);
            let (_, dicts, rows) = rows(b);
            assert_eq!(rows.len(), 5, "the tutorial's documented result");
            for row in &rows {
                let t = chrono::DateTime::from_timestamp_millis(row.time).unwrap();
                let minute = drover_core::time::to_iso(t)[..16].to_string();
                let key = (
                    minute,
                    string(&dicts, row, 0).unwrap(),
                    string(&dicts, row, 1).unwrap(),
                );
                let want = expected[&key];
                let got: Vec<MetricValue> = row.metrics.iter().map(|m| m.value).collect();
                assert_eq!(
                    got,
                    [
                        MetricValue::Long(want.0),
                        MetricValue::Long(want.1),
                        MetricValue::Long(want.2)
                    ]
                );
            }
            assert!(rows.windows(2).all(|w| w[0].time <= w[1].time));
        }
    }

    #[test]
    fn many_valued_dimensions_sort_by_value_through_spills() {
        // srcIP has more values than are ranked: the merge compares them by value.
        let mut spec = tutorial_spec();
        spec.tuning.max_rows_in_memory = 20_000;
        let dir = tempfile::tempdir().unwrap();
        let mut b = RowBuilder::new(&spec, dir.path()).unwrap();
        let n = RANKED_MAX + 5_000;
        for i in (0..n).rev() {
            let line = format!(
                r#"{{"timestamp":"2018-01-01T01:01:00Z","srcIP":"ip-{:07}","dstIP":"{}","packets":1,"bytes":1}}"#,
                (i * 7919) % n,
                i % 3
            );
            feed(&mut b, &line).unwrap();
        }
        assert!(b.spills() > 0);
        let (_, dicts, rows) = rows(b);
        assert_eq!(rows.len(), n);
        let keys: Vec<(String, String)> = rows
            .iter()
            .map(|r| (string(&dicts, r, 0).unwrap(), string(&dicts, r, 1).unwrap()))
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "sorted by value, each once"
        );
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
        let dir = tempfile::tempdir().unwrap();
        let mut b = RowBuilder::new(&spec, dir.path()).unwrap();
        feed(&mut b, r#"{"timestamp":"2018-01-01T01:01:35Z","srcIP":"1.1.1.1","dstIP":"x","packets":1,"bytes":2}"#).unwrap();
        feed(
            &mut b,
            r#"{"timestamp":"2019-01-01T00:00:00Z","srcIP":"1.1.1.1","packets":1,"bytes":2}"#,
        )
        .unwrap();
        feed(
            &mut b,
            r#"{"timestamp":"2018-01-01T02:00:00Z","srcIP":"7.7.7.7","packets":1,"bytes":2}"#,
        )
        .unwrap();
        assert!(feed(&mut b, r#"{"srcIP":"1.1.1.1"}"#).is_err());
        assert!(feed(&mut b, "not json").is_err());
        feed(&mut b, r#"{"timestamp":"2018-01-01T03:00:00Z","srcIP":"1.1.1.1","port":"80","packets":"many","bytes":2}"#).unwrap();
        let names: Vec<String> = b.dimensions().into_iter().map(|d| d.name).collect();
        assert_eq!(
            names,
            ["srcIP", "port"],
            "discovered, without the timestamp, metric inputs and exclusions"
        );
        assert_eq!(
            b.stats,
            RowStats {
                processed: 2,
                processed_with_error: 1,
                thrown_away: 2,
                unparseable: 2
            }
        );
        let (_, dicts, rows) = rows(b);
        assert_eq!(rows.len(), 2);
        assert_eq!(string(&dicts, &rows[0], 0).as_deref(), Some("1.1.1.1"));
        assert_eq!(string(&dicts, &rows[0], 1), None);
        assert_eq!(string(&dicts, &rows[1], 1).as_deref(), Some("80"));
    }

    #[test]
    fn transforms_feed_dimensions_metrics_and_filters() {
        let mut spec = tutorial_spec();
        spec.transforms = vec![
            crate::spec::Transform {
                name: "pair".into(),
                expression: "concat(srcIP, '>', dstIP)".into(),
            },
            crate::spec::Transform {
                name: "bytes".into(),
                expression: "bytes * 2".into(),
            },
        ];
        spec.dimensions.dimensions = vec![Dimension {
            name: "pair".into(),
            value_type: ValueType::String,
        }];
        spec.filter = Some(Filter::Selector {
            dimension: "pair".into(),
            value: Some("1.1.1.1>2.2.2.2".into()),
        });
        let dir = tempfile::tempdir().unwrap();
        let mut b = RowBuilder::new(&spec, dir.path()).unwrap();
        feed(&mut b, r#"{"timestamp":"2018-01-01T01:01:35Z","srcIP":"1.1.1.1","dstIP":"2.2.2.2","packets":1,"bytes":10}"#).unwrap();
        feed(&mut b, r#"{"timestamp":"2018-01-01T01:01:36Z","srcIP":"1.1.1.1","dstIP":"3.3.3.3","packets":1,"bytes":10}"#).unwrap();
        assert_eq!(b.stats.thrown_away, 1, "the filter sees transformed fields");
        let (_, dicts, rows) = rows(b);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            string(&dicts, &rows[0], 0).as_deref(),
            Some("1.1.1.1>2.2.2.2")
        );
        assert_eq!(
            rows[0].metrics[2].value,
            MetricValue::Long(20),
            "a transform may replace an input field"
        );
    }
}
