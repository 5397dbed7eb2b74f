//! Druid's `compact` task: rewrites a data source's used segments in an interval (or a list of
//! them) as new segments of a newer version, overshadowing the old ones. It is an `index` task
//! over a `druid` input source whose schema defaults to what the segments hold; the parts the
//! user gives (`dimensionsSpec`, `metricsSpec`, `transformSpec`, `granularitySpec`,
//! `tuningConfig`) are checked when the task is posted.

use drover_core::granularity::Granularity;
use drover_core::ids::DataSource;
use drover_core::interval::Interval;
use drover_core::wire::{flag, Flag};
use drover_ingest::{IngestionSpec, SpecError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::task::{invalid, TaskSpecError};

#[derive(Debug, Clone, PartialEq)]
pub struct CompactSpec {
    /// The interval compacted: as given, or the umbrella of the listed segments.
    pub interval: Interval,
    /// `inputSpec` of type `segments`: only these segments.
    pub segment_ids: Option<Vec<String>>,
    /// `None`: keep the segments' own granularity.
    pub segment_granularity: Option<Granularity>,
    pub query_granularity: Option<Granularity>,
    pub rollup: Option<bool>,
    pub dimensions_spec: Option<Value>,
    pub metrics_spec: Option<Value>,
    pub transform_spec: Option<Value>,
    pub tuning_config: Option<Value>,
    /// Segments of the interval that the new ones do not cover are dropped too.
    pub drop_existing: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompactWire {
    /// Druid's deprecated top-level form of `ioConfig.inputSpec.interval`.
    interval: Option<String>,
    io_config: Option<IoConfigWire>,
    /// Druid's deprecated top-level form of `granularitySpec.segmentGranularity`.
    segment_granularity: Option<Granularity>,
    granularity_spec: Option<GranularityWire>,
    dimensions_spec: Option<Value>,
    metrics_spec: Option<Value>,
    transform_spec: Option<Value>,
    tuning_config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IoConfigWire {
    input_spec: Option<InputSpecWire>,
    drop_existing: Option<Flag>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum InputSpecWire {
    Interval { interval: String },
    Segments { segments: Vec<String> },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GranularityWire {
    segment_granularity: Option<Granularity>,
    query_granularity: Option<Granularity>,
    rollup: Option<Flag>,
}

/// The interval a segment id names: `<dataSource>_<start>_<end>_<version>[_<partition>]`.
fn id_interval(data_source: &str, id: &str) -> Option<Interval> {
    let rest = id.strip_prefix(data_source)?.strip_prefix('_')?;
    let mut parts = rest.splitn(3, '_');
    let start = drover_core::time::parse_iso(parts.next()?)?;
    let end = drover_core::time::parse_iso(parts.next()?)?;
    Interval::new(start, end).ok()
}

impl CompactSpec {
    pub(crate) fn parse(
        obj: &Map<String, Value>,
        data_source: &DataSource,
    ) -> Result<CompactSpec, TaskSpecError> {
        let value = Value::Object(obj.clone());
        let wire: CompactWire = serde_path_to_error::deserialize(&value)
            .map_err(|e| invalid(e.path().to_string(), e.inner().to_string()))?;
        let io = wire.io_config;
        let drop_existing = flag(io.as_ref().and_then(|io| io.drop_existing), false);
        let input = io.and_then(|io| io.input_spec);
        let parse_interval = |field: &str, text: &str| {
            Interval::parse(text)
                .map_err(|e| invalid(field, format!("[{text}] is not an interval: {e}")))
        };
        let (interval, segment_ids) = match (input, wire.interval) {
            (Some(InputSpecWire::Interval { interval }), _) => {
                (parse_interval("ioConfig.inputSpec.interval", &interval)?, None)
            }
            (Some(InputSpecWire::Segments { segments }), _) => {
                if segments.is_empty() {
                    return Err(invalid("ioConfig.inputSpec.segments", "must not be empty"));
                }
                let mut umbrella: Option<Interval> = None;
                for (i, id) in segments.iter().enumerate() {
                    let iv = id_interval(data_source.as_str(), id).ok_or_else(|| {
                        invalid(
                            format!("ioConfig.inputSpec.segments[{i}]"),
                            format!("[{id}] is not a segment id of [{data_source}]"),
                        )
                    })?;
                    umbrella = Some(match umbrella {
                        None => iv,
                        Some(u) => Interval {
                            start: u.start.min(iv.start),
                            end: u.end.max(iv.end),
                        },
                    });
                }
                (umbrella.expect("at least one segment"), Some(segments))
            }
            (None, Some(text)) => (parse_interval("interval", &text)?, None),
            (None, None) => {
                return Err(invalid(
                    "ioConfig.inputSpec",
                    "is required: {\"type\":\"interval\",\"interval\":…} or {\"type\":\"segments\",\"segments\":[…]}",
                ))
            }
        };
        let granularity = wire.granularity_spec;
        let segment_granularity = granularity
            .as_ref()
            .and_then(|g| g.segment_granularity)
            .or(wire.segment_granularity);
        if let Some(g) = segment_granularity {
            if g.cover(&interval) != interval {
                return Err(invalid(
                    "granularitySpec.segmentGranularity",
                    format!(
                        "the interval [{interval}] must be aligned to {}: compacting part of a \
                         bucket would drop the rest of it",
                        g.name()
                    ),
                ));
            }
        }
        let spec = CompactSpec {
            interval,
            segment_ids,
            segment_granularity,
            query_granularity: granularity.as_ref().and_then(|g| g.query_granularity),
            rollup: granularity.and_then(|g| g.rollup).map(|Flag(b)| b),
            dimensions_spec: wire.dimensions_spec,
            metrics_spec: wire.metrics_spec,
            transform_spec: wire.transform_spec,
            tuning_config: wire.tuning_config,
            drop_existing,
        };
        // Checked now, with placeholders for what the segments will say.
        spec.ingestion_spec(
            data_source,
            json!({"dimensions": []}),
            json!([]),
            segment_granularity.unwrap_or(Granularity::Day),
        )
        .map_err(|e| {
            // Named as the user wrote them: at the top of the compact task.
            let field = e
                .field
                .strip_prefix("spec.dataSchema.")
                .or_else(|| e.field.strip_prefix("spec."))
                .unwrap_or(&e.field)
                .to_string();
            invalid(field, e.message)
        })?;
        Ok(spec)
    }

    /// The index spec that rewrites the segments: `dimensions_spec` and `metrics_spec` are the
    /// user's when given, else `dimensions` and `metrics` (what the segments hold), and
    /// `segment_granularity` the target one.
    pub fn ingestion_spec(
        &self,
        data_source: &DataSource,
        dimensions: Value,
        metrics: Value,
        segment_granularity: Granularity,
    ) -> Result<IngestionSpec, SpecError> {
        let mut schema = json!({
            "dataSource": data_source,
            "timestampSpec": {"column": "__time", "format": "millis"},
            "dimensionsSpec": self.dimensions_spec.clone().unwrap_or(dimensions),
            "metricsSpec": self.metrics_spec.clone().unwrap_or(metrics),
            "granularitySpec": {
                "segmentGranularity": segment_granularity.name(),
                "queryGranularity": self.query_granularity.unwrap_or(Granularity::None).name(),
                // Rows stay as they are unless a rollup is asked for.
                "rollup": self.rollup.unwrap_or(false),
                "intervals": [self.interval],
            },
        });
        if let Some(t) = &self.transform_spec {
            schema["transformSpec"] = t.clone();
        }
        IngestionSpec::from_task(&json!({"spec": {
            "dataSchema": schema,
            "ioConfig": {
                "inputSource": {"type": "druid", "dataSource": data_source, "interval": self.interval},
                "appendToExisting": false,
            },
            "tuningConfig": self.tuning_config.clone().unwrap_or_else(|| json!({})),
        }}))
    }

    /// Druid's `lastCompactionState`, recorded on the segments this compaction writes: the parts
    /// of the spec that decide what the segments look like, as given (`null` where the segments'
    /// own were kept). Automatic compaction compares it with its config's.
    pub fn state(&self) -> Value {
        json!({
            "granularitySpec": {
                "segmentGranularity": self.segment_granularity.map(Granularity::name),
                "queryGranularity": self.query_granularity.map(Granularity::name),
                "rollup": self.rollup,
            },
            "dimensionsSpec": self.dimensions_spec,
            "metricsSpec": self.metrics_spec,
            "transformSpec": self.transform_spec,
            "partitionsSpec": self.tuning_config.as_ref().and_then(|t| t.get("partitionsSpec")),
        })
    }

    /// What the task locks: the interval, widened to whole buckets of a new granularity.
    pub fn lock_intervals(&self) -> Vec<Interval> {
        match self.segment_granularity {
            Some(g) => vec![g.cover(&self.interval)],
            None => vec![self.interval],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<CompactSpec, TaskSpecError> {
        CompactSpec::parse(
            v.as_object().unwrap(),
            &DataSource::new("compaction-tutorial").unwrap(),
        )
    }

    #[test]
    fn reads_druids_tutorial_specs() {
        let keep = parse(
            json!({"type": "compact", "dataSource": "compaction-tutorial",
            "interval": "2015-09-12/2015-09-13", "tuningConfig": {"type": "index_parallel",
            "partitionsSpec": {"type": "dynamic"}, "maxRowsInMemory": 25000}}),
        )
        .unwrap();
        assert_eq!(keep.segment_granularity, None);
        assert_eq!(keep.lock_intervals(), [keep.interval]);
        let day = parse(
            json!({"type": "compact", "dataSource": "compaction-tutorial",
            "interval": "2015-09-12/2015-09-13", "granularitySpec": {"segmentGranularity": "DAY",
            "queryGranularity": "none"}}),
        )
        .unwrap();
        assert_eq!(day.segment_granularity, Some(Granularity::Day));
        let by_ids = parse(json!({"type": "compact", "ioConfig": {"type": "compact",
            "inputSpec": {"type": "segments", "segments": [
                "compaction-tutorial_2015-09-12T01:00:00.000Z_2015-09-12T02:00:00.000Z_v1",
                "compaction-tutorial_2015-09-12T05:00:00.000Z_2015-09-12T06:00:00.000Z_v1_3"]},
            "dropExisting": true}}))
        .unwrap();
        assert_eq!(
            by_ids.interval.to_string(),
            "2015-09-12T01:00:00.000Z/2015-09-12T06:00:00.000Z"
        );
        assert!(by_ids.drop_existing);
    }

    #[test]
    fn bad_compactions_name_the_field() {
        let field = |v: Value| match parse(v) {
            Err(TaskSpecError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(json!({})), "ioConfig.inputSpec");
        assert_eq!(field(json!({"interval": "soon"})), "interval");
        assert_eq!(
            field(
                json!({"ioConfig": {"inputSpec": {"type": "segments", "segments": ["other_x"]}}})
            ),
            "ioConfig.inputSpec.segments[0]"
        );
        assert_eq!(
            field(
                json!({"interval": "2015-09-12T05:00:00Z/2015-09-12T07:00:00Z",
                "granularitySpec": {"segmentGranularity": "DAY"}})
            ),
            "granularitySpec.segmentGranularity"
        );
        assert_eq!(
            field(json!({"interval": "2015-09-12/2015-09-13",
                "metricsSpec": [{"type": "hyperUnique", "name": "u", "fieldName": "u"}]})),
            "metricsSpec[0].type"
        );
        assert_eq!(
            field(json!({"interval": "2015-09-12/2015-09-13",
                "tuningConfig": {"maxRowsInMemory": "lots"}})),
            "tuningConfig.maxRowsInMemory"
        );
    }
}
