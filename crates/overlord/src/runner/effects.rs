//! The runner's I/O as data. Its decisions (`state.rs`) say what to write or call and move on;
//! `Executor` carries each effect out in the leadership term's scope (so stepping down waits for
//! it or cancels it) and reports a failed assignment back to the runner as a message. Tests read
//! the effects a decision produced instead of watching ZooKeeper.

use std::sync::Arc;
use std::time::Duration;

use drover_core::{TaskId, WorkerHost};
use drover_task::Task;
use drover_zk::client::{Acls, CreateMode, Error as ZkClientError};
use drover_zk::{with_timeout, ZkError, ZkSession};
use tokio::sync::mpsc;

use super::RunnerMsg;

/// How long one ZooKeeper call may take (an assignment not written by then is retried).
pub(crate) const ZK_CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    /// Write the assignment znode at `path` holding the task, ephemeral and owned by this
    /// overlord's session, as in Druid.
    Assign {
        task: Arc<Task>,
        worker: WorkerHost,
        path: String,
    },
    /// Delete a znode (an assignment or a status); one already gone is fine.
    DeleteZnode(String),
    /// Delete a vanished worker's status directory and everything in it.
    DeleteStatusDir(String),
    /// Ask a worker to shut a task down (`POST {url}`).
    ShutdownOnWorker {
        task: TaskId,
        worker: WorkerHost,
        url: String,
    },
}

pub(crate) struct Executor {
    session: ZkSession,
    http: reqwest::Client,
    /// Where a failed assignment is reported.
    runner: mpsc::UnboundedSender<RunnerMsg>,
    scope: crate::scope::LeaderScope,
}

impl Executor {
    pub(crate) fn new(
        session: ZkSession,
        shutdown_timeout: Duration,
        internal_client: &drover_service::client::InternalClient,
        runner: mpsc::UnboundedSender<RunnerMsg>,
        scope: crate::scope::LeaderScope,
    ) -> Self {
        let http = internal_client
            .builder()
            .timeout(shutdown_timeout)
            .build()
            .expect("HTTP client");
        Executor {
            session,
            http,
            runner,
            scope,
        }
    }

    /// Starts the effect; it runs on its own, in the leader's scope.
    pub(crate) fn execute(&self, effect: Effect) {
        match effect {
            Effect::Assign { task, worker, path } => {
                let (session, runner) = (self.session.clone(), self.runner.clone());
                self.scope.spawn(async move {
                    let data = task.to_json_bytes();
                    let result = async {
                        let client = session.try_client().ok_or(ZkError::NoSession)?;
                        let options = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
                        with_timeout(ZK_CALL_TIMEOUT, client.create(&path, &data, &options)).await
                    }
                    .await;
                    match result {
                        Ok(_) | Err(ZkError::Client(ZkClientError::NodeExists)) => {}
                        Err(e) => {
                            runner
                                .send(RunnerMsg::AssignFailed {
                                    id: task.id.clone(),
                                    worker,
                                    error: e.to_string(),
                                })
                                .ok();
                        }
                    }
                });
            }
            Effect::DeleteZnode(path) => {
                let session = self.session.clone();
                self.scope.spawn(async move {
                    let Some(client) = session.try_client() else {
                        return;
                    };
                    match with_timeout(ZK_CALL_TIMEOUT, client.delete(&path, None)).await {
                        Ok(()) | Err(ZkError::Client(ZkClientError::NoNode)) => {}
                        Err(e) => tracing::warn!(%path, error = %e, "could not delete znode"),
                    }
                });
            }
            Effect::DeleteStatusDir(dir) => {
                let session = self.session.clone();
                self.scope.spawn(async move {
                    let Some(client) = session.try_client() else {
                        return;
                    };
                    if let Ok(children) =
                        with_timeout(ZK_CALL_TIMEOUT, client.list_children(&dir)).await
                    {
                        for child in children {
                            let path = format!("{dir}/{child}");
                            with_timeout(ZK_CALL_TIMEOUT, client.delete(&path, None))
                                .await
                                .ok();
                        }
                    }
                    with_timeout(ZK_CALL_TIMEOUT, client.delete(&dir, None))
                        .await
                        .ok();
                });
            }
            Effect::ShutdownOnWorker { task, worker, url } => {
                tracing::info!(%task, %worker, "asking worker to shut down task");
                let http = self.http.clone();
                self.scope.spawn(async move {
                    match http.post(&url).send().await {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => {
                            tracing::warn!(%url, status = %r.status(), "worker refused shutdown")
                        }
                        Err(e) => {
                            tracing::warn!(%url, error = %e, "could not reach worker for shutdown")
                        }
                    }
                });
            }
        }
    }
}
