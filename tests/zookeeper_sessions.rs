//! ZooKeeper session expiry: a process frozen past its session timeout comes back with a new
//! session, re-creates its ephemerals, re-arms its watches, and work goes on.

use std::time::Duration;

use drover_scenarios::*;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middle_manager_frozen_past_its_session_timeout_comes_back_and_reports() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    let id = c.submit(&noop("outlives_freeze", 4000)).await.unwrap();
    c.wait_running(&id, LONG)
        .await
        .unwrap_or_else(|e| cluster.fail(e));

    let mm = &cluster.middle_managers[0].process;
    mm.signal(libc::SIGSTOP);
    // The session timeout is 4 s: the announcement vanishes while the process is frozen.
    cluster.wait_for_workers(0, LONG).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    mm.signal(libc::SIGCONT);

    // New session, re-announced, and the task that finished meanwhile is reported.
    cluster.wait_for_workers(1, LONG).await;
    let status = c
        .wait_complete(&id, LONG)
        .await
        .unwrap_or_else(|e| cluster.fail(e));
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let next = c.submit(&noop("after_freeze", 10)).await.unwrap();
    assert_eq!(
        c.wait_complete(&next, LONG)
            .await
            .unwrap_or_else(|e| cluster.fail(e))["statusCode"],
        "SUCCESS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlord_frozen_past_its_session_timeout_re_arms_its_watches() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    let id = c
        .submit(&noop("finishes_while_overlord_frozen", 2000))
        .await
        .unwrap();
    c.wait_running(&id, LONG)
        .await
        .unwrap_or_else(|e| cluster.fail(e));

    // The overlord's session timeout is 6 s; freeze it for longer. The task finishes meanwhile.
    cluster.overlords[0].process.signal(libc::SIGSTOP);
    tokio::time::sleep(Duration::from_secs(9)).await;
    cluster.overlords[0].process.signal(libc::SIGCONT);

    let status = c
        .wait_complete(&id, LONG)
        .await
        .unwrap_or_else(|e| cluster.fail(e));
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let next = c.submit(&noop("after_overlord_freeze", 10)).await.unwrap();
    assert_eq!(
        c.wait_complete(&next, LONG)
            .await
            .unwrap_or_else(|e| cluster.fail(e))["statusCode"],
        "SUCCESS"
    );
}
