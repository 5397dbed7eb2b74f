//! Kafka supervisor specs (see docs/architecture.md), in both shapes Druid accepts: modern
//! (`{"type":"kafka","spec":{"dataSchema","ioConfig","tuningConfig"}}`) and legacy (the three at
//! the top level, as the tutorial's `wikipedia-kafka-supervisor.json` has them). Both are stored
//! and shown in the modern shape. Every error names the field.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_core::ids::{DataSource, SupervisorId};
use drover_core::wire::{flag, period};
use serde_json::{json, Map, Value};

mod wire;

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

/// The lock settings the supervisor's tasks inherit, checked here so that a bad one is a 400 at
/// `POST /supervisor` rather than every task failing: `useConcurrentLocks` a boolean, and
/// `taskLockType` one a streaming task can publish under.
fn check_lock_context(context: &Map<String, Value>) -> Result<(), SpecError> {
    match context.get("useConcurrentLocks") {
        None | Some(Value::Null | Value::Bool(_)) => {}
        Some(Value::String(s)) if s == "true" || s == "false" => {}
        Some(other) => {
            return Err(field(
                "context.useConcurrentLocks",
                format!("must be true or false, got {other}"),
            ))
        }
    }
    match context.get("taskLockType") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(t)) if t == "EXCLUSIVE" || t == "APPEND" => Ok(()),
        Some(other) => Err(field(
            "context.taskLockType",
            format!("a streaming task publishes under EXCLUSIVE or APPEND, got {other}"),
        )),
    }
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

/// Reads `value` as `T`; an error names its path under `prefix` (`spec.ioConfig`, or `ioConfig`
/// for a legacy spec, or nothing for the top level).
fn read<T: serde::de::DeserializeOwned>(prefix: &str, value: &Value) -> Result<T, SpecError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let name = match (prefix, path.as_str()) {
            (p, ".") => p.to_string(),
            ("", path) => path.to_string(),
            (p, path) => format!("{p}.{path}"),
        };
        field(&name, e.into_inner().to_string())
    })
}

