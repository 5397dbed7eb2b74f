//! Middle manager settings: TOML file, then `DROVER_MM_*` environment variables, then flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiddleManagerConfig {
    /// Host advertised to the overlord and to peons' clients (`druid.host`).
    pub host: String,
    /// HTTP port (`druid.plaintextPort`); the worker id is `host:port`.
    pub port: u16,
    /// Address the HTTP server binds.
    pub bind_address: String,
    /// Address peons bind their chat API to: `host` (the address their location advertises)
    /// unless set, e.g. to `0.0.0.0` behind NAT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peon_bind_address: Option<String>,
    /// Where to write the port listened on once bound (useful with `port = 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_file: Option<PathBuf>,
    /// ZooKeeper connect string (`druid.zk.service.host`).
    pub zk_connect: String,
    /// Root of Druid's znodes (`druid.zk.paths.base`).
    pub zk_base: String,
    #[serde(with = "humantime_serde")]
    pub zk_session_timeout: Duration,
    /// How the overlord hands tasks to this worker (`druid.indexer.runner.type`): `httpRemote`
    /// or `remote` (ZooKeeper); the overlord must be set alike.
    pub runner_type: drover_core::worker_sync::RunnerType,
    /// HTTP runner: how often finished tasks the overlord has recorded are forgotten (Druid: 5
    /// minutes).
    #[serde(with = "humantime_serde")]
    pub completed_task_cleanup_period: Duration,
    /// Task slots (`druid.worker.capacity`).
    pub capacity: u32,
    /// `druid.worker.category`.
    pub category: String,
    /// `druid.worker.version`, compared as a string against the overlord's `minWorkerVersion`.
    pub version: String,
    /// Where task directories live (`druid.indexer.task.baseTaskDir`).
    pub base_task_dir: PathBuf,
    /// Task-log storage directory (`druid.indexer.logs.directory`), shared with the overlord.
    pub task_log_dir: PathBuf,
    /// The peon binary; empty means `drover-peon` beside this binary.
    pub peon_command: PathBuf,
    /// Fork each task's peon from a launcher process started once (`drover-peon --launcher`)
    /// instead of exec'ing the binary per task: about 3 ms less CPU per task. Peons of one
    /// middle manager then share the launcher's address-space layout.
    pub peon_fork_server: bool,
    /// Peon ports (`druid.indexer.runner.startPort` / `endPort`).
    pub peon_start_port: u16,
    pub peon_end_port: u16,
    /// How long a peon gets between SIGTERM and SIGKILL when its task is shut down.
    #[serde(with = "humantime_serde")]
    pub task_shutdown_timeout: Duration,
    /// How long a stopping middle manager waits for its peons (`druid.indexer.task.gracefulShutdownTimeout`).
    #[serde(with = "humantime_serde")]
    pub graceful_shutdown_timeout: Duration,
    /// Deep storage for segment files (`druid.storage.storageDirectory`): a directory, or a URL
    /// such as `s3://bucket/prefix` (credentials from the usual `AWS_*` environment).
    pub deep_storage: String,
    /// Most time a client may take to send a request's headers, and how long an idle
    /// keep-alive connection is kept.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Most time a client may take to send a request's body.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Most HTTP connections served at once; more are answered 503.
    pub max_connections: usize,
    /// Logs as JSON lines.
    pub log_json: bool,
    /// What batch tasks may read: `[ingestion]` (see docs/operations.md#safe-ingestion-inputs).
    pub ingestion: drover_ingest::input_policy::InputPolicy,
    /// Authentication: `[security]` (see docs/operations.md#authentication).
    pub security: drover_service::auth::SecurityConfig,
    /// HTTPS: `[tls]` (see docs/operations.md#tls).
    pub tls: drover_service::tls::TlsConfig,
}

impl Default for MiddleManagerConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(2);
        let limits = drover_service::http_server::ServerLimits::default();
        MiddleManagerConfig {
            host: "127.0.0.1".into(),
            port: 8091,
            bind_address: "0.0.0.0".into(),
            peon_bind_address: None,
            port_file: None,
            zk_connect: "127.0.0.1:2181".into(),
            zk_base: "/druid".into(),
            zk_session_timeout: Duration::from_secs(30),
            runner_type: Default::default(),
            completed_task_cleanup_period: Duration::from_secs(60),
            capacity: cpus.saturating_sub(1).max(1),
            category: drover_core::DEFAULT_WORKER_CATEGORY.into(),
            version: "0".into(),
            base_task_dir: "var/middle-manager/task".into(),
            task_log_dir: "var/task-logs".into(),
            peon_command: PathBuf::new(),
            peon_fork_server: true,
            peon_start_port: 8100,
            peon_end_port: 65535,
            task_shutdown_timeout: Duration::from_secs(5),
            graceful_shutdown_timeout: Duration::from_secs(300),
            deep_storage: "var/druid/segments".into(),
            header_read_timeout: limits.header_read_timeout,
            body_read_timeout: limits.body_read_timeout,
            max_connections: limits.max_connections,
            log_json: false,
            ingestion: drover_ingest::input_policy::InputPolicy::default(),
            security: drover_service::auth::SecurityConfig::default(),
            tls: drover_service::tls::TlsConfig::default(),
        }
    }
}

/// Command line; every setting can also come from the environment.
#[derive(Debug, Parser)]
#[command(
    name = "drover-middle-manager",
    version,
    about = "Drover middle manager: runs tasks in forked peons"
)]
pub struct Cli {
    /// TOML config file.
    #[arg(long, env = "DROVER_MM_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
}

