//! WorkerTaskMonitor: one task owns every running peon and decides everything about them, fed by
//! notices from ZooKeeper (assignments), from peon supervisors (exits) and from the HTTP API
//! (shutdowns). It never blocks on ZooKeeper: status writes go to the ordered writer.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_core::{TaskAnnouncement, TaskId, TaskLocation, TaskResource, TaskStatus};
use drover_service::task_log_storage::TaskLogStorage;
use drover_task::Task;
use tokio::sync::{mpsc, oneshot};

use crate::forking::{self, Control, PortPool, TaskDir};
use crate::launcher::PeonLauncher;
use crate::restore::WorkerFiles;
use crate::spare_dirs::SpareDirs;

/// How many finished task ids are remembered, so a repeated assignment is not run twice.
const COMPLETED_MEMORY: usize = 10_000;

/// Task types a restarted middle manager runs again instead of failing, as Druid restores its
/// streaming tasks: an `index_kafka` peon keeps its sequences in `<taskDir>/persist`, and a new
/// one reads again from the start of the first unpublished sequence, so nothing is lost or
/// published twice.
pub fn restorable(task_type: &str) -> bool {
    task_type == "index_kafka"
}

/// What the monitor reports, in order (RUNNING before SUCCESS of the same task), to whichever
/// runner protocol the worker speaks: status znodes in ZooKeeper, or the change history the
/// HTTP runner syncs.
#[derive(Debug)]
pub enum StatusWrite {
    Status(Box<TaskAnnouncement>),
    /// The assignment is taken: its znode can go (ZooKeeper only).
    DeleteAssignment(TaskId),
    /// Answered once every earlier write is done (used when stopping).
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
pub enum Notice {
    /// The overlord assigned a task (RunNotice).
    Assigned(Task),
    /// The overlord assigned a task over HTTP (`assignTask`): answered once the assignment is
    /// recorded, so the overlord's success means the worker has it.
    /// `false` when the worker is stopping and did not take it.
    AssignedOverHttp {
        task: Task,
        reply: oneshot::Sender<bool>,
    },
    /// An assignment znode could not be read as a task.
    BadAssignment { id: TaskId, error: String },
    /// A peon exited (StatusNotice).
    Exited { id: TaskId, status: TaskStatus },
    /// Shut a task down: SIGTERM, then SIGKILL.
    Shutdown {
        id: TaskId,
        reply: oneshot::Sender<()>,
    },
    /// Running task ids.
    ListTasks { reply: oneshot::Sender<Vec<TaskId>> },
    /// Stop every peon and wait for them (middle manager shutdown).
    StopAll { reply: oneshot::Sender<()> },
    /// Ids of tasks running or finished here (so start-up does not cancel them as unknown).
    KnownTasks {
        reply: oneshot::Sender<std::collections::HashSet<TaskId>>,
    },
}

/// Why a peon could not be started for an assigned task (its task then fails with this).
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("no free port left in the peon port range")]
    NoPort,
    #[error("cannot prepare the task directory: {0}")]
    TaskDir(std::io::Error),
    #[error("cannot start {}: {error}", peon.display())]
    Spawn {
        peon: PathBuf,
        error: std::io::Error,
    },
}

pub struct MonitorConfig {
    pub worker_host: String,
    /// Host part of `worker_host`, for peon locations.
    pub host: String,
    /// Where peons bind their chat API (`peon_bind_address`, else `host`).
    pub peon_bind_address: String,
    pub base_task_dir: PathBuf,
    pub peon_command: PathBuf,
    /// Starts the peons (fork server or exec).
    pub launcher: Arc<PeonLauncher>,
    /// Finished tasks' directories, reused for new tasks.
    pub spare_dirs: Arc<SpareDirs>,
    pub task_logs: TaskLogStorage,
    pub shutdown_grace: Duration,
    pub files: WorkerFiles,
    /// Passed to peons: where segment files go.
    pub deep_storage: String,
    /// Passed to peons: what batch tasks may read.
    pub ingestion: drover_ingest::input_policy::InputPolicy,
    /// The internal password when authentication is on: peons get a token made from it for
    /// their own task.
    pub task_token_secret: Option<String>,
    /// Passed to peons: their chat API serves HTTPS with this certificate, and they trust its CA.
    pub tls: drover_service::tls::TlsConfig,
    /// Passed to peons for their task actions: the overlords in the leader latch, leader first.
    pub overlords: Arc<std::sync::RwLock<Vec<String>>>,
    /// The same list as a file, kept current, that peons re-read.
    pub overlords_file: PathBuf,
}

