//! Helpers shared by the scenario tests: task JSON and what a task log says.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod ingestion;

pub use drover_ingest::tutorial::tutorial_file;
pub use drover_testkit::{ApiClient, Cluster, ClusterSpec, FreezableProxy, MiddleManagerSpec};
pub use ingestion::{
    files_under, inline_index_task, one_row_task, report, segment_rows, serve_http, succeed_within,
    used_segments, wikiticker_lines,
};

pub fn noop(id: &str, run_time_ms: u64) -> Value {
    json!({ "type": "noop", "id": id, "runTime": run_time_ms })
}

/// What the middle manager and the peon wrote to a task's log.
#[derive(Debug, Clone, Default)]
pub struct LogFacts {
    pub worker: Option<String>,
    pub pid: Option<i32>,
    pub started_ms: Option<u128>,
    pub ended_ms: Option<u128>,
    pub starts: usize,
}

pub fn log_facts(log: &str) -> LogFacts {
    let mut f = LogFacts::default();
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("drover-middle-manager ") {
            f.worker = rest.split(':').take(2).collect::<Vec<_>>().join(":").into();
        } else if let Some(rest) = line.strip_prefix("drover-peon pid=") {
            f.pid = rest.split_whitespace().next().and_then(|p| p.parse().ok());
        } else if line.starts_with("noop task ") {
            let number_after = |word: &str| {
                line.split_whitespace()
                    .skip_while(|w| *w != word)
                    .nth(1)
                    .and_then(|n| n.parse::<u128>().ok())
            };
            if line.contains(" started at ") {
                f.started_ms = number_after("at");
                f.starts += 1;
            } else if line.contains(" ended at ") {
                f.ended_ms = number_after("at");
            }
        }
    }
    f
}

/// What a middle manager's `worker-journal.jsonl` holds live, replayed: the ids of tasks assigned
/// but not started, and of finished tasks kept until the overlord has recorded them.
pub fn worker_journal(base_task_dir: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let text =
        std::fs::read_to_string(base_task_dir.join("worker-journal.jsonl")).unwrap_or_default();
    let (mut assigned, mut completed) = (Vec::<String>::new(), Vec::<String>::new());
    for line in text.lines().filter(|l| !l.is_empty()) {
        let Ok(record) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let text_of = |v: &Value| v.as_str().map(str::to_string);
        if let Some(id) = record["assigned"]["id"].as_str() {
            assigned.push(id.into());
        } else if let Some(id) = text_of(&record["unassigned"]) {
            assigned.retain(|a| *a != id);
        } else if let Some(id) = record["completed"]["id"].as_str() {
            completed.retain(|c| c != id);
            completed.push(id.into());
        } else if let Some(id) = text_of(&record["forgotten"]) {
            completed.retain(|c| *c != id);
        }
    }
    (assigned, completed)
}

