//! SupervisorManager (see docs/api.md and docs/architecture.md): while this overlord leads, one tokio task owns the
//! set of running supervisors; specs live in `druid_supervisors` as append-only history and are
//! started from there on gaining leadership. Creating, replacing, suspending, resuming and
//! terminating go through it one at a time.

pub mod chat;
mod decide;
mod error;
mod groups;
mod health;
pub mod kafka;
mod parse_errors;

pub use error::RunError;

use std::collections::BTreeMap;
use std::sync::Arc;

use drover_core::stream_offsets::StreamOffsets;
use drover_core::SupervisorId;
use drover_kafka::KafkaSupervisorSpec;
use drover_metadata::MetadataStore;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};

use self::kafka::{Notice, SupervisorHandle};
use crate::queue::QueueHandle;
use crate::runner::RunnerHandle;

/// What a supervisor needs of the leader.
#[derive(Clone)]
pub struct SupervisorContext {
    pub store: MetadataStore,
    pub queue: QueueHandle,
    pub runner: RunnerHandle,
    pub http: reqwest::Client,
    /// The internal password, when authentication is on: a task's chat API takes the task's
    /// token, made from it.
    pub task_token_secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("[{0}] does not exist")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Storage(#[from] drover_metadata::MetadataError),
    #[error("the supervisor manager is not running")]
    Stopped,
}

enum ManagerMsg {
    Submit(
        Box<KafkaSupervisorSpec>,
        oneshot::Sender<Result<(), SupervisorError>>,
    ),
    SetSuspended(
        String,
        bool,
        oneshot::Sender<Result<Value, SupervisorError>>,
    ),
    Terminate(String, oneshot::Sender<Result<(), SupervisorError>>),
}

type Running = Arc<BTreeMap<SupervisorId, SupervisorHandle>>;

#[derive(Clone)]
pub struct SupervisorManager {
    tx: mpsc::Sender<ManagerMsg>,
    /// The running supervisors as the manager last left them. Lookups read this instead of
    /// queueing behind the manager, which may be waiting for a supervisor that is waiting for a
    /// task that is asking for a checkpoint.
    running: watch::Receiver<Running>,
}

impl SupervisorManager {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> ManagerMsg,
    ) -> Result<T, SupervisorError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| SupervisorError::Stopped)?;
        rx.await.map_err(|_| SupervisorError::Stopped)
    }

    /// Creates the supervisor, or replaces a running one with this spec.
    pub async fn submit(&self, spec: KafkaSupervisorSpec) -> Result<(), SupervisorError> {
        self.ask(|r| ManagerMsg::Submit(Box::new(spec), r)).await?
    }

    /// Suspends or resumes; returns the updated spec.
    pub async fn set_suspended(&self, id: &str, suspended: bool) -> Result<Value, SupervisorError> {
        self.ask(|r| ManagerMsg::SetSuspended(id.to_string(), suspended, r))
            .await?
    }

    pub async fn terminate(&self, id: &str) -> Result<(), SupervisorError> {
        self.ask(|r| ManagerMsg::Terminate(id.to_string(), r))
            .await?
    }

    pub async fn get(&self, id: &str) -> Result<Option<SupervisorHandle>, SupervisorError> {
        Ok(self.running.borrow().get(id).cloned())
    }

    /// A task's `checkPointDataSourceMetadata`: queues a checkpoint notice on its supervisor.
    /// `false` when there is no such supervisor (the task then fails, as in Druid).
    pub async fn checkpoint(
        &self,
        supervisor: &str,
        task: drover_core::TaskId,
        group: drover_core::TaskGroupId,
        start: StreamOffsets,
    ) -> Result<bool, SupervisorError> {
        // By supervisor id, else by data source (tasks created before `supervisorId` existed).
        let found = {
            let running = self.running.borrow();
            running.get(supervisor).cloned().or_else(|| {
                running
                    .values()
                    .find(|h| h.spec.data_source == supervisor)
                    .cloned()
            })
        };
        let Some(h) = found else {
            tracing::warn!(supervisor, %task, "checkpoint asked of a supervisor that is not running");
            return Ok(false);
        };
        if start.stream != h.spec.io.topic {
            tracing::warn!(supervisor, %task, stream = %start.stream, "checkpoint for another topic");
            return Ok(false);
        }
        let mut offsets = drover_kafka::Offsets::new();
        for (p, o) in &start.offsets {
            let Ok(p) = p.parse::<i32>() else {
                return Err(SupervisorError::BadRequest(format!(
                    "[action.checkpointMetadata]: partition [{p}] is not a partition number"
                )));
            };
            offsets.insert(p, *o);
        }
        Ok(h.notify(Notice::Checkpoint {
            task,
            group,
            start: offsets,
        }))
    }

    pub async fn list(&self) -> Result<Vec<SupervisorHandle>, SupervisorError> {
        Ok(self.running.borrow().values().cloned().collect())
    }
}

