//! From the wire shapes to the checked spec: defaults filled in as Druid fills them, the legacy
//! shape folded into the modern one, and the rules a type cannot say (a required field, a known
//! aggregator, an expression that parses) checked with the field named.

use drover_core::granularity::Granularity;
use drover_core::ids::DataSource;
use drover_core::interval::Interval;
use serde_json::Value;

use super::wire::{self, flag};
use super::{
    err, Aggregator, AggregatorKind, Dimension, DimensionsSpec, Filter, GranularitySpec,
    IngestionSpec, InputFormat, InputSource, ParallelTuning, PartitionsSpec, Source, SpecError,
    Transform, Tuning, ValueType, AGGREGATORS,
};

pub(super) fn spec(wire: wire::Spec, source: Source) -> Result<IngestionSpec, SpecError> {
    let schema = wire
        .data_schema
        .ok_or_else(|| err("spec.dataSchema", "is required"))?;
    let io = wire
        .io_config
        .ok_or_else(|| err("spec.ioConfig", "is required"))?;

    let data_source = schema
        .data_source
        .ok_or_else(|| err("spec.dataSchema.dataSource", "is required"))?;
    let data_source = DataSource::new(data_source)
        .map_err(|e| err("spec.dataSchema.dataSource", e.to_string()))?;

    // Legacy: everything about parsing sits in parser.parseSpec; the modern keys win.
    let mut parse_spec = schema.parser.and_then(|p| p.parse_spec);
    let timestamp = schema
        .timestamp_spec
        .or_else(|| parse_spec.as_mut().and_then(|p| p.timestamp_spec.take()))
        .ok_or_else(|| err("spec.dataSchema.timestampSpec", "is required"))?;
    timestamp
        .validate()
        .map_err(|e| err("spec.dataSchema.timestampSpec.format", e.to_string()))?;
    let dimensions = dimensions(
        schema
            .dimensions_spec
            .or_else(|| parse_spec.as_mut().and_then(|p| p.dimensions_spec.take())),
    )?;
    let metrics = metrics(schema.metrics_spec.unwrap_or_default())?;
    let granularity = granularity(schema.granularity_spec);
    let (filter, transforms) = match schema.transform_spec {
        None => (None, Vec::new()),
        Some(t) => (
            t.filter.map(filter),
            transforms(t.transforms.unwrap_or_default())?,
        ),
    };

    let input_source = match (source, io.input_source, io.firehose) {
        (Source::Stream, _, _) => InputSource::Stream,
        (Source::Batch, Some(s), _) => input_source("spec.ioConfig.inputSource", s)?,
        (Source::Batch, None, Some(f)) => input_source("spec.ioConfig.firehose", f)?,
        (Source::Batch, None, None) => return Err(err("spec.ioConfig.inputSource", "is required")),
    };
    let input_format = match (io.input_format, parse_spec) {
        // Rows read from segments are JSON-shaped already.
        (None, _) if input_source.reads_only_segments() => InputFormat::Json,
        (Some(f), _) => {
            let kind = f.kind.clone();
            input_format("spec.ioConfig.inputFormat", "type", kind, f)?
        }
        (None, Some(p)) => {
            let kind = p.format.clone();
            input_format("spec.dataSchema.parser.parseSpec", "format", kind, p)?
        }
        (None, None) => return Err(err("spec.ioConfig.inputFormat", "is required")),
    };

    let append_to_existing = flag(io.append_to_existing, false);
    let tuning = tuning(wire.tuning_config, source)?;
    if append_to_existing && tuning.partitions.is_secondary() {
        return Err(err(
            "spec.ioConfig.appendToExisting",
            "hashed and range partitioning guarantee rollup, which appending cannot: use dynamic partitioning to append",
        ));
    }
    if tuning.partitions.is_secondary() && source == Source::Stream {
        return Err(err(
            "spec.tuningConfig.partitionsSpec.type",
            "streaming tasks partition dynamically",
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

fn dimensions(spec: Option<wire::DimensionsSpec>) -> Result<DimensionsSpec, SpecError> {
    const F: &str = "spec.dataSchema.dimensionsSpec";
    let Some(spec) = spec else {
        return Ok(DimensionsSpec::default());
    };
    let mut out = DimensionsSpec {
        dimensions: Vec::new(),
        exclusions: spec.dimension_exclusions.unwrap_or_default(),
    };
    for (i, d) in spec.dimensions.unwrap_or_default().into_iter().enumerate() {
        let field = format!("{F}.dimensions[{i}]");
        out.dimensions.push(match d {
            wire::Dimension::Name(name) => Dimension {
                name,
                value_type: ValueType::String,
            },
            wire::Dimension::Typed { name, value_type } => Dimension {
                name: name.ok_or_else(|| err(&field, "needs a [name]"))?,
                value_type: match value_type.as_deref().unwrap_or("string") {
                    "string" => ValueType::String,
                    "long" => ValueType::Long,
                    "float" => ValueType::Float,
                    "double" => ValueType::Double,
                    other => {
                        return Err(err(
                            &format!("{field}.type"),
                            format!("unknown dimension type [{other}]; expected string, long, float or double"),
                        ))
                    }
                },
            },
        });
    }
    Ok(out)
}

fn metrics(list: Vec<wire::Aggregator>) -> Result<Vec<Aggregator>, SpecError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.into_iter().enumerate() {
        let field = format!("spec.dataSchema.metricsSpec[{i}]");
        let t = m
            .kind
            .ok_or_else(|| err(&format!("{field}.type"), "is required"))?;
        let kind = AGGREGATORS
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                let known: Vec<&str> = AGGREGATORS.iter().map(|(n, _)| *n).collect();
                err(
                    &format!("{field}.type"),
                    format!(
                        "unsupported aggregator [{t}]; supported: {}",
                        known.join(", ")
                    ),
                )
            })?;
        let name = m
            .name
            .ok_or_else(|| err(&format!("{field}.name"), "is required"))?;
        if kind != AggregatorKind::Count && m.field_name.is_none() {
            return Err(err(
                &format!("{field}.fieldName"),
                format!("is required for [{t}]"),
            ));
        }
        out.push(Aggregator {
            kind,
            name,
            field: m.field_name,
        });
    }
    Ok(out)
}

fn granularity(spec: Option<wire::GranularitySpec>) -> GranularitySpec {
    let spec = spec.unwrap_or_default();
    GranularitySpec {
        segment: spec.segment_granularity.unwrap_or(Granularity::Day),
        query: spec.query_granularity.unwrap_or(Granularity::None),
        rollup: flag(spec.rollup, true),
        intervals: spec.intervals.unwrap_or_default(),
    }
}

fn transforms(list: Vec<wire::Transform>) -> Result<Vec<Transform>, SpecError> {
    const F: &str = "spec.dataSchema.transformSpec.transforms";
    let mut out: Vec<Transform> = Vec::with_capacity(list.len());
    for (i, t) in list.into_iter().enumerate() {
        let field = format!("{F}[{i}]");
        if t.kind.as_deref() != Some("expression") {
            return Err(err(
                &format!("{field}.type"),
                format!(
                    "transform type [{}] is not supported; use expression",
                    t.kind.unwrap_or_default()
                ),
            ));
        }
        let name = t
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| err(&format!("{field}.name"), "is required"))?;
        if out.iter().any(|t| t.name == name) {
            return Err(err(
                &format!("{field}.name"),
                format!("[{name}] is transformed twice"),
            ));
        }
        let expression = t
            .expression
            .ok_or_else(|| err(&format!("{field}.expression"), "is required"))?;
        crate::expr::parse(&expression, &mut |_| 0)
            .map_err(|e| err(&format!("{field}.expression"), e.0))?;
        out.push(Transform { name, expression });
    }
    Ok(out)
}

