//! Failures: shutdown, a killed peon, a killed middle manager.

use std::time::{Duration, Instant};

use drover_scenarios::*;
use serde_json::json;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_through_the_overlord_fails_the_task_and_stops_its_peon() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    let (id, pid) = running_peon(&cluster, "long_shutdown").await;
    assert!(process_alive(pid));

    let r = c.shutdown(&id).await.unwrap();
    assert_eq!(r.status, 200);
    let status = c.wait_complete(&id, LONG).await.unwrap();
    assert_eq!(status["statusCode"], "FAILED");
    assert!(
        status["errorMsg"]
            .as_str()
            .unwrap()
            .contains("Shutdown request"),
        "{status}"
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "peon {pid} still alive 5 s after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The slot is free again.
    let next = c.submit(&noop("after_shutdown", 10)).await.unwrap();
    assert_eq!(
        c.wait_complete(&next, LONG).await.unwrap()["statusCode"],
        "SUCCESS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_peon_fails_its_task_with_the_exit_code() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let (id, pid) = running_peon(&cluster, "long_killed").await;
    // SAFETY: kill(2) on the peon the log named.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let msg = wait_failed(&cluster, &id, LONG).await;
    assert!(
        msg.contains("exited unsuccessfully with code[137]"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_middle_manager_fails_its_tasks_after_cleanup_timeout() {
    let mut cluster = Cluster::start(
        ClusterSpec::workers(&[3, 3]).overlord_args(&["--task-cleanup-timeout", "3s"]),
    )
    .await;
    let c = cluster.client.clone();
    let mut ids = Vec::new();
    for i in 0..4 {
        let id = c
            .submit(&noop(&format!("long_mm_{i}"), 600_000))
            .await
            .unwrap();
        c.wait_running(&id, LONG)
            .await
            .unwrap_or_else(|e| cluster.fail(e));
        ids.push(id);
    }
    let victim = cluster.middle_managers[0].host.clone();
    let mut on_victim = Vec::new();
    let mut pids = Vec::new();
    for id in &ids {
        let log = c.log(id).await.unwrap().unwrap();
        let facts = log_facts(&log);
        if facts.worker.as_deref() == Some(victim.as_str()) {
            on_victim.push(id.clone());
            pids.push(facts.pid.unwrap());
        }
    }
    assert_eq!(
        on_victim.len(),
        2,
        "equalDistribution put two tasks on each worker"
    );

    let killed_at = Instant::now();
    cluster.middle_managers[0].process.kill9();
    for id in &on_victim {
        let status = c
            .wait_complete(id, LONG)
            .await
            .unwrap_or_else(|e| cluster.fail(e));
        assert_eq!(status["statusCode"], "FAILED");
        assert!(
            status["errorMsg"]
                .as_str()
                .unwrap()
                .contains("worker cleanup"),
            "{status}"
        );
    }
    // Not before the session timeout (4 s) plus taskCleanupTimeout (3 s) have both passed.
    assert!(killed_at.elapsed() >= Duration::from_secs(3));
    // Its peons saw their stdin close and exited.
    for pid in pids {
        assert!(
            !process_alive(pid),
            "peon {pid} of the killed middle manager survived"
        );
    }
    // The other worker's tasks are untouched, and new work goes to it.
    for id in ids.iter().filter(|i| !on_victim.contains(i)) {
        assert_eq!(
            c.status(id).await.unwrap().unwrap()["statusCode"],
            "RUNNING"
        );
    }
    cluster.wait_for_workers(1, LONG).await;
    let fresh = c.submit(&noop("after_mm_death", 10)).await.unwrap();
    let status = c
        .wait_complete(&fresh, LONG)
        .await
        .unwrap_or_else(|e| cluster.fail(e));
    assert_eq!(status["statusCode"], "SUCCESS");
    let log = c.log(&fresh).await.unwrap().unwrap();
    assert_eq!(
        log_facts(&log).worker.as_deref(),
        Some(cluster.middle_managers[1].host.as_str())
    );
}

/// A stored active task this version cannot read (written by hand, or accepted by a version
/// that took something this one refuses) fails with the reason when the queue loads it, and
/// does not keep the queue from loading and running the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_stored_task_fails_with_the_reason_and_the_rest_run() {
    let mut cluster = Cluster::start(ClusterSpec::workers(&[1])).await;
    let c = cluster.client.clone();
    // Both wait (isReadyResult NO) so they are still active when the overlord stops.
    for id in ["unreadable", "readable"] {
        c.submit(&json!({"type":"noop","id":id,"isReadyResult":"NO"}))
            .await
            .unwrap();
    }
    cluster.overlord().kill9();
    let url = format!("sqlite://{}", cluster.dir.join("metadata.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let changed = sqlx::query("UPDATE druid_tasks SET payload = ? WHERE id = ?")
        .bind(br#"{"type":"index","id":"unreadable","spec":{}}"#.to_vec())
        .bind("unreadable")
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    pool.close().await;
    assert_eq!(changed, 1);

    cluster.restart_overlord().await;
    let failed = c.wait_complete("unreadable", LONG).await.unwrap();
    assert_eq!(failed["statusCode"], "FAILED", "{failed}");
    let reason = failed["errorMsg"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cannot read the task") && reason.contains("dataSource"),
        "{reason}"
    );
    // The readable one was loaded and is still waiting; a new task runs.
    assert_eq!(
        c.status("readable").await.unwrap().unwrap()["statusCode"],
        "RUNNING"
    );
    let id = c
        .submit(&json!({"type":"noop","runTime":10}))
        .await
        .unwrap();
    assert_eq!(
        c.wait_complete(&id, LONG).await.unwrap()["statusCode"],
        "SUCCESS"
    );
}
