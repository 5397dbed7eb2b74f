//! How peons are started: forked by the peon launcher (`drover-peon --launcher`, a fork server
//! this middle manager keeps; the default), or exec'd one per task (`peon_fork_server = false`).
//! Either way the result is a [`PeonProcess`]: its own process group, stdin a pipe we hold (the
//! peon exits when it closes), stdout and stderr appended to the task log.
//!
//! Why a fork server, and what it says: `drover_service::peon_launch`. The launcher is started
//! with the middle manager and again on the next task if it ever exits; if it cannot be started
//! at all, peons are exec'd, so tasks still run.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_service::peon_launch::{
    borrow_all, recv_message, send_message, socket_pair, LaunchReply, LaunchRequest, LAUNCHER_FLAG,
};
use rustix::process::{pidfd_send_signal, Signal};
use tokio::sync::oneshot;

/// How long a fork may take before the launcher counts as stuck (it answers in well under a
/// millisecond).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PeonLauncher {
    peon: PathBuf,
    fork_server: bool,
    server: Mutex<Option<Arc<ForkServer>>>,
}

impl PeonLauncher {
    pub fn new(peon: PathBuf, fork_server: bool) -> PeonLauncher {
        PeonLauncher {
            peon,
            fork_server,
            server: Mutex::new(None),
        }
    }

    /// Starts the fork server now, so the first task does not wait for it and a launcher that
    /// cannot start is reported at once.
    pub fn start(&self) {
        if self.fork_server {
            if let Err(e) = self.live_server() {
                tracing::warn!(error = %e, "cannot start the peon launcher; peons will be exec'd");
            }
        }
    }

    /// Starts a peon for the request's task directory and attempt, with `log` as its stdout and
    /// stderr and the request's variables added to its environment.
    pub fn spawn(&self, request: LaunchRequest, log: File) -> io::Result<PeonProcess> {
        if self.fork_server {
            match self.live_server() {
                Ok(server) => return server.launch(request, log),
                Err(e) => {
                    tracing::warn!(error = %e, "peon launcher unavailable; exec'ing the peon")
                }
            }
        }
        self.exec(request, log)
    }

    fn live_server(&self) -> io::Result<Arc<ForkServer>> {
        let mut server = self.server.lock().expect("launcher lock");
        if let Some(live) = server.as_ref().filter(|s| !s.is_closed()) {
            return Ok(live.clone());
        }
        let started = ForkServer::start(&self.peon)?;
        *server = Some(started.clone());
        Ok(started)
    }

    fn exec(&self, request: LaunchRequest, log: File) -> io::Result<PeonProcess> {
        let mut child = tokio::process::Command::new(&self.peon)
            .arg(request.task_dir)
            .arg(request.attempt)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .envs(request.env)
            // Its own process group: a Ctrl-C in the middle manager's terminal reaches the middle
            // manager, which stops its peons; it does not kill them behind its back.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()?;
        let stdin = child.stdin.take().map(|s| s.into_owned_fd()).transpose()?;
        Ok(PeonProcess {
            pid: child.id(),
            stdin,
            kind: Kind::Exec(child),
        })
    }
}

/// A running peon, however it was started.
pub struct PeonProcess {
    pid: Option<u32>,
    /// The write end of the peon's stdin; dropped once the peon has exited.
    stdin: Option<OwnedFd>,
    kind: Kind,
}

enum Kind {
    Exec(tokio::process::Child),
    Forked {
        pidfd: OwnedFd,
        exit: oneshot::Receiver<ExitStatus>,
    },
}

impl PeonProcess {
    pub fn id(&self) -> Option<u32> {
        self.pid
    }

    /// Sends `signal` to the peon if it has not been reaped: never to a recycled pid.
    pub fn signal(&mut self, signal: Signal) {
        match &mut self.kind {
            Kind::Exec(child) => {
                if let Some(pid) = child.id() {
                    // SAFETY: `pid` is our child, not yet reaped (we still own `child`).
                    unsafe { libc::kill(pid as i32, signal.as_raw()) };
                }
            }
            Kind::Forked { pidfd, .. } => {
                // A pidfd names this process only; after it is reaped this fails harmlessly.
                pidfd_send_signal(pidfd.as_fd(), signal).ok();
            }
        }
    }

    /// Waits for the peon to exit; then closes its stdin.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let exit = match &mut self.kind {
            Kind::Exec(child) => child.wait().await,
            Kind::Forked { pidfd, exit } => match exit.await {
                Ok(status) => Ok(status),
                Err(_) => {
                    // Its launcher died, so nobody will report its exit: it must not run on
                    // unreported.
                    pidfd_send_signal(pidfd.as_fd(), Signal::KILL).ok();
                    Err(io::Error::other(
                        "the peon launcher exited before reporting this peon's exit; the peon was killed",
                    ))
                }
            },
        };
        self.stdin = None;
        exit
    }
}

/// The middle manager's end of one launcher process.
struct ForkServer {
    socket: OwnedFd,
    /// Held while a request is sent, so replies match requests in order. The reader thread never
    /// takes it: a send blocked on a full socket cannot hold up the reads that would free it.
    sending: Mutex<()>,
    shared: Mutex<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Who waits for the answer to each request sent, in order.
    waiting: VecDeque<std_mpsc::Sender<io::Result<Forked>>>,
    /// Who waits for each started child's exit.
    exits: HashMap<i32, oneshot::Sender<ExitStatus>>,
    closed: bool,
}

