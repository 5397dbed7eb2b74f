//! The Drover middle manager: announces itself in ZooKeeper, runs assigned tasks in forked
//! `drover-peon` processes, and reports their status back through ZooKeeper.

pub mod config;
pub mod forking;
pub mod http;
pub mod http_worker;
mod journal;
pub mod launcher;
mod metrics;
pub mod monitor;
mod openapi;
pub mod restore;
pub mod spare_dirs;
pub mod worker_history;
pub mod zk_worker;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use drover_core::worker_sync::RunnerType;
use drover_core::{Worker, WorkerHost};
use drover_service::task_log_storage::TaskLogStorage;
use drover_zk::{ZkPaths, ZkSession};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::MiddleManagerConfig;
use crate::forking::PortPool;
use crate::monitor::StatusWrite;
use crate::monitor::{Monitor, MonitorConfig, Notice};
use crate::zk_worker::ZkWorker;

/// Runs until `stop` resolves, then stops every peon and flushes their statuses.
pub async fn run(
    mut config: MiddleManagerConfig,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    // Checked before anything is created; made again below with the port really listened on.
    WorkerHost::new(config.worker_host())?;
    std::fs::create_dir_all(&config.base_task_dir).with_context(|| {
        format!(
            "cannot create base_task_dir {}",
            config.base_task_dir.display()
        )
    })?;
    TaskLogStorage::from_location(&config.task_log_dir)?
        .prepare()
        .await?;
    let files = restore::WorkerFiles::open(&config.base_task_dir)
        .with_context(|| format!("cannot prepare {}", config.base_task_dir.display()))?;
    let peon = config.peon_command();
    anyhow::ensure!(
        peon.exists(),
        "peon binary {} not found (set peon_command)",
        peon.display()
    );

    let (listener, port) = drover_service::bind_listener(
        &config.bind_address,
        config.port,
        config.port_file.as_deref(),
    )
    .await?;
    // The worker id is host:port; with port 0 the kernel chose the port.
    config.port = port;
    let host = WorkerHost::new(config.worker_host())?;

    let session = ZkSession::start(config.zk_connect.clone(), config.zk_session_timeout);
    let zk = ZkWorker {
        session,
        paths: ZkPaths::new(&config.zk_base),
        host: host.clone(),
    };
    let overlords = Arc::new(std::sync::RwLock::new(Vec::new()));
    let overlords_file = config.base_task_dir.join("overlords.txt");
    tokio::spawn(discover_overlords(
        zk.session.clone(),
        zk.paths.overlord_latch(),
        overlords.clone(),
        overlords_file.clone(),
    ));
    let (writes_tx, writes_rx) = mpsc::unbounded_channel();
    let (notices_tx, notices_rx) = mpsc::channel(1024);
    let (enabled_tx, enabled_rx) = watch::channel(true);
    let task_logs = TaskLogStorage::from_location(&config.task_log_dir)?;

    let worker = Worker {
        scheme: config.tls.scheme().into(),
        host: host.to_string(),
        ip: config.host.clone(),
        capacity: config.capacity as i32,
        version: config.version.clone(),
        category: config.category.clone(),
    };
    let monitor = Monitor::new(
        MonitorConfig {
            worker_host: host.to_string(),
            host: config.host.clone(),
            peon_bind_address: config
                .peon_bind_address
                .clone()
                .unwrap_or_else(|| config.host.clone()),
            base_task_dir: config.base_task_dir.clone(),
            launcher: {
                let launcher = launcher::PeonLauncher::new(peon.clone(), config.peon_fork_server);
                launcher.start();
                Arc::new(launcher)
            },
            peon_command: peon,
            spare_dirs: Arc::new(
                spare_dirs::SpareDirs::new(&config.base_task_dir, 2 * config.capacity as usize)
                    .with_context(|| {
                        format!("cannot prepare {}", config.base_task_dir.display())
                    })?,
            ),
            task_logs: task_logs.clone(),
            shutdown_grace: config.task_shutdown_timeout,
            files: files.clone(),
            deep_storage: config.deep_storage.clone(),
            ingestion: config.ingestion.clone(),
            task_token_secret: config.security.task_token_secret(),
            tls: config.tls.clone(),
            overlords: overlords.clone(),
            overlords_file,
        },
        PortPool::new(config.peon_start_port, config.peon_end_port),
        writes_tx.clone(),
        notices_tx.clone(),
    );
    // The history is filled before the monitor starts, so finished tasks an earlier life kept
    // are reported again; it is served only in HTTP mode.
    let history = worker_history::WorkerHistory::new();
    let served_history = (config.runner_type == RunnerType::HttpRemote).then(|| history.clone());
    for done in files.read_completed() {
        history.update(done);
    }
    tokio::spawn(monitor.run(notices_rx));
    let writer = match config.runner_type {
        RunnerType::Remote => {
            let writer = tokio::spawn(zk.clone().run_writer(writes_rx));
            tokio::spawn(zk.run_announcer(
                worker,
                enabled_rx,
                notices_tx.clone(),
                writes_tx.clone(),
            ));
            writer
        }
        RunnerType::HttpRemote => {
            let writer = tokio::spawn(http_worker::run_status_writer(
                history.clone(),
                files.clone(),
                writes_rx,
            ));
            tokio::spawn(http_worker::follow_enabled(history.clone(), enabled_rx));
            tokio::spawn(http_worker::run_announcer(
                zk.session.clone(),
                zk.paths.clone(),
                host.clone(),
                worker,
            ));
            let client = drover_service::client::InternalClient {
                tls: config.tls.clone(),
                credentials: config.security.internal_credentials(),
            }
            .builder()
            .timeout(Duration::from_secs(30))
            .build()?;
            tokio::spawn(http_worker::clean_completed(
                history.clone(),
                files,
                overlords.clone(),
                client,
                config.completed_task_cleanup_period,
            ));
            writer
        }
    };
    tracing::info!(runner_type = ?config.runner_type, "taking tasks");

    let base_task_dir = config.base_task_dir.clone();
    let app = http::router(http::HttpState {
        worker_host: host.to_string(),
        enabled: enabled_tx,
        notices: notices_tx.clone(),
        base_task_dir: config.base_task_dir.clone(),
        task_logs,
    })
    .merge(match config.runner_type {
        RunnerType::HttpRemote => http_worker::router(http_worker::SyncState {
            history,
            notices: notices_tx.clone(),
        }),
        RunnerType::Remote => axum::Router::new(),
    })
    .merge(drover_service::status::routes(
        "drover-middle-manager",
        drover_service::status::properties_of(&config),
    ))
    .route(
        "/metrics",
        axum::routing::get(move || async move {
            // The running tasks' counts as of now, read from their attempt directories.
            let dir = base_task_dir.clone();
            tokio::task::spawn_blocking(move || metrics::refresh_live(&dir))
                .await
                .ok();
            drover_service::metrics::response()
        }),
    )
    .route("/openapi.json", axum::routing::get(openapi::openapi))
    // Only Drover's own processes call a middle manager: it takes the internal credentials.
    .layer(axum::middleware::from_fn_with_state(
        drover_service::auth::Authenticator::new(config.security.clone(), None),
        drover_service::auth::require_auth,
    ))
    .layer(axum::middleware::from_fn(
        drover_service::metrics::track_http,
    ));
    tracing::info!(worker = %host, capacity = config.capacity, "middle manager listening on {}:{}", config.bind_address, config.port);
    let (http_stop_tx, http_stop_rx) = oneshot::channel::<()>();
    let tls = config.tls.acceptor()?;
    let limits = config.server_limits();
    let server = tokio::spawn(async move {
        drover_service::http_server::serve(listener, app, limits, tls, async {
            http_stop_rx.await.ok();
        })
        .await
    });

    stop.await;
    tracing::info!("stopping running tasks");
    let (tx, rx) = oneshot::channel();
    let asked = notices_tx.send(Notice::StopAll { reply: tx }).await.is_ok();
    if asked
        && tokio::time::timeout(config.graceful_shutdown_timeout, rx)
            .await
            .is_err()
    {
        tracing::warn!(timeout = ?config.graceful_shutdown_timeout, "peons still running at the end of the graceful shutdown timeout");
    }
    let (tx, rx) = oneshot::channel();
    writes_tx.send(StatusWrite::Flush(tx)).ok();
    tokio::time::timeout(Duration::from_secs(10), rx).await.ok();
    // Over HTTP the overlord reads the last statuses from us: keep serving until it has.
    if let Some(history) = &served_history {
        if !history.wait_until_served(Duration::from_secs(10)).await {
            tracing::warn!("the overlord did not read the last task statuses before the middle manager stopped; they are kept in worker-journal.jsonl for its next start");
        }
        history.close();
    }
    writer.abort();
    http_stop_tx.send(()).ok();
    server.await.ok();
    Ok(())
}

