//! Druid's ingestion spec as it arrives: serde structs for both shapes Druid accepts, read with
//! `serde_path_to_error` so that an error names its field. They are lenient where Druid is
//! (unknown fields are ignored, `null` is the same as absent) and strict about types: a string
//! where a boolean or a count goes is an error, never a default. `convert.rs` turns them into the
//! checked types of `mod.rs`.

use drover_core::granularity::Granularity;
use drover_core::interval::Interval;
pub use drover_core::wire::{flag, Flag};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::timestamp::TimestampSpec;

/// `spec` of an `index`/`index_parallel` task, or the top level of an `index_kafka` task.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub data_schema: Option<DataSchema>,
    pub io_config: Option<IoConfig>,
    pub tuning_config: Option<TuningConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSchema {
    pub data_source: Option<String>,
    pub timestamp_spec: Option<TimestampSpec>,
    pub dimensions_spec: Option<DimensionsSpec>,
    pub metrics_spec: Option<Vec<Aggregator>>,
    pub granularity_spec: Option<GranularitySpec>,
    pub transform_spec: Option<TransformSpec>,
    /// Legacy: `parser.parseSpec` holds the timestamp, the dimensions and the format.
    pub parser: Option<Parser>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parser {
    pub parse_spec: Option<Format>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionsSpec {
    pub dimensions: Option<Vec<Dimension>>,
    pub dimension_exclusions: Option<Vec<String>>,
}

/// A dimension: its name, or `{"name", "type"}`.
#[derive(Debug)]
pub enum Dimension {
    Name(String),
    Typed {
        name: Option<String>,
        value_type: Option<String>,
    },
}

impl<'de> Deserialize<'de> for Dimension {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Typed {
            name: Option<String>,
            #[serde(rename = "type")]
            value_type: Option<String>,
        }
        match Value::deserialize(d)? {
            Value::String(name) => Ok(Dimension::Name(name)),
            v @ Value::Object(_) => {
                let t: Typed = serde_json::from_value(v).map_err(serde::de::Error::custom)?;
                Ok(Dimension::Typed {
                    name: t.name,
                    value_type: t.value_type,
                })
            }
            _ => Err(serde::de::Error::custom(
                "must be a name or {\"name\", \"type\"}",
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aggregator {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    pub field_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GranularitySpec {
    pub segment_granularity: Option<Granularity>,
    pub query_granularity: Option<Granularity>,
    pub rollup: Option<Flag>,
    pub intervals: Option<Vec<Interval>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransformSpec {
    pub filter: Option<Filter>,
    pub transforms: Option<Vec<Transform>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transform {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    pub expression: Option<String>,
}

/// `transformSpec.filter`, by `type`. Values are kept as JSON: Druid compares numbers as text.
#[derive(Debug, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum Filter {
    Selector {
        dimension: String,
        value: Option<Value>,
    },
    In {
        dimension: String,
        values: Vec<Value>,
    },
    Bound {
        dimension: String,
        lower: Option<Value>,
        upper: Option<Value>,
        lower_strict: Option<Flag>,
        upper_strict: Option<Flag>,
        ordering: Option<Value>,
        alpha_numeric: Option<Flag>,
    },
    And {
        fields: Vec<Filter>,
    },
    Or {
        fields: Vec<Filter>,
    },
    Not {
        field: Box<Filter>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IoConfig {
    pub input_source: Option<InputSource>,
    /// Legacy name of the input source.
    pub firehose: Option<InputSource>,
    pub input_format: Option<Format>,
    pub append_to_existing: Option<Flag>,
}

/// An input source (or legacy firehose), by `type`.
#[derive(Debug, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum InputSource {
    Inline {
        data: String,
    },
    Local {
        base_dir: Option<String>,
        filter: Option<String>,
        files: Option<Vec<String>>,
    },
    Http {
        uris: Vec<String>,
    },
    #[serde(alias = "ingestSegment")]
    Druid {
        data_source: Option<String>,
        interval: Option<String>,
        filter: Option<Box<Filter>>,
        dimensions: Option<Vec<String>>,
        metrics: Option<Vec<String>>,
    },
    Combining {
        delegates: Vec<InputSource>,
    },
    S3(S3Source),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Source {
    pub uris: Option<Vec<String>>,
    pub prefixes: Option<Vec<String>>,
    pub objects: Option<Vec<S3Object>>,
    pub object_glob: Option<String>,
    pub properties: Option<S3Properties>,
    pub endpoint_config: Option<S3Endpoint>,
}

#[derive(Debug, Deserialize)]
pub struct S3Object {
    pub bucket: String,
    pub path: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Properties {
    pub access_key_id: Option<Password>,
    pub secret_access_key: Option<Password>,
}

/// Druid's `PasswordProvider`: the text itself, or `{"type": "default", "password": …}`, or
/// `{"type": "environment", "variable": …}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Password {
    Plain(String),
    Provider {
        #[serde(rename = "type")]
        kind: Option<String>,
        password: Option<String>,
        variable: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Endpoint {
    pub url: Option<String>,
    pub signing_region: Option<String>,
}

/// `ioConfig.inputFormat` (named by `type`), and the legacy `parser.parseSpec` (named by
/// `format`, with the timestamp and dimensions beside it).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Format {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub format: Option<String>,
    pub columns: Option<Vec<String>>,
    pub find_columns_from_header: Option<Flag>,
    /// Legacy parseSpecs say `hasHeaderRow`.
    pub has_header_row: Option<Flag>,
    pub skip_header_rows: Option<u64>,
    pub list_delimiter: Option<String>,
    pub delimiter: Option<String>,
    pub timestamp_spec: Option<TimestampSpec>,
    pub dimensions_spec: Option<DimensionsSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TuningConfig {
    pub partitions_spec: Option<PartitionsSpec>,
    pub max_rows_per_segment: Option<u64>,
    pub max_total_rows: Option<u64>,
    pub max_rows_in_memory: Option<u64>,
    pub max_parse_exceptions: Option<u64>,
    pub max_saved_parse_exceptions: Option<u64>,
    pub log_parse_exceptions: Option<Flag>,
    pub force_guaranteed_rollup: Option<Flag>,
    pub max_num_concurrent_sub_tasks: Option<u64>,
    /// Druid's legacy name for `maxNumConcurrentSubTasks`.
    pub max_num_sub_tasks: Option<u64>,
    pub max_retry: Option<u64>,
    pub split_hint_spec: Option<SplitHintSpec>,
    pub total_num_merge_tasks: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionsSpec {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub max_rows_per_segment: Option<u64>,
    pub max_total_rows: Option<u64>,
    pub num_shards: Option<u64>,
    pub target_rows_per_segment: Option<u64>,
    /// Legacy `hashed`/`single_dim` name for `targetRowsPerSegment`.
    pub target_partition_size: Option<u64>,
    pub partition_dimensions: Option<Vec<String>>,
    pub partition_dimension: Option<String>,
    pub partition_function: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SplitHintSpec {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub max_split_size: Option<u64>,
    pub max_num_files: Option<u64>,
    /// The legacy `maxSize` split hint.
    pub max_input_segment_bytes_per_task: Option<u64>,
}
