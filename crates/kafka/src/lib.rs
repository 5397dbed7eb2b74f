//! Kafka ingestion (see docs/architecture.md): supervisor specs, the `index_kafka` task JSON, the pure
//! decisions of a supervisor's run loop, and the librdkafka client both the supervisor and the
//! tasks use.

pub mod chat;
#[cfg(feature = "client")]
pub mod client;
pub mod spec;
pub mod task;

pub use spec::{KafkaSupervisorSpec, SpecError};
pub use task::{KafkaTaskIo, Offsets};
