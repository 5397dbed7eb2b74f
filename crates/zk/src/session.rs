//! Keeps one live ZooKeeper session. The client library reconnects by itself after a
//! disconnection, but an expired session stays dead (every call answers `SessionExpired`), so the
//! keeper builds a new client and publishes it; users re-create their ephemerals and re-arm their
//! watches whenever the published client changes.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client::{Acls, Client, CreateMode, SessionState};

#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("ZooKeeper call timed out after {0:?}")]
    Timeout(Duration),
    #[error("ZooKeeper: {0}")]
    Client(#[from] zookeeper_client::Error),
    #[error("no ZooKeeper session")]
    NoSession,
    /// Watch events can be lost across a reconnection (and persistent watches were seen not to
    /// survive a server restart): whoever gets this re-creates its watches and re-reads.
    #[error("reconnected to ZooKeeper; re-arming watches")]
    Reconnected,
}

/// How long one ZooKeeper call may wait, whoever makes it: calls made while disconnected wait
/// until reconnection or expiry, and a caller stuck past this retries from the start instead.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Calls made while disconnected wait until reconnection or expiry; this bounds them.
pub async fn with_timeout<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, zookeeper_client::Error>>,
) -> Result<T, ZkError> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ZkError::Timeout(limit)),
    }
}

/// `mkdir -p` for persistent nodes.
pub async fn ensure_path(client: &Client, path: &str) -> Result<(), ZkError> {
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    with_timeout(CALL_TIMEOUT, client.mkdir(path, &options)).await
}

/// Makes `path` an ephemeral node of this session holding `data`. A node left there by an earlier
/// life of the same process belongs to a session that is dead but not yet expired: it is replaced,
/// not waited out, so a restarted worker is visible again at once.
pub async fn claim_ephemeral(client: &Client, path: &str, data: &[u8]) -> Result<(), ZkError> {
    if let Ok(Some(stat)) = with_timeout(CALL_TIMEOUT, client.check_stat(path)).await {
        if stat.ephemeral_owner == client.session_id().0 {
            return with_timeout(CALL_TIMEOUT, client.set_data(path, data, None))
                .await
                .map(|_| ());
        }
        match with_timeout(CALL_TIMEOUT, client.delete(path, None)).await {
            Ok(()) | Err(ZkError::Client(zookeeper_client::Error::NoNode)) => {}
            Err(e) => return Err(e),
        }
    }
    let options = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    with_timeout(CALL_TIMEOUT, client.create(path, data, &options))
        .await
        .map(|_| ())
}

#[derive(Clone)]
pub struct ZkSession {
    current: watch::Receiver<Option<Client>>,
}

impl ZkSession {
    /// Starts the keeper task. It connects in the background and retries until it succeeds.
    pub fn start(connect: String, session_timeout: Duration) -> ZkSession {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(keep_session(connect, session_timeout, tx));
        ZkSession { current: rx }
    }

    /// The current live client, waiting for one if there is none.
    pub async fn client(&self) -> Client {
        let mut rx = self.current.clone();
        loop {
            if let Some(c) = rx.borrow_and_update().clone() {
                return c;
            }
            if rx.changed().await.is_err() {
                // The keeper never ends while a ZkSession exists; wait forever rather than spin.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The current client, if a session is established now.
    pub fn try_client(&self) -> Option<Client> {
        self.current.borrow().clone()
    }

    /// A receiver that changes whenever the session is replaced or lost.
    pub fn subscribe(&self) -> watch::Receiver<Option<Client>> {
        self.current.clone()
    }
}

async fn keep_session(
    connect: String,
    session_timeout: Duration,
    tx: watch::Sender<Option<Client>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(Duration::from_secs(5))
            .connect(&connect);
        match tokio::time::timeout(Duration::from_secs(15), attempt).await {
            Ok(Ok(client)) => {
                backoff = Duration::from_millis(100);
                tracing::info!(session = %client.session_id(), timeout = ?client.session_timeout(), "ZooKeeper session established");
                let mut states = client.state_watcher();
                tx.send_replace(Some(client));
                loop {
                    let state = states.changed().await;
                    match state {
                        SessionState::Expired | SessionState::Closed | SessionState::AuthFailed => {
                            tracing::warn!(?state, "ZooKeeper session ended; starting a new one");
                            break;
                        }
                        other => tracing::info!(state = ?other, "ZooKeeper connection state"),
                    }
                }
                tx.send_replace(None);
                if tx.is_closed() {
                    return;
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, connect = %connect, "cannot connect to ZooKeeper; retrying")
            }
            Err(_) => {
                tracing::warn!(connect = %connect, "connecting to ZooKeeper timed out; retrying")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
