//! Where finished tasks' logs and reports are kept (Druid's `druid.indexer.logs.type`): a
//! directory (`file`: shared by the middle managers and the overlords, or on one machine), or an
//! object store such as S3 (`s3://bucket/prefix`), where every server reaches the same objects.
//! Objects are `<prefix>/<taskId>/log` and `<prefix>/<taskId>/report.json`, as Druid's S3 task
//! logs name them.

use std::io;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use drover_core::task_logs::FileTaskLogs;
use drover_core::TaskId;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use crate::object_storage;

#[derive(Clone)]
pub enum TaskLogStorage {
    File(FileTaskLogs),
    Object {
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
    },
}

/// A stored log, positioned at the offset asked.
pub enum StoredLog {
    File(std::fs::File),
    Bytes(bytes::Bytes),
}

impl StoredLog {
    pub fn into_body(self) -> Body {
        match self {
            StoredLog::File(f) => Body::from_stream(tokio_util::io::ReaderStream::new(
                tokio::fs::File::from_std(f),
            )),
            StoredLog::Bytes(b) => Body::from(b),
        }
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl TaskLogStorage {
    /// A directory, or an object store URL.
    pub fn from_location(location: &Path) -> io::Result<TaskLogStorage> {
        let text = location.to_string_lossy();
        if !object_storage::is_object_store(&text) {
            return Ok(TaskLogStorage::File(FileTaskLogs::new(location)));
        }
        let (store, prefix) = object_storage::open(&text).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("task_log_dir {e}"))
        })?;
        Ok(TaskLogStorage::Object { store, prefix })
    }

    /// Proves the storage writable, so a server that cannot keep task logs says so at start.
    pub async fn prepare(&self) -> io::Result<()> {
        match self {
            TaskLogStorage::File(f) => f.prepare(),
            TaskLogStorage::Object { store, prefix } => {
                let probe =
                    object_storage::child(prefix, &format!(".write-check-{}", std::process::id()));
                store
                    .put(&probe, PutPayload::from_static(b""))
                    .await
                    .map_err(|e| {
                        other(format!("task log storage {prefix} is not writable: {e}"))
                    })?;
                store.delete(&probe).await.ok();
                Ok(())
            }
        }
    }

    fn object(prefix: &ObjectPath, id: &TaskId, name: &str) -> ObjectPath {
        prefix.child(id.as_str()).child(name)
    }

    async fn put_file(&self, id: &TaskId, name: &str, file: &Path) -> io::Result<()> {
        let TaskLogStorage::Object { store, prefix } = self else {
            unreachable!("files are copied by FileTaskLogs");
        };
        let bytes = tokio::fs::read(file).await?;
        store
            .put(&Self::object(prefix, id, name), PutPayload::from(bytes))
            .await
            .map_err(other)?;
        Ok(())
    }

    /// Keeps a finished task's log (whole, or not at all).
    pub async fn push(&self, id: &TaskId, log: &Path) -> io::Result<()> {
        match self {
            TaskLogStorage::File(f) => {
                let (f, id, log) = (f.clone(), id.clone(), log.to_path_buf());
                tokio::task::spawn_blocking(move || f.push(&id, &log))
                    .await
                    .map_err(other)?
            }
            TaskLogStorage::Object { .. } => self.put_file(id, "log", log).await,
        }
    }

    /// Keeps a finished task's report.
    pub async fn push_report(&self, id: &TaskId, report: &Path) -> io::Result<()> {
        match self {
            TaskLogStorage::File(f) => {
                let (f, id, report) = (f.clone(), id.clone(), report.to_path_buf());
                tokio::task::spawn_blocking(move || f.push_report(&id, &report))
                    .await
                    .map_err(other)?
            }
            TaskLogStorage::Object { .. } => self.put_file(id, "report.json", report).await,
        }
    }

    /// The stored report, or `None` when the task left none.
    pub async fn read_report(&self, id: &TaskId) -> io::Result<Option<Vec<u8>>> {
        match self {
            TaskLogStorage::File(f) => {
                let (f, id) = (f.clone(), id.clone());
                tokio::task::spawn_blocking(move || f.read_report(&id))
                    .await
                    .map_err(other)?
            }
            TaskLogStorage::Object { store, prefix } => {
                match store.get(&Self::object(prefix, id, "report.json")).await {
                    Ok(got) => Ok(Some(got.bytes().await.map_err(other)?.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(other(e)),
                }
            }
        }
    }

    /// The stored log from Druid's `offset` (from the start when non-negative, from the end
    /// when negative), or `None` when there is none.
    pub async fn open(&self, id: &TaskId, offset: i64) -> io::Result<Option<StoredLog>> {
        match self {
            TaskLogStorage::File(f) => {
                let (f, id) = (f.clone(), id.clone());
                let opened = tokio::task::spawn_blocking(move || f.open(&id, offset))
                    .await
                    .map_err(other)??;
                Ok(opened.map(StoredLog::File))
            }
            TaskLogStorage::Object { store, prefix } => {
                let bytes = match store.get(&Self::object(prefix, id, "log")).await {
                    Ok(got) => got.bytes().await.map_err(other)?,
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(other(e)),
                };
                let len = bytes.len() as i64;
                let start = if offset >= 0 {
                    offset.min(len)
                } else {
                    (len + offset).max(0)
                };
                Ok(Some(StoredLog::Bytes(bytes.slice(start as usize..))))
            }
        }
    }
}
