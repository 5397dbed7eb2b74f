//! The chat API between a Kafka supervisor and its reading tasks (Druid's
//! `SeekableStreamIndexTaskRunner` endpoints): one list of routes, served by the peon
//! (`peon/src/kafka/chat.rs`) and called by the supervisor (`overlord/src/supervisor/chat.rs`),
//! so the two sides cannot drift apart.

/// Every route lives under this path on the task's own port.
pub const BASE: &str = "/druid/worker/v1/chat/{id}";

/// GET: the runner's status as a JSON string (`"READING"`, `"PAUSED"`, `"PUBLISHING"`, …).
pub const STATUS: &str = "status";
/// GET: partition → next offset to read.
pub const OFFSETS_CURRENT: &str = "offsets/current";
/// GET: partition → end offset of the open sequence; POST (`?finish=`): set them (paused only).
pub const OFFSETS_END: &str = "offsets/end";
/// POST: pause; 200 with the current offsets, or 202 while the task gets there.
pub const PAUSE: &str = "pause";
pub const RESUME: &str = "resume";
/// POST: end without publishing.
pub const STOP: &str = "stop";
/// GET: sequence id → its start offsets.
pub const CHECKPOINTS: &str = "checkpoints";
/// GET: when the task started reading, as an ISO time string.
pub const TIME_START: &str = "time/start";
pub const ROW_STATS: &str = "rowStats";
pub const LIVE_REPORTS: &str = "liveReports";
pub const UNPARSEABLE_EVENTS: &str = "unparseableEvents";
/// POST (Drover's own, on an `index_parallel` task): the overlord says that one of the task's
/// sub-tasks has ended (body `{"id": …}`). A hint only: the task then asks the overlord for
/// that sub-task's status, which is what it acts on.
pub const SUB_TASK_ENDED: &str = "subtaskEnded";

/// The server's path pattern for `route` (axum's `{id}` placeholder kept).
pub fn server_path(route: &str) -> String {
    format!("{BASE}/{route}")
}

/// The URL of `route` for task `task` whose chat API is at `base` (`http://host:port`, or
/// `https://` on its TLS port).
pub fn url(base: &str, task: &str, route: &str) -> String {
    format!("{base}{}/{route}", BASE.replace("{id}", task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_server_paths_agree() {
        assert_eq!(
            url("http://127.0.0.1:8100", "t1", OFFSETS_END),
            "http://127.0.0.1:8100/druid/worker/v1/chat/t1/offsets/end"
        );
        assert_eq!(
            server_path(TIME_START),
            "/druid/worker/v1/chat/{id}/time/start"
        );
    }
}
