//! Turns middle managers into runner messages for the HTTP runner (Druid's HttpRemoteTaskRunner
//! with its `WorkerHolder`s): workers are found through node discovery in ZooKeeper
//! (`${base}/internal-discovery/MIDDLE_MANAGER`), and each one gets a sync loop that long-polls
//! its change history: a full snapshot first, then the changes after the last counter.
//!
//! A worker whose sync fails for `unstable_timeout` counts as gone, exactly as if it had left
//! discovery: its tasks wait `taskCleanupTimeout` for it to come back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use drover_core::worker_sync::{
    ChangeCounter, ChangeRequestsSnapshot, DiscoveryDruidNode, WorkerHistoryItem,
    MIDDLE_MANAGER_ROLE,
};
use drover_core::{TaskId, Worker, WorkerHost, DISABLED_WORKER_VERSION};
use drover_zk::client::{AddWatchMode, Client, Error as ZkClientError, EventType};
use drover_zk::{decode_json, ensure_path, with_timeout, ZkError, ZkPaths, ZkSession};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::effects::CALL_TIMEOUT;
use super::{RunnerMsg, WorkerEvent};

/// How long a worker holds a sync request open waiting for a change.
const SYNC_WAIT: Duration = Duration::from_secs(30);
/// How long the first sync of every worker may take before the runner starts without it.
const FIRST_SYNC_WAIT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub(crate) struct SyncConfig {
    pub client: drover_service::client::InternalClient,
    pub unstable_timeout: Duration,
    pub scope: crate::scope::LeaderScope,
}

/// Watches discovery for the leadership term, keeping one sync loop per worker.
pub(crate) async fn run(
    session: ZkSession,
    paths: ZkPaths,
    resync_period: Duration,
    config: SyncConfig,
    tx: mpsc::UnboundedSender<RunnerMsg>,
) {
    let http = config
        .client
        .builder()
        .timeout(SYNC_WAIT + CALL_TIMEOUT)
        .build()
        .expect("HTTP client");
    let mut discovery = Discovery {
        dir: paths.discovery(MIDDLE_MANAGER_ROLE),
        loops: HashMap::new(),
        http,
        config,
        tx,
        synced: false,
    };
    let mut sessions = session.subscribe();
    loop {
        let client = session.client().await;
        sessions.mark_unchanged();
        tokio::select! {
            result = discovery.watch(&client, resync_period) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "node-discovery watch interrupted; starting again");
                }
            }
            _ = sessions.changed() => tracing::info!("ZooKeeper session replaced; re-arming the discovery watch"),
        }
        if discovery.tx.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Discovery {
    dir: String,
    /// The worker each sync loop was started for, and how to stop it.
    loops: HashMap<WorkerHost, (Worker, CancellationToken)>,
    http: reqwest::Client,
    config: SyncConfig,
    tx: mpsc::UnboundedSender<RunnerMsg>,
    /// Whether the runner has been told it knows every worker.
    synced: bool,
}

impl Discovery {
    async fn watch(&mut self, client: &Client, resync_period: Duration) -> Result<(), ZkError> {
        ensure_path(client, &self.dir).await?;
        // Watch first, then list: a change in between is seen twice, never missed.
        let mut watcher = with_timeout(
            CALL_TIMEOUT,
            client.watch(&self.dir, AddWatchMode::PersistentRecursive),
        )
        .await?;
        let first = self.relist(client).await?;
        if !self.synced {
            // The queue decides what to restart once the runner is ready: it must know what
            // every reachable worker runs by then.
            let deadline = tokio::time::Instant::now() + FIRST_SYNC_WAIT;
            for answered in first {
                tokio::time::timeout_at(deadline, answered).await.ok();
            }
            self.synced = true;
            self.send(WorkerEvent::Synced)?;
        }
        let mut resync = tokio::time::interval(resync_period);
        resync.reset();
        loop {
            tokio::select! {
                event = watcher.changed() => {
                    if event.event_type == EventType::Session {
                        if event.session_state.is_terminated() {
                            return Err(ZkError::NoSession);
                        }
                        if event.session_state == drover_zk::client::SessionState::SyncConnected {
                            return Err(ZkError::Reconnected);
                        }
                        continue;
                    }
                    // Discovery changes seldom: read it all again.
                    self.relist(client).await?;
                }
                _ = resync.tick() => { self.relist(client).await?; }
            }
        }
    }

    fn send(&self, event: WorkerEvent) -> Result<(), ZkError> {
        self.tx
            .send(RunnerMsg::Worker(event))
            .map_err(|_| ZkError::NoSession)
    }