/// A filter value as Druid compares it: text (numbers as they are written), or null.
fn text(v: Option<Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    }
}

fn filter(f: wire::Filter) -> Filter {
    match f {
        wire::Filter::Selector { dimension, value } => Filter::Selector {
            dimension,
            value: text(value),
        },
        wire::Filter::In { dimension, values } => Filter::In {
            dimension,
            values: values.into_iter().map(|v| text(Some(v))).collect(),
        },
        wire::Filter::Bound {
            dimension,
            lower,
            upper,
            lower_strict,
            upper_strict,
            ordering,
            alpha_numeric,
        } => Filter::Bound {
            dimension,
            lower: text(lower),
            upper: text(upper),
            lower_strict: flag(lower_strict, false),
            upper_strict: flag(upper_strict, false),
            numeric: ordering.as_ref().and_then(Value::as_str) == Some("numeric")
                || flag(alpha_numeric, false),
        },
        wire::Filter::And { fields } => Filter::And(fields.into_iter().map(filter).collect()),
        wire::Filter::Or { fields } => Filter::Or(fields.into_iter().map(filter).collect()),
        wire::Filter::Not { field } => Filter::Not(Box::new(filter(*field))),
    }
}

fn input_source(field: &str, source: wire::InputSource) -> Result<InputSource, SpecError> {
    Ok(match source {
        wire::InputSource::Inline { data } => InputSource::Inline { data },
        wire::InputSource::Local {
            base_dir,
            filter,
            files,
        } => {
            let files = files.unwrap_or_default();
            if base_dir.is_none() && files.is_empty() {
                return Err(err(
                    field,
                    "a local input source needs [baseDir] (with [filter]) or [files]",
                ));
            }
            InputSource::Local {
                base_dir,
                filter,
                files,
            }
        }
        wire::InputSource::Http { uris } => InputSource::Http { uris },
        wire::InputSource::Druid {
            data_source,
            interval,
            filter: row_filter,
            dimensions,
            metrics,
        } => {
            let data_source =
                data_source.ok_or_else(|| err(&format!("{field}.dataSource"), "is required"))?;
            let data_source = DataSource::new(data_source)
                .map_err(|e| err(&format!("{field}.dataSource"), e.to_string()))?;
            let text = interval.ok_or_else(|| err(&format!("{field}.interval"), "is required"))?;
            let interval = Interval::parse(&text).map_err(|e| {
                err(
                    &format!("{field}.interval"),
                    format!("[{text}] is not an interval: {e}"),
                )
            })?;
            InputSource::Druid {
                data_source,
                interval,
                filter: row_filter.map(|f| filter(*f)),
                dimensions,
                metrics,
            }
        }
        wire::InputSource::S3(s3) => InputSource::S3(s3_source(field, s3)?),
        wire::InputSource::Combining { delegates } => {
            if delegates.is_empty() {
                return Err(err(&format!("{field}.delegates"), "must not be empty"));
            }
            let delegates = delegates
                .into_iter()
                .enumerate()
                .map(|(i, d)| input_source(&format!("{field}.delegates[{i}]"), d))
                .collect::<Result<_, _>>()?;
            InputSource::Combining(delegates)
        }
    })
}

