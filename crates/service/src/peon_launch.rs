//! What a middle manager and its peon launcher (`drover-peon --launcher`) say to each other.
//!
//! Exec'ing the peon binary costs about 3 ms of CPU per task before `main` runs: the dynamic
//! loader applies some 45,000 relocations and copies the pages they touch, and glibc and libgcc
//! probe the CPU (CPUID, which traps to the hypervisor on a virtual machine). The launcher pays
//! that once: it is exec'd at the middle manager's start, stays single-threaded, and forks one
//! child per task, which runs the task exactly as an exec'd peon would.
//!
//! The two talk over a `SOCK_SEQPACKET` Unix socket pair, one JSON message per packet, with file
//! descriptors passed beside it (`SCM_RIGHTS`):
//! - [`LaunchRequest`] carries the peon's stdin (a pipe the middle manager keeps open), stdout
//!   and stderr (its task log);
//! - [`LaunchReply::Started`] carries a pidfd of the child, so the middle manager can signal it
//!   without ever hitting a recycled pid;
//! - [`LaunchReply::Exited`] gives the wait status once the launcher has reaped the child.
//!
//! Replies to requests come in request order; an `Exited` never comes before its `Started`.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::net::{
    recvmsg, sendmsg, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags,
    ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The argument that makes `drover-peon` a launcher; its stdin is the socket.
pub const LAUNCHER_FLAG: &str = "--launcher";

/// Largest message either side sends. A request holds a path, an attempt number and the peon's
/// environment (a few KiB); the kernel's default socket buffer bounds a packet at about 200 KiB.
pub const MAX_MESSAGE: usize = 128 * 1024;

/// Most descriptors one message carries (a request's stdin, stdout and stderr).
const MAX_FDS: usize = 3;

/// Start a peon for `task_dir`, attempt `attempt`, with these variables added to the
/// launcher's environment. Sent with three descriptors: stdin, stdout, stderr.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchRequest {
    pub task_dir: PathBuf,
    pub attempt: String,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LaunchReply {
    /// The child runs; sent with its pidfd.
    Started { pid: i32 },
    /// No child was made (fork failed, bad descriptors).
    Refused { error: String },
    /// A child was reaped: its raw wait status, as `waitpid` gives it.
    Exited { pid: i32, wait_status: i32 },
}

/// A connected pair; both ends close on exec, and the launcher's end becomes its stdin.
pub fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Sends one message with `fds` beside it.
pub fn send_message<T: Serialize>(
    socket: BorrowedFd<'_>,
    message: &T,
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let json = serde_json::to_vec(message).map_err(io::Error::other)?;
    if json.len() > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a launcher message of {} bytes is over the {MAX_MESSAGE}-byte limit",
                json.len()
            ),
        ));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors for one launcher message",
        ));
    }
    let sent = sendmsg(
        socket,
        &[IoSlice::new(&json)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if sent != json.len() {
        return Err(io::Error::other("a launcher message was cut short"));
    }
    Ok(())
}

/// Receives one message and the descriptors sent with it (close-on-exec); `None` when the other
/// side has closed its end.
pub fn recv_message<T: DeserializeOwned>(
    socket: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    buf.resize(MAX_MESSAGE, 0);
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match recvmsg(
            socket,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(passed) = message {
            fds.extend(passed);
        }
    }
    if received.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    if received.flags.contains(ReturnFlags::TRUNC) || received.flags.contains(ReturnFlags::CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a launcher message was larger than the limit",
        ));
    }
    let message = serde_json::from_slice(&buf[..received.bytes])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((message, fds)))
}

/// Borrows each descriptor, for [`send_message`].
pub fn borrow_all(fds: &[impl AsFd]) -> Vec<BorrowedFd<'_>> {
    fds.iter().map(AsFd::as_fd).collect()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_request_and_its_descriptors_cross_the_socket() {
        let (a, b) = socket_pair().unwrap();
        let (mut reader, writer) = std::io::pipe().unwrap();
        let request = LaunchRequest {
            task_dir: "/var/task/t1".into(),
            attempt: "2".into(),
            env: vec![("DROVER_PEON_PORT".into(), "8100".into())],
        };
        let writer_fd: OwnedFd = writer.into();
        send_message(a.as_fd(), &request, &[writer_fd.as_fd()]).unwrap();
        drop(writer_fd);
        let mut buf = Vec::new();
        let (got, fds): (LaunchRequest, _) = recv_message(b.as_fd(), &mut buf).unwrap().unwrap();
        assert_eq!(got, request);
        assert_eq!(fds.len(), 1);
        // The passed descriptor is the pipe's write end: what goes in comes out of ours.
        let mut passed = std::fs::File::from(fds.into_iter().next().unwrap());
        passed.write_all(b"through").unwrap();
        drop(passed);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "through");

        let reply = LaunchReply::Exited {
            pid: 42,
            wait_status: 256,
        };
        send_message(b.as_fd(), &reply, &[]).unwrap();
        let (got, fds): (LaunchReply, _) = recv_message(a.as_fd(), &mut buf).unwrap().unwrap();
        assert_eq!(got, reply);
        assert!(fds.is_empty());
        drop(b);
        assert!(recv_message::<LaunchReply>(a.as_fd(), &mut buf)
            .unwrap()
            .is_none());
    }

    #[test]
    fn an_oversized_message_is_refused_before_it_is_sent() {
        let (a, _b) = socket_pair().unwrap();
        let request = LaunchRequest {
            task_dir: "/t".into(),
            attempt: "1".into(),
            env: vec![("BIG".into(), "x".repeat(MAX_MESSAGE))],
        };
        let err = send_message(a.as_fd(), &request, &[]).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
    }
}
