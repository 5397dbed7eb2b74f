//! Druid's ingestion spec for `index` / `index_parallel` tasks, in both shapes Druid accepts:
//! modern (`timestampSpec`/`dimensionsSpec` under `dataSchema`, `inputSource` + `inputFormat`) and
//! legacy (`dataSchema.parser.parseSpec`, `ioConfig.firehose`). Both parse into one
//! `IngestionSpec`; every error names the field.

use drover_core::granularity::Granularity;
use drover_core::ids::DataSource;
use drover_core::interval::Interval;

use serde_json::{Map, Value};

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

/// Deserializes `value` at `field`, naming it in the error.
fn at<T: serde::de::DeserializeOwned>(field: &str, value: &Value) -> Result<T, SpecError> {
    serde_json::from_value(value.clone()).map_err(|e| err(field, e.to_string()))
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

const AGGREGATORS: &[(&str, AggregatorKind)] = &[
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
    /// A streaming task's records come from its stream, not from an input source.
    Stream,
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

fn object<'a>(field: &str, v: Option<&'a Value>) -> Result<&'a Map<String, Value>, SpecError> {
    match v {
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(err(field, "must be a JSON object")),
        None => Err(err(field, "is required")),
    }
}

fn opt_object<'a>(
    field: &str,
    v: Option<&'a Value>,
) -> Result<Option<&'a Map<String, Value>>, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        other => object(field, other).map(Some),
    }
}

fn string(field: &str, v: Option<&Value>) -> Result<Option<String>, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(field, "must be a string")),
    }
}

/// A boolean field: absent or null is `default`; anything but `true`/`false` is an error naming
/// the field (never silently the default).
fn boolean(field: &str, v: Option<&Value>, default: bool) -> Result<bool, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(field, "must be true or false")),
    }
}

fn unsigned(field: &str, v: Option<&Value>, default: u64) -> Result<u64, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| err(field, "must be a non-negative whole number")),
        Some(_) => Err(err(field, "must be a number")),
    }
}

impl IngestionSpec {
    /// Reads the `spec` of an `index` or `index_parallel` task (also accepted at the top level,
    /// as very old Druid specs put it).
    pub fn from_task(task: &Value) -> Result<IngestionSpec, SpecError> {
        IngestionSpec::parse(task, false)
    }

    /// Reads a streaming task (`index_kafka`: the parts at the top level, no input source; the
    /// records come from the stream).
    pub fn from_stream_task(task: &Value) -> Result<IngestionSpec, SpecError> {
        IngestionSpec::parse(task, true)
    }

