//! SupervisorManager (reference §2.4, §12.4): while this overlord leads, one tokio task owns the
//! set of running supervisors; specs live in `druid_supervisors` as append-only history and are
//! started from there on gaining leadership. Creating, replacing, suspending, resuming and
//! terminating go through it one at a time.

mod groups;
mod health;
pub mod kafka;

use std::collections::BTreeMap;

use drover_kafka::KafkaSupervisorSpec;
use drover_metadata::MetadataStore;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

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
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("[{0}] does not exist")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Storage(String),
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
    Get(String, oneshot::Sender<Option<SupervisorHandle>>),
    List(oneshot::Sender<Vec<SupervisorHandle>>),
}

#[derive(Clone)]
pub struct SupervisorManager {
    tx: mpsc::Sender<ManagerMsg>,
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
        self.ask(|r| ManagerMsg::Get(id.to_string(), r)).await
    }

    pub async fn list(&self) -> Result<Vec<SupervisorHandle>, SupervisorError> {
        self.ask(ManagerMsg::List).await
    }
}

/// Druid's tombstone for a terminated supervisor.
fn tombstone(id: &str, data_source: &str) -> Value {
    json!({"type": "NoopSupervisorSpec", "id": id, "dataSources": [data_source], "suspended": false})
}

/// Starts the manager and every supervisor whose newest stored spec is not a tombstone.
pub fn start(ctx: SupervisorContext, stop: CancellationToken) -> SupervisorManager {
    let (tx, rx) = mpsc::channel(64);
    let manager = Manager {
        ctx,
        stop: stop.clone(),
        running: BTreeMap::new(),
    };
    tokio::spawn(stop.run_until_cancelled_owned(manager.run(rx)));
    SupervisorManager { tx }
}

struct Manager {
    ctx: SupervisorContext,
    stop: CancellationToken,
    running: BTreeMap<String, SupervisorHandle>,
}

impl Manager {
    async fn run(mut self, mut rx: mpsc::Receiver<ManagerMsg>) {
        self.load().await;
        while let Some(msg) = rx.recv().await {
            match msg {
                ManagerMsg::Submit(spec, reply) => {
                    reply.send(self.submit(*spec).await).ok();
                }
                ManagerMsg::SetSuspended(id, suspended, reply) => {
                    let r = match self.running.get(&id).map(|h| h.spec.clone()) {
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
                    let r = match self.running.remove(&id) {
                        None => Err(SupervisorError::NotFound(id)),
                        Some(h) => {
                            let stone = tombstone(&id, &h.spec.data_source);
                            match self.store_version(&id, &stone).await {
                                Ok(()) => {
                                    h.ask(Notice::GracefulStop).await;
                                    Ok(())
                                }
                                Err(e) => {
                                    self.running.insert(id, h);
                                    Err(e)
                                }
                            }
                        }
                    };
                    reply.send(r).ok();
                }
                ManagerMsg::Get(id, reply) => {
                    reply.send(self.running.get(&id).cloned()).ok();
                }
                ManagerMsg::List(reply) => {
                    reply.send(self.running.values().cloned().collect()).ok();
                }
            }
        }
    }

    async fn load(&mut self) {
        let latest = match self.ctx.store.latest_supervisors().await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot read druid_supervisors; no supervisor started");
                return;
            }
        };
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
                    let h = kafka::start(spec, self.ctx.clone(), self.stop.clone());
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
            .await
            .map_err(|e| SupervisorError::Storage(e.to_string()))
    }

    async fn submit(&mut self, spec: KafkaSupervisorSpec) -> Result<(), SupervisorError> {
        let id = spec.id.clone();
        // The spec is stored before anything runs it; a replaced supervisor stops gracefully
        // (its reading tasks finish and publish) before the new one starts.
        self.store_version(&id, &spec.payload).await?;
        if let Some(old) = self.running.remove(&id) {
            old.ask(Notice::GracefulStop).await;
        }
        let h = kafka::start(spec, self.ctx.clone(), self.stop.clone());
        self.running.insert(id, h);
        Ok(())
    }
}