/// `type_key` names the format where it is written: `type` in an inputFormat, `format` in a
/// legacy parseSpec.
fn input_format(
    field: &str,
    type_key: &str,
    kind: Option<String>,
    f: wire::Format,
) -> Result<InputFormat, SpecError> {
    let kind = kind.unwrap_or_else(|| "json".into());
    let delimiter = match kind.as_str() {
        "json" => return Ok(InputFormat::Json),
        "csv" => b',',
        "tsv" => match f.delimiter.as_deref().unwrap_or("\t").as_bytes() {
            [b] => *b,
            _ => {
                return Err(err(
                    &format!("{field}.delimiter"),
                    "must be a single character",
                ))
            }
        },
        other => {
            return Err(err(
                &format!("{field}.{type_key}"),
                format!("unsupported input format [{other}]; supported: json, csv, tsv"),
            ))
        }
    };
    let columns = f.columns.unwrap_or_default();
    let find_columns_from_header = flag(f.find_columns_from_header, false)
        || flag(f.has_header_row, false) && columns.is_empty();
    if columns.is_empty() && !find_columns_from_header {
        return Err(err(
            &format!("{field}.columns"),
            "give [columns] or set [findColumnsFromHeader]",
        ));
    }
    Ok(InputFormat::Delimited {
        delimiter,
        columns,
        find_columns_from_header,
        skip_header_rows: f.skip_header_rows.unwrap_or(0) as usize,
        list_delimiter: f.list_delimiter,
    })
}

