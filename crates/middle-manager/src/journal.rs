//! `worker-journal.jsonl` in `base_task_dir`: the tasks assigned to this worker whose peons have
//! not started, and the finished tasks the overlord has not yet seen (HTTP runner), as one
//! append-only file of JSON lines instead of a file per task.
//!
//! Druid keeps these as one file each, in `assignedTasks/` and `completedTasks/`. At hundreds of
//! tasks a second those are two files made and deleted per task, and on ext4 without a journal
//! freshly deleted inodes slow every later file creation (see spare_dirs.rs). An append costs no
//! inode. Each line is one record:
//!
//! ```text
//! {"assigned":{…task…}}   {"unassigned":"<taskId>"}
//! {"completed":{…announcement…}}   {"forgotten":"<taskId>"}
//! ```
//!
//! Replaying the lines gives what is live. A line cut short by a crash is the last one written;
//! it is skipped. When the file holds many more lines than live records it is rewritten with
//! only those (a new file renamed over the old, so a crash leaves one or the other). Files left
//! in `assignedTasks/` and `completedTasks/` by an earlier version are taken in at start-up.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use drover_core::{TaskAnnouncement, TaskId};
use drover_task::Task;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub const JOURNAL_FILE: &str = "worker-journal.jsonl";

/// Rewritten once it holds this many lines more than live records.
const COMPACT_AFTER: usize = 10_000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Record {
    Assigned(serde_json::Value),
    Unassigned(TaskId),
    Completed(TaskAnnouncement),
    Forgotten(TaskId),
}

