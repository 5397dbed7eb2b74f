//! `index_kafka` tasks (see docs/api.md and docs/architecture.md): the JSON the supervisor creates, the base sequence
//! name that lets a restarted supervisor recognise its own tasks, and the reading of a task's
//! `ioConfig` that the peon and the supervisor's discovery share.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use drover_core::time::to_iso;
use drover_core::TaskGroupId;
use rand::Rng;
use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};

mod wire;

use crate::spec::KafkaSupervisorSpec;

/// Kafka partition → offset (Kafka offsets are "next to read"; end offsets are exclusive).
pub type Offsets = BTreeMap<i32, i64>;

/// "Read until told otherwise": the end offset a reading task starts with.
pub const END_OF_STREAM: i64 = i64::MAX;

/// All tasks of a data source's supervisor share this group id, hence their locks.
pub fn task_group_id(data_source: &str) -> String {
    format!("index_kafka_{data_source}")
}

/// JSON with every object's keys sorted, as Druid's sorting mapper writes it.
fn sorted_json(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// Druid's `generateSequenceName`: the same schema, tuning, start offsets and message-time bounds
/// always give the same name, so the tasks of a group (and a restarted supervisor) agree on it.
pub fn base_sequence_name(
    spec: &KafkaSupervisorSpec,
    start: &Offsets,
    minimum_message_time: Option<DateTime<Utc>>,
    maximum_message_time: Option<DateTime<Utc>>,
) -> String {
    let offsets: Vec<String> = start.iter().map(|(p, o)| format!("{p}({o})")).collect();
    let millis =
        |t: Option<DateTime<Utc>>| t.map_or(String::new(), |t| t.timestamp_millis().to_string());
    let mut hasher = Sha1::new();
    hasher.update(sorted_json(&spec.data_schema));
    hasher.update(sorted_json(&spec.tuning_config));
    hasher.update(offsets.join("+"));
    hasher.update(millis(minimum_message_time));
    hasher.update(millis(maximum_message_time));
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("index_kafka_{}_{}", spec.data_source, &hex[..15])
}

/// Eight random lowercase letters, as Druid's task id and consumer group suffixes.
pub(crate) fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..8)
        .map(|_| rng.random_range(b'a'..=b'z') as char)
        .collect()
}

fn offsets_json(o: &Offsets) -> Value {
    Value::Object(o.iter().map(|(p, v)| (p.to_string(), json!(v))).collect())
}

/// Druid's `start` / `end` sequence numbers JSON (also the `partitions` of commit metadata).
pub fn sequence_numbers(kind: &str, topic: &str, o: &Offsets) -> Value {
    let mut v = json!({
        "type": kind, "stream": topic, "topic": topic,
        "partitionSequenceNumberMap": offsets_json(o), "partitionOffsetMap": offsets_json(o),
    });
    if kind == "start" {
        v["exclusivePartitions"] = json!([]);
    }
    v
}

/// What a supervisor decides for one task of a task group.
pub struct NewTask<'a> {
    pub spec: &'a KafkaSupervisorSpec,
    pub group: TaskGroupId,
    pub base_sequence_name: &'a str,
    pub start: &'a Offsets,
    /// Sequence id → that sequence's start offsets (Druid's `checkpoints` context).
    pub checkpoints: &'a BTreeMap<u32, Offsets>,
    pub minimum_message_time: Option<DateTime<Utc>>,
    pub maximum_message_time: Option<DateTime<Utc>>,
}

impl NewTask<'_> {
    /// The task JSON, as `POST /druid/indexer/v1/task` would take it.
    pub fn to_json(&self) -> Value {
        let spec = self.spec;
        let topic = &spec.io.topic;
        let end: Offsets = self.start.keys().map(|p| (*p, END_OF_STREAM)).collect();
        let mut io = json!({
            "type": "kafka",
            "taskGroupId": self.group,
            "baseSequenceName": self.base_sequence_name,
            "startSequenceNumbers": sequence_numbers("start", topic, self.start),
            "endSequenceNumbers": sequence_numbers("end", topic, &end),
            "consumerProperties": spec.io.consumer_properties,
            "pollTimeout": spec.io.poll_timeout_ms,
            "useTransaction": true,
            "minimumMessageTime": self.minimum_message_time.map(to_iso),
            "maximumMessageTime": self.maximum_message_time.map(to_iso),
            "multiTopic": false,
            "topic": topic,
        });
        if let Some(f) = &spec.io.input_format {
            io["inputFormat"] = f.clone();
        }
        let checkpoints: Map<String, Value> = self
            .checkpoints
            .iter()
            .map(|(s, o)| (s.to_string(), offsets_json(o)))
            .collect();
        let mut context = spec.context.clone();
        context.insert(
            "checkpoints".into(),
            json!(Value::Object(checkpoints).to_string()),
        );
        context.insert("IS_INCREMENTAL_HANDOFF_SUPPORTED".into(), json!(true));
        json!({
            "type": "index_kafka",
            "id": format!("{}_{}", self.base_sequence_name, random_suffix()),
            "supervisorId": spec.id,
            "groupId": task_group_id(&spec.data_source),
            "resource": {"availabilityGroup": self.base_sequence_name, "requiredCapacity": 1},
            "dataSource": spec.data_source,
            "dataSchema": spec.data_schema,
            "tuningConfig": spec.tuning_config,
            "ioConfig": io,
            "context": context,
        })
    }
}