struct Running {
    task: Task,
    port: u16,
    control: mpsc::Sender<Control>,
    location: TaskLocation,
    started: Instant,
}

pub struct Monitor {
    config: Arc<MonitorConfig>,
    ports: PortPool,
    running: HashMap<TaskId, Running>,
    completed: VecDeque<TaskId>,
    completed_set: std::collections::HashSet<TaskId>,
    writes: mpsc::UnboundedSender<StatusWrite>,
    notices_tx: mpsc::Sender<Notice>,
    stop_waiters: Vec<oneshot::Sender<()>>,
    /// Set when the middle manager stops: restorable tasks that end then keep their directory
    /// and stay in `restore.json` for the next start.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// Restorable tasks stopped with the middle manager, left for the next start.
    kept_for_restore: std::collections::HashSet<TaskId>,
    /// The running set changed since `restore.json` was last written.
    restore_dirty: bool,
    /// Final statuses to report once `restore.json` no longer lists their tasks.
    held_back: Vec<TaskAnnouncement>,
}

impl Monitor {
    pub fn new(
        config: MonitorConfig,
        ports: PortPool,
        writes: mpsc::UnboundedSender<StatusWrite>,
        notices_tx: mpsc::Sender<Notice>,
    ) -> Self {
        Monitor {
            config: Arc::new(config),
            ports,
            running: HashMap::new(),
            completed: VecDeque::new(),
            completed_set: Default::default(),
            writes,
            notices_tx,
            stop_waiters: Vec::new(),
            stopping: Default::default(),
            kept_for_restore: Default::default(),
            restore_dirty: false,
            held_back: Vec::new(),
        }
    }

    pub async fn run(mut self, mut notices: mpsc::Receiver<Notice>) {
        self.recover().await;
        self.flush();
        while let Some(notice) = notices.recv().await {
            self.handle(notice);
            // Everything already waiting is handled before `restore.json` is written once for
            // all of it: at many tasks a second, one write instead of two per task.
            while let Ok(notice) = notices.try_recv() {
                self.handle(notice);
            }
            self.flush();
        }
    }

    /// Writes `restore.json` if the running set changed, then sends the final statuses held back
    /// until it was (so a restart never finds a task in it that already reported its end), then
    /// answers a stop once nothing runs.
    fn flush(&mut self) {
        if self.restore_dirty {
            self.write_restore(None);
        }
        for announcement in self.held_back.drain(..) {
            self.writes
                .send(StatusWrite::Status(Box::new(announcement)))
                .ok();
        }
        if self.running.is_empty() {
            for waiter in self.stop_waiters.drain(..) {
                waiter.send(()).ok();
            }
        }
    }

