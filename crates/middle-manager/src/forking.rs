//! Druid's ForkingTaskRunner, as functions the monitor calls: lay out the task directory, spawn
//! `drover-peon` with its output in the task log, supervise it (SIGTERM, then SIGKILL after a grace
//! period), and turn its exit into a TaskStatus.

use std::fs::File;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use drover_core::{TaskId, TaskStatus};
use drover_service::peon_launch::LaunchRequest;
use drover_task::Task;
use rustix::process::Signal;
use tokio::sync::mpsc;

use crate::launcher::{PeonLauncher, PeonProcess};
use crate::spare_dirs::SpareDirs;

/// Files of one task, under `<baseTaskDir>/<taskId>/`.
#[derive(Debug, Clone)]
pub struct TaskDir {
    pub root: PathBuf,
    pub attempt: String,
}

impl TaskDir {
    /// The id is a validated `TaskId`: it cannot escape the base directory.
    pub fn for_task(base: &Path, id: &TaskId) -> PathBuf {
        base.join(id.as_str())
    }

    pub fn log(&self) -> PathBuf {
        self.root.join("log")
    }

    pub fn attempt_dir(&self) -> PathBuf {
        self.root.join("attempt").join(&self.attempt)
    }

    /// Creates the directory (or reuses a spare one), writes `task.json` and picks the next
    /// attempt number.
    pub fn prepare(base: &Path, task: &Task, spares: &SpareDirs) -> io::Result<TaskDir> {
        let root = Self::for_task(base, &task.id);
        // A task run again (restored, or retried here) keeps its own directory and attempts.
        if !root.exists() && spares.take_as(&root, &task.to_json_bytes()) {
            return Ok(TaskDir {
                root,
                attempt: "1".into(),
            });
        }
        std::fs::create_dir_all(root.join("attempt"))?;
        let attempt = next_attempt(&root.join("attempt"))?;
        std::fs::create_dir_all(root.join("attempt").join(attempt.to_string()))?;
        let tmp = root.join("task.json.tmp");
        std::fs::write(&tmp, task.to_json_bytes())?;
        std::fs::rename(&tmp, root.join("task.json"))?;
        Ok(TaskDir {
            root,
            attempt: attempt.to_string(),
        })
    }
}

fn next_attempt(attempts: &Path) -> io::Result<u32> {
    let mut max = 0;
    for entry in std::fs::read_dir(attempts)? {
        if let Some(n) = entry?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        {
            max = max.max(n);
        }
    }
    Ok(max + 1)
}

