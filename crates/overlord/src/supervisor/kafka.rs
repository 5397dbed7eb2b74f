//! One Kafka supervisor: a tokio task that owns the supervisor's state, fed by notices (a run on
//! every `period`, reset, status, graceful stop). Each run follows Druid's `runInternal`
//! (see docs/architecture.md): partitions from Kafka, discover this supervisor's tasks, update their
//! status, stop groups whose `taskDuration` is over, watch publishing groups, replace failed
//! tasks, create missing ones. Decisions about offsets are the pure functions of `groups`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use chrono::{DateTime, Utc};
use drover_core::stream_offsets::StreamOffsets;
use drover_core::time::{now_iso, to_iso};
use drover_core::{TaskGroupId, TaskId, TaskState};
use drover_kafka::client::{StreamClient, StreamError};
use drover_kafka::task::{base_sequence_name, task_group_id, NewTask, END_OF_STREAM};
use drover_kafka::{KafkaSupervisorSpec, KafkaTaskIo, Offsets};
use drover_task::{Task, TaskKind};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};

use super::chat::{ChatClient, ChatError};
use super::decide::{
    groups_reading, groups_to_finish, pending_completion, reading_state, Mode, Publishing,
    ReadingState,
};
use super::error::RunError;
use super::groups::{
    checkpoint_request, group_of, lag, max_offsets, start_offsets, CheckpointRequest, StartFrom,
};
use super::health::Health;
use super::SupervisorContext;

pub enum Notice {
    Run,
    /// A task reached a terminal status; a run follows if it is one of ours.
    TaskEnded(TaskId),
    /// A reading task asks to close its open sequence, which started at `start`.
    Checkpoint {
        task: TaskId,
        group: TaskGroupId,
        start: Offsets,
    },
    /// `None`: forget every stored offset; `Some`: store these for their partitions.
    Reset(Option<StreamOffsets>, oneshot::Sender<Result<(), RunError>>),
    Stats(oneshot::Sender<Value>),
    /// The newest parse errors of the supervisor's tasks (`GET /supervisor/{id}/parseErrors`).
    ParseErrors(oneshot::Sender<Vec<Value>>),
    /// Tell every reading task to finish and publish, then stop supervising.
    GracefulStop(oneshot::Sender<()>),
}

/// What a supervisor shows, published after everything it handles, so a status request reads it
/// at once instead of waiting behind a run (which may wait on Kafka or a task's chat API).
#[derive(Debug, Clone)]
pub struct Published {
    /// The status report (`GET /supervisor/{id}/status`).
    pub report: Value,
    pub state: String,
    pub detailed_state: String,
    pub healthy: bool,
}

#[derive(Clone)]
pub struct SupervisorHandle {
    pub spec: Arc<KafkaSupervisorSpec>,
    tx: mpsc::UnboundedSender<Notice>,
    published: watch::Receiver<Arc<Published>>,
}

impl SupervisorHandle {
    /// The report and state as of the supervisor's last step.
    pub fn published(&self) -> Arc<Published> {
        self.published.borrow().clone()
    }

    pub fn notify(&self, n: Notice) -> bool {
        self.tx.send(n).is_ok()
    }

    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Notice) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).ok()?;
        rx.await.ok()
    }
}

#[derive(Debug, Clone)]
struct TaskData {
    status: TaskState,
    location: Option<String>,
    start_time: Option<DateTime<Utc>>,
    current: Offsets,
    counted: bool,
}

#[derive(Debug, Clone)]
struct TaskGroup {
    id: TaskGroupId,
    start: Offsets,
    checkpoints: BTreeMap<u32, Offsets>,
    base_sequence_name: String,
    minimum_message_time: Option<DateTime<Utc>>,
    maximum_message_time: Option<DateTime<Utc>>,
    tasks: BTreeMap<TaskId, TaskData>,
    created: DateTime<Utc>,
    completion_deadline: Option<Instant>,
}

impl TaskGroup {
    fn start_time(&self) -> DateTime<Utc> {
        self.tasks
            .values()
            .filter_map(|t| t.start_time)
            .min()
            .unwrap_or(self.created)
    }
}

fn new_task_data() -> TaskData {
    TaskData {
        status: TaskState::Running,
        location: None,
        start_time: None,
        current: Offsets::new(),
        counted: false,
    }
}

