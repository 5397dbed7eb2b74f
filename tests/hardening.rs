//! What broke when Drover was tried from outside: oversized tasks, idle connections, frozen
//! leaders, a metadata-store outage, large listings. Each test reproduces the failure as a
//! user or an attacker would cause it, over HTTP against real processes.

use std::time::{Duration, Instant};

use drover_scenarios::*;
use serde_json::json;

/// A task that ZooKeeper could not carry (its packet limit is 1 MiB) is refused at submission,
/// naming the limit, and the cluster keeps scheduling everything else with the same leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_too_large_for_zookeeper_is_refused_and_the_cluster_keeps_running() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    let big = json!({"type": "noop", "id": "big", "context": {"pad": "A".repeat(2 << 20)}});
    let r = c.post("/task", big.to_string()).await.unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    let error = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("max_znode_bytes"), "{error}");
    // Nothing was stored.
    assert_eq!(c.get("/task/big/status").await.unwrap().status, 404);

    // Just under the limit still runs; so does an ordinary task, on the same leader.
    let leader = cluster.leader().await;
    let fits = json!({"type": "noop", "id": "fits", "context": {"pad": "A".repeat(400_000)}});
    c.submit(&fits).await.unwrap();
    let small = c.submit(&noop("small", 0)).await.unwrap();
    for id in ["fits", small.as_str()] {
        let status = c.wait_complete(id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(status["statusCode"], "SUCCESS", "{id}: {status}");
    }
    assert_eq!(cluster.leader().await, leader, "leadership moved");
}