    /// Reads discovery and makes the sync loops match it; answers when each new loop has
    /// heard from its worker once (or failed to).
    async fn relist(&mut self, client: &Client) -> Result<Vec<oneshot::Receiver<()>>, ZkError> {
        let mut found: HashMap<WorkerHost, Worker> = HashMap::new();
        for name in with_timeout(CALL_TIMEOUT, client.list_children(&self.dir)).await? {
            let path = format!("{}/{name}", self.dir);
            let data = match with_timeout(CALL_TIMEOUT, client.get_data(&path)).await {
                Ok((data, _)) => data,
                Err(ZkError::Client(ZkClientError::NoNode)) => continue,
                Err(e) => return Err(e),
            };
            let worker = match decode_json::<DiscoveryDruidNode>(&data) {
                Ok(node) => node.worker(),
                Err(e) => {
                    tracing::error!(%path, error = %e, "ignoring unreadable discovery entry");
                    continue;
                }
            };
            let Some(worker) = worker else { continue };
            match WorkerHost::new(worker.host.clone()) {
                Ok(host) => {
                    found.insert(host, worker);
                }
                Err(e) => {
                    tracing::error!(%path, error = %e, "ignoring worker with an invalid host")
                }
            }
        }
        let gone: Vec<WorkerHost> = self
            .loops
            .keys()
            .filter(|h| !found.contains_key(*h))
            .cloned()
            .collect();
        for host in gone {
            if let Some((_, stop)) = self.loops.remove(&host) {
                stop.cancel();
            }
            tracing::warn!(worker = %host, "worker left node discovery");
            self.send(WorkerEvent::WorkerRemoved(host))?;
        }
        let mut first = Vec::new();
        for (host, worker) in found {
            if self.loops.get(&host).is_some_and(|(w, _)| *w == worker) {
                continue;
            }
            if let Some((_, stop)) = self.loops.remove(&host) {
                stop.cancel();
            }
            let stop = CancellationToken::new();
            let (answered, rx) = oneshot::channel();
            first.push(rx);
            let sync = WorkerSync {
                host: host.clone(),
                worker: worker.clone(),
                http: self.http.clone(),
                tx: self.tx.clone(),
                unstable_timeout: self.config.unstable_timeout,
            };
            let token = stop.clone();
            self.config.scope.spawn(async move {
                token.run_until_cancelled(sync.run(answered)).await;
            });
            self.loops.insert(host, (worker, stop));
        }
        Ok(first)
    }
}

/// One worker's sync loop (Druid's `ChangeRequestHttpSyncer`).
struct WorkerSync {
    host: WorkerHost,
    worker: Worker,
    http: reqwest::Client,
    tx: mpsc::UnboundedSender<RunnerMsg>,
    unstable_timeout: Duration,
}

impl WorkerSync {
    fn send(&self, event: WorkerEvent) -> bool {
        self.tx.send(RunnerMsg::Worker(event)).is_ok()
    }

    /// The worker as the runner sees it: a disabled one carries the disabled version.
    fn worker(&self, disabled: bool) -> Worker {
        let mut w = self.worker.clone();
        if disabled {
            w.version = DISABLED_WORKER_VERSION.to_string();
        }
        w
    }

    async fn fetch(
        &self,
        counter: Option<ChangeCounter>,
    ) -> Result<Option<ChangeRequestsSnapshot>, String> {
        let (c, h) = counter.map(|c| (c.counter, c.hash)).unwrap_or((-1, 0));
        let url = format!(
            "{}/druid-internal/v1/worker?counter={c}&hash={h}&timeout={}",
            self.worker.base_url(),
            SYNC_WAIT.as_millis()
        );
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match response.status() {
            reqwest::StatusCode::NO_CONTENT => Ok(None),
            s if s.is_success() => response
                .json::<ChangeRequestsSnapshot>()
                .await
                .map(Some)
                .map_err(|e| e.to_string()),
            s => Err(format!(
                "{url} answered {s}: {}",
                response.text().await.unwrap_or_default()
            )),
        }
    }

    async fn run(self, answered: oneshot::Sender<()>) {
        let mut answered = Some(answered);
        let mut counter: Option<ChangeCounter> = None;
        let mut disabled = false;
        let mut failing_since: Option<Instant> = None;
        let mut lost = false;
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let answer = self.fetch(counter).await;
            // Heard from, or found unreachable: either way the runner need not wait for it.
            if let Some(a) = answered.take() {
                a.send(()).ok();
            }
            let snapshot = match answer {
                Ok(None) => {
                    failing_since = None;
                    continue;
                }
                Ok(Some(s)) => s,
                Err(e) => {
                    let since = *failing_since.get_or_insert(started);
                    tracing::debug!(worker = %self.host, error = %e, "worker sync failed");
                    if !lost && since.elapsed() >= self.unstable_timeout {
                        tracing::warn!(worker = %self.host, error = %e, failing_for = ?since.elapsed(), "worker sync keeps failing; the worker counts as gone");
                        lost = true;
                        // It is read whole again when it answers.
                        counter = None;
                        if !self.send(WorkerEvent::WorkerRemoved(self.host.clone())) {
                            return;
                        }
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            failing_since = None;
            backoff = Duration::from_millis(100);
            if snapshot.reset_counter {
                tracing::info!(worker = %self.host, cause = ?snapshot.reset_cause, "worker asked for a full sync");
                counter = None;
                continue;
            }
            let items = snapshot.requests.unwrap_or_default();
            let alive = if counter.is_none() {
                if lost {
                    tracing::info!(worker = %self.host, "worker sync works again");
                    lost = false;
                }
                let mut statuses = Vec::new();
                for item in items {
                    match item {
                        WorkerHistoryItem::Metadata { disabled: d } => disabled = d,
                        WorkerHistoryItem::TaskUpdate { task_announcement } => {
                            statuses.push(*task_announcement)
                        }
                        WorkerHistoryItem::TaskRemoval { .. } => {}
                    }
                }
                self.send(WorkerEvent::WorkerSnapshot {
                    started,
                    worker: self.worker(disabled),
                    statuses,
                })
            } else {
                items.into_iter().all(|item| match item {
                    WorkerHistoryItem::Metadata { disabled: d } => {
                        disabled = d;
                        self.send(WorkerEvent::WorkerUpserted(self.worker(disabled)))
                    }
                    WorkerHistoryItem::TaskUpdate { task_announcement } => self.send(
                        WorkerEvent::StatusUpserted(self.host.clone(), *task_announcement),
                    ),
                    WorkerHistoryItem::TaskRemoval { task_id } => match TaskId::new(task_id) {
                        Ok(id) => self.send(WorkerEvent::StatusRemoved(self.host.clone(), id)),
                        Err(_) => true,
                    },
                })
            };
            if !alive {
                return;
            }
            counter = snapshot.counter;
        }
    }
}
