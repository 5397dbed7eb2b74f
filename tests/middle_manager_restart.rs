//! Middle managers that die, come back (in time or too late) or are stopped with SIGTERM, under
//! a steady stream of tasks. Invariant each time: every accepted task ends in exactly one
//! terminal status, none ran on two peons, and new tasks run on the worker afterwards.

use std::time::Duration;

use drover_scenarios::*;

const LONG: Duration = Duration::from_secs(90);

/// The setup: three overlords, three middle managers of capacity 3.
fn cluster_spec(cleanup_timeout: &str) -> ClusterSpec {
    ClusterSpec {
        overlords: 3,
        ..ClusterSpec::workers(&[3, 3, 3])
            .overlord_args(&["--task-cleanup-timeout", cleanup_timeout])
    }
}

/// Long tasks, two on each worker (equalDistribution).
async fn long_tasks(cluster: &Cluster, prefix: &str) -> Vec<(String, String)> {
    let c = &cluster.client;
    let mut out = Vec::new();
    for i in 0..6 {
        let id = c
            .submit(&noop(&format!("{prefix}_{i}"), 600_000))
            .await
            .unwrap();
        c.wait_running(&id, LONG)
            .await
            .unwrap_or_else(|e| cluster.fail(e));
        let worker = log_facts(&c.log(&id).await.unwrap().unwrap())
            .worker
            .unwrap();
        out.push((id, worker));
    }
    out
}

async fn error_of(c: &ApiClient, id: &str) -> String {
    let s = c.wait_complete(id, LONG).await.unwrap();
    assert_eq!(s["statusCode"], "FAILED", "{id}: {s}");
    s["errorMsg"].as_str().unwrap_or_default().to_string()
}

/// Every accepted task ended once, none ran twice, and `worker` takes new work.
async fn check(cluster: &Cluster, accepted: &[String], worker: &str) {
    let c = &cluster.client;
    for id in accepted {
        let s = c
            .wait_complete(id, LONG)
            .await
            .unwrap_or_else(|e| cluster.fail(e));
        assert!(
            s["statusCode"] == "SUCCESS" || s["statusCode"] == "FAILED",
            "{id}: {s}"
        );
    }
    let complete = c.tasks("?state=complete").await.unwrap();
    for id in accepted {
        assert_eq!(
            complete.iter().filter(|t| t["id"] == id.as_str()).count(),
            1,
            "{id}"
        );
    }
    let starts = peon_starts(cluster);
    for id in accepted {
        assert!(
            starts.get(id).copied().unwrap_or(0) <= 1,
            "{id} ran on {:?} peons",
            starts.get(id)
        );
    }
    // The worker is back in business: a batch that needs both workers' slots.
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(
            c.submit(&noop(&format!("{}_after_{n}", accepted[0]), 1000))
                .await
                .unwrap(),
        );
    }
    let mut on_worker = 0;
    for id in &ids {
        assert_eq!(
            c.wait_complete(id, LONG).await.unwrap()["statusCode"],
            "SUCCESS"
        );
        if log_facts(&c.log(id).await.unwrap().unwrap())
            .worker
            .as_deref()
            == Some(worker)
        {
            on_worker += 1;
        }
    }
    assert!(on_worker > 0, "no new task ran on {worker}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middle_manager_back_within_the_cleanup_timeout_reports_its_tasks_and_works_on() {
    let mut cluster = Cluster::start(cluster_spec("60s")).await;
    let long = long_tasks(&cluster, "mm_back").await;
    let victim = cluster.middle_managers[0].host.clone();
    let load = Load::start(vec![cluster.client.clone()], "mm_back_load");
    tokio::time::sleep(Duration::from_secs(1)).await;

    cluster.middle_managers[0].process.kill9();
    assert!(cluster.middle_managers[0]
        .base_task_dir
        .join("restore.json")
        .exists());
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.middle_managers[0].process.restart();

    for (id, worker) in &long {
        if *worker == victim {
            let msg = error_of(&cluster.client, id).await;
            assert!(msg.contains("cannot be restored"), "{id}: {msg}");
        } else {
            assert_eq!(
                cluster.client.status(id).await.unwrap().unwrap()["statusCode"],
                "RUNNING"
            );
            cluster.client.shutdown(id).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let accepted = load.finish().await;
    check(&cluster, &accepted, &victim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middle_manager_back_too_late_finds_its_tasks_already_failed() {
    let mut cluster = Cluster::start(cluster_spec("2s")).await;
    let long = long_tasks(&cluster, "mm_late").await;
    let victim = cluster.middle_managers[0].host.clone();
    let load = Load::start(vec![cluster.client.clone()], "mm_late_load");
    cluster.middle_managers[0].process.kill9();
    for (id, worker) in &long {
        if *worker == victim {
            let msg = error_of(&cluster.client, id).await;
            assert!(msg.contains("worker cleanup"), "{id}: {msg}");
        }
    }
    // Back after the cleanup: its own report of those tasks changes nothing (first status wins).
    cluster.middle_managers[0].process.restart();
    cluster.wait_for_workers(3, LONG).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (id, worker) in &long {
        if *worker == victim {
            assert!(error_of(&cluster.client, id)
                .await
                .contains("worker cleanup"));
        } else {
            cluster.client.shutdown(id).await.unwrap();
        }
    }
    let accepted = load.finish().await;
    check(&cluster, &accepted, &victim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_middle_manager_with_a_clear_status_for_its_tasks() {
    let mut cluster = Cluster::start(cluster_spec("15m")).await;
    let long = long_tasks(&cluster, "mm_term").await;
    let victim = cluster.middle_managers[0].host.clone();
    let load = Load::start(vec![cluster.client.clone()], "mm_term_load");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        cluster.middle_managers[0]
            .process
            .terminate(Duration::from_secs(30)),
        "no exit on SIGTERM"
    );
    for (id, worker) in &long {
        if *worker == victim {
            let msg = error_of(&cluster.client, id).await;
            assert!(msg.contains("middle manager shut down"), "{id}: {msg}");
        } else {
            cluster.client.shutdown(id).await.unwrap();
        }
    }
    cluster.middle_managers[0].process.restart();
    cluster.wait_for_workers(3, LONG).await;
    let accepted = load.finish().await;
    check(&cluster, &accepted, &victim).await;
}