#[derive(Debug, Default, clap::Args, Serialize)]
pub struct Overrides {
    #[arg(long, env = "DROVER_MM_HOST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[arg(long, env = "DROVER_MM_PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[arg(long, env = "DROVER_MM_PORT_FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_file: Option<PathBuf>,
    #[arg(long, env = "DROVER_MM_BIND_ADDRESS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<String>,
    #[arg(long, env = "DROVER_MM_PEON_BIND_ADDRESS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peon_bind_address: Option<String>,
    #[arg(long, env = "DROVER_MM_ZK_CONNECT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zk_connect: Option<String>,
    #[arg(long, env = "DROVER_MM_ZK_BASE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zk_base: Option<String>,
    /// e.g. `30s`
    #[arg(long, env = "DROVER_MM_ZK_SESSION_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zk_session_timeout: Option<String>,
    /// `httpRemote` or `remote`
    #[arg(long, env = "DROVER_MM_RUNNER_TYPE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_type: Option<String>,
    /// e.g. `1m`
    #[arg(long, env = "DROVER_MM_COMPLETED_TASK_CLEANUP_PERIOD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_task_cleanup_period: Option<String>,
    #[arg(long, env = "DROVER_MM_CAPACITY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[arg(long, env = "DROVER_MM_CATEGORY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The worker version (`--version` prints the program's own).
    #[arg(long = "worker-version", env = "DROVER_MM_VERSION")]
    #[serde(rename = "version", skip_serializing_if = "Option::is_none")]
    pub worker_version: Option<String>,
    #[arg(long, env = "DROVER_MM_BASE_TASK_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_task_dir: Option<PathBuf>,
    #[arg(long, env = "DROVER_MM_TASK_LOG_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_log_dir: Option<PathBuf>,
    #[arg(long, env = "DROVER_MM_PEON_COMMAND")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peon_command: Option<PathBuf>,
    /// `true` (default) or `false`: exec the peon binary for every task
    #[arg(long, env = "DROVER_MM_PEON_FORK_SERVER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peon_fork_server: Option<bool>,
    #[arg(long, env = "DROVER_MM_PEON_START_PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peon_start_port: Option<u16>,
    #[arg(long, env = "DROVER_MM_PEON_END_PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peon_end_port: Option<u16>,
    /// e.g. `5s`
    #[arg(long, env = "DROVER_MM_TASK_SHUTDOWN_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_shutdown_timeout: Option<String>,
    /// e.g. `5m`
    #[arg(long, env = "DROVER_MM_GRACEFUL_SHUTDOWN_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graceful_shutdown_timeout: Option<String>,
    #[arg(long, env = "DROVER_MM_DEEP_STORAGE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deep_storage: Option<String>,
    #[arg(long, env = "DROVER_MM_LOG_JSON")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_json: Option<bool>,
    #[arg(long, env = "DROVER_MM_HEADER_READ_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_read_timeout: Option<String>,
    #[arg(long, env = "DROVER_MM_BODY_READ_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_read_timeout: Option<String>,
    #[arg(long, env = "DROVER_MM_MAX_CONNECTIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    #[command(flatten)]
    #[serde(flatten)]
    pub shared: drover_service::SharedOverrides,
}

impl MiddleManagerConfig {
    pub fn server_limits(&self) -> drover_service::http_server::ServerLimits {
        drover_service::http_server::ServerLimits {
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            max_connections: self.max_connections,
        }
    }

    pub fn load(cli: &Cli) -> anyhow::Result<Self> {
        let config: Self =
            drover_service::load_config(Self::default(), cli.config.as_deref(), &cli.overrides)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.capacity >= 1, "capacity must be at least 1");
        self.security.validate()?;
        self.tls.validate()?;
        anyhow::ensure!(
            self.peon_start_port <= self.peon_end_port,
            "peon_start_port ({}) must not be above peon_end_port ({})",
            self.peon_start_port,
            self.peon_end_port
        );
        drover_core::WorkerHost::new(self.worker_host())
            .map_err(|e| anyhow::anyhow!("host: {e}"))?;
        Ok(())
    }

    pub fn worker_host(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn peon_command(&self) -> PathBuf {
        if !self.peon_command.as_os_str().is_empty() {
            return self.peon_command.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("drover-peon")))
            .unwrap_or_else(|| PathBuf::from("drover-peon"))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_example_config_loads() {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/middle-manager.toml"
        );
        let cli = Cli::try_parse_from(["server", "--config", file]).unwrap();
        MiddleManagerConfig::load(&cli).unwrap();
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_the_file_and_defaults() {
        let dir = std::env::temp_dir().join(format!("drover-mm-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("mm.toml");
        std::fs::write(&file, "capacity = 7\nport = 9000\nversion = \"3\"\n").unwrap();
        let cli = Cli::try_parse_from([
            "mm",
            "--config",
            file.to_str().unwrap(),
            "--port",
            "9100",
            "--zk-session-timeout",
            "4s",
        ])
        .unwrap();
        let config = MiddleManagerConfig::load(&cli).unwrap();
        assert_eq!(config.capacity, 7);
        assert_eq!(config.port, 9100);
        assert_eq!(config.version, "3");
        assert_eq!(config.zk_session_timeout, Duration::from_secs(4));
        std::fs::write(&file, "capcity = 7\n").unwrap();
        let cli = Cli::try_parse_from(["mm", "--config", file.to_str().unwrap()]).unwrap();
        let err = MiddleManagerConfig::load(&cli).unwrap_err().to_string();
        assert!(err.contains("capcity"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
