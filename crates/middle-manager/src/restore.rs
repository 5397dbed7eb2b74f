//! The middle manager's own files under `base_task_dir` (see docs/operations.md):
//! `worker-journal.jsonl` holds a task from the moment it is assigned until its peon runs, and a
//! finished task's status until the overlord has seen it (journal.rs); `restore.json`
//! (`{"runningTasks":[…]}`) lists the running tasks. So a restarted middle manager knows what it
//! was doing. Neither is ever left half-written by a crash.

use std::io;
use std::path::{Path, PathBuf};

use drover_core::{TaskAnnouncement, TaskId};
use drover_task::Task;
use serde::{Deserialize, Serialize};

use crate::journal::Journal;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestoreFile {
    running_tasks: Vec<String>,
}

#[derive(Clone)]
pub struct WorkerFiles {
    base: PathBuf,
    journal: Journal,
}

impl WorkerFiles {
    /// Opens the journal (start-up). `workerTaskManagerTmp/`, where earlier versions wrote
    /// files before renaming them into place, goes.
    pub fn open(base_task_dir: &Path) -> io::Result<Self> {
        let tmp = base_task_dir.join("workerTaskManagerTmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        Ok(WorkerFiles {
            base: base_task_dir.to_path_buf(),
            journal: Journal::open(base_task_dir)?,
        })
    }

    fn restore_file(&self) -> PathBuf {
        self.base.join("restore.json")
    }

    /// Overwrites `target` in place with `bytes`, padded with spaces to the file's old length, in
    /// one write, then trims the padding. A crash at any point leaves either the old or the new
    /// JSON (trailing spaces are valid JSON), and the file keeps its inode: a temporary file and a
    /// rename would free one per write, which slows every later file creation on ext4 without a
    /// journal (see spare_dirs.rs).
    fn overwrite_in_place(target: &Path, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(target)?;
        let old_len = file.metadata()?.len() as usize;
        let mut padded = bytes.to_vec();
        padded.resize(old_len.max(bytes.len()), b' ');
        file.write_all_at(&padded, 0)?;
        file.set_len(bytes.len() as u64)
    }

    pub fn write_assigned(&self, task: &Task) -> io::Result<()> {
        self.journal.assigned(task)
    }

    pub fn remove_assigned(&self, id: &TaskId) {
        if let Err(e) = self.journal.unassigned(id) {
            tracing::error!(task = %id, error = %e, "cannot record in the worker journal that the task started");
        }
    }

    /// Tasks assigned before a restart whose peons never started.
    pub fn read_assigned(&self) -> Vec<Task> {
        self.journal.read_assigned()
    }

    /// Keeps a finished task's last announcement until the overlord has seen it (HTTP runner):
    /// a worker restarted in between still reports how the task ended.
    pub fn write_completed(&self, announcement: &TaskAnnouncement) -> io::Result<()> {
        self.journal.completed(announcement)
    }

    pub fn remove_completed(&self, id: &TaskId) {
        if let Err(e) = self.journal.forgotten(id) {
            tracing::error!(task = %id, error = %e, "cannot record in the worker journal that the task was forgotten");
        }
    }

    /// The finished tasks kept by an earlier life of this worker.
    pub fn read_completed(&self) -> Vec<TaskAnnouncement> {
        self.journal.read_completed()
    }

    pub fn write_restore(&self, running: impl IntoIterator<Item = TaskId>) -> io::Result<()> {
        let mut ids: Vec<String> = running.into_iter().map(|id| id.to_string()).collect();
        ids.sort();
        let json = serde_json::to_vec(&RestoreFile { running_tasks: ids }).expect("serializes");
        Self::overwrite_in_place(&self.restore_file(), &json)
    }

    /// Tasks that were running when this middle manager last stopped.
    pub fn read_restore(&self) -> Vec<TaskId> {
        let Ok(bytes) = std::fs::read(self.restore_file()) else {
            return vec![];
        };
        match serde_json::from_slice::<RestoreFile>(&bytes) {
            Ok(f) => f
                .running_tasks
                .into_iter()
                .filter_map(|id| TaskId::new(id).ok())
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "ignoring unreadable restore.json");
                vec![]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip() {
        let dir = tempfile_dir();
        let files = WorkerFiles::open(&dir).unwrap();
        let task = Task::from_json_bytes(br#"{"type":"noop","id":"t1"}"#).unwrap();
        files.write_assigned(&task).unwrap();
        let assigned = WorkerFiles::open(&dir).unwrap().read_assigned();
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0].id, task.id);
        files.remove_assigned(&task.id);
        assert!(files.read_assigned().is_empty());

        files
            .write_restore([TaskId::new("b").unwrap(), TaskId::new("a").unwrap()])
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("restore.json")).unwrap(),
            r#"{"runningTasks":["a","b"]}"#
        );
        assert_eq!(files.read_restore().len(), 2);
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&dir.join("restore.json"));
        files.write_restore([TaskId::new("c").unwrap()]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("restore.json")).unwrap(),
            r#"{"runningTasks":["c"]}"#,
            "shorter content, padding trimmed"
        );
        assert_eq!(
            inode(&dir.join("restore.json")),
            before,
            "rewritten in place"
        );
        assert_eq!(files.read_restore(), [TaskId::new("c").unwrap()]);

        let done = drover_core::TaskAnnouncement::new(
            drover_core::TaskStatus::success(task.id.clone()),
            "noop",
            drover_core::TaskResource::for_task(&task.id),
            "ds",
        );
        files.write_completed(&done).unwrap();
        assert_eq!(
            WorkerFiles::open(&dir).unwrap().read_completed(),
            vec![done]
        );
        files.remove_completed(&task.id);
        assert!(files.read_completed().is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "drover-mm-files-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
