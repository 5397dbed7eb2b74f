//! Druid-compatible data types shared by every Drover process.
//!
//! Field names follow Druid's JSON exactly (see docs/api.md), so
//! that Druid's own specs, clients and ZooKeeper payloads work unchanged.

pub mod granularity;
pub mod ids;
pub mod interval;
pub mod lock;
pub mod period;
pub mod resource;
pub mod segment;
pub mod status;
pub mod stream_offsets;
pub mod task_logs;
pub mod time;
pub mod wire;
pub mod worker;
pub mod worker_sync;

pub use ids::{DataSource, IdError, SupervisorId, TaskGroupId, TaskId, WorkerHost};
pub use resource::TaskResource;
pub use status::{RunnerTaskState, TaskLocation, TaskState, TaskStatus, TaskStatusPlus};
pub use worker::{TaskAnnouncement, Worker, DEFAULT_WORKER_CATEGORY, DISABLED_WORKER_VERSION};
