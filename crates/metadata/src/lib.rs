//! Druid's metadata tables over SQLite (a file, the default), PostgreSQL or MySQL/MariaDB, chosen
//! by URL. Table and column names are Druid's, so existing tooling that reads them keeps working.

mod config_storage;
mod error;
mod leadership;
mod lock_storage;
mod pending_segment_storage;
mod rule_storage;
mod schema;
mod segment_marking;
mod segment_storage;
mod sql;
mod supervisor_storage;
mod task_storage;
mod upgrade_storage;

pub use config_storage::{AuditInfo, AuditRecord};
pub use error::MetadataError;
pub use pending_segment_storage::{allocation_key, PendingSegment};
pub use rule_storage::DEFAULT_RULES_KEY;
pub use segment_marking::{MarkAs, SegmentFilter, Usage};
pub use segment_storage::{OffsetCommit, PublishOutcome};
pub use sql::{redact, Backend, MetadataStore};
pub use supervisor_storage::SupervisorVersion;
pub use task_storage::{CompleteTaskFilter, TaskInfo, TaskRow};
pub use upgrade_storage::AppendedUnderReplace;
