//! Overlord settings: TOML file, then `DROVER_OVERLORD_*` environment variables, then flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::runner::select::SelectStrategy;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlordConfig {
    /// Host advertised as the leader URL (`druid.host`).
    pub host: String,
    /// HTTP port (`druid.plaintextPort`).
    pub port: u16,
    pub bind_address: String,
    /// Where to write the port listened on once bound (useful with `port = 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_file: Option<PathBuf>,
    /// `sqlite://path`, `postgres://...` or `mysql://...` (`druid.metadata.storage.connector.connectURI`).
    pub metadata_url: String,
    pub zk_connect: String,
    pub zk_base: String,
    #[serde(with = "humantime_serde")]
    pub zk_session_timeout: Duration,
    /// Task-log storage directory shared with the middle managers (`druid.indexer.logs.directory`).
    pub task_log_dir: PathBuf,
    /// Most tasks the queue holds (`druid.indexer.queue.maxSize`); more are answered with 429.
    pub queue_max_size: u32,
    /// Largest task body accepted (`druid.indexer.queue.maxTaskPayloadSize`).
    pub max_task_payload_bytes: usize,
    /// How long `POST /task` may take to store a task; past it the answer is 503 and nothing is
    /// stored (Drover's own setting).
    #[serde(with = "humantime_serde")]
    pub task_submit_timeout: Duration,
    /// Longest a request may take before it is answered 503 (task actions and supervisor changes,
    /// which wait as long as their own timeouts say, excepted).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long a follower waits for the leader's health check before it answers 503 instead of
    /// redirecting a client to a leader that does not answer.
    #[serde(with = "humantime_serde")]
    pub leader_probe_timeout: Duration,
    /// How often the leader runs its Coordinator duties, such as applying retention rules
    /// (`druid.coordinator.period`).
    #[serde(with = "humantime_serde")]
    pub coordinator_period: Duration,
    /// Whether the leader deletes old unused segments by itself (`druid.coordinator.kill.on`).
    pub kill_unused_segments: bool,
    /// How often it looks for them (`druid.coordinator.kill.period`).
    #[serde(with = "humantime_serde")]
    pub kill_period: Duration,
    /// Segments unused for less than this are kept (`druid.coordinator.kill.bufferPeriod`).
    #[serde(with = "humantime_serde")]
    pub kill_buffer_period: Duration,
    /// Segments whose time ended less than this ago are kept
    /// (`druid.coordinator.kill.durationToRetain`).
    #[serde(with = "humantime_serde")]
    pub kill_duration_to_retain: Duration,
    /// At most this many segments a kill task (`druid.coordinator.kill.maxSegments`).
    pub kill_max_segments: u64,
    /// How often the queue re-reads active tasks from storage (`druid.indexer.queue.storageSyncRate`).
    #[serde(with = "humantime_serde")]
    pub storage_sync_period: Duration,
    /// `druid.indexer.runner.taskAssignmentTimeout`.
    #[serde(with = "humantime_serde")]
    pub task_assignment_timeout: Duration,
    /// How long a vanished worker's tasks wait for it to come back (`druid.indexer.runner.taskCleanupTimeout`).
    #[serde(with = "humantime_serde")]
    pub task_cleanup_timeout: Duration,
    /// `druid.indexer.runner.taskShutdownLinkTimeout`.
    #[serde(with = "humantime_serde")]
    pub task_shutdown_link_timeout: Duration,
    /// How often the runner re-reads all worker and status znodes to repair missed events.
    #[serde(with = "humantime_serde")]
    pub zk_resync_period: Duration,
    /// Failures in a row before a worker may be blacklisted (`druid.indexer.runner.maxRetriesBeforeBlacklist`).
    pub max_retries_before_blacklist: u32,
    /// How long a blacklisting lasts (`druid.indexer.runner.workerBlackListBackoffTime`).
    #[serde(with = "humantime_serde")]
    pub worker_blacklist_backoff_time: Duration,
    /// Largest share of workers that may be blacklisted (`druid.indexer.runner.maxPercentageBlacklistWorkers`).
    pub max_percentage_blacklist_workers: u32,
    /// `equalDistribution` or `fillCapacity`.
    pub worker_select_strategy: SelectStrategy,
    /// How tasks reach middle managers (`druid.indexer.runner.type`): `httpRemote` (assigned and
    /// synced over HTTP) or `remote` (through ZooKeeper). Middle managers must be set alike.
    pub runner_type: drover_core::worker_sync::RunnerType,
    /// How long the HTTP runner keeps a worker whose sync keeps failing before it counts as
    /// gone, as if it had left discovery (`druid.indexer.runner.serverUnstabilityTimeout`).
    #[serde(with = "humantime_serde")]
    pub worker_sync_unstable_timeout: Duration,
    /// Largest task JSON handed to a worker through ZooKeeper (`druid.indexer.runner.maxZnodeBytes`);
    /// a larger task is refused at `POST /task` with a 400.
    pub max_znode_bytes: usize,
    /// `druid.indexer.runner.minWorkerVersion` (compared as a string).
    pub min_worker_version: String,
    /// Completed tasks listed when no interval is given (`druid.indexer.storage.recentlyFinishedThreshold`).
    #[serde(with = "humantime_serde")]
    pub recently_finished_threshold: Duration,
    /// Most time a client may take to send a request's headers, and how long an idle
    /// keep-alive connection is kept.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Most time a client may take to send a request's body.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Most HTTP connections served at once; more are answered 503.
    pub max_connections: usize,
    pub log_json: bool,
    /// What batch tasks may read: `[ingestion]` (see docs/operations.md#safe-ingestion-inputs).
    pub ingestion: drover_ingest::input_policy::InputPolicy,
    /// Authentication: `[security]` (see docs/operations.md#authentication).
    pub security: drover_service::auth::SecurityConfig,
    /// HTTPS: `[tls]` (see docs/operations.md#tls).
    pub tls: drover_service::tls::TlsConfig,
}

