//! Safe ingestion inputs: the attacks of issue 13 on a cluster with default settings. A `local`
//! input on `/etc` and an `http` input pointed at the cluster's own middle manager are refused at
//! submission with a 400 naming the input (nothing stored); what only the peon can see — a
//! symlink into `/etc`, a redirect to a loopback address — fails the task with the reason, and no
//! segment is published. An operator's allow-list opens exactly what it names.

use std::time::Duration;

use drover_scenarios::{inline_index_task, serve_http, used_segments, Cluster, ClusterSpec};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(60);

fn task_reading(id: &str, source: Value) -> Value {
    let mut t = inline_index_task(
        id,
        "stolen",
        "2024-01-01/2024-01-02",
        "",
        json!({}),
        json!({}),
    );
    t["spec"]["ioConfig"]["inputSource"] = source;
    t
}

/// Answers every request with a redirect to `location`.
async fn redirect_to(location: String) -> u16 {
    serve_http(&format!("302 Found\r\nLocation: {location}"), Vec::new()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn inputs_outside_what_is_allowed_are_refused() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    let mm = cluster.middle_managers[0].url.clone();
    let refused = [
        (
            json!({"type": "local", "files": ["/etc/shadow"]}),
            "spec.ioConfig.inputSource.files[0]",
        ),
        (
            json!({"type": "local", "baseDir": "/data/../etc", "filter": "*"}),
            "spec.ioConfig.inputSource.baseDir",
        ),
        (
            json!({"type": "http", "uris": [format!("{mm}/druid/worker/v1/tasks")]}),
            "spec.ioConfig.inputSource.uris[0]",
        ),
        (
            json!({"type": "http", "uris": ["http://169.254.169.254/latest/meta-data/"]}),
            "spec.ioConfig.inputSource.uris[0]",
        ),
        (
            json!({"type": "combining", "delegates": [
                {"type": "inline", "data": "{}"},
                {"type": "http", "uris": ["http://localhost:8091/status"]}]}),
            "spec.ioConfig.inputSource.delegates[1].uris[0]",
        ),
        (
            json!({"type": "http", "uris": ["file:///etc/passwd"]}),
            "spec.ioConfig.inputSource.uris[0]",
        ),
    ];
    for (i, (source, field)) in refused.iter().enumerate() {
        let id = format!("steal-{i}");
        let r = c
            .post("/task", task_reading(&id, source.clone()).to_string())
            .await
            .unwrap();
        assert_eq!(r.status, 400, "{source}: {}", r.body);
        assert!(r.body.contains(field), "{source}: {}", r.body);
        let stored = c.get(&format!("/task/{id}")).await.unwrap();
        assert_eq!(
            stored.status, 404,
            "{id} must not be stored: {}",
            stored.body
        );
    }

    // A symlink into /etc passes the spec check (its path is elsewhere) but not the peon's.
    let dir = cluster.dir.join("inputs");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("innocent.json");
    std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
    let symlinked = task_reading(
        "steal-symlink",
        json!({"type": "local", "files": [link.display().to_string()]}),
    );
    let id = c.submit(&symlinked).await.unwrap();
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "FAILED", "{status}");
    let why = status["errorMsg"].as_str().unwrap_or_default();
    assert!(why.contains("system directory"), "{status}");
    assert!(used_segments(c, "stolen").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allow_list_opens_what_it_names_and_redirects_are_checked_again() {
    let allow = ["--ingestion-http-allowed-hosts", "localhost"];
    let mut spec = ClusterSpec::workers(&[2]).overlord_args(&allow);
    spec.middle_managers[0].extra_args = allow.iter().map(|s| s.to_string()).collect();
    let cluster = Cluster::start(spec).await;
    let c = &cluster.client;
    let mm = cluster.middle_managers[0].url.clone();
    // `localhost` is named, so a URL on it is accepted; its server redirects to 127.0.0.1,
    // which the list does not name: the peon refuses to follow.
    let port = redirect_to(format!("{mm}/druid/worker/v1/tasks")).await;
    let task = task_reading(
        "redirected",
        json!({"type": "http", "uris": [format!("http://localhost:{port}/data.json")]}),
    );
    let id = c.submit(&task).await.unwrap();
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "FAILED", "{status}");
    let log = c.log(&id).await.unwrap().unwrap_or_default();
    assert!(
        log.contains("may not reach [127.0.0.1]"),
        "the redirect is refused: {status} {log}"
    );
    assert!(used_segments(c, "stolen").await.is_empty());
    // An address the list does not name is still refused at submission.
    let r = c
        .post(
            "/task",
            task_reading(
                "direct",
                json!({"type": "http", "uris": [format!("{mm}/x")]}),
            )
            .to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
}
