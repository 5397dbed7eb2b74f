//! Task specs, polymorphic on `type` as in Druid, parsed once when a task enters the system (at
//! `POST /task`, when a supervisor creates it, when the store or a middle manager hands it back)
//! into typed specs that travel with it. The JSON a user posts is kept too (with the fields Druid
//! fills in: `id`, `groupId`, `resource`, `dataSource`, `context`) as the task's payload, so
//! `GET /task/{id}` shows what Druid would show and unknown fields survive the round trip.

use std::sync::Arc;

use drover_core::ids::{validate_id, DataSource, IdError, TaskId};
use drover_core::interval::Interval;
use drover_core::lock::LockType;

use crate::compact::CompactSpec;
use drover_core::TaskResource;
use drover_ingest::IngestionSpec;
use drover_kafka::task::TaskIoError;
use drover_kafka::KafkaTaskIo;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Task types Druid has that Drover does not run yet: named so the error says so.
const NOT_YET_SUPPORTED: &[&str] = &["index_kinesis", "index_hadoop"];
/// The task types users submit; the parallel task's sub-task types are known too.
const SUPPORTED: &[&str] = &[
    "noop",
    "index",
    "index_parallel",
    "index_kafka",
    "kill",
    "compact",
];

/// The sub-tasks an `index_parallel` task runs (Druid's names): each reads part of the input
/// (or merges partial segments) for the supervisor task named by `supervisorTaskId`.
pub const SUB_TASK_TYPES: &[&str] = &[
    "single_phase_sub_task",
    "partial_dimension_cardinality",
    "partial_dimension_distribution",
    "partial_index_generate",
    "partial_range_index_generate",
    "partial_index_generic_merge",
];