    fn handle(&mut self, notice: Notice) {
        match notice {
            Notice::Assigned(task) => {
                self.on_assigned(task);
            }
            Notice::AssignedOverHttp { task, reply } => {
                reply.send(self.on_assigned(task)).ok();
            }
            Notice::BadAssignment { id, error } => {
                tracing::error!(task = %id, %error, "unreadable assignment; reporting it FAILED");
                let status = TaskStatus::failure(
                    id.clone(),
                    format!("Middle manager could not read the task: {error}"),
                );
                self.announce(&status, "unknown", TaskResource::for_task(&id), "unknown");
                self.writes.send(StatusWrite::DeleteAssignment(id)).ok();
            }
            Notice::Exited { id, status } => self.on_exited(id, status),
            Notice::Shutdown { id, reply } => {
                if let Some(r) = self.running.get(&id) {
                    tracing::info!(task = %id, "shutting down task");
                    r.control
                        .try_send(Control::Terminate {
                            grace: self.config.shutdown_grace,
                        })
                        .ok();
                }
                reply.send(()).ok();
            }
            Notice::KnownTasks { reply } => {
                let mut known: std::collections::HashSet<TaskId> =
                    self.running.keys().cloned().collect();
                known.extend(self.completed_set.iter().cloned());
                reply.send(known).ok();
            }
            Notice::ListTasks { reply } => {
                reply.send(self.running.keys().cloned().collect()).ok();
            }
            Notice::StopAll { reply } => {
                self.stopping
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                for r in self.running.values() {
                    r.control
                        .try_send(Control::Terminate {
                            grace: self.config.shutdown_grace,
                        })
                        .ok();
                }
                // Answered by `flush` once nothing runs.
                self.stop_waiters.push(reply);
            }
        }
    }

