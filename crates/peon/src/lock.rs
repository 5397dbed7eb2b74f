//! The task directory lock (`<taskDir>/lock`), held for the peon's whole life.

use crate::failure::TaskFailure;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct DirLock {
    _file: File,
}

pub fn lock_task_dir(path: &Path, timeout: Duration) -> Result<DirLock, TaskFailure> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| fail!("cannot open {}: {e}", path.display()))?;
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(DirLock { _file: file });
        }
        if Instant::now() >= deadline {
            return Err(fail!(
                "another peon holds {} (waited {timeout:?})",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