fn known_types() -> String {
    SUPPORTED
        .iter()
        .chain(SUB_TASK_TYPES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// Task types whose payload is an ingestion spec under `spec`.
fn is_batch_ingestion(task_type: &str) -> bool {
    task_type == "index" || task_type == "index_parallel" || SUB_TASK_TYPES.contains(&task_type)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskSpecError {
    #[error("the request body is empty; expected a task JSON object")]
    EmptyBody,
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("a task must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("the task has no [type] field; known types: {}", known_types())]
    MissingType,
    #[error("unknown task type [{name}]; known types: {known}", name = .0, known = known_types())]
    UnknownType(String),
    #[error("task type [{0}] is not supported by this version of Drover yet")]
    UnsupportedType(String),
    /// A field that is missing, of the wrong type or out of range; `field` is its path.
    #[error("invalid field [{field}]: {message}")]
    InvalidField { field: String, message: String },
    #[error(transparent)]
    Id(#[from] IdError),
    /// The ingestion spec of an `index`, `index_parallel` or `index_kafka` task.
    #[error(transparent)]
    Ingestion(#[from] drover_ingest::SpecError),
    /// The `ioConfig` (offsets, consumer properties) of an `index_kafka` task.
    #[error(transparent)]
    KafkaIo(#[from] TaskIoError),
}

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> TaskSpecError {
    TaskSpecError::InvalidField {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum IsReadyResult {
    Yes,
    No,
    Exception,
}

/// Druid's `NoopTask`: sleeps `runTime` milliseconds and succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoopSpec {
    pub run_time_ms: u64,
    pub is_ready_time_ms: u64,
    pub is_ready_result: IsReadyResult,
}

/// Druid's default when `runTime` is absent. (Druid also uses it for an explicit `0`; Drover runs
/// an explicit `0` for no time at all, see docs/compatibility.md.)
pub const NOOP_DEFAULT_RUN_TIME_MS: u64 = 2500;

#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    Noop(NoopSpec),
    /// `index`, `index_parallel` and the parallel task's sub-tasks.
    Index(Arc<IngestionSpec>),
    /// `index_kafka`: reads its partitions between start and end offsets.
    Kafka(Arc<KafkaTaskSpec>),
    /// `kill`: deletes unused segments for good.
    Kill(KillSpec),
    /// `compact`: rewrites used segments as new ones.
    Compact(Arc<CompactSpec>),
}

impl TaskKind {
    /// The ingestion spec of a task that writes segments (`None` for a noop).
    pub fn ingestion(&self) -> Option<&IngestionSpec> {
        match self {
            TaskKind::Noop(_) | TaskKind::Kill(_) | TaskKind::Compact(_) => None,
            TaskKind::Index(spec) => Some(spec),
            TaskKind::Kafka(spec) => Some(&spec.schema),
        }
    }
}

/// Druid's `kill` task (`KillUnusedSegmentsTask`): deletes the unused segments of its data
/// source wholly inside `interval` (of `versions`, when given) from deep storage and from
/// `druid_segments`, `batch_size` at a time, at most `limit`. Used segments are never touched;
/// the legacy `markAsUnused` first marks the used ones in the interval unused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSpec {
    pub interval: Interval,
    pub versions: Option<Vec<String>>,
    pub batch_size: u64,
    pub limit: Option<u64>,
    pub mark_as_unused: bool,
    /// Only segments marked unused at or before this time (`maxUsedStatusLastUpdatedTime`).
    pub max_used_status_last_updated_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// Druid's default `batchSize`.
pub const KILL_DEFAULT_BATCH_SIZE: u64 = 100;

/// What an `index_kafka` task reads and how it turns records into rows.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaTaskSpec {
    /// `dataSchema` and `tuningConfig` (the records come from the stream, not an input source).
    pub schema: IngestionSpec,
    /// `ioConfig` and the `checkpoints` context: topic, offsets, consumer properties.
    pub io: KafkaTaskIo,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: TaskId,
    pub task_type: String,
    pub group_id: String,
    pub resource: TaskResource,
    pub data_source: DataSource,
    pub kind: TaskKind,
    /// The lock it writes segments under (context `useConcurrentLocks`, `taskLockType`).
    pub write_lock: LockType,
    /// A parallel task's sub-task: the `index_parallel` task it works for (same group).
    pub supervisor_task_id: Option<TaskId>,
    payload: Value,
}

impl Task {
    /// Parses a submitted task; every error names the field and the problem.
    pub fn from_json_bytes(body: &[u8]) -> Result<Task, TaskSpecError> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(TaskSpecError::EmptyBody);
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| TaskSpecError::InvalidJson(e.to_string()))?;
        Task::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Task, TaskSpecError> {
        let mut obj = match value {
            Value::Object(m) => m,
            other => return Err(TaskSpecError::NotAnObject(json_kind(&other))),
        };
        let task_type = match obj.get("type") {
            None | Some(Value::Null) => return Err(TaskSpecError::MissingType),
            Some(Value::String(t)) => t.clone(),
            Some(_) => return Err(invalid("type", "must be a string")),
        };
        if NOT_YET_SUPPORTED.contains(&task_type.as_str()) {
            return Err(TaskSpecError::UnsupportedType(task_type));
        }
        if !SUPPORTED.contains(&task_type.as_str()) && !SUB_TASK_TYPES.contains(&task_type.as_str())
        {
            return Err(TaskSpecError::UnknownType(task_type));
        }

        // Druid takes an ingestion task's data source from its schema.
        let schema_data_source = match task_type.as_str() {
            t if is_batch_ingestion(t) => obj
                .get("spec")
                .and_then(|s| s.get("dataSchema"))
                .and_then(|d| d.get("dataSource"))
                .cloned(),
            "index_kafka" => obj
                .get("dataSchema")
                .and_then(|d| d.get("dataSource"))
                .cloned(),
            _ => None,
        };
        let data_source = match schema_data_source.as_ref().or(obj.get("dataSource")) {
            None | Some(Value::Null) if task_type == "kill" || task_type == "compact" => {
                return Err(invalid("dataSource", "is required for this task type"))
            }
            None | Some(Value::Null) if schema_data_source.is_none() && task_type != "noop" => {
                return Err(invalid(
                    "spec.dataSchema.dataSource",
                    "is required for an ingestion task",
                ))
            }
            None | Some(Value::Null) => DataSource::new("none")?,
            Some(Value::String(ds)) => DataSource::new(ds.clone())?,
            Some(_) => return Err(invalid("dataSource", "must be a string")),
        };

        let id = match obj.get("id") {
            None | Some(Value::Null) => TaskId::generate(&task_type, &data_source),
            Some(Value::String(id)) => TaskId::new(id.clone())?,
            Some(_) => return Err(invalid("id", "must be a string")),
        };
        let group_id = match obj.get("groupId") {
            None | Some(Value::Null) => id.to_string(),
            Some(Value::String(g)) => {
                validate_id("groupId", g)?;
                g.clone()
            }
            Some(_) => return Err(invalid("groupId", "must be a string")),
        };
        let resource = match obj.get("resource") {
            None | Some(Value::Null) => TaskResource::for_task(&id),
            Some(r) => {
                let r: TaskResource = serde_json::from_value(r.clone())
                    .map_err(|e| invalid("resource", e.to_string()))?;
                if r.required_capacity < 1 {
                    return Err(invalid("resource.requiredCapacity", "must be at least 1"));
                }
                r
            }
        };
        match obj.get("context") {
            None | Some(Value::Null) => {
                obj.insert("context".into(), Value::Object(Map::new()));
            }
            Some(Value::Object(_)) => {}
            Some(_) => return Err(invalid("context", "must be a JSON object")),
        }

        let noop = match task_type.as_str() {
            "noop" => Some(parse_noop(&obj)?),
            _ => None,
        };
        let kill = match task_type.as_str() {
            "kill" => Some(parse_kill(&obj)?),
            _ => None,
        };
        let compact = match task_type.as_str() {
            "compact" => Some(CompactSpec::parse(&obj, &data_source)?),
            _ => None,
        };

        obj.insert("id".into(), Value::String(id.to_string()));
        obj.insert("groupId".into(), Value::String(group_id.clone()));
        obj.insert("dataSource".into(), Value::String(data_source.to_string()));
        obj.insert(
            "resource".into(),
            serde_json::to_value(&resource).expect("plain struct"),
        );
        let payload = Value::Object(obj);
        let kind = match (task_type.as_str(), noop) {
            (_, Some(noop)) => TaskKind::Noop(noop),
            ("kill", _) => TaskKind::Kill(kill.expect("parsed above for kill")),
            ("compact", _) => {
                TaskKind::Compact(Arc::new(compact.expect("parsed above for compact")))
            }
            ("partial_index_generic_merge", _) => {
                // Its rows come from `partitionLocations`, not from an input source.
                let mut spec = payload.clone();
                if let Some(io) = spec
                    .pointer_mut("/spec/ioConfig")
                    .and_then(Value::as_object_mut)
                {
                    io.entry("inputSource")
                        .or_insert_with(|| serde_json::json!({"type": "inline", "data": ""}));
                    io.entry("inputFormat")
                        .or_insert_with(|| serde_json::json!({"type": "json"}));
                }
                TaskKind::Index(Arc::new(IngestionSpec::from_task(&spec)?))
            }
            (t, _) if is_batch_ingestion(t) => {
                TaskKind::Index(Arc::new(IngestionSpec::from_task(&payload)?))
            }
            ("index_kafka", _) => TaskKind::Kafka(Arc::new(KafkaTaskSpec {
                schema: IngestionSpec::from_stream_task(&payload)?,
                io: KafkaTaskIo::from_task(&payload)?,
            })),
            _ => unreachable!("checked against SUPPORTED and SUB_TASK_TYPES above"),
        };
        let supervisor_task_id = match (
            SUB_TASK_TYPES.contains(&task_type.as_str()),
            payload.get("supervisorTaskId"),
        ) {
            (true, Some(Value::String(sup))) => Some(TaskId::new(sup.clone())?),
            (true, _) => {
                return Err(invalid(
                    "supervisorTaskId",
                    "is required for a sub-task: the index_parallel task it works for",
                ))
            }
            (false, _) => None,
        };
        let write_lock = crate::lock_type::write_lock_type(
            &kind,
            payload.get("context").and_then(Value::as_object),
        )?;
        Ok(Task {
            id,
            task_type,
            group_id,
            resource,
            data_source,
            kind,
            write_lock,
            supervisor_task_id,
            payload,
        })
    }

    /// The task JSON as stored in `druid_tasks.payload` and sent to middle managers.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    pub fn context(&self) -> Option<&Map<String, Value>> {
        self.payload.get("context").and_then(Value::as_object)
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.payload).expect("a JSON value always serializes")
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn non_negative_ms(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<u64>, TaskSpecError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v >= 0 => Ok(Some(v as u64)),
            _ => Err(invalid(
                field,
                format!("must be a non-negative whole number of milliseconds, got {n}"),
            )),
        },
        Some(_) => Err(invalid(field, "must be a number of milliseconds")),
    }
}

/// The kill task's fields, read through serde: a wrong type names the field.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KillWire {
    interval: Option<String>,
    versions: Option<Vec<String>>,
    batch_size: Option<u64>,
    limit: Option<u64>,
    mark_as_unused: Option<drover_core::wire::Flag>,
    max_used_status_last_updated_time: Option<String>,
}

fn parse_kill(obj: &Map<String, Value>) -> Result<KillSpec, TaskSpecError> {
    let value = Value::Object(obj.clone());
    let wire: KillWire = serde_path_to_error::deserialize(&value)
        .map_err(|e| invalid(e.path().to_string(), e.inner().to_string()))?;
    let text = wire
        .interval
        .ok_or_else(|| invalid("interval", "is required for a kill task"))?;
    let interval = Interval::parse(&text)
        .map_err(|e| invalid("interval", format!("[{text}] is not an interval: {e}")))?;
    if wire.versions.as_ref().is_some_and(Vec::is_empty) {
        return Err(invalid("versions", "must not be empty when given"));
    }
    let batch_size = wire.batch_size.unwrap_or(KILL_DEFAULT_BATCH_SIZE);
    if batch_size == 0 {
        return Err(invalid("batchSize", "must be at least 1"));
    }
    if wire.limit == Some(0) {
        return Err(invalid("limit", "must be at least 1 when given"));
    }
    let max_used_status_last_updated_time = match wire.max_used_status_last_updated_time {
        None => None,
        Some(text) => Some(drover_core::time::parse_iso(&text).ok_or_else(|| {
            invalid(
                "maxUsedStatusLastUpdatedTime",
                format!("[{text}] is not an ISO-8601 instant"),
            )
        })?),
    };
    Ok(KillSpec {
        interval,
        versions: wire.versions,
        batch_size,
        limit: wire.limit,
        mark_as_unused: drover_core::wire::flag(wire.mark_as_unused, false),
        max_used_status_last_updated_time,
    })
}

fn parse_noop(obj: &Map<String, Value>) -> Result<NoopSpec, TaskSpecError> {
    let run_time_ms = non_negative_ms(obj, "runTime")?.unwrap_or(NOOP_DEFAULT_RUN_TIME_MS);
    let is_ready_time_ms = non_negative_ms(obj, "isReadyTime")?.unwrap_or(0);
    let is_ready_result = match obj.get("isReadyResult") {
        None | Some(Value::Null) => IsReadyResult::Yes,
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            invalid(
                "isReadyResult",
                format!("must be one of YES, NO, EXCEPTION, got {v}"),
            )
        })?,
    };
    Ok(NoopSpec {
        run_time_ms,
        is_ready_time_ms,
        is_ready_result,
    })
}