    /// Starts an assigned task; `false` if the worker is stopping and left it alone.
    fn on_assigned(&mut self, task: Task) -> bool {
        if self.running.contains_key(&task.id) || self.completed_set.contains(&task.id) {
            // Seen again after a re-list (or a repeated assignTask); it is ours already.
            self.writes
                .send(StatusWrite::DeleteAssignment(task.id.clone()))
                .ok();
            return true;
        }
        if !self.stop_waiters.is_empty() {
            tracing::info!(task = %task.id, "stopping; not starting new task");
            return false;
        }
        let id = task.id.clone();
        // Recorded before its peon starts: a crash in between still finds it at restart.
        if let Err(e) = self.config.files.write_assigned(&task) {
            tracing::error!(task = %id, error = %e, "cannot record the assignment on disk");
        }
        // Then listed as running, and only then no longer as assigned, before the peon starts:
        // whenever a crash comes, a restart runs the task at most once (a task both assigned and
        // started would run again).
        self.write_restore(Some(&id));
        self.config.files.remove_assigned(&id);
        let started = self.start(task);
        self.save_running();
        match started {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(task = %id, error = %e, "could not start peon");
                let status = TaskStatus::failure(
                    id.clone(),
                    format!("Failed to run task with an exception: {e}"),
                );
                self.announce(&status, "unknown", TaskResource::for_task(&id), "unknown");
                self.remember_completed(id.clone());
                self.writes.send(StatusWrite::DeleteAssignment(id)).ok();
            }
        }
        true
    }

    fn start(&mut self, task: Task) -> Result<(), StartError> {
        let port = self
            .ports
            .take(forking::port_is_bindable)
            .ok_or(StartError::NoPort)?;
        let dir = TaskDir::prepare(&self.config.base_task_dir, &task, &self.config.spare_dirs)
            .map_err(|e| {
                self.ports.release(port);
                StartError::TaskDir(e)
            })?;
        let overlords = self
            .config
            .overlords
            .read()
            .map(|o| o.join(","))
            .unwrap_or_default();
        let mut env = vec![
            ("DROVER_OVERLORD_URLS", overlords),
            ("DROVER_DEEP_STORAGE", self.config.deep_storage.clone()),
            // What the task may read: checked again by the peon on every file and address.
            (
                drover_ingest::input_policy::POLICY_ENV,
                serde_json::to_string(&self.config.ingestion).expect("a plain struct serializes"),
            ),
            // The chat API listens where the task's location says it is, not on every
            // interface.
            (
                "DROVER_PEON_BIND_ADDRESS",
                self.config.peon_bind_address.clone(),
            ),
            (
                "DROVER_OVERLORDS_FILE",
                self.config.overlords_file.display().to_string(),
            ),
        ];
        if self.config.tls != drover_service::tls::TlsConfig::default() {
            env.push((
                drover_service::tls::TLS_ENV,
                serde_json::to_string(&self.config.tls).expect("a plain struct serializes"),
            ));
        }
        // The peon gets its task's credentials, never the internal password: it can act for its
        // own task and nothing else.
        if let Some(secret) = &self.config.task_token_secret {
            let token = drover_service::auth::task_token(secret, task.id.as_str());
            env.push((
                drover_service::auth::TASK_CREDENTIALS_ENV,
                format!("{}:{token}", task.id),
            ));
        }
        let child = forking::spawn_peon(
            &self.config.launcher,
            &dir,
            &self.config.worker_host,
            port,
            &env,
        )
        .map_err(|e| {
            self.ports.release(port);
            StartError::Spawn {
                peon: self.config.peon_command.clone(),
                error: e,
            }
        })?;
        let pid = child.id();
        let (control_tx, control_rx) = mpsc::channel(4);
        let location = if self.config.tls.enabled() {
            TaskLocation::tls(self.config.host.clone(), port as i32)
        } else {
            TaskLocation::new(self.config.host.clone(), port as i32)
        };
        tracing::info!(task = %task.id, ?pid, port, "peon started");

        // Announce RUNNING with its location, then withdraw the assignment (Druid's order).
        let running = TaskStatus::running(task.id.clone()).with_location(location.clone());
        self.announce(
            &running,
            &task.task_type,
            task.resource.clone(),
            &task.data_source,
        );
        self.writes
            .send(StatusWrite::DeleteAssignment(task.id.clone()))
            .ok();

        let id = task.id.clone();
        let notices = self.notices_tx.clone();
        let config = self.config.clone();
        let (data_source, task_type) = (task.data_source.to_string(), task.task_type.clone());
        let stopping = self.stopping.clone();
        tokio::spawn(async move {
            let exit = forking::supervise(child, control_rx).await;
            if stopping.load(std::sync::atomic::Ordering::SeqCst) && restorable(&task_type) {
                // Stopped with its middle manager: its directory stays for the next start.
                let status = TaskStatus::running(id.clone());
                notices.send(Notice::Exited { id, status }).await.ok();
                return;
            }
            let status = forking::status_after_exit(&id, &exit, &dir);
            let live_stats = std::fs::read(dir.attempt_dir().join("live-stats.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            crate::metrics::task_ended(
                id.as_str(),
                &data_source,
                &task_type,
                status.status,
                live_stats.as_ref(),
            );
            // The log is pushed before the final status is announced, so whoever sees the
            // status can read the whole log.
            let (logs, log_path, root) = (config.task_logs.clone(), dir.log(), dir.root.clone());
            let id2 = id.clone();
            let report = dir.attempt_dir().join("report.json");
            if report.exists() {
                if let Err(e) = logs.push_report(&id2, &report).await {
                    tracing::error!(task = %id2, error = %e, "could not push the task report");
                }
            }
            let pushed = logs.push(&id2, &log_path).await;
            if pushed.is_ok() {
                let spares = config.spare_dirs.clone();
                tokio::task::spawn_blocking(move || spares.give_back(&root))
                    .await
                    .ok();
            }
            if let Err(e) = pushed {
                tracing::error!(task = %id, error = %e, "could not push the task log; keeping the task directory");
            }
            notices.send(Notice::Exited { id, status }).await.ok();
        });
        self.running.insert(
            task.id.clone(),
            Running {
                task,
                port,
                control: control_tx,
                location,
                started: Instant::now(),
            },
        );
        Ok(())
    }

    fn on_exited(&mut self, id: TaskId, status: TaskStatus) {
        let Some(r) = self.running.remove(&id) else {
            return;
        };
        self.ports.release(r.port);
        let stopping = !self.stop_waiters.is_empty();
        if stopping && restorable(&r.task.task_type) {
            tracing::info!(task = %id, "task stopped with the middle manager; it is restored at the next start");
            self.kept_for_restore.insert(id);
            self.save_running();
            return;
        }
        self.save_running();
        let status = if stopping && status.status != drover_core::TaskState::Success {
            TaskStatus::failure(
                id.clone(),
                "Task stopped because its middle manager shut down; this task type cannot be restored.",
            )
        } else {
            status
        };
        let mut status = status.with_location(r.location.clone());
        if status.duration < 0 {
            status.duration = r.started.elapsed().as_millis() as i64;
        }
        tracing::info!(task = %id, status = ?status.status, error = ?status.error_msg, "task finished");
        // Sent by `flush`, after `restore.json` no longer lists the task.
        self.held_back.push(TaskAnnouncement::new(
            status,
            &r.task.task_type,
            r.task.resource.clone(),
            &r.task.data_source,
        ));
        self.remember_completed(id);
    }

    /// Writes `restore.json` now: the running tasks, those kept for a restore, and `starting`.
    fn write_restore(&mut self, starting: Option<&TaskId>) {
        self.restore_dirty = false;
        let ids = self
            .running
            .keys()
            .chain(self.kept_for_restore.iter())
            .chain(starting)
            .cloned();
        if let Err(e) = self.config.files.write_restore(ids) {
            tracing::error!(error = %e, "cannot write restore.json");
        }
    }

    /// `restore.json` follows the running set; `flush` writes it.
    fn save_running(&mut self) {
        self.restore_dirty = true;
    }

    /// Start-up: tasks that were running when this middle manager last stopped are started
    /// again when their type is restorable (their peon resumes from what it kept on disk), and
    /// reported FAILED with the reason otherwise; tasks assigned but never started are run now.
    async fn recover(&mut self) {
        for id in self.config.files.read_restore() {
            let dir = TaskDir::for_task(&self.config.base_task_dir, &id);
            let task = std::fs::read(dir.join("task.json"))
                .ok()
                .and_then(|b| Task::from_json_bytes(&b).ok());
            let mut why = None;
            if let Some(task) = task.clone().filter(|t| restorable(&t.task_type)) {
                tracing::info!(task = %id, r#type = %task.task_type, "restoring a task that was running before this middle manager restarted");
                match self.start(task) {
                    Ok(()) => continue,
                    Err(e) => {
                        tracing::error!(task = %id, error = %e, "could not restore the task");
                        why = Some(format!("Task was running when its middle manager restarted and could not be restored: {e}"));
                    }
                }
            }
            let (task_type, resource, data_source) = match &task {
                Some(t) => (
                    t.task_type.clone(),
                    t.resource.clone(),
                    t.data_source.to_string(),
                ),
                None => (
                    "unknown".to_string(),
                    TaskResource::for_task(&id),
                    "unknown".to_string(),
                ),
            };
            tracing::warn!(task = %id, r#type = %task_type, "task was running before this middle manager restarted and cannot be restored");
            let log = dir.join("log");
            if log.exists() && self.config.task_logs.push(&id, &log).await.is_ok() {
                std::fs::remove_dir_all(&dir).ok();
            }
            let why = why.unwrap_or_else(|| format!("Task was running when its middle manager restarted; [{task_type}] tasks cannot be restored."));
            let status = TaskStatus::failure(id.clone(), why);
            self.announce(&status, &task_type, resource, &data_source);
            self.remember_completed(id);
        }
        for task in self.config.files.read_assigned() {
            tracing::info!(task = %task.id, "running a task assigned before the restart");
            self.on_assigned(task);
        }
        self.save_running();
    }

    fn announce(
        &self,
        status: &TaskStatus,
        task_type: &str,
        resource: TaskResource,
        data_source: &str,
    ) {
        let announcement = TaskAnnouncement::new(status.clone(), task_type, resource, data_source);
        self.writes
            .send(StatusWrite::Status(Box::new(announcement)))
            .ok();
    }

    fn remember_completed(&mut self, id: TaskId) {
        if self.completed_set.insert(id.clone()) {
            self.completed.push_back(id);
        }
        while self.completed.len() > COMPLETED_MEMORY {
            if let Some(old) = self.completed.pop_front() {
                self.completed_set.remove(&old);
            }
        }
    }
}
