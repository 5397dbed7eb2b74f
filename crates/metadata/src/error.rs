#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata store URL [{0}] is not supported; use sqlite://, postgres:// or mysql://")]
    UnsupportedUrl(String),
    #[error("task [{0}] already exists")]
    TaskExists(String),
    #[error("metadata store row is corrupt: {0}")]
    Corrupt(String),
    #[error("this overlord's leadership (epoch {mine}) has been taken over (epoch {current}); write refused")]
    Fenced { mine: i64, current: i64 },
    #[error("metadata store error: {0}")]
    Sql(#[from] sqlx::Error),
    /// A write with a deadline did not finish in time. With `maybe_stored` false it was rolled
    /// back (nothing is stored); with true, the commit was sent but its answer did not come in
    /// time, so the write may or may not have happened.
    #[error("the metadata store did not answer in time{}", if *.maybe_stored { " (the commit was sent: the write may have happened)" } else { "; nothing was stored" })]
    Deadline { maybe_stored: bool },
}

impl MetadataError {
    /// Whether the store is out of reach (down, frozen, restarting, out of connections) rather
    /// than refusing the request: worth a 503 and a retry, not a 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            MetadataError::Deadline { .. } => true,
            MetadataError::Sql(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // SQLSTATE classes 08 (connection exception) and 57P (operator intervention:
            // shutting down, starting up).
            MetadataError::Sql(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        MetadataError::Corrupt(what.to_string())
    }
}
