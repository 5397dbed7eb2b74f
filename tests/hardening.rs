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
    let cluster = Cluster::start(ClusterSpec::workers(&[2]).runner("remote")).await;
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

/// The HTTP runner puts no task in ZooKeeper: a 5 MB task runs, next to small ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_megabyte_task_runs_on_the_http_runner() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2]).runner("httpRemote")).await;
    let c = &cluster.client;
    let big = json!({"type": "noop", "id": "big", "context": {"pad": "A".repeat(5 << 20)}});
    c.submit(&big).await.unwrap();
    let small = c.submit(&noop("small", 0)).await.unwrap();
    for id in ["big", small.as_str()] {
        let status = c.wait_complete(id, Duration::from_secs(60)).await.unwrap();
        assert_eq!(status["statusCode"], "SUCCESS", "{id}: {status}");
    }
    // The payload the worker ran is the one submitted.
    let payload = c.get("/task/big").await.unwrap();
    assert_eq!(payload.status, 200);
    let pad = &payload.json()["payload"]["context"]["pad"];
    assert_eq!(pad.as_str().map(str::len), Some(5 << 20));
}

/// Asks `path` until the answer's status is one of `statuses`; fails the test after `timeout`.
async fn wait_for_answer(c: &ApiClient, path: &str, statuses: &[u16], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let r = c.get(path).await.unwrap();
        if statuses.contains(&r.status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {}: {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opens `n` connections that each send half a request's headers and then nothing.
async fn half_sent_requests(addr: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut held = Vec::new();
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /druid/indexer/v1/tasks HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    held
}

/// Whether the server has closed the connection (reads end of file, or a reset).
async fn closed_by_server(s: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // a 408 or similar before the close
            Err(_) => return false,
        }
    }
}

/// Half-sent requests and a lying `Content-Length` cannot hold the API: past the connection
/// limit new clients get a 503 at once, slow clients are cut off after the read timeouts, and
/// the API answers again by itself. The servers raise their open-files limit at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_cannot_take_the_api_down() {
    let cluster = Cluster::start(ClusterSpec::workers(&[1]).overlord_args(&[
        "--max-connections",
        "100",
        "--header-read-timeout",
        "2s",
        "--body-read-timeout",
        "2s",
    ]))
    .await;
    let c = &cluster.client;
    let addr = cluster.overlords[0]
        .url
        .trim_start_matches("http://")
        .to_string();

    // 150 half-sent requests: the first 100 take every slot, the rest are refused at once.
    let started = Instant::now();
    let mut held = half_sent_requests(&addr, 150).await;
    // A new client (no pooled connection from before).
    let r = ApiClient::new(&cluster.overlords[0].url)
        .get("/tasks")
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    let error = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("max_connections"), "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the refusal waited"
    );

    // Within the header timeout the slow clients are cut off, and the API serves again.
    for s in held.iter_mut().take(10) {
        assert!(closed_by_server(s).await, "a half-sent request was kept");
    }
    wait_for_answer(c, "/tasks", &[200], Duration::from_secs(10)).await;
    drop(held);

    // A body shorter than its Content-Length: 408 after the body timeout, nothing stored.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(
            b"POST /druid/indexer/v1/task HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"type\":\"noop\",\"id\":\"liar\"",
        )
        .await
        .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
            .await
            .expect("the server answers a lying Content-Length")
            .ok();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("body_read_timeout"), "{answer}");
    }
    assert_eq!(c.get("/task/liar/status").await.unwrap().status, 404);

    // Both servers raised their soft open-files limit to the hard one.
    let pids = [
        cluster.overlords[0].process.pid(),
        cluster.middle_managers[0].process.pid(),
    ];
    for pid in pids.into_iter().flatten() {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap()
            .to_string();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[3], fields[4], "soft limit not raised: {line}");
    }
}

/// A fresh database on the PostgreSQL server the test command starts; its URL with `host`
/// (host:port) in place of the server's own address, so it can go through a proxy.
async fn fresh_postgres_database(host: &str) -> String {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let admin_url = std::env::var("DROVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://drover:drover@127.0.0.1:5432/postgres".into());
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {admin_url} ({e}); run the tests with scripts/test, \
                 which starts it, or set DROVER_TEST_POSTGRES_URL"
            )
        });
    let name = format!("drover_outage_{:08x}", rand::random::<u32>());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    admin.close().await.ok();
    let (scheme_and_user, _) = admin_url.rsplit_once('@').unwrap();
    format!("{scheme_and_user}@{host}/{name}")
}

fn postgres_host() -> String {
    let url = std::env::var("DROVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://drover:drover@127.0.0.1:5432/postgres".into());
    let after_at = url.rsplit_once('@').unwrap().1;
    after_at.split('/').next().unwrap().to_string()
}

