//! Druid's indexer znode layout (see docs/architecture.md), under a configurable base (`druid.zk.paths.base`).

use drover_core::{TaskId, WorkerHost};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkPaths {
    base: String,
}

impl ZkPaths {
    /// `base` is normalized to start with `/` and not end with one (`/druid` by default).
    pub fn new(base: &str) -> Self {
        let trimmed = base.trim_end_matches('/');
        let base = if trimmed.starts_with('/') {
            trimmed.to_string()
        } else {
            format!("/{trimmed}")
        };
        ZkPaths { base }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn announcements(&self) -> String {
        format!("{}/indexer/announcements", self.base)
    }

    pub fn tasks(&self) -> String {
        format!("{}/indexer/tasks", self.base)
    }

    pub fn status(&self) -> String {
        format!("{}/indexer/status", self.base)
    }

    /// Node discovery for one role (`${base}/internal-discovery/<ROLE>`), e.g. `MIDDLE_MANAGER`.
    pub fn discovery(&self, role: &str) -> String {
        format!("{}/internal-discovery/{role}", self.base)
    }

    /// The overlord leader latch, `${base}/overlord/_OVERLORD`.
    pub fn overlord_latch(&self) -> String {
        format!("{}/overlord/_OVERLORD", self.base)
    }

    pub fn worker_announcement(&self, worker: &WorkerHost) -> String {
        format!("{}/{}", self.announcements(), worker)
    }

    pub fn worker_tasks(&self, worker: &WorkerHost) -> String {
        format!("{}/{}", self.tasks(), worker)
    }

    pub fn worker_status(&self, worker: &WorkerHost) -> String {
        format!("{}/{}", self.status(), worker)
    }

    pub fn task(&self, worker: &WorkerHost, task: &TaskId) -> String {
        format!("{}/{}/{}", self.tasks(), worker, task)
    }

    pub fn task_status(&self, worker: &WorkerHost, task: &TaskId) -> String {
        format!("{}/{}/{}", self.status(), worker, task)
    }

    /// Splits `<root>/<worker>[/<task>]` into its parts, for paths reported by recursive watches.
    pub fn split_under<'a>(&self, root: &str, path: &'a str) -> Option<(&'a str, Option<&'a str>)> {
        let rest = path.strip_prefix(root)?.strip_prefix('/')?;
        match rest.split_once('/') {
            None if !rest.is_empty() => Some((rest, None)),
            Some((w, t)) if !w.is_empty() && !t.is_empty() && !t.contains('/') => {
                Some((w, Some(t)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_druid_defaults() {
        let p = ZkPaths::new("/druid");
        let w = WorkerHost::new("mm1:8091").unwrap();
        let t = TaskId::new("t1").unwrap();
        assert_eq!(
            p.worker_announcement(&w),
            "/druid/indexer/announcements/mm1:8091"
        );
        assert_eq!(p.task(&w, &t), "/druid/indexer/tasks/mm1:8091/t1");
        assert_eq!(p.task_status(&w, &t), "/druid/indexer/status/mm1:8091/t1");
        assert_eq!(p.overlord_latch(), "/druid/overlord/_OVERLORD");
        assert_eq!(ZkPaths::new("x/").base(), "/x");
    }

    #[test]
    fn splits_watched_paths() {
        let p = ZkPaths::new("/druid");
        let root = p.status();
        assert_eq!(
            p.split_under(&root, "/druid/indexer/status/mm:1"),
            Some(("mm:1", None))
        );
        assert_eq!(
            p.split_under(&root, "/druid/indexer/status/mm:1/t"),
            Some(("mm:1", Some("t")))
        );
        assert_eq!(p.split_under(&root, "/druid/indexer/status"), None);
        assert_eq!(p.split_under(&root, "/druid/indexer/tasks/mm:1"), None);
    }
}