/// Why an `index_kafka` task's `ioConfig` (or an offset map) cannot be read; the message names
/// the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TaskIoError(pub String);

impl From<&str> for TaskIoError {
    fn from(message: &str) -> Self {
        TaskIoError(message.to_string())
    }
}

impl From<String> for TaskIoError {
    fn from(message: String) -> Self {
        TaskIoError(message)
    }
}

/// An `index_kafka` task's `ioConfig` and `checkpoints`, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaTaskIo {
    pub topic: String,
    pub task_group_id: TaskGroupId,
    pub base_sequence_name: String,
    pub start: Offsets,
    pub end: Offsets,
    pub consumer_properties: BTreeMap<String, String>,
    pub poll_timeout_ms: u64,
    pub minimum_message_time: Option<DateTime<Utc>>,
    pub maximum_message_time: Option<DateTime<Utc>>,
    /// Sequence id → start offsets; at least sequence 0 (the task's start).
    pub checkpoints: BTreeMap<u32, Offsets>,
    /// The supervisor that asks for checkpoints (the task's `supervisorId`, else its data source).
    pub supervisor_id: String,
    /// `tuningConfig.intermediateHandoffPeriod`: how long a sequence reads before the task asks
    /// for a checkpoint; `None` for never (Druid's default, `P2147483647D`, is as good as never).
    pub intermediate_handoff_period: Option<std::time::Duration>,
    /// `tuningConfig.brokerOutageTimeout` (a Drover setting): how long the task waits out brokers
    /// it cannot reach before it fails.
    pub broker_outage_timeout: std::time::Duration,
}

/// How long a task reads on through an outage of every broker before it fails: long enough for
/// a broker restart or a rolling upgrade, short enough that an operator sees a dead cluster.
pub const DEFAULT_BROKER_OUTAGE_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(10 * 60);

/// A start or end position: its stream and offsets, `name` naming it in errors.
fn read_position(
    name: &str,
    v: Option<wire::SequenceNumbers>,
) -> Result<(String, Offsets), TaskIoError> {
    let v = v.ok_or_else(|| format!("[ioConfig.{name}] is required"))?;
    let stream = v
        .stream
        .or(v.topic)
        .ok_or_else(|| format!("[ioConfig.{name}.stream] is required"))?;
    let map = v
        .partition_sequence_number_map
        .or(v.partition_offset_map)
        .ok_or_else(|| format!("[ioConfig.{name}.partitionSequenceNumberMap] is required"))?;
    Ok((stream, parse_offset_map(&format!("ioConfig.{name}"), &map)?))
}

/// `{"0": 12, "1": 40}` → offsets, naming `what` in errors.
pub fn parse_offset_map(what: &str, map: &Map<String, Value>) -> Result<Offsets, TaskIoError> {
    let mut out = Offsets::new();
    for (p, o) in map {
        let partition: i32 = p
            .parse()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| format!("[{what}]: partition [{p}] is not a partition number"))?;
        let offset = o.as_i64().filter(|o| *o >= 0).ok_or_else(|| {
            format!("[{what}]: offset of partition [{p}] must be a non-negative number")
        })?;
        out.insert(partition, offset);
    }
    Ok(out)
}

