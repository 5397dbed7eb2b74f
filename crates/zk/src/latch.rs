//! Leader election among overlords: Curator's LeaderLatch recipe at `${base}/overlord/_OVERLORD`,
//! as Druid does it. Each participant creates an ephemeral sequential node
//! `_c_<random>-latch-<seq>` holding its URL; the lowest sequence leads. Losing the connection
//! counts as losing leadership at once: a leader that cannot see ZooKeeper must stop acting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkClientError, SessionState};

use crate::session::{ensure_path, with_timeout, ZkError, ZkSession, CALL_TIMEOUT};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatchState {
    /// Not (yet) in the latch, or cut off from ZooKeeper: not leading, leader unknown.
    Unknown,
    /// Another participant leads; its URL.
    Follower {
        leader: String,
    },
    Leader,
}

enum Control {
    /// Give up leadership and join again at the back of the line.
    Rejoin,
    /// Give up leadership and stop participating.
    Leave(oneshot::Sender<()>),
}

enum Outcome {
    Left,
    Rejoin,
    Interrupted(ZkError),
}

pub struct LeaderLatch {
    state: watch::Receiver<LatchState>,
    /// How many times this participant has joined (created a node): its term in the latch.
    joins: Arc<AtomicU64>,
    control: mpsc::UnboundedSender<Control>,
}

impl LeaderLatch {
    /// Joins the latch in `dir` as `id` (the participant's URL) and keeps participating, across
    /// reconnections and new sessions, until `leave`.
    pub fn start(session: ZkSession, dir: String, id: String) -> LeaderLatch {
        let (tx, rx) = watch::channel(LatchState::Unknown);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let joins = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(session, dir, id, tx, joins.clone(), control_rx));
        LeaderLatch {
            state: rx,
            joins,
            control: control_tx,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<LatchState> {
        self.state.clone()
    }

    pub fn state(&self) -> LatchState {
        self.state.borrow().clone()
    }

    /// Which of this participant's nodes the state refers to. Every new node starts a new term,
    /// and the state passes through `Unknown` between terms, so a `Leader` read together with an
    /// unchanged term means the same node still leads: how a caller tells a stale `Leader` (the
    /// node it was just fenced in) from a fresh one.
    pub fn term(&self) -> u64 {
        self.joins.load(Ordering::SeqCst)
    }

    /// Steps down and queues up again (used when the store says another leader took over).
    pub fn rejoin(&self) {
        self.control.send(Control::Rejoin).ok();
    }

    /// Steps down for good, deleting this participant's node so another takes over at once.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Leave(tx)).is_ok() {
            tokio::time::timeout(CALL_TIMEOUT, rx).await.ok();
        }
    }
}