impl Default for OverlordConfig {
    fn default() -> Self {
        let limits = drover_service::http_server::ServerLimits::default();
        OverlordConfig {
            host: "127.0.0.1".into(),
            port: 8090,
            bind_address: "0.0.0.0".into(),
            port_file: None,
            metadata_url: "sqlite://var/overlord/metadata.db".into(),
            zk_connect: "127.0.0.1:2181".into(),
            zk_base: "/druid".into(),
            zk_session_timeout: Duration::from_secs(30),
            task_log_dir: "var/task-logs".into(),
            queue_max_size: u32::MAX,
            max_task_payload_bytes: 60 * 1024 * 1024,
            task_submit_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            leader_probe_timeout: Duration::from_secs(2),
            storage_sync_period: Duration::from_secs(60),
            coordinator_period: Duration::from_secs(60),
            kill_unused_segments: false,
            kill_period: Duration::from_secs(24 * 3600),
            kill_buffer_period: Duration::from_secs(30 * 24 * 3600),
            kill_duration_to_retain: Duration::from_secs(90 * 24 * 3600),
            kill_max_segments: 100,
            task_assignment_timeout: Duration::from_secs(300),
            // Druid waits 15 minutes; see docs/operations.md#when-a-middle-manager-dies for why
            // seconds are safe here.
            task_cleanup_timeout: Duration::from_secs(15),
            task_shutdown_link_timeout: Duration::from_secs(60),
            zk_resync_period: Duration::from_secs(60),
            max_retries_before_blacklist: 5,
            worker_blacklist_backoff_time: Duration::from_secs(900),
            max_percentage_blacklist_workers: 20,
            worker_select_strategy: SelectStrategy::EqualDistribution,
            max_znode_bytes: crate::runner::DEFAULT_MAX_ZNODE_BYTES,
            runner_type: Default::default(),
            worker_sync_unstable_timeout: Duration::from_secs(5),
            min_worker_version: "0".into(),
            recently_finished_threshold: Duration::from_secs(24 * 3600),
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

#[derive(Debug, Parser)]
#[command(
    name = "drover-overlord",
    version,
    about = "Drover overlord: Druid's indexing API"
)]
pub struct Cli {
    /// TOML config file.
    #[arg(long, env = "DROVER_OVERLORD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
}

#[derive(Debug, Default, clap::Args, Serialize)]
pub struct Overrides {
    #[arg(long, env = "DROVER_OVERLORD_HOST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[arg(long, env = "DROVER_OVERLORD_PORT_FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_file: Option<PathBuf>,
    #[arg(long, env = "DROVER_OVERLORD_BIND_ADDRESS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_METADATA_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_url: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_ZK_CONNECT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zk_connect: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_ZK_BASE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zk_base: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_ZK_SESSION_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zk_session_timeout: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_TASK_LOG_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_log_dir: Option<PathBuf>,
    #[arg(long, env = "DROVER_OVERLORD_QUEUE_MAX_SIZE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_max_size: Option<u32>,
    #[arg(long, env = "DROVER_OVERLORD_MAX_TASK_PAYLOAD_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_task_payload_bytes: Option<usize>,
    #[arg(long, env = "DROVER_OVERLORD_TASK_SUBMIT_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_submit_timeout: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_REQUEST_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_LEADER_PROBE_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_probe_timeout: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_KILL_UNUSED_SEGMENTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_unused_segments: Option<bool>,
    #[arg(long, env = "DROVER_OVERLORD_KILL_PERIOD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_period: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_KILL_BUFFER_PERIOD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_buffer_period: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_KILL_DURATION_TO_RETAIN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_duration_to_retain: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_KILL_MAX_SEGMENTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_max_segments: Option<u64>,
    #[arg(long, env = "DROVER_OVERLORD_COORDINATOR_PERIOD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coordinator_period: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_STORAGE_SYNC_PERIOD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_sync_period: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_TASK_ASSIGNMENT_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_assignment_timeout: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_TASK_CLEANUP_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_cleanup_timeout: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_TASK_SHUTDOWN_LINK_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_shutdown_link_timeout: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_ZK_RESYNC_PERIOD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zk_resync_period: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_MAX_RETRIES_BEFORE_BLACKLIST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries_before_blacklist: Option<u32>,
    #[arg(long, env = "DROVER_OVERLORD_WORKER_BLACKLIST_BACKOFF_TIME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_blacklist_backoff_time: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_MAX_PERCENTAGE_BLACKLIST_WORKERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_percentage_blacklist_workers: Option<u32>,
    #[arg(long, env = "DROVER_OVERLORD_WORKER_SELECT_STRATEGY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_select_strategy: Option<String>,
    /// `httpRemote` or `remote`
    #[arg(long, env = "DROVER_OVERLORD_RUNNER_TYPE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_type: Option<String>,
    /// e.g. `60s`
    #[arg(long, env = "DROVER_OVERLORD_WORKER_SYNC_UNSTABLE_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_sync_unstable_timeout: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_MAX_ZNODE_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_znode_bytes: Option<usize>,
    #[arg(long, env = "DROVER_OVERLORD_MIN_WORKER_VERSION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_worker_version: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_RECENTLY_FINISHED_THRESHOLD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recently_finished_threshold: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_HEADER_READ_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_read_timeout: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_BODY_READ_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_read_timeout: Option<String>,
    #[arg(long, env = "DROVER_OVERLORD_MAX_CONNECTIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    #[arg(long, env = "DROVER_OVERLORD_LOG_JSON")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_json: Option<bool>,
    #[command(flatten)]
    #[serde(flatten)]
    pub shared: drover_service::SharedOverrides,
}

impl OverlordConfig {
    pub fn load(cli: &Cli) -> anyhow::Result<Self> {
        let config: Self =
            drover_service::load_config(Self::default(), cli.config.as_deref(), &cli.overrides)?;
        anyhow::ensure!(
            config.queue_max_size >= 1,
            "queue_max_size must be at least 1"
        );
        config.security.validate()?;
        config.tls.validate()?;
        Ok(config)
    }

    pub fn advertised_url(&self) -> String {
        format!("{}://{}:{}", self.tls.scheme(), self.host, self.port)
    }

    pub fn server_limits(&self) -> drover_service::http_server::ServerLimits {
        drover_service::http_server::ServerLimits {
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            max_connections: self.max_connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_example_config_loads() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/overlord.toml");
        let cli = Cli::try_parse_from(["server", "--config", file]).unwrap();
        OverlordConfig::load(&cli).unwrap();
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn strategy_and_durations_parse_from_flags() {
        let cli = Cli::try_parse_from([
            "overlord",
            "--worker-select-strategy",
            "fillCapacity",
            "--task-cleanup-timeout",
            "2s",
        ])
        .unwrap();
        let config = OverlordConfig::load(&cli).unwrap();
        assert_eq!(config.worker_select_strategy, SelectStrategy::FillCapacity);
        assert_eq!(config.task_cleanup_timeout, Duration::from_secs(2));
        let bad = Cli::try_parse_from(["overlord", "--worker-select-strategy", "random"]).unwrap();
        assert!(OverlordConfig::load(&bad).is_err());
    }
}