/// Starts the peon with stdout and stderr appended to the task log and stdin a pipe we keep open:
/// the peon exits when it closes, so peons never outlive their middle manager.
pub fn spawn_peon(
    launcher: &PeonLauncher,
    dir: &TaskDir,
    worker_host: &str,
    port: u16,
    env: &[(&str, String)],
) -> io::Result<PeonProcess> {
    let log = File::options().create(true).append(true).open(dir.log())?;
    use std::io::Write;
    writeln!(
        &log,
        "drover-middle-manager {worker_host}: starting peon for this task on port {port}"
    )?;
    let mut vars = vec![
        ("DROVER_PEON_PORT".to_string(), port.to_string()),
        ("DROVER_PEON_HOST".to_string(), worker_host.to_string()),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let request = LaunchRequest {
        task_dir: dir.root.clone(),
        attempt: dir.attempt.clone(),
        env: vars,
    };
    launcher.spawn(request, log)
}

#[derive(Debug)]
pub enum Control {
    /// SIGTERM now, SIGKILL after the grace period if it is still running.
    Terminate { grace: Duration },
}

/// Waits for the peon, obeying control messages. Signals reach only our own peon, never a
/// recycled pid (see `PeonProcess::signal`).
pub async fn supervise(
    mut peon: PeonProcess,
    mut control: mpsc::Receiver<Control>,
) -> io::Result<ExitStatus> {
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut control_open = true;
    loop {
        tokio::select! {
            status = peon.wait() => return status,
            cmd = control.recv(), if control_open => match cmd {
                Some(Control::Terminate { grace }) => {
                    peon.signal(Signal::TERM);
                    kill_at.get_or_insert(tokio::time::Instant::now() + grace);
                }
                None => control_open = false,
            },
            _ = tokio::time::sleep_until(kill_at.unwrap_or_else(tokio::time::Instant::now)), if kill_at.is_some() => {
                tracing::warn!(pid = ?peon.id(), "peon did not stop after SIGTERM; sending SIGKILL");
                peon.signal(Signal::KILL);
                kill_at = None;
            }
        }
    }
}

/// Exit 0 → the status the peon wrote; anything else → FAILED with the exit code, as Druid says
/// it. A signal counts as code 128 + signal, which is what a shell (and Java) reports.
pub fn status_after_exit(id: &TaskId, exit: &io::Result<ExitStatus>, dir: &TaskDir) -> TaskStatus {
    let exit = match exit {
        Ok(e) => e,
        Err(e) => {
            return TaskStatus::failure(
                id.clone(),
                format!("Failed to wait for the task process: {e}"),
            )
        }
    };
    let code = exit.code().or_else(|| exit.signal().map(|s| 128 + s));
    if code == Some(0) {
        let path = dir.attempt_dir().join("status.json");
        return match std::fs::read(&path).map(|b| serde_json::from_slice::<TaskStatus>(&b)) {
            Ok(Ok(status)) if status.id == *id && status.is_complete() => status,
            Ok(Ok(status)) => TaskStatus::failure(
                id.clone(),
                format!(
                    "Task process wrote an unusable status: {:?} for [{}]",
                    status.status, status.id
                ),
            ),
            Ok(Err(e)) => TaskStatus::failure(
                id.clone(),
                format!("Task process wrote an unreadable status.json: {e}"),
            ),
            Err(e) => TaskStatus::failure(
                id.clone(),
                format!("Task process exited 0 without a status.json: {e}"),
            ),
        };
    }
    let code = code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "unknown".into());
    TaskStatus::failure(
        id.clone(),
        format!("Task execution process exited unsuccessfully with code[{code}]. See middleManager logs for more details."),
    )
}

/// Picks peon ports from the configured range, skipping ports in use by us or by anyone else.
#[derive(Debug)]
pub struct PortPool {
    start: u16,
    end: u16,
    next: u16,
    used: std::collections::BTreeSet<u16>,
}

impl PortPool {
    pub fn new(start: u16, end: u16) -> Self {
        PortPool {
            start,
            end,
            next: start,
            used: Default::default(),
        }
    }

    /// The next free port, round-robin so a just-released port is not reused at once.
    pub fn take(&mut self, is_free: impl Fn(u16) -> bool) -> Option<u16> {
        let span = (self.end - self.start) as u32 + 1;
        for _ in 0..span {
            let port = self.next;
            self.next = if port >= self.end {
                self.start
            } else {
                port + 1
            };
            if !self.used.contains(&port) && is_free(port) {
                self.used.insert(port);
                return Some(port);
            }
        }
        None
    }

    pub fn release(&mut self, port: u16) {
        self.used.remove(&port);
    }
}

/// Whether nobody listens on the port now (Druid's PortFinder does the same check).
pub fn port_is_bindable(port: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_pool_round_robins_and_skips_busy_ports() {
        let mut pool = PortPool::new(100, 102);
        assert_eq!(pool.take(|_| true), Some(100));
        assert_eq!(pool.take(|p| p != 101), Some(102));
        assert_eq!(pool.take(|_| true), Some(101));
        assert_eq!(pool.take(|_| true), None);
        pool.release(100);
        assert_eq!(pool.take(|_| true), Some(100));
    }

    #[test]
    fn exit_codes_become_druid_messages() {
        let dir = TaskDir {
            root: PathBuf::from("/nonexistent"),
            attempt: "1".into(),
        };
        let id = TaskId::new("t").unwrap();
        let killed = status_after_exit(&id, &Ok(ExitStatus::from_raw(9)), &dir);
        assert!(killed.error_msg.unwrap().contains("code[137]"));
        let failed = status_after_exit(&id, &Ok(ExitStatus::from_raw(2 << 8)), &dir);
        assert!(failed.error_msg.unwrap().contains("code[2]"));
        let no_status = status_after_exit(&id, &Ok(ExitStatus::from_raw(0)), &dir);
        assert!(no_status
            .error_msg
            .unwrap()
            .contains("without a status.json"));
    }
}
