//! Task directories kept for reuse, in `<baseTaskDir>/.spare/`.
//!
//! A short task leaves a directory holding little more than `task.json`, the peon's `lock` and
//! `attempt/1/status.json`. Deleting it and making the next one costs half a dozen inodes freed
//! and allocated per task, and on ext4 without a journal freshly freed inodes make every later
//! allocation slower (the allocator scans past inodes freed in the last seconds to minutes). At
//! hundreds of tasks a second that was most of the middle manager's CPU. So a finished task's
//! directory, once its log is pushed, is emptied and parked here, and the next task's directory
//! is a parked one renamed into place: the same inodes, again and again.
//!
//! A parked directory gets the next task's `task.json` before it is renamed, so a task directory
//! never holds another task's file, even after a crash. Directories holding anything else
//! (segments, a Kafka task's state, more attempts) are deleted as before. The pool is emptied at
//! start-up.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What a finished task's directory may hold and still be reused.
const REUSABLE: &[&str] = &["task.json", "lock", "log", "attempt"];

#[derive(Debug)]
pub struct SpareDirs {
    pool: PathBuf,
    parked: Mutex<Vec<PathBuf>>,
    limit: usize,
    names: AtomicU64,
}

impl SpareDirs {
    /// Starts with an empty pool of at most `limit` directories (`<base>/.spare`).
    pub fn new(base_task_dir: &Path, limit: usize) -> io::Result<SpareDirs> {
        let pool = base_task_dir.join(".spare");
        if pool.exists() {
            std::fs::remove_dir_all(&pool)?;
        }
        std::fs::create_dir_all(&pool)?;
        Ok(SpareDirs {
            pool,
            parked: Mutex::new(Vec::new()),
            limit,
            names: AtomicU64::new(0),
        })
    }

    /// Makes `root` a fresh task directory holding `task_json`, with `attempt/1/` ready, from a
    /// parked directory. `false` when none is parked (or reuse failed): the caller makes one.
    pub fn take_as(&self, root: &Path, task_json: &[u8]) -> bool {
        let Some(spare) = self.parked.lock().expect("spare dirs lock").pop() else {
            return false;
        };
        let moved = File::create(spare.join("task.json"))
            .and_then(|mut f| f.write_all(task_json))
            .and_then(|()| std::fs::rename(&spare, root));
        match moved {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(dir = %spare.display(), error = %e, "cannot reuse a spare task directory");
                std::fs::remove_dir_all(&spare).ok();
                false
            }
        }
    }

    /// Takes a finished task's directory (its log already pushed): parked for the next task if
    /// it holds only what a short task leaves and the pool has room, deleted otherwise.
    pub fn give_back(&self, root: &Path) {
        if self.parked.lock().expect("spare dirs lock").len() >= self.limit || !reusable(root) {
            std::fs::remove_dir_all(root).ok();
            return;
        }
        let parked = self
            .pool
            .join(self.names.fetch_add(1, Ordering::Relaxed).to_string());
        // The log lives on in task-log storage (it was linked or copied there). The task's JSON
        // (which may hold credentials) and its status are emptied in place, keeping their inodes;
        // the next task writes its own.
        let emptied = remove_if_present(&root.join("log"))
            .and_then(|()| truncate_if_present(&root.join("task.json")))
            .and_then(|()| truncate_if_present(&root.join("attempt").join("1").join("status.json")))
            .and_then(|()| std::fs::rename(root, &parked));
        match emptied {
            Ok(()) => {
                // Checked again: other directories may have been parked while this one was
                // emptied.
                let mut spares = self.parked.lock().expect("spare dirs lock");
                if spares.len() < self.limit {
                    spares.push(parked);
                } else {
                    drop(spares);
                    std::fs::remove_dir_all(&parked).ok();
                }
            }
            Err(_) => {
                std::fs::remove_dir_all(root).ok();
            }
        }
    }
}

