//! Bad input gets a clear 4xx, and nothing is stored or created on disk.

use drover_scenarios::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_task_submissions_are_rejected_and_leave_no_trace() {
    let cluster = Cluster::start(
        ClusterSpec::workers(&[2]).overlord_args(&["--max-task-payload-bytes", "4096"]),
    )
    .await;
    let c = &cluster.client;
    let huge = format!(
        r#"{{"type":"noop","id":"huge","context":{{"pad":"{}"}}}}"#,
        "x".repeat(10_000)
    );
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "invalid JSON",
            r#"{"type":"noop","#.into(),
            400,
            "not valid JSON",
        ),
        ("empty body", "".into(), 400, "empty"),
        ("not an object", "[1,2]".into(), 400, "JSON object"),
        ("no type", r#"{"id":"x"}"#.into(), 400, "[type]"),
        (
            "unknown type",
            r#"{"type":"frobnicate"}"#.into(),
            400,
            "unknown task type [frobnicate]",
        ),
        (
            "slash in id",
            r#"{"type":"noop","id":"a/b"}"#.into(),
            400,
            "must not contain '/'",
        ),
        (
            "dot-dot id",
            r#"{"type":"noop","id":".."}"#.into(),
            400,
            "must not start with '.'",
        ),
        (
            "traversal id",
            r#"{"type":"noop","id":"../../etc/passwd"}"#.into(),
            400,
            "must not start with '.'",
        ),
        (
            "control character",
            "{\"type\":\"noop\",\"id\":\"a\\u0001b\"}".into(),
            400,
            "control characters",
        ),
        (
            "tab in id",
            "{\"type\":\"noop\",\"id\":\"a\\tb\"}".into(),
            400,
            "whitespace",
        ),
        (
            "negative runTime",
            r#"{"type":"noop","runTime":-5}"#.into(),
            400,
            "[runTime]",
        ),
        ("over the size limit", huge, 413, "larger than the limit"),
    ];
    for (what, body, code, message) in cases {
        let r = c.post("/task", body).await.unwrap();
        assert_eq!(r.status, code, "{what}: {}", r.body);
        let error = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(
            error.contains(message),
            "{what}: expected [{message}] in {}",
            r.body
        );
    }
    // A duplicate id is refused too, and the first task is untouched.
    let id = c.submit(&noop("dup", 10)).await.unwrap();
    let again = c
        .post("/task", serde_json::to_vec(&noop("dup", 99)).unwrap())
        .await
        .unwrap();
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("already exists"));
    assert_eq!(
        c.wait_complete(&id, std::time::Duration::from_secs(30))
            .await
            .unwrap()["statusCode"],
        "SUCCESS"
    );

    let all = c.tasks("").await.unwrap();
    let ids: Vec<&str> = all.iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["dup"], "only the valid task was stored");
    // Nothing but the valid task's log reached the disk.
    let logs: Vec<String> = std::fs::read_dir(&cluster.task_log_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(logs, ["dup.log"]);
    let task_dir = &cluster.middle_managers[0].base_task_dir;
    // Only the middle manager's own bookkeeping is there: no task directory, no assignment.
    // (`overlords.txt`, the overlord list it keeps for peons, appears once it has found one;
    // `.spare` holds finished tasks' directories kept for reuse.)
    let mut entries: Vec<String> = std::fs::read_dir(task_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "overlords.txt")
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [".spare", "restore.json", "worker-journal.jsonl",],
        "no task directory left behind"
    );
    let (assigned, _) = worker_journal(task_dir);
    assert!(assigned.is_empty(), "assignments left behind: {assigned:?}");
    // Ids in paths are validated too.
    for path in [
        "/task/.hidden/status",
        "/task/a%00b/status",
        "/task/a%0Ab/shutdown",
    ] {
        let r = if path.ends_with("shutdown") {
            c.post(path, "").await.unwrap()
        } else {
            c.get(path).await.unwrap()
        };
        assert_eq!(r.status, 400, "{path}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_and_stores_nothing() {
    // No middle manager: tasks stay in the queue.
    let cluster =
        Cluster::start(ClusterSpec::default().overlord_args(&["--queue-max-size", "2"])).await;
    let c = &cluster.client;
    c.submit(&noop("q1", 10)).await.unwrap();
    c.submit(&noop("q2", 10)).await.unwrap();
    let r = c
        .post("/task", serde_json::to_vec(&noop("q3", 10)).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("queue"),
        "{}",
        r.body
    );
    assert_eq!(c.get("/task/q3").await.unwrap().status, 404);
    // Accepted tasks reach the runner right after the POST is answered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pending = c.tasks("?state=pending").await.unwrap();
        if pending.len() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{pending:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