fn tuning(tuning: Option<wire::TuningConfig>, source: Source) -> Result<Tuning, SpecError> {
    let mut tuning = tuning.unwrap_or_default();
    let field = "spec.tuningConfig.partitionsSpec";
    let (partitions, partition_rows, partition_total) = match tuning.partitions_spec.take() {
        None => (PartitionsSpec::Dynamic, None, None),
        Some(p) => match p.kind.clone().as_deref() {
            None | Some("dynamic") => (
                PartitionsSpec::Dynamic,
                p.max_rows_per_segment,
                p.max_total_rows,
            ),
            Some("hashed") => (hashed(p, field)?, None, None),
            Some(kind @ ("range" | "single_dim")) => {
                (range(p, kind == "single_dim", field)?, None, None)
            }
            Some(other) => {
                return Err(err(
                    &format!("{field}.type"),
                    format!(
                    "unknown partitioning [{other}]; supported: dynamic, hashed, range, single_dim"
                ),
                ))
            }
        },
    };
    if let (Some(false), true) = (
        tuning.force_guaranteed_rollup.map(|f| flag(Some(f), false)),
        partitions.is_secondary(),
    ) {
        return Err(err(
            "spec.tuningConfig.forceGuaranteedRollup",
            "hashed and range partitioning guarantee rollup; leave forceGuaranteedRollup out or set it true",
        ));
    }
    if flag(tuning.force_guaranteed_rollup, false) && !partitions.is_secondary() {
        return Err(err(
            &format!("{field}.type"),
            "forceGuaranteedRollup needs hashed, range or single_dim partitioning",
        ));
    }
    let parallel = parallel_tuning(&tuning)?;
    let out = Tuning {
        max_rows_per_segment: partition_rows
            .or(tuning.max_rows_per_segment)
            .unwrap_or(5_000_000),
        max_total_rows: partition_total
            .or(tuning.max_total_rows)
            .unwrap_or(20_000_000),
        // Druid's streaming default is smaller: a stream task holds rows while it reads.
        max_rows_in_memory: tuning.max_rows_in_memory.unwrap_or(match source {
            Source::Stream => 150_000,
            Source::Batch => 1_000_000,
        }),
        max_parse_exceptions: tuning.max_parse_exceptions.unwrap_or(u64::MAX),
        max_saved_parse_exceptions: tuning.max_saved_parse_exceptions.unwrap_or(0),
        log_parse_exceptions: flag(tuning.log_parse_exceptions, false),
        partitions,
        parallel,
    };
    if out.max_rows_per_segment == 0 || out.max_rows_in_memory == 0 {
        return Err(err(
            "spec.tuningConfig",
            "maxRowsPerSegment and maxRowsInMemory must be positive",
        ));
    }
    Ok(out)
}

fn positive(value: Option<u64>, field: &str) -> Result<Option<u64>, SpecError> {
    match value {
        Some(0) => Err(err(field, "must be positive")),
        v => Ok(v),
    }
}