#[derive(Clone)]
pub struct Journal {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: PathBuf,
    file: File,
    /// Live records, as the lines that say them.
    assigned: IndexMap<TaskId, Vec<u8>>,
    completed: IndexMap<TaskId, Vec<u8>>,
    lines: usize,
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and replays it.
    pub fn open(dir: &Path) -> io::Result<Journal> {
        let path = dir.join(JOURNAL_FILE);
        let mut inner = Inner {
            file: File::options().create(true).append(true).open(&path)?,
            path,
            assigned: IndexMap::new(),
            completed: IndexMap::new(),
            lines: 0,
        };
        inner.replay()?;
        inner.compact()?;
        Ok(Journal {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    pub fn assigned(&self, task: &Task) -> io::Result<()> {
        // `{"assigned":<task>}` around the task's own JSON, as `Record::Assigned` reads it back:
        // on the path of every task, so the JSON is not parsed again only to be re-encoded.
        let mut line = br#"{"assigned":"#.to_vec();
        line.extend_from_slice(&task.to_json_bytes());
        line.extend_from_slice(b"}\n");
        self.lock().append(line, |i, line| {
            i.assigned.insert(task.id.clone(), line);
        })
    }

    pub fn unassigned(&self, id: &TaskId) -> io::Result<()> {
        let mut inner = self.lock();
        if inner.assigned.shift_remove(id).is_none() {
            return Ok(());
        }
        inner.append(line(&Record::Unassigned(id.clone())), |_, _| {})
    }

    pub fn completed(&self, announcement: &TaskAnnouncement) -> io::Result<()> {
        let id = announcement.id.clone();
        self.lock()
            .append(line(&Record::Completed(announcement.clone())), |i, line| {
                i.completed.insert(id, line);
            })
    }

    pub fn forgotten(&self, id: &TaskId) -> io::Result<()> {
        let mut inner = self.lock();
        if inner.completed.shift_remove(id).is_none() {
            return Ok(());
        }
        inner.append(line(&Record::Forgotten(id.clone())), |_, _| {})
    }

    /// Tasks assigned whose peons never started, in assignment order.
    pub fn read_assigned(&self) -> Vec<Task> {
        let inner = self.lock();
        inner
            .assigned
            .values()
            .filter_map(|line| match serde_json::from_slice(line) {
                Ok(Record::Assigned(task)) => {
                    Task::from_json_bytes(&serde_json::to_vec(&task).ok()?).ok()
                }
                _ => None,
            })
            .collect()
    }

    /// Finished tasks the overlord has not been seen to record.
    pub fn read_completed(&self) -> Vec<TaskAnnouncement> {
        let inner = self.lock();
        inner
            .completed
            .values()
            .filter_map(|line| match serde_json::from_slice(line) {
                Ok(Record::Completed(a)) => Some(a),
                _ => None,
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("journal lock")
    }
}

fn line(record: &Record) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).expect("a record serializes");
    line.push(b'\n');
    line
}

impl Inner {
    /// Appends `line` (one `write`, so a crash keeps it whole or cuts only this line), then
    /// records it in memory with `keep`.
    fn append(&mut self, line: Vec<u8>, keep: impl FnOnce(&mut Inner, Vec<u8>)) -> io::Result<()> {
        self.file.write_all(&line)?;
        self.lines += 1;
        keep(self, line);
        if self.lines > COMPACT_AFTER + self.assigned.len() + self.completed.len() {
            self.compact()?;
        }
        Ok(())
    }

    fn replay(&mut self) -> io::Result<()> {
        let bytes = std::fs::read(&self.path)?;
        if bytes.last().is_some_and(|b| *b != b'\n') {
            // A line cut short: end it, so the next append starts a line of its own.
            self.file.write_all(b"\n")?;
        }
        for (n, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            if raw.is_empty() {
                continue;
            }
            self.lines += 1;
            let mut line = raw.to_vec();
            line.push(b'\n');
            match serde_json::from_slice::<Record>(raw) {
                Ok(Record::Assigned(task)) => {
                    match task.get("id").and_then(|i| i.as_str()).map(TaskId::new) {
                        Some(Ok(id)) => {
                            self.assigned.insert(id, line);
                        }
                        _ => tracing::error!(
                            line = n + 1,
                            "skipping an assignment without a valid id in the worker journal"
                        ),
                    }
                }
                Ok(Record::Unassigned(id)) => {
                    self.assigned.shift_remove(&id);
                }
                Ok(Record::Completed(a)) => {
                    self.completed.insert(a.id.clone(), line);
                }
                Ok(Record::Forgotten(id)) => {
                    self.completed.shift_remove(&id);
                }
                Err(e) => {
                    tracing::error!(line = n + 1, error = %e, "skipping an unreadable line of the worker journal (cut short by a crash?)")
                }
            }
        }
        self.take_in_legacy_files()
    }

    /// `assignedTasks/<id>` and `completedTasks/<id>` from an earlier version of the middle
    /// manager: taken into the journal, then deleted.
    fn take_in_legacy_files(&mut self) -> io::Result<()> {
        let base = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        for (dir, assigned) in [("assignedTasks", true), ("completedTasks", false)] {
            let dir = base.join(dir);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                let id = TaskId::new(entry.file_name().to_string_lossy().into_owned());
                let record = match (assigned, id) {
                    (true, Ok(id)) => Task::from_json_bytes(&bytes)
                        .ok()
                        .filter(|t| t.id == id)
                        .and_then(|t| serde_json::from_slice(&t.to_json_bytes()).ok())
                        .map(|v| (id, Record::Assigned(v))),
                    (false, Ok(id)) => serde_json::from_slice::<TaskAnnouncement>(&bytes)
                        .ok()
                        .filter(|a| a.id == id)
                        .map(|a| (id, Record::Completed(a))),
                    _ => None,
                };
                match record {
                    Some((id, record)) => {
                        let line = line(&record);
                        if assigned {
                            self.assigned.insert(id, line);
                        } else {
                            self.completed.insert(id, line);
                        }
                    }
                    None => {
                        tracing::error!(file = %entry.path().display(), "dropping an unreadable file")
                    }
                }
            }
            // In the journal before the files go.
            self.rewrite()?;
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(())
    }

    /// Rewrites the file with only the live records, when it has grown well past them.
    fn compact(&mut self) -> io::Result<()> {
        if self.lines <= COMPACT_AFTER + self.assigned.len() + self.completed.len() {
            return Ok(());
        }
        self.rewrite()
    }

    /// A new file holding only the live records, renamed over the old one.
    fn rewrite(&mut self) -> io::Result<()> {
        let live = self.assigned.len() + self.completed.len();
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut out = File::create(&tmp)?;
        for line in self.assigned.values().chain(self.completed.values()) {
            out.write_all(line)?;
        }
        drop(out);
        std::fs::rename(&tmp, &self.path)?;
        self.file = File::options().append(true).open(&self.path)?;
        self.lines = live;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use drover_core::{TaskResource, TaskStatus};

    use super::*;

    fn task(id: &str) -> Task {
        Task::from_json_bytes(format!(r#"{{"type":"noop","id":"{id}"}}"#).as_bytes()).unwrap()
    }

    fn done(id: &str) -> TaskAnnouncement {
        let id = TaskId::new(id).unwrap();
        TaskAnnouncement::new(
            TaskStatus::success(id.clone()),
            "noop",
            TaskResource::for_task(&id),
            "ds",
        )
    }

    fn ids(tasks: &[Task]) -> Vec<&str> {
        tasks.iter().map(|t| t.id.as_str()).collect()
    }

    #[test]
    fn what_is_live_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        for id in ["a", "b", "c"] {
            journal.assigned(&task(id)).unwrap();
        }
        journal.unassigned(&TaskId::new("b").unwrap()).unwrap();
        journal.completed(&done("b")).unwrap();
        journal.completed(&done("x")).unwrap();
        journal.forgotten(&TaskId::new("x").unwrap()).unwrap();
        drop(journal);

        let again = Journal::open(dir.path()).unwrap();
        assert_eq!(ids(&again.read_assigned()), ["a", "c"]);
        assert_eq!(again.read_completed(), vec![done("b")]);
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        journal.assigned(&task("whole")).unwrap();
        drop(journal);
        let path = dir.path().join(JOURNAL_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(br#"{"assigned":{"type":"noop","id":"cut"#);
        std::fs::write(&path, bytes).unwrap();
        let again = Journal::open(dir.path()).unwrap();
        assert_eq!(ids(&again.read_assigned()), ["whole"]);
        // Appends go on after the torn line without being glued to it.
        again.assigned(&task("next")).unwrap();
        drop(again);
        let third = Journal::open(dir.path()).unwrap();
        assert_eq!(ids(&third.read_assigned()), ["whole", "next"]);
    }

    #[test]
    fn the_file_is_rewritten_when_it_outgrows_what_is_live() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        journal.completed(&done("kept")).unwrap();
        for i in 0..COMPACT_AFTER {
            let t = task(&format!("t{i}"));
            journal.assigned(&t).unwrap();
            journal.unassigned(&t.id).unwrap();
        }
        let lines = std::fs::read_to_string(dir.path().join(JOURNAL_FILE))
            .unwrap()
            .lines()
            .count();
        assert!(lines < COMPACT_AFTER, "{lines} lines");
        drop(journal);
        let again = Journal::open(dir.path()).unwrap();
        assert!(again.read_assigned().is_empty());
        assert_eq!(again.read_completed(), vec![done("kept")]);
    }

    #[test]
    fn files_of_an_earlier_version_are_taken_in() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("assignedTasks")).unwrap();
        std::fs::create_dir_all(dir.path().join("completedTasks")).unwrap();
        std::fs::write(
            dir.path().join("assignedTasks/old"),
            task("old").to_json_bytes(),
        )
        .unwrap();
        std::fs::write(dir.path().join("assignedTasks/junk"), b"{").unwrap();
        std::fs::write(
            dir.path().join("completedTasks/fin"),
            serde_json::to_vec(&done("fin")).unwrap(),
        )
        .unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(ids(&journal.read_assigned()), ["old"]);
        assert_eq!(journal.read_completed(), vec![done("fin")]);
        assert!(!dir.path().join("assignedTasks").exists());
        assert!(!dir.path().join("completedTasks").exists());
        drop(journal);
        let again = Journal::open(dir.path()).unwrap();
        assert_eq!(ids(&again.read_assigned()), ["old"]);
    }
}
