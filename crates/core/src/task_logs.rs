//! File task-log storage (Druid's `druid.indexer.logs.type=file`): one `<taskId>.log` per task in a
//! directory that the middle managers push to and the overlord reads from. On one machine both
//! point at the same directory; across machines it is a shared mount (S3 comes later).

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::ids::TaskId;

#[derive(Debug, Clone)]
pub struct FileTaskLogs {
    dir: PathBuf,
}

impl FileTaskLogs {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileTaskLogs { dir: dir.into() }
    }

    /// Creates the directory if needed and proves it writable, so a server that cannot keep
    /// task logs says so at start instead of failing requests later.
    pub fn prepare(&self) -> std::io::Result<()> {
        let wrap = |what: &str, e: std::io::Error| {
            std::io::Error::new(
                e.kind(),
                format!("task_log_dir {} {what}: {e}", self.dir.display()),
            )
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| wrap("cannot be created", e))?;
        let probe = self
            .dir
            .join(format!(".write-check-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(|e| wrap("is not writable", e))?;
        std::fs::remove_file(&probe).ok();
        Ok(())
    }

    /// The id is a validated `TaskId`, so it is safe as a file name.
    pub fn path(&self, id: &TaskId) -> PathBuf {
        self.dir.join(format!("{id}.log"))
    }

    /// Copies a finished task's log into storage, atomically (readers never see half a file).
    pub fn push(&self, id: &TaskId, log: &Path) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{id}.log.tmp"));
        link_or_copy(log, &tmp)?;
        std::fs::rename(&tmp, self.path(id))
    }

    /// Where a task's `report.json` is kept (Druid: `<taskId>.report.json` beside the log).
    pub fn report_path(&self, id: &TaskId) -> PathBuf {
        self.dir.join(format!("{id}.report.json"))
    }

    /// Copies a finished task's report into storage, atomically.
    pub fn push_report(&self, id: &TaskId, report: &Path) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{id}.report.json.tmp"));
        link_or_copy(report, &tmp)?;
        std::fs::rename(&tmp, self.report_path(id))
    }

    /// The stored report, or `None` when the task wrote none.
    pub fn read_report(&self, id: &TaskId) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.report_path(id)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The stored log positioned at `offset`, or `None` when there is none.
    pub fn open(&self, id: &TaskId, offset: i64) -> io::Result<Option<File>> {
        open_at(&self.path(id), offset)
    }
}

/// Puts a finished file at `to`: a hard link where both are on one file system (the file is
/// complete, nothing writes it any more, and a link costs no copy and no new inode, which is
/// what creating files costs most at many tasks a second), a copy elsewhere.
fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::remove_file(to) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ())
}

/// Opens a log at Druid's `offset`: from the start when non-negative, counted back from the end
/// when negative; clamped to the file.
pub fn open_at(path: &Path, offset: i64) -> io::Result<Option<File>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len() as i64;
    let start = if offset >= 0 {
        offset.min(len)
    } else {
        (len + offset).max(0)
    };
    file.seek(SeekFrom::Start(start as u64))?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn push_then_read_with_offsets() {
        let dir = std::env::temp_dir().join(format!("drover-logs-{}", std::process::id()));
        let logs = FileTaskLogs::new(&dir);
        let src = dir.with_extension("src");
        std::fs::write(&src, b"0123456789").unwrap();
        let id = TaskId::new("t1").unwrap();
        logs.push(&id, &src).unwrap();
        let read = |offset| {
            let mut s = String::new();
            logs.open(&id, offset)
                .unwrap()
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            s
        };
        assert_eq!(read(0), "0123456789");
        assert_eq!(read(7), "789");
        assert_eq!(read(-3), "789");
        assert_eq!(read(-100), "0123456789");
        assert_eq!(read(100), "");
        assert!(logs
            .open(&TaskId::new("none").unwrap(), 0)
            .unwrap()
            .is_none());
        std::fs::remove_dir_all(&dir).ok();
        std::fs::remove_file(&src).ok();
    }
}