/// `hashed`: `numShards` or a row target (`targetRowsPerSegment`, or the legacy
/// `maxRowsPerSegment`/`targetPartitionSize`), not both; `partitionDimensions`; Druid's one
/// `partitionFunction`.
fn hashed(p: wire::PartitionsSpec, field: &str) -> Result<PartitionsSpec, SpecError> {
    let num_shards = positive(p.num_shards, &format!("{field}.numShards"))?;
    let target = positive(
        p.target_rows_per_segment
            .or(p.max_rows_per_segment)
            .or(p.target_partition_size),
        &format!("{field}.targetRowsPerSegment"),
    )?;
    if num_shards.is_some() && target.is_some() {
        return Err(err(
            &format!("{field}.numShards"),
            "cannot be used together with targetRowsPerSegment (or maxRowsPerSegment)",
        ));
    }
    if let Some(n) = num_shards.filter(|n| *n > 10_000) {
        return Err(err(
            &format!("{field}.numShards"),
            format!("{n} is more than 10000"),
        ));
    }
    match p.partition_function.as_deref() {
        None => {}
        Some(f) if f.eq_ignore_ascii_case("murmur3_32_abs") => {}
        Some(other) => {
            return Err(err(
                &format!("{field}.partitionFunction"),
                format!("unknown function [{other}]; supported: murmur3_32_abs"),
            ))
        }
    }
    Ok(PartitionsSpec::Hashed {
        num_shards: num_shards.map(|n| n as u32),
        target_rows_per_segment: target,
        dimensions: p.partition_dimensions.unwrap_or_default(),
    })
}

/// `range` (`partitionDimensions`) and `single_dim` (`partitionDimension`): exactly one of
/// `targetRowsPerSegment` and `maxRowsPerSegment`.
fn range(
    p: wire::PartitionsSpec,
    single_dim: bool,
    field: &str,
) -> Result<PartitionsSpec, SpecError> {
    let dimensions = if single_dim {
        match p.partition_dimension {
            Some(d) if !d.is_empty() => vec![d],
            _ => {
                return Err(err(
                    &format!("{field}.partitionDimension"),
                    "is required for single_dim partitioning",
                ))
            }
        }
    } else {
        match p.partition_dimensions {
            Some(d) if !d.is_empty() => d,
            _ => {
                return Err(err(
                    &format!("{field}.partitionDimensions"),
                    "must name at least one dimension",
                ))
            }
        }
    };
    let target = positive(
        p.target_rows_per_segment.or(p.target_partition_size),
        &format!("{field}.targetRowsPerSegment"),
    )?;
    let max = positive(
        p.max_rows_per_segment,
        &format!("{field}.maxRowsPerSegment"),
    )?;
    if target.is_some() == max.is_some() {
        return Err(err(
            &format!("{field}.targetRowsPerSegment"),
            "give exactly one of targetRowsPerSegment and maxRowsPerSegment",
        ));
    }
    Ok(PartitionsSpec::Range {
        dimensions,
        target_rows_per_segment: target,
        max_rows_per_segment: max,
        single_dim,
    })
}

fn parallel_tuning(t: &wire::TuningConfig) -> Result<ParallelTuning, SpecError> {
    let defaults = ParallelTuning::default();
    let field = "spec.tuningConfig";
    let concurrent = positive(
        t.max_num_concurrent_sub_tasks.or(t.max_num_sub_tasks),
        &format!("{field}.maxNumConcurrentSubTasks"),
    )?
    .unwrap_or(defaults.max_num_concurrent_sub_tasks as u64);
    let hint = t.split_hint_spec.as_ref();
    if let Some(kind) = hint.and_then(|h| h.kind.as_deref()) {
        if kind != "maxSize" && kind != "segments" {
            return Err(err(
                &format!("{field}.splitHintSpec.type"),
                format!("unknown split hint [{kind}]; supported: maxSize, segments"),
            ));
        }
    }
    let max_split_size = positive(
        hint.and_then(|h| h.max_split_size.or(h.max_input_segment_bytes_per_task)),
        &format!("{field}.splitHintSpec.maxSplitSize"),
    )?
    .unwrap_or(defaults.max_split_size);
    let max_num_files = positive(
        hint.and_then(|h| h.max_num_files),
        &format!("{field}.splitHintSpec.maxNumFiles"),
    )?
    .map_or(defaults.max_num_files, |n| n as usize);
    let max_retry = t.max_retry.unwrap_or(defaults.max_retry as u64);
    let merge = positive(
        t.total_num_merge_tasks,
        &format!("{field}.totalNumMergeTasks"),
    )?
    .unwrap_or(defaults.total_num_merge_tasks as u64);
    let cap = |v: u64, name: &str| {
        u32::try_from(v)
            .ok()
            .filter(|v| *v <= 10_000)
            .ok_or_else(|| {
                err(
                    &format!("{field}.{name}"),
                    format!("{v} is more than 10000"),
                )
            })
    };
    Ok(ParallelTuning {
        max_num_concurrent_sub_tasks: cap(concurrent, "maxNumConcurrentSubTasks")?,
        max_retry: cap(max_retry, "maxRetry")?,
        max_split_size,
        max_num_files,
        total_num_merge_tasks: cap(merge, "totalNumMergeTasks")?,
    })
}