/// The pid of a running task's peon, from the first lines of its log.
pub async fn peon_pid(cluster: &Cluster, id: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = cluster
            .client
            .log(id)
            .await
            .unwrap()
            .and_then(|l| log_facts(&l).pid)
        {
            return pid;
        }
        if Instant::now() > deadline {
            cluster.fail(format!("no peon pid in the log of {id}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Submits a noop task that runs for ten minutes and gives its id and its peon's pid once it runs.
pub async fn running_peon(cluster: &Cluster, name: &str) -> (String, i32) {
    let c = &cluster.client;
    let id = c.submit(&noop(name, 600_000)).await.unwrap();
    c.wait_running(&id, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| cluster.fail(e));
    let pid = peon_pid(cluster, &id).await;
    (id, pid)
}

/// Waits for `id` to end, checks that it FAILED, and gives its `errorMsg`.
pub async fn wait_failed(cluster: &Cluster, id: &str, within: Duration) -> String {
    let status = cluster
        .client
        .wait_complete(id, within)
        .await
        .unwrap_or_else(|e| cluster.fail(e));
    assert_eq!(status["statusCode"], "FAILED", "{id}: {status}");
    status["errorMsg"]
        .as_str()
        .expect("a FAILED status has an errorMsg")
        .to_string()
}

/// The parent process id of `pid`, from `/proc/<pid>/stat`.
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may hold spaces: count fields after the last ')'.
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Whether a process exists (signal 0).
pub fn process_alive(pid: i32) -> bool {
    // A zombie still answers kill(0); look at its state too.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("");
    !stat.is_empty() && state != "Z"
}

/// Largest number of intervals open at once.
pub fn max_overlap(intervals: &[(u128, u128)]) -> usize {
    let mut edges: Vec<(u128, i32)> = Vec::new();
    for &(start, end) in intervals {
        edges.push((start, 1));
        edges.push((end, -1));
    }
    // At equal times, ends first: a task that ended as another started did not overlap it.
    edges.sort_by_key(|&(t, d)| (t, d));
    let (mut open, mut max) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        max = max.max(open);
    }
    max as usize
}

/// Submits a noop task every 100 ms to the overlords in turn (following redirects), retrying a
/// task until one overlord accepts it.
pub struct Load {
    accepted: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

impl Load {
    pub fn start(clients: Vec<ApiClient>, prefix: &str) -> Load {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (acc, st, prefix) = (accepted.clone(), stop.clone(), prefix.to_string());
        let handle = tokio::spawn(async move {
            let mut n = 0usize;
            while !st.load(Ordering::SeqCst) {
                let id = format!("{prefix}_{n}");
                let task = json!({"type":"noop","id":id,"runTime":100 + (n % 4) * 100});
                for attempt in 0.. {
                    let c = &clients[(n + attempt) % clients.len()];
                    match c.post("/task", task.to_string()).await {
                        Ok(r) if r.status == 200 => break,
                        // A retry of a request that was accepted but whose answer was lost.
                        Ok(r) if r.status == 400 && r.body.contains("already exists") => break,
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                    assert!(attempt < 600, "no overlord accepted {id} for a minute");
                }
                acc.lock().unwrap().push(id);
                n += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Load {
            accepted,
            stop,
            handle,
        }
    }

    pub async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.unwrap();
        Arc::try_unwrap(self.accepted)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// How many times each task's peon was started, from the middle managers' logs.
pub fn peon_starts(cluster: &Cluster) -> HashMap<String, usize> {
    let mut starts = HashMap::new();
    for mm in &cluster.middle_managers {
        let log = std::fs::read_to_string(&mm.process.log).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("peon started")) {
            if let Some(id) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("task="))
            {
                *starts.entry(id.to_string()).or_insert(0) += 1;
            }
        }
    }
    starts
}

/// How long scenario checks wait for a task or a leader.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);

/// The scenarios' invariant: every accepted task ended SUCCESS exactly once (listed once as
/// complete, nothing left running), none was started on two peons, and the cluster runs new work.
pub async fn assert_each_succeeded_once(cluster: &Cluster, accepted: &[String]) {
    assert!(!accepted.is_empty());
    let leader = cluster.wait_for_leader(SCENARIO_TIMEOUT).await;
    let c = &cluster.overlords[leader].client;
    for id in accepted {
        let status = c
            .wait_complete(id, SCENARIO_TIMEOUT)
            .await
            .unwrap_or_else(|e| cluster.fail(e));
        assert_eq!(status["statusCode"], "SUCCESS", "{id}: {status}");
    }
    // Exactly one terminal status each: storage holds them as complete, and no longer active.
    let complete = c.tasks("?state=complete").await.unwrap();
    for id in accepted {
        let n = complete.iter().filter(|t| t["id"] == id.as_str()).count();
        assert_eq!(n, 1, "{id} listed {n} times as complete");
    }
    let active = c.tasks("?state=running").await.unwrap();
    assert!(active.is_empty(), "nothing left running: {active:?}");
    let starts = peon_starts(cluster);
    for id in accepted {
        assert_eq!(
            starts.get(id).copied().unwrap_or(0),
            1,
            "{id} ran on {:?} peons",
            starts.get(id)
        );
    }
    let fresh = c
        .submit(&noop(&format!("after_{}", accepted[0]), 10))
        .await
        .unwrap();
    assert_eq!(
        c.wait_complete(&fresh, SCENARIO_TIMEOUT).await.unwrap()["statusCode"],
        "SUCCESS"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_logs_and_counts_overlap() {
        let log = "drover-middle-manager 127.0.0.1:9000: starting peon\ndrover-peon pid=42 taskDir=x attempt=1\n\
                   noop task t started at 100 runTime=5ms\nnoop task t ended at 105\n";
        let f = log_facts(log);
        assert_eq!(f.worker.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(f.pid, Some(42));
        assert_eq!(
            (f.started_ms, f.ended_ms, f.starts),
            (Some(100), Some(105), 1)
        );
        assert_eq!(max_overlap(&[(0, 10), (5, 15), (10, 20)]), 2);
        assert_eq!(max_overlap(&[(0, 10), (1, 9), (2, 8)]), 3);
    }
}
