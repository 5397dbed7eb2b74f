//! Reading every input of a spec into segment files: records parsed, transformed, filtered,
//! rolled up (spilling sorted runs to disk past `maxRowsInMemory`), counted, then merged and cut
//! into Parquet files by `segmentGranularity` and `maxRowsPerSegment`. Parse errors past
//! `maxParseExceptions` stop the build with Druid's message.

use std::path::Path;
use std::time::Instant;

use crate::format::RecordReader;
use crate::input::Input;
use crate::parse_report::{now_millis, parse_exception_report, ErrorType};
use crate::partitioning::{ChunkBuckets, ChunkStats, KeyReader, PartitionPlan, StatsCollector};
use crate::record::{Record, RowError};
use crate::row_builder::{RowBuilder, RowStats};
use crate::segment::{SegmentWriter, WrittenPartition};
use crate::spec::{Dimension, IngestionSpec};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("cannot read {input}: {message}")]
    Input { input: String, message: String },
    #[error("Max parse exceptions[{0}] exceeded")]
    TooManyParseExceptions(u64),
    #[error("{0}")]
    Spec(String),
    #[error("cannot write to the task directory: {0}")]
    Local(String),
}

#[derive(Debug)]
pub struct Built {
    /// Segment files, in time order, in the work directory's `segments/`.
    pub partitions: Vec<WrittenPartition>,
    /// The segment's dimensions (discovered ones included).
    pub dimensions: Vec<Dimension>,
    pub stats: RowStats,
    /// Sorted runs spilled to disk because `maxRowsInMemory` rows were held, and the time that
    /// took (Druid's `ingest/persists/count` and `timeMs`).
    pub spills: usize,
    pub spill_time: std::time::Duration,
    /// Time reading, parsing and rolling up, then merging and writing files.
    pub read_ms: u128,
    pub write_ms: u128,
}

/// How many records a build reads between two progress calls.
pub const PROGRESS_EVERY: u64 = 4096;

/// One unusable record.
pub struct ParseError<'a> {
    /// Where and why: `<input> line N: <reason>`.
    pub detail: String,
    pub error_type: ErrorType,
    /// The record as read.
    pub input: &'a str,
}

impl ParseError<'_> {
    /// Druid's `ParseExceptionReport` for it, stamped now.
    pub fn report(&self) -> serde_json::Value {
        parse_exception_report(self.input, self.error_type, &self.detail, now_millis())
    }
}

