//! The `drover` command-line client against a real cluster with two overlords, authentication
//! and TLS: pointed at the follower, it follows the redirect to the leader with its credentials;
//! `task submit --wait` waits for the end and exits by the outcome; `task log --follow` prints
//! the log as the task writes it and returns when it ends; the lists read as tables and as JSON.
//! (`supervisor status` is in `kafka_ingestion`, beside a broker.)

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use drover_scenarios::{inline_index_task, noop, one_row_task, Cluster, ClusterSpec};
use drover_testkit::binary;
use serde_json::Value;

pub const PASSWORD: &str = "cli-admin-secret";

/// Runs `drover` with the cluster's follower as its URL and the admin's credentials, the
/// password from the environment as an operator would keep it.
pub async fn drover(cluster: &Cluster, url: &str, args: &[&str]) -> Output {
    let ca = cluster.dir.join("cli-ca.pem");
    if let Some(pem) = &cluster.ca_pem {
        std::fs::write(&ca, pem).unwrap();
    }
    let mut command = tokio::process::Command::new(binary("drover"));
    command
        .args(["--url", url, "--user", "admin"])
        .args(args)
        .env("DROVER_PASSWORD", PASSWORD)
        .env_remove("DROVER_CONFIG")
        .env("HOME", &cluster.dir);
    if cluster.ca_pem.is_some() {
        command.env("DROVER_CA_FILE", &ca);
    }
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("drover ends")
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The URL of an overlord that does not lead.
async fn follower(cluster: &Cluster) -> String {
    for o in &cluster.overlords {
        let r = o.raw.get("/isLeader").await.unwrap();
        if r.json()["leader"] == false {
            return o.url.clone();
        }
    }
    panic!("no follower among the overlords");
}

fn write_task(cluster: &Cluster, name: &str, task: &Value) -> PathBuf {
    let path = cluster.dir.join(name);
    std::fs::write(&path, task.to_string()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_submits_waits_follows_logs_and_lists() {
    let cluster = Cluster::start(
        ClusterSpec {
            overlords: 2,
            ..ClusterSpec::workers(&[2])
        }
        .basic_auth(PASSWORD, "cli-internal-secret")
        .tls(),
    )
    .await;
    let url = follower(&cluster).await;

    // submit --wait: the id and SUCCESS, exit 0, through the follower's redirect.
    let file = write_task(&cluster, "index.json", &one_row_task("cli-index", "cli_ds"));
    let out = drover(
        &cluster,
        &url,
        &["task", "submit", file.to_str().unwrap(), "--wait"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("cli-index"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("SUCCESS"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("cli-index: SUCCESS"),
        "{}",
        text(&out.stderr)
    );

    // A task that fails: exit 1 with its reason.
    let bad = inline_index_task(
        "cli-fails",
        "cli_ds",
        "2024-01-01/2024-01-02",
        "not json\n",
        serde_json::json!({"maxParseExceptions": 0}),
        serde_json::json!({}),
    );
    let file = write_task(&cluster, "fails.json", &bad);
    let out = drover(
        &cluster,
        &url,
        &["task", "submit", file.to_str().unwrap(), "--wait"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("FAILED"),
        "{}",
        text(&out.stderr)
    );

    // log --follow on a task that runs for three seconds: it waits for the end and prints
    // the peon's last line.
    let file = write_task(&cluster, "noop.json", &noop("cli-follow", 3000));
    let out = drover(&cluster, &url, &["task", "submit", file.to_str().unwrap()]).await;
    assert_eq!(text(&out.stdout).trim(), "cli-follow");
    let out = drover(&cluster, &url, &["task", "log", "cli-follow", "--follow"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = text(&out.stdout);
    assert!(
        log.contains("drover-peon finished task cli-follow"),
        "{log}"
    );
    // Asked of the leader itself: an HTTP client drops the credentials on a redirect.
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let status = cluster.overlords[leader]
        .client
        .get("/task/cli-follow/status")
        .await
        .unwrap()
        .json();
    assert_eq!(
        status["status"]["statusCode"], "SUCCESS",
        "ended before the log did: {status}"
    );

    // Lists: tables for people, the overlord's JSON for scripts.
    let out = drover(&cluster, &url, &["task", "list", "--state", "complete"]).await;
    let table = text(&out.stdout);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("cli-index") && table.contains("cli-fails"),
        "{table}"
    );
    let out = drover(
        &cluster,
        &url,
        &["-o", "json", "task", "status", "cli-index"],
    )
    .await;
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["status"]["statusCode"], "SUCCESS");
    let out = drover(&cluster, &url, &["datasource", "list"]).await;
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("cli_ds ") && l.contains(" 1 ")),
        "{table}"
    );
    let out = drover(&cluster, &url, &["datasource", "segments", "cli_ds"]).await;
    assert!(
        text(&out.stdout).contains("2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"),
        "{}",
        text(&out.stdout)
    );
    let out = drover(&cluster, &url, &["-o", "json", "worker", "list"]).await;
    let workers: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(workers.as_array().map(Vec::len), Some(1), "{workers}");
    let out = drover(&cluster, &url, &["worker", "list"]).await;
    assert!(
        text(&out.stdout).starts_with("HOST"),
        "{}",
        text(&out.stdout)
    );

    // Wrong credentials: a clear error, exit 1.
    let out = tokio::process::Command::new(binary("drover"))
        .args([
            "--url",
            &url,
            "--user",
            "admin",
            "--password",
            "wrong",
            "task",
            "list",
        ])
        .env("DROVER_CA_FILE", cluster.dir.join("cli-ca.pem"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("HTTP 401"),
        "{}",
        text(&out.stderr)
    );
}