    fn parse(task: &Value, stream: bool) -> Result<IngestionSpec, SpecError> {
        let spec = match task.get("spec") {
            Some(s) => object("spec", Some(s))?,
            None => object("spec", Some(task))?,
        };
        let schema = object("spec.dataSchema", spec.get("dataSchema"))?;
        let io = object("spec.ioConfig", spec.get("ioConfig"))?;
        let tuning = opt_object("spec.tuningConfig", spec.get("tuningConfig"))?;

        let data_source = string("spec.dataSchema.dataSource", schema.get("dataSource"))?
            .ok_or_else(|| err("spec.dataSchema.dataSource", "is required"))?;
        let data_source = DataSource::new(data_source)
            .map_err(|e| err("spec.dataSchema.dataSource", e.to_string()))?;

        // Legacy: everything about parsing sits in parser.parseSpec.
        let parse_spec = match opt_object("spec.dataSchema.parser", schema.get("parser"))? {
            Some(parser) => {
                opt_object("spec.dataSchema.parser.parseSpec", parser.get("parseSpec"))?
            }
            None => None,
        };
        let from_either = |key: &str| {
            schema
                .get(key)
                .or_else(|| parse_spec.and_then(|p| p.get(key)))
        };

        let timestamp: TimestampSpec = match from_either("timestampSpec") {
            Some(v) => at("spec.dataSchema.timestampSpec", v)?,
            None => return Err(err("spec.dataSchema.timestampSpec", "is required")),
        };
        timestamp
            .validate()
            .map_err(|e| err("spec.dataSchema.timestampSpec.format", e.to_string()))?;
        let dimensions = parse_dimensions(from_either("dimensionsSpec"))?;
        let metrics = parse_metrics(schema.get("metricsSpec"))?;
        let granularity = parse_granularity(schema.get("granularitySpec"))?;
        let (filter, transforms) =
            match opt_object("spec.dataSchema.transformSpec", schema.get("transformSpec"))? {
                None => (None, Vec::new()),
                Some(t) => (
                    match t.get("filter") {
                        None | Some(Value::Null) => None,
                        Some(f) => Some(parse_filter("spec.dataSchema.transformSpec.filter", f)?),
                    },
                    parse_transforms(t.get("transforms"))?,
                ),
            };

        let input_source = match (io.get("inputSource"), io.get("firehose")) {
            _ if stream => InputSource::Stream,
            (Some(s), _) => parse_input_source("spec.ioConfig.inputSource", s)?,
            (None, Some(f)) => parse_input_source("spec.ioConfig.firehose", f)?,
            (None, None) => return Err(err("spec.ioConfig.inputSource", "is required")),
        };
        let input_format = match (io.get("inputFormat"), parse_spec) {
            (Some(f), _) => parse_input_format(
                "spec.ioConfig.inputFormat",
                object("spec.ioConfig.inputFormat", Some(f))?,
                "type",
            )?,
            (None, Some(p)) => parse_input_format("spec.dataSchema.parser.parseSpec", p, "format")?,
            (None, None) => return Err(err("spec.ioConfig.inputFormat", "is required")),
        };
        let append_to_existing = boolean(
            "spec.ioConfig.appendToExisting",
            io.get("appendToExisting"),
            false,
        )?;

        let t = |k: &str| tuning.and_then(|t| t.get(k));
        let partitions = tuning
            .and_then(|t| t.get("partitionsSpec"))
            .and_then(Value::as_object);
        if let Some(p) = partitions {
            match p.get("type").and_then(Value::as_str) {
                None | Some("dynamic") => {}
                Some(other) => {
                    return Err(err(
                        "spec.tuningConfig.partitionsSpec.type",
                        format!("[{other}] partitioning is not supported yet; use dynamic"),
                    ))
                }
            }
        }
        let p = |k: &str| partitions.and_then(|p| p.get(k)).or_else(|| t(k));
        let tuning = Tuning {
            max_rows_per_segment: unsigned(
                "spec.tuningConfig.partitionsSpec.maxRowsPerSegment",
                p("maxRowsPerSegment"),
                5_000_000,
            )?,
            max_total_rows: unsigned(
                "spec.tuningConfig.partitionsSpec.maxTotalRows",
                p("maxTotalRows"),
                20_000_000,
            )?,
            max_rows_in_memory: unsigned(
                "spec.tuningConfig.maxRowsInMemory",
                t("maxRowsInMemory"),
                // Druid's streaming default is smaller: a stream task holds rows while it reads.
                if stream { 150_000 } else { 1_000_000 },
            )?,
            max_parse_exceptions: unsigned(
                "spec.tuningConfig.maxParseExceptions",
                t("maxParseExceptions"),
                u64::MAX,
            )?,
            max_saved_parse_exceptions: unsigned(
                "spec.tuningConfig.maxSavedParseExceptions",
                t("maxSavedParseExceptions"),
                0,
            )?,
            log_parse_exceptions: boolean(
                "spec.tuningConfig.logParseExceptions",
                t("logParseExceptions"),
                false,
            )?,
        };
        if tuning.max_rows_per_segment == 0 || tuning.max_rows_in_memory == 0 {
            return Err(err(
                "spec.tuningConfig",
                "maxRowsPerSegment and maxRowsInMemory must be positive",
            ));
        }
        Ok(IngestionSpec {
            data_source,
            timestamp,
            dimensions,
            metrics,
            granularity,
            filter,
            transforms,
            input_source,
            input_format,
            append_to_existing,
            tuning,
        })
    }
}

fn parse_transforms(v: Option<&Value>) -> Result<Vec<Transform>, SpecError> {
    const F: &str = "spec.dataSchema.transformSpec.transforms";
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(vec![]);
    };
    let list = v.as_array().ok_or_else(|| err(F, "must be an array"))?;
    let mut out: Vec<Transform> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let field = format!("{F}[{i}]");
        let o = object(&field, Some(t))?;
        match o.get("type").and_then(Value::as_str) {
            Some("expression") => {}
            other => {
                return Err(err(
                    &format!("{field}.type"),
                    format!(
                        "transform type [{}] is not supported; use expression",
                        other.unwrap_or("")
                    ),
                ))
            }
        }
        let name = string(&format!("{field}.name"), o.get("name"))?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| err(&format!("{field}.name"), "is required"))?;
        if out.iter().any(|t| t.name == name) {
            return Err(err(
                &format!("{field}.name"),
                format!("[{name}] is transformed twice"),
            ));
        }
        let expression = string(&format!("{field}.expression"), o.get("expression"))?
            .ok_or_else(|| err(&format!("{field}.expression"), "is required"))?;
        crate::expr::parse(&expression, &mut |_| 0)
            .map_err(|e| err(&format!("{field}.expression"), e.0))?;
        out.push(Transform { name, expression });
    }
    Ok(out)
}

