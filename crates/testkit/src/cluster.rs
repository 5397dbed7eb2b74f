//! A whole cluster: the shared ZooKeeper (under a fresh base path), one overlord, and middle
//! managers, each a real process on its own ports in a temporary directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::client::ApiClient;
use crate::process::{binary, ManagedProcess};
use crate::zookeeper::ZooKeeper;

#[derive(Debug, Clone)]
pub struct MiddleManagerSpec {
    pub capacity: u32,
    pub extra_args: Vec<String>,
}

impl MiddleManagerSpec {
    pub fn with_capacity(capacity: u32) -> Self {
        MiddleManagerSpec {
            capacity,
            extra_args: vec![],
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ClusterSpec {
    /// Middle managers, one per entry.
    pub middle_managers: Vec<MiddleManagerSpec>,
    /// Extra overlord flags, e.g. `["--task-cleanup-timeout", "3s"]`.
    pub overlord_args: Vec<String>,
    /// ZooKeeper to use instead of the shared one.
    pub zk_connect: Option<String>,
    /// How many overlords (0 means 1); they elect a leader among themselves.
    pub overlords: usize,
    /// The overlords' metadata store; a SQLite file in the cluster's directory when `None`.
    pub metadata_url: Option<String>,
    /// With HTTP Basic authentication on: the admin's `user:password` the cluster's clients
    /// use, and the flags every server gets.
    pub basic_auth: Option<BasicAuth>,
    /// Every server on HTTPS with a certificate from a CA made for the cluster.
    pub tls: bool,
    /// Deep storage and task logs in an S3 bucket instead of local directories.
    pub s3: Option<S3Storage>,
    /// `remote` (ZooKeeper) or `httpRemote`; `None` takes `DROVER_TEST_RUNNER`, else the
    /// servers' default. Set it only for a test about one runner.
    pub runner_type: Option<String>,
}

/// The runner a cluster uses unless its spec names one: `DROVER_TEST_RUNNER`, so the whole suite
/// runs on either runner.
pub fn default_runner_type() -> String {
    std::env::var("DROVER_TEST_RUNNER").unwrap_or_else(|_| DEFAULT_RUNNER_TYPE.into())
}

/// The servers' own default `runner_type`.
pub const DEFAULT_RUNNER_TYPE: &str = "httpRemote";

/// Deep storage at `s3://{bucket}/segments` and task logs at `s3://{bucket}/task-logs`, every
/// server (and so every peon) with `env` (`AWS_ENDPOINT`, credentials).
#[derive(Debug, Clone)]
pub struct S3Storage {
    pub bucket: String,
    pub env: Vec<(String, String)>,
}

/// A CA and a certificate for `127.0.0.1`/`localhost` signed by it, written in the cluster's
/// directory.
struct TestCertificates {
    ca_pem: String,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl TestCertificates {
    fn write(dir: &std::path::Path) -> TestCertificates {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let files = TestCertificates {
            ca_pem: ca.pem(),
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
        };
        std::fs::write(&files.ca_file, &files.ca_pem).unwrap();
        std::fs::write(&files.cert_file, cert.pem()).unwrap();
        std::fs::write(&files.key_file, key.serialize_pem()).unwrap();
        files
    }

    fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert-file".into(),
            self.cert_file.display().to_string(),
            "--tls-key-file".into(),
            self.key_file.display().to_string(),
            "--tls-ca-file".into(),
            self.ca_file.display().to_string(),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub admin_password: String,
    pub internal_password: String,
}

impl BasicAuth {
    fn server_args(&self) -> Vec<String> {
        [
            "--security-basic-auth",
            "true",
            "--security-internal-client-password",
            &self.internal_password,
        ]
        .map(String::from)
        .to_vec()
    }
}

pub struct MiddleManager {
    pub process: ManagedProcess,
    /// `127.0.0.1:<port>`: the worker id.
    pub host: String,
    pub url: String,
    pub base_task_dir: PathBuf,
}

pub struct Overlord {
    pub process: ManagedProcess,
    /// Follows redirects to the leader.
    pub client: ApiClient,
    /// Shows redirects.
    pub raw: ApiClient,
    pub url: String,
}

pub struct Cluster {
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    pub zk_connect: String,
    pub zk_base: String,
    pub overlords: Vec<Overlord>,
    /// A client of the first overlord; it follows redirects, so it reaches whichever leads.
    pub client: ApiClient,
    pub middle_managers: Vec<MiddleManager>,
    pub task_log_dir: PathBuf,
    /// Where the middle managers' peons write segment files.
    pub deep_storage_dir: PathBuf,
    /// What every server process gets in its environment.
    process_env: Vec<(String, String)>,
    /// Flags every middle manager gets (authentication and TLS settings).
    middle_manager_args: Vec<String>,
    /// `http`, or `https` with `ClusterSpec::tls`.
    pub scheme: &'static str,
    /// The CA the servers' certificates are signed by (PEM), with `ClusterSpec::tls`.
    pub ca_pem: Option<String>,
    /// `remote` or `httpRemote`, as every server was started with.
    pub runner_type: String,
}

impl ClusterSpec {
    /// One middle manager per capacity given.
    pub fn workers(capacities: &[u32]) -> Self {
        ClusterSpec {
            middle_managers: capacities
                .iter()
                .map(|&c| MiddleManagerSpec::with_capacity(c))
                .collect(),
            ..Default::default()
        }
    }

    /// Every server with HTTP Basic authentication on; the cluster's clients log in as `admin`.
    pub fn basic_auth(mut self, admin_password: &str, internal_password: &str) -> Self {
        self.basic_auth = Some(BasicAuth {
            admin_password: admin_password.into(),
            internal_password: internal_password.into(),
        });
        self
    }

    /// Every server on the given runner (`remote` or `httpRemote`), whatever the suite runs on.
    pub fn runner(mut self, runner_type: &str) -> Self {
        self.runner_type = Some(runner_type.into());
        self
    }

    /// Every server on HTTPS (a CA made for the cluster; its clients trust it).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    pub fn overlord_args(mut self, args: &[&str]) -> Self {
        self.overlord_args
            .extend(args.iter().map(|a| a.to_string()));
        self
    }
}

impl Cluster {
    /// Starts everything and waits until an overlord leads and sees every middle manager.
    pub async fn start(spec: ClusterSpec) -> Cluster {
        let tmp = tempfile::Builder::new()
            .prefix("drover-cluster-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let zk_connect = spec.zk_connect.clone().unwrap_or_else(ZooKeeper::shared);
        let zk_base = format!("/drover-test-{:016x}", rand::rng().random::<u64>());
        // Shown with a failing test's output: where to look, and what was chosen at random.
        println!(
            "cluster in {}: ZooKeeper {zk_connect}{zk_base}",
            dir.display()
        );
        let (task_log_dir, deep_storage_dir) = match &spec.s3 {
            Some(s3) => (
                PathBuf::from(format!("s3://{}/task-logs", s3.bucket)),
                PathBuf::from(format!("s3://{}/segments", s3.bucket)),
            ),
            None => (dir.join("task-logs"), dir.join("deep")),
        };
        let mut process_env = log_env();
        if let Some(s3) = &spec.s3 {
            process_env.extend(s3.env.iter().cloned());
        }
        let tls = spec.tls.then(|| TestCertificates::write(&dir));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let runner_type = spec.runner_type.clone().unwrap_or_else(default_runner_type);
        println!("runner: {runner_type}");
        let mut server_args: Vec<String> = vec!["--runner-type".into(), runner_type.clone()];
        server_args.extend(
            spec.basic_auth
                .as_ref()
                .map(BasicAuth::server_args)
                .unwrap_or_default(),
        );
        if let Some(t) = &tls {
            server_args.extend(t.server_args());
        }
        let mut overlords = Vec::new();
        for n in 0..spec.overlords.max(1) {
            // Port 0: the overlord binds a port the kernel picks and writes it to this file.
            let port_file = dir.join(format!("overlord{n}.port"));
            let mut cmd = server_command(
                "drover-overlord",
                &port_file,
                &zk_connect,
                &zk_base,
                "6s",
                &task_log_dir,
            );
            // All overlords share one metadata store, as in production.
            let metadata_url = spec
                .metadata_url
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}", dir.join("metadata.db").display()));
            cmd.extend(["--metadata-url".into(), metadata_url]);
            cmd.extend(spec.overlord_args.iter().cloned());
            cmd.extend(server_args.iter().cloned());
            if let Some(auth) = &spec.basic_auth {
                cmd.extend([
                    "--security-initial-admin-password".into(),
                    auth.admin_password.clone(),
                ]);
            }
            let mut process = ManagedProcess::start(
                &format!("overlord-{n}"),
                cmd,
                process_env.clone(),
                dir.join(format!("overlord{n}.log")),
            );
            let port = process.wait_for_port(&port_file);
            println!("overlord {n}: port {port}");
            let url = format!("{scheme}://127.0.0.1:{port}");
            let admin = spec
                .basic_auth
                .as_ref()
                .map(|auth| format!("admin:{}", auth.admin_password));
            let ca = tls.as_ref().map(|t| t.ca_pem.as_bytes());
            let client = ApiClient::configured(&url, admin.as_deref(), ca, true);
            let raw = ApiClient::configured(&url, admin.as_deref(), ca, false);
            overlords.push(Overlord {
                process,
                client,
                raw,
                url,
            });
        }
        let client = overlords[0].client.clone();
        let mut cluster = Cluster {
            dir: dir.clone(),
            _tmp: tmp,
            zk_connect,
            zk_base,
            overlords,
            client,
            middle_managers: vec![],
            task_log_dir,
            deep_storage_dir,
            process_env,
            middle_manager_args: server_args,
            scheme,
            ca_pem: tls.as_ref().map(|t| t.ca_pem.clone()),
            runner_type,
        };
        for mm in &spec.middle_managers {
            cluster.add_middle_manager(mm);
        }
        for o in &cluster.overlords {
            o.client
                .wait_healthy(Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| cluster.fail(e));
        }
        cluster.wait_for_leader(Duration::from_secs(30)).await;
        cluster
            .wait_for_workers(cluster.middle_managers.len(), Duration::from_secs(30))
            .await;
        cluster
    }

    /// The overlord started first (its process).
    pub fn overlord(&mut self) -> &mut ManagedProcess {
        &mut self.overlords[0].process
    }

    /// Index of the overlord that leads now, if one does.
    pub async fn leader(&self) -> Option<usize> {
        self.leader_among(|_| true).await
    }

    /// Index of the overlord that leads now among those `consider` accepts (a frozen process
    /// would not answer, so it is left out by the caller).
    pub async fn leader_among(&self, consider: impl Fn(usize) -> bool) -> Option<usize> {
        for (i, o) in self
            .overlords
            .iter()
            .enumerate()
            .filter(|(i, _)| consider(*i))
        {
            if o.raw.is_leader().await {
                return Some(i);
            }
        }
        None
    }

    /// Waits until some overlord leads; its index.
    pub async fn wait_for_leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.leader().await {
                return i;
            }
            if Instant::now() > deadline {
                self.fail(format!("no overlord became leader in {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn add_middle_manager(&mut self, spec: &MiddleManagerSpec) {
        let n = self.middle_managers.len();
        let port_file = self.dir.join(format!("mm{n}.port"));
        // Peon ports, like server ports, stay below the ephemeral range.
        let peon_port = 30_000 + rand::rng().random_range(0..2_500u16);
        let base_task_dir = self.dir.join(format!("mm{n}")).join("task");
        let mut cmd = server_command(
            "drover-middle-manager",
            &port_file,
            &self.zk_connect,
            &self.zk_base,
            "4s",
            &self.task_log_dir,
        );
        cmd.extend([
            "--capacity".into(),
            spec.capacity.to_string(),
            "--base-task-dir".into(),
            base_task_dir.display().to_string(),
            "--peon-start-port".into(),
            peon_port.to_string(),
            "--peon-end-port".into(),
            (peon_port + 200).to_string(),
            "--task-shutdown-timeout".into(),
            "2s".into(),
            "--deep-storage".into(),
            self.deep_storage_dir.display().to_string(),
        ]);
        cmd.extend(self.middle_manager_args.iter().cloned());
        cmd.extend(spec.extra_args.iter().cloned());
        let mut process = ManagedProcess::start(
            &format!("middle-manager-{n}"),
            cmd,
            self.process_env.clone(),
            self.dir.join(format!("mm{n}.log")),
        );
        let port = process.wait_for_port(&port_file);
        println!(
            "middle manager {n}: port {port}, peon ports {peon_port}..{}",
            peon_port + 200
        );
        self.middle_managers.push(MiddleManager {
            process,
            host: format!("127.0.0.1:{port}"),
            url: format!("{}://127.0.0.1:{port}", self.scheme),
            base_task_dir,
        });
    }

    /// Waits until `/workers` lists `n` workers. Asked of the leader itself: a redirect from a
    /// follower would not carry a cluster's credentials.
    pub async fn wait_for_workers(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let leader = self.leader().await.unwrap_or(0);
            if let Ok(w) = self.overlords[leader].client.workers().await {
                if w.len() == n {
                    return;
                }
            }
            if Instant::now() > deadline {
                self.fail(format!(
                    "the overlord did not list {n} workers in {timeout:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// kill -9 the first overlord and start it again on the same port and database; waits
    /// until it (or another) leads.
    pub async fn restart_overlord(&mut self) {
        self.overlords[0].process.restart();
        self.client
            .wait_healthy(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| self.fail(e));
        self.wait_for_leader(Duration::from_secs(30)).await;
    }

    /// Panics with the tail of every process log.
    pub fn fail(&self, why: impl std::fmt::Display) -> ! {
        panic!("{why}\n{}", self.logs())
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for o in &self.overlords {
            out.push_str(&format!(
                "--- {} ---\n{}\n",
                o.process.name,
                o.process.log_tail(60)
            ));
        }
        for mm in &self.middle_managers {
            out.push_str(&format!(
                "--- {} ---\n{}\n",
                mm.process.name,
                mm.process.log_tail(60)
            ));
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("cluster logs ({}):\n{}", self.dir.display(), self.logs());
        }
    }
}

/// The flags both servers take: loopback host and port, ZooKeeper, task-log storage.
fn server_command(
    binary_name: &str,
    port_file: &std::path::Path,
    zk_connect: &str,
    zk_base: &str,
    session_timeout: &str,
    task_log_dir: &std::path::Path,
) -> Vec<String> {
    [
        binary(binary_name).display().to_string(),
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        "0".into(),
        "--port-file".into(),
        port_file.display().to_string(),
        "--bind-address".into(),
        "127.0.0.1".into(),
        "--zk-connect".into(),
        zk_connect.into(),
        "--zk-base".into(),
        zk_base.into(),
        "--zk-session-timeout".into(),
        session_timeout.into(),
        "--task-log-dir".into(),
        task_log_dir.display().to_string(),
    ]
    .into()
}

fn log_env() -> Vec<(String, String)> {
    vec![(
        "RUST_LOG".into(),
        std::env::var("DROVER_TEST_LOG").unwrap_or_else(|_| "info,drover_overlord=debug".into()),
    )]
}
