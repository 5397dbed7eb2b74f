//! Segments as Apache Parquet: one file per segment partition, columns `__time` (timestamp in
//! milliseconds, UTC), then the dimensions, then the metrics — readable by DuckDB, DataFusion,
//! Spark or pandas. Rows are cut into partitions by `segmentGranularity` and `maxRowsPerSegment`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    Float32Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow_array::{Array, ArrayRef, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::DateTime;
use drover_core::granularity::Granularity;
use drover_core::interval::Interval;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnDescPtr;
use parquet::schema::types::ColumnPath;
use serde_json::{json, Map, Value};

use crate::aggregate::MetricValue;
use crate::dict_column::DictColumnEncoder;
use crate::dictionary::{Dictionary, DimValue};
use crate::row_store::Row;
use crate::spec::{Aggregator, AggregatorKind, Dimension, ValueType};

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A segment partition written to a local file, ready for deep storage.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenPartition {
    pub interval: Interval,
    pub partition_num: u32,
    /// Its bucket in the time chunk (secondary partitioning; 0 otherwise).
    pub bucket: u32,
    pub rows: u64,
    pub path: PathBuf,
}

/// Rows per Parquet row group: a file's rows are held until a row group is full, then written
/// column by column.
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows held across all open files (one per bucket with secondary partitioning): past this the
/// fullest file writes its row group early, so that many buckets do not each hold a row group.
const MAX_HELD_ROWS: usize = 2 * ROW_GROUP_ROWS;

fn metric_type(kind: AggregatorKind) -> DataType {
    use AggregatorKind::*;
    match kind {
        k if k.is_long() => DataType::Int64,
        FloatSum | FloatMin | FloatMax => DataType::Float32,
        _ => DataType::Float64,
    }
}

struct Open {
    bucket: u32,
    partition_num: u32,
    rows: u64,
    path: PathBuf,
    file: SerializedFileWriter<File>,
    /// Makes the Arrow-encoded columns' writers for each row group.
    columns: ArrowRowGroupWriterFactory,
    row_groups: usize,
    /// The rows of the row group being filled.
    batch: Batch,
}

/// Rows held for a row group, by column: a row's values are copied out as it arrives, so the
/// row itself is dropped at once, and each column is written from one contiguous vector.
struct Batch {
    whole_group: bool,
    times: Vec<i64>,
    /// Each dimension's value ids.
    dims: Vec<Vec<u32>>,
    /// Each metric's values.
    metrics: Vec<Vec<MetricValue>>,
}

impl Batch {
    /// `whole_group`: make room for a whole row group at the first row (a file alone in its
    /// time chunk), rather than as rows come (one of many bucket files, which share
    /// [`MAX_HELD_ROWS`] between them).
    fn new(dimensions: usize, metrics: usize, whole_group: bool) -> Self {
        Batch {
            whole_group,
            times: Vec::new(),
            dims: vec![Vec::new(); dimensions],
            metrics: vec![Vec::new(); metrics],
        }
    }

    fn len(&self) -> usize {
        self.times.len()
    }

    fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    fn push(&mut self, row: &Row) {
        if self.times.capacity() == 0 && self.whole_group {
            // Room for a whole row group at once, not by doubling: untouched room costs
            // address space only.
            self.times.reserve_exact(ROW_GROUP_ROWS);
            self.dims
                .iter_mut()
                .for_each(|c| c.reserve_exact(ROW_GROUP_ROWS));
            self.metrics
                .iter_mut()
                .for_each(|c| c.reserve_exact(ROW_GROUP_ROWS));
        }
        self.times.push(row.time);
        for (d, ids) in self.dims.iter_mut().enumerate() {
            ids.push(row.dim(d));
        }
        for (values, m) in self.metrics.iter_mut().zip(row.metrics.iter()) {
            values.push(m.value);
        }
    }

    /// Forgets the rows, keeping the room they took.
    fn clear(&mut self) {
        self.times.clear();
        self.dims.iter_mut().for_each(Vec::clear);
        self.metrics.iter_mut().for_each(Vec::clear);
    }
}

/// How a column of the file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encode {
    /// String dimension `d`, from its dictionary ids ([`DictColumnEncoder`]).
    FromIds(usize),
    /// Built as an Arrow array, encoded by Parquet's Arrow writer.
    Arrow,
}

