//! ZooKeeper itself restarts under load: every process reconnects (or starts a new session),
//! the leader steps down while it cannot see ZooKeeper and takes up again, and nothing accepted
//! is lost or run twice.

use std::time::Duration;

use drover_scenarios::*;
use drover_testkit::ZooKeeper;

const LONG: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zookeeper_restart_loses_nothing() {
    let dir = tempfile::Builder::new()
        .prefix("drover-own-zk-")
        .tempdir()
        .unwrap();
    let mut zk = ZooKeeper::start(dir.path().to_path_buf());
    let cluster = Cluster::start(ClusterSpec {
        overlords: 3,
        zk_connect: Some(zk.connect_string()),
        ..ClusterSpec::workers(&[3, 3, 3])
    })
    .await;
    let clients: Vec<ApiClient> = cluster.overlords.iter().map(|o| o.client.clone()).collect();
    let load = Load::start(clients, "zk_restart");
    tokio::time::sleep(Duration::from_secs(2)).await;

    zk.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    zk.restart();
    cluster.wait_for_leader(LONG).await;
    cluster.wait_for_workers(3, LONG).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let accepted = load.finish().await;
    assert_each_succeeded_once(&cluster, &accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middle_manager_frozen_past_its_session_keeps_its_tasks() {
    let cluster = Cluster::start(ClusterSpec {
        overlords: 3,
        ..ClusterSpec::workers(&[3, 3, 3])
    })
    .await;
    let load = Load::start(vec![cluster.client.clone()], "mm_frozen");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mm = &cluster.middle_managers[0].process;
    mm.signal(libc::SIGSTOP);
    cluster.wait_for_workers(2, LONG).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    mm.signal(libc::SIGCONT);
    cluster.wait_for_workers(3, LONG).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = load.finish().await;
    // Back within taskCleanupTimeout: its tasks finish normally, nothing is failed or repeated.
    assert_each_succeeded_once(&cluster, &accepted).await;
}