/// During a metadata-store outage (PostgreSQL behind a link that stops passing bytes),
/// `POST /task` answers 503 within `task_submit_timeout` and stores nothing, even once the store
/// answers again; reads answer 503 too. A retry after the outage is stored once, and a second
/// retry of the same id is a 400 "already exists".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_during_a_metadata_outage_answer_503_and_store_nothing() {
    let proxy = FreezableProxy::start(&postgres_host()).await;
    let url = fresh_postgres_database(&proxy.addr).await;
    let cluster = Cluster::start(ClusterSpec {
        metadata_url: Some(url),
        ..ClusterSpec::workers(&[2]).overlord_args(&[
            "--task-submit-timeout",
            "2s",
            "--request-timeout",
            "4s",
        ])
    })
    .await;
    let c = &cluster.client;
    let before = c.submit(&noop("before", 0)).await.unwrap();
    c.wait_complete(&before, Duration::from_secs(30))
        .await
        .unwrap();

    proxy.freeze();
    let started = Instant::now();
    let submissions = (0..5).map(|n| {
        let c = c.clone();
        async move {
            let r = c
                .post("/task", noop(&format!("during-{n}"), 0).to_string())
                .await
                .unwrap();
            (r, started.elapsed())
        }
    });
    let answers = futures::future::join_all(submissions).await;
    for (r, took) in &answers {
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.body.contains("task_submit_timeout"), "{}", r.body);
        // Before the fix each waited 30 s or more, one after the other; the bound is loose.
        assert!(took < &Duration::from_secs(15), "answered after {took:?}");
    }
    let r = c.get("/task/before/status").await.unwrap();
    assert_eq!(r.status, 503, "{}", r.body);

    // The store answers again; whatever the frozen link held reaches it now, and must not
    // store any of the refused tasks.
    proxy.thaw();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for n in 0..5 {
        let r = c.get(&format!("/task/during-{n}/status")).await.unwrap();
        assert_eq!(
            r.status, 404,
            "during-{n} was stored after its 503: {}",
            r.body
        );
    }
    // The client retries with the same id: stored once, runs once.
    let again = c.submit(&noop("during-0", 0)).await.unwrap();
    let status = c
        .wait_complete(&again, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let twice = c
        .post("/task", noop("during-0", 0).to_string())
        .await
        .unwrap();
    assert_eq!(twice.status, 400, "{}", twice.body);
    assert!(twice.body.contains("already exists"), "{}", twice.body);
}

/// A follower does not send clients to a leader that does not answer (frozen, but still holding
/// its ZooKeeper latch until its session expires): it answers 503 within the probe timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_answer_503_instead_of_redirecting_to_a_frozen_leader() {
    let cluster = Cluster::start(ClusterSpec {
        overlords: 2,
        ..ClusterSpec::workers(&[1])
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let follower = 1 - leader;
    let raw = cluster.overlords[follower].raw.clone();
    let r = raw.get("/tasks").await.unwrap();
    assert_eq!(r.status, 307, "{}", r.body);

    cluster.overlords[leader].process.signal(libc::SIGSTOP);
    // The follower trusts its last probe for a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = raw.get("/tasks").await.unwrap();
    cluster.overlords[leader].process.signal(libc::SIGCONT);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("does not answer"), "{}", r.body);
    // Awake again, the leader is redirected to as before.
    wait_for_answer(&raw, "/tasks", &[307, 200], Duration::from_secs(30)).await;
}

