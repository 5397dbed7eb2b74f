//! What can go wrong in one run of a Kafka supervisor, or in a reset. A run's error ends up in
//! the status report's `recentErrors`; a reset's is answered to the caller, mapped to HTTP in
//! `http/supervisors.rs`.

use drover_kafka::client::StreamError;
use drover_metadata::MetadataError;

use crate::queue::QueueError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Kafka did not answer, or answered with an error.
    #[error("Kafka: {0}")]
    Stream(#[from] StreamError),
    /// A blocking Kafka call's thread died.
    #[error("a Kafka call did not finish: {0}")]
    Blocking(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Storage(#[from] MetadataError),
    /// The queue refused a task the supervisor created.
    #[error("cannot submit task [{task}]: {error}")]
    Submit { task: String, error: QueueError },
    /// The task JSON the supervisor built is not a valid task (a bug, reported rather than
    /// panicking).
    #[error("cannot build a task: {0}")]
    BuildTask(String),
    /// `resetOffsets` for another stream than the one this supervisor reads.
    #[error("the offsets are for stream [{given}], this supervisor reads [{reads}]")]
    WrongStream { given: String, reads: String },
}
