//! Turns ZooKeeper into runner messages: persistent recursive watches on the announcement and
//! status paths, plus a full read at every new session, after every reconnection (events can be
//! lost while disconnected) and every `resync_period` to repair anything missed.

use std::time::Duration;

use drover_core::{TaskAnnouncement, TaskId, Worker, WorkerHost};
use drover_zk::client::{
    AddWatchMode, Client, Error as ZkClientError, EventType, SessionState, WatchedEvent,
};
use drover_zk::{decode_json, ensure_path, with_timeout, ZkError, ZkPaths, ZkSession};
use tokio::sync::mpsc;

use super::effects::CALL_TIMEOUT;
use super::{RunnerMsg, WorkerEvent};

pub(crate) async fn run(
    session: ZkSession,
    paths: ZkPaths,
    resync_period: Duration,
    tx: mpsc::UnboundedSender<RunnerMsg>,
) {
    let mut sessions = session.subscribe();
    loop {
        let client = session.client().await;
        sessions.mark_unchanged();
        let watcher = Watcher {
            client: &client,
            paths: &paths,
            tx: &tx,
        };
        tokio::select! {
            result = watcher.watch(resync_period) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "ZooKeeper watch interrupted; starting again");
                }
            }
            _ = sessions.changed() => tracing::info!("ZooKeeper session replaced; re-arming watches"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Watcher<'a> {
    client: &'a Client,
    paths: &'a ZkPaths,
    tx: &'a mpsc::UnboundedSender<RunnerMsg>,
}

impl Watcher<'_> {
    async fn watch(&self, resync_period: Duration) -> Result<(), ZkError> {
        let (announcements, status) = (self.paths.announcements(), self.paths.status());
        ensure_path(self.client, &announcements).await?;
        ensure_path(self.client, &status).await?;
        ensure_path(self.client, &self.paths.tasks()).await?;
        // Watches first, then the full read: a change in between is seen twice, never missed.
        let mut workers_w = with_timeout(
            CALL_TIMEOUT,
            self.client
                .watch(&announcements, AddWatchMode::PersistentRecursive),
        )
        .await?;
        let mut status_w = with_timeout(
            CALL_TIMEOUT,
            self.client
                .watch(&status, AddWatchMode::PersistentRecursive),
        )
        .await?;
        self.full_sync().await?;
        let mut resync = tokio::time::interval(resync_period);
        resync.reset();
        loop {
            tokio::select! {
                event = workers_w.changed() => self.on_event(event, &announcements, true).await?,
                event = status_w.changed() => self.on_event(event, &status, false).await?,
                _ = resync.tick() => self.full_sync().await?,
            }
        }
    }

    fn send(&self, event: WorkerEvent) -> Result<(), ZkError> {
        self.tx
            .send(RunnerMsg::Worker(event))
            .map_err(|_| ZkError::NoSession)
    }

    async fn on_event(
        &self,
        event: WatchedEvent,
        root: &str,
        is_announcement: bool,
    ) -> Result<(), ZkError> {
        if event.event_type == EventType::Session {
            if event.session_state.is_terminated() {
                // Never poll a watcher again after a terminal event.
                return Err(ZkError::NoSession);
            }
            if event.session_state == SessionState::SyncConnected {
                // New watches and a full read, rather than trust the ones re-sent on reconnection.
                return Err(ZkError::Reconnected);
            }
            return Ok(());
        }
        let Some((worker, task)) = self.paths.split_under(root, &event.path) else {
            return Ok(());
        };
        let Ok(host) = WorkerHost::new(worker) else {
            return Ok(());
        };
        match (is_announcement, task, event.event_type) {
            (true, None, EventType::NodeCreated | EventType::NodeDataChanged) => {
                if let Some(worker) = self.read::<Worker>(&event.path).await? {
                    self.send(WorkerEvent::WorkerUpserted(worker))?;
                }
            }
            (true, None, EventType::NodeDeleted) => self.send(WorkerEvent::WorkerRemoved(host))?,
            (false, Some(_), EventType::NodeCreated | EventType::NodeDataChanged) => {
                if let Some(a) = self.read::<TaskAnnouncement>(&event.path).await? {
                    self.send(WorkerEvent::StatusUpserted(host, a))?;
                }
            }
            (false, Some(task), EventType::NodeDeleted) => {
                if let Ok(id) = TaskId::new(task) {
                    self.send(WorkerEvent::StatusRemoved(host, id))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads and decodes a znode; `None` if it is gone or unreadable (logged).
    async fn read<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ZkError> {
        match with_timeout(CALL_TIMEOUT, self.client.get_data(path)).await {
            Ok((data, _)) => match decode_json(&data) {
                Ok(v) => Ok(Some(v)),
                Err(e) => {
                    tracing::error!(%path, error = %e, "ignoring unreadable znode");
                    Ok(None)
                }
            },
            Err(ZkError::Client(ZkClientError::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn full_sync(&self) -> Result<(), ZkError> {
        let started = std::time::Instant::now();
        let tasks = self.paths.tasks();
        let mut assignments = Vec::new();
        for worker in with_timeout(CALL_TIMEOUT, self.client.list_children(&tasks)).await? {
            let Ok(host) = WorkerHost::new(worker.clone()) else {
                continue;
            };
            let ids = match with_timeout(
                CALL_TIMEOUT,
                self.client.list_children(&format!("{tasks}/{worker}")),
            )
            .await
            {
                Ok(c) => c.into_iter().filter_map(|c| TaskId::new(c).ok()).collect(),
                Err(ZkError::Client(ZkClientError::NoNode)) => continue,
                Err(e) => return Err(e),
            };
            assignments.push((host, ids));
        }
        let announcements = self.paths.announcements();
        let mut workers = Vec::new();
        for name in with_timeout(CALL_TIMEOUT, self.client.list_children(&announcements)).await? {
            if let Some(w) = self
                .read::<Worker>(&format!("{announcements}/{name}"))
                .await?
            {
                workers.push(w);
            }
        }
        let status = self.paths.status();
        let mut statuses = Vec::new();
        for worker in with_timeout(CALL_TIMEOUT, self.client.list_children(&status)).await? {
            let Ok(host) = WorkerHost::new(worker.clone()) else {
                continue;
            };
            let dir = format!("{status}/{worker}");
            let children = match with_timeout(CALL_TIMEOUT, self.client.list_children(&dir)).await {
                Ok(c) => c,
                Err(ZkError::Client(ZkClientError::NoNode)) => continue,
                Err(e) => return Err(e),
            };
            let mut list = Vec::new();
            for child in children {
                if let Some(a) = self
                    .read::<TaskAnnouncement>(&format!("{dir}/{child}"))
                    .await?
                {
                    list.push(a);
                }
            }
            statuses.push((host, list));
        }
        self.send(WorkerEvent::FullSync {
            started,
            assignments,
            workers,
            statuses,
        })
    }
}