impl Serialize for Task {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.payload.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Task::from_value(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Task, TaskSpecError> {
        Task::from_json_bytes(s.as_bytes())
    }

    /// The field an `InvalidField` error names; panics on anything else.
    fn invalid_field(r: Result<Task, TaskSpecError>) -> String {
        match r {
            Err(TaskSpecError::InvalidField { field, .. }) => field,
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn parses_druid_noop_example() {
        let t = parse(r#"{"type":"noop","id":"noop_test_1","dataSource":"none","runTime":2500,"isReadyTime":0,"isReadyResult":"YES","context":{}}"#).unwrap();
        assert_eq!(t.id.as_str(), "noop_test_1");
        assert_eq!(t.group_id, "noop_test_1");
        assert_eq!(
            t.resource,
            TaskResource {
                availability_group: "noop_test_1".into(),
                required_capacity: 1
            }
        );
        assert_eq!(
            t.kind,
            TaskKind::Noop(NoopSpec {
                run_time_ms: 2500,
                is_ready_time_ms: 0,
                is_ready_result: IsReadyResult::Yes
            })
        );
        assert_eq!(t.payload()["resource"]["requiredCapacity"], 1);
    }

    #[test]
    fn fills_in_defaults_like_druid() {
        let t = parse(r#"{"type":"noop"}"#).unwrap();
        assert!(t.id.as_str().starts_with("noop_none_"));
        assert_eq!(t.data_source, "none");
        let TaskKind::Noop(n) = &t.kind else {
            panic!("a noop")
        };
        assert_eq!(n.run_time_ms, NOOP_DEFAULT_RUN_TIME_MS);
        assert_eq!(t.payload()["context"], serde_json::json!({}));
        let zero = parse(r#"{"type":"noop","runTime":0}"#).unwrap();
        let TaskKind::Noop(n) = &zero.kind else {
            panic!("a noop")
        };
        assert_eq!(n.run_time_ms, 0);
    }

    #[test]
    fn round_trips_through_json() {
        let t = parse(r#"{"type":"noop","id":"a","runTime":5,"extra":{"kept":true}}"#).unwrap();
        let back: Task = serde_json::from_slice(&t.to_json_bytes()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.payload()["extra"]["kept"], true);
    }

    #[test]
    fn bad_input_names_the_problem() {
        assert_eq!(parse(""), Err(TaskSpecError::EmptyBody));
        assert!(matches!(parse("{"), Err(TaskSpecError::InvalidJson(_))));
        assert_eq!(parse("[]"), Err(TaskSpecError::NotAnObject("an array")));
        assert_eq!(parse("{}"), Err(TaskSpecError::MissingType));
        assert_eq!(
            parse(r#"{"type":"bogus"}"#),
            Err(TaskSpecError::UnknownType("bogus".into()))
        );
        assert!(parse(r#"{"type":"bogus"}"#)
            .unwrap_err()
            .to_string()
            .contains("[bogus]"));
        assert_eq!(
            parse(r#"{"type":"index_kinesis"}"#),
            Err(TaskSpecError::UnsupportedType("index_kinesis".into()))
        );
        assert_eq!(
            invalid_field(parse(r#"{"type":"index","spec":{}}"#)),
            "spec.dataSchema.dataSource"
        );
        assert!(matches!(
            parse(r#"{"type":"noop","id":"a/b"}"#),
            Err(TaskSpecError::Id(IdError::Slash { .. }))
        ));
        assert!(matches!(
            parse(r#"{"type":"noop","id":".."}"#),
            Err(TaskSpecError::Id(_))
        ));
        assert_eq!(
            invalid_field(parse(r#"{"type":"noop","runTime":-1}"#)),
            "runTime"
        );
        assert_eq!(
            invalid_field(parse(r#"{"type":"noop","isReadyResult":"MAYBE"}"#)),
            "isReadyResult"
        );
        assert_eq!(
            invalid_field(parse(r#"{"type":"noop","context":[]}"#)),
            "context"
        );
        assert!(matches!(
            parse(r#"{"type":"noop","dataSource":"a/b"}"#),
            Err(TaskSpecError::Id(_))
        ));
    }

    #[test]
    fn ingestion_specs_are_parsed_with_the_task() {
        let t = parse(
            r#"{"type":"index_parallel","spec":{
                "dataSchema":{"dataSource":"wiki","timestampSpec":{"column":"ts"},
                    "granularitySpec":{"segmentGranularity":"hour","intervals":["2015-09-12/2015-09-13"]}},
                "ioConfig":{"type":"index_parallel","inputSource":{"type":"inline","data":"{}"},
                    "inputFormat":{"type":"json"}}}}"#,
        )
        .unwrap();
        let TaskKind::Index(spec) = &t.kind else {
            panic!("an ingestion task: {:?}", t.kind)
        };
        assert_eq!(spec.data_source, "wiki");
        assert_eq!(t.kind.ingestion(), Some(&**spec));
        // A bad spec is refused with the task, naming the field.
        let e = parse(
            r#"{"type":"index","spec":{"dataSchema":{"dataSource":"wiki","timestampSpec":{"column":"ts"}},
                "ioConfig":{"inputSource":{"type":"inline","data":"{}"},"inputFormat":{"type":"json"},
                "appendToExisting":"yes"}}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&e, TaskSpecError::Ingestion(s) if s.field == "spec.ioConfig.appendToExisting"),
            "{e}"
        );
    }

    #[test]
    fn concurrent_locks_make_appends_append_and_rewrites_replace() {
        let index = |append: bool, context: &str| {
            parse(&format!(
                r#"{{"type":"index","context":{context},"spec":{{
                "dataSchema":{{"dataSource":"wiki","timestampSpec":{{"column":"ts"}}}},
                "ioConfig":{{"inputSource":{{"type":"inline","data":"{{}}"}},"inputFormat":{{"type":"json"}},
                "appendToExisting":{append}}}}}}}"#
            ))
        };
        let lock = |r: Result<Task, TaskSpecError>| r.unwrap().write_lock;
        assert_eq!(lock(index(false, "{}")), LockType::Exclusive);
        assert_eq!(
            lock(index(true, r#"{"useConcurrentLocks":true}"#)),
            LockType::Append
        );
        assert_eq!(
            lock(index(false, r#"{"useConcurrentLocks":"true"}"#)),
            LockType::Replace
        );
        assert_eq!(
            lock(index(false, r#"{"taskLockType":"SHARED"}"#)),
            LockType::Shared
        );
        let compact = parse(
            r#"{"type":"compact","dataSource":"wiki","interval":"2024-01-01/2024-01-02",
                "context":{"useConcurrentLocks":true}}"#,
        );
        assert_eq!(lock(compact), LockType::Replace);
        let kill = parse(
            r#"{"type":"kill","dataSource":"wiki","interval":"2024-01-01/2024-01-02",
                "context":{"useConcurrentLocks":true}}"#,
        );
        assert_eq!(lock(kill), LockType::Exclusive, "a kill never shares");
        assert_eq!(
            invalid_field(index(false, r#"{"useConcurrentLocks":1}"#)),
            "context.useConcurrentLocks"
        );
        assert_eq!(
            invalid_field(index(false, r#"{"taskLockType":"APPEND"}"#)),
            "context.taskLockType"
        );
        assert_eq!(
            invalid_field(index(true, r#"{"taskLockType":"BIG"}"#)),
            "context.taskLockType"
        );
    }

    #[test]
    fn a_supervisors_kafka_task_carries_its_offsets() {
        use drover_kafka::task::{base_sequence_name, NewTask};
        let supervisor = drover_kafka::KafkaSupervisorSpec::from_value(&serde_json::json!({
            "type":"kafka","spec":{
            "dataSchema":{"dataSource":"ds","timestampSpec":{"column":"ts"},
                "dimensionsSpec":{"dimensions":["a"]},
                "granularitySpec":{"segmentGranularity":"HOUR","queryGranularity":"NONE","rollup":false}},
            "ioConfig":{"topic":"t","inputFormat":{"type":"json"},
                "consumerProperties":{"bootstrap.servers":"localhost:9092"}},
            "tuningConfig":{"type":"kafka"}}}))
        .unwrap();
        let start: drover_kafka::Offsets = [(0, 5), (2, 7)].into();
        let checkpoints = [(0, start.clone())].into();
        let base = base_sequence_name(&supervisor, &start, None, None);
        let json = NewTask {
            spec: &supervisor,
            group: drover_core::TaskGroupId(1),
            base_sequence_name: &base,
            start: &start,
            checkpoints: &checkpoints,
            minimum_message_time: None,
            maximum_message_time: None,
        }
        .to_json();
        let task = Task::from_value(json).expect("the queue accepts what a supervisor makes");
        let TaskKind::Kafka(spec) = &task.kind else {
            panic!("a Kafka task: {:?}", task.kind)
        };
        assert_eq!(spec.io.start, start);
        assert_eq!(spec.io.task_group_id, drover_core::TaskGroupId(1));
        assert_eq!(spec.schema.data_source, "ds");
        // Offsets that do not match are refused with the task.
        let mut bad = task.payload().clone();
        bad["ioConfig"]["endSequenceNumbers"]["partitionSequenceNumberMap"] =
            serde_json::json!({"0": 9});
        assert!(matches!(
            Task::from_value(bad),
            Err(TaskSpecError::KafkaIo(_))
        ));
    }

    #[test]
    fn sub_tasks_name_their_supervisor() {
        let sub = r#"{"type":"single_phase_sub_task","groupId":"index_parallel_w_1",
            "supervisorTaskId":"index_parallel_w_1","spec":{
            "dataSchema":{"dataSource":"w","timestampSpec":{"column":"t"}},
            "ioConfig":{"type":"index_parallel","inputSource":{"type":"inline","data":"{}"},
                "inputFormat":{"type":"json"}}}}"#;
        let task = parse(sub).unwrap();
        assert_eq!(
            task.supervisor_task_id.as_ref().map(|s| s.as_str()),
            Some("index_parallel_w_1")
        );
        assert_eq!(task.data_source.as_str(), "w");
        let orphan = sub.replace(r#""supervisorTaskId":"index_parallel_w_1","#, "");
        assert_eq!(invalid_field(parse(&orphan)), "supervisorTaskId");
        // A merge sub-task reads partitionLocations, not an input source.
        let merge = r#"{"type":"partial_index_generic_merge","supervisorTaskId":"s","spec":{
            "dataSchema":{"dataSource":"w","timestampSpec":{"column":"__time","format":"millis"}},
            "ioConfig":{"type":"partial_index_generic_merge"}},"partitionLocations":[]}"#;
        assert!(parse(merge).unwrap().kind.ingestion().is_some());
        // An index task is nobody's sub-task, whatever it says.
        let index = sub.replace("single_phase_sub_task", "index");
        assert!(parse(&index).unwrap().supervisor_task_id.is_none());
    }
}
