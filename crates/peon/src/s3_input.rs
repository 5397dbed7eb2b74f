//! The `s3` input source: objects named by URI or by prefix (with `objectGlob`), listed with
//! their sizes (for splits) and downloaded into the task directory to be read as files. The
//! store is the cluster's (`AWS_*` environment) unless the source gives its own credentials or
//! endpoint.

use std::path::Path;
use std::sync::Arc;

use drover_ingest::input::{wildcard_match, Input};
use drover_ingest::spec::S3Source;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

use crate::failure::TaskFailure;

/// One object to read: bucket, key, size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    pub bucket: String,
    pub key: String,
    pub size: u64,
}

fn store(source: &S3Source, bucket: &str) -> Result<Arc<dyn ObjectStore>, TaskFailure> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some((id, secret)) = &source.credentials {
        b = b.with_access_key_id(id).with_secret_access_key(secret);
    }
    if let Some(url) = &source.endpoint {
        b = b
            .with_endpoint(url)
            .with_allow_http(url.starts_with("http://"));
    }
    if let Some(region) = &source.region {
        b = b.with_region(region);
    }
    let built = b
        .build()
        .map_err(|e| fail!("cannot reach s3 bucket [{bucket}]: {e}"))?;
    Ok(Arc::new(built))
}

/// Every object the source names, in order: named ones first (their sizes asked), then each
/// prefix's, sorted by key.
pub async fn list(source: &S3Source) -> Result<Vec<S3Object>, TaskFailure> {
    let mut out = Vec::new();
    for (bucket, key) in &source.objects {
        let meta = store(source, bucket)?
            .head(&ObjectPath::from(key.as_str()))
            .await
            .map_err(|e| fail!("cannot read s3://{bucket}/{key}: {e}"))?;
        out.push(S3Object {
            bucket: bucket.clone(),
            key: key.clone(),
            size: meta.size,
        });
    }
    for (bucket, prefix) in &source.prefixes {
        // A prefix need not end at a '/': list its directory and keep what starts with it.
        let dir = prefix.rsplit_once('/').map_or("", |(d, _)| d);
        let listed: Vec<object_store::ObjectMeta> = store(source, bucket)?
            .list(Some(&ObjectPath::from(dir)))
            .try_collect()
            .await
            .map_err(|e| fail!("cannot list s3://{bucket}/{prefix}: {e}"))?;
        let mut found: Vec<S3Object> = listed
            .into_iter()
            .map(|m| S3Object {
                bucket: bucket.clone(),
                key: m.location.to_string(),
                size: m.size,
            })
            .filter(|o| o.key.starts_with(prefix.as_str()))
            .filter(|o| {
                source
                    .object_glob
                    .as_deref()
                    .is_none_or(|g| wildcard_match(g, &o.key))
            })
            .collect();
        found.sort_by(|a, b| a.key.cmp(&b.key));
        out.extend(found);
    }
    Ok(out)
}

/// Downloads every object of the source into `dir`, as files named after their keys' last
/// part (a `.gz` stays gzip to the reader).
pub async fn download(source: &S3Source, dir: &Path) -> Result<Vec<Input>, TaskFailure> {
    std::fs::create_dir_all(dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
    let mut inputs = Vec::new();
    for (i, o) in list(source).await?.into_iter().enumerate() {
        let name = o.key.rsplit('/').next().unwrap_or("object").replace(
            |c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'),
            "_",
        );
        let path = dir.join(format!("s3-{i}-{name}"));
        let bytes = store(source, &o.bucket)?
            .get(&ObjectPath::from(o.key.as_str()))
            .await
            .map_err(|e| fail!("cannot read s3://{}/{}: {e}", o.bucket, o.key))?
            .bytes()
            .await
            .map_err(|e| fail!("cannot read s3://{}/{}: {e}", o.bucket, o.key))?;
        std::fs::write(&path, &bytes).map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
        inputs.push(Input::File(path));
    }
    Ok(inputs)
}
