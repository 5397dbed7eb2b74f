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
}

impl MetadataError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        MetadataError::Corrupt(what.to_string())
    }
}
