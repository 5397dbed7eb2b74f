//! Leadership: the TaskQueue and the runner exist only while this overlord leads. Gaining
//! leadership claims a new epoch in the metadata store (fencing any previous leader's writes),
//! loads the queue from storage and rediscovers running tasks from ZooKeeper; losing it — the
//! latch says so, ZooKeeper is out of reach, or the store refuses a write as fenced — stops them
//! at once.

use std::sync::Arc;
use std::time::Duration;

use crate::scope::LeaderScope;
use drover_metadata::MetadataStore;
use drover_zk::{LatchState, LeaderLatch, ZkPaths, ZkSession};
use tokio::sync::{mpsc, watch};

use crate::queue::{self, QueueConfig, QueueHandle};
use crate::runner::select::{Selection, WorkerBehaviorConfig, WORKER_CONFIG_KEY};
use crate::runner::{self, RunnerConfig, RunnerHandle};
use crate::supervisor::{self, SupervisorContext, SupervisorManager};

/// How long stepping down waits for the term's work to end once cancelled.
const STEP_DOWN_JOIN: Duration = Duration::from_secs(10);

/// What runs while this overlord leads.
/// How long `GET /task/{id}/reports` waits for a running task's own report before it answers
/// with what is stored.
const LIVE_REPORT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct LeaderServices {
    /// Writes through this store are fenced by `epoch`.
    pub store: MetadataStore,
    pub queue: QueueHandle,
    pub runner: RunnerHandle,
    pub supervisors: SupervisorManager,
    /// Calls running tasks' chat APIs (live reports).
    pub chat: crate::supervisor::chat::ChatClient,
    /// Automatic compaction's latest view of each configured data source.
    pub compaction: watch::Receiver<crate::compaction::CompactionStatus>,
    pub epoch: i64,
    /// The latch term these services were started in.
    term: u64,
    /// Everything the services started; ended (and joined) on stepping down.
    scope: LeaderScope,
}

/// Everything needed to start the leader's services.
pub struct ServiceConfig {
    pub runner: RunnerConfig,
    pub queue: QueueConfig,
    pub paths: ZkPaths,
    pub zk_resync_period: Duration,
    /// How often retention rules are applied.
    pub coordinator_period: Duration,
    /// How the leader calls peons (TLS, internal credentials).
    pub internal_client: drover_service::client::InternalClient,
    /// The key of the task tokens a task's chat API takes, when authentication is on.
    pub task_token_secret: Option<String>,
    /// Automatic kill of old unused segments, when on: its period and settings.
    pub auto_kill: Option<AutoKillConfig>,
}

/// `kill_*` settings of the automatic kill.
#[derive(Debug, Clone)]
pub struct AutoKillConfig {
    pub period: Duration,
    pub buffer_period: Duration,
    pub duration_to_retain: Duration,
    pub max_segments: u64,
}

#[derive(Clone)]
pub struct Leadership {
    latch: watch::Receiver<LatchState>,
    services: watch::Receiver<Option<Arc<LeaderServices>>>,
    shutdown: mpsc::UnboundedSender<tokio::sync::oneshot::Sender<()>>,
    pub own_url: String,
}

impl Leadership {
    /// The leader's services, if this overlord leads and has started them.
    pub fn services(&self) -> Option<Arc<LeaderServices>> {
        self.services.borrow().clone()
    }

    pub fn latch(&self) -> LatchState {
        self.latch.borrow().clone()
    }

    /// Stops leading and leaves the latch, so a follower takes over at once (SIGTERM).
    pub async fn shutdown(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.shutdown.send(tx).is_ok() {
            tokio::time::timeout(Duration::from_secs(15), rx).await.ok();
        }
    }
}

pub fn start(
    config: ServiceConfig,
    store: MetadataStore,
    session: ZkSession,
    own_url: String,
) -> Leadership {
    let latch = LeaderLatch::start(
        session.clone(),
        config.paths.overlord_latch(),
        own_url.clone(),
    );
    let (services_tx, services_rx) = watch::channel(None);
    let (fenced_tx, fenced_rx) = mpsc::unbounded_channel();
    let (shutdown_tx, shutdown_rx) = mpsc::unbounded_channel();
    let leadership = Leadership {
        latch: latch.subscribe(),
        services: services_rx,
        shutdown: shutdown_tx,
        own_url: own_url.clone(),
    };
    let manager = Manager {
        config,
        store,
        session,
        own_url,
        latch,
        services: services_tx,
        fenced: fenced_tx,
    };
    tokio::spawn(manager.run(fenced_rx, shutdown_rx));
    leadership
}

struct Manager {
    config: ServiceConfig,
    store: MetadataStore,
    session: ZkSession,
    own_url: String,
    latch: LeaderLatch,
    services: watch::Sender<Option<Arc<LeaderServices>>>,
    fenced: mpsc::UnboundedSender<()>,
}

