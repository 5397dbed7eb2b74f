//! The runner's state and the loop that owns it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_core::{
    RunnerTaskState, TaskAnnouncement, TaskId, TaskLocation, TaskResource, TaskStatus, Worker,
    WorkerHost,
};
use drover_task::Task;
use indexmap::IndexMap;
use serde::Serialize;
use tokio::sync::mpsc;

use super::effects::{Effect, Executor, Transport, CALL_TIMEOUT};
use super::select::{select_worker, Candidate, Selection};
use super::{RunnerConfig, RunnerEvent, RunnerMsg, WorkerEvent};
use drover_core::worker_sync::RunnerType;

const TICK: Duration = Duration::from_millis(250);
/// After a failed assignment write, the worker is skipped for this long.
const ASSIGN_RETRY_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Pending,
    /// Assignment made (at `since`); waiting for the worker's first status. `uncertain`: the
    /// HTTP assignment's answer was lost, so the worker may or may not have the task; it is
    /// never handed to another worker, which could run it twice.
    Assigned {
        worker: WorkerHost,
        deadline: Instant,
        since: Instant,
        uncertain: bool,
    },
    Running {
        worker: WorkerHost,
    },
    /// Terminal status known; waiting for the queue to persist it and call cleanup.
    Complete {
        worker: Option<WorkerHost>,
    },
}

impl Place {
    /// What the API shows as the runner's state of a task in this place.
    fn runner_state(&self) -> RunnerTaskState {
        match self {
            Place::Pending => RunnerTaskState::Pending,
            Place::Assigned { .. } | Place::Running { .. } => RunnerTaskState::Running,
            Place::Complete { .. } => RunnerTaskState::None,
        }
    }
}

struct Entry {
    task: Option<Arc<Task>>,
    place: Place,
    resource: TaskResource,
    status: TaskStatus,
}

impl Entry {
    fn worker(&self) -> Option<&WorkerHost> {
        match &self.place {
            Place::Assigned { worker, .. } | Place::Running { worker } => Some(worker),
            Place::Complete { worker } => worker.as_ref(),
            Place::Pending => None,
        }
    }

    /// Tasks holding capacity on a worker: assigned or running.
    fn occupies(&self) -> Option<&WorkerHost> {
        match &self.place {
            Place::Assigned { worker, .. } | Place::Running { worker } => Some(worker),
            _ => None,
        }
    }
}

struct WorkerEntry {
    /// `None` for a worker known only from its status path (it vanished before we saw it).
    worker: Option<Worker>,
    announced: bool,
    cleanup_at: Option<Instant>,
    awaiting_ack: Option<TaskId>,
    skip_until: Option<Instant>,
    last_completed: Option<String>,
    failed_in_a_row: u32,
    /// Until when, as an instant and as the ISO time the API shows.
    blacklisted_until: Option<(Instant, String)>,
}

impl WorkerEntry {
    fn blacklisted(&self, now: Instant) -> bool {
        self.blacklisted_until
            .as_ref()
            .is_some_and(|(t, _)| *t > now)
    }
}

impl WorkerEntry {
    fn unannounced() -> Self {
        WorkerEntry {
            worker: None,
            announced: false,
            cleanup_at: None,
            awaiting_ack: None,
            skip_until: None,
            last_completed: None,
            failed_in_a_row: 0,
            blacklisted_until: None,
        }
    }
}

/// A task as the API sees it.
#[derive(Debug, Clone)]
pub struct RunnerTaskView {
    pub id: TaskId,
    pub state: RunnerTaskState,
    pub worker: Option<WorkerHost>,
    /// The worker's API base URL, for routes that ask the worker (task logs).
    pub worker_url: Option<String>,
    pub location: TaskLocation,
}

/// Druid's ImmutableWorkerInfo.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerView {
    pub worker: Worker,
    pub curr_capacity_used: i32,
    pub curr_parallel_index_capacity_used: i32,
    pub availability_groups: Vec<String>,
    pub running_tasks: Vec<TaskId>,
    pub last_completed_task_time: Option<String>,
    pub blacklisted_until: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RunnerSnapshot {
    pub tasks: Vec<RunnerTaskView>,
    pub workers: Vec<WorkerView>,
}

pub(crate) struct RunnerState {
    config: RunnerConfig,
    events: mpsc::UnboundedSender<RunnerEvent>,
    /// What the decisions asked for since the last message; `executor` carries it out.
    effects: Vec<Effect>,
    /// Runs effects in the leadership term's scope: they end with it.
    executor: Executor,
    ready: bool,
    /// Strategy, affinity and categories in force (the dynamic worker config, else the static one).
    selection: Selection,
    workers: BTreeMap<WorkerHost, WorkerEntry>,
    /// In insertion order, which is the order pending tasks are assigned in.
    tasks: IndexMap<TaskId, Entry>,
}

