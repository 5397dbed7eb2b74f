//! A local S3-compatible server for tests: moto's server mode (`moto_server`, from PyPI's
//! `moto[server]`, which `scripts/test` installs), on a free port, killed with the test. It
//! speaks the S3 REST API (buckets, objects, listing, multipart uploads) and accepts any
//! credentials.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::process::{free_port, ManagedProcess};

pub struct S3Server {
    pub endpoint: String,
    _process: ManagedProcess,
    http: reqwest::Client,
}

/// The credentials the tests' S3 clients use (moto takes any).
pub const ACCESS_KEY: &str = "drover-test";
pub const SECRET_KEY: &str = "drover-test-secret";

impl S3Server {
    /// Starts the server, its log in `dir`; panics with a hint when moto is not installed.
    pub fn start(dir: &Path) -> S3Server {
        let port = free_port();
        let process = ManagedProcess::start(
            "moto-s3",
            vec![
                "moto_server".into(),
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
            vec![],
            dir.join("moto-s3.log"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {port} within 30 s (pip install 'moto[server]'; see {})",
                dir.join("moto-s3.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            _process: process,
            http: reqwest::Client::new(),
        }
    }

    /// What a process needs in its environment to use this server as its S3.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub async fn create_bucket(&self, bucket: &str) {
        let r = self
            .http
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "create bucket {bucket}: {}",
            r.status()
        );
    }

    /// A client of `bucket` with the tests' credentials (moto answers only signed requests).
    fn bucket(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .unwrap()
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        use object_store::ObjectStore;
        self.bucket(bucket)
            .put(&key.into(), body.into())
            .await
            .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e}"));
    }

    /// An object's bytes, `None` when there is none.
    pub async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        use object_store::ObjectStore;
        let got = self
            .bucket(bucket)
            .get(&object_store::path::Path::from(key))
            .await
            .ok()?;
        Some(got.bytes().await.ok()?.to_vec())
    }

    /// An object's ETag: a multipart upload's ends in `-<parts>`.
    pub async fn etag(&self, bucket: &str, key: &str) -> Option<String> {
        use object_store::ObjectStore;
        let meta = self
            .bucket(bucket)
            .head(&object_store::path::Path::from(key))
            .await
            .ok()?;
        meta.e_tag.map(|t| t.trim_matches('"').to_string())
    }

    /// The keys under `prefix` (a directory).
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let listed: Vec<object_store::ObjectMeta> = self
            .bucket(bucket)
            .list(Some(&object_store::path::Path::from(prefix)))
            .try_collect()
            .await
            .unwrap_or_default();
        listed.into_iter().map(|m| m.location.to_string()).collect()
    }
}