fn parse_dimensions(v: Option<&Value>) -> Result<DimensionsSpec, SpecError> {
    const F: &str = "spec.dataSchema.dimensionsSpec";
    let Some(o) = opt_object(F, v)? else {
        return Ok(DimensionsSpec::default());
    };
    let mut out = DimensionsSpec::default();
    if let Some(list) = o.get("dimensions") {
        let list = list
            .as_array()
            .ok_or_else(|| err(&format!("{F}.dimensions"), "must be an array"))?;
        for (i, d) in list.iter().enumerate() {
            let field = format!("{F}.dimensions[{i}]");
            let dim = match d {
                Value::String(name) => Dimension {
                    name: name.clone(),
                    value_type: ValueType::String,
                },
                Value::Object(o) => {
                    let name = string(&format!("{field}.name"), o.get("name"))?
                        .ok_or_else(|| err(&field, "needs a [name]"))?;
                    let value_type = match o.get("type").and_then(Value::as_str).unwrap_or("string") {
                        "string" => ValueType::String,
                        "long" => ValueType::Long,
                        "float" => ValueType::Float,
                        "double" => ValueType::Double,
                        other => return Err(err(&format!("{field}.type"), format!("unknown dimension type [{other}]; expected string, long, float or double"))),
                    };
                    Dimension { name, value_type }
                }
                _ => return Err(err(&field, "must be a name or {\"name\",\"type\"}")),
            };
            out.dimensions.push(dim);
        }
    }
    if let Some(ex) = o.get("dimensionExclusions") {
        out.exclusions = at(&format!("{F}.dimensionExclusions"), ex)?;
    }
    Ok(out)
}

fn parse_metrics(v: Option<&Value>) -> Result<Vec<Aggregator>, SpecError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(vec![]);
    };
    let list = v
        .as_array()
        .ok_or_else(|| err("spec.dataSchema.metricsSpec", "must be an array"))?;
    let mut out = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let field = format!("spec.dataSchema.metricsSpec[{i}]");
        let o = object(&field, Some(m))?;
        let t = string(&format!("{field}.type"), o.get("type"))?
            .ok_or_else(|| err(&format!("{field}.type"), "is required"))?;
        let kind = AGGREGATORS
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                err(
                    &format!("{field}.type"),
                    format!(
                        "unsupported aggregator [{t}]; supported: {}",
                        AGGREGATORS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        let name = string(&format!("{field}.name"), o.get("name"))?
            .ok_or_else(|| err(&format!("{field}.name"), "is required"))?;
        let field_name = string(&format!("{field}.fieldName"), o.get("fieldName"))?;
        if kind != AggregatorKind::Count && field_name.is_none() {
            return Err(err(
                &format!("{field}.fieldName"),
                format!("is required for [{t}]"),
            ));
        }
        out.push(Aggregator {
            kind,
            name,
            field: field_name,
        });
    }
    Ok(out)
}

fn parse_granularity(v: Option<&Value>) -> Result<GranularitySpec, SpecError> {
    const F: &str = "spec.dataSchema.granularitySpec";
    let o = opt_object(F, v)?;
    let get = |k: &str| o.and_then(|o| o.get(k)).filter(|v| !v.is_null());
    let segment = match get("segmentGranularity") {
        Some(g) => at(&format!("{F}.segmentGranularity"), g)?,
        None => Granularity::Day,
    };
    let query = match get("queryGranularity") {
        Some(g) => at(&format!("{F}.queryGranularity"), g)?,
        None => Granularity::None,
    };
    let rollup = boolean(&format!("{F}.rollup"), get("rollup"), true)?;
    let intervals: Vec<Interval> = match get("intervals") {
        Some(i) => at(&format!("{F}.intervals"), i)?,
        None => vec![],
    };
    Ok(GranularitySpec {
        segment,
        query,
        rollup,
        intervals,
    })
}

