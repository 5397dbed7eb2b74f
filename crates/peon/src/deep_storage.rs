//! Deep storage through `object_store`: a local directory by default, or any URL object_store
//! understands (`s3://bucket/prefix` with the usual AWS_* environment, `file:///abs/dir`).

use crate::failure::TaskFailure;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use serde_json::{json, Value};

pub struct DeepStorage {
    store: Box<dyn ObjectStore>,
    prefix: ObjectPath,
    /// `Some(dir)` for local storage: load specs carry absolute file paths, as Druid's do.
    local_dir: Option<std::path::PathBuf>,
    /// `Some(bucket)` for S3.
    bucket: Option<String>,
}

impl DeepStorage {
    pub fn from_location(location: &str) -> Result<DeepStorage, TaskFailure> {
        if location.contains("://") && !location.starts_with("file://") {
            let url = url::Url::parse(location)
                .map_err(|e| fail!("deep storage [{location}] is not a valid URL: {e}"))?;
            let (store, prefix) = object_store::parse_url_opts(
                &url,
                std::env::vars().filter(|(k, _)| k.starts_with("AWS_")),
            )
            .map_err(|e| fail!("deep storage [{location}]: {e}"))?;
            return Ok(DeepStorage {
                store,
                prefix,
                local_dir: None,
                bucket: url.host_str().map(str::to_string),
            });
        }
        let dir = location.strip_prefix("file://").unwrap_or(location);
        std::fs::create_dir_all(dir)
            .map_err(|e| fail!("cannot create deep storage directory [{dir}]: {e}"))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| fail!("deep storage [{dir}]: {e}"))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| fail!("deep storage [{}]: {e}", dir.display()))?;
        Ok(DeepStorage {
            store: Box::new(store),
            prefix: ObjectPath::default(),
            local_dir: Some(dir),
            bucket: None,
        })
    }

    /// Writes `bytes` at `key` (below the prefix) and returns the segment's `loadSpec`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<Value, TaskFailure> {
        let mut path = self.prefix.clone();
        for part in key.split('/') {
            path = path.child(part);
        }
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| fail!("cannot write segment file [{path}]: {e}"))?;
        Ok(match (&self.local_dir, &self.bucket) {
            (Some(dir), _) => json!({"type": "local", "path": dir.join(key).display().to_string()}),
            (None, Some(bucket)) => {
                json!({"type": "s3", "bucket": bucket, "key": path.to_string()})
            }
            (None, None) => json!({"type": "object_store", "path": path.to_string()}),
        })
    }
}