impl Manager {
    async fn run(
        self,
        mut fenced: mpsc::UnboundedReceiver<()>,
        mut shutdown: mpsc::UnboundedReceiver<tokio::sync::oneshot::Sender<()>>,
    ) {
        let mut latch = self.latch.subscribe();
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        // The latch term in which the store last fenced us. Until the latch has moved to a new
        // term, a `Leader` state is stale (the latch has not yet noticed what the store knows):
        // claiming again on it would depose the real leader.
        let mut fenced_in: Option<u64> = None;
        loop {
            let state_is_leader = *latch.borrow_and_update() == LatchState::Leader;
            let leading = state_is_leader && may_claim(self.latch.term(), fenced_in);
            if leading && self.services.borrow().is_none() {
                if let Err(e) = self.become_leader().await {
                    tracing::error!(error = %e, "could not take up leadership; retrying");
                }
            } else if !leading {
                self.step_down("leadership lost").await;
            }
            tokio::select! {
                changed = latch.changed() => if changed.is_err() { return },
                Some(()) = fenced.recv() => {
                    let term = self.services.borrow().as_ref().map(|s| s.term);
                    fenced_in = Some(term.unwrap_or_else(|| self.latch.term()));
                    self.step_down("the metadata store says another overlord leads now")
                        .await;
                    self.latch.rejoin();
                }
                Some(reply) = shutdown.recv() => {
                    self.step_down("stopping").await;
                    self.latch.leave().await;
                    reply.send(()).ok();
                    return;
                }
                _ = retry.tick() => {}
            }
        }
    }

    async fn become_leader(&self) -> anyhow::Result<()> {
        let term = self.latch.term();
        // Every write through this store is fenced by the new epoch, and a refused one tells
        // this task to step down, whichever service made it.
        let store = self
            .store
            .claim_leadership(&self.own_url)
            .await?
            .on_fenced(self.fenced.clone());
        let epoch = store.fence().unwrap_or_default();
        // Still leading after the claim? The latch may have moved on meanwhile.
        if self.latch.state() != LatchState::Leader || self.latch.term() != term {
            return Ok(());
        }
        let scope = LeaderScope::new();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let runner = runner::start(
            self.config.runner.clone(),
            self.session.clone(),
            self.config.paths.clone(),
            self.config.zk_resync_period,
            events_tx,
            scope.clone(),
        );
        // The dynamic worker config (POST /worker) outlives restarts and leaders.
        match store.get_config(WORKER_CONFIG_KEY).await {
            Ok(Some(bytes)) => match WorkerBehaviorConfig::parse(&bytes) {
                Ok(c) => runner.set_selection(Some(Selection::from(&c.select_strategy))),
                Err(e) => {
                    tracing::error!(error = %e, "stored worker config is unreadable; using worker_select_strategy")
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot read the worker config; using worker_select_strategy")
            }
        }
        let queue = queue::start(
            self.config.queue.clone(),
            store.clone(),
            runner.clone(),
            events_rx,
            scope.clone(),
        );
        let http = self
            .config
            .internal_client
            .builder()
            .build()
            .expect("HTTP client");
        let chat = crate::supervisor::chat::ChatClient::new(
            http.clone(),
            LIVE_REPORT_TIMEOUT,
            self.config.task_token_secret.clone(),
        );
        let supervisors = supervisor::start(
            SupervisorContext {
                store: store.clone(),
                queue: queue.clone(),
                runner: runner.clone(),
                http,
                task_token_secret: self.config.task_token_secret.clone(),
            },
            scope.clone(),
        );
        crate::sub_task_ended::start(&queue, runner.clone(), chat.clone(), &scope);
        crate::retention::start(store.clone(), self.config.coordinator_period, &scope);
        if let Some(kill) = &self.config.auto_kill {
            crate::retention::auto_kill::start(
                crate::retention::auto_kill::AutoKill {
                    store: store.clone(),
                    queue: queue.clone(),
                    buffer_period: kill.buffer_period,
                    duration_to_retain: kill.duration_to_retain,
                    max_segments: kill.max_segments,
                },
                kill.period,
                &scope,
            );
        }
        let compaction = crate::compaction::start(
            crate::compaction::CompactionDuty {
                store: store.clone(),
                queue: queue.clone(),
                runner: runner.clone(),
            },
            self.config.coordinator_period,
            &scope,
        );
        tracing::info!(
            epoch,
            "leading: task queue, runner, supervisors and retention started"
        );
        self.services.send_replace(Some(Arc::new(LeaderServices {
            store,
            queue,
            runner,
            supervisors,
            chat,
            compaction,
            epoch,
            term,
            scope,
        })));
        Ok(())
    }

    /// Stops the services and waits (a little) for everything they started to end, so that
    /// nothing of this term still writes when the next one starts.
    async fn step_down(&self, why: &str) {
        if let Some(services) = self.services.send_replace(None) {
            if !services.scope.end(STEP_DOWN_JOIN).await {
                tracing::warn!(epoch = services.epoch, timeout = ?STEP_DOWN_JOIN, "some of the leader's work did not end in time");
            }
            tracing::warn!(
                epoch = services.epoch,
                reason = why,
                "no longer leading: task queue and runner stopped"
            );
        }
    }
}

/// Whether a `Leader` latch state in `term` may be acted on: not in the term the store fenced.
fn may_claim(term: u64, fenced_in: Option<u64>) -> bool {
    fenced_in != Some(term)
}

#[cfg(test)]
mod tests {
    use super::may_claim;

    #[test]
    fn a_fenced_term_is_never_claimed_again() {
        assert!(may_claim(1, None));
        assert!(!may_claim(3, Some(3)));
        // Rejoined: a new node, a new term, a fresh decision.
        assert!(may_claim(4, Some(3)));
    }
}