/// `s3://bucket/key` as (bucket, key).
fn s3_uri(field: &str, uri: &str) -> Result<(String, String), SpecError> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| err(field, format!("[{uri}] is not an s3:// URI")))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() => Ok((bucket.to_string(), key.to_string())),
        _ => Err(err(field, format!("[{uri}] names no bucket and key"))),
    }
}

fn password(field: &str, p: Option<wire::Password>) -> Result<Option<String>, SpecError> {
    Ok(match p {
        None => None,
        Some(wire::Password::Plain(s)) => Some(s),
        Some(wire::Password::Provider {
            kind,
            password,
            variable,
        }) => match kind.as_deref() {
            None | Some("default") => {
                Some(password.ok_or_else(|| err(&format!("{field}.password"), "is required"))?)
            }
            Some("environment") => {
                let name =
                    variable.ok_or_else(|| err(&format!("{field}.variable"), "is required"))?;
                Some(std::env::var(&name).map_err(|_| {
                    err(&format!("{field}.variable"), format!("[{name}] is not set"))
                })?)
            }
            Some(other) => {
                return Err(err(
                    &format!("{field}.type"),
                    format!("unknown password provider [{other}]; supported: default, environment"),
                ))
            }
        },
    })
}

fn s3_source(field: &str, s3: wire::S3Source) -> Result<crate::spec::S3Source, SpecError> {
    let wire::S3Source {
        uris,
        prefixes,
        objects,
        object_glob,
        properties,
        endpoint_config: endpoint,
    } = s3;
    let given = [uris.is_some(), prefixes.is_some(), objects.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        return Err(err(
            field,
            "an s3 input source needs exactly one of [uris], [prefixes] and [objects]",
        ));
    }
    let mut named = Vec::new();
    for (i, uri) in uris.iter().flatten().enumerate() {
        named.push(s3_uri(&format!("{field}.uris[{i}]"), uri)?);
    }
    for (i, o) in objects.into_iter().flatten().enumerate() {
        if o.bucket.is_empty() || o.path.is_empty() {
            return Err(err(
                &format!("{field}.objects[{i}]"),
                "needs a [bucket] and a [path]",
            ));
        }
        named.push((o.bucket, o.path));
    }
    let prefixes = prefixes
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| s3_uri(&format!("{field}.prefixes[{i}]"), p))
        .collect::<Result<Vec<_>, _>>()?;
    let credentials = match properties {
        None => None,
        Some(p) => {
            let id = password(&format!("{field}.properties.accessKeyId"), p.access_key_id)?;
            let secret = password(
                &format!("{field}.properties.secretAccessKey"),
                p.secret_access_key,
            )?;
            match (id, secret) {
                (Some(id), Some(secret)) => Some((id, secret)),
                (None, None) => None,
                _ => {
                    return Err(err(
                        &format!("{field}.properties"),
                        "give both accessKeyId and secretAccessKey, or neither",
                    ))
                }
            }
        }
    };
    let (endpoint, region) = match endpoint {
        Some(e) => (e.url, e.signing_region),
        None => (None, None),
    };
    Ok(crate::spec::S3Source {
        objects: named,
        prefixes,
        object_glob,
        credentials,
        endpoint,
        region,
    })
}