struct Forked {
    pid: i32,
    pidfd: OwnedFd,
    exit: oneshot::Receiver<ExitStatus>,
}

impl ForkServer {
    fn start(peon: &Path) -> io::Result<Arc<ForkServer>> {
        let (ours, theirs) = socket_pair()?;
        let process = std::process::Command::new(peon)
            .arg(LAUNCHER_FLAG)
            .stdin(Stdio::from(theirs))
            // Not in our process group: it must outlive a Ctrl-C long enough to report the
            // exits of the peons we then stop. It exits when we close the socket.
            .process_group(0)
            .spawn()?;
        tracing::info!(pid = process.id(), "peon launcher started");
        let server = Arc::new(ForkServer {
            socket: ours,
            sending: Mutex::new(()),
            shared: Mutex::new(Shared::default()),
        });
        let reader = server.clone();
        std::thread::Builder::new()
            .name("peon-launcher".into())
            .spawn(move || reader.read_replies(process))?;
        Ok(server)
    }

    fn is_closed(&self) -> bool {
        self.shared.lock().expect("launcher lock").closed
    }

    fn launch(&self, request: LaunchRequest, log: File) -> io::Result<PeonProcess> {
        let (stdin_read, stdin_write) = std::io::pipe()?;
        let fds: [OwnedFd; 3] = [stdin_read.into(), log.try_clone()?.into(), log.into()];
        let (tx, rx) = std_mpsc::channel();
        {
            let _sending = self.sending.lock().expect("launcher send lock");
            {
                let mut shared = self.shared.lock().expect("launcher lock");
                if shared.closed {
                    return Err(io::Error::other("the peon launcher has exited"));
                }
                shared.waiting.push_back(tx);
            }
            if let Err(e) = send_message(self.socket.as_fd(), &request, &borrow_all(&fds)) {
                // Nothing was sent, so no answer will come for the waiter just queued (the last
                // one: nobody else sends while we hold `sending`).
                self.shared
                    .lock()
                    .expect("launcher lock")
                    .waiting
                    .pop_back();
                return Err(e);
            }
        }
        // Our copies of the peon's stdin read end and log go now: the child has its own.
        drop(fds);
        let forked = rx
            .recv_timeout(LAUNCH_TIMEOUT)
            .map_err(|_| io::Error::other("the peon launcher did not answer"))??;
        Ok(PeonProcess {
            pid: u32::try_from(forked.pid).ok(),
            stdin: Some(stdin_write.into()),
            kind: Kind::Forked {
                pidfd: forked.pidfd,
                exit: forked.exit,
            },
        })
    }

    /// The reader thread: hands each answer to whoever waits for it, until the launcher exits.
    fn read_replies(self: Arc<Self>, mut process: std::process::Child) {
        let mut buf = Vec::new();
        let end = loop {
            match recv_message::<LaunchReply>(self.socket.as_fd(), &mut buf) {
                Ok(Some((reply, fds))) => self.dispatch(reply, fds),
                Ok(None) => break "closed its socket".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        let mut shared = self.shared.lock().expect("launcher lock");
        shared.closed = true;
        for waiter in shared.waiting.drain(..) {
            waiter
                .send(Err(io::Error::other("the peon launcher exited")))
                .ok();
        }
        // Dropping the senders tells every PeonProcess::wait its exit will not be reported.
        shared.exits.clear();
        drop(shared);
        let status = process.wait();
        tracing::warn!(reason = %end, ?status, "the peon launcher exited; the next task starts a new one");
    }

    fn dispatch(&self, reply: LaunchReply, fds: Vec<OwnedFd>) {
        let mut shared = self.shared.lock().expect("launcher lock");
        match reply {
            LaunchReply::Started { pid } => {
                let Some(waiter) = shared.waiting.pop_front() else {
                    return;
                };
                let Some(pidfd) = fds.into_iter().next() else {
                    waiter
                        .send(Err(io::Error::other("the launcher sent no pidfd")))
                        .ok();
                    return;
                };
                // Registered before anyone can see the pid, and before the launcher can report
                // its exit (it answers `Started` first).
                let (tx, exit) = oneshot::channel();
                shared.exits.insert(pid, tx);
                if let Err(std_mpsc::SendError(Ok(late))) =
                    waiter.send(Ok(Forked { pid, pidfd, exit }))
                {
                    // Its starter gave up waiting and reported the task failed to start.
                    pidfd_send_signal(late.pidfd.as_fd(), Signal::KILL).ok();
                }
            }
            LaunchReply::Refused { error } => {
                if let Some(waiter) = shared.waiting.pop_front() {
                    waiter
                        .send(Err(io::Error::other(format!(
                            "the peon launcher refused: {error}"
                        ))))
                        .ok();
                }
            }
            LaunchReply::Exited { pid, wait_status } => {
                if let Some(tx) = shared.exits.remove(&pid) {
                    tx.send(ExitStatus::from_raw(wait_status)).ok();
                }
            }
        }
    }
}