/// Keeps the list of overlords (from the leader latch, leader first) that peons use for their
/// task actions, in memory and in a file peons re-read when no overlord answers (so a peon
/// started before the first overlord was found, or outliving every overlord it knew, finds the
/// current ones).
async fn discover_overlords(
    session: ZkSession,
    latch_dir: String,
    overlords: Arc<std::sync::RwLock<Vec<String>>>,
    file: std::path::PathBuf,
) {
    let mut first = true;
    loop {
        // Quickly until the first overlord is known (a task may arrive any moment), then calmly.
        let known = overlords.read().map(|o| !o.is_empty()).unwrap_or(false);
        if !first {
            let pause = if known { 2000 } else { 200 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        first = false;
        let Some(client) = session.try_client() else {
            continue;
        };
        match drover_zk::participants(&client, &latch_dir).await {
            Ok(found) if !found.is_empty() => {
                if let Ok(mut known) = overlords.write() {
                    if *known != found {
                        tracing::info!(overlords = ?found, "overlords for task actions");
                        let tmp = file.with_extension("tmp");
                        let written = std::fs::write(&tmp, found.join("\n"))
                            .and_then(|()| std::fs::rename(&tmp, &file));
                        if let Err(e) = written {
                            tracing::warn!(file = %file.display(), error = %e, "cannot write the overlords file");
                        }
                        *known = found;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot list the overlords"),
        }
    }
}
