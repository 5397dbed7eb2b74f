//! A task as users post it (see docs/architecture.md): Druid's task JSON, parsed once into typed
//! specs that travel with the task from `POST /task` through the queue and the runner to the
//! peon, so no later step reads the JSON again.

pub mod compact;
mod lock_type;
pub mod task;

pub use compact::CompactSpec;
pub use task::{
    IsReadyResult, KafkaTaskSpec, KillSpec, NoopSpec, Task, TaskKind, TaskSpecError,
    KILL_DEFAULT_BATCH_SIZE,
};
