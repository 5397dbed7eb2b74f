//! The middle manager's side of ZooKeeper (Druid's WorkerCuratorCoordinator + the task watch of
//! WorkerTaskMonitor): announce this worker as an ephemeral znode, watch `tasksPath/<self>` for
//! assignments, and write status znodes in order.

use std::time::Duration;

use drover_core::{
    TaskAnnouncement, TaskId, TaskStatus, Worker, WorkerHost, DISABLED_WORKER_VERSION,
};
use drover_task::Task;
use drover_zk::client::{
    Acls, AddWatchMode, Client, CreateMode, Error as ZkClientError, EventType, SessionState,
};
use drover_zk::{
    claim_ephemeral, decode_json, encode_json, ensure_path, with_timeout, ZkError, ZkPaths,
    ZkSession, CALL_TIMEOUT,
};
use tokio::sync::{mpsc, watch};

use crate::monitor::{Notice, StatusWrite};

const RETRY_DELAY: Duration = Duration::from_millis(500);
const ASSIGNMENT_RELIST_PERIOD: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct ZkWorker {
    pub session: ZkSession,
    pub paths: ZkPaths,
    pub host: WorkerHost,
}

impl ZkWorker {
    /// Applies writes one by one, retrying each until it succeeds: a status the overlord never
    /// sees would leave a task running forever in its eyes.
    pub async fn run_writer(self, mut writes: mpsc::UnboundedReceiver<StatusWrite>) {
        while let Some(write) = writes.recv().await {
            if let StatusWrite::Flush(reply) = write {
                reply.send(()).ok();
                continue;
            }
            loop {
                let client = self.session.client().await;
                match self.apply(&client, &write).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, ?write, "ZooKeeper write failed; retrying");
                        tokio::time::sleep(RETRY_DELAY).await;
                    }
                }
            }
        }
    }

    async fn apply(&self, client: &Client, write: &StatusWrite) -> Result<(), ZkError> {
        match write {
            StatusWrite::Status(announcement) => {
                let path = self.paths.task_status(&self.host, &announcement.id);
                create_or_set(
                    client,
                    &path,
                    &encode_json(announcement),
                    CreateMode::Persistent,
                )
                .await
            }
            StatusWrite::DeleteAssignment(id) => {
                match with_timeout(
                    CALL_TIMEOUT,
                    client.delete(&self.paths.task(&self.host, id), None),
                )
                .await
                {
                    Ok(()) | Err(ZkError::Client(ZkClientError::NoNode)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            StatusWrite::Flush(_) => Ok(()),
        }
    }

    /// Announces the worker and watches for assignments, once per ZooKeeper session.
    pub async fn run_announcer(
        self,
        worker: Worker,
        mut enabled: watch::Receiver<bool>,
        notices: mpsc::Sender<Notice>,
        writes: mpsc::UnboundedSender<StatusWrite>,
    ) {
        let mut first_session = true;
        let mut sessions = self.session.subscribe();
        loop {
            let client = self.session.client().await;
            sessions.mark_unchanged();
            let result = self
                .serve_session(
                    &client,
                    &worker,
                    &mut enabled,
                    &notices,
                    &writes,
                    first_session,
                    &mut sessions,
                )
                .await;
            match result {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "worker announcement interrupted; re-announcing")
                }
            }
            first_session = false;
            tokio::time::sleep(RETRY_DELAY).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn serve_session(
        &self,
        client: &Client,
        worker: &Worker,
        enabled: &mut watch::Receiver<bool>,
        notices: &mpsc::Sender<Notice>,
        writes: &mpsc::UnboundedSender<StatusWrite>,
        first_session: bool,
        sessions: &mut watch::Receiver<Option<Client>>,
    ) -> Result<(), ZkError> {
        let tasks_dir = self.paths.worker_tasks(&self.host);
        ensure_path(client, &tasks_dir).await?;
        ensure_path(client, &self.paths.worker_status(&self.host)).await?;
        ensure_path(client, &self.paths.announcements()).await?;
        if first_session {
            self.cancel_stale_statuses(client, writes, notices).await?;
        }
        let on = *enabled.borrow_and_update();
        self.announce(client, worker, on).await?;
        tracing::info!(worker = %self.host, "announced in ZooKeeper");

        // Watch first, then list: an assignment made in between is seen twice, never missed
        // (the monitor ignores tasks it already has).
        let mut watcher = with_timeout(
            CALL_TIMEOUT,
            client.watch(&tasks_dir, AddWatchMode::PersistentRecursive),
        )
        .await?;
        self.read_all_assignments(client, &tasks_dir, notices)
            .await?;
        let mut relist = tokio::time::interval(ASSIGNMENT_RELIST_PERIOD);
        relist.reset();
        loop {
            tokio::select! {
                event = watcher.changed() => match event.event_type {
                    EventType::NodeCreated | EventType::NodeDataChanged => {
                        if let Some((_, Some(task))) = self.paths.split_under(&self.paths.tasks(), &event.path) {
                            self.read_assignment(client, task, notices).await?;
                        }
                    }
                    EventType::Session => {
                        if event.session_state.is_terminated() {
                            return Err(ZkError::NoSession);
                        }
                        if event.session_state == SessionState::SyncConnected {
                            // Events can be lost across a reconnection: new watch, new listing.
                            return Err(ZkError::Reconnected);
                        }
                    }
                    _ => {}
                },
                changed = enabled.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let on = *enabled.borrow_and_update();
                    self.announce(client, worker, on).await?;
                    tracing::info!(enabled = on, "worker announcement updated");
                }
                _ = sessions.changed() => return Err(ZkError::NoSession),
                // A backstop for any event missed anyway: assignments are re-listed regularly.
                _ = relist.tick() => self.read_all_assignments(client, &tasks_dir, notices).await?,
            }
        }
    }

    async fn announce(
        &self,
        client: &Client,
        worker: &Worker,
        enabled: bool,
    ) -> Result<(), ZkError> {
        let mut worker = worker.clone();
        if !enabled {
            worker.version = DISABLED_WORKER_VERSION.to_string();
        }
        let path = self.paths.worker_announcement(&self.host);
        let data = encode_json(&worker);
        claim_ephemeral(client, &path, &data).await
    }

    /// Druid's WorkerTaskMonitor start: status znodes saying RUNNING for tasks this process does
    /// not run (it just started) are rewritten as FAILED, so the overlord stops waiting for them.
    async fn cancel_stale_statuses(
        &self,
        client: &Client,
        writes: &mpsc::UnboundedSender<StatusWrite>,
        notices: &mpsc::Sender<Notice>,
    ) -> Result<(), ZkError> {
        // Tasks this process runs again or already reported (restore.json, the journal).
        let (tx, rx) = tokio::sync::oneshot::channel();
        notices
            .send(Notice::KnownTasks { reply: tx })
            .await
            .map_err(|_| ZkError::NoSession)?;
        let known = rx.await.map_err(|_| ZkError::NoSession)?;
        let dir = self.paths.worker_status(&self.host);
        for name in with_timeout(CALL_TIMEOUT, client.list_children(&dir)).await? {
            let Ok((data, _)) =
                with_timeout(CALL_TIMEOUT, client.get_data(&format!("{dir}/{name}"))).await
            else {
                continue;
            };
            let Ok(announcement) = decode_json::<TaskAnnouncement>(&data) else {
                continue;
            };
            if known.contains(&announcement.id) {
                continue;
            }
            if announcement.status.is_complete() {
                continue;
            }
            tracing::warn!(task = %announcement.id, "task from a previous life of this worker is not running; marking it FAILED");
            let status = TaskStatus::failure(
                announcement.id.clone(),
                "Canceled as unknown task. See middleManager or indexer logs for more details.",
            )
            .with_location(announcement.task_location.clone());
            let failed = TaskAnnouncement {
                status: status.status,
                task_status: Some(status),
                ..announcement
            };
            writes.send(StatusWrite::Status(Box::new(failed))).ok();
        }
        Ok(())
    }

    async fn read_all_assignments(
        &self,
        client: &Client,
        dir: &str,
        notices: &mpsc::Sender<Notice>,
    ) -> Result<(), ZkError> {
        for name in with_timeout(CALL_TIMEOUT, client.list_children(dir)).await? {
            self.read_assignment(client, &name, notices).await?;
        }
        Ok(())
    }

    async fn read_assignment(
        &self,
        client: &Client,
        name: &str,
        notices: &mpsc::Sender<Notice>,
    ) -> Result<(), ZkError> {
        let Ok(id) = TaskId::new(name) else {
            tracing::error!(znode = name, "ignoring assignment with an invalid task id");
            return Ok(());
        };
        let data = match with_timeout(
            CALL_TIMEOUT,
            client.get_data(&self.paths.task(&self.host, &id)),
        )
        .await
        {
            Ok((data, _)) => data,
            // Withdrawn (the overlord's session ended) before we read it.
            Err(ZkError::Client(ZkClientError::NoNode)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let notice = match decode_json::<Task>(&data) {
            Ok(task) if task.id == id => Notice::Assigned(task),
            Ok(task) => Notice::BadAssignment {
                id,
                error: format!("znode holds task [{}]", task.id),
            },
            Err(e) => Notice::BadAssignment {
                id,
                error: e.to_string(),
            },
        };
        notices.send(notice).await.map_err(|_| ZkError::NoSession)
    }
}

async fn create_or_set(
    client: &Client,
    path: &str,
    data: &[u8],
    mode: CreateMode,
) -> Result<(), ZkError> {
    loop {
        match with_timeout(CALL_TIMEOUT, client.set_data(path, data, None)).await {
            Ok(_) => return Ok(()),
            Err(ZkError::Client(ZkClientError::NoNode)) => {}
            Err(e) => return Err(e),
        }
        let options = mode.with_acls(Acls::anyone_all());
        match with_timeout(CALL_TIMEOUT, client.create(path, data, &options)).await {
            Ok(_) => return Ok(()),
            Err(ZkError::Client(ZkClientError::NodeExists)) => continue,
            Err(e) => return Err(e),
        }
    }
}
