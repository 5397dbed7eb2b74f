//! Segments as Apache Parquet: one file per segment partition, columns `__time` (timestamp in
//! milliseconds, UTC), then the dimensions, then the metrics — readable by DuckDB, DataFusion,
//! Spark or pandas. Rows are cut into partitions by `segmentGranularity` and `maxRowsPerSegment`.

use std::sync::Arc;

use arrow_array::builder::{
    Float32Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use drover_core::granularity::Granularity;
use drover_core::interval::Interval;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::{json, Map, Value};

use crate::rollup::{DimValue, MetricValue, SegmentRow};
use crate::spec::{Aggregator, AggregatorKind, Dimension, ValueType};

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// One segment partition's rows, before writing.
#[derive(Debug)]
pub struct Partition {
    pub interval: Interval,
    pub partition_num: u32,
    pub rows: Vec<SegmentRow>,
}

/// Cuts time-ordered rows into `segmentGranularity` buckets of at most `max_rows` rows each.
pub fn partition(rows: Vec<SegmentRow>, granularity: Granularity, max_rows: u64) -> Vec<Partition> {
    let mut out: Vec<Partition> = Vec::new();
    for row in rows {
        let bucket = granularity.bucket(row.time);
        match out.last_mut() {
            Some(p) if p.interval == bucket && (p.rows.len() as u64) < max_rows.max(1) => {
                p.rows.push(row)
            }
            Some(p) if p.interval == bucket => {
                let partition_num = p.partition_num + 1;
                out.push(Partition {
                    interval: bucket,
                    partition_num,
                    rows: vec![row],
                });
            }
            _ => {
                let partition_num = out
                    .iter()
                    .filter(|p| p.interval == bucket)
                    .map(|p| p.partition_num + 1)
                    .max()
                    .unwrap_or(0);
                out.push(Partition {
                    interval: bucket,
                    partition_num,
                    rows: vec![row],
                });
            }
        }
    }
    out
}

fn metric_type(kind: AggregatorKind) -> DataType {
    use AggregatorKind::*;
    match kind {
        k if k.is_long() => DataType::Int64,
        FloatSum | FloatMin | FloatMax => DataType::Float32,
        _ => DataType::Float64,
    }
}

/// Writes one partition as a Parquet file (snappy-compressed) and returns its bytes.
pub fn write_parquet(
    rows: &[SegmentRow],
    dimensions: &[Dimension],
    metrics: &[Aggregator],
) -> Result<Vec<u8>, SegmentError> {
    let mut fields = vec![Field::new(
        "__time",
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    )];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(
        TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.time.timestamp_millis()))
            .with_timezone("UTC"),
    )];
    for (i, d) in dimensions.iter().enumerate() {
        let multi = rows
            .iter()
            .any(|r| matches!(r.dims.get(i), Some(DimValue::Multi(_))));
        let (data_type, array): (DataType, ArrayRef) = match d.value_type {
            ValueType::String if multi => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for r in rows {
                    match r.dims.get(i) {
                        Some(DimValue::Multi(vs)) => {
                            vs.iter().for_each(|v| b.values().append_value(v));
                            b.append(true);
                        }
                        Some(DimValue::String(s)) => {
                            b.values().append_value(s);
                            b.append(true);
                        }
                        _ => b.append(false),
                    }
                }
                let array = b.finish();
                (array.data_type().clone(), Arc::new(array))
            }
            ValueType::String => {
                let mut b = StringBuilder::new();
                for r in rows {
                    match r.dims.get(i) {
                        Some(DimValue::String(s)) => b.append_value(s),
                        _ => b.append_null(),
                    }
                }
                (DataType::Utf8, Arc::new(b.finish()))
            }
            ValueType::Long => {
                let mut b = Int64Builder::new();
                for r in rows {
                    match r.dims.get(i) {
                        Some(DimValue::Long(v)) => b.append_value(*v),
                        _ => b.append_null(),
                    }
                }
                (DataType::Int64, Arc::new(b.finish()))
            }
            ValueType::Float | ValueType::Double => {
                let mut b = Float64Builder::new();
                for r in rows {
                    match r.dims.get(i) {
                        Some(DimValue::Double(v)) => b.append_value(*v),
                        _ => b.append_null(),
                    }
                }
                (DataType::Float64, Arc::new(b.finish()))
            }
        };
        fields.push(Field::new(&d.name, data_type, true));
        columns.push(array);
    }
    for (i, m) in metrics.iter().enumerate() {
        let data_type = metric_type(m.kind);
        let array: ArrayRef = match data_type {
            DataType::Int64 => {
                let mut b = Int64Builder::new();
                rows.iter().for_each(|r| match r.metrics[i] {
                    MetricValue::Long(v) => b.append_value(v),
                    MetricValue::Double(v) => b.append_value(v as i64),
                });
                Arc::new(b.finish())
            }
            DataType::Float32 => {
                let mut b = Float32Builder::new();
                rows.iter().for_each(|r| match r.metrics[i] {
                    MetricValue::Double(v) => b.append_value(v as f32),
                    MetricValue::Long(v) => b.append_value(v as f32),
                });
                Arc::new(b.finish())
            }
            _ => {
                let mut b = Float64Builder::new();
                rows.iter().for_each(|r| match r.metrics[i] {
                    MetricValue::Double(v) => b.append_value(v),
                    MetricValue::Long(v) => b.append_value(v as f64),
                });
                Arc::new(b.finish())
            }
        };
        fields.push(Field::new(&m.name, data_type, false));
        columns.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(out)
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
    use crate::rollup::Rollup;
    use crate::spec::IngestionSpec;

    #[test]
    fn the_rollup_tutorial_round_trips_through_parquet() {
        let task: Value =
            serde_json::from_str(&crate::tutorial::tutorial_file("rollup-index.json")).unwrap();
        let spec = IngestionSpec::from_task(&task).unwrap();
        let mut rollup = Rollup::new(&spec);
        let mut reader = crate::format::RecordReader::new(spec.input_format.clone());
        for line in crate::tutorial::tutorial_file("rollup-data.json").lines() {
            if let Some(raw) = reader.read(line).unwrap() {
                rollup.add(&raw).unwrap();
            }
        }
        let rows = rollup.finish();
        let parts = partition(
            rows,
            spec.granularity.segment,
            spec.tuning.max_rows_per_segment,
        );
        assert_eq!(parts.len(), 2, "two daily segments");
        let mut total = 0;
        for p in &parts {
            let bytes = write_parquet(&p.rows, rollup.dimensions(), rollup.metrics()).unwrap();
            let back = read_parquet(bytes).unwrap();
            assert_eq!(back.len(), p.rows.len());
            for (row, json) in p.rows.iter().zip(&back) {
                assert_eq!(json["__time"], drover_core::time::to_iso(row.time));
                assert!(p.interval.contains(row.time));
                let MetricValue::Long(count) = row.metrics[0] else {
                    panic!()
                };
                assert_eq!(json["count"], count);
                assert!(json["srcIP"].is_string() && json["packets"].is_i64());
            }
            total += back.len();
        }
        assert_eq!(total, 5);
    }

    #[test]
    fn partitions_respect_max_rows_and_buckets() {
        let t = |s: &str| drover_core::interval::parse_instant(s).unwrap();
        let row = |s: &str| SegmentRow {
            time: t(s),
            dims: vec![],
            metrics: vec![],
        };
        let rows = vec![
            row("2020-01-01T01:00Z"),
            row("2020-01-01T02:00Z"),
            row("2020-01-01T03:00Z"),
            row("2020-01-02T00:00Z"),
        ];
        let parts = partition(rows, Granularity::Day, 2);
        let shape: Vec<(String, u32, usize)> = parts
            .iter()
            .map(|p| {
                (
                    p.interval.to_string()[..10].to_string(),
                    p.partition_num,
                    p.rows.len(),
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
    }

    #[test]
    fn typed_and_multi_value_columns() {
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
        let metrics = vec![Aggregator {
            kind: AggregatorKind::DoubleSum,
            name: "x".into(),
            field: Some("x".into()),
        }];
        let t = drover_core::interval::parse_instant("2020-01-01T00:00Z").unwrap();
        let rows = vec![
            SegmentRow {
                time: t,
                dims: vec![
                    DimValue::Multi(vec!["a".into(), "b".into()]),
                    DimValue::Long(7),
                ],
                metrics: vec![MetricValue::Double(1.5)],
            },
            SegmentRow {
                time: t,
                dims: vec![DimValue::Null, DimValue::Null],
                metrics: vec![MetricValue::Double(2.0)],
            },
        ];
        let back = read_parquet(write_parquet(&rows, &dims, &metrics).unwrap()).unwrap();
        assert_eq!(back[0]["tags"], json!(["a", "b"]));
        assert_eq!(back[0]["n"], 7);
        assert_eq!(back[1]["n"], Value::Null);
        assert_eq!(back[1]["x"], 2.0);
    }
}
