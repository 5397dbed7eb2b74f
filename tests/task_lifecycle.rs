//! A task's life through real processes: overlord → ZooKeeper → middle manager → peon → back.

use std::collections::HashMap;
use std::time::Duration;

use drover_scenarios::*;
use rand::Rng;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_noop_tasks_all_succeed_without_exceeding_worker_capacity() {
    let cluster = Cluster::start(ClusterSpec::workers(&[3, 3])).await;
    let c = &cluster.client;
    let mut ids = Vec::new();
    // The run times are random; the seed is printed so a failure can be replayed.
    let seed: u64 = rand::rng().random();
    println!("run-time seed: {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    for i in 0..50 {
        let run_time = rng.random_range(100..=500);
        ids.push(
            c.submit(&noop(&format!("noop_fifty_{i}"), run_time))
                .await
                .unwrap(),
        );
    }
    let mut per_worker: HashMap<String, Vec<(u128, u128)>> = HashMap::new();
    for id in &ids {
        let status = c
            .wait_complete(id, LONG)
            .await
            .unwrap_or_else(|e| cluster.fail(e));
        assert_eq!(status["statusCode"], "SUCCESS", "{status}");
        assert_eq!(status["location"]["host"], "127.0.0.1");
        let log = c.log(id).await.unwrap().expect("log of a finished task");
        let facts = log_facts(&log);
        assert_eq!(facts.starts, 1, "ran exactly once: {log}");
        per_worker
            .entry(facts.worker.expect("worker line"))
            .or_default()
            .push((facts.started_ms.unwrap(), facts.ended_ms.unwrap()));
    }
    assert_eq!(
        per_worker.len(),
        2,
        "both workers took tasks: {:?}",
        per_worker.keys()
    );
    for (worker, intervals) in &per_worker {
        let most = max_overlap(intervals);
        assert!(most <= 3, "worker {worker} ran {most} tasks at once");
    }
    let complete = c.tasks("?state=complete").await.unwrap();
    assert_eq!(complete.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlord_restart_rediscovers_running_tasks_and_runs_waiting_ones() {
    let mut cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            cluster
                .client
                .submit(&noop(&format!("restart_{i}"), 3000))
                .await
                .unwrap(),
        );
    }
    for id in &ids[..2] {
        cluster
            .client
            .wait_running(id, LONG)
            .await
            .unwrap_or_else(|e| cluster.fail(e));
    }
    // The other two wait for capacity; kill the overlord while two run and two wait.
    cluster.overlord().kill9();
    cluster.restart_overlord().await;
    for id in &ids {
        let status = cluster
            .client
            .wait_complete(id, LONG)
            .await
            .unwrap_or_else(|e| cluster.fail(e));
        assert_eq!(status["statusCode"], "SUCCESS", "{id}: {status}");
        let log = cluster.client.log(id).await.unwrap().unwrap();
        assert_eq!(log_facts(&log).starts, 1, "{id} ran once: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_task_ids_answer_like_druid() {
    let cluster = Cluster::start(ClusterSpec::default()).await;
    let c = &cluster.client;
    let status = c.get("/task/no_such_task/status").await.unwrap();
    assert_eq!(status.status, 404);
    assert_eq!(
        status.json(),
        serde_json::json!({"task":"no_such_task","status":null})
    );
    let payload = c.get("/task/no_such_task").await.unwrap();
    assert_eq!(payload.status, 404);
    assert_eq!(
        payload.json(),
        serde_json::json!({"task":"no_such_task","payload":null})
    );
    let shutdown = c.shutdown("no_such_task").await.unwrap();
    assert_eq!(shutdown.status, 200);
    assert_eq!(shutdown.json(), serde_json::json!({"task":"no_such_task"}));
    let log = c.get("/task/no_such_task/log").await.unwrap();
    assert_eq!(log.status, 404);
    assert!(log.body.contains("No log was found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_visible_while_running_and_stored_with_druid_fields() {
    let cluster = Cluster::start(ClusterSpec::workers(&[1])).await;
    let c = &cluster.client;
    let id = c
        .submit(&serde_json::json!({"type":"noop","runTime":1500,"dataSource":"wiki"}))
        .await
        .unwrap();
    assert!(
        id.starts_with("noop_wiki_"),
        "Druid-style generated id: {id}"
    );
    let running = c
        .wait_running(&id, LONG)
        .await
        .unwrap_or_else(|e| cluster.fail(e));
    assert_eq!(running["statusCode"], "RUNNING");
    assert_eq!(running["dataSource"], "wiki");
    let listed = c.tasks("?state=running").await.unwrap();
    assert!(listed.iter().any(|t| t["id"] == id.as_str()));
    let workers = c.workers().await.unwrap();
    assert_eq!(workers[0]["currCapacityUsed"], 1);
    // The live log comes from the middle manager while the task runs.
    let live = c.log(&id).await.unwrap().unwrap_or_default();
    assert!(live.contains("drover-peon pid="), "{live}");
    let payload = c.get(&format!("/task/{id}")).await.unwrap().json();
    assert_eq!(payload["payload"]["groupId"], id.as_str());
    assert_eq!(
        payload["payload"]["resource"]["availabilityGroup"],
        id.as_str()
    );
    let done = c.wait_complete(&id, LONG).await.unwrap();
    assert_eq!(done["statusCode"], "SUCCESS");
    assert!(done["duration"].as_i64().unwrap() >= 1500);
    let statuses = c
        .post("/taskStatus", format!(r#"["{id}","missing"]"#))
        .await
        .unwrap()
        .json();
    assert_eq!(statuses[&id]["status"], "SUCCESS");
    assert!(statuses.get("missing").is_none());
    assert_eq!(
        c.tasks("?state=complete&datasource=wiki")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        c.tasks("?state=complete&datasource=other")
            .await
            .unwrap()
            .len(),
        0
    );
    let bad_state = c.get("/tasks?state=finished").await.unwrap();
    assert_eq!(bad_state.status, 400);
    assert!(bad_state.body.contains("Invalid task state[finished]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_worker_gets_no_tasks_until_enabled() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    let mm = &cluster.middle_managers[0];
    let http = reqwest::Client::new();
    let disabled: serde_json::Value = http
        .post(format!("{}/druid/worker/v1/disable", mm.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disabled[&mm.host], "disabled");
    let enabled: serde_json::Value = http
        .get(format!("{}/druid/worker/v1/enabled", mm.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(enabled[&mm.host], false);
    // The overlord sees version "" and keeps the task pending.
    let deadline = std::time::Instant::now() + LONG;
    while c.workers().await.unwrap()[0]["worker"]["version"] != "" {
        assert!(
            std::time::Instant::now() < deadline,
            "disabled worker never re-announced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = c.submit(&noop("while_disabled", 10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        c.status(&id).await.unwrap().unwrap()["runnerStatusCode"],
        "PENDING"
    );
    http.post(format!("{}/druid/worker/v1/enable", mm.url))
        .send()
        .await
        .unwrap();
    let status = c
        .wait_complete(&id, LONG)
        .await
        .unwrap_or_else(|e| cluster.fail(e));
    assert_eq!(status["statusCode"], "SUCCESS");
    let tasks: Vec<String> = http
        .get(format!("{}/druid/worker/v1/tasks", mm.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tasks.is_empty());
}
