//! The Drover overlord: Druid's indexing API over a TaskQueue and a RemoteTaskRunner that hands
//! tasks to middle managers through ZooKeeper.

pub mod config;
pub mod http;
pub mod queue;
pub mod runner;

use anyhow::Context;
use drover_core::task_logs::FileTaskLogs;
use drover_metadata::MetadataStore;
use drover_zk::{ZkPaths, ZkSession};
use tokio::sync::mpsc;

use crate::config::OverlordConfig;
use crate::queue::QueueConfig;
use crate::runner::RunnerConfig;

/// Runs until `stop` resolves.
pub async fn run(
    config: OverlordConfig,
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
    let store = MetadataStore::connect(&config.metadata_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the metadata store {}",
                drover_metadata::redact(&config.metadata_url)
            )
        })?;
    let listener = tokio::net::TcpListener::bind((config.bind_address.as_str(), config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.bind_address, config.port))?;

    let session = ZkSession::start(config.zk_connect.clone(), config.zk_session_timeout);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let runner = runner::start(
        RunnerConfig {
            strategy: config.worker_select_strategy,
            min_worker_version: config.min_worker_version.clone(),
            task_assignment_timeout: config.task_assignment_timeout,
            task_cleanup_timeout: config.task_cleanup_timeout,
            task_shutdown_link_timeout: config.task_shutdown_link_timeout,
            max_retries_before_blacklist: config.max_retries_before_blacklist,
            worker_blacklist_backoff_time: config.worker_blacklist_backoff_time,
            max_percentage_blacklist_workers: config.max_percentage_blacklist_workers,
        },
        session,
        ZkPaths::new(&config.zk_base),
        config.zk_resync_period,
        events_tx,
    );
    // The dynamic worker config (POST /worker) outlives restarts.
    match store.get_config(runner::select::WORKER_CONFIG_KEY).await {
        Ok(Some(bytes)) => match runner::select::WorkerBehaviorConfig::parse(&bytes) {
            Ok(c) => {
                runner.set_selection(Some(runner::select::Selection::from(&c.select_strategy)))
            }
            Err(e) => {
                tracing::error!(error = %e, "stored worker config is unreadable; using worker_select_strategy")
            }
        },
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot read the worker config; using worker_select_strategy")
        }
    }
    let queue = queue::start(
        QueueConfig {
            max_size: config.queue_max_size as usize,
            storage_sync_period: config.storage_sync_period,
        },
        store.clone(),
        runner.clone(),
        events_rx,
    );
    let app = http::router(http::AppState {
        store,
        queue,
        runner,
        task_logs: FileTaskLogs::new(&config.task_log_dir),
        http: reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()?,
        advertised_url: config.advertised_url(),
        max_task_payload_bytes: config.max_task_payload_bytes,
        recently_finished_threshold: config.recently_finished_threshold,
    });
    tracing::info!(
        "overlord listening on {}:{} as {}",
        config.bind_address,
        config.port,
        config.advertised_url()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await?;
    Ok(())
}
