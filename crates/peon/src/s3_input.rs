//! The `s3` input source: objects named by URI or by prefix (with `objectGlob`), listed with
//! their sizes (for splits) and downloaded into the task directory to be read as files. The
//! store is the cluster's (`AWS_*` environment) unless the source gives its own credentials or
//! endpoint.

use std::collections::HashMap;
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

/// The source's clients, one per bucket, each made once (each has its own connection pool).
struct Stores<'s> {
    source: &'s S3Source,
    made: HashMap<String, Arc<dyn ObjectStore>>,
}

impl<'s> Stores<'s> {
    fn new(source: &'s S3Source) -> Self {
        Stores {
            source,
            made: HashMap::new(),
        }
    }

    fn of(&mut self, bucket: &str) -> Result<Arc<dyn ObjectStore>, TaskFailure> {
        if let Some(s) = self.made.get(bucket) {
            return Ok(s.clone());
        }
        let s = store(self.source, bucket)?;
        self.made.insert(bucket.to_string(), s.clone());
        Ok(s)
    }
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
    list_with(source, &mut Stores::new(source)).await
}

async fn list_with(
    source: &S3Source,
    stores: &mut Stores<'_>,
) -> Result<Vec<S3Object>, TaskFailure> {
    let mut out = Vec::new();
    for (bucket, key) in &source.objects {
        let meta = stores
            .of(bucket)?
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
        let listed: Vec<object_store::ObjectMeta> = stores
            .of(bucket)?
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
    let mut stores = Stores::new(source);
    let mut inputs = Vec::new();
    for (i, o) in list_with(source, &mut stores)
        .await?
        .into_iter()
        .enumerate()
    {
        let name = o.key.rsplit('/').next().unwrap_or("object").replace(
            |c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'),
            "_",
        );
        let path = dir.join(format!("s3-{i}-{name}"));
        let bytes = stores
            .of(&o.bucket)?
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
