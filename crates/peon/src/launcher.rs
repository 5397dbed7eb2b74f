//! `drover-peon --launcher`: the fork server a middle manager starts once, so that a task's peon
//! costs a `fork` instead of an `exec` (why, and the protocol: `drover_service::peon_launch`).
//!
//! Its stdin is the socket to the middle manager. It stays single-threaded and never starts an
//! async runtime, so a forked child may go on running ordinary Rust code. Each child becomes
//! exactly what an exec'd peon is: its own process group, the three descriptors it was sent as
//! stdin, stdout and stderr, nothing else open, the request's variables in its environment, and
//! the same `run_peon` from `main.rs`. The launcher polls the children's pidfds, reaps each one
//! that exits and reports its wait status. It exits when the middle manager closes the socket;
//! children still running then find their stdin closed and exit too, as peons always do.

use std::io;
use std::os::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::ExitCode;

use drover_service::peon_launch::{recv_message, send_message, LaunchReply, LaunchRequest};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

/// A child not yet reaped.
struct Child {
    pid: i32,
    pidfd: OwnedFd,
}

pub fn serve(run_peon: fn(&Path, &str) -> u8) -> ExitCode {
    // The children's stdout and stderr are placed at 1 and 2; make sure a passed descriptor can
    // never be given those numbers while they are in use.
    for fd in 1..=2 {
        // SAFETY: querying and opening descriptors has no memory effects.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
    // SAFETY: the middle manager made our stdin the socket; nothing else in this process reads
    // stdin.
    let socket = unsafe { OwnedFd::from_raw_fd(0) };
    let mut children: Vec<Child> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let mut ready = std::iter::once(PollFd::new(&socket, PollFlags::IN))
            .chain(
                children
                    .iter()
                    .map(|c| PollFd::new(&c.pidfd, PollFlags::IN)),
            )
            .collect::<Vec<_>>();
        match poll(&mut ready, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                eprintln!("drover-peon launcher: poll failed: {e}");
                return ExitCode::from(1);
            }
        }
        let request_waiting = !ready[0].revents().is_empty();
        let exited: Vec<usize> = ready[1..]
            .iter()
            .enumerate()
            .filter(|(_, fd)| !fd.revents().is_empty())
            .map(|(i, _)| i)
            .collect();
        drop(ready);
        // Highest index first, so swap_remove never moves a child that is still to be reaped.
        for i in exited.into_iter().rev() {
            let child = children.swap_remove(i);
            let reply = LaunchReply::Exited {
                pid: child.pid,
                wait_status: reap(child.pid),
            };
            if send_message(socket.as_fd(), &reply, &[]).is_err() {
                return ExitCode::SUCCESS; // the middle manager is gone
            }
        }
        if !request_waiting {
            continue;
        }
        let (reply, child) = match recv_message::<LaunchRequest>(socket.as_fd(), &mut buf) {
            Ok(None) => return ExitCode::SUCCESS, // the middle manager closed its end
            Ok(Some((request, fds))) => launch(request, fds, run_peon),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => (
                LaunchReply::Refused {
                    error: format!("unreadable request: {e}"),
                },
                None,
            ),
            Err(e) => {
                eprintln!("drover-peon launcher: cannot read from the middle manager: {e}");
                return ExitCode::from(1);
            }
        };
        let pidfd = child.as_ref().map(|c| c.pidfd.as_fd());
        if send_message(socket.as_fd(), &reply, pidfd.as_slice()).is_err() {
            return ExitCode::SUCCESS;
        }
        children.extend(child);
    }
}

fn launch(
    request: LaunchRequest,
    fds: Vec<OwnedFd>,
    run_peon: fn(&Path, &str) -> u8,
) -> (LaunchReply, Option<Child>) {
    let refused = |error: String| (LaunchReply::Refused { error }, None);
    let Ok(stdio) = <[OwnedFd; 3]>::try_from(fds) else {
        return refused("a request must carry stdin, stdout and stderr".into());
    };
    // SAFETY: this process has one thread, so the child inherits no lock held by another thread
    // and may allocate and run Rust code freely.
    match unsafe { libc::fork() } {
        -1 => refused(format!("fork failed: {}", io::Error::last_os_error())),
        0 => become_peon(request, stdio, run_peon),
        pid => {
            drop(stdio);
            let pidfd = Pid::from_raw(pid)
                .ok_or_else(|| io::Error::other("fork returned a bad pid"))
                .and_then(|p| Ok(pidfd_open(p, PidfdFlags::empty())?));
            match pidfd {
                Ok(pidfd) => (LaunchReply::Started { pid }, Some(Child { pid, pidfd })),
                Err(e) => {
                    // A child nobody can watch must not run.
                    // SAFETY: `pid` is our unreaped child, so the number is still its own.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    reap(pid);
                    refused(format!("pidfd_open failed: {e}"))
                }
            }
        }
    }
}

/// The child's side of the fork: set up as an exec'd peon is, run the task, exit.
fn become_peon(request: LaunchRequest, stdio: [OwnedFd; 3], run_peon: fn(&Path, &str) -> u8) -> ! {
    let raw: [RawFd; 3] = stdio.map(IntoRawFd::into_raw_fd);
    // SAFETY: plain system calls on our own descriptors. Nothing the launcher owned is dropped
    // after this: the process ends in `exit`, which runs no destructors, so descriptors closed
    // here are never closed twice.
    unsafe {
        // Its own process group, as the middle manager gives an exec'd peon: a Ctrl-C meant for
        // the middle manager does not reach it.
        libc::setpgid(0, 0);
        for (target, fd) in raw.into_iter().enumerate() {
            if libc::dup2(fd, target as RawFd) < 0 {
                libc::_exit(71);
            }
        }
        // The launcher's socket, the other children's pidfds, the passed originals.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    }
    for (key, value) in &request.env {
        std::env::set_var(key, value);
    }
    let code = run_peon(&request.task_dir, &request.attempt);
    std::process::exit(code.into())
}

/// Waits for a child that has exited (its pidfd said so) and gives its raw wait status.
fn reap(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: writes only to `status`.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return status;
    }
}