pub fn start(
    spec: KafkaSupervisorSpec,
    ctx: SupervisorContext,
    scope: &crate::scope::LeaderScope,
) -> SupervisorHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let spec = Arc::new(spec);
    let (ctx_http, spec_timeout) = (ctx.http.clone(), spec.tuning.http_timeout);
    let ctx_secret = ctx.task_token_secret.clone();
    let supervisor = KafkaSupervisor {
        spec: spec.clone(),
        ctx,
        client: None,
        partitions: Vec::new(),
        partition_groups: BTreeMap::new(),
        reading: BTreeMap::new(),
        pending: BTreeMap::new(),
        latest: Offsets::new(),
        offsets_updated: None,
        last_offset_fetch: None,
        health: Health::new(),
        stopping: false,
        chat: ChatClient::new(ctx_http, spec_timeout, ctx_secret),
        parse_errors: Vec::new(),
        published: watch::Sender::new(Arc::new(Published {
            report: Value::Null,
            state: String::new(),
            detailed_state: String::new(),
            healthy: true,
        })),
    };
    supervisor.publish();
    let published = supervisor.published.subscribe();
    scope.spawn(supervisor.run(rx, tx.clone()));
    SupervisorHandle {
        spec,
        tx,
        published,
    }
}

struct KafkaSupervisor {
    spec: Arc<KafkaSupervisorSpec>,
    ctx: SupervisorContext,
    client: Option<Arc<StreamClient>>,
    partitions: Vec<i32>,
    /// Group → its partitions and where each starts next.
    partition_groups: BTreeMap<TaskGroupId, BTreeMap<i32, StartFrom>>,
    reading: BTreeMap<TaskGroupId, TaskGroup>,
    /// Groups that stopped reading and are publishing, oldest first.
    pending: BTreeMap<TaskGroupId, Vec<TaskGroup>>,
    latest: Offsets,
    offsets_updated: Option<DateTime<Utc>>,
    last_offset_fetch: Option<Instant>,
    health: Health,
    stopping: bool,
    /// Typed calls to the tasks' chat API.
    chat: ChatClient,
    /// The parse errors last shown, newest first (tasks that ended took theirs with them).
    parse_errors: Vec<Value>,
    /// What status requests read (see `Published`).
    published: watch::Sender<Arc<Published>>,
}

