//! Why a task fails: the one error type of the peon's task runtimes. Its message becomes the
//! task's `errorMsg` (and the report's), so it is written for the operator who reads it there.

/// `TaskFailure` with a formatted reason: `Err(fail!("cannot read {path}"))`.
macro_rules! fail {
    ($($reason:tt)*) => {
        $crate::failure::TaskFailure(format!($($reason)*))
    };
}

/// The reason a task fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TaskFailure(pub String);

impl From<String> for TaskFailure {
    fn from(reason: String) -> Self {
        TaskFailure(reason)
    }
}

impl From<&str> for TaskFailure {
    fn from(reason: &str) -> Self {
        TaskFailure(reason.to_string())
    }
}

impl From<drover_ingest::record::RowError> for TaskFailure {
    fn from(e: drover_ingest::record::RowError) -> Self {
        TaskFailure(e.0)
    }
}

impl From<drover_ingest::input::InputError> for TaskFailure {
    fn from(e: drover_ingest::input::InputError) -> Self {
        TaskFailure(e.to_string())
    }
}

impl From<drover_ingest::expr::ExprError> for TaskFailure {
    fn from(e: drover_ingest::expr::ExprError) -> Self {
        TaskFailure(e.0)
    }
}

impl From<drover_kafka::task::TaskIoError> for TaskFailure {
    fn from(e: drover_kafka::task::TaskIoError) -> Self {
        TaskFailure(e.0)
    }
}
