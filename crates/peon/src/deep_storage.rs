//! Deep storage through `object_store`: a local directory by default, or any URL object_store
//! understands (`s3://bucket/prefix` with the usual AWS_* environment, `file:///abs/dir`).

use crate::failure::TaskFailure;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use serde_json::{json, Value};
use std::sync::Arc;

pub struct DeepStorage {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// `Some(dir)` for local storage: load specs carry absolute file paths, as Druid's do.
    local_dir: Option<std::path::PathBuf>,
    /// `Some(bucket)` for S3.
    bucket: Option<String>,
}

/// Segment files bigger than this go to an object store in parts of this size (S3's multipart
/// upload: no single request carries a whole large segment, and a failed part is sent again
/// alone). S3 takes parts of 5 MiB and more.
const MULTIPART_PART_BYTES: usize = 8 << 20;

impl DeepStorage {
    pub fn from_location(location: &str) -> Result<DeepStorage, TaskFailure> {
        if drover_service::object_storage::is_object_store(location) {
            let (store, prefix) = drover_service::object_storage::open(location)
                .map_err(|e| fail!("deep storage {e}"))?;
            let bucket = url::Url::parse(location)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string));
            return Ok(DeepStorage {
                store,
                prefix,
                local_dir: None,
                bucket,
            });
        }
        let dir = location.strip_prefix("file://").unwrap_or(location);
        std::fs::create_dir_all(dir)
            .map_err(|e| fail!("cannot create deep storage directory [{dir}]: {e}"))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| fail!("deep storage [{dir}]: {e}"))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| fail!("deep storage [{}]: {e}", dir.display()))?;
        Ok(DeepStorage {
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            local_dir: Some(dir),
            bucket: None,
        })
    }

    /// The deep storage the middle manager points the task at (`DROVER_DEEP_STORAGE`).
    pub fn from_env() -> Result<DeepStorage, TaskFailure> {
        DeepStorage::from_location(
            &std::env::var("DROVER_DEEP_STORAGE").unwrap_or_else(|_| "var/druid/segments".into()),
        )
    }

    /// Writes `bytes` at `key` (below the prefix) and returns the segment's `loadSpec`; a
    /// large file goes to an object store as a multipart upload.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<Value, TaskFailure> {
        let path = drover_service::object_storage::child(&self.prefix, key);
        let failed = |e: &dyn std::fmt::Display| fail!("cannot write segment file [{path}]: {e}");
        if self.local_dir.is_none() && bytes.len() > MULTIPART_PART_BYTES {
            use tokio::io::AsyncWriteExt;
            let mut w = object_store::buffered::BufWriter::with_capacity(
                self.store.clone(),
                path.clone(),
                MULTIPART_PART_BYTES,
            );
            w.write_all(&bytes).await.map_err(|e| failed(&e))?;
            w.shutdown().await.map_err(|e| failed(&e))?;
        } else {
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| failed(&e))?;
        }
        Ok(match (&self.local_dir, &self.bucket) {
            (Some(dir), _) => json!({"type": "local", "path": dir.join(key).display().to_string()}),
            (None, Some(bucket)) => {
                json!({"type": "s3", "bucket": bucket, "key": path.to_string()})
            }
            (None, None) => json!({"type": "object_store", "path": path.to_string()}),
        })
    }

    /// Reads a segment's file, given its `loadSpec` (one inside this deep storage only).
    pub async fn read(&self, load_spec: &Value) -> Result<Vec<u8>, TaskFailure> {
        let path = self.object_path(load_spec)?;
        let object = self
            .store
            .get(&path)
            .await
            .map_err(|e| fail!("cannot read segment file [{path}]: {e}"))?;
        let bytes = object
            .bytes()
            .await
            .map_err(|e| fail!("cannot read segment file [{path}]: {e}"))?;
        Ok(bytes.to_vec())
    }

    /// Deletes a segment's file, given its `loadSpec`. A load spec that points outside this
    /// deep storage (another directory or bucket, a path with `..`) is refused and nothing is
    /// deleted: a segment row could have been written by anyone with access to `/action`. A file
    /// already gone is fine (a kill that is run again).
    pub async fn delete(&self, load_spec: &Value) -> Result<(), TaskFailure> {
        let path = self.object_path(load_spec)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(fail!("cannot delete segment file [{path}]: {e}")),
        }
        if let Some(dir) = &self.local_dir {
            // Empty directories of the segment (version, interval, data source) go too.
            let mut parent = dir
                .join(path.as_ref())
                .parent()
                .map(std::path::Path::to_path_buf);
            while let Some(p) = parent.filter(|p| p.starts_with(dir) && p != dir) {
                if std::fs::remove_dir(&p).is_err() {
                    break;
                }
                parent = p.parent().map(std::path::Path::to_path_buf);
            }
        }
        Ok(())
    }

    /// The object a load spec names, if it is inside this deep storage.
    fn object_path(&self, load_spec: &Value) -> Result<ObjectPath, TaskFailure> {
        let refuse = || fail!("segment loadSpec {load_spec} is not inside this deep storage");
        let text = |k: &str| load_spec.get(k).and_then(Value::as_str);
        let relative = match (
            load_spec.get("type").and_then(Value::as_str),
            &self.local_dir,
            &self.bucket,
        ) {
            (Some("local"), Some(dir), _) => {
                let path = std::path::Path::new(text("path").ok_or_else(refuse)?);
                let inside = path.strip_prefix(dir).map_err(|_| refuse())?;
                if inside
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
                {
                    return Err(refuse());
                }
                inside.to_string_lossy().into_owned()
            }
            (Some("s3"), None, Some(bucket)) if text("bucket") == Some(bucket.as_str()) => {
                text("key").ok_or_else(refuse)?.to_string()
            }
            (Some("object_store"), None, _) => text("path").ok_or_else(refuse)?.to_string(),
            _ => return Err(refuse()),
        };
        let mut path = ObjectPath::default();
        for part in relative.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(refuse());
            }
            path = path.child(part);
        }
        // An S3 key or object path is absolute within the store: it must be under the prefix.
        if self.local_dir.is_none() && !path.prefix_matches(&self.prefix) {
            return Err(refuse());
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deletes_its_own_files_and_refuses_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let deep = DeepStorage::from_location(dir.path().to_str().unwrap()).unwrap();
        let spec = deep
            .put("wiki/2015-09-12/v1/0/index.parquet", b"x".to_vec())
            .await
            .unwrap();
        let file = std::path::PathBuf::from(spec["path"].as_str().unwrap());
        assert!(file.is_file());
        let outside = tempfile::NamedTempFile::new().unwrap();
        for bad in [
            json!({"type": "local", "path": outside.path()}),
            json!({"type": "local", "path": format!("{}/../x", dir.path().display())}),
            json!({"type": "local", "path": "/etc/passwd"}),
            json!({"type": "s3", "bucket": "b", "key": "wiki/x"}),
            json!({"type": "hdfs", "path": "/x"}),
            json!({}),
        ] {
            assert!(deep.delete(&bad).await.is_err(), "{bad}");
        }
        assert!(outside.path().is_file());
        deep.delete(&spec).await.unwrap();
        assert!(!file.exists());
        // Its empty directories went with it; deep storage itself stays.
        assert!(!dir.path().join("wiki").exists());
        assert!(dir.path().is_dir());
        // Deleting again is fine.
        deep.delete(&spec).await.unwrap();
    }
}
