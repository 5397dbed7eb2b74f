//! Which lock a task writes its segments under, from its context, as Druid's
//! `AbstractBatchIndexTask.determineLockType` and `TaskLocks.determineLockTypeForAppend` decide:
//! `useConcurrentLocks: true` makes appending tasks (`index_kafka`, `index` with
//! `appendToExisting`) take APPEND locks and replacing ones (`compact`, an overwriting `index`)
//! REPLACE locks, so that both can run over the same time chunks; otherwise an explicit
//! `taskLockType` is used, and EXCLUSIVE by default. A `kill` always locks EXCLUSIVE: nothing may
//! write where it deletes.

use drover_core::lock::LockType;
use serde_json::{Map, Value};

use crate::task::{invalid, TaskKind, TaskSpecError};

pub(crate) fn write_lock_type(
    kind: &TaskKind,
    context: Option<&Map<String, Value>>,
) -> Result<LockType, TaskSpecError> {
    let appends = match kind {
        TaskKind::Kill(_) | TaskKind::Noop(_) => return Ok(LockType::Exclusive),
        TaskKind::Kafka(_) => true,
        TaskKind::Index(spec) => spec.append_to_existing,
        TaskKind::Compact(_) => false,
    };
    let get = |key: &str| context.and_then(|c| c.get(key)).filter(|v| !v.is_null());
    let concurrent = match get("useConcurrentLocks") {
        None => false,
        Some(Value::Bool(b)) => *b,
        // Context values often arrive as strings (druidapi, the console's JSON editor).
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(other) => {
            return Err(invalid(
                "context.useConcurrentLocks",
                format!("must be true or false, got {other}"),
            ))
        }
    };
    if concurrent {
        return Ok(if appends {
            LockType::Append
        } else {
            LockType::Replace
        });
    }
    let Some(explicit) = get("taskLockType") else {
        return Ok(LockType::Exclusive);
    };
    let lock_type: LockType = serde_json::from_value(explicit.clone()).map_err(|_| {
        invalid(
            "context.taskLockType",
            format!("must be one of EXCLUSIVE, SHARED, APPEND, REPLACE, got {explicit}"),
        )
    })?;
    match lock_type {
        LockType::Append if !appends => Err(invalid(
            "context.taskLockType",
            "APPEND is for tasks that append (index_kafka, or appendToExisting); this task replaces",
        )),
        LockType::Replace if appends => Err(invalid(
            "context.taskLockType",
            "REPLACE is for tasks that replace what is there; this task appends",
        )),
        LockType::Shared if matches!(kind, TaskKind::Kafka(_)) => Err(invalid(
            "context.taskLockType",
            "a SHARED lock cannot publish; a streaming task needs EXCLUSIVE or APPEND",
        )),
        t => Ok(t),
    }
}
