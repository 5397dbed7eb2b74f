//! Object stores named by URL (`s3://bucket/prefix`), configured from the environment the way
//! the AWS tools are (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT` for an S3-compatible server, `AWS_ALLOW_HTTP` for one without TLS): deep
//! storage, task logs and the `s3` input source all reach S3 this way.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

/// Whether `location` names an object store rather than a local directory.
pub fn is_object_store(location: &str) -> bool {
    location.contains("://") && !location.starts_with("file://")
}

/// The store and the prefix inside it that `location` names.
pub fn open(location: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath), String> {
    let url =
        url::Url::parse(location).map_err(|e| format!("[{location}] is not a valid URL: {e}"))?;
    if url.scheme() == "s3" || url.scheme() == "s3a" {
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_url(location)
            .build()
            .map_err(|e| format!("[{location}]: {e}"))?;
        let prefix =
            ObjectPath::from_url_path(url.path()).map_err(|e| format!("[{location}]: {e}"))?;
        return Ok((Arc::new(store), prefix));
    }
    // Other stores take their settings by their lower-case names.
    let options = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v));
    let (store, prefix) =
        object_store::parse_url_opts(&url, options).map_err(|e| format!("[{location}]: {e}"))?;
    Ok((Arc::from(store), prefix))
}

/// `prefix` followed by the `/`-separated parts of `key`.
pub fn child(prefix: &ObjectPath, key: &str) -> ObjectPath {
    key.split('/')
        .filter(|p| !p.is_empty())
        .fold(prefix.clone(), |path, part| path.child(part))
}