/// Druid's tombstone for a terminated supervisor.
fn tombstone(id: &str, data_source: &str) -> Value {
    json!({"type": "NoopSupervisorSpec", "id": id, "dataSources": [data_source], "suspended": false})
}

/// Starts the manager and every supervisor whose newest stored spec is not a tombstone.
pub fn start(ctx: SupervisorContext, scope: crate::scope::LeaderScope) -> SupervisorManager {
    let (tx, rx) = mpsc::channel(64);
    let (published, running) = watch::channel(Running::default());
    let manager = Manager {
        ctx,
        scope: scope.clone(),
        running: BTreeMap::new(),
        published,
    };
    scope.spawn(manager.run(rx));
    SupervisorManager { tx, running }
}

struct Manager {
    ctx: SupervisorContext,
    scope: crate::scope::LeaderScope,
    running: BTreeMap<SupervisorId, SupervisorHandle>,
    published: watch::Sender<Running>,
}

impl Manager {
    async fn run(mut self, mut rx: mpsc::Receiver<ManagerMsg>) {
        self.load().await;
        self.publish();
        while let Some(msg) = rx.recv().await {
            match msg {
                ManagerMsg::Submit(spec, reply) => {
                    reply.send(self.submit(*spec).await).ok();
                }
                ManagerMsg::SetSuspended(id, suspended, reply) => {
                    let r = match self.running.get(id.as_str()).map(|h| h.spec.clone()) {
                        None => Err(SupervisorError::NotFound(id)),
                        Some(s) if s.suspended == suspended => {
                            Err(SupervisorError::BadRequest(format!(
                                "[{id}] is already {}",
                                if suspended { "suspended" } else { "running" }
                            )))
                        }
                        Some(s) => {
                            let new = s.with_suspended(suspended);
                            let payload = new.payload.clone();
                            self.submit(new).await.map(|()| payload)
                        }
                    };
                    reply.send(r).ok();
                }
                ManagerMsg::Terminate(id, reply) => {
                    let r = match self.running.remove(id.as_str()) {
                        None => Err(SupervisorError::NotFound(id)),
                        Some(h) => {
                            let stone = tombstone(&id, &h.spec.data_source);
                            match self.store_version(&id, &stone).await {
                                Ok(()) => {
                                    h.ask(Notice::GracefulStop).await;
                                    Ok(())
                                }
                                Err(e) => {
                                    self.running.insert(h.spec.id.clone(), h);
                                    Err(e)
                                }
                            }
                        }
                    };
                    reply.send(r).ok();
                }
            }
            self.publish();
        }
    }

    fn publish(&self) {
        self.published.send_replace(Arc::new(self.running.clone()));
    }

    async fn load(&mut self) {
        let store = self.ctx.store.clone();
        let latest = crate::retry::until_ok("read druid_supervisors", || {
            let store = store.clone();
            async move { store.latest_supervisors().await }
        })
        .await;
        for v in latest {
            let Ok(value) = serde_json::from_slice::<Value>(&v.payload) else {
                tracing::error!(supervisor = %v.spec_id, "stored spec is not JSON; skipped");
                continue;
            };
            if value.get("type").and_then(Value::as_str) == Some("NoopSupervisorSpec") {
                continue;
            }
            match KafkaSupervisorSpec::from_value(&value) {
                Ok(spec) => {
                    let id = spec.id.clone();
                    let h = kafka::start(spec, self.ctx.clone(), &self.scope);
                    self.running.insert(id, h);
                }
                Err(e) => {
                    tracing::error!(supervisor = %v.spec_id, error = %e, "stored spec is unreadable; skipped")
                }
            }
        }
        tracing::info!(
            count = self.running.len(),
            "supervisors started from storage"
        );
    }

    async fn store_version(&self, id: &str, payload: &Value) -> Result<(), SupervisorError> {
        self.ctx
            .store
            .insert_supervisor(
                id,
                &drover_core::time::now_iso(),
                payload.to_string().as_bytes(),
            )
            .await?;
        Ok(())
    }

    async fn submit(&mut self, spec: KafkaSupervisorSpec) -> Result<(), SupervisorError> {
        let id = spec.id.clone();
        // The spec is stored before anything runs it; a replaced supervisor stops gracefully
        // (its reading tasks finish and publish) before the new one starts.
        self.store_version(&id, &spec.payload).await?;
        if let Some(old) = self.running.remove(&id) {
            old.ask(Notice::GracefulStop).await;
        }
        let h = kafka::start(spec, self.ctx.clone(), &self.scope);
        self.running.insert(id, h);
        Ok(())
    }
}