impl KafkaSupervisor {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Notice>,
        tx: mpsc::UnboundedSender<Notice>,
    ) {
        tracing::info!(supervisor = %self.spec.id, suspended = self.spec.suspended, "supervisor started");
        let period = self.spec.io.period;
        let start_delay = self.spec.io.start_delay;
        let ticks = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(start_delay).await;
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                if ticks.send(Notice::Run).is_err() {
                    return;
                }
            }
        });
        // Druid's task-status listener: a task that ends (a kill -9'd peon, a failed publish)
        // is handled now rather than on the next period.
        let mut completions = self.ctx.queue.completions();
        tokio::spawn(async move {
            loop {
                match completions.recv().await {
                    Ok(done) => {
                        if tx.send(Notice::TaskEnded(done.status.id)).is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if tx.send(Notice::Run).is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        // Notices taken out of the channel while collapsing runs, handled next.
        let mut deferred = std::collections::VecDeque::new();
        loop {
            let notice = match deferred.pop_front() {
                Some(n) => n,
                None => match rx.recv().await {
                    Some(n) => n,
                    None => break,
                },
            };
            match notice {
                Notice::Run | Notice::TaskEnded(_) => {
                    if let Notice::TaskEnded(id) = &notice {
                        if !self.known_task(id) {
                            continue;
                        }
                    }
                    // Runs queued while one was going on collapse into one; anything else
                    // waits its turn.
                    while let Ok(n) = rx.try_recv() {
                        if !matches!(n, Notice::Run | Notice::TaskEnded(_)) {
                            deferred.push_back(n);
                        }
                    }
                    self.run_once().await;
                }
                Notice::Checkpoint { task, group, start } => {
                    self.checkpoint(&task, group, &start).await;
                }
                Notice::Reset(offsets, reply) => {
                    reply.send(self.reset(offsets).await).ok();
                }
                Notice::Stats(reply) => {
                    reply.send(self.stats().await).ok();
                }
                Notice::ParseErrors(reply) => {
                    reply.send(self.parse_errors().await).ok();
                }
                Notice::GracefulStop(reply) => {
                    self.stopping = true;
                    self.health.stopping();
                    let deadline = self.spec.tuning.shutdown_timeout;
                    if tokio::time::timeout(deadline, self.run_once())
                        .await
                        .is_err()
                    {
                        tracing::warn!(supervisor = %self.spec.id, "graceful stop did not finish in shutdownTimeout");
                    }
                    reply.send(()).ok();
                    break;
                }
            }
            self.publish();
        }
        tracing::info!(supervisor = %self.spec.id, "supervisor stopped");
    }

    async fn run_once(&mut self) {
        let started = Instant::now();
        if let Err(e) = self.update_partitions().await {
            tracing::warn!(supervisor = %self.spec.id, error = %e, "cannot read partitions from Kafka");
            self.health
                .error(Utc::now(), "StreamException", e.to_string(), true);
            self.health.run_finished(self.spec.suspended);
            return;
        }
        self.health.connected();
        let steps = async {
            self.discover_tasks().await?;
            self.update_task_status().await?;
            self.check_task_duration().await?;
            self.check_pending_completion().await?;
            self.check_current_task_state();
            if !self.spec.suspended && !self.stopping {
                self.create_new_tasks().await?;
            }
            Ok::<(), RunError>(())
        };
        if let Err(e) = steps.await {
            tracing::warn!(supervisor = %self.spec.id, error = %e, "supervisor run failed");
            self.health
                .error(Utc::now(), "SupervisorException", e.to_string(), false);
        }
        self.health.run_finished(self.spec.suspended);
        tracing::debug!(supervisor = %self.spec.id, ms = started.elapsed().as_millis() as u64, "run done");
    }

    async fn blocking<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&StreamClient) -> Result<T, StreamError> + Send + 'static,
    ) -> Result<T, RunError> {
        let client = match &self.client {
            Some(c) => c.clone(),
            None => {
                let props = self.spec.io.consumer_properties.clone();
                let timeout = self.spec.tuning.http_timeout;
                let c = tokio::task::spawn_blocking(move || StreamClient::new(&props, timeout))
                    .await??;
                let c = Arc::new(c);
                self.client = Some(c.clone());
                c
            }
        };
        Ok(tokio::task::spawn_blocking(move || f(&client)).await??)
    }

    fn task_count(&self) -> u32 {
        self.spec.effective_task_count(self.partitions.len())
    }

    async fn update_partitions(&mut self) -> Result<(), RunError> {
        let topic = self.spec.io.topic.clone();
        let partitions = self.blocking(move |c| c.partitions(&topic)).await?;
        if partitions != self.partitions {
            tracing::info!(supervisor = %self.spec.id, ?partitions, "partitions of the topic");
            self.partitions = partitions;
        }
        let count = self.task_count();
        for p in self.partitions.clone() {
            let g = group_of(p, count);
            let known = self.partition_groups.values().any(|m| m.contains_key(&p));
            if !known {
                self.partition_groups
                    .entry(g)
                    .or_default()
                    .insert(p, StartFrom::NotSet);
            }
        }
        let due = self
            .last_offset_fetch
            .is_none_or(|t| t.elapsed() >= self.spec.tuning.offset_fetch_period);
        if due {
            self.fetch_latest().await?;
        }
        Ok(())
    }

    async fn fetch_latest(&mut self) -> Result<(Offsets, Offsets), RunError> {
        let topic = self.spec.io.topic.clone();
        let parts = self.partitions.clone();
        let (earliest, latest) = self.blocking(move |c| c.watermarks(&topic, &parts)).await?;
        self.latest = latest.clone();
        self.offsets_updated = Some(Utc::now());
        self.last_offset_fetch = Some(Instant::now());
        Ok((earliest, latest))
    }

    /// Where the runner says a task runs: the base URL of its chat API (`https://` on its TLS
    /// port when it has one).
    async fn locations(&self) -> BTreeMap<TaskId, String> {
        let Some(tasks) = self.ctx.runner.tasks(crate::runner::TaskFilter::All).await else {
            return BTreeMap::new();
        };
        tasks
            .into_iter()
            .filter_map(|t| Some((t.id, super::chat::chat_base(&t.location)?)))
            .collect()
    }

    fn known_task(&self, id: &TaskId) -> bool {
        self.reading.values().any(|g| g.tasks.contains_key(id))
            || self
                .pending
                .values()
                .flatten()
                .any(|g| g.tasks.contains_key(id))
    }

    async fn kill(&self, id: &TaskId, why: &str) {
        tracing::info!(supervisor = %self.spec.id, task = %id, reason = why, "killing task");
        if let Err(e) = self.ctx.queue.shutdown(id.clone(), why).await {
            tracing::warn!(task = %id, error = %e, "cannot shut the task down");
        }
    }

    fn current_name(&self, io: &KafkaTaskIo) -> String {
        base_sequence_name(
            &self.spec,
            &io.start,
            io.minimum_message_time,
            io.maximum_message_time,
        )
    }

    /// Adopts the active `index_kafka` tasks of this data source that this supervisor does not
    /// know yet (after a restart, a failover or a replaced spec).
    async fn discover_tasks(&mut self) -> Result<(), RunError> {
        let rows = self.ctx.store.active_tasks().await?;
        let group_id = task_group_id(&self.spec.data_source);
        let locations = self.locations().await;
        for row in rows {
            let task = row.task;
            let TaskKind::Kafka(spec) = &task.kind else {
                continue;
            };
            if task.data_source != self.spec.data_source
                || task.group_id != group_id
                || self.known_task(&task.id)
            {
                continue;
            }
            let io = &spec.io;
            let location = locations.get(&task.id).cloned();
            // A task that already has final end offsets is finishing: let it publish.
            let mut finishing = false;
            let mut checkpoints = io.checkpoints.clone();
            if let Some(loc) = &location {
                if let Ok(status) = self.chat.status(loc, &task.id).await {
                    finishing |= status == "PUBLISHING";
                }
                if let Ok(end) = self.chat.end_offsets(loc, &task.id).await {
                    finishing |= end.values().all(|o| *o != END_OF_STREAM);
                }
                if let Ok(c) = self.chat.checkpoints(loc, &task.id).await {
                    if !c.is_empty() {
                        checkpoints = c;
                    }
                }
            }
            let mut data = new_task_data();
            data.location = location;
            let group = || TaskGroup {
                id: io.task_group_id,
                start: io.start.clone(),
                checkpoints: checkpoints.clone(),
                base_sequence_name: io.base_sequence_name.clone(),
                minimum_message_time: io.minimum_message_time,
                maximum_message_time: io.maximum_message_time,
                tasks: BTreeMap::new(),
                created: Utc::now(),
                completion_deadline: Some(Instant::now() + self.spec.io.completion_timeout),
            };
            if finishing {
                tracing::info!(supervisor = %self.spec.id, task = %task.id, "discovered a publishing task");
                let list = self.pending.entry(io.task_group_id).or_default();
                match list
                    .iter_mut()
                    .find(|g| g.base_sequence_name == io.base_sequence_name)
                {
                    Some(g) => {
                        g.tasks.insert(task.id.clone(), data);
                    }
                    None => {
                        let mut g = group();
                        g.tasks.insert(task.id.clone(), data);
                        list.push(g);
                    }
                }
                continue;
            }
            if io.base_sequence_name != self.current_name(io) {
                self.kill(
                    &task.id,
                    "its configuration is not the supervisor's current one",
                )
                .await;
                continue;
            }
            match self.reading.get_mut(&io.task_group_id) {
                Some(g) if g.base_sequence_name == io.base_sequence_name => {
                    g.tasks.insert(task.id.clone(), data);
                }
                Some(_) => {
                    self.kill(&task.id, "another task group reads these partitions")
                        .await;
                }
                None => {
                    tracing::info!(supervisor = %self.spec.id, task = %task.id, group = %io.task_group_id, "discovered a reading task");
                    let mut g = group();
                    g.completion_deadline = None;
                    g.tasks.insert(task.id.clone(), data);
                    self.reading.insert(io.task_group_id, g);
                }
            }
        }
        Ok(())
    }

    fn all_task_ids(&self) -> Vec<TaskId> {
        self.reading
            .values()
            .chain(self.pending.values().flatten())
            .flat_map(|g| g.tasks.keys().cloned())
            .collect()
    }

    async fn update_task_status(&mut self) -> Result<(), RunError> {
        let ids = self.all_task_ids();
        if ids.is_empty() {
            return Ok(());
        }
        let statuses: BTreeMap<TaskId, TaskState> = self
            .ctx
            .store
            .get_statuses(&ids)
            .await?
            .into_iter()
            .map(|s| (s.id, s.status))
            .collect();
        let locations = self.locations().await;
        let mut queries = Vec::new();
        let mut finished = Vec::new();
        for g in self
            .reading
            .values_mut()
            .chain(self.pending.values_mut().flatten())
        {
            for (id, t) in g.tasks.iter_mut() {
                if let Some(s) = statuses.get(id) {
                    t.status = *s;
                }
                if t.status.is_complete() && !t.counted {
                    t.counted = true;
                    finished.push(t.status == TaskState::Success);
                }
                if let Some(l) = locations.get(id) {
                    t.location = Some(l.clone());
                }
                if t.status == TaskState::Running {
                    if let Some(l) = &t.location {
                        queries.push((id.clone(), l.clone(), t.start_time.is_none()));
                    }
                }
            }
        }
        for success in finished {
            self.health.task_finished(success);
        }
        // Start times and current offsets, asked of all running tasks at once.
        let this = &*self;
        let answers =
            futures::future::join_all(queries.iter().map(|(id, loc, need_start)| async move {
                let start = if *need_start {
                    this.chat.start_time(loc, id).await.ok()
                } else {
                    None
                };
                let current = this.chat.current_offsets(loc, id).await.ok();
                (id.clone(), start, current)
            }))
            .await;
        for (id, start, current) in answers {
            for g in self
                .reading
                .values_mut()
                .chain(self.pending.values_mut().flatten())
            {
                if let Some(t) = g.tasks.get_mut(&id) {
                    if start.is_some() {
                        t.start_time = start;
                    }
                    if let Some(c) = &current {
                        t.current = c.clone();
                    }
                }
            }
        }
        Ok(())
    }

    async fn check_task_duration(&mut self) -> Result<(), RunError> {
        let duration =
            chrono::Duration::from_std(self.spec.io.task_duration).unwrap_or(chrono::Duration::MAX);
        let mode = if self.stopping {
            Mode::Stopping
        } else if self.spec.suspended {
            Mode::Suspended
        } else {
            Mode::Reading
        };
        let still_publishing: BTreeSet<TaskGroupId> = self
            .pending
            .iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(g, _)| *g)
            .collect();
        let reading = self
            .reading
            .iter()
            .map(|(g, group)| (*g, group.start_time()));
        let due = groups_to_finish(reading, &still_publishing, mode, duration, Utc::now());
        for g in due {
            self.finish_group(g).await;
        }
        Ok(())
    }

    /// Druid's `checkpoint` notice: the group's replicas close their open sequence at the
    /// furthest offsets any of them reached and read on in a new one. A request for a sequence
    /// already closed (another replica asked first) is a no-op.
    async fn checkpoint(&mut self, task: &TaskId, g: TaskGroupId, start: &Offsets) {
        // The asking task may be newer than the last run (or this supervisor just took over):
        // adopt it and learn where the group's tasks are.
        if !self.known_task(task) {
            if let Err(e) = self.discover_tasks().await {
                tracing::warn!(supervisor = %self.spec.id, error = %e, "cannot discover tasks before a checkpoint");
            }
        }
        if let Err(e) = self.update_task_status().await {
            tracing::warn!(supervisor = %self.spec.id, error = %e, "cannot update task status before a checkpoint");
        }
        // A group that has finished reading (or was replaced) since the task asked: its end
        // offsets are already set, which ends the task's wait as well.
        let Some(group) = self
            .reading
            .get(&g)
            .filter(|group| group.tasks.contains_key(task))
        else {
            tracing::info!(supervisor = %self.spec.id, %task, group = %g, "checkpoint from a task that is not reading in this group; ignored");
            return;
        };
        let next_sequence = match checkpoint_request(&group.checkpoints, start) {
            CheckpointRequest::Close { next_sequence } => next_sequence,
            CheckpointRequest::AlreadyClosed => {
                tracing::debug!(supervisor = %self.spec.id, %task, group = %g, "sequence already checkpointed");
                return;
            }
            CheckpointRequest::Unknown => {
                let why = format!(
                    "task [{task}] asked for a checkpoint of a sequence starting at {start:?}, which \
                     is not one of group {g}'s sequences {:?}",
                    group.checkpoints
                );
                tracing::warn!(supervisor = %self.spec.id, "{why}");
                self.health
                    .error(Utc::now(), "CheckpointException", why, false);
                return;
            }
        };
        tracing::info!(supervisor = %self.spec.id, %task, group = %g, sequence = next_sequence - 1, "checkpointing the task group");
        let group = group.clone();
        match self.end_sequence(&group, false).await {
            Some(end) => {
                if let Some(group) = self.reading.get_mut(&g) {
                    group.checkpoints.insert(next_sequence, end);
                }
            }
            None => {
                tracing::warn!(supervisor = %self.spec.id, group = %g, "no task of the group took the checkpoint; its partitions start again from the stored offsets");
                self.reading.remove(&g);
                for id in group.tasks.keys() {
                    self.kill(id, "its task group failed to checkpoint").await;
                }
                self.set_not_set(g);
            }
        }
    }

    /// Druid's `checkpointTaskGroup(finalize=true)`: pause every replica, end at the furthest
    /// offsets any reached, and let them publish while a new group reads on from there.
    async fn finish_group(&mut self, g: TaskGroupId) {
        let Some(mut group) = self.reading.remove(&g) else {
            return;
        };
        tracing::info!(supervisor = %self.spec.id, group = %g, "task group reached its duration; finishing it");
        if group.tasks.values().any(|t| t.status == TaskState::Success) {
            for (id, t) in &group.tasks {
                if t.status == TaskState::Running {
                    self.stop_task(id, t.location.as_deref()).await;
                }
            }
            self.set_not_set(g);
            return;
        }
        let Some(end) = self.end_sequence(&group, true).await else {
            tracing::warn!(supervisor = %self.spec.id, group = %g, "no task of the group took its end offsets; its partitions start again from the stored offsets");
            for id in group.tasks.keys() {
                self.kill(id, "its task group failed").await;
            }
            self.set_not_set(g);
            return;
        };
        tracing::info!(supervisor = %self.spec.id, group = %g, ?end, "task group publishing");
        // Its tasks end soon and take their parse errors with them: keep them now.
        let fresh = self.fetch_parse_errors(std::iter::once(&group)).await;
        self.keep_parse_errors(fresh);
        group.completion_deadline = Some(Instant::now() + self.spec.io.completion_timeout);
        if let Some(parts) = self.partition_groups.get_mut(&g) {
            for (p, from) in parts.iter_mut() {
                if let Some(o) = end.get(p) {
                    *from = StartFrom::Known(*o);
                }
            }
        }
        self.pending.entry(g).or_default().push(group);
    }

    /// Pauses the group's running tasks, then ends their open sequence at the per-partition
    /// maximum of their offsets: `finish` makes it their last sequence (they publish and exit),
    /// else a new one starts there. Tasks that do not answer are killed. The end offsets, if at
    /// least one task took them.
    async fn end_sequence(&self, group: &TaskGroup, finish: bool) -> Option<Offsets> {
        let mut alive = Vec::new();
        for (id, t) in &group.tasks {
            match (&t.status, &t.location) {
                (TaskState::Running, Some(loc)) => alive.push((id.clone(), loc.clone())),
                (TaskState::Running, None) => {
                    self.kill(
                        id,
                        "its task group is ending a sequence and this task never started",
                    )
                    .await
                }
                _ => {}
            }
        }
        let retries = self.spec.tuning.chat_retries.max(1);
        let this = self;
        let paused = futures::future::join_all(alive.iter().map(|(id, loc)| async move {
            for _ in 0..=retries {
                match this.chat.pause(loc, id).await {
                    Ok(offsets) => return Some(offsets),
                    Err(ChatError::Later) => tokio::time::sleep(Duration::from_millis(500)).await,
                    Err(e) => {
                        tracing::warn!(task = %id, error = %e, "pause failed");
                        return None;
                    }
                }
            }
            None
        }))
        .await;
        let mut responders = Vec::new();
        for ((id, loc), offsets) in alive.into_iter().zip(paused) {
            match offsets {
                Some(o) => responders.push((id, loc, o)),
                None => self.kill(&id, "the task did not pause").await,
            }
        }
        if responders.is_empty() {
            return None;
        }
        let end = max_offsets(responders.iter().map(|(_, _, o)| o));
        let set = futures::future::join_all(responders.iter().map(|(id, loc, _)| {
            let end = &end;
            async move { this.chat.set_end_offsets(loc, id, end, finish).await }
        }))
        .await;
        let mut any = false;
        for ((id, _, _), r) in responders.iter().zip(set) {
            match r {
                Ok(()) => any = true,
                Err(_) => self.kill(id, "the task did not take its end offsets").await,
            }
        }
        any.then_some(end)
    }

    async fn stop_task(&self, id: &TaskId, location: Option<&str>) {
        let stopped = match location {
            Some(loc) => self.chat.stop(loc, id).await.is_ok(),
            None => false,
        };
        if !stopped {
            self.kill(id, "a replica has already published").await;
        }
    }

    fn set_not_set(&mut self, g: TaskGroupId) {
        if let Some(parts) = self.partition_groups.get_mut(&g) {
            for from in parts.values_mut() {
                *from = StartFrom::NotSet;
            }
        }
    }

    async fn check_pending_completion(&mut self) -> Result<(), RunError> {
        let groups: Vec<TaskGroupId> = self.pending.keys().copied().collect();
        for g in groups {
            let list = self.pending.remove(&g).unwrap_or_default();
            let views: Vec<Publishing> = list
                .iter()
                .map(|group| Publishing {
                    tasks: group
                        .tasks
                        .iter()
                        .map(|(id, t)| (id.clone(), t.status))
                        .collect(),
                    deadline: group.completion_deadline,
                })
                .collect();
            let decision = pending_completion(&views, Instant::now());
            let location = |id: &TaskId| {
                list.iter()
                    .find_map(|group| group.tasks.get(id))
                    .and_then(|t| t.location.clone())
            };
            for id in &decision.stop {
                self.stop_task(id, location(id).as_deref()).await;
            }
            let kept: Vec<TaskGroup> = decision.keep.iter().map(|i| list[*i].clone()).collect();
            if decision.failed {
                tracing::warn!(supervisor = %self.spec.id, group = %g, "a publishing task group failed or ran past completionTimeout; its partitions start again from the stored offsets");
                self.health.error(
                    Utc::now(),
                    "TaskGroupFailure",
                    format!(
                        "task group {g} did not publish; reading again from the stored offsets"
                    ),
                    false,
                );
                for id in &decision.kill {
                    self.kill(id, "its task group did not publish in time")
                        .await;
                }
                if let Some(reading) = self.reading.remove(&g) {
                    for id in reading.tasks.keys() {
                        self.kill(id, "an earlier task group of its partitions failed")
                            .await;
                    }
                }
                self.set_not_set(g);
            }
            if !kept.is_empty() {
                self.pending.insert(g, kept);
            }
        }
        Ok(())
    }

    /// Failed reading tasks leave their group; `create_new_tasks` puts replicas back.
    fn check_current_task_state(&mut self) {
        let mut emptied = Vec::new();
        for (g, group) in self.reading.iter_mut() {
            let statuses = group
                .tasks
                .iter()
                .map(|(id, t)| (id.clone(), t.status))
                .collect();
            match reading_state(&statuses) {
                ReadingState::Done => emptied.push(*g),
                ReadingState::Reading { failed } => {
                    for id in failed {
                        tracing::warn!(task = %id, group = %g, "reading task failed; it will be replaced");
                        group.tasks.remove(&id);
                    }
                }
            }
        }
        for g in emptied {
            self.reading.remove(&g);
            self.set_not_set(g);
        }
    }

    async fn create_new_tasks(&mut self) -> Result<(), RunError> {
        let count = self.task_count();
        let missing: Vec<TaskGroupId> = (0..count)
            .map(TaskGroupId)
            .filter(|g| !self.reading.contains_key(g))
            .collect();
        if !missing.is_empty() {
            let (earliest, latest) = self.fetch_latest().await?;
            let stored = self
                .ctx
                .store
                .stream_offsets(&self.spec.data_source)
                .await?
                .filter(|s| s.stream == self.spec.io.topic);
            for g in missing {
                let Some(parts) = self.partition_groups.get(&g) else {
                    continue;
                };
                let start = match start_offsets(
                    parts,
                    stored.as_ref(),
                    &earliest,
                    &latest,
                    self.spec.io.use_earliest_offset,
                    self.spec.tuning.reset_offset_automatically,
                ) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(supervisor = %self.spec.id, group = %g, error = %e, "cannot start a task group");
                        self.health.error(
                            Utc::now(),
                            "OffsetOutOfRangeException",
                            e.to_string(),
                            false,
                        );
                        continue;
                    }
                };
                let now = Utc::now();
                let minimum = match (
                    self.spec.io.late_message_rejection_period,
                    self.spec.io.late_message_rejection_start,
                ) {
                    (Some(p), _) => chrono::Duration::from_std(p).ok().map(|p| now - p),
                    (None, Some(t)) => Some(t),
                    _ => None,
                };
                let maximum = self.spec.io.early_message_rejection_period.and_then(|p| {
                    Some(now + chrono::Duration::from_std(self.spec.io.task_duration + p).ok()?)
                });
                let name = base_sequence_name(&self.spec, &start, minimum, maximum);
                tracing::info!(supervisor = %self.spec.id, group = %g, ?start, "new task group");
                self.reading.insert(
                    g,
                    TaskGroup {
                        id: g,
                        checkpoints: [(0, start.clone())].into(),
                        start,
                        base_sequence_name: name,
                        minimum_message_time: minimum,
                        maximum_message_time: maximum,
                        tasks: BTreeMap::new(),
                        created: now,
                        completion_deadline: None,
                    },
                );
            }
        }
        let replicas = self.spec.io.replicas as usize;
        let mut created = Vec::new();
        for group in self.reading.values() {
            for _ in group.tasks.len()..replicas {
                let json = NewTask {
                    spec: &self.spec,
                    group: group.id,
                    base_sequence_name: &group.base_sequence_name,
                    start: &group.start,
                    checkpoints: &group.checkpoints,
                    minimum_message_time: group.minimum_message_time,
                    maximum_message_time: group.maximum_message_time,
                }
                .to_json();
                let task =
                    Task::from_value(json).map_err(|e| RunError::BuildTask(e.to_string()))?;
                created.push((group.id, task));
            }
        }
        for (g, task) in created {
            let id = task.id.clone();
            self.ctx
                .queue
                .add(task, None)
                .await
                .map_err(|error| RunError::Submit {
                    task: id.to_string(),
                    error,
                })?;
            tracing::info!(supervisor = %self.spec.id, task = %id, group = %g, "created task");
            if let Some(group) = self.reading.get_mut(&g) {
                group.tasks.insert(id, new_task_data());
            }
        }
        Ok(())
    }

    async fn reset(&mut self, offsets: Option<StreamOffsets>) -> Result<(), RunError> {
        let ds = self.spec.data_source.clone();
        // Reading again from offsets already published would otherwise find their published
        // segment ids in the allocations (the same sequence names come back).
        let prefix = format!("index_kafka_{ds}_");
        self.ctx.store.delete_pending_segments(&ds, &prefix).await?;
        match offsets {
            None => {
                self.ctx.store.reset_stream_offsets(&ds, None).await?;
                let reading = std::mem::take(&mut self.reading);
                for group in reading.values() {
                    for id in group.tasks.keys() {
                        self.kill(id, "the supervisor was reset").await;
                    }
                }
                for g in self.partition_groups.keys().copied().collect::<Vec<_>>() {
                    self.set_not_set(g);
                }
                tracing::warn!(supervisor = %self.spec.id, "reset: stored offsets cleared, reading tasks stopped");
            }
            Some(given) => {
                if given.stream != self.spec.io.topic {
                    return Err(RunError::WrongStream {
                        given: given.stream.clone(),
                        reads: self.spec.io.topic.clone(),
                    });
                }
                let mut stored = self
                    .ctx
                    .store
                    .stream_offsets(&ds)
                    .await?
                    .filter(|s| s.stream == given.stream)
                    .unwrap_or_else(|| StreamOffsets {
                        kind: "kafka".into(),
                        stream: given.stream.clone(),
                        offsets: BTreeMap::new(),
                    });
                stored.offsets.extend(given.offsets.clone());
                self.ctx
                    .store
                    .reset_stream_offsets(&ds, Some(&stored))
                    .await?;
                let touched: BTreeSet<i32> = given
                    .offsets
                    .keys()
                    .filter_map(|p| p.parse().ok())
                    .collect();
                for g in groups_reading(&self.partition_groups, &touched) {
                    if let Some(group) = self.reading.remove(&g) {
                        for id in group.tasks.keys() {
                            self.kill(id, "the supervisor's offsets were reset").await;
                        }
                    }
                    self.set_not_set(g);
                }
                tracing::warn!(supervisor = %self.spec.id, offsets = ?given.offsets, "offsets reset");
            }
        }
        Ok(())
    }

    fn task_report(&self, id: &TaskId, g: &TaskGroup, t: &TaskData, kind: &str) -> Value {
        let remaining = (g.start_time()
            + chrono::Duration::from_std(self.spec.io.task_duration).unwrap_or_default()
            - Utc::now())
        .num_seconds()
        .max(0);
        let (lag_per, _) = lag(&self.latest, &t.current);
        json!({
            "id": id,
            "startingOffsets": g.start,
            "startTime": t.start_time.map(to_iso),
            "remainingSeconds": remaining,
            "type": kind,
            "currentOffsets": t.current,
            "lag": if kind == "ACTIVE" { json!(lag_per) } else { Value::Null },
        })
    }

    /// Makes the current report and state what status requests see.
    fn publish(&self) {
        self.published.send_replace(Arc::new(Published {
            report: self.report(),
            state: self.health.state().name().to_string(),
            detailed_state: self.health.detailed().to_string(),
            healthy: self.health.state().healthy(),
        }));
    }

    fn report(&self) -> Value {
        let mut active = Vec::new();
        let mut current = Offsets::new();
        for g in self.reading.values() {
            for (id, t) in &g.tasks {
                active.push(self.task_report(id, g, t, "ACTIVE"));
                for (p, o) in &t.current {
                    let e = current.entry(*p).or_insert(*o);
                    *e = (*e).max(*o);
                }
            }
        }
        let publishing: Vec<Value> = self
            .pending
            .values()
            .flatten()
            .flat_map(|g| g.tasks.iter().map(move |(id, t)| (g, id, t)))
            .map(|(g, id, t)| self.task_report(id, g, t, "PUBLISHING"))
            .collect();
        let (minimum_lag, aggregate) = lag(&self.latest, &current);
        json!({
            "id": self.spec.id,
            "generationTime": now_iso(),
            "payload": {
                "dataSource": self.spec.data_source,
                "stream": self.spec.io.topic,
                "partitions": self.partitions.len(),
                "replicas": self.spec.io.replicas,
                "durationSeconds": self.spec.io.task_duration.as_secs(),
                "activeTasks": active,
                "publishingTasks": publishing,
                "latestOffsets": self.latest,
                "minimumLag": minimum_lag,
                "aggregateLag": aggregate,
                "offsetsLastUpdated": self.offsets_updated.map(to_iso),
                "suspended": self.spec.suspended,
                "healthy": self.health.state().healthy(),
                "state": self.health.state().name(),
                "detailedState": self.health.detailed(),
                "recentErrors": self.health.recent_errors(),
            }
        })
    }

    /// `/stats`: group → task → the task's row stats, asked of each running task.
    async fn stats(&self) -> Value {
        let mut out = serde_json::Map::new();
        for (g, group) in &self.reading {
            let mut tasks = serde_json::Map::new();
            for (id, t) in &group.tasks {
                if let Some(loc) = &t.location {
                    if let Ok(v) = self.chat.row_stats(loc, id).await {
                        tasks.insert(id.to_string(), v);
                    }
                }
            }
            out.insert(g.to_string(), Value::Object(tasks));
        }
        Value::Object(out)
    }

    /// Asks every reading and publishing task for its parse errors; keeps the newest
    /// `maxSavedParseExceptions` × `taskCount` of them and of those shown before.
    async fn parse_errors(&mut self) -> Vec<Value> {
        let groups = self.reading.values().chain(self.pending.values().flatten());
        let fresh = self.fetch_parse_errors(groups).await;
        self.keep_parse_errors(fresh);
        self.parse_errors.clone()
    }

    fn keep_parse_errors(&mut self, fresh: Vec<Value>) {
        let saved = self
            .spec
            .tuning_config
            .get("maxSavedParseExceptions")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let limit = (saved * u64::from(self.spec.io.task_count)) as usize;
        self.parse_errors =
            super::parse_errors::merge(std::mem::take(&mut self.parse_errors), fresh, limit);
    }

    /// The parse errors the running tasks of `groups` hold now.
    async fn fetch_parse_errors(&self, groups: impl Iterator<Item = &TaskGroup>) -> Vec<Value> {
        let mut fresh = Vec::new();
        for group in groups {
            for (id, t) in &group.tasks {
                if let Some(loc) = &t.location {
                    match self.chat.unparseable_events(loc, id).await {
                        Ok(reports) => fresh.extend(reports),
                        Err(e) => {
                            tracing::debug!(task = %id, error = %e, "no parse errors from the task")
                        }
                    }
                }
            }
        }
        fresh
    }
}