fn parse_input_source(field: &str, v: &Value) -> Result<InputSource, SpecError> {
    let o = object(field, Some(v))?;
    let t = string(&format!("{field}.type"), o.get("type"))?
        .ok_or_else(|| err(&format!("{field}.type"), "is required"))?;
    match t.as_str() {
        "inline" => Ok(InputSource::Inline {
            data: string(&format!("{field}.data"), o.get("data"))?
                .ok_or_else(|| err(&format!("{field}.data"), "is required"))?,
        }),
        "local" => {
            let files: Vec<String> = match o.get("files") {
                Some(f) if !f.is_null() => at(&format!("{field}.files"), f)?,
                _ => vec![],
            };
            let base_dir = string(&format!("{field}.baseDir"), o.get("baseDir"))?;
            if base_dir.is_none() && files.is_empty() {
                return Err(err(
                    field,
                    "a local input source needs [baseDir] (with [filter]) or [files]",
                ));
            }
            Ok(InputSource::Local {
                base_dir,
                filter: string(&format!("{field}.filter"), o.get("filter"))?,
                files,
            })
        }
        "http" => Ok(InputSource::Http {
            uris: at(
                &format!("{field}.uris"),
                o.get("uris").unwrap_or(&Value::Null),
            )?,
        }),
        other => Err(err(
            &format!("{field}.type"),
            format!("unsupported input source [{other}]; supported: inline, local, http"),
        )),
    }
}

fn parse_input_format(
    field: &str,
    o: &Map<String, Value>,
    type_key: &str,
) -> Result<InputFormat, SpecError> {
    let t =
        string(&format!("{field}.{type_key}"), o.get(type_key))?.unwrap_or_else(|| "json".into());
    let columns: Vec<String> = match o.get("columns") {
        Some(c) if !c.is_null() => at(&format!("{field}.columns"), c)?,
        _ => vec![],
    };
    let delimited = |delimiter: u8| {
        let from_header = boolean(
            &format!("{field}.findColumnsFromHeader"),
            o.get("findColumnsFromHeader"),
            false,
        )?;
        // Legacy parseSpecs say hasHeaderRow.
        let has_header_row = boolean(
            &format!("{field}.hasHeaderRow"),
            o.get("hasHeaderRow"),
            false,
        )?;
        let find = from_header || has_header_row && columns.is_empty();
        if columns.is_empty() && !find {
            return Err(err(
                &format!("{field}.columns"),
                "give [columns] or set [findColumnsFromHeader]",
            ));
        }
        Ok(InputFormat::Delimited {
            delimiter,
            columns: columns.clone(),
            find_columns_from_header: find,
            skip_header_rows: unsigned(
                &format!("{field}.skipHeaderRows"),
                o.get("skipHeaderRows"),
                0,
            )? as usize,
            list_delimiter: string(&format!("{field}.listDelimiter"), o.get("listDelimiter"))?,
        })
    };
    match t.as_str() {
        "json" => Ok(InputFormat::Json),
        "csv" => delimited(b','),
        "tsv" => {
            let d = string(&format!("{field}.delimiter"), o.get("delimiter"))?
                .unwrap_or_else(|| "\t".into());
            match d.as_bytes() {
                [b] => delimited(*b),
                _ => Err(err(
                    &format!("{field}.delimiter"),
                    "must be a single character",
                )),
            }
        }
        other => Err(err(
            &format!("{field}.{type_key}"),
            format!("unsupported input format [{other}]; supported: json, csv, tsv"),
        )),
    }
}

