//! The HTTP runner's own protocol, as the overlord and a curious operator see it: a worker's
//! sync route (Druid's `GET /druid-internal/v1/worker`), the change history behind it, and how a
//! worker forgets finished tasks once the overlord has recorded them. (Everything else the HTTP
//! runner does is the whole scenario suite, which runs on both runners.)

use std::time::{Duration, Instant};

use drover_scenarios::*;
use serde_json::Value;

/// The worker's full snapshot: `counter=-1`.
async fn snapshot(mm: &ApiClient) -> Value {
    let r = mm
        .get_root("/druid-internal/v1/worker?counter=-1&hash=0&timeout=1000")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn task_updates(snapshot: &Value) -> Vec<Value> {
    snapshot["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "taskUpdate")
        .map(|i| i["taskAnnouncement"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_serves_its_changes_and_forgets_what_the_overlord_recorded() {
    let mut spec = ClusterSpec::workers(&[2]).runner("httpRemote");
    spec.middle_managers[0].extra_args =
        vec!["--completed-task-cleanup-period".into(), "1s".into()];
    let cluster = Cluster::start(spec).await;
    let c = &cluster.client;
    let mm = ApiClient::no_redirects(&cluster.middle_managers[0].url);

    // Before any task: metadata only, and a counter to wait on.
    let first = snapshot(&mm).await;
    assert_eq!(first["resetCounter"], false);
    assert_eq!(
        first["requests"][0],
        serde_json::json!({"type": "metadata", "disabled": false})
    );
    let counter = first["counter"]["counter"].as_i64().unwrap();
    let hash = first["counter"]["hash"].as_i64().unwrap();

    // A long poll from that counter answers with the task's updates as they happen.
    let waiting = {
        let mm = mm.clone();
        tokio::spawn(async move {
            mm.get_root(&format!(
                "/druid-internal/v1/worker?counter={counter}&hash={hash}&timeout=20000"
            ))
            .await
            .unwrap()
        })
    };
    let id = c.submit(&noop("synced", 0)).await.unwrap();
    let changes = waiting.await.unwrap();
    assert_eq!(changes.status, 200, "{}", changes.body);
    let items = changes.json()["requests"].as_array().unwrap().clone();
    assert!(
        items
            .iter()
            .any(|i| i["type"] == "taskUpdate" && i["taskAnnouncement"]["id"] == id.as_str()),
        "{items:?}"
    );
    let status = c.wait_complete(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");

    // A counter from another life of the worker asks for a reset; a bad timeout is a 400.
    let stale = mm
        .get_root("/druid-internal/v1/worker?counter=1&hash=12345&timeout=1000")
        .await
        .unwrap();
    assert_eq!(stale.json()["resetCounter"], true, "{}", stale.body);
    let bad = mm
        .get_root("/druid-internal/v1/worker?counter=0&hash=0&timeout=0")
        .await
        .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);

    // Once the overlord has stored the task's status, the worker forgets it: gone from the
    // snapshot and from its journal.
    let task_dir = cluster.middle_managers[0].base_task_dir.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reported = task_updates(&snapshot(&mm).await);
        let kept = worker_journal(&task_dir).1.len();
        if reported.is_empty() && kept == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker still reports {reported:?} and keeps {kept} finished task file(s)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the overlord still knows how it ended.
    let status = c.status(&id).await.unwrap().unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
}

/// A worker that restarts still reports how a task ended that finished before the overlord
/// recorded it (here the overlord is frozen with SIGSTOP while the task ends and the worker is
/// killed and started again); without the journal's record the task would look vanished and fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_tasks_status_survives_a_worker_restart() {
    let mut cluster = Cluster::start(ClusterSpec::workers(&[2]).runner("httpRemote")).await;
    let c = &cluster.client;
    let id = c.submit(&noop("survivor", 1500)).await.unwrap();
    c.wait_running(&id, Duration::from_secs(30)).await.unwrap();
    let overlord = cluster.overlords[0].process.pid().unwrap();
    signal(overlord, "STOP");
    // The task ends while nobody records it; the worker keeps its status on disk.
    let task_dir = cluster.middle_managers[0].base_task_dir.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !worker_journal(&task_dir).1.contains(&id) {
        if Instant::now() > deadline {
            signal(overlord, "CONT");
            cluster.fail("the worker did not keep the finished task's status");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.middle_managers[0].process.restart();
    signal(overlord, "CONT");
    let c = &cluster.client;
    let status = c.wait_complete(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
}

fn signal(pid: u32, name: &str) {
    let ok = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} {pid}");
}