/// Only `task.json`, `lock`, `log` and `attempt/1/` holding at most `status.json`.
fn reusable(root: &Path) -> bool {
    let names = |dir: &Path| -> Option<Vec<String>> {
        std::fs::read_dir(dir)
            .ok()?
            .map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    };
    let Some(top) = names(root) else {
        return false;
    };
    if !top.iter().all(|n| REUSABLE.contains(&n.as_str())) || !top.iter().any(|n| n == "attempt") {
        return false;
    }
    if names(&root.join("attempt")).as_deref() != Some(&["1".to_string()]) {
        return false;
    }
    names(&root.join("attempt").join("1"))
        .is_some_and(|files| files.iter().all(|f| f == "status.json"))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn truncate_if_present(path: &Path) -> io::Result<()> {
    match File::options().write(true).truncate(true).open(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short_task_dir(base: &Path, id: &str) -> PathBuf {
        let root = base.join(id);
        std::fs::create_dir_all(root.join("attempt").join("1")).unwrap();
        std::fs::write(root.join("task.json"), format!("{{\"id\":\"{id}\"}}")).unwrap();
        std::fs::write(root.join("lock"), b"").unwrap();
        std::fs::write(root.join("log"), b"the log").unwrap();
        std::fs::write(root.join("attempt/1/status.json"), b"{\"status\":1}").unwrap();
        root
    }

    fn inode(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn a_short_tasks_directory_becomes_the_next_ones_with_the_same_inodes() {
        let base = tempfile::tempdir().unwrap();
        let spares = SpareDirs::new(base.path(), 4).unwrap();
        assert!(
            !spares.take_as(&base.path().join("t0"), b"{}"),
            "the pool starts empty"
        );

        let first = short_task_dir(base.path(), "t1");
        let (dir_inode, status_inode) =
            (inode(&first), inode(&first.join("attempt/1/status.json")));
        spares.give_back(&first);
        assert!(!first.exists());
        let parked = base.path().join(".spare/0");
        assert_eq!(
            std::fs::read(parked.join("task.json")).unwrap(),
            b"",
            "no task JSON lingers"
        );

        let second = base.path().join("t2");
        assert!(spares.take_as(&second, b"{\"id\":\"t2\"}"));
        assert_eq!(
            std::fs::read(second.join("task.json")).unwrap(),
            b"{\"id\":\"t2\"}"
        );
        assert!(!second.join("log").exists(), "no log of the task before");
        let status = second.join("attempt/1/status.json");
        assert_eq!(
            std::fs::read(&status).unwrap(),
            b"",
            "no status of the task before"
        );
        assert_eq!(inode(&second), dir_inode);
        assert_eq!(inode(&status), status_inode);
        assert!(!spares.take_as(&base.path().join("t3"), b"{}"));
    }

    #[test]
    fn directories_holding_more_or_beyond_the_limit_are_deleted() {
        let base = tempfile::tempdir().unwrap();
        let spares = SpareDirs::new(base.path(), 1).unwrap();
        let kafka = short_task_dir(base.path(), "kafka");
        std::fs::create_dir_all(kafka.join("attempt/1/persist")).unwrap();
        spares.give_back(&kafka);
        assert!(!kafka.exists());
        assert!(!spares.take_as(&base.path().join("x"), b"{}"));

        let retried = short_task_dir(base.path(), "retried");
        std::fs::create_dir_all(retried.join("attempt/2")).unwrap();
        spares.give_back(&retried);
        assert!(!spares.take_as(&base.path().join("x"), b"{}"));

        for id in ["a", "b"] {
            let dir = short_task_dir(base.path(), id);
            spares.give_back(&dir);
            assert!(!dir.exists());
        }
        assert_eq!(
            std::fs::read_dir(base.path().join(".spare"))
                .unwrap()
                .count(),
            1
        );
        // A new life starts with an empty pool.
        let again = SpareDirs::new(base.path(), 1).unwrap();
        assert!(!again.take_as(&base.path().join("x"), b"{}"));
        assert_eq!(
            std::fs::read_dir(base.path().join(".spare"))
                .unwrap()
                .count(),
            0
        );
    }
}