async fn run(
    session: ZkSession,
    dir: String,
    id: String,
    tx: watch::Sender<LatchState>,
    joins: Arc<AtomicU64>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let mut sessions = session.subscribe();
    loop {
        let client = tokio::select! {
            c = session.client() => c,
            ctl = control.recv() => match ctl {
                Some(Control::Leave(reply)) => { reply.send(()).ok(); return; }
                Some(Control::Rejoin) => continue,
                None => return,
            },
        };
        sessions.mark_unchanged();
        let outcome =
            participate(&client, &dir, &id, &tx, &joins, &mut control, &mut sessions).await;
        tx.send_replace(LatchState::Unknown);
        match outcome {
            Outcome::Left => return,
            Outcome::Rejoin => tracing::info!("rejoining the leader latch"),
            Outcome::Interrupted(e) => {
                tracing::warn!(error = %e, "leader latch interrupted; joining again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The sequence number of a latch node, `..._latch-0000000012` → 12.
fn sequence(name: &str) -> Option<i64> {
    name.rsplit_once("-latch-")?.1.parse().ok()
}

async fn participate(
    client: &Client,
    dir: &str,
    id: &str,
    tx: &watch::Sender<LatchState>,
    joins: &AtomicU64,
    control: &mut mpsc::UnboundedReceiver<Control>,
    sessions: &mut watch::Receiver<Option<Client>>,
) -> Outcome {
    match join(client, dir, id).await {
        Ok(mine) => {
            joins.fetch_add(1, Ordering::SeqCst);
            let outcome = follow(client, dir, &mine, tx, control, sessions).await;
            if !matches!(outcome, Outcome::Interrupted(_)) {
                // Leaving on purpose: delete the node so the next in line leads at once.
                with_timeout(CALL_TIMEOUT, client.delete(&format!("{dir}/{mine}"), None))
                    .await
                    .ok();
            }
            outcome
        }
        Err(e) => Outcome::Interrupted(e),
    }
}

/// The ids (overlord URLs) of everyone in the latch, leader first: how peons and middle
/// managers find the overlords without configuring them.
pub async fn participants(client: &Client, dir: &str) -> Result<Vec<String>, ZkError> {
    let mut nodes: Vec<(i64, String)> = Vec::new();
    let children = match with_timeout(CALL_TIMEOUT, client.list_children(dir)).await {
        Ok(c) => c,
        Err(ZkError::Client(zookeeper_client::Error::NoNode)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for child in children {
        let Some(seq) = sequence(&child) else {
            continue;
        };
        if let Ok((data, _)) =
            with_timeout(CALL_TIMEOUT, client.get_data(&format!("{dir}/{child}"))).await
        {
            if let Ok(id) = String::from_utf8(data) {
                nodes.push((seq, id));
            }
        }
    }
    nodes.sort();
    let mut ids: Vec<String> = Vec::new();
    for (_, id) in nodes {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

async fn join(client: &Client, dir: &str, id: &str) -> Result<String, ZkError> {
    ensure_path(client, dir).await?;
    // A node holding our own URL belongs to an earlier life of this process (nothing else can
    // hold our address while we listen on it) whose session has not expired yet: remove it, or
    // a restarted leader would wait behind its own ghost.
    for child in with_timeout(CALL_TIMEOUT, client.list_children(dir)).await? {
        let path = format!("{dir}/{child}");
        if let Ok((data, stat)) = with_timeout(CALL_TIMEOUT, client.get_data(&path)).await {
            if data == id.as_bytes() && stat.ephemeral_owner != client.session_id().0 {
                tracing::info!(node = %child, "removing a latch node left by an earlier run of this overlord");
                with_timeout(CALL_TIMEOUT, client.delete(&path, None))
                    .await
                    .ok();
            }
        }
    }
    let tag: u64 = rand::rng().random();
    let prefix = format!("{dir}/_c_{tag:016x}-latch-");
    let options = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let (_, seq) = with_timeout(
        CALL_TIMEOUT,
        client.create(&prefix, id.as_bytes(), &options),
    )
    .await?;
    let mine = format!("_c_{tag:016x}-latch-{seq}");
    tracing::info!(node = %mine, "joined the leader latch");
    Ok(mine)
}

async fn follow(
    client: &Client,
    dir: &str,
    mine: &str,
    tx: &watch::Sender<LatchState>,
    control: &mut mpsc::UnboundedReceiver<Control>,
    sessions: &mut watch::Receiver<Option<Client>>,
) -> Outcome {
    let mut states = client.state_watcher();
    loop {
        let (children, _, watcher) =
            match with_timeout(CALL_TIMEOUT, client.get_and_watch_children(dir)).await {
                Ok(r) => r,
                Err(e) => return Outcome::Interrupted(e),
            };
        let mut nodes: Vec<(i64, String)> = children
            .into_iter()
            .filter_map(|c| Some((sequence(&c)?, c)))
            .collect();
        nodes.sort();
        if !nodes.iter().any(|(_, n)| n == mine) {
            return Outcome::Interrupted(ZkError::Client(ZkClientError::NoNode));
        }
        let first = &nodes[0].1;
        if first == mine {
            if *tx.borrow() != LatchState::Leader {
                tracing::info!("this overlord is now the leader");
            }
            tx.send_replace(LatchState::Leader);
        } else {
            match with_timeout(CALL_TIMEOUT, client.get_data(&format!("{dir}/{first}"))).await {
                Ok((data, _)) => {
                    let leader = String::from_utf8_lossy(&data).into_owned();
                    tx.send_replace(LatchState::Follower { leader });
                }
                Err(ZkError::Client(ZkClientError::NoNode)) => continue,
                Err(e) => return Outcome::Interrupted(e),
            }
        }
        tokio::select! {
            _ = watcher.changed() => {}
            state = states.changed() => match state {
                SessionState::Disconnected => {
                    tracing::warn!("lost the ZooKeeper connection; not leading until it is back");
                    tx.send_replace(LatchState::Unknown);
                    loop {
                        match states.changed().await {
                            SessionState::SyncConnected | SessionState::ConnectedReadOnly => break,
                            s if s.is_terminated() => return Outcome::Interrupted(ZkError::NoSession),
                            _ => {}
                        }
                    }
                }
                s if s.is_terminated() => return Outcome::Interrupted(ZkError::NoSession),
                _ => {}
            },
            ctl = control.recv() => match ctl {
                Some(Control::Rejoin) => return Outcome::Rejoin,
                Some(Control::Leave(reply)) => {
                    reply.send(()).ok();
                    return Outcome::Left;
                }
                None => return Outcome::Left,
            },
            _ = sessions.changed() => return Outcome::Interrupted(ZkError::NoSession),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_curator_sequence_numbers() {
        assert_eq!(sequence("_c_3f2a-latch-0000000012"), Some(12));
        assert_eq!(sequence("_c_a-b-latch-latch-0000000003"), Some(3));
        assert_eq!(sequence("junk"), None);
    }
}
