//! Kafka supervisor specs (see docs/architecture.md), in both shapes Druid accepts: modern
//! (`{"type":"kafka","spec":{"dataSchema","ioConfig","tuningConfig"}}`) and legacy (the three at
//! the top level, as the tutorial's `wikipedia-kafka-supervisor.json` has them). Both are stored
//! and shown in the modern shape. Every error names the field.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_core::ids::{DataSource, SupervisorId};
use drover_core::period::parse_period;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the supervisor spec has no [type]; supported: kafka")]
    MissingType,
    #[error("supervisor type [{0}] is not supported; supported: kafka")]
    UnsupportedType(String),
    #[error("invalid [{field}]: {message}")]
    Field { field: String, message: String },
}

fn field(field: &str, message: impl Into<String>) -> SpecError {
    SpecError::Field {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The supervisor's `ioConfig` with Druid's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaIoConfig {
    pub topic: String,
    /// The task's `inputFormat` (absent when the schema has a legacy `parser`).
    pub input_format: Option<Value>,
    /// As given, with `bootstrap.servers` required; values are strings for librdkafka.
    pub consumer_properties: BTreeMap<String, String>,
    pub poll_timeout_ms: u64,
    pub task_count: u32,
    pub replicas: u32,
    pub task_duration: Duration,
    pub start_delay: Duration,
    pub period: Duration,
    pub use_earliest_offset: bool,
    pub completion_timeout: Duration,
    pub late_message_rejection_period: Option<Duration>,
    pub late_message_rejection_start: Option<DateTime<Utc>>,
    pub early_message_rejection_period: Option<Duration>,
}

/// The part of the `kafka` tuningConfig the supervisor itself uses; the tasks get all of it.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSupervisorTuning {
    pub offset_fetch_period: Duration,
    pub reset_offset_automatically: bool,
    pub chat_retries: u32,
    pub http_timeout: Duration,
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSupervisorSpec {
    pub id: SupervisorId,
    pub data_source: DataSource,
    pub suspended: bool,
    pub data_schema: Value,
    /// The tuningConfig the tasks get (Druid's `KafkaIndexTaskTuningConfig`).
    pub tuning_config: Value,
    pub io: KafkaIoConfig,
    pub tuning: KafkaSupervisorTuning,
    pub context: Map<String, Value>,
    /// The spec in the modern shape, as stored and as `GET /supervisor/{id}` shows it.
    pub payload: Value,
}

fn object<'a>(
    name: &str,
    v: Option<&'a Value>,
) -> Result<Option<&'a Map<String, Value>>, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(field(name, "must be a JSON object")),
    }
}

pub(crate) fn period(
    name: &str,
    v: Option<&Value>,
    default: Option<Duration>,
) -> Result<Option<Duration>, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => parse_period(s).map(Some).map_err(|e| field(name, e.0)),
        // Druid also takes a number of milliseconds for some of these.
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|ms| Some(Duration::from_millis(ms)))
            .ok_or_else(|| field(name, "must be a non-negative number of milliseconds")),
        Some(_) => Err(field(name, "must be an ISO-8601 period such as PT1H")),
    }
}

fn required_period(
    name: &str,
    v: Option<&Value>,
    default: Duration,
) -> Result<Duration, SpecError> {
    Ok(period(name, v, Some(default))?.unwrap_or(default))
}

fn count(name: &str, v: Option<&Value>, default: u64, min: u64) -> Result<u64, SpecError> {
    let n = match v {
        None | Some(Value::Null) => default,
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| field(name, "must be a non-negative whole number"))?,
        Some(_) => return Err(field(name, "must be a number")),
    };
    if n < min {
        return Err(field(name, format!("must be at least {min}")));
    }
    Ok(n)
}

fn boolean(name: &str, v: Option<&Value>, default: bool) -> Result<bool, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(field(name, "must be true or false")),
    }
}