async fn ids_of(c: &ApiClient, path: &str) -> Vec<String> {
    let r = c.get(path).await.unwrap();
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
        .as_array()
        .unwrap_or_else(|| panic!("{path}: not a list: {}", r.body))
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// Listings by state answer from what is in that state, `max` bounds any listing, and the task
/// routes a Druid client uses are served as Druid serves them: the date-only
/// `createdTimeInterval`, `/tasks/`, `shutdownAllTasks`, `lockedIntervals` and its v2 form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_bounded_and_druids_task_routes_are_served() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    // Two tasks take both slots: a long noop, and an index task that holds its lock.
    c.submit(&noop("long", 120_000)).await.unwrap();
    let row = "{\"ts\":\"2024-01-01T01:00:00Z\",\"page\":\"a\",\"n\":1}\n";
    let locker = inline_index_task(
        "locker",
        "locked-ds",
        "2024-01-01/2024-01-02",
        row,
        json!({}),
        json!({"drover.pauseBeforePublishMs": 120_000}),
    );
    c.submit(&locker).await.unwrap();
    for id in ["long", "locker"] {
        c.wait_running(id, Duration::from_secs(30)).await.unwrap();
    }
    // Five wait for a slot in the runner (pending); twenty are not ready at all (waiting).
    for n in 0..5 {
        c.submit(&json!({"type": "noop", "id": format!("queued-{n}"), "dataSource": "queued"}))
            .await
            .unwrap();
    }
    for n in 0..20 {
        let task = json!({"type": "noop", "id": format!("blocked-{n}"), "dataSource": "blocked",
                          "isReadyResult": "NO"});
        c.submit(&task).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut running = ids_of(c, "/runningTasks").await;
    running.sort();
    assert_eq!(running, ["locker", "long"]);
    assert_eq!(ids_of(c, "/pendingTasks").await.len(), 5);
    assert_eq!(ids_of(c, "/waitingTasks").await.len(), 20);
    assert_eq!(ids_of(c, "/tasks").await.len(), 27);
    assert_eq!(ids_of(c, "/tasks/").await.len(), 27);
    assert_eq!(ids_of(c, "/tasks?max=7").await.len(), 7);
    assert_eq!(ids_of(c, "/tasks?state=waiting&max=3").await.len(), 3);
    assert_eq!(
        ids_of(c, "/tasks?state=running&datasource=locked-ds").await,
        ["locker"]
    );
    // Druid's docs write the interval with dates only.
    assert!(ids_of(
        c,
        "/tasks?state=complete&createdTimeInterval=2015-09-12_2015-09-13"
    )
    .await
    .is_empty());
    let today = chrono::Utc::now().date_naive();
    let days = format!("{}_{}", today, today.succ_opt().unwrap());
    assert_eq!(
        ids_of(c, &format!("/tasks?createdTimeInterval={days}"))
            .await
            .len(),
        27
    );
    let r = c.get("/tasks?createdTimeInterval=yesterday").await.unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("createdTimeInterval"), "{}", r.body);
    let status = c.status("long").await.unwrap().unwrap();
    assert_eq!(
        status["queueInsertionTime"], status["createdTime"],
        "{status}"
    );

    // The index task's lock, in both forms of lockedIntervals.
    let expected = json!({"locked-ds": ["2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"]});
    let v2 = c
        .post(
            "/lockedIntervals/v2",
            r#"[{"datasource":"locked-ds","priority":0}]"#,
        )
        .await
        .unwrap();
    assert_eq!(v2.status, 200, "{}", v2.body);
    assert_eq!(v2.json(), expected);
    let above = c
        .post(
            "/lockedIntervals/v2",
            r#"[{"datasource":"locked-ds","priority":90}]"#,
        )
        .await
        .unwrap();
    assert_eq!(above.json(), json!({}), "{}", above.body);
    let v1 = c
        .post("/lockedIntervals", r#"{"locked-ds":0}"#)
        .await
        .unwrap();
    assert_eq!(v1.json(), expected, "{}", v1.body);
    let empty = c.post("/lockedIntervals/v2", "").await.unwrap();
    assert_eq!(empty.status, 400);
    assert!(empty.body.contains("No filter provided"), "{}", empty.body);
    let bad = c
        .post("/lockedIntervals/v2", r#"[{"priority":0}]"#)
        .await
        .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("datasource"), "{}", bad.body);

    // shutdownAllTasks ends every active task of the data source; then there are none: 404.
    let r = c
        .post("/datasources/blocked/shutdownAllTasks", "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"dataSource": "blocked"}));
    for n in 0..20 {
        let status = c
            .wait_complete(&format!("blocked-{n}"), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(status["statusCode"], "FAILED", "{status}");
        // A killed task lasted from its creation to its end, not -1.
        assert!(status["duration"].as_i64().unwrap() >= 0, "{status}");
        assert_eq!(status["runnerStatusCode"], "NONE", "{status}");
    }
    let again = c
        .post("/datasources/blocked/shutdownAllTasks", "")
        .await
        .unwrap();
    assert_eq!(again.status, 404, "{}", again.body);
    assert!(again.body.contains("no active task"), "{}", again.body);
    let listed = c.tasks("?state=complete&datasource=blocked").await.unwrap();
    assert_eq!(listed.len(), 20);
    assert!(listed.iter().all(|t| t["runnerStatusCode"] == "NONE"));
    for id in ["long", "locker"] {
        c.shutdown(id).await.unwrap();
    }
}

/// A server that cannot start says why in one line, with no backtrace even when
/// `RUST_BACKTRACE` is set, and exits 1; the overlord checks its task-log directory at start.
#[test]
fn servers_that_cannot_start_say_why_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let not_a_dir = blocker.join("logs").display().to_string();
    for binary in ["drover-overlord", "drover-middle-manager"] {
        let out = std::process::Command::new(drover_testkit::binary(binary))
            .args(["--task-log-dir", &not_a_dir, "--port", "1"])
            .env("RUST_BACKTRACE", "1")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{binary}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: task_log_dir") && last.contains("cannot be created"),
            "{binary}: {stderr}"
        );
        assert!(
            !stderr.contains("backtrace") && !stderr.contains("Caused by"),
            "{binary}: {stderr}"
        );
    }
}