impl RunnerState {
    pub(crate) fn new(
        config: RunnerConfig,
        transport: Transport,
        events: mpsc::UnboundedSender<RunnerEvent>,
        self_tx: mpsc::UnboundedSender<RunnerMsg>,
        scope: crate::scope::LeaderScope,
    ) -> Self {
        let executor = Executor::new(
            transport,
            config.task_shutdown_link_timeout,
            &config.internal_client,
            self_tx,
            scope,
        );
        RunnerState {
            selection: Selection::plain(config.strategy),
            config,
            events,
            effects: Vec::new(),
            executor,
            ready: false,
            workers: BTreeMap::new(),
            tasks: IndexMap::new(),
        }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<RunnerMsg>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => return,
                },
                _ = tick.tick() => self.on_tick(Instant::now()),
            }
            for effect in self.effects.drain(..) {
                self.executor.execute(effect);
            }
        }
    }

    fn handle(&mut self, msg: RunnerMsg) {
        match msg {
            RunnerMsg::Run(task) => self.on_run(task),
            RunnerMsg::Shutdown { id, reason } => self.on_shutdown(id, reason),
            RunnerMsg::Cleanup(id) => self.on_cleanup(id),
            RunnerMsg::Snapshot(reply) => {
                reply.send(self.snapshot()).ok();
            }
            RunnerMsg::Tasks(filter, reply) => {
                reply.send(self.task_views(&filter)).ok();
            }
            RunnerMsg::Worker(event) => self.on_worker_event(event),
            RunnerMsg::SetSelection(selection) => {
                tracing::info!(?selection, "worker selection changed");
                self.selection =
                    selection.unwrap_or_else(|| Selection::plain(self.config.strategy));
                self.try_assign();
            }
            RunnerMsg::AssignAcked { id, worker } => {
                // The worker has recorded it (HTTP runner): it may take the next one now.
                self.clear_ack(&worker, &id);
                self.try_assign();
            }
            RunnerMsg::AssignUncertain { id, worker, error } => {
                tracing::warn!(task = %id, %worker, %error, "the worker may or may not have taken the task; it stays assigned there until the worker says, leaves, or the assignment times out");
                self.clear_ack(&worker, &id);
                if let Some(e) = self.tasks.get_mut(&id) {
                    if let Place::Assigned {
                        worker: w,
                        uncertain,
                        ..
                    } = &mut e.place
                    {
                        if *w == worker {
                            *uncertain = true;
                        }
                    }
                }
                self.try_assign();
            }
            RunnerMsg::AssignFailed { id, worker, error } => {
                tracing::warn!(task = %id, %worker, %error, "assignment failed; task goes back to pending");
                self.clear_ack(&worker, &id);
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.skip_until = Some(Instant::now() + ASSIGN_RETRY_DELAY);
                }
                if let Some(e) = self.tasks.get_mut(&id) {
                    if matches!(&e.place, Place::Assigned { worker: w, .. } if *w == worker) {
                        e.place = Place::Pending;
                    }
                }
                self.try_assign();
            }
        }
    }

    fn emit(&self, status: TaskStatus) {
        self.events.send(RunnerEvent::Status(status)).ok();
    }

    fn on_run(&mut self, task: Arc<Task>) {
        // Checked before anything else: writing it would cost the overlord its ZooKeeper session
        // (and with it leadership) again and again, stopping every other task. Over HTTP any
        // size goes.
        let too_large = match self.config.runner_type {
            RunnerType::Remote => {
                super::znode_too_large(task.to_json_bytes().len(), self.config.max_znode_bytes)
            }
            RunnerType::HttpRemote => None,
        };
        if let Some(reason) = too_large {
            tracing::warn!(task = %task.id, %reason, "task cannot be assigned through ZooKeeper; failing it");
            let status = TaskStatus::failure(task.id.clone(), reason);
            self.tasks.insert(
                task.id.clone(),
                Entry {
                    resource: task.resource.clone(),
                    task: Some(task),
                    place: Place::Complete { worker: None },
                    status: status.clone(),
                },
            );
            self.emit(status);
            return;
        }
        if let Some(e) = self.tasks.get_mut(&task.id) {
            // Known already (rediscovered from ZooKeeper, or a repeated call): keep its place.
            if e.task.is_none() {
                e.resource = task.resource.clone();
                e.task = Some(task);
                self.try_assign();
            }
            return;
        }
        let resource = task.resource.clone();
        let status = TaskStatus::running(task.id.clone());
        self.tasks.insert(
            task.id.clone(),
            Entry {
                task: Some(task),
                place: Place::Pending,
                resource,
                status,
            },
        );
        self.try_assign();
    }

    fn on_shutdown(&mut self, id: TaskId, reason: String) {
        let Some(e) = self.tasks.get(&id) else { return };
        match e.place.clone() {
            Place::Pending => {
                self.tasks.shift_remove(&id);
            }
            Place::Assigned { worker, .. } => {
                // It may or may not have started: withdraw the assignment and ask the worker.
                self.effects.push(Effect::Withdraw {
                    task: id.clone(),
                    worker: worker.clone(),
                });
                self.shutdown_on_worker(&worker, &id, &reason);
            }
            Place::Running { worker } => self.shutdown_on_worker(&worker, &id, &reason),
            Place::Complete { .. } => self.on_cleanup(id),
        }
    }

    fn on_cleanup(&mut self, id: TaskId) {
        let Some(e) = self.tasks.get(&id) else { return };
        if let Place::Complete { worker } = &e.place {
            if let Some(worker) = worker.clone() {
                self.effects.push(Effect::ForgetStatus {
                    task: id.clone(),
                    worker,
                });
            }
            self.tasks.shift_remove(&id);
        }
    }

    fn on_worker_event(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::WorkerUpserted(worker) => self.worker_upserted(worker),
            WorkerEvent::WorkerRemoved(host) => self.worker_removed(host),
            WorkerEvent::StatusUpserted(host, announcement) => {
                self.status_upserted(host, announcement)
            }
            WorkerEvent::StatusRemoved(host, id) => self.status_removed(host, id),
            WorkerEvent::FullSync {
                started,
                assignments,
                workers,
                statuses,
            } => self.full_sync(started, assignments, workers, statuses),
            WorkerEvent::WorkerSnapshot {
                started,
                worker,
                statuses,
            } => self.worker_snapshot(started, worker, statuses),
            WorkerEvent::Synced => self.mark_ready(),
        }
        self.try_assign();
    }

    fn worker_upserted(&mut self, worker: Worker) {
        let Ok(host) = WorkerHost::new(worker.host.clone()) else {
            tracing::error!(host = %worker.host, "ignoring worker with an invalid host");
            return;
        };
        let entry = self
            .workers
            .entry(host.clone())
            .or_insert_with(WorkerEntry::unannounced);
        if !entry.announced {
            tracing::info!(worker = %host, capacity = worker.capacity, "worker announced");
            // A failed assignment held it back; that was its previous life.
            entry.skip_until = None;
        }
        if entry.cleanup_at.take().is_some() {
            tracing::info!(worker = %host, "worker came back; its tasks are kept");
        }
        entry.announced = true;
        entry.worker = Some(worker);
    }

    fn worker_removed(&mut self, host: WorkerHost) {
        let timeout = self.config.task_cleanup_timeout;
        if let Some(entry) = self.workers.get_mut(&host) {
            if entry.announced {
                tracing::warn!(worker = %host, ?timeout, "worker disappeared; its tasks fail unless it returns in time");
            }
            entry.announced = false;
            entry.cleanup_at.get_or_insert(Instant::now() + timeout);
        }
    }

    fn status_upserted(&mut self, host: WorkerHost, announcement: TaskAnnouncement) {
        let status = announcement.task_status();
        let complete = status.is_complete();
        let worker = self
            .workers
            .entry(host.clone())
            .or_insert_with(|| WorkerEntry {
                // Status without announcement: the worker is gone; clean it up unless it returns.
                cleanup_at: Some(Instant::now() + self.config.task_cleanup_timeout),
                ..WorkerEntry::unannounced()
            });
        if worker.awaiting_ack.as_ref() == Some(&announcement.id) {
            worker.awaiting_ack = None;
        }
        if complete {
            worker.last_completed = Some(drover_core::time::now_iso());
        }
        let new_place = if complete {
            Place::Complete {
                worker: Some(host.clone()),
            }
        } else {
            Place::Running {
                worker: host.clone(),
            }
        };
        match self.tasks.get_mut(&announcement.id) {
            None => {
                tracing::info!(task = %announcement.id, worker = %host, status = ?status.status, "adopting task a worker reports");
                let entry = Entry {
                    task: None,
                    place: new_place,
                    resource: announcement.resource(),
                    status: status.clone(),
                };
                self.tasks.insert(announcement.id.clone(), entry);
                self.emit(status);
            }
            Some(e) => {
                if matches!(e.place, Place::Complete { .. }) {
                    return;
                }
                let changed =
                    e.place != new_place || e.status.location != status.location || complete;
                if let Place::Assigned {
                    worker: assigned, ..
                } = &e.place
                {
                    if *assigned != host {
                        tracing::warn!(task = %announcement.id, %assigned, reported_by = %host, "task reported by another worker than the one it was assigned to");
                    }
                }
                e.place = new_place;
                e.status = status.clone();
                let outcome = status.status;
                if changed {
                    self.emit(status);
                }
                if complete {
                    self.record_outcome(&host, outcome);
                }
            }
        }
    }

    /// Druid's blacklist bookkeeping: a success clears a worker's record, failures in a row
    /// past the limit blacklist it for a while.
    fn record_outcome(&mut self, host: &WorkerHost, outcome: drover_core::TaskState) {
        let now = Instant::now();
        let already = self.workers.values().filter(|w| w.blacklisted(now)).count();
        let total = self.workers.values().filter(|w| w.announced).count();
        let config = &self.config;
        let Some(w) = self.workers.get_mut(host) else {
            return;
        };
        if outcome == drover_core::TaskState::Success {
            w.failed_in_a_row = 0;
            if w.blacklisted_until.take().is_some() {
                tracing::info!(worker = %host, "worker succeeded a task; no longer blacklisted");
            }
            return;
        }
        w.failed_in_a_row += 1;
        if !w.blacklisted(now)
            && super::blacklist::should_blacklist(
                w.failed_in_a_row,
                config.max_retries_before_blacklist,
                already,
                total,
                config.max_percentage_blacklist_workers,
            )
        {
            let until = chrono::Utc::now()
                + chrono::Duration::from_std(config.worker_blacklist_backoff_time)
                    .unwrap_or(chrono::Duration::minutes(15));
            tracing::warn!(worker = %host, failed_in_a_row = w.failed_in_a_row, until = %until, "blacklisting worker");
            w.blacklisted_until = Some((
                now + config.worker_blacklist_backoff_time,
                drover_core::time::to_iso(until),
            ));
        }
    }

    fn status_removed(&mut self, host: WorkerHost, id: TaskId) {
        let Some(e) = self.tasks.get_mut(&id) else {
            return;
        };
        if matches!(&e.place, Place::Running { worker } if *worker == host) {
            let status = TaskStatus::failure(
                id.clone(),
                format!(
                    "The status of this task vanished from worker [{host}] before it completed"
                ),
            )
            .with_location(e.status.location.clone());
            e.place = Place::Complete { worker: Some(host) };
            e.status = status.clone();
            self.emit(status);
        }
    }

    fn full_sync(
        &mut self,
        started: Instant,
        assignments: Vec<(WorkerHost, Vec<TaskId>)>,
        workers: Vec<Worker>,
        statuses: Vec<(WorkerHost, Vec<TaskAnnouncement>)>,
    ) {
        // Assignments this runner does not know (made by a previous overlord whose session has
        // not expired yet) are adopted, so the task is not handed to a second worker.
        let mut assigned_now: HashSet<(WorkerHost, TaskId)> = HashSet::new();
        for (host, ids) in assignments {
            for id in ids {
                if !self.tasks.contains_key(&id) {
                    tracing::info!(task = %id, worker = %host, "adopting assignment found in ZooKeeper");
                    let deadline = Instant::now() + self.config.task_assignment_timeout;
                    let entry = Entry {
                        task: None,
                        place: Place::Assigned {
                            worker: host.clone(),
                            deadline,
                            since: started,
                            uncertain: false,
                        },
                        resource: TaskResource::for_task(&id),
                        status: TaskStatus::running(id.clone()),
                    };
                    self.tasks.insert(id.clone(), entry);
                }
                assigned_now.insert((host.clone(), id));
            }
        }
        let with_status: HashSet<TaskId> = statuses
            .iter()
            .flat_map(|(_, l)| l.iter().map(|a| a.id.clone()))
            .collect();
        let announced: HashSet<String> = workers.iter().map(|w| w.host.clone()).collect();
        let gone: Vec<WorkerHost> = self
            .workers
            .iter()
            .filter(|(h, w)| w.announced && !announced.contains(h.as_str()))
            .map(|(h, _)| h.clone())
            .collect();
        for host in gone {
            self.worker_removed(host);
        }
        for worker in workers {
            self.worker_upserted(worker);
        }
        for (host, announcements) in statuses {
            // A running task whose status znode is gone: the deletion event was missed.
            self.statuses_listed(&host, announcements);
        }
        // An assignment whose znode is gone without any status was never picked up (its owner's
        // session ended): it goes back to pending. Only assignments older than the longest a
        // create can take, so one still in flight when the read began is not mistaken for one.
        let lost: Vec<(TaskId, WorkerHost)> = self
            .tasks
            .iter()
            .filter_map(|(id, e)| match &e.place {
                Place::Assigned { worker, since, .. }
                    if *since + CALL_TIMEOUT < started
                        && !assigned_now.contains(&(worker.clone(), id.clone()))
                        && !with_status.contains(id) =>
                {
                    Some((id.clone(), worker.clone()))
                }
                _ => None,
            })
            .collect();
        for (id, worker) in lost {
            tracing::warn!(task = %id, %worker, "assignment vanished before the worker started it; task goes back to pending");
            self.clear_ack(&worker, &id);
            if let Some(e) = self.tasks.get_mut(&id) {
                e.place = Place::Pending;
            }
        }
        self.mark_ready();
    }

    /// Everything one worker reports, as of `started`.
    fn statuses_listed(&mut self, host: &WorkerHost, announcements: Vec<TaskAnnouncement>) {
        let listed: HashSet<TaskId> = announcements.iter().map(|a| a.id.clone()).collect();
        for a in announcements {
            self.status_upserted(host.clone(), a);
        }
        let vanished: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(id, e)| {
                matches!(&e.place, Place::Running { worker } if worker == host)
                    && !listed.contains(*id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in vanished {
            self.status_removed(host.clone(), id);
        }
    }

    /// A worker's whole state, read over HTTP (its first sync, or after a reset): tasks it
    /// no longer reports have vanished, and assignments it never recorded (a restart lost
    /// them) go back to pending.
    fn worker_snapshot(
        &mut self,
        started: Instant,
        worker: Worker,
        announcements: Vec<TaskAnnouncement>,
    ) {
        let Ok(host) = WorkerHost::new(worker.host.clone()) else {
            tracing::error!(host = %worker.host, "ignoring worker with an invalid host");
            return;
        };
        self.worker_upserted(worker);
        // Read whole: a failed assignment that held it back was to a life it may have left.
        if let Some(w) = self.workers.get_mut(&host) {
            w.skip_until = None;
        }
        let listed: HashSet<TaskId> = announcements.iter().map(|a| a.id.clone()).collect();
        self.statuses_listed(&host, announcements);
        let lost: Vec<(TaskId, bool)> = self
            .tasks
            .iter()
            .filter_map(|(id, e)| match &e.place {
                Place::Assigned {
                    worker,
                    since,
                    uncertain,
                    ..
                } if *worker == host && *since + CALL_TIMEOUT < started && !listed.contains(id) => {
                    Some((id.clone(), *uncertain))
                }
                _ => None,
            })
            .collect();
        for (id, uncertain) in lost {
            self.clear_ack(&host, &id);
            if uncertain {
                // It may have started in the worker's previous life: running it elsewhere
                // could run it twice.
                let status = TaskStatus::failure(
                    id.clone(),
                    format!("Worker [{host}] may have started this task before it restarted, and does not report it"),
                );
                self.complete_here(&id, Some(host.clone()), status);
                continue;
            }
            tracing::warn!(task = %id, worker = %host, "worker does not have the task it was assigned; task goes back to pending");
            if let Some(e) = self.tasks.get_mut(&id) {
                e.place = Place::Pending;
            }
        }
    }

    /// The runner knows what workers run: the queue may now decide what to (re)start.
    fn mark_ready(&mut self) {
        if !self.ready {
            self.ready = true;
            tracing::info!(
                workers = self.workers.len(),
                tasks = self.tasks.len(),
                "runner synchronized with its workers"
            );
            self.events.send(RunnerEvent::Ready).ok();
        }
    }

    fn on_tick(&mut self, now: Instant) {
        // Assignments never acknowledged.
        let timed_out: Vec<(TaskId, WorkerHost)> = self
            .tasks
            .iter()
            .filter_map(|(id, e)| match &e.place {
                Place::Assigned {
                    worker, deadline, ..
                } if *deadline <= now => Some((id.clone(), worker.clone())),
                _ => None,
            })
            .collect();
        for (id, worker) in timed_out {
            tracing::warn!(task = %id, %worker, "worker did not start the task in time");
            self.clear_ack(&worker, &id);
            self.effects.push(Effect::Withdraw {
                task: id.clone(),
                worker: worker.clone(),
            });
            let status = TaskStatus::failure(
                id.clone(),
                format!(
                    "The worker that this task is assigned did not start it in timeout[{:?}]. See overlord logs for more details.",
                    self.config.task_assignment_timeout
                ),
            );
            self.complete_here(&id, Some(worker), status);
        }

        // Blacklistings that have run out (their failure count stays, as in Druid).
        for (host, w) in self.workers.iter_mut() {
            if w.blacklisted_until.as_ref().is_some_and(|(t, _)| *t <= now) {
                tracing::info!(worker = %host, "blacklisting expired");
                w.blacklisted_until = None;
            }
        }

        // Workers gone for longer than taskCleanupTimeout.
        let expired: Vec<WorkerHost> = self
            .workers
            .iter()
            .filter(|(_, w)| !w.announced && w.cleanup_at.is_some_and(|t| t <= now))
            .map(|(h, _)| h.clone())
            .collect();
        for host in expired {
            self.cleanup_worker(host);
        }
        self.try_assign();
    }

    /// Druid's worker cleanup: fail what it had, delete its znodes, forget it.
    fn cleanup_worker(&mut self, host: WorkerHost) {
        let ids: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, e)| e.occupies() == Some(&host))
            .map(|(id, _)| id.clone())
            .collect();
        tracing::warn!(worker = %host, tasks = ids.len(), "cleaning up vanished worker");
        for id in &ids {
            self.effects.push(Effect::Withdraw {
                task: id.clone(),
                worker: host.clone(),
            });
            let status = TaskStatus::failure(
                id.clone(),
                "Canceled for worker cleanup. See overlord logs for more details.",
            );
            self.complete_here(id, Some(host.clone()), status);
        }
        self.workers.remove(&host);
        self.effects.push(Effect::ForgetWorker(host));
    }

    /// The worker no longer waits to acknowledge `id` (it did, or never will).
    fn clear_ack(&mut self, worker: &WorkerHost, id: &TaskId) {
        if let Some(w) = self.workers.get_mut(worker) {
            if w.awaiting_ack.as_ref() == Some(id) {
                w.awaiting_ack = None;
            }
        }
    }

    /// A terminal status decided by the runner itself.
    fn complete_here(&mut self, id: &TaskId, worker: Option<WorkerHost>, status: TaskStatus) {
        if let Some(e) = self.tasks.get_mut(id) {
            e.place = Place::Complete { worker };
            e.status = status.clone();
            self.emit(status);
        }
    }

    /// Hands pending tasks to workers, oldest first.
    fn try_assign(&mut self) {
        if !self.ready {
            return;
        }
        let now = Instant::now();
        let mut used: HashMap<WorkerHost, i32> = HashMap::new();
        let mut groups: HashMap<WorkerHost, Vec<String>> = HashMap::new();
        for e in self.tasks.values() {
            if let Some(w) = e.occupies() {
                *used.entry(w.clone()).or_default() += e.resource.required_capacity;
                groups
                    .entry(w.clone())
                    .or_default()
                    .push(e.resource.availability_group.clone());
            }
        }
        // Pending tasks in submission order, walked by index rather than collected first: with
        // thousands waiting, each event would otherwise copy every pending id only to find the
        // workers full after the first few. (`assign` changes an entry's place, never the map's
        // order or length.)
        let mut next = 0;
        while let Some((_, entry)) = self.tasks.get_index(next) {
            next += 1;
            let Some(task) = entry.task.clone().filter(|_| entry.place == Place::Pending) else {
                continue;
            };
            let chosen = {
                let candidates: Vec<Candidate<'_>> = self
                    .workers
                    .iter()
                    .filter_map(|(host, w)| {
                        let worker = w.worker.as_ref()?;
                        Some(Candidate {
                            host,
                            capacity: worker.capacity,
                            used: used.get(host).copied().unwrap_or(0),
                            version: &worker.version,
                            category: &worker.category,
                            availability_groups: groups
                                .get(host)
                                .map(|g| g.iter().map(String::as_str).collect())
                                .unwrap_or_default(),
                            awaiting_ack: w.awaiting_ack.is_some(),
                            blacklisted: w.blacklisted(now)
                                || w.skip_until.is_some_and(|t| t > now),
                            announced: w.announced,
                        })
                    })
                    .collect();
                if !candidates
                    .iter()
                    .any(|c| c.announced && !c.awaiting_ack && c.used < c.capacity)
                {
                    return; // nobody can take anything now
                }
                select_worker(
                    &self.selection,
                    &task,
                    &self.config.min_worker_version,
                    &candidates,
                )
                .cloned()
            };
            let Some(host) = chosen else { continue };
            *used.entry(host.clone()).or_default() += task.resource.required_capacity;
            groups
                .entry(host.clone())
                .or_default()
                .push(task.resource.availability_group.clone());
            self.assign(task, host, now);
        }
    }

    fn assign(&mut self, task: Arc<Task>, host: WorkerHost, now: Instant) {
        tracing::debug!(task = %task.id, worker = %host, "assigning task");
        let deadline = now + self.config.task_assignment_timeout;
        if let Some(w) = self.workers.get_mut(&host) {
            w.awaiting_ack = Some(task.id.clone());
        }
        if let Some(e) = self.tasks.get_mut(&task.id) {
            e.place = Place::Assigned {
                worker: host.clone(),
                deadline,
                since: now,
                uncertain: false,
            };
        }
        let url = self.worker_url(&host);
        self.effects.push(Effect::Assign {
            task,
            worker: host,
            url,
        });
    }

    /// A worker's API base URL (as announced; `http://host` when it never was).
    fn worker_url(&self, host: &WorkerHost) -> String {
        self.workers
            .get(host)
            .and_then(|w| w.worker.as_ref())
            .map(Worker::base_url)
            .unwrap_or_else(|| format!("http://{host}"))
    }

    fn shutdown_on_worker(&mut self, host: &WorkerHost, id: &TaskId, reason: &str) {
        let url = format!(
            "{}/druid/worker/v1/task/{id}/shutdown",
            self.worker_url(host)
        );
        tracing::info!(task = %id, worker = %host, %reason, "shutting down task on its worker");
        self.effects.push(Effect::ShutdownOnWorker {
            task: id.clone(),
            worker: host.clone(),
            url,
        });
    }

    fn view(&self, id: &TaskId, e: &Entry) -> RunnerTaskView {
        let worker = e.worker().cloned();
        RunnerTaskView {
            id: id.clone(),
            state: e.place.runner_state(),
            worker_url: worker.as_ref().map(|host| self.worker_url(host)),
            worker,
            location: e.status.location.clone(),
        }
    }

    fn task_views(&self, filter: &super::TaskFilter) -> Vec<RunnerTaskView> {
        use super::TaskFilter;
        match filter {
            TaskFilter::One(id) => self
                .tasks
                .get(id)
                .map(|e| self.view(id, e))
                .into_iter()
                .collect(),
            TaskFilter::Ids(ids) => ids
                .iter()
                .filter_map(|id| Some(self.view(id, self.tasks.get(id)?)))
                .collect(),
            TaskFilter::InStates(states) => self
                .tasks
                .iter()
                .filter(|(_, e)| states.contains(&e.place.runner_state()))
                .map(|(id, e)| self.view(id, e))
                .collect(),
            TaskFilter::All => self.tasks.iter().map(|(id, e)| self.view(id, e)).collect(),
        }
    }

    fn snapshot(&self) -> RunnerSnapshot {
        let tasks = self.task_views(&super::TaskFilter::All);
        let workers = self
            .workers
            .iter()
            .filter(|(_, w)| w.announced)
            .filter_map(|(host, w)| {
                let worker = w.worker.clone()?;
                let mine: Vec<&Entry> = self
                    .tasks
                    .values()
                    .filter(|e| e.occupies() == Some(host))
                    .collect();
                Some(WorkerView {
                    worker,
                    curr_capacity_used: mine.iter().map(|e| e.resource.required_capacity).sum(),
                    curr_parallel_index_capacity_used: 0,
                    availability_groups: mine
                        .iter()
                        .map(|e| e.resource.availability_group.clone())
                        .collect(),
                    running_tasks: self
                        .tasks
                        .iter()
                        .filter(|(_, e)| e.occupies() == Some(host))
                        .map(|(id, _)| id.clone())
                        .collect(),
                    last_completed_task_time: w.last_completed.clone(),
                    blacklisted_until: w.blacklisted_until.as_ref().map(|(_, iso)| iso.clone()),
                })
            })
            .collect();
        RunnerSnapshot { tasks, workers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::select::SelectStrategy;

    fn runner() -> (RunnerState, mpsc::UnboundedReceiver<RunnerEvent>) {
        runner_of(RunnerType::Remote)
    }

    fn runner_of(runner_type: RunnerType) -> (RunnerState, mpsc::UnboundedReceiver<RunnerEvent>) {
        let config = RunnerConfig {
            internal_client: Default::default(),
            strategy: SelectStrategy::EqualDistribution,
            min_worker_version: "0".into(),
            task_assignment_timeout: Duration::from_secs(300),
            task_cleanup_timeout: Duration::from_secs(900),
            task_shutdown_link_timeout: Duration::from_secs(1),
            max_retries_before_blacklist: 5,
            worker_blacklist_backoff_time: Duration::from_secs(900),
            max_percentage_blacklist_workers: 20,
            max_znode_bytes: 1000,
            runner_type,
            worker_sync_unstable_timeout: Duration::from_secs(60),
        };
        // Never connected: the tests read the effects the decisions produce, nothing executes them.
        let transport = match runner_type {
            RunnerType::Remote => Transport::Zk {
                session: drover_zk::ZkSession::start("127.0.0.1:1".into(), Duration::from_secs(2)),
                paths: drover_zk::ZkPaths::new("/druid"),
            },
            RunnerType::HttpRemote => Transport::Http,
        };
        let (events, rx) = mpsc::unbounded_channel();
        let (self_tx, _self_rx) = mpsc::unbounded_channel();
        (
            RunnerState::new(
                config,
                transport,
                events,
                self_tx,
                crate::scope::LeaderScope::new(),
            ),
            rx,
        )
    }

    fn worker(host: &str, capacity: i32) -> Worker {
        Worker {
            scheme: "http".into(),
            host: host.into(),
            ip: "127.0.0.1".into(),
            capacity,
            version: "0".into(),
            category: drover_core::DEFAULT_WORKER_CATEGORY.into(),
        }
    }

    fn task(id: &str) -> Arc<Task> {
        Arc::new(
            Task::from_json_bytes(format!(r#"{{"type":"noop","id":"{id}"}}"#).as_bytes()).unwrap(),
        )
    }

    /// A noop task with id `big` and `pad` bytes of padding in its context.
    fn big_task(pad: usize) -> Arc<Task> {
        let pad = "A".repeat(pad);
        Arc::new(
            Task::from_json_bytes(
                format!(r#"{{"type":"noop","id":"big","context":{{"pad":"{pad}"}}}}"#).as_bytes(),
            )
            .unwrap(),
        )
    }

    fn id(s: &str) -> TaskId {
        TaskId::new(s).unwrap()
    }

    fn host(s: &str) -> WorkerHost {
        WorkerHost::new(s).unwrap()
    }

    fn place(r: &RunnerState, t: &str) -> Place {
        r.tasks[&id(t)].place.clone()
    }

    fn sync(
        r: &mut RunnerState,
        started: Instant,
        assignments: Vec<(WorkerHost, Vec<TaskId>)>,
        workers: Vec<Worker>,
    ) {
        r.full_sync(started, assignments, workers, vec![]);
    }

    fn running_status(t: &str, port: i32) -> TaskAnnouncement {
        let st = TaskStatus::running(id(t)).with_location(TaskLocation::new("127.0.0.1", port));
        TaskAnnouncement::new(st, "noop", TaskResource::for_task(&id(t)), "none")
    }

    #[tokio::test]
    async fn decisions_come_out_as_effects() {
        let (mut r, _events) = runner();
        sync(&mut r, Instant::now(), vec![], vec![worker("a:1", 2)]);
        r.effects.clear();
        r.on_run(task("t1"));
        assert!(
            matches!(r.effects.as_slice(), [Effect::Assign { task, worker, url }]
                if task.id == id("t1") && *worker == host("a:1") && url == "http://a:1"),
            "{:?}",
            r.effects
        );
        r.effects.clear();
        // An assigned task may or may not have started: the assignment is withdrawn and the
        // worker asked.
        r.on_shutdown(id("t1"), "stop".into());
        assert_eq!(
            r.effects,
            [
                Effect::Withdraw {
                    task: id("t1"),
                    worker: host("a:1")
                },
                Effect::ShutdownOnWorker {
                    task: id("t1"),
                    worker: host("a:1"),
                    url: "http://a:1/druid/worker/v1/task/t1/shutdown".into(),
                },
            ]
        );
        r.effects.clear();
        // A vanished worker is cleaned up: its status directory goes.
        r.cleanup_worker(host("a:1"));
        assert_eq!(r.effects.last(), Some(&Effect::ForgetWorker(host("a:1"))));
    }

    #[tokio::test]
    async fn the_http_runner_assigns_again_once_the_worker_has_recorded_a_task() {
        let (mut r, mut events) = runner_of(RunnerType::HttpRemote);
        r.on_worker_event(WorkerEvent::WorkerSnapshot {
            started: Instant::now(),
            worker: worker("a:1", 4),
            statuses: vec![],
        });
        assert!(
            r.effects.is_empty(),
            "nothing runs before the runner is ready"
        );
        r.on_worker_event(WorkerEvent::Synced);
        assert!(matches!(events.recv().await, Some(RunnerEvent::Ready)));
        // Any size goes over HTTP (max_znode_bytes is 1000 here).
        r.on_run(big_task(5000));
        r.on_run(task("t2"));
        assert_eq!(r.effects.len(), 1, "one assignment in flight per worker");
        r.handle(RunnerMsg::AssignAcked {
            id: id("big"),
            worker: host("a:1"),
        });
        assert!(
            matches!(r.effects.as_slice(), [Effect::Assign { task: a, .. }, Effect::Assign { task: b, .. }]
                if a.id == id("big") && b.id == id("t2")),
            "{:?}",
            r.effects
        );
        assert!(matches!(place(&r, "t2"), Place::Assigned { .. }));
    }

    #[tokio::test]
    async fn a_worker_snapshot_fails_what_it_lost_and_reassigns_what_it_never_got() {
        let (mut r, _events) = runner_of(RunnerType::HttpRemote);
        let long_ago = Instant::now();
        r.on_worker_event(WorkerEvent::WorkerSnapshot {
            started: long_ago,
            worker: worker("a:1", 4),
            statuses: vec![],
        });
        r.on_worker_event(WorkerEvent::Synced);
        r.on_run(task("running"));
        r.on_worker_event(WorkerEvent::StatusUpserted(
            host("a:1"),
            running_status("running", 8100),
        ));
        r.on_run(task("assigned"));
        assert!(matches!(place(&r, "assigned"), Place::Assigned { .. }));
        // The worker restarted: its new life reports nothing.
        r.on_worker_event(WorkerEvent::WorkerSnapshot {
            started: Instant::now() + CALL_TIMEOUT * 2,
            worker: worker("a:1", 4),
            statuses: vec![],
        });
        assert!(matches!(place(&r, "running"), Place::Complete { .. }));
        assert!(r.tasks[&id("running")].status.is_complete());
        // Back to pending, and handed out again at once.
        assert!(matches!(place(&r, "assigned"), Place::Assigned { .. }));
        let assigned = r
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::Assign { task, .. } if task.id == id("assigned")))
            .count();
        assert_eq!(assigned, 2);
    }

    #[tokio::test]
    async fn a_task_whose_assignment_answer_was_lost_is_never_run_elsewhere() {
        let (mut r, _events) = runner_of(RunnerType::HttpRemote);
        for w in ["a:1", "b:1"] {
            r.on_worker_event(WorkerEvent::WorkerSnapshot {
                started: Instant::now(),
                worker: worker(w, 4),
                statuses: vec![],
            });
        }
        r.on_worker_event(WorkerEvent::Synced);
        r.on_run(task("t1"));
        let Place::Assigned { worker: first, .. } = place(&r, "t1") else {
            panic!("assigned")
        };
        r.effects.clear();
        r.handle(RunnerMsg::AssignUncertain {
            id: id("t1"),
            worker: first.clone(),
            error: "connection closed before message completed".into(),
        });
        assert!(
            matches!(place(&r, "t1"), Place::Assigned { worker, uncertain: true, .. } if worker == first)
        );
        assert!(
            !r.effects.iter().any(|e| matches!(e, Effect::Assign { .. })),
            "{:?}",
            r.effects
        );
        // The worker comes back from a restart without it: it may have run, so it fails.
        r.on_worker_event(WorkerEvent::WorkerSnapshot {
            started: Instant::now() + CALL_TIMEOUT * 2,
            worker: worker(first.as_str(), 4),
            statuses: vec![],
        });
        assert!(matches!(place(&r, "t1"), Place::Complete { .. }));
        assert!(r.tasks[&id("t1")].status.is_complete());
    }

    #[tokio::test]
    async fn a_task_too_large_for_its_znode_fails_alone_and_others_are_assigned() {
        let (mut r, mut events) = runner();
        sync(&mut r, Instant::now(), vec![], vec![worker("a:1", 2)]);
        r.on_run(big_task(2000));
        r.on_run(task("small"));
        assert_eq!(place(&r, "big"), Place::Complete { worker: None });
        assert!(matches!(place(&r, "small"), Place::Assigned { .. }));
        let status = loop {
            match events.recv().await {
                Some(RunnerEvent::Status(status)) => break status,
                Some(RunnerEvent::Ready) => continue,
                None => panic!("the big task's failure is reported"),
            }
        };
        assert_eq!(status.id, id("big"));
        assert!(status.is_complete());
        let reason = status.error_msg.unwrap_or_default();
        assert!(reason.contains("max_znode_bytes"), "{reason}");
        r.on_cleanup(id("big"));
        assert!(!r.tasks.contains_key(&id("big")));
    }

    #[tokio::test]
    async fn assigns_in_order_within_capacity_one_unacknowledged_at_a_time() {
        let (mut r, _events) = runner();
        sync(
            &mut r,
            Instant::now(),
            vec![],
            vec![worker("a:1", 2), worker("b:1", 2)],
        );
        for t in ["t1", "t2", "t3"] {
            r.on_run(task(t));
        }
        // One assignment in flight per worker: t1 and t2 go out, t3 waits for an acknowledgement.
        assert!(matches!(place(&r, "t1"), Place::Assigned { .. }));
        assert!(matches!(place(&r, "t2"), Place::Assigned { .. }));
        assert_eq!(place(&r, "t3"), Place::Pending);
        let Place::Assigned { worker: w1, .. } = place(&r, "t1") else {
            unreachable!()
        };
        r.on_worker_event(WorkerEvent::StatusUpserted(
            w1.clone(),
            running_status("t1", 8100),
        ));
        assert_eq!(place(&r, "t1"), Place::Running { worker: w1.clone() });
        assert!(matches!(place(&r, "t3"), Place::Assigned { worker, .. } if worker == w1));
    }

    #[tokio::test]
    async fn an_assignment_left_by_a_previous_overlord_is_adopted_not_repeated() {
        let (mut r, mut events) = runner();
        sync(
            &mut r,
            Instant::now(),
            vec![(host("a:1"), vec![id("t1")])],
            vec![worker("a:1", 3), worker("b:1", 3)],
        );
        assert!(matches!(events.try_recv(), Ok(RunnerEvent::Ready)));
        // The queue hands over the same task after the restart: it stays with worker a.
        r.on_run(task("t1"));
        assert!(matches!(place(&r, "t1"), Place::Assigned { worker, .. } if worker == host("a:1")));
        // The old assignment vanished without the worker starting it: back to pending, and
        // assigned afresh.
        sync(
            &mut r,
            Instant::now() + Duration::from_secs(11),
            vec![],
            vec![worker("a:1", 3), worker("b:1", 3)],
        );
        r.try_assign();
        assert!(
            matches!(place(&r, "t1"), Place::Assigned { since, .. } if since.elapsed() < Duration::from_secs(5))
        );
    }

    #[tokio::test]
    async fn a_recent_assignment_missing_from_a_sync_is_kept() {
        let (mut r, _events) = runner();
        sync(&mut r, Instant::now(), vec![], vec![worker("a:1", 3)]);
        r.on_run(task("t1"));
        // A sync that began before the create landed must not undo it.
        sync(&mut r, Instant::now(), vec![], vec![worker("a:1", 3)]);
        assert!(matches!(place(&r, "t1"), Place::Assigned { .. }));
    }

    #[tokio::test]
    async fn running_tasks_are_rediscovered_and_reported() {
        let (mut r, mut events) = runner();
        r.full_sync(
            Instant::now(),
            vec![],
            vec![worker("a:1", 3)],
            vec![(host("a:1"), vec![running_status("t9", 8101)])],
        );
        match events.try_recv() {
            Ok(RunnerEvent::Status(s)) => {
                assert_eq!(s.id, id("t9"));
                assert_eq!(s.location.port, 8101);
            }
            other => panic!("expected the rediscovered status, got {other:?}"),
        }
        r.on_run(task("t9"));
        assert_eq!(
            place(&r, "t9"),
            Place::Running {
                worker: host("a:1")
            }
        );
    }

    #[tokio::test]
    async fn a_vanished_worker_fails_its_tasks_only_after_the_cleanup_timeout() {
        let (mut r, mut events) = runner();
        r.full_sync(
            Instant::now(),
            vec![],
            vec![worker("a:1", 3)],
            vec![(host("a:1"), vec![running_status("t1", 8100)])],
        );
        while events.try_recv().is_ok() {}
        r.on_worker_event(WorkerEvent::WorkerRemoved(host("a:1")));
        r.on_tick(Instant::now());
        assert_eq!(
            place(&r, "t1"),
            Place::Running {
                worker: host("a:1")
            },
            "still waiting for the worker"
        );
        // It comes back in time: nothing is failed.
        r.on_worker_event(WorkerEvent::WorkerUpserted(worker("a:1", 3)));
        r.on_tick(Instant::now() + Duration::from_secs(1000));
        assert_eq!(
            place(&r, "t1"),
            Place::Running {
                worker: host("a:1")
            }
        );
        // It goes away for good.
        r.on_worker_event(WorkerEvent::WorkerRemoved(host("a:1")));
        r.on_tick(Instant::now() + Duration::from_secs(901));
        match events.try_recv() {
            Ok(RunnerEvent::Status(s)) => assert!(s.error_msg.unwrap().contains("worker cleanup")),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn finished(t: &str, ok: bool) -> TaskAnnouncement {
        let st = if ok {
            TaskStatus::success(id(t))
        } else {
            TaskStatus::failure(id(t), "boom")
        };
        TaskAnnouncement::new(st, "noop", TaskResource::for_task(&id(t)), "none")
    }

    #[tokio::test]
    async fn a_worker_failing_task_after_task_is_blacklisted_until_it_succeeds() {
        let (mut r, _events) = runner();
        let workers: Vec<Worker> = ["a:1", "b:1", "c:1", "d:1", "e:1"]
            .iter()
            .map(|h| worker(h, 100))
            .collect();
        sync(&mut r, Instant::now(), vec![], workers);
        for i in 0..6 {
            let t = format!("f{i}");
            r.on_worker_event(WorkerEvent::StatusUpserted(
                host("a:1"),
                running_status(&t, 8100),
            ));
            r.on_worker_event(WorkerEvent::StatusUpserted(
                host("a:1"),
                finished(&t, false),
            ));
            // Repeated reports of the same failure (full syncs) count once.
            r.on_worker_event(WorkerEvent::StatusUpserted(
                host("a:1"),
                finished(&t, false),
            ));
        }
        assert!(r.workers[&host("a:1")].blacklisted(Instant::now()));
        let snapshot = r.snapshot();
        let a = snapshot
            .workers
            .iter()
            .find(|w| w.worker.host == "a:1")
            .unwrap();
        assert!(a.blacklisted_until.is_some());
        // a is the emptiest worker by far, yet gets nothing while blacklisted.
        for i in 0..4 {
            r.on_run(task(&format!("n{i}")));
            assert!(
                !matches!(place(&r, &format!("n{i}")), Place::Assigned { worker, .. } if worker == host("a:1"))
            );
        }
        // The blacklisting runs out; a success clears the record.
        r.on_tick(Instant::now() + Duration::from_secs(901));
        assert!(!r.workers[&host("a:1")].blacklisted(Instant::now() + Duration::from_secs(901)));
        r.on_worker_event(WorkerEvent::StatusUpserted(
            host("a:1"),
            running_status("ok", 8101),
        ));
        r.on_worker_event(WorkerEvent::StatusUpserted(
            host("a:1"),
            finished("ok", true),
        ));
        assert_eq!(r.workers[&host("a:1")].failed_in_a_row, 0);
    }
}