fn parse_filter(field: &str, v: &Value) -> Result<Filter, SpecError> {
    let o = object(field, Some(v))?;
    let t = string(&format!("{field}.type"), o.get("type"))?
        .ok_or_else(|| err(&format!("{field}.type"), "is required"))?;
    let dimension = || {
        string(&format!("{field}.dimension"), o.get("dimension"))?
            .ok_or_else(|| err(&format!("{field}.dimension"), "is required"))
    };
    let text = |k: &str| -> Result<Option<String>, SpecError> {
        Ok(match o.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        })
    };
    let fields = || -> Result<Vec<Filter>, SpecError> {
        let list = o
            .get("fields")
            .and_then(Value::as_array)
            .ok_or_else(|| err(&format!("{field}.fields"), "must be an array of filters"))?;
        list.iter()
            .enumerate()
            .map(|(i, f)| parse_filter(&format!("{field}.fields[{i}]"), f))
            .collect()
    };
    match t.as_str() {
        "selector" => Ok(Filter::Selector {
            dimension: dimension()?,
            value: text("value")?,
        }),
        "in" => {
            let values = o
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| err(&format!("{field}.values"), "must be an array"))?;
            Ok(Filter::In {
                dimension: dimension()?,
                values: values
                    .iter()
                    .map(|v| match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    })
                    .collect(),
            })
        }
        "bound" => Ok(Filter::Bound {
            dimension: dimension()?,
            lower: text("lower")?,
            upper: text("upper")?,
            lower_strict: boolean(&format!("{field}.lowerStrict"), o.get("lowerStrict"), false)?,
            upper_strict: boolean(&format!("{field}.upperStrict"), o.get("upperStrict"), false)?,
            numeric: o.get("ordering").and_then(Value::as_str) == Some("numeric")
                || boolean(
                    &format!("{field}.alphaNumeric"),
                    o.get("alphaNumeric"),
                    false,
                )?,
        }),
        "and" => Ok(Filter::And(fields()?)),
        "or" => Ok(Filter::Or(fields()?)),
        "not" => Ok(Filter::Not(Box::new(parse_filter(
            &format!("{field}.field"),
            o.get("field").unwrap_or(&Value::Null),
        )?))),
        other => Err(err(
            &format!("{field}.type"),
            format!("unsupported filter [{other}]; supported: selector, in, bound, and, or, not"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tutorial(name: &str) -> Value {
        serde_json::from_str(&crate::tutorial::tutorial_file(name)).unwrap()
    }

    #[test]
    fn a_wrongly_typed_boolean_is_an_error_naming_the_field_not_a_default() {
        let cases = [
            (
                "/spec/ioConfig/appendToExisting",
                "spec.ioConfig.appendToExisting",
            ),
            (
                "/spec/tuningConfig/logParseExceptions",
                "spec.tuningConfig.logParseExceptions",
            ),
            ("/spec/dataSchema/granularitySpec/rollup", "rollup"),
        ];
        for (pointer, field) in cases {
            let mut task = tutorial("rollup-index.json");
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            task.pointer_mut(parent).unwrap()[key] = serde_json::json!("yes");
            let e = IngestionSpec::from_task(&task).unwrap_err().to_string();
            assert!(
                e.contains(field) && e.contains("true or false"),
                "{pointer}: {e}"
            );
        }
        // Absent or null still means Druid's default.
        let mut task = tutorial("rollup-index.json");
        task["spec"]["ioConfig"]["appendToExisting"] = Value::Null;
        assert!(IngestionSpec::from_task(&task).is_ok());
    }

    #[test]
    fn reads_the_rollup_tutorial() {
        let s = IngestionSpec::from_task(&tutorial("rollup-index.json")).unwrap();
        assert_eq!(s.data_source, "rollup-tutorial");
        assert_eq!(s.timestamp.column, "timestamp");
        assert_eq!(
            s.dimensions
                .dimensions
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>(),
            ["srcIP", "dstIP"]
        );
        assert_eq!(s.metrics.len(), 3);
        assert_eq!(
            s.metrics[1],
            Aggregator {
                kind: AggregatorKind::LongSum,
                name: "packets".into(),
                field: Some("packets".into())
            }
        );
        assert_eq!(
            (
                s.granularity.segment,
                s.granularity.query,
                s.granularity.rollup
            ),
            (Granularity::Day, Granularity::Minute, true)
        );
        assert_eq!(
            s.granularity.intervals[0].to_string(),
            "2018-01-01T00:00:00.000Z/2018-01-03T00:00:00.000Z"
        );
        assert_eq!(s.input_format, InputFormat::Json);
        assert!(
            matches!(&s.input_source, InputSource::Local { filter: Some(f), .. } if f == "rollup-data.json")
        );
        assert_eq!(s.tuning.max_rows_in_memory, 25000);
    }

    #[test]
    fn reads_the_legacy_wikipedia_tutorial() {
        let s = IngestionSpec::from_task(&tutorial("wikipedia-index.json")).unwrap();
        assert_eq!(s.data_source, "wikipedia");
        assert_eq!(s.timestamp.column, "time");
        let added = s
            .dimensions
            .dimensions
            .iter()
            .find(|d| d.name == "added")
            .unwrap();
        assert_eq!(added.value_type, ValueType::Long);
        assert!(s.metrics.is_empty());
        assert!(!s.granularity.rollup);
        assert!(
            matches!(&s.input_source, InputSource::Local { filter: Some(f), .. } if f.ends_with(".json.gz"))
        );
    }

    #[test]
    fn errors_name_the_field() {
        let mut t = tutorial("rollup-index.json");
        t["spec"]["dataSchema"]["metricsSpec"][1]["type"] = "hyperUnique".into();
        let e = IngestionSpec::from_task(&t).unwrap_err();
        assert_eq!(e.field, "spec.dataSchema.metricsSpec[1].type");
        assert!(e.to_string().contains("hyperUnique"));
        let mut t = tutorial("rollup-index.json");
        t["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"] = "fortnight".into();
        assert_eq!(
            IngestionSpec::from_task(&t).unwrap_err().field,
            "spec.dataSchema.granularitySpec.segmentGranularity"
        );
        let mut t = tutorial("rollup-index.json");
        t["spec"]["ioConfig"]["inputFormat"] = serde_json::json!({"type":"csv"});
        assert_eq!(
            IngestionSpec::from_task(&t).unwrap_err().field,
            "spec.ioConfig.inputFormat.columns"
        );
        let mut t = tutorial("rollup-index.json");
        t["spec"]["dataSchema"]["transformSpec"] =
            serde_json::json!({"filter":{"type":"regex","dimension":"a","pattern":"x"}});
        assert!(IngestionSpec::from_task(&t)
            .unwrap_err()
            .message
            .contains("regex"));
        let mut t = tutorial("rollup-index.json");
        t["spec"]["dataSchema"]
            .as_object_mut()
            .unwrap()
            .remove("timestampSpec");
        assert_eq!(
            IngestionSpec::from_task(&t).unwrap_err().field,
            "spec.dataSchema.timestampSpec"
        );
    }

    #[test]
    fn reads_filters_and_csv() {
        let mut t = tutorial("rollup-index.json");
        t["spec"]["ioConfig"]["inputFormat"] =
            serde_json::json!({"type":"tsv","columns":["timestamp","srcIP"],"skipHeaderRows":1});
        t["spec"]["dataSchema"]["transformSpec"] = serde_json::json!({"filter":{"type":"and","fields":[
            {"type":"selector","dimension":"srcIP","value":"1.1.1.1"},
            {"type":"not","field":{"type":"in","dimension":"dstIP","values":["2.2.2.2"]}},
            {"type":"bound","dimension":"packets","lower":"10","ordering":"numeric"}]}});
        let s = IngestionSpec::from_task(&t).unwrap();
        assert!(matches!(
            s.input_format,
            InputFormat::Delimited {
                delimiter: b'\t',
                skip_header_rows: 1,
                ..
            }
        ));
        assert!(matches!(s.filter, Some(Filter::And(ref f)) if f.len() == 3));
    }

    #[test]
    fn reads_expression_transforms_and_refuses_what_it_cannot_run() {
        let mut t = tutorial("rollup-index.json");
        t["spec"]["dataSchema"]["transformSpec"] = serde_json::json!({"transforms":[
            {"type":"expression","name":"kb","expression":"bytes / 1024"},
            {"type":"expression","name":"pair","expression":"concat(srcIP, '>', dstIP)"}]});
        let s = IngestionSpec::from_task(&t).unwrap();
        assert_eq!(s.transforms.len(), 2);
        assert_eq!(s.transforms[1].name, "pair");
        for (transforms, field, says) in [
            (
                serde_json::json!([{"type":"expression","name":"x","expression":"upper(a)"}]),
                "spec.dataSchema.transformSpec.transforms[0].expression",
                "function [upper] is not supported",
            ),
            (
                serde_json::json!([{"type":"javascript","name":"x","function":"f"}]),
                "spec.dataSchema.transformSpec.transforms[0].type",
                "[javascript] is not supported",
            ),
            (
                serde_json::json!([{"type":"expression","expression":"a"}]),
                "spec.dataSchema.transformSpec.transforms[0].name",
                "is required",
            ),
        ] {
            t["spec"]["dataSchema"]["transformSpec"] =
                serde_json::json!({ "transforms": transforms });
            let e = IngestionSpec::from_task(&t).unwrap_err();
            assert_eq!(e.field, field);
            assert!(e.message.contains(says), "{e}");
        }
    }
}
