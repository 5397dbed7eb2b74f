//! The runner's I/O as data. Its decisions (`state.rs`) say what to write or call and move on;
//! `Executor` carries each effect out over the runner's transport (ZooKeeper or HTTP), in the
//! leadership term's scope (so stepping down waits for it or cancels it), and reports how an
//! assignment went back to the runner as a message. Tests read the effects a decision produced
//! instead of watching ZooKeeper or a worker.

use std::sync::Arc;
use std::time::Duration;

use drover_core::{TaskId, WorkerHost};
use drover_task::Task;
use drover_zk::client::{Acls, CreateMode, Error as ZkClientError};
use drover_zk::{with_timeout, ZkError, ZkPaths, ZkSession};
use tokio::sync::mpsc;

use super::RunnerMsg;

/// How long one ZooKeeper or assignment call may take (an assignment not made by then is
/// retried): the same bound on either transport.
pub(crate) use drover_zk::CALL_TIMEOUT;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    /// Hand the task to the worker whose API is at `url`: an ephemeral assignment znode owned by
    /// this overlord's session (ZooKeeper runner), or `POST assignTask` (HTTP runner).
    Assign {
        task: Arc<Task>,
        worker: WorkerHost,
        url: String,
    },
    /// Take back an assignment (its znode; over HTTP the shutdown call does it).
    Withdraw { task: TaskId, worker: WorkerHost },
    /// The queue has the terminal status: the worker's report of it can go (its status and
    /// assignment znodes; an HTTP worker forgets it by itself).
    ForgetStatus { task: TaskId, worker: WorkerHost },
    /// A vanished worker is cleaned up: its status directory goes (ZooKeeper only).
    ForgetWorker(WorkerHost),
    /// Ask a worker to shut a task down (`POST {url}`).
    ShutdownOnWorker {
        task: TaskId,
        worker: WorkerHost,
        url: String,
    },
}

/// How the runner reaches workers.
#[derive(Clone)]
pub(crate) enum Transport {
    Zk { session: ZkSession, paths: ZkPaths },
    Http,
}

pub(crate) struct Executor {
    transport: Transport,
    /// Shutdown calls (with `taskShutdownLinkTimeout`).
    http: reqwest::Client,
    /// Assignments over HTTP.
    assign_http: reqwest::Client,
    /// Where an assignment's outcome is reported.
    runner: mpsc::UnboundedSender<RunnerMsg>,
    scope: crate::scope::LeaderScope,
}

impl Executor {
    pub(crate) fn new(
        transport: Transport,
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
        let assign_http = internal_client
            .builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .expect("HTTP client");
        Executor {
            transport,
            http,
            assign_http,
            runner,
            scope,
        }
    }

    fn zk_delete(&self, paths: impl FnOnce(&ZkPaths) -> Vec<String>) {
        let Transport::Zk { session, paths: p } = &self.transport else {
            return;
        };
        let (session, targets) = (session.clone(), paths(p));
        self.scope.spawn(async move {
            let Some(client) = session.try_client() else {
                return;
            };
            for path in targets {
                match with_timeout(CALL_TIMEOUT, client.delete(&path, None)).await {
                    Ok(()) | Err(ZkError::Client(ZkClientError::NoNode)) => {}
                    Err(e) => tracing::warn!(%path, error = %e, "could not delete znode"),
                }
            }
        });
    }

    /// Starts the effect; it runs on its own, in the leader's scope.
    pub(crate) fn execute(&self, effect: Effect) {
        match effect {
            Effect::Assign { task, worker, url } => {
                let runner = self.runner.clone();
                match &self.transport {
                    Transport::Zk { session, paths } => {
                        let session = session.clone();
                        let path = paths.task(&worker, &task.id);
                        self.scope.spawn(async move {
                            let data = task.to_json_bytes();
                            let result = async {
                                let client = session.try_client().ok_or(ZkError::NoSession)?;
                                let options = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
                                with_timeout(CALL_TIMEOUT, client.create(&path, &data, &options))
                                    .await
                            }
                            .await;
                            match result {
                                Ok(_) | Err(ZkError::Client(ZkClientError::NodeExists)) => {}
                                Err(e) => report_assign_failure(&runner, &task, worker, e),
                            }
                        });
                    }
                    Transport::Http => {
                        let http = self.assign_http.clone();
                        self.scope.spawn(async move {
                            let url = format!("{url}/druid-internal/v1/worker/assignTask");
                            let sent = http
                                .post(&url)
                                .header(reqwest::header::CONTENT_TYPE, "application/json")
                                .body(task.to_json_bytes().to_vec())
                                .send()
                                .await;
                            match sent {
                                Ok(r) if r.status().is_success() => {
                                    runner
                                        .send(RunnerMsg::AssignAcked {
                                            id: task.id.clone(),
                                            worker,
                                        })
                                        .ok();
                                }
                                Ok(r) => {
                                    let status = r.status();
                                    let body = r.text().await.unwrap_or_default();
                                    let error = format!("{url} answered {status}: {body}");
                                    report_assign_failure(&runner, &task, worker, error);
                                }
                                // Never connected: the worker cannot have it.
                                Err(e) if e.is_connect() => {
                                    report_assign_failure(&runner, &task, worker, e)
                                }
                                // Sent, but no answer: the worker may have recorded it.
                                Err(e) => {
                                    runner
                                        .send(RunnerMsg::AssignUncertain {
                                            id: task.id.clone(),
                                            worker,
                                            error: e.to_string(),
                                        })
                                        .ok();
                                }
                            }
                        });
                    }
                }
            }
            Effect::Withdraw { task, worker } => self.zk_delete(|p| vec![p.task(&worker, &task)]),
            Effect::ForgetStatus { task, worker } => {
                self.zk_delete(|p| vec![p.task_status(&worker, &task), p.task(&worker, &task)])
            }
            Effect::ForgetWorker(worker) => {
                let Transport::Zk { session, paths } = &self.transport else {
                    return;
                };
                let (session, dir) = (session.clone(), paths.worker_status(&worker));
                self.scope.spawn(async move {
                    let Some(client) = session.try_client() else {
                        return;
                    };
                    if let Ok(children) =
                        with_timeout(CALL_TIMEOUT, client.list_children(&dir)).await
                    {
                        for child in children {
                            let path = format!("{dir}/{child}");
                            with_timeout(CALL_TIMEOUT, client.delete(&path, None))
                                .await
                                .ok();
                        }
                    }
                    with_timeout(CALL_TIMEOUT, client.delete(&dir, None))
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

fn report_assign_failure(
    runner: &mpsc::UnboundedSender<RunnerMsg>,
    task: &Task,
    worker: WorkerHost,
    error: impl std::fmt::Display,
) {
    runner
        .send(RunnerMsg::AssignFailed {
            id: task.id.clone(),
            worker,
            error: error.to_string(),
        })
        .ok();
}
