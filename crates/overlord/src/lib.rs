//! The Drover overlord: Druid's indexing API over a TaskQueue and a RemoteTaskRunner that hands
//! tasks to middle managers through ZooKeeper. Several overlords elect one leader; the others
//! redirect to it.

pub mod actions;
pub mod compaction;
pub mod config;
pub mod http;
pub mod leader;
pub mod lockbox;
pub mod metrics;
pub mod queue;
pub mod retention;
mod retry;
pub mod runner;
pub mod scope;
mod sub_task_ended;
pub mod supervisor;

use anyhow::Context;
use drover_metadata::MetadataStore;
use drover_service::task_log_storage::TaskLogStorage;
use drover_zk::{ZkPaths, ZkSession};

use crate::config::OverlordConfig;
use crate::queue::QueueConfig;
use crate::runner::RunnerConfig;

/// Runs until `stop` resolves, then gives up leadership (so a follower takes over at once) and
/// stops serving.
pub async fn run(
    mut config: OverlordConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Some(path) = config.metadata_url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let task_logs = TaskLogStorage::from_location(&config.task_log_dir)?;
    task_logs.prepare().await?;
    let store = MetadataStore::connect(&config.metadata_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the metadata store {}",
                drover_metadata::redact(&config.metadata_url)
            )
        })?;
    let (listener, port) = drover_service::bind_listener(
        &config.bind_address,
        config.port,
        config.port_file.as_deref(),
    )
    .await?;
    // Port 0 asked the kernel for one: the leader URL names the port really listened on.
    config.port = port;

    let session = ZkSession::start(config.zk_connect.clone(), config.zk_session_timeout);
    let internal_client = drover_service::client::InternalClient {
        tls: config.tls.clone(),
        credentials: config.security.internal_credentials(),
    };
    internal_client.check()?;
    let tls = config.tls.acceptor()?;
    let authorization_store = store.clone();
    let authenticator = std::sync::Arc::new(
        drover_service::auth::Authenticator::new(
            config.security.clone(),
            Some(std::sync::Arc::new(http::basic_security::StoredUsers(
                store.clone(),
            ))),
        )
        .accepting_tasks(),
    );
    let leadership = leader::start(
        leader::ServiceConfig {
            runner: RunnerConfig {
                strategy: config.worker_select_strategy,
                min_worker_version: config.min_worker_version.clone(),
                task_assignment_timeout: config.task_assignment_timeout,
                task_cleanup_timeout: config.task_cleanup_timeout,
                task_shutdown_link_timeout: config.task_shutdown_link_timeout,
                max_retries_before_blacklist: config.max_retries_before_blacklist,
                worker_blacklist_backoff_time: config.worker_blacklist_backoff_time,
                max_percentage_blacklist_workers: config.max_percentage_blacklist_workers,
                // Only the ZooKeeper runner limits a task's size.
                max_znode_bytes: match config.runner_type {
                    drover_core::worker_sync::RunnerType::Remote => config.max_znode_bytes,
                    drover_core::worker_sync::RunnerType::HttpRemote => usize::MAX,
                },
                runner_type: config.runner_type,
                worker_sync_unstable_timeout: config.worker_sync_unstable_timeout,
                internal_client: internal_client.clone(),
            },
            queue: QueueConfig {
                max_size: config.queue_max_size as usize,
                storage_sync_period: config.storage_sync_period,
            },
            paths: ZkPaths::new(&config.zk_base),
            zk_resync_period: config.zk_resync_period,
            coordinator_period: config.coordinator_period,
            internal_client: internal_client.clone(),
            task_token_secret: config.security.task_token_secret(),
            auto_kill: config
                .kill_unused_segments
                .then_some(leader::AutoKillConfig {
                    period: config.kill_period,
                    buffer_period: config.kill_buffer_period,
                    duration_to_retain: config.kill_duration_to_retain,
                    max_segments: config.kill_max_segments,
                }),
        },
        store,
        session,
        config.advertised_url(),
    );
    let state = http::AppState {
        leadership: leadership.clone(),
        task_logs,
        http: internal_client
            .builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()?,
        max_task_payload_bytes: config.max_task_payload_bytes,
        // Only the ZooKeeper runner limits a task's size.
        max_znode_bytes: match config.runner_type {
            drover_core::worker_sync::RunnerType::Remote => config.max_znode_bytes,
            drover_core::worker_sync::RunnerType::HttpRemote => usize::MAX,
        },
        task_submit_timeout: config.task_submit_timeout,
        request_timeout: config.request_timeout,
        leader_probe_timeout: config.leader_probe_timeout,
        recently_finished_threshold: config.recently_finished_threshold,
        ingestion: config.ingestion.clone(),
        authenticator: authenticator.clone(),
        internal_client: internal_client.clone(),
        policies: std::sync::Arc::new(http::authorization::PolicyCache::new(authorization_store)),
    };
    let state_for_authorization = state.clone();
    let app = http::router(state.clone())
        // Served by every overlord itself, leader or not.
        .merge(http::local_routes(state))
        .merge(drover_service::status::routes(
            "drover-overlord",
            drover_service::status::properties_of(&OverlordConfig {
                metadata_url: drover_metadata::redact(&config.metadata_url),
                ..config.clone()
            }),
        ))
        // Inside authentication: the user is known.
        .layer(axum::middleware::from_fn_with_state(
            state_for_authorization,
            http::authorization::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            (*authenticator).clone(),
            drover_service::auth::require_auth,
        ))
        .layer(axum::middleware::from_fn(
            drover_service::metrics::track_http,
        ));
    tracing::info!(
        "overlord listening on {}:{} as {}",
        config.bind_address,
        config.port,
        config.advertised_url()
    );
    drover_service::http_server::serve(listener, app, config.server_limits(), tls, async move {
        stop.await;
        leadership.shutdown().await;
    })
    .await?;
    Ok(())
}
