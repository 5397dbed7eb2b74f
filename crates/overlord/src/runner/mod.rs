//! The task runner (see docs/architecture.md): one task owns all runner state — pending tasks,
//! assignments, workers and what they report — and is fed messages by the TaskQueue, a watcher
//! and its own timer. Two transports sit behind it, chosen by `runner_type`: Druid's
//! RemoteTaskRunner (assignments and statuses as znodes, `zk_watch.rs`) and its
//! HttpRemoteTaskRunner (workers found through node discovery, assigned over HTTP and synced by
//! long polling, `http_sync.rs`). Their watchers speak the same `WorkerEvent`s and their I/O is
//! the same `Effect`s, so every decision is shared. Writes and calls are spawned, so the loop
//! never waits on I/O; their outcome comes back as messages.

mod blacklist;
mod effects;
pub mod http_sync;
pub mod select;
mod state;
pub mod zk_watch;

use std::sync::Arc;
use std::time::Duration;

use drover_core::worker_sync::RunnerType;
use drover_core::{TaskAnnouncement, TaskId, TaskStatus, Worker, WorkerHost};
use drover_task::Task;
use drover_zk::{ZkPaths, ZkSession};
use tokio::sync::{mpsc, oneshot};

pub use state::{RunnerSnapshot, RunnerTaskView, WorkerView};

use self::effects::Transport;
use self::select::SelectStrategy;
use self::state::RunnerState;

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// How the runner calls middle managers (TLS, internal credentials).
    pub internal_client: drover_service::client::InternalClient,
    pub strategy: SelectStrategy,
    pub min_worker_version: String,
    pub task_assignment_timeout: Duration,
    pub task_cleanup_timeout: Duration,
    pub task_shutdown_link_timeout: Duration,
    /// Blacklisting (see docs/architecture.md): failures in a row tolerated, how long a blacklisting lasts, and the
    /// largest share of workers that may be blacklisted.
    pub max_retries_before_blacklist: u32,
    pub worker_blacklist_backoff_time: Duration,
    pub max_percentage_blacklist_workers: u32,
    /// Largest task JSON written into an assignment znode (`druid.indexer.runner.maxZnodeBytes`).
    /// ZooKeeper drops the session of a client that writes more than its packet limit (1 MiB),
    /// so a larger task is failed here instead of taking the overlord's session down.
    pub max_znode_bytes: usize,
    /// ZooKeeper (`remote`) or HTTP (`httpRemote`).
    pub runner_type: RunnerType,
    /// HTTP runner: a worker whose sync has failed this long counts as gone.
    pub worker_sync_unstable_timeout: Duration,
}

/// Druid's default `druid.indexer.runner.maxZnodeBytes`.
pub const DEFAULT_MAX_ZNODE_BYTES: usize = 512 * 1024;

/// Why a task cannot be handed to a worker through ZooKeeper, if it cannot.
pub fn znode_too_large(task_json_len: usize, max_znode_bytes: usize) -> Option<String> {
    (task_json_len > max_znode_bytes).then(|| {
        format!(
            "Task payload is {task_json_len} bytes, larger than the {max_znode_bytes} bytes a task \
             may take in ZooKeeper (max_znode_bytes, Druid's druid.indexer.runner.maxZnodeBytes)"
        )
    })
}

/// Which of the runner's tasks a query wants.
#[derive(Debug, Clone)]
pub enum TaskFilter {
    One(TaskId),
    Ids(Vec<TaskId>),
    InStates(Vec<drover_core::RunnerTaskState>),
    All,
}

/// What the runner tells the TaskQueue.
#[derive(Debug)]
pub enum RunnerEvent {
    /// The runner has read ZooKeeper once and knows which tasks are already running.
    Ready,
    /// A task's status changed: RUNNING (with its location) or terminal.
    Status(TaskStatus),
}

