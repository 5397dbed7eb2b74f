//! The middle manager's own files under `base_task_dir` (see docs/operations.md):
//! `assignedTasks/<taskId>` holds a task from the moment it is assigned until its peon runs, and
//! `restore.json` (`{"runningTasks":[…]}`) lists the running tasks, so a restarted middle manager
//! knows what it was doing. Every file is written to `workerTaskManagerTmp/` and renamed into
//! place, so a crash never leaves half a file.

use std::io;
use std::path::{Path, PathBuf};

use drover_core::{TaskAnnouncement, TaskId};
use drover_task::Task;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestoreFile {
    running_tasks: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct WorkerFiles {
    base: PathBuf,
}

impl WorkerFiles {
    pub fn new(base_task_dir: &Path) -> Self {
        WorkerFiles {
            base: base_task_dir.to_path_buf(),
        }
    }

    fn assigned_dir(&self) -> PathBuf {
        self.base.join("assignedTasks")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.base.join("workerTaskManagerTmp")
    }

    fn restore_file(&self) -> PathBuf {
        self.base.join("restore.json")
    }

    /// Empties the temporary directory (start-up).
    pub fn clean_tmp(&self) -> io::Result<()> {
        let tmp = self.tmp_dir();
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        std::fs::create_dir_all(self.assigned_dir())
    }

    fn write_atomically(&self, target: &Path, bytes: &[u8]) -> io::Result<()> {
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file");
        let tmp = self
            .tmp_dir()
            .join(format!("{name}.{}", std::process::id()));
        std::fs::create_dir_all(self.tmp_dir())?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, target)
    }

    pub fn write_assigned(&self, task: &Task) -> io::Result<()> {
        self.write_atomically(
            &self.assigned_dir().join(task.id.as_str()),
            &task.to_json_bytes(),
        )
    }

    pub fn remove_assigned(&self, id: &TaskId) {
        std::fs::remove_file(self.assigned_dir().join(id.as_str())).ok();
    }

    /// Tasks assigned before a restart whose peons never started. Unreadable files are reported
    /// and removed.
    pub fn read_assigned(&self) -> Vec<Task> {
        read_named(
            &self.assigned_dir(),
            |b| Task::from_json_bytes(b).map_err(|e| e.to_string()),
            |t| t.id.as_str(),
        )
    }

    fn completed_dir(&self) -> PathBuf {
        self.base.join("completedTasks")
    }

    /// Keeps a finished task's last announcement until the overlord has seen it (HTTP runner):
    /// a worker restarted in between still reports how the task ended.
    pub fn write_completed(&self, announcement: &TaskAnnouncement) -> io::Result<()> {
        std::fs::create_dir_all(self.completed_dir())?;
        let json = serde_json::to_vec(announcement).expect("serializes");
        self.write_atomically(&self.completed_dir().join(announcement.id.as_str()), &json)
    }

    pub fn remove_completed(&self, id: &TaskId) {
        std::fs::remove_file(self.completed_dir().join(id.as_str())).ok();
    }

    /// The finished tasks kept by an earlier life of this worker. Unreadable files are reported
    /// and removed.
    pub fn read_completed(&self) -> Vec<TaskAnnouncement> {
        read_named(
            &self.completed_dir(),
            |b| serde_json::from_slice::<TaskAnnouncement>(b).map_err(|e| e.to_string()),
            |a| a.id.as_str(),
        )
    }

    pub fn write_restore(&self, running: impl IntoIterator<Item = TaskId>) -> io::Result<()> {
        let mut ids: Vec<String> = running.into_iter().map(|id| id.to_string()).collect();
        ids.sort();
        let json = serde_json::to_vec(&RestoreFile { running_tasks: ids }).expect("serializes");
        self.write_atomically(&self.restore_file(), &json)
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

/// Every file in `dir` read with `parse`, where the task id inside is the file's name; other
/// files are reported and removed (a crash never leaves half a file, so they were put there by
/// someone else).
fn read_named<T: std::fmt::Debug>(
    dir: &Path,
    parse: impl Fn(&[u8]) -> Result<T, String>,
    id_of: impl Fn(&T) -> &str,
) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let read = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| parse(&b));
        match read {
            Ok(v) if id_of(&v) == entry.file_name().to_string_lossy() => found.push(v),
            other => {
                tracing::error!(file = %path.display(), ?other, "removing an unreadable file");
                std::fs::remove_file(&path).ok();
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip() {
        let dir = tempfile_dir();
        let files = WorkerFiles::new(&dir);
        files.clean_tmp().unwrap();
        let task = Task::from_json_bytes(br#"{"type":"noop","id":"t1"}"#).unwrap();
        files.write_assigned(&task).unwrap();
        std::fs::write(dir.join("assignedTasks").join("junk"), b"{").unwrap();
        let assigned = files.read_assigned();
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0].id, task.id);
        assert!(
            !dir.join("assignedTasks").join("junk").exists(),
            "unreadable file removed"
        );
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

        let done = drover_core::TaskAnnouncement::new(
            drover_core::TaskStatus::success(task.id.clone()),
            "noop",
            drover_core::TaskResource::for_task(&task.id),
            "ds",
        );
        files.write_completed(&done).unwrap();
        assert_eq!(files.read_completed(), vec![done]);
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