impl KafkaTaskIo {
    pub fn from_task(task: &Value) -> Result<KafkaTaskIo, TaskIoError> {
        let wire: wire::Task = serde_path_to_error::deserialize(task)
            .map_err(|e| format!("[{}]: {}", e.path(), e.inner()))?;
        let io = wire.io_config.ok_or("[ioConfig] is required")?;
        let (topic, start) = read_position(
            "startSequenceNumbers",
            io.start_sequence_numbers.or(io.start_partitions),
        )?;
        let (end_topic, end) = read_position(
            "endSequenceNumbers",
            io.end_sequence_numbers.or(io.end_partitions),
        )?;
        if end_topic != topic {
            return Err(format!(
                "[ioConfig]: start offsets are for topic [{topic}], end offsets for [{end_topic}]"
            )
            .into());
        }
        if start.keys().ne(end.keys()) {
            return Err("[ioConfig]: start and end offsets must name the same partitions".into());
        }
        if start.is_empty() {
            return Err("[ioConfig.startSequenceNumbers]: no partitions to read".into());
        }
        let base_sequence_name = io
            .base_sequence_name
            .ok_or("[ioConfig.baseSequenceName] is required")?;
        let consumer_properties = io
            .consumer_properties
            .ok_or("[ioConfig.consumerProperties] is required")?
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        let mut checkpoints = BTreeMap::new();
        if let Some(Value::String(text)) = wire.context.and_then(|c| c.checkpoints) {
            let parsed: Map<String, Value> = serde_json::from_str(&text)
                .map_err(|e| format!("[context.checkpoints] is not a JSON object: {e}"))?;
            for (seq, offsets) in parsed {
                let id: u32 = seq
                    .parse()
                    .map_err(|_| format!("[context.checkpoints]: [{seq}] is not a sequence id"))?;
                let map = offsets
                    .as_object()
                    .ok_or("[context.checkpoints]: each checkpoint must be an object")?;
                checkpoints.insert(id, parse_offset_map("context.checkpoints", map)?);
            }
        }
        if checkpoints.is_empty() {
            checkpoints.insert(0, start.clone());
        }
        let supervisor_id = wire
            .supervisor_id
            .or(wire.data_source)
            .or_else(|| {
                task.pointer("/dataSchema/dataSource")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let tuning = wire.tuning_config;
        let intermediate_handoff_period = tuning
            .as_ref()
            .and_then(|t| t.intermediate_handoff_period)
            .map(|p| p.0);
        let broker_outage_timeout = tuning
            .as_ref()
            .and_then(|t| t.broker_outage_timeout)
            .map_or(DEFAULT_BROKER_OUTAGE_TIMEOUT, |p| p.0);
        Ok(KafkaTaskIo {
            topic,
            task_group_id: TaskGroupId(io.task_group_id.unwrap_or(0)),
            base_sequence_name,
            start,
            end,
            consumer_properties,
            poll_timeout_ms: io.poll_timeout.unwrap_or(100),
            minimum_message_time: io.minimum_message_time.map(|t| t.0),
            maximum_message_time: io.maximum_message_time.map(|t| t.0),
            checkpoints,
            supervisor_id,
            intermediate_handoff_period,
            broker_outage_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_core::time::parse_iso;

    fn spec() -> KafkaSupervisorSpec {
        KafkaSupervisorSpec::from_value(&json!({"type":"kafka","spec":{
            "dataSchema":{"dataSource":"ds","timestampSpec":{"column":"ts"},
                "dimensionsSpec":{"dimensions":["a"]},
                "granularitySpec":{"segmentGranularity":"HOUR","queryGranularity":"NONE","rollup":false}},
            "ioConfig":{"topic":"t","inputFormat":{"type":"json"},
                "consumerProperties":{"bootstrap.servers":"localhost:9092"}},
            "tuningConfig":{"type":"kafka"}}}))
        .unwrap()
    }

    #[test]
    fn sequence_names_depend_on_config_and_offsets_only() {
        let s = spec();
        let a: Offsets = [(0, 5), (2, 7)].into();
        let name = base_sequence_name(&s, &a, None, None);
        assert!(name.starts_with("index_kafka_ds_"), "{name}");
        assert_eq!(name.len(), "index_kafka_ds_".len() + 15);
        assert_eq!(name, base_sequence_name(&s.clone(), &a, None, None));
        assert_ne!(
            name,
            base_sequence_name(&s, &[(0, 6), (2, 7)].into(), None, None)
        );
        let mut other = s.clone();
        other.data_schema["granularitySpec"]["segmentGranularity"] = json!("DAY");
        assert_ne!(name, base_sequence_name(&other, &a, None, None));
    }

    #[test]
    fn task_json_reads_back() {
        let s = spec();
        let start: Offsets = [(0, 5), (2, 7)].into();
        let checkpoints = [(0, start.clone())].into();
        let base = base_sequence_name(&s, &start, None, None);
        let t = NewTask {
            spec: &s,
            group: TaskGroupId(1),
            base_sequence_name: &base,
            start: &start,
            checkpoints: &checkpoints,
            minimum_message_time: None,
            maximum_message_time: Some(parse_iso("2024-01-01T00:00:00Z").unwrap()),
        }
        .to_json();
        assert_eq!(t["groupId"], "index_kafka_ds");
        assert_eq!(t["resource"]["availabilityGroup"], base.as_str());
        assert!(t["id"].as_str().unwrap().starts_with(&format!("{base}_")));
        let io = KafkaTaskIo::from_task(&t).unwrap();
        assert_eq!(io.start, start);
        assert_eq!(io.end, [(0, END_OF_STREAM), (2, END_OF_STREAM)].into());
        assert_eq!(io.task_group_id, TaskGroupId(1));
        assert_eq!(io.checkpoints, checkpoints);
        assert_eq!(io.base_sequence_name, base);
        assert!(io.maximum_message_time.is_some());
    }
}