/// What ZooKeeper told the watcher.
#[derive(Debug)]
pub enum WorkerEvent {
    WorkerUpserted(Worker),
    WorkerRemoved(WorkerHost),
    StatusUpserted(WorkerHost, TaskAnnouncement),
    StatusRemoved(WorkerHost, TaskId),
    /// One worker's whole state, read over HTTP at `started` (its first sync, or after a reset).
    WorkerSnapshot {
        started: std::time::Instant,
        worker: Worker,
        statuses: Vec<TaskAnnouncement>,
    },
    /// The HTTP watcher has heard from every worker in discovery once (or given up on it).
    Synced,
    /// Everything under the assignment, announcement and status paths, read in one pass that
    /// began at `started`. Assignments are read first: a worker writes a task's status before it
    /// deletes the assignment, so a task is never missing from both lists.
    FullSync {
        started: std::time::Instant,
        assignments: Vec<(WorkerHost, Vec<TaskId>)>,
        workers: Vec<Worker>,
        statuses: Vec<(WorkerHost, Vec<TaskAnnouncement>)>,
    },
}

#[derive(Debug)]
pub(crate) enum RunnerMsg {
    Run(Arc<Task>),
    Shutdown {
        id: TaskId,
        reason: String,
    },
    /// The queue has persisted a terminal status: forget the task and delete its status znode.
    Cleanup(TaskId),
    Snapshot(oneshot::Sender<RunnerSnapshot>),
    /// The tasks the filter picks, without the workers' summaries.
    Tasks(TaskFilter, oneshot::Sender<Vec<RunnerTaskView>>),
    /// The dynamic worker config changed (`None`: back to the static strategy).
    SetSelection(Option<select::Selection>),
    Worker(WorkerEvent),
    /// The worker recorded the assignment (HTTP runner).
    AssignAcked {
        id: TaskId,
        worker: WorkerHost,
    },
    /// The assignment's answer was lost after it was sent (HTTP runner): the worker may have it.
    AssignUncertain {
        id: TaskId,
        worker: WorkerHost,
        error: String,
    },
    /// The assignment could not be made: put the task back.
    AssignFailed {
        id: TaskId,
        worker: WorkerHost,
        error: String,
    },
}

#[derive(Clone)]
pub struct RunnerHandle {
    tx: mpsc::UnboundedSender<RunnerMsg>,
}

impl RunnerHandle {
    pub fn run(&self, task: Arc<Task>) {
        self.tx.send(RunnerMsg::Run(task)).ok();
    }

    pub fn shutdown(&self, id: TaskId, reason: impl Into<String>) {
        self.tx
            .send(RunnerMsg::Shutdown {
                id,
                reason: reason.into(),
            })
            .ok();
    }

    pub fn cleanup(&self, id: TaskId) {
        self.tx.send(RunnerMsg::Cleanup(id)).ok();
    }

    pub fn set_selection(&self, selection: Option<select::Selection>) {
        self.tx.send(RunnerMsg::SetSelection(selection)).ok();
    }

    /// The tasks the filter picks: cheaper than a snapshot when a route needs a few.
    pub async fn tasks(&self, filter: TaskFilter) -> Option<Vec<RunnerTaskView>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(RunnerMsg::Tasks(filter, tx)).ok()?;
        rx.await.ok()
    }

    pub async fn snapshot(&self) -> Option<RunnerSnapshot> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(RunnerMsg::Snapshot(tx)).ok()?;
        rx.await.ok()
    }
}

/// Starts the runner and its ZooKeeper watcher; events for the queue go to `events`.
pub fn start(
    config: RunnerConfig,
    session: ZkSession,
    paths: ZkPaths,
    resync_period: Duration,
    events: mpsc::UnboundedSender<RunnerEvent>,
    scope: crate::scope::LeaderScope,
) -> RunnerHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = RunnerHandle { tx: tx.clone() };
    let transport = match config.runner_type {
        RunnerType::Remote => Transport::Zk {
            session: session.clone(),
            paths: paths.clone(),
        },
        RunnerType::HttpRemote => Transport::Http,
    };
    let runner_type = config.runner_type;
    let sync = http_sync::SyncConfig {
        client: config.internal_client.clone(),
        unstable_timeout: config.worker_sync_unstable_timeout,
        scope: scope.clone(),
    };
    let state = RunnerState::new(config, transport, events, tx.clone(), scope.clone());
    scope.spawn(state.run(rx));
    match runner_type {
        RunnerType::Remote => scope.spawn(zk_watch::run(session, paths, resync_period, tx)),
        RunnerType::HttpRemote => {
            scope.spawn(http_sync::run(session, paths, resync_period, sync, tx))
        }
    };
    handle
}