/// Picks a row's bucket inside its time chunk (secondary partitioning).
pub type BucketOf<'a> = Box<dyn FnMut(&Interval, &Row) -> u32 + 'a>;

/// Writes time-ordered rows as Parquet files, one per segment partition: a new file at each
/// `segmentGranularity` bucket and every `maxRowsPerSegment` rows — or, with buckets, one file
/// per bucket of each time chunk.
pub struct SegmentWriter<'a> {
    dir: PathBuf,
    granularity: Granularity,
    max_rows: u64,
    dictionaries: &'a [Dictionary],
    metrics: &'a [Aggregator],
    schema: SchemaRef,
    /// How every file is written, and each of its columns.
    props: WriterProperties,
    encode: Vec<Encode>,
    ids: DictColumnEncoder,
    bucket_of: Option<BucketOf<'a>>,
    /// The time chunk being written: (start ms, end ms, interval), and its next partition.
    chunk: Option<(i64, i64, Interval)>,
    next_partition: u32,
    /// Its open files, by bucket, and the rows they hold between them.
    open: Vec<Open>,
    held: usize,
    done: Vec<WrittenPartition>,
}

impl<'a> SegmentWriter<'a> {
    /// Files go to `dir`; a dimension whose dictionary holds lists becomes a list column.
    pub fn new(
        dir: &Path,
        granularity: Granularity,
        max_rows: u64,
        dimensions: &'a [Dimension],
        dictionaries: &'a [Dictionary],
        metrics: &'a [Aggregator],
    ) -> Self {
        let mut fields = vec![Field::new(
            "__time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        )];
        for (d, dict) in dimensions.iter().zip(dictionaries) {
            let data_type = match d.value_type {
                ValueType::String if dict.has_multi() => {
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
                }
                ValueType::String => DataType::Utf8,
                ValueType::Long => DataType::Int64,
                ValueType::Float | ValueType::Double => DataType::Float64,
            };
            fields.push(Field::new(&d.name, data_type, true));
        }
        for m in metrics {
            fields.push(Field::new(&m.name, metric_type(m.kind), false));
        }
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
        // Parquet's dictionary would look up every value of a column of nearly unique values,
        // only to give up once its page is full.
        for (d, dict) in dimensions.iter().zip(dictionaries) {
            if dict.mostly_unique() {
                props =
                    props.set_column_dictionary_enabled(ColumnPath::from(d.name.as_str()), false);
            }
        }
        // Time, sorted, as deltas bit-packed by block (nearly all 0 or small): Parquet's
        // dictionary would hash every value, and hold one entry per distinct millisecond.
        let time = ColumnPath::from("__time");
        props = props
            .set_column_dictionary_enabled(time.clone(), false)
            .set_column_encoding(time, Encoding::DELTA_BINARY_PACKED);
        // Other string columns are dictionary-encoded from the ids the rows already hold.
        let mut encode = vec![Encode::Arrow];
        for (d, dict) in dictionaries.iter().enumerate() {
            let field = &fields[d + 1];
            encode.push(match field.data_type() {
                DataType::Utf8 if !dict.mostly_unique() => Encode::FromIds(d),
                _ => Encode::Arrow,
            });
        }
        encode.resize(fields.len(), Encode::Arrow);
        SegmentWriter {
            dir: dir.to_path_buf(),
            granularity,
            max_rows: max_rows.max(1),
            dictionaries,
            metrics,
            schema: Arc::new(Schema::new(fields)),
            props: props.build(),
            encode,
            ids: DictColumnEncoder::default(),
            bucket_of: None,
            chunk: None,
            next_partition: 0,
            open: Vec::new(),
            held: 0,
            done: Vec::new(),
        }
    }

    /// Rows go to one file per bucket of their time chunk, whatever their number.
    pub fn with_buckets(mut self, bucket_of: BucketOf<'a>) -> Self {
        self.bucket_of = Some(bucket_of);
        self.max_rows = u64::MAX;
        self
    }

    pub fn push(&mut self, row: Row) -> Result<(), SegmentError> {
        let in_chunk = self
            .chunk
            .as_ref()
            .is_some_and(|(start, end, _)| row.time >= *start && row.time < *end);
        if !in_chunk {
            self.close_all()?;
            let time = DateTime::from_timestamp_millis(row.time).unwrap_or_default();
            let interval = self.granularity.bucket(time);
            self.chunk = Some((
                interval.start.timestamp_millis(),
                interval.end.timestamp_millis(),
                interval,
            ));
            self.next_partition = 0;
        }
        let interval = self.chunk.as_ref().expect("set above").2;
        let bucket = match &mut self.bucket_of {
            Some(f) => f(&interval, &row),
            None => 0,
        };
        let at = match self.open.iter().position(|o| o.bucket == bucket) {
            Some(i) if self.open[i].rows < self.max_rows => i,
            found => {
                if let Some(i) = found {
                    let full = self.open.swap_remove(i);
                    self.close(full)?;
                }
                let partition_num = if self.bucket_of.is_some() {
                    bucket
                } else {
                    self.next_partition
                };
                self.next_partition += 1;
                let path = self
                    .dir
                    .join(format!("{}.parquet", self.done.len() + self.open.len()));
                // The Arrow writer sets the file up (schema, its Arrow form in the metadata);
                // row groups are then written column by column.
                let (file, columns) = ArrowWriter::try_new(
                    File::create(&path)?,
                    self.schema.clone(),
                    Some(self.props.clone()),
                )?
                .into_serialized_writer()?;
                self.open.push(Open {
                    bucket,
                    partition_num,
                    rows: 0,
                    path,
                    file,
                    columns,
                    row_groups: 0,
                    batch: Batch::new(
                        self.dictionaries.len(),
                        self.metrics.len(),
                        self.bucket_of.is_none(),
                    ),
                });
                self.open.len() - 1
            }
        };
        let o = &mut self.open[at];
        o.rows += 1;
        o.batch.push(&row);
        self.held += 1;
        let full = if o.batch.len() >= ROW_GROUP_ROWS {
            Some(at)
        } else if self.held >= MAX_HELD_ROWS {
            (0..self.open.len()).max_by_key(|&i| self.open[i].batch.len())
        } else {
            None
        };
        if let Some(i) = full {
            let mut open = std::mem::take(&mut self.open);
            let written = self.write_row_group(&mut open[i]);
            self.open = open;
            written?;
        }
        Ok(())
    }

    /// Writes the rows `o` holds as one row group, column by column.
    fn write_row_group(&mut self, o: &mut Open) -> Result<(), SegmentError> {
        self.held -= o.batch.len();
        let arrow_writers = o.columns.create_column_writers(o.row_groups)?;
        o.row_groups += 1;
        let descrs: Vec<ColumnDescPtr> = (0..self.encode.len())
            .map(|c| o.file.schema_descr().column(c))
            .collect();
        let mut group = o.file.next_row_group()?;
        for (c, writer) in arrow_writers.into_iter().enumerate() {
            match self.encode[c] {
                Encode::FromIds(d) => {
                    let ids = o.batch.dims[d].iter().copied();
                    let chunk = self
                        .ids
                        .encode(descrs[c].clone(), &self.dictionaries[d], ids)?;
                    group.append_column(&chunk.bytes, chunk.close)?;
                }
                Encode::Arrow => {
                    let mut writer = writer;
                    let array = self.column_array(c, &o.batch);
                    for leaf in compute_leaves(self.schema.field(c), &array)? {
                        writer.write(&leaf)?;
                    }
                    writer.close()?.append_to_row_group(&mut group)?;
                }
            }
        }
        group.close()?;
        o.batch.clear();
        Ok(())
    }

    /// Closes a file and describes it.
    fn close(&mut self, mut o: Open) -> Result<(), SegmentError> {
        if !o.batch.is_empty() {
            self.write_row_group(&mut o)?;
        }
        o.file.close()?;
        let interval = self.chunk.as_ref().expect("a file is open in a chunk").2;
        self.done.push(WrittenPartition {
            interval,
            partition_num: o.partition_num,
            bucket: o.bucket,
            rows: o.rows,
            path: o.path,
        });
        Ok(())
    }

    /// Closes the chunk's files, in bucket order.
    fn close_all(&mut self) -> Result<(), SegmentError> {
        let mut open = std::mem::take(&mut self.open);
        open.sort_by_key(|o| o.bucket);
        for o in open {
            self.close(o)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<WrittenPartition>, SegmentError> {
        self.close_all()?;
        Ok(self.done)
    }

    /// Column `c` of `rows` as an Arrow array: `__time`, then the dimensions, then the metrics.
    fn column_array(&self, c: usize, rows: &Batch) -> ArrayRef {
        if c == 0 {
            return Arc::new(
                TimestampMillisecondArray::from_iter_values(rows.times.iter().copied())
                    .with_timezone("UTC"),
            );
        }
        if let Some(dict) = self.dictionaries.get(c - 1) {
            return self.dimension_array(c - 1, dict, &rows.dims[c - 1]);
        }
        let i = c - 1 - self.dictionaries.len();
        let values = rows.metrics[i].iter();
        match metric_type(self.metrics[i].kind) {
            DataType::Int64 => Arc::new(
                values
                    .map(|v| match *v {
                        MetricValue::Long(v) => v,
                        MetricValue::Double(v) => v as i64,
                    })
                    .collect::<arrow_array::Int64Array>(),
            ),
            DataType::Float32 => {
                let mut b = Float32Builder::with_capacity(rows.len());
                values.for_each(|v| match *v {
                    MetricValue::Double(v) => b.append_value(v as f32),
                    MetricValue::Long(v) => b.append_value(v as f32),
                });
                Arc::new(b.finish())
            }
            _ => Arc::new(
                values
                    .map(|v| match *v {
                        MetricValue::Double(v) => v,
                        MetricValue::Long(v) => v as f64,
                    })
                    .collect::<arrow_array::Float64Array>(),
            ),
        }
    }

    /// Dimension `i`'s values, from their ids.
    fn dimension_array(&self, i: usize, dict: &Dictionary, ids: &[u32]) -> ArrayRef {
        match self.schema.field(i + 1).data_type() {
            DataType::List(_) => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for &id in ids {
                    match dict.get(id) {
                        DimValue::Multi(vs) => {
                            vs.iter().for_each(|v| b.values().append_value(v));
                            b.append(true);
                        }
                        DimValue::String(s) => {
                            b.values().append_value(s);
                            b.append(true);
                        }
                        _ => b.append(false),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Utf8 => {
                let mut b = StringBuilder::with_capacity(ids.len(), ids.len() * 16);
                for &id in ids {
                    match dict.get(id) {
                        DimValue::String(s) => b.append_value(s),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Int64 => {
                let mut b = Int64Builder::with_capacity(ids.len());
                for &id in ids {
                    match dict.get(id) {
                        DimValue::Long(v) => b.append_value(*v),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = Float64Builder::with_capacity(ids.len());
                for &id in ids {
                    match dict.get(id) {
                        DimValue::Double(v) => b.append_value(*v),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
        }
    }
}

/// What a segment column holds, as its Parquet type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Time,
    Text,
    Long,
    Double,
}

/// The columns of a segment file and their kinds, from its schema (no rows are read).
pub fn column_kinds(bytes: Vec<u8>) -> Result<Vec<(String, ColumnKind)>, SegmentError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))?;
    Ok(builder
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let kind = match f.data_type() {
                DataType::Timestamp(..) => ColumnKind::Time,
                DataType::Int64 | DataType::Int32 => ColumnKind::Long,
                DataType::Float64 | DataType::Float32 => ColumnKind::Double,
                _ => ColumnKind::Text,
            };
            (f.name().clone(), kind)
        })
        .collect())
}

/// How a row's time is written when a segment is read back as JSON lines: under which name,
/// rendered from its milliseconds how.
pub type TimeField<'a> = (&'a str, &'a dyn Fn(i64) -> Value);

/// Writes a segment file's rows to `out` as JSON lines, keeping those whose time (in
/// milliseconds) `keep` accepts, the time written as `time_fields` say instead of the file's
/// own `__time`; answers how many rows it wrote. Straight from the columns: no row is built as
/// a JSON value on the way.
pub fn write_json_lines(
    bytes: Vec<u8>,
    out: &mut dyn std::io::Write,
    keep: &dyn Fn(i64) -> bool,
    time_fields: &[TimeField<'_>],
) -> Result<u64, SegmentError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int64Type, TimestampMillisecondType};
    let io = SegmentError::Io;
    let json = |e: serde_json::Error| SegmentError::Io(e.into());
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))?.build()?;
    let mut written = 0;
    for batch in reader {
        let batch = batch?;
        let schema = batch.schema();
        let Some(time_col) = schema
            .fields()
            .iter()
            .position(|f| matches!(f.data_type(), DataType::Timestamp(..)))
        else {
            continue;
        };
        let times = batch
            .column(time_col)
            .as_primitive::<TimestampMillisecondType>();
        for r in 0..batch.num_rows() {
            let ms = times.value(r);
            if !keep(ms) {
                continue;
            }
            out.write_all(b"{").map_err(io)?;
            let mut first = true;
            let mut key = |out: &mut dyn std::io::Write, name: &str| -> Result<(), SegmentError> {
                if !first {
                    out.write_all(b",").map_err(io)?;
                }
                first = false;
                serde_json::to_writer(&mut *out, name).map_err(json)?;
                out.write_all(b":").map_err(io)
            };
            for (name, render) in time_fields {
                key(out, name)?;
                serde_json::to_writer(&mut *out, &render(ms)).map_err(json)?;
            }
            for (c, field) in schema.fields().iter().enumerate() {
                if c == time_col || time_fields.iter().any(|(n, _)| n == field.name()) {
                    continue;
                }
                let col = batch.column(c);
                key(out, field.name())?;
                if col.is_null(r) {
                    out.write_all(b"null").map_err(io)?;
                    continue;
                }
                match field.data_type() {
                    DataType::Utf8 => {
                        serde_json::to_writer(&mut *out, col.as_string::<i32>().value(r))
                    }
                    DataType::Int64 => {
                        serde_json::to_writer(&mut *out, &col.as_primitive::<Int64Type>().value(r))
                    }
                    DataType::Float64 => serde_json::to_writer(
                        &mut *out,
                        &col.as_primitive::<Float64Type>().value(r),
                    ),
                    DataType::Float32 => serde_json::to_writer(
                        &mut *out,
                        &col.as_primitive::<Float32Type>().value(r),
                    ),
                    DataType::List(_) => {
                        let list = col.as_list::<i32>().value(r);
                        let strings = list.as_string::<i32>();
                        let items: Vec<&str> =
                            (0..strings.len()).map(|i| strings.value(i)).collect();
                        serde_json::to_writer(&mut *out, &items)
                    }
                    other => serde_json::to_writer(&mut *out, &format!("<{other}>")),
                }
                .map_err(json)?;
            }
            out.write_all(b"}\n").map_err(io)?;
            written += 1;
        }
    }
    Ok(written)
}

/// Reads a segment file back as JSON rows (`__time` as ISO) — for the dump tool and tests.
pub fn read_parquet(bytes: Vec<u8>) -> Result<Vec<Value>, SegmentError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int64Type, TimestampMillisecondType};
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))?.build()?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch?;
        let schema = batch.schema();
        for r in 0..batch.num_rows() {
            let mut row = Map::new();
            for (c, field) in schema.fields().iter().enumerate() {
                let col = batch.column(c);
                let value = if col.is_null(r) {
                    Value::Null
                } else {
                    match field.data_type() {
                        DataType::Timestamp(..) => {
                            let ms = col.as_primitive::<TimestampMillisecondType>().value(r);
                            json!(drover_core::time::to_iso(
                                chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
                            ))
                        }
                        DataType::Utf8 => json!(col.as_string::<i32>().value(r)),
                        DataType::Int64 => json!(col.as_primitive::<Int64Type>().value(r)),
                        DataType::Float64 => json!(col.as_primitive::<Float64Type>().value(r)),
                        DataType::Float32 => json!(col.as_primitive::<Float32Type>().value(r)),
                        DataType::List(_) => {
                            let list = col.as_list::<i32>().value(r);
                            let strings = list.as_string::<i32>();
                            json!((0..strings.len())
                                .map(|i| strings.value(i))
                                .collect::<Vec<_>>())
                        }
                        other => json!(format!("<{other}>")),
                    }
                };
                row.insert(field.name().clone(), value);
            }
            rows.push(Value::Object(row));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Metric;
    use crate::dictionary::Probe;

    fn t(s: &str) -> i64 {
        drover_core::interval::parse_instant(s)
            .unwrap()
            .timestamp_millis()
    }

    fn row(time: i64, dims: Vec<u32>, metric: f64) -> Row {
        Row {
            time,
            dims: dims.into(),
            metrics: vec![Metric {
                value: MetricValue::Double(metric),
                time,
            }]
            .into(),
        }
    }

    #[test]
    fn open_buckets_hold_a_bounded_number_of_rows() {
        let metrics = vec![Aggregator {
            kind: AggregatorKind::DoubleSum,
            name: "x".into(),
            field: Some("x".into()),
        }];
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::new(dir.path(), Granularity::Day, 1, &[], &[], &metrics)
            .with_buckets(Box::new(|_, r| (r.time % 4) as u32));
        let start = t("2020-01-01T00:00Z");
        let n = MAX_HELD_ROWS as i64 + 10;
        for i in 0..n {
            w.push(row(start + i, vec![], 1.0)).unwrap();
            assert!(w.held < MAX_HELD_ROWS);
        }
        let parts = w.finish().unwrap();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.iter().map(|p| p.rows).sum::<u64>(), n as u64);
        let back = read_parquet(std::fs::read(&parts[0].path).unwrap()).unwrap();
        assert_eq!(back.len() as u64, parts[0].rows);
    }

    #[test]
    fn partitions_by_bucket_and_max_rows_with_typed_and_list_columns() {
        let dims = vec![
            Dimension {
                name: "tags".into(),
                value_type: ValueType::String,
            },
            Dimension {
                name: "n".into(),
                value_type: ValueType::Long,
            },
        ];
        let mut tags = Dictionary::default();
        let ab = tags.intern(Probe::Multi(&["a".into(), "b".into()]));
        let c = tags.intern(Probe::Str("c"));
        let mut n = Dictionary::default();
        let seven = n.intern(Probe::Long(7));
        let dicts = vec![tags, n];
        let metrics = vec![Aggregator {
            kind: AggregatorKind::DoubleSum,
            name: "x".into(),
            field: Some("x".into()),
        }];
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::new(dir.path(), Granularity::Day, 2, &dims, &dicts, &metrics);
        w.push(row(t("2020-01-01T01:00Z"), vec![ab, seven], 1.5))
            .unwrap();
        w.push(row(t("2020-01-01T02:00Z"), vec![c], 2.0)).unwrap();
        w.push(row(t("2020-01-01T03:00Z"), vec![], 3.0)).unwrap();
        w.push(row(t("2020-01-02T00:00Z"), vec![c, seven], 4.0))
            .unwrap();
        let parts = w.finish().unwrap();
        let shape: Vec<(String, u32, u64)> = parts
            .iter()
            .map(|p| {
                (
                    p.interval.to_string()[..10].to_string(),
                    p.partition_num,
                    p.rows,
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("2020-01-01".into(), 0, 2),
                ("2020-01-01".into(), 1, 1),
                ("2020-01-02".into(), 0, 1)
            ]
        );
        let back = read_parquet(std::fs::read(&parts[0].path).unwrap()).unwrap();
        assert_eq!(back[0]["__time"], "2020-01-01T01:00:00.000Z");
        assert_eq!(back[0]["tags"], json!(["a", "b"]));
        assert_eq!(back[0]["n"], 7);
        assert_eq!(back[1]["tags"], json!(["c"]));
        assert_eq!(back[1]["n"], Value::Null);
        // The same rows as JSON lines straight from the columns, time rendered as asked, only
        // the rows `keep` accepts.
        let mut lines = Vec::new();
        let millis = |ms: i64| json!(ms);
        let iso = |ms: i64| {
            json!(drover_core::time::to_iso(
                chrono::DateTime::from_timestamp_millis(ms).unwrap()
            ))
        };
        let after_one = t("2020-01-01T01:30Z");
        let n = write_json_lines(
            std::fs::read(&parts[0].path).unwrap(),
            &mut lines,
            &|ms| ms > after_one,
            &[("__time", &millis), ("ts", &iso)],
        )
        .unwrap();
        assert_eq!(n, 1);
        let line: Value = serde_json::from_slice(&lines).unwrap();
        let mut expected = back[1].clone();
        expected["__time"] = json!(t("2020-01-01T02:00Z"));
        expected["ts"] = json!("2020-01-01T02:00:00.000Z");
        assert_eq!(line, expected);
        assert_eq!(back[1]["x"], 2.0);
        let last = read_parquet(std::fs::read(&parts[2].path).unwrap()).unwrap();
        assert_eq!(last[0]["x"], 4.0);
    }
}