/// What a build tells its caller while it reads.
pub trait BuildObserver {
    /// An unusable record, with the row stats so far (for `logParseExceptions`, the report's
    /// `unparseableEvents`, and the counts of a build that fails).
    fn parse_error(&mut self, error: &ParseError<'_>, stats: RowStats);
    /// The row stats so far, every [`PROGRESS_EVERY`] records (for live reports).
    fn progress(&mut self, _stats: RowStats) {}
}

/// A closure hears the parse errors' details only.
impl<F: FnMut(&str, RowStats)> BuildObserver for F {
    fn parse_error(&mut self, error: &ParseError<'_>, stats: RowStats) {
        self(&error.detail, stats)
    }
}

/// Reads `inputs` in order, using `work_dir` for spills and segment files, telling `observer`
/// about unusable records and progress.
pub fn build(
    spec: &IngestionSpec,
    inputs: &[Input],
    work_dir: &Path,
    observer: &mut dyn BuildObserver,
) -> Result<Built, BuildError> {
    build_partitioned(spec, inputs, work_dir, observer, None)
}

/// [`build`], with the rows of each time chunk bucketed by `plan` (hashed or range
/// partitioning): one file per bucket.
pub fn build_partitioned(
    spec: &IngestionSpec,
    inputs: &[Input],
    work_dir: &Path,
    observer: &mut dyn BuildObserver,
    plan: Option<&PartitionPlan>,
) -> Result<Built, BuildError> {
    let local = |e: std::io::Error| BuildError::Local(e.to_string());
    let segment_dir = work_dir.join("segments");
    std::fs::create_dir_all(&segment_dir).map_err(local)?;
    let started = Instant::now();
    let builder = read(spec, inputs, work_dir, observer)?;
    let read_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let stats = builder.stats;
    let spills = builder.spills();
    let spill_time = builder.spill_time();
    let (partitions, dimensions) = write_partitioned(spec, builder, &segment_dir, plan)?;
    Ok(Built {
        partitions,
        dimensions,
        stats,
        spills,
        spill_time,
        read_ms,
        write_ms: started.elapsed().as_millis(),
    })
}

/// The first pass of hashed and range partitioning: what the rows of each time chunk are,
/// after transforms, filters and rollup (Druid's `determine_partitions` phase).
pub fn partition_stats(
    spec: &IngestionSpec,
    inputs: &[Input],
    work_dir: &Path,
    observer: &mut dyn BuildObserver,
) -> Result<ChunkStats, BuildError> {
    let local = |e: std::io::Error| BuildError::Local(e.to_string());
    let builder = read(spec, inputs, work_dir, observer)?;
    let finished = builder.finish().map_err(local)?;
    let keys = KeyReader::new(
        &spec.tuning.partitions,
        &finished.dimensions,
        &finished.dictionaries,
    )
    .map_err(|e| BuildError::Spec(e.to_string()))?;
    let mut collector = StatsCollector::new(&spec.tuning.partitions);
    let mut rows = finished.rows;
    let mut chunk: Option<(i64, i64)> = None;
    while let Some(row) = rows.next_row().map_err(local)? {
        let (start, _) = match chunk {
            Some((s, e)) if row.time >= s && row.time < e => (s, e),
            _ => {
                let time = chrono::DateTime::from_timestamp_millis(row.time).unwrap_or_default();
                let i = spec.granularity.segment.bucket(time);
                let c = (i.start.timestamp_millis(), i.end.timestamp_millis());
                chunk = Some(c);
                c
            }
        };
        collector.observe(&keys, start, &row);
    }
    Ok(collector.finish())
}

/// Parses, transforms, filters and rolls up every record of `inputs` (spilling to
/// `work_dir/spill`).
fn read(
    spec: &IngestionSpec,
    inputs: &[Input],
    work_dir: &Path,
    observer: &mut dyn BuildObserver,
) -> Result<RowBuilder, BuildError> {
    let local = |e: std::io::Error| BuildError::Local(e.to_string());
    let spill_dir = work_dir.join("spill");
    std::fs::create_dir_all(&spill_dir).map_err(local)?;
    let mut builder = RowBuilder::new(spec, &spill_dir).map_err(|e| BuildError::Spec(e.0))?;
    let max = spec.tuning.max_parse_exceptions;
    for input in inputs {
        let fail = |e: std::io::Error| BuildError::Input {
            input: input.describe(),
            message: e.to_string(),
        };
        let mut lines = crate::lines::Lines::new(input.open().map_err(fail)?);
        let mut records = RecordReader::new(match input {
            Input::Rows(_) => crate::spec::InputFormat::Json,
            _ => spec.input_format.clone(),
        });
        let mut line_no = 0u64;
        // One record's cells, reused line after line.
        let mut spare = Record::default();
        while let Some(buf) = lines.next_line().map_err(fail)? {
            line_no += 1;
            if line_no.is_multiple_of(PROGRESS_EVERY) {
                observer.progress(builder.stats);
            }
            let unparseable_before = builder.stats.unparseable;
            let errors_before = builder.stats.unparseable + builder.stats.processed_with_error;
            let problem = match std::str::from_utf8(buf) {
                Err(_) => {
                    builder.unparseable();
                    Some(RowError::from("the line is not valid UTF-8"))
                }
                Ok(line) => {
                    let mut record = std::mem::take(&mut spare);
                    record.fill(builder.fields());
                    let problem = match records.read(line, builder.fields(), &mut record) {
                        Err(e) => {
                            builder.unparseable();
                            Some(e)
                        }
                        Ok(false) => None,
                        Ok(true) => builder.add(&mut record).map_err(local)?.err(),
                    };
                    spare = record.emptied();
                    problem
                }
            };
            let errors = builder.stats.unparseable + builder.stats.processed_with_error;
            if errors > errors_before {
                let why = problem.unwrap_or_else(|| "a field could not be read as its type".into());
                let error_type = if builder.stats.unparseable > unparseable_before {
                    ErrorType::Unparseable
                } else {
                    ErrorType::ProcessedWithError
                };
                observer.parse_error(
                    &ParseError {
                        detail: format!("{} line {line_no}: {why}", input.describe()),
                        error_type,
                        input: &String::from_utf8_lossy(buf),
                    },
                    builder.stats,
                );
                if errors > max {
                    return Err(BuildError::TooManyParseExceptions(max));
                }
            }
        }
    }
    observer.progress(builder.stats);
    Ok(builder)
}

/// Merges what `builder` holds (and spilled) into Parquet files in `segment_dir`, cut by
/// `segmentGranularity` and `maxRowsPerSegment`; also says the segments' dimensions.
pub fn write_segment_files(
    spec: &IngestionSpec,
    builder: RowBuilder,
    segment_dir: &Path,
) -> Result<(Vec<WrittenPartition>, Vec<Dimension>), BuildError> {
    write_partitioned(spec, builder, segment_dir, None)
}

/// [`write_segment_files`], bucketed by `plan` when there is one.
fn write_partitioned(
    spec: &IngestionSpec,
    builder: RowBuilder,
    segment_dir: &Path,
    plan: Option<&PartitionPlan>,
) -> Result<(Vec<WrittenPartition>, Vec<Dimension>), BuildError> {
    let local = |e: std::io::Error| BuildError::Local(e.to_string());
    std::fs::create_dir_all(segment_dir).map_err(local)?;
    let finished = builder.finish().map_err(local)?;
    let keys = match plan {
        Some(_) => Some(
            KeyReader::new(
                &spec.tuning.partitions,
                &finished.dimensions,
                &finished.dictionaries,
            )
            .map_err(|e| BuildError::Spec(e.to_string()))?,
        ),
        None => None,
    };
    let mut writer = SegmentWriter::new(
        segment_dir,
        spec.granularity.segment,
        spec.tuning.max_rows_per_segment,
        &finished.dimensions,
        &finished.dictionaries,
        &spec.metrics,
    );
    if let (Some(plan), Some(keys)) = (plan, keys.as_ref()) {
        let mut current: Option<(i64, Option<ChunkBuckets>)> = None;
        writer = writer.with_buckets(Box::new(move |interval, row| {
            let start = interval.start.timestamp_millis();
            if current.as_ref().is_none_or(|(s, _)| *s != start) {
                current = Some((start, plan.buckets(start)));
            }
            match current.as_ref().and_then(|(_, b)| b.as_ref()) {
                Some(buckets) => keys.bucket(buckets, row),
                None => 0,
            }
        }));
    }
    let mut rows = finished.rows;
    while let Some(row) = rows.next_row().map_err(local)? {
        writer
            .push(row)
            .map_err(|e| BuildError::Local(e.to_string()))?;
    }
    let partitions = writer
        .finish()
        .map_err(|e| BuildError::Local(e.to_string()))?;
    Ok((partitions, finished.dimensions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(max_parse_exceptions: Option<u64>) -> IngestionSpec {
        let mut tuning = json!({"type":"index"});
        if let Some(m) = max_parse_exceptions {
            tuning["maxParseExceptions"] = json!(m);
        }
        IngestionSpec::from_task(&json!({"type":"index","spec":{
            "dataSchema":{"dataSource":"t","timestampSpec":{"column":"ts","format":"iso"},
                "dimensionsSpec":{"dimensions":["page"]},
                "metricsSpec":[{"type":"count","name":"count"},{"type":"longSum","name":"n","fieldName":"n"}],
                "granularitySpec":{"segmentGranularity":"day","queryGranularity":"hour","rollup":true}},
            "ioConfig":{"type":"index","inputSource":{"type":"inline","data":""},"inputFormat":{"type":"json"}},
            "tuningConfig":tuning}}))
        .unwrap()
    }

    const DATA: &str = r#"{"ts":"2024-01-01T01:10:00Z","page":"a","n":1}
{"ts":"2024-01-01T01:20:00Z","page":"a","n":2}
not json
{"ts":"2024-01-02T00:00:00Z","page":"b","n":"x"}
{"page":"c"}
"#;

    #[test]
    fn rolls_up_counts_and_partitions_by_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut errors = Vec::new();
        let built = build(
            &spec(None),
            &[Input::Inline(DATA.into())],
            dir.path(),
            &mut |e: &str, _: RowStats| errors.push(e.to_string()),
        )
        .unwrap();
        assert_eq!(built.partitions.len(), 2);
        assert_eq!(built.partitions[0].rows, 1, "two rows rolled into one");
        let rows = crate::segment::read_parquet(std::fs::read(&built.partitions[0].path).unwrap())
            .unwrap();
        assert_eq!(rows[0]["n"], 3);
        assert_eq!(rows[0]["count"], 2);
        assert_eq!(
            built.stats,
            RowStats {
                processed: 3,
                processed_with_error: 1,
                thrown_away: 0,
                unparseable: 2
            }
        );
        assert_eq!(errors.len(), 3);
        assert!(errors[0].contains("line 3"), "{errors:?}");
    }

    #[test]
    fn too_many_parse_errors_stop_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let r = build(
            &spec(Some(2)),
            &[Input::Inline(DATA.into())],
            dir.path(),
            &mut |_: &str, _: RowStats| {},
        );
        assert_eq!(r.unwrap_err(), BuildError::TooManyParseExceptions(2));
        assert!(build(
            &spec(Some(3)),
            &[Input::Inline(DATA.into())],
            dir.path(),
            &mut |_: &str, _: RowStats| {}
        )
        .is_ok());
    }
}