impl KafkaSupervisorSpec {
    pub fn from_json_bytes(body: &[u8]) -> Result<KafkaSupervisorSpec, SpecError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| SpecError::InvalidJson(e.to_string()))?;
        KafkaSupervisorSpec::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<KafkaSupervisorSpec, SpecError> {
        let top = v
            .as_object()
            .ok_or_else(|| field("(body)", "a supervisor spec must be a JSON object"))?;
        match top.get("type") {
            None | Some(Value::Null) => return Err(SpecError::MissingType),
            Some(Value::String(t)) if t == "kafka" => {}
            Some(Value::String(t)) => return Err(SpecError::UnsupportedType(t.clone())),
            Some(_) => return Err(field("type", "must be a string")),
        }
        // Modern specs nest the three parts in `spec`; legacy ones have them at the top.
        let (parts, prefix) = match object("spec", top.get("spec"))? {
            Some(spec) => (spec, "spec."),
            None => (top, ""),
        };
        let name = |k: &str| format!("{prefix}{k}");
        let schema = object(&name("dataSchema"), parts.get("dataSchema"))?
            .ok_or_else(|| field(&name("dataSchema"), "is required"))?;
        let io = object(&name("ioConfig"), parts.get("ioConfig"))?
            .ok_or_else(|| field(&name("ioConfig"), "is required"))?;
        let tuning = object(&name("tuningConfig"), parts.get("tuningConfig"))?
            .cloned()
            .unwrap_or_default();

        let data_source = match schema.get("dataSource") {
            Some(Value::String(ds)) => ds.clone(),
            _ => {
                return Err(field(
                    &name("dataSchema.dataSource"),
                    "is required and must be a string",
                ))
            }
        };
        let data_source = DataSource::new(data_source)
            .map_err(|e| field(&name("dataSchema.dataSource"), e.to_string()))?;
        let id = match top.get("id") {
            None | Some(Value::Null) => data_source.to_string(),
            Some(Value::String(id)) => id.clone(),
            Some(_) => return Err(field("id", "must be a string")),
        };
        let id = SupervisorId::new(id).map_err(|e| field("id", e.to_string()))?;
        let suspended = boolean("suspended", top.get("suspended"), false)?;
        let context = object("context", top.get("context"))?
            .cloned()
            .unwrap_or_default();

        let io_name = |k: &str| name(&format!("ioConfig.{k}"));
        if let Some(t) = io.get("type").and_then(Value::as_str) {
            if t != "kafka" {
                return Err(field(&io_name("type"), format!("must be kafka, got [{t}]")));
            }
        }
        if io.get("topicPattern").is_some_and(|p| !p.is_null()) {
            return Err(field(
                &io_name("topicPattern"),
                "multi-topic ingestion is not supported yet; give [topic]",
            ));
        }
        let topic = match io.get("topic") {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            _ => {
                return Err(field(
                    &io_name("topic"),
                    "is required and must be a non-empty string",
                ))
            }
        };
        let props = object(&io_name("consumerProperties"), io.get("consumerProperties"))?
            .ok_or_else(|| field(&io_name("consumerProperties"), "is required"))?;
        let mut consumer_properties = BTreeMap::new();
        for (k, v) in props {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(field(
                        &io_name(&format!("consumerProperties.{k}")),
                        "must be a string, number or boolean",
                    ))
                }
            };
            consumer_properties.insert(k.clone(), text);
        }
        if consumer_properties
            .get("bootstrap.servers")
            .is_none_or(|s| s.trim().is_empty())
        {
            return Err(field(
                &io_name("consumerProperties.bootstrap.servers"),
                "is required",
            ));
        }
        let input_format = match io.get("inputFormat") {
            None | Some(Value::Null) => None,
            Some(f @ Value::Object(_)) => Some(f.clone()),
            Some(_) => return Err(field(&io_name("inputFormat"), "must be a JSON object")),
        };
        if input_format.is_none() && schema.get("parser").is_none() {
            return Err(field(
                &io_name("inputFormat"),
                "is required (or a legacy dataSchema.parser)",
            ));
        }
        let late = period(
            &io_name("lateMessageRejectionPeriod"),
            io.get("lateMessageRejectionPeriod"),
            None,
        )?;
        let late_start = match io.get("lateMessageRejectionStartDateTime") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(drover_core::time::parse_iso(s).ok_or_else(|| {
                field(
                    &io_name("lateMessageRejectionStartDateTime"),
                    "must be an ISO-8601 instant",
                )
            })?),
            Some(_) => {
                return Err(field(
                    &io_name("lateMessageRejectionStartDateTime"),
                    "must be an ISO-8601 instant",
                ))
            }
        };
        if late.is_some() && late_start.is_some() {
            return Err(field(
                &io_name("lateMessageRejectionPeriod"),
                "cannot be given with lateMessageRejectionStartDateTime",
            ));
        }
        let io_config = KafkaIoConfig {
            topic,
            input_format,
            consumer_properties,
            poll_timeout_ms: count(&io_name("pollTimeout"), io.get("pollTimeout"), 100, 1)?,
            task_count: count(&io_name("taskCount"), io.get("taskCount"), 1, 1)? as u32,
            replicas: count(&io_name("replicas"), io.get("replicas"), 1, 1)? as u32,
            task_duration: required_period(
                &io_name("taskDuration"),
                io.get("taskDuration"),
                Duration::from_secs(3600),
            )?,
            start_delay: required_period(
                &io_name("startDelay"),
                io.get("startDelay"),
                Duration::from_secs(5),
            )?,
            period: required_period(
                &io_name("period"),
                io.get("period"),
                Duration::from_secs(30),
            )?,
            use_earliest_offset: boolean(
                &io_name("useEarliestOffset"),
                io.get("useEarliestOffset"),
                false,
            )?,
            completion_timeout: required_period(
                &io_name("completionTimeout"),
                io.get("completionTimeout"),
                Duration::from_secs(1800),
            )?,
            late_message_rejection_period: late,
            late_message_rejection_start: late_start,
            early_message_rejection_period: period(
                &io_name("earlyMessageRejectionPeriod"),
                io.get("earlyMessageRejectionPeriod"),
                None,
            )?,
        };
        if io_config.task_duration.is_zero() || io_config.period.is_zero() {
            return Err(field(
                &io_name("taskDuration"),
                "taskDuration and period must be positive",
            ));
        }

        let tn = |k: &str| name(&format!("tuningConfig.{k}"));
        if let Some(t) = tuning.get("type").and_then(Value::as_str) {
            if t != "kafka" && t != "KafkaTuningConfig" {
                return Err(field(&tn("type"), format!("must be kafka, got [{t}]")));
            }
        }
        let sup_tuning = KafkaSupervisorTuning {
            offset_fetch_period: required_period(
                &tn("offsetFetchPeriod"),
                tuning.get("offsetFetchPeriod"),
                Duration::from_secs(30),
            )?
            // Druid's minimum.
            .max(Duration::from_secs(5)),
            reset_offset_automatically: boolean(
                &tn("resetOffsetAutomatically"),
                tuning.get("resetOffsetAutomatically"),
                false,
            )?,
            chat_retries: count(&tn("chatRetries"), tuning.get("chatRetries"), 8, 0)? as u32,
            http_timeout: required_period(
                &tn("httpTimeout"),
                tuning.get("httpTimeout"),
                Duration::from_secs(10),
            )?,
            shutdown_timeout: required_period(
                &tn("shutdownTimeout"),
                tuning.get("shutdownTimeout"),
                Duration::from_secs(80),
            )?,
        };
        // Read by the tasks; checked here so a bad value is a 400, not failing tasks.
        for name in ["intermediateHandoffPeriod", "brokerOutageTimeout"] {
            period(&tn(name), tuning.get(name), None)?;
        }
        let mut tuning_config = tuning.clone();
        tuning_config.insert("type".into(), json!("kafka"));
        let tuning_config = Value::Object(tuning_config);

        let mut io_out = io.clone();
        io_out.insert("type".into(), json!("kafka"));
        let payload = json!({
            "type": "kafka",
            "id": id,
            "spec": {
                "dataSchema": schema,
                "ioConfig": io_out,
                "tuningConfig": tuning_config,
            },
            "dataSchema": schema,
            "ioConfig": io_out,
            "tuningConfig": tuning_config,
            "suspended": suspended,
            "context": context,
        });
        let spec = KafkaSupervisorSpec {
            id,
            data_source,
            suspended,
            data_schema: Value::Object(schema.clone()),
            tuning_config,
            io: io_config,
            tuning: sup_tuning,
            context,
            payload,
        };
        // The tasks must be able to read it: check the schema as a task would.
        drover_ingest::IngestionSpec::from_stream_task(&spec.task_parts()).map_err(|e| {
            // The task reader names fields under `spec.`; a legacy spec has them at the top.
            let f = if prefix.is_empty() {
                e.field
                    .strip_prefix("spec.")
                    .unwrap_or(&e.field)
                    .to_string()
            } else {
                e.field.clone()
            };
            field(&f, e.message)
        })?;
        Ok(spec)
    }

    /// `dataSchema`/`ioConfig`/`tuningConfig` as an `index_kafka` task carries them.
    fn task_parts(&self) -> Value {
        let mut io = json!({"type": "kafka", "topic": self.io.topic});
        if let Some(f) = &self.io.input_format {
            io["inputFormat"] = f.clone();
        }
        json!({
            "dataSchema": self.data_schema,
            "ioConfig": io,
            "tuningConfig": self.tuning_config,
        })
    }

    /// The same spec with `suspended` set, for suspend and resume.
    pub fn with_suspended(&self, suspended: bool) -> KafkaSupervisorSpec {
        let mut s = self.clone();
        s.suspended = suspended;
        s.payload["suspended"] = json!(suspended);
        s
    }

    /// Task count actually used: `taskCount`, capped at the partition count.
    pub fn effective_task_count(&self, partitions: usize) -> u32 {
        self.io.task_count.min(partitions.max(1) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tutorial() -> Value {
        let text = drover_ingest::tutorial::tutorial_file("wikipedia-kafka-supervisor.json");
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn the_tutorial_spec_reads_as_it_ships() {
        let s = KafkaSupervisorSpec::from_value(&tutorial()).unwrap();
        assert_eq!(s.id, "wikipedia");
        assert_eq!(s.io.topic, "wikipedia");
        assert_eq!(s.io.replicas, 2);
        assert_eq!(s.io.task_count, 1);
        assert_eq!(s.io.task_duration, Duration::from_secs(600));
        assert_eq!(s.io.completion_timeout, Duration::from_secs(1200));
        assert_eq!(s.io.period, Duration::from_secs(30));
        assert!(!s.io.use_earliest_offset);
        // Stored in the modern shape, and that reads back to the same spec.
        assert_eq!(s.payload["spec"]["ioConfig"]["topic"], "wikipedia");
        assert_eq!(KafkaSupervisorSpec::from_value(&s.payload).unwrap(), s);
        assert!(s.with_suspended(true).payload["suspended"]
            .as_bool()
            .unwrap());
    }

    #[test]
    fn errors_name_the_field() {
        let err = |v: Value| KafkaSupervisorSpec::from_value(&v).unwrap_err().to_string();
        let mut v = tutorial();
        v["type"] = json!("kinesis");
        assert!(err(v).contains("[kinesis] is not supported"));
        let mut v = tutorial();
        v["ioConfig"]["consumerProperties"] = json!({});
        assert!(err(v).contains("ioConfig.consumerProperties.bootstrap.servers"));
        let mut v = tutorial();
        v["ioConfig"]["taskDuration"] = json!("ten minutes");
        assert!(err(v).contains("[ioConfig.taskDuration]"));
        let mut v = tutorial();
        v["ioConfig"].as_object_mut().unwrap().remove("topic");
        assert!(err(v).contains("[ioConfig.topic]"));
        let mut v = tutorial();
        v["dataSchema"]["granularitySpec"]["segmentGranularity"] = json!("FORTNIGHT");
        let e = err(v);
        assert!(e.contains("dataSchema.granularitySpec"), "{e}");
        assert!(
            !e.contains("spec."),
            "legacy specs get legacy field names: {e}"
        );
        let modern = json!({"type":"kafka","spec":{"dataSchema":{"dataSource":"x"},
            "ioConfig":{"topic":"t","consumerProperties":{"bootstrap.servers":"h:1"}}}});
        assert!(err(modern).contains("[spec.ioConfig.inputFormat]"));
        assert!(err(json!({"spec":{}})).contains("no [type]"));
    }
}
