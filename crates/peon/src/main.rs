//! `drover-peon <taskDir> <attemptId>`: runs exactly one task, as Druid's `internal peon` does.
//!
//! It reads `<taskDir>/task.json`, holds an exclusive lock on `<taskDir>/lock` (so two peons never
//! run the same task on one host), exits with code 2 when its stdin reaches EOF (its middle manager
//! died), runs the task, writes `<taskDir>/attempt/<attemptId>/status.json` and exits 0. Any other
//! exit code means the task failed; the middle manager reads `status.json` only after exit 0.
//!
//! `drover-peon --launcher` is the fork server a middle manager keeps, which forks one child per
//! task to run the same code (launcher.rs).
//!
//! No async runtime for a noop: it should cost a millisecond and a few megabytes. An ingestion
//! task starts a one-thread tokio runtime for its HTTP and object-store I/O.

#[macro_use]
mod failure;
mod chat_server;
mod compact;
mod deep_storage;
mod index;
mod inputs;
mod kafka;
mod kill;
mod launcher;
mod live;
mod lock;
mod noop;
mod overlord_client;
mod parallel;
mod s3_input;

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::failure::TaskFailure;
use drover_core::TaskStatus;
use drover_task::{IsReadyResult, Task, TaskKind};

/// Druid's `druid.indexer.task.directoryLockTimeout` default (PT10M).
const DEFAULT_DIRECTORY_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 2 && args[1] == drover_service::peon_launch::LAUNCHER_FLAG {
        return launcher::serve(run_peon);
    }
    if args.len() != 3 || args[1].starts_with('-') {
        eprintln!("usage: drover-peon <taskDir> <attemptId> | drover-peon --launcher");
        return ExitCode::from(64);
    }
    ExitCode::from(run_peon(Path::new(&args[1]), &args[2]))
}

/// One task from start to exit code: what an exec'd peon and a launcher's child both run.
fn run_peon(task_dir: &Path, attempt: &str) -> u8 {
    if attempt.is_empty() || !attempt.chars().all(|c| c.is_ascii_alphanumeric()) {
        eprintln!("drover-peon: attemptId must be alphanumeric, got {attempt:?}");
        return 64;
    }
    match run(task_dir, attempt) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("drover-peon: {e}");
            1
        }
    }
}

fn run(task_dir: &Path, attempt: &str) -> Result<(), TaskFailure> {
    let started = Instant::now();
    println!(
        "drover-peon pid={} taskDir={} attempt={attempt}",
        std::process::id(),
        task_dir.display()
    );

    let task_file = task_dir.join("task.json");
    let bytes =
        std::fs::read(&task_file).map_err(|e| fail!("cannot read {}: {e}", task_file.display()))?;
    let task = Task::from_json_bytes(&bytes)
        .map_err(|e| fail!("cannot parse {}: {e}", task_file.display()))?;

    let lock_timeout = std::env::var("DROVER_PEON_DIRECTORY_LOCK_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_DIRECTORY_LOCK_TIMEOUT);
    let _lock = lock::lock_task_dir(&task_dir.join("lock"), lock_timeout)?;

    watch_parent_via_stdin();

    let status = match &task.kind {
        TaskKind::Noop(spec) => match spec.is_ready_result {
            IsReadyResult::Yes => noop::run(&task.id, spec),
            IsReadyResult::No => TaskStatus::failure(
                task.id.clone(),
                "task is not ready to run (isReadyResult NO)",
            ),
            IsReadyResult::Exception => {
                TaskStatus::failure(task.id.clone(), "isReady failed (isReadyResult EXCEPTION)")
            }
        },
        TaskKind::Index(spec) if task.supervisor_task_id.is_some() => parallel::sub_task::run(
            &task,
            spec,
            task_dir,
            &task_dir.join("attempt").join(attempt),
        ),
        TaskKind::Index(spec) => index::run(
            &task,
            spec,
            task_dir,
            &task_dir.join("attempt").join(attempt),
        ),
        TaskKind::Compact(spec) => compact::run(
            &task,
            spec,
            task_dir,
            &task_dir.join("attempt").join(attempt),
        ),
        TaskKind::Kill(spec) => kill::run(&task, spec, &task_dir.join("attempt").join(attempt)),
        TaskKind::Kafka(spec) => kafka::run(
            &task,
            spec,
            task_dir,
            &task_dir.join("attempt").join(attempt),
        ),
    };
    let status = status.with_duration(started.elapsed().as_millis() as i64);
    write_status(&task_dir.join("attempt").join(attempt), &status)?;
    println!(
        "drover-peon finished task {} with status {:?} in {} ms; {}",
        task.id,
        status.status,
        status.duration,
        index::ProcessUsage::now()
    );
    Ok(())
}

/// Runs a task's work on a one-thread tokio runtime made for it (its HTTP and object-store
/// I/O); the task's own thread does the CPU work.
pub(crate) fn block_on<T>(
    work: impl std::future::Future<Output = Result<T, TaskFailure>>,
) -> Result<T, TaskFailure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail!("cannot start the async runtime: {e}"))?
        .block_on(work)
}

/// The middle manager keeps our stdin open for as long as it lives; EOF means it is gone, and a
/// task nobody will report on must not keep running (Druid's peon exits with 2 here too).
fn watch_parent_via_stdin() {
    std::thread::spawn(|| {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    eprintln!("drover-peon: stdin closed, the middle manager is gone; exiting");
                    std::process::exit(2);
                }
                Ok(_) => {}
            }
        }
    });
}

fn write_status(attempt_dir: &Path, status: &TaskStatus) -> Result<(), TaskFailure> {
    std::fs::create_dir_all(attempt_dir)
        .map_err(|e| fail!("cannot create {}: {e}", attempt_dir.display()))?;
    // Written in place, not through a temporary file and a rename: the middle manager reads it
    // only after this process exits 0, which it does only once the write is complete; and a
    // reused task directory keeps the file's inode (see the middle manager's spare_dirs.rs).
    let path = attempt_dir.join("status.json");
    let json = serde_json::to_vec(status).expect("status serializes");
    std::fs::write(&path, json).map_err(|e| fail!("cannot write {}: {e}", path.display()))
}
