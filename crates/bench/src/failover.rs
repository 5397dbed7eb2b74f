//! `drover-bench --failover`: how long failures take to heal, on three overlords and three
//! middle managers with their own ZooKeeper. Session timeouts are the test kit's: 6 s for
//! overlords, 4 s for middle managers.

use std::time::{Duration, Instant};

use drover_testkit::{Cluster, ClusterSpec};
use serde_json::json;

use crate::own_cluster;

const ROUNDS: usize = 3;
const PATIENCE: Duration = Duration::from_secs(120);

/// Posts a noop to every overlord but `skip` (following redirects) until one accepts it.
async fn until_accepting(cluster: &Cluster, skip: usize, id: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    let task = json!({"type":"noop","id":id,"runTime":0}).to_string();
    loop {
        for (_, o) in cluster
            .overlords
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
        {
            if let Ok(r) = o.client.post("/task", task.clone()).await {
                if r.status == 200 || r.body.contains("already exists") {
                    return Ok(());
                }
            }
        }
        anyhow::ensure!(start.elapsed() < PATIENCE, "no overlord accepted {id}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn report(name: &str, times: &[Duration]) {
    let secs: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2} s", t.as_secs_f64()))
        .collect();
    println!("{name:<52} {}", secs.join(", "));
}

pub async fn run(cleanup_timeout: &str) -> anyhow::Result<()> {
    let mut own = own_cluster(ClusterSpec {
        overlords: 3,
        ..ClusterSpec::workers(&[3, 3, 3])
            .overlord_args(&["--task-cleanup-timeout", cleanup_timeout])
    })
    .await?;
    let cluster = &mut own.cluster;

    let mut kill_times = Vec::new();
    for round in 0..ROUNDS {
        let leader = cluster.wait_for_leader(PATIENCE).await;
        cluster.overlords[leader].process.kill9();
        let killed = Instant::now();
        until_accepting(cluster, leader, &format!("after_kill_{round}")).await?;
        kill_times.push(killed.elapsed());
        cluster.overlords[leader].process.restart();
        cluster.overlords[leader]
            .client
            .wait_healthy(PATIENCE)
            .await?;
    }

    let mut term_times = Vec::new();
    let mut term_accept_times = Vec::new();
    for round in 0..ROUNDS {
        let leader = cluster.wait_for_leader(PATIENCE).await;
        let signalled = Instant::now();
        cluster.overlords[leader].process.signal(libc::SIGTERM);
        loop {
            if cluster.leader_among(|i| i != leader).await.is_some() {
                break;
            }
            anyhow::ensure!(
                signalled.elapsed() < PATIENCE,
                "nobody took over after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        term_times.push(signalled.elapsed());
        until_accepting(cluster, leader, &format!("after_term_{round}")).await?;
        term_accept_times.push(signalled.elapsed());
        cluster.overlords[leader]
            .process
            .terminate(Duration::from_secs(30));
        cluster.overlords[leader].process.restart();
        cluster.overlords[leader]
            .client
            .wait_healthy(PATIENCE)
            .await?;
    }

    let mut mm_times = Vec::new();
    for round in 0..ROUNDS {
        let c = cluster.client.clone();
        let id = c
            .submit(&json!({"type":"noop","id":format!("on_doomed_mm_{round}"),"runTime":600_000}))
            .await?;
        c.wait_running(&id, PATIENCE).await?;
        let log = c.log(&id).await?.unwrap_or_default();
        let worker = log
            .lines()
            .find_map(|l| l.strip_prefix("drover-middle-manager "))
            .and_then(|r| r.rsplit_once(':'))
            .map(|(h, _)| h.to_string());
        let victim = cluster
            .middle_managers
            .iter()
            .position(|m| Some(m.host.as_str()) == worker.as_deref())
            .ok_or_else(|| anyhow::anyhow!("no worker line in the log of {id}"))?;
        cluster.middle_managers[victim].process.kill9();
        let killed = Instant::now();
        let status = c.wait_complete(&id, PATIENCE).await?;
        mm_times.push(killed.elapsed());
        anyhow::ensure!(status["statusCode"] == "FAILED", "{status}");
        cluster.middle_managers[victim].process.restart();
        cluster.wait_for_workers(3, PATIENCE).await;
    }

    println!("== failover: 3 overlords (session 6 s), 3 middle managers (session 4 s), taskCleanupTimeout {cleanup_timeout} ==");
    report("leader kill -9 -> a new leader accepts tasks", &kill_times);
    report("leader SIGTERM -> a follower leads", &term_times);
    report(
        "leader SIGTERM -> a new leader accepts tasks",
        &term_accept_times,
    );
    report("middle manager kill -9 -> its task FAILED", &mm_times);
    drop(own);
    Ok(())
}