/// A count with a floor, `default` when absent.
fn at_least(name: &str, value: Option<u64>, default: u64, min: u64) -> Result<u64, SpecError> {
    let n = value.unwrap_or(default);
    if n < min {
        return Err(field(name, format!("must be at least {min}")));
    }
    Ok(n)
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
        let wire: wire::Supervisor = read("", v)?;
        // Modern specs nest the three parts in `spec`; legacy ones have them at the top.
        let (parts, prefix) = match wire.spec {
            Some(parts) => (parts, "spec."),
            None => (
                wire::Parts {
                    data_schema: wire.data_schema,
                    io_config: wire.io_config,
                    tuning_config: wire.tuning_config,
                },
                "",
            ),
        };
        let name = |k: &str| format!("{prefix}{k}");
        let schema = parts
            .data_schema
            .ok_or_else(|| field(&name("dataSchema"), "is required"))?;
        let io_raw = parts
            .io_config
            .ok_or_else(|| field(&name("ioConfig"), "is required"))?;
        let tuning_raw = parts.tuning_config.unwrap_or_default();

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
        let id = SupervisorId::new(wire.id.unwrap_or_else(|| data_source.to_string()))
            .map_err(|e| field("id", e.to_string()))?;
        let suspended = flag(wire.suspended, false);
        let context = wire.context.unwrap_or_default();
        check_lock_context(&context)?;

        let io_name = |k: &str| name(&format!("ioConfig.{k}"));
        let io: wire::IoConfig = read(&name("ioConfig"), &Value::Object(io_raw.clone()))?;
        if let Some(t) = io.kind.as_deref().filter(|t| *t != "kafka") {
            return Err(field(&io_name("type"), format!("must be kafka, got [{t}]")));
        }
        if io.topic_pattern.as_ref().is_some_and(|p| !p.is_null()) {
            return Err(field(
                &io_name("topicPattern"),
                "multi-topic ingestion is not supported yet; give [topic]",
            ));
        }
        let topic = io.topic.filter(|t| !t.is_empty()).ok_or_else(|| {
            field(
                &io_name("topic"),
                "is required and must be a non-empty string",
            )
        })?;
        let props = io
            .consumer_properties
            .ok_or_else(|| field(&io_name("consumerProperties"), "is required"))?;
        let mut consumer_properties = BTreeMap::new();
        for (k, v) in props {
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(field(
                        &io_name(&format!("consumerProperties.{k}")),
                        "must be a string, number or boolean",
                    ))
                }
            };
            consumer_properties.insert(k, text);
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
        let input_format = io.input_format.map(Value::Object);
        if input_format.is_none() && schema.get("parser").is_none() {
            return Err(field(
                &io_name("inputFormat"),
                "is required (or a legacy dataSchema.parser)",
            ));
        }
        let late = io.late_message_rejection_period.map(|p| p.0);
        let late_start = match io.late_message_rejection_start_date_time {
            None => None,
            Some(s) => Some(drover_core::time::parse_iso(&s).ok_or_else(|| {
                field(
                    &io_name("lateMessageRejectionStartDateTime"),
                    "must be an ISO-8601 instant",
                )
            })?),
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
            poll_timeout_ms: at_least(&io_name("pollTimeout"), io.poll_timeout, 100, 1)?,
            task_count: at_least(&io_name("taskCount"), io.task_count, 1, 1)? as u32,
            replicas: at_least(&io_name("replicas"), io.replicas, 1, 1)? as u32,
            task_duration: period(io.task_duration, Duration::from_secs(3600)),
            start_delay: period(io.start_delay, Duration::from_secs(5)),
            period: period(io.period, Duration::from_secs(30)),
            use_earliest_offset: flag(io.use_earliest_offset, false),
            completion_timeout: period(io.completion_timeout, Duration::from_secs(1800)),
            late_message_rejection_period: late,
            late_message_rejection_start: late_start,
            early_message_rejection_period: io.early_message_rejection_period.map(|p| p.0),
        };
        if io_config.task_duration.is_zero() || io_config.period.is_zero() {
            return Err(field(
                &io_name("taskDuration"),
                "taskDuration and period must be positive",
            ));
        }

        let tn = |k: &str| name(&format!("tuningConfig.{k}"));
        let tuning: wire::Tuning = read(&name("tuningConfig"), &Value::Object(tuning_raw.clone()))?;
        if let Some(t) = tuning
            .kind
            .as_deref()
            .filter(|t| *t != "kafka" && *t != "KafkaTuningConfig")
        {
            return Err(field(&tn("type"), format!("must be kafka, got [{t}]")));
        }
        let sup_tuning = KafkaSupervisorTuning {
            // Druid's minimum.
            offset_fetch_period: period(tuning.offset_fetch_period, Duration::from_secs(30))
                .max(Duration::from_secs(5)),
            reset_offset_automatically: flag(tuning.reset_offset_automatically, false),
            chat_retries: at_least(&tn("chatRetries"), tuning.chat_retries, 8, 0)? as u32,
            http_timeout: period(tuning.http_timeout, Duration::from_secs(10)),
            shutdown_timeout: period(tuning.shutdown_timeout, Duration::from_secs(80)),
        };
        let schema = &schema;
        let tuning = &tuning_raw;
        let io = &io_raw;
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
    fn wrongly_typed_fields_are_errors_naming_their_path() {
        let err = |v: Value| KafkaSupervisorSpec::from_value(&v).unwrap_err().to_string();
        let modern = |io: Value, tuning: Value| {
            json!({"type":"kafka","suspended":false,"spec":{
                "dataSchema":{"dataSource":"x","timestampSpec":{"column":"ts"}},
                "ioConfig": io, "tuningConfig": tuning}})
        };
        let io = |extra: Value| {
            let mut io = json!({"topic":"t","inputFormat":{"type":"json"},
                "consumerProperties":{"bootstrap.servers":"h:1"}});
            io.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            io
        };
        assert!(KafkaSupervisorSpec::from_value(&modern(io(json!({})), json!({}))).is_ok());
        let e = err(modern(io(json!({"useEarliestOffset":"yes"})), json!({})));
        assert!(
            e.contains("[spec.ioConfig.useEarliestOffset]") && e.contains("true or false"),
            "{e}"
        );
        let e = err(modern(io(json!({"taskCount":"2"})), json!({})));
        assert!(e.contains("[spec.ioConfig.taskCount]"), "{e}");
        let e = err(modern(io(json!({})), json!({"chatRetries":-1})));
        assert!(e.contains("[spec.tuningConfig.chatRetries]"), "{e}");
        let e = err(modern(io(json!({})), json!({"brokerOutageTimeout":"soon"})));
        assert!(e.contains("[spec.tuningConfig.brokerOutageTimeout]"), "{e}");
        let mut v = modern(io(json!({})), json!({}));
        v["suspended"] = json!("no");
        assert!(err(v).contains("[suspended]"));
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
        v["context"] = json!({"useConcurrentLocks": "yes"});
        assert!(err(v).contains("[context.useConcurrentLocks]"));
        let mut v = tutorial();
        v["context"] = json!({"taskLockType": "REPLACE"});
        assert!(err(v).contains("[context.taskLockType]"));
        let mut v = tutorial();
        v["context"] = json!({"useConcurrentLocks": true});
        assert!(KafkaSupervisorSpec::from_value(&v).is_ok());
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
