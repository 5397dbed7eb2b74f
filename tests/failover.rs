//! Overlord failover under a steady stream of tasks: three overlords, real ZooKeeper, two middle
//! managers. Each scenario ends with the same invariant: every accepted task has exactly one
//! terminal status, no task ran on two peons, and the cluster runs new work.

use std::time::{Duration, Instant};

use drover_scenarios::*;
use serde_json::json;

const LONG: Duration = Duration::from_secs(90);

/// The setup: three overlords, three middle managers.
fn three_overlords() -> ClusterSpec {
    ClusterSpec {
        overlords: 3,
        ..ClusterSpec::workers(&[3, 3, 3])
    }
}

fn clients(cluster: &Cluster) -> Vec<ApiClient> {
    cluster.overlords.iter().map(|o| o.client.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_redirect_to_the_leader_and_curl_l_follows() {
    let cluster = Cluster::start(ClusterSpec {
        overlords: 3,
        ..ClusterSpec::workers(&[2])
    })
    .await;
    let leader = cluster.wait_for_leader(LONG).await;
    let leader_url = cluster.overlords[leader].url.clone();
    for (i, o) in cluster
        .overlords
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
    {
        let r = o.raw.get("/tasks?state=running").await.unwrap();
        assert_eq!(r.status, 307, "follower {i}: {}", r.body);
        assert_eq!(
            r.location.as_deref(),
            Some(format!("{leader_url}/druid/indexer/v1/tasks?state=running").as_str())
        );
        let is_leader = o.raw.get("/isLeader").await.unwrap();
        assert_eq!(
            (is_leader.status, is_leader.json()),
            (404, json!({"leader": false}))
        );
        assert_eq!(o.raw.get("/leader").await.unwrap().body, leader_url);
        // What a user does: curl -L against a follower.
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-L",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
            ])
            .args(["-d", &noop(&format!("via_follower_{i}"), 10).to_string()])
            .arg(format!("{}/druid/indexer/v1/task", o.url))
            .output()
            .expect("curl");
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert_eq!(
            body["task"],
            format!("via_follower_{i}"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status = cluster
            .client
            .wait_complete(&format!("via_follower_{i}"), LONG)
            .await
            .unwrap();
        assert_eq!(status["statusCode"], "SUCCESS");
    }
    let lead = &cluster.overlords[leader].raw;
    assert_eq!(
        lead.get("/isLeader").await.unwrap().json(),
        json!({"leader": true})
    );
    assert_eq!(lead.get("/leader").await.unwrap().body, leader_url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_fails_over_without_losing_or_repeating_tasks() {
    let mut cluster = Cluster::start(three_overlords()).await;
    let load = Load::start(clients(&cluster), "kill_leader");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let old = cluster.wait_for_leader(LONG).await;
    cluster.overlords[old].process.kill9();
    let killed = Instant::now();
    let new = cluster.wait_for_leader(LONG).await;
    assert_ne!(new, old);
    println!(
        "failover: kill -9 of the leader -> new leader after {:?}",
        killed.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = load.finish().await;
    assert_each_succeeded_once(&cluster, &accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_the_leader_hands_over_promptly() {
    let mut cluster = Cluster::start(three_overlords()).await;
    let load = Load::start(clients(&cluster), "term_leader");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let old = cluster.wait_for_leader(LONG).await;
    let signalled = Instant::now();
    assert!(
        cluster.overlords[old]
            .process
            .terminate(Duration::from_secs(30)),
        "the leader did not exit on SIGTERM"
    );
    let new = cluster.wait_for_leader(LONG).await;
    assert_ne!(new, old);
    println!(
        "failover: SIGTERM of the leader -> new leader after {:?}",
        signalled.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = load.finish().await;
    assert_each_succeeded_once(&cluster, &accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_is_fenced_and_becomes_a_follower() {
    let cluster = Cluster::start(three_overlords()).await;
    let old = cluster.wait_for_leader(LONG).await;
    let others: Vec<ApiClient> = cluster
        .overlords
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != old)
        .map(|(_, o)| o.client.clone())
        .collect();
    let load = Load::start(others, "deposed");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Frozen past its 6 s session: another overlord takes over meanwhile.
    cluster.overlords[old].process.signal(libc::SIGSTOP);
    let deadline = Instant::now() + LONG;
    let other = loop {
        if let Some(i) = cluster.leader_among(|i| i != old).await {
            break i;
        }
        assert!(Instant::now() < deadline, "no takeover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    cluster.overlords[old].process.signal(libc::SIGCONT);

    // The instant it wakes it may still believe it leads; whatever it does, it must not accept a
    // write: its epoch is stale, so the store refuses (503) or it already redirects (307).
    let raw = &cluster.overlords[old].raw;
    let woke = Instant::now();
    let mut n = 0;
    while woke.elapsed() < Duration::from_secs(3) {
        let r = raw
            .post("/task", noop(&format!("to_deposed_{n}"), 10).to_string())
            .await
            .unwrap();
        assert!(
            r.status == 307 || r.status == 503,
            "the deposed leader answered {}: {}",
            r.status,
            r.body
        );
        if r.status == 307 {
            assert!(r
                .location
                .unwrap()
                .starts_with(&cluster.overlords[other].url));
        }
        n += 1;
    }
    assert!(
        !raw.is_leader().await,
        "the deposed overlord must follow now"
    );
    for i in 0..n {
        let r = cluster.overlords[other]
            .client
            .get(&format!("/task/to_deposed_{i}"))
            .await
            .unwrap();
        assert_eq!(r.status, 404, "to_deposed_{i} must not exist: {}", r.body);
    }
    let accepted = load.finish().await;
    assert_each_succeeded_once(&cluster, &accepted).await;
}

/// Druid's status routes are answered by every server itself: a follower does not redirect
/// them, and a middle manager serves them too (Druid's console probes them to tell servers
/// apart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_routes_are_answered_by_every_server_itself() {
    let cluster = Cluster::start(ClusterSpec {
        overlords: 2,
        ..ClusterSpec::workers(&[1])
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let mm = ApiClient::no_redirects(&cluster.middle_managers[0].url);
    let servers = [
        (&cluster.overlords[leader].raw, "drover-overlord"),
        (&cluster.overlords[1 - leader].raw, "drover-overlord"),
        (&mm, "drover-middle-manager"),
    ];
    for (client, name) in servers {
        let status = client.get_root("/status").await.unwrap();
        assert_eq!(status.status, 200, "{name}: {}", status.body);
        let status = status.json();
        assert!(status["version"].is_string(), "{status}");
        assert_eq!(status["modules"][0]["name"], name, "{status}");
        assert!(
            status["memory"]["usedMemory"].as_u64().unwrap() > 0,
            "{status}"
        );
        let properties = client.get_root("/status/properties").await.unwrap().json();
        assert!(properties["port"].is_string(), "{properties}");
        let discovered = client
            .get_root("/status/selfDiscovered/status")
            .await
            .unwrap();
        assert_eq!(discovered.json(), json!({"selfDiscovered": true}));
        assert_eq!(
            client
                .get_root("/status/selfDiscovered")
                .await
                .unwrap()
                .status,
            200
        );
    }
    // What Druid's web console probes to find its services: the leader answers as overlord and
    // as Coordinator, with Druid's shapes.
    let lead = &cluster.overlords[leader].raw;
    for path in [
        "/druid/indexer/v1/isLeader",
        "/druid/coordinator/v1/isLeader",
    ] {
        let r = lead.get_root(path).await.unwrap();
        assert_eq!(
            (r.status, r.json()),
            (200, json!({"leader": true})),
            "{path}"
        );
    }
    let servers = lead
        .get_root("/druid/coordinator/v1/servers?simple")
        .await
        .unwrap();
    assert_eq!((servers.status, servers.json()), (200, json!([])));
    let load = lead
        .get_root("/druid/coordinator/v1/loadstatus?simple")
        .await
        .unwrap();
    assert_eq!(load.status, 200, "{}", load.body);
    assert!(load.json().is_object());
}
