//! Druid's ingestion spec for `index` / `index_parallel` tasks, in both shapes Druid accepts:
//! modern (`timestampSpec`/`dimensionsSpec` under `dataSchema`, `inputSource` + `inputFormat`) and
//! legacy (`dataSchema.parser.parseSpec`, `ioConfig.firehose`). The wire shapes are serde structs
//! (`wire.rs`); `convert.rs` checks them into one `IngestionSpec`. Every error names the field.

mod convert;
mod wire;

use drover_core::granularity::Granularity;
use drover_core::ids::DataSource;
use drover_core::interval::Interval;

pub use crate::partitioning::PartitionsSpec;

use serde_json::Value;

use crate::timestamp::TimestampSpec;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid [{field}]: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    Long,
    Float,
    Double,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimension {
    pub name: String,
    pub value_type: ValueType,
}

impl Dimension {
    /// As a `dimensionsSpec.dimensions` entry.
    pub fn to_json(&self) -> Value {
        let kind = match self.value_type {
            ValueType::String => "string",
            ValueType::Long => "long",
            ValueType::Float => "float",
            ValueType::Double => "double",
        };
        serde_json::json!({"type": kind, "name": self.name})
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DimensionsSpec {
    /// Empty: schemaless — every field but the timestamp, metrics' inputs and exclusions.
    pub dimensions: Vec<Dimension>,
    pub exclusions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregatorKind {
    Count,
    LongSum,
    DoubleSum,
    FloatSum,
    LongMin,
    LongMax,
    DoubleMin,
    DoubleMax,
    FloatMin,
    FloatMax,
    LongFirst,
    LongLast,
}

pub(crate) const AGGREGATORS: &[(&str, AggregatorKind)] = &[
    ("count", AggregatorKind::Count),
    ("longSum", AggregatorKind::LongSum),
    ("doubleSum", AggregatorKind::DoubleSum),
    ("floatSum", AggregatorKind::FloatSum),
    ("longMin", AggregatorKind::LongMin),
    ("longMax", AggregatorKind::LongMax),
    ("doubleMin", AggregatorKind::DoubleMin),
    ("doubleMax", AggregatorKind::DoubleMax),
    ("floatMin", AggregatorKind::FloatMin),
    ("floatMax", AggregatorKind::FloatMax),
    ("longFirst", AggregatorKind::LongFirst),
    ("longLast", AggregatorKind::LongLast),
];

impl Aggregator {
    /// The `metricsSpec` entry that rolls up rows this aggregator wrote (a `count` becomes a
    /// `longSum` of the counts), as Druid's `getCombiningFactory`.
    pub fn combining_json(&self) -> Value {
        let kind = match self.kind {
            AggregatorKind::Count => AggregatorKind::LongSum,
            k => k,
        };
        let name = AGGREGATORS
            .iter()
            .find(|(_, k)| *k == kind)
            .map_or("longSum", |(n, _)| n);
        serde_json::json!({"type": name, "name": self.name, "fieldName": self.name})
    }
}

impl AggregatorKind {
    pub fn is_long(self) -> bool {
        use AggregatorKind::*;
        matches!(
            self,
            Count | LongSum | LongMin | LongMax | LongFirst | LongLast
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregator {
    pub kind: AggregatorKind,
    pub name: String,
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GranularitySpec {
    pub segment: Granularity,
    pub query: Granularity,
    pub rollup: bool,
    pub intervals: Vec<Interval>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InputSource {
    Inline {
        data: String,
    },
    Local {
        base_dir: Option<String>,
        filter: Option<String>,
        files: Vec<String>,
    },
    Http {
        uris: Vec<String>,
    },
    /// Druid's `druid` input source (legacy `ingestSegment`): the rows of a data source's used
    /// segments inside `interval`, with `__time` in milliseconds; `filter` keeps some of them,
    /// `dimensions`/`metrics` (when given) the columns read.
    Druid {
        data_source: DataSource,
        interval: Interval,
        filter: Option<Filter>,
        dimensions: Option<Vec<String>>,
        metrics: Option<Vec<String>>,
    },
    /// `combining`: its delegates' rows, in order.
    Combining(Vec<InputSource>),
    /// `s3`: objects named one by one (`uris`, `objects`) or by prefix (`prefixes`, filtered by
    /// `objectGlob`), read with the source's own credentials and endpoint or the cluster's
    /// (`AWS_*`).
    S3(S3Source),
    /// A streaming task's records come from its stream, not from an input source.
    Stream,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Source {
    /// (bucket, key) of each object named.
    pub objects: Vec<(String, String)>,
    /// (bucket, key prefix) of each prefix.
    pub prefixes: Vec<(String, String)>,
    pub object_glob: Option<String>,
    /// (access key id, secret access key).
    pub credentials: Option<(String, String)>,
    /// `endpointConfig.url` and `signingRegion`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl InputSource {
    /// Whether every row comes from segments (a `druid` source, alone or combined): such a spec
    /// needs no `inputFormat`.
    pub fn reads_only_segments(&self) -> bool {
        match self {
            InputSource::Druid { .. } => true,
            InputSource::Combining(delegates) => {
                delegates.iter().all(InputSource::reads_only_segments)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputFormat {
    Json,
    /// CSV and TSV: `delimiter` is `,` or `\t` (TSV may set another).
    Delimited {
        delimiter: u8,
        columns: Vec<String>,
        find_columns_from_header: bool,
        skip_header_rows: usize,
        list_delimiter: Option<String>,
    },
}

/// `transformSpec.filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Selector {
        dimension: String,
        value: Option<String>,
    },
    In {
        dimension: String,
        values: Vec<Option<String>>,
    },
    Bound {
        dimension: String,
        lower: Option<String>,
        upper: Option<String>,
        lower_strict: bool,
        upper_strict: bool,
        numeric: bool,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// `transformSpec.transforms[]` of type `expression`: a field computed from the input row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub name: String,
    pub expression: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    pub max_rows_per_segment: u64,
    pub max_total_rows: u64,
    pub max_rows_in_memory: u64,
    pub max_parse_exceptions: u64,
    /// How many parse errors the report lists (`unparseableEvents`); Druid's default is 0.
    pub max_saved_parse_exceptions: u64,
    pub log_parse_exceptions: bool,
    /// `partitionsSpec`: dynamic (cut by `max_rows_per_segment`), hashed or range.
    pub partitions: PartitionsSpec,
    /// How an `index_parallel` task spreads its work.
    pub parallel: ParallelTuning,
}

/// `maxNumConcurrentSubTasks`, `maxRetry`, `splitHintSpec`, `totalNumMergeTasks`, with
/// Druid's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParallelTuning {
    /// 1: the supervisor task does everything itself (Druid's sequential mode).
    pub max_num_concurrent_sub_tasks: u32,
    /// How often a failed sub-task is tried again before the whole task fails.
    pub max_retry: u32,
    /// A split holds files of at most this many bytes together (one file may be bigger)…
    pub max_split_size: u64,
    /// …and at most this many files.
    pub max_num_files: usize,
    /// Merge sub-tasks of the last phase of `hashed`/`range` partitioning.
    pub total_num_merge_tasks: u32,
}

impl Default for ParallelTuning {
    fn default() -> Self {
        ParallelTuning {
            max_num_concurrent_sub_tasks: 1,
            max_retry: 3,
            max_split_size: 1 << 30,
            max_num_files: 1000,
            total_num_merge_tasks: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngestionSpec {
    pub data_source: DataSource,
    pub timestamp: TimestampSpec,
    pub dimensions: DimensionsSpec,
    pub metrics: Vec<Aggregator>,
    pub granularity: GranularitySpec,
    pub filter: Option<Filter>,
    pub transforms: Vec<Transform>,
    pub input_source: InputSource,
    pub input_format: InputFormat,
    pub append_to_existing: bool,
    pub tuning: Tuning,
}

impl IngestionSpec {
    /// Reads the `spec` of an `index` or `index_parallel` task (also accepted at the top level,
    /// as very old Druid specs put it).
    pub fn from_task(task: &Value) -> Result<IngestionSpec, SpecError> {
        IngestionSpec::parse(task.get("spec").unwrap_or(task), Source::Batch)
    }

    /// Reads a streaming task (`index_kafka`: the parts at the top level, no input source; the
    /// records come from the stream).
    pub fn from_stream_task(task: &Value) -> Result<IngestionSpec, SpecError> {
        IngestionSpec::parse(task, Source::Stream)
    }

    fn parse(spec: &Value, source: Source) -> Result<IngestionSpec, SpecError> {
        if !spec.is_object() {
            return Err(err("spec", "must be a JSON object"));
        }
        // Fields are named under `spec.` in both cases, as the batch task has them.
        let wire: wire::Spec = serde_path_to_error::deserialize(spec).map_err(|e| {
            let field = match e.path().to_string().as_str() {
                "." => "spec".to_string(),
                path => format!("spec.{path}"),
            };
            err(&field, e.into_inner().to_string())
        })?;
        convert::spec(wire, source)
    }
}

/// Where the rows come from: an input source, or the task's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Batch,
    Stream,
}

#[cfg(test)]
mod tests;
