//! Segment lifecycle: marking segments unused and used (the Coordinator's routes and the
//! Overlord's forms), then deleting unused ones for good with `kill`, following Druid's "Delete
//! data" tutorial on a small hourly data source.

use std::time::Duration;

use drover_scenarios::{inline_index_task, report, used_segments, Cluster, ClusterSpec};
use reqwest::Method;
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(120);
const DS: &str = "deletion-tutorial";

/// Four hours of rows on 2015-09-12, 5 per hour, in hourly segments.
fn hourly_task() -> Value {
    let mut data = String::new();
    for hour in 0..4 {
        for i in 0..5 {
            data.push_str(&format!(
                "{{\"ts\":\"2015-09-12T{hour:02}:{i:02}:00Z\",\"page\":\"p{i}\",\"n\":1}}\n"
            ));
        }
    }
    let mut task = inline_index_task(
        "deletion-index",
        DS,
        "2015-09-12/2015-09-13",
        &data,
        json!({}),
        json!({}),
    );
    task["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"] = json!("hour");
    task
}

/// The rows of `druid_segments` for the data source: (id, used).
async fn segment_rows_in_store(cluster: &Cluster) -> Vec<(String, bool)> {
    use sqlx::Row;
    let url = format!(
        "sqlite://{}?mode=ro",
        cluster.dir.join("metadata.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT id, used FROM druid_segments WHERE dataSource = ? ORDER BY id")
        .bind(DS)
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Files under deep storage for the data source.
fn files_in_deep_storage(cluster: &Cluster) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&cluster.deep_storage_dir.join(DS), &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_unused_and_used_then_kill_deletes_files_and_rows() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = cluster.client.clone();
    let send = |method: Method, path: String, body: Option<Value>| {
        let c = c.clone();
        async move { c.send_root(method, &path, body.as_ref()).await.unwrap() }
    };
    let coordinator = |rest: &str| format!("/druid/coordinator/v1/datasources/{DS}{rest}");
    let overlord = |rest: &str| format!("/druid/indexer/v1/datasources/{DS}{rest}");

    let id = c.submit(&hourly_task()).await.unwrap();
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let segments = used_segments(&c, DS).await;
    assert_eq!(segments.len(), 4);
    let ids: Vec<String> = segments
        .iter()
        .map(|s| s["identifier"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(files_in_deep_storage(&cluster).len(), 4);

    // By interval: only segments wholly inside it (00:00-01:30 holds hour 0 whole, hour 1 not).
    let r = send(
        Method::POST,
        coordinator("/markUnused"),
        Some(json!({"interval": "2015-09-12T00:00:00Z/2015-09-12T01:30:00Z"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"numChangedSegments": 1}));
    // By segment ids, through the Overlord's form.
    let r = send(
        Method::POST,
        overlord("/markUnused"),
        Some(json!({"segmentIds": [ids[1]]})),
    )
    .await;
    assert_eq!(r.json(), json!({"numChangedSegments": 1}));
    assert_eq!(used_segments(&c, DS).await.len(), 2);
    let intervals = send(Method::GET, coordinator("/intervals"), None).await;
    assert_eq!(intervals.json().as_array().unwrap().len(), 2);

    // One segment back, and unused again; each answers whether it changed anything.
    let one = |rest: &str| coordinator(&format!("/segments/{rest}"));
    let r = send(Method::POST, one(&ids[1]), None).await;
    assert_eq!(r.json(), json!({"segmentStateChanged": true}));
    let r = send(Method::POST, one(&ids[1]), None).await;
    assert_eq!(r.json(), json!({"segmentStateChanged": false}));
    let r = send(Method::DELETE, one(&ids[1]), None).await;
    assert_eq!(r.json(), json!({"segmentStateChanged": true}));

    // Bad requests change nothing and say why.
    for (body, says) in [
        (json!({}), "exactly one"),
        (
            json!({"interval": "2015-09-12/2015-09-13", "segmentIds": [ids[2]]}),
            "exactly one",
        ),
        (json!({"interval": "noon to three"}), "[interval]"),
        (json!({"segmentIds": []}), "[segmentIds]"),
        (json!({"segmentIds": "x"}), "[segmentIds]"),
    ] {
        let r = send(Method::POST, coordinator("/markUnused"), Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(says), "{body}: {}", r.body);
    }
    let r = send(
        Method::POST,
        "/druid/coordinator/v1/datasources/..x/markUnused".into(),
        Some(json!({"segmentIds": ["a"]})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(used_segments(&c, DS).await.len(), 2);

    // A kill task for the day: the two unused segments go, files and rows; the used stay.
    let r = send(
        Method::DELETE,
        coordinator("/intervals/2015-09-12_2015-09-13"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let kills: Vec<Value> = c.tasks("?type=kill").await.unwrap();
    let kill_id = kills
        .iter()
        .find(|t| t["dataSource"] == DS)
        .and_then(|t| t["id"].as_str())
        .expect("the kill task is listed")
        .to_string();
    let status = c.wait_complete(&kill_id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let killed = report(&c, &kill_id).await;
    assert_eq!(
        killed["killUnusedSegments"]["payload"]["numSegmentsKilled"],
        2
    );
    let rows = segment_rows_in_store(&cluster).await;
    assert_eq!(
        rows,
        vec![(ids[2].clone(), true), (ids[3].clone(), true)],
        "only the used segments' rows are left"
    );
    let files = files_in_deep_storage(&cluster);
    assert_eq!(files.len(), 2, "{files:?}");
    for s in used_segments(&c, DS).await {
        assert!(files.contains(&s["loadSpec"]["path"].as_str().unwrap().to_string()));
    }

    // A kill never touches used segments: with nothing unused it succeeds and deletes nothing.
    let again = c
        .submit(&json!({"type": "kill", "dataSource": DS, "interval": "2015-09-12/2015-09-13"}))
        .await
        .unwrap();
    let status = c.wait_complete(&again, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    assert_eq!(
        report(&c, &again).await["killUnusedSegments"]["payload"]["numSegmentsKilled"],
        0
    );
    assert_eq!(files_in_deep_storage(&cluster).len(), 2);

    // The legacy markAsUnused kills what is used in its interval (hour 2), with a limit.
    let legacy = c
        .submit(
            &json!({"type": "kill", "dataSource": DS, "markAsUnused": true,
            "interval": "2015-09-12T02:00:00Z/2015-09-12T03:00:00Z", "limit": 5, "batchSize": 1}),
        )
        .await
        .unwrap();
    let status = c.wait_complete(&legacy, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    assert_eq!(
        segment_rows_in_store(&cluster).await,
        vec![(ids[3].clone(), true)]
    );
    assert_eq!(files_in_deep_storage(&cluster).len(), 1);

    // Bad kill tasks are refused at submission, naming the field.
    for (task, says) in [
        (json!({"type": "kill", "dataSource": DS}), "interval"),
        (
            json!({"type": "kill", "dataSource": DS, "interval": "soon"}),
            "interval",
        ),
        (
            json!({"type": "kill", "interval": "2015-09-12/2015-09-13"}),
            "dataSource",
        ),
        (
            json!({"type": "kill", "dataSource": DS, "interval": "2015-09-12/2015-09-13",
                "batchSize": "ten"}),
            "batchSize",
        ),
    ] {
        let r = c
            .post("/task", serde_json::to_vec(&task).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status, 400, "{task}: {}", r.body);
        assert!(r.body.contains(says), "{task}: {}", r.body);
    }
}

/// All of a data source unused with `DELETE /datasources/{ds}`, and back with `POST`: only
/// segments nothing newer overshadows come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_data_source_goes_unused_and_comes_back_without_overshadowed_segments() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = cluster.client.clone();
    let path = format!("/druid/coordinator/v1/datasources/{DS}");
    // Two versions of the same hours: the second overwrites the first.
    for id in ["first", "second"] {
        let mut task = hourly_task();
        task["id"] = json!(id);
        let status = c
            .wait_complete(&c.submit(&task).await.unwrap(), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    }
    assert_eq!(used_segments(&c, DS).await.len(), 4);
    let r = c.send_root(Method::DELETE, &path, None).await.unwrap();
    assert_eq!(r.json(), json!({"numChangedSegments": 4}));
    assert!(used_segments(&c, DS).await.is_empty());
    let r = c.send_root(Method::POST, &path, None).await.unwrap();
    assert_eq!(r.json(), json!({"numChangedSegments": 4}));
    let back = used_segments(&c, DS).await;
    assert_eq!(back.len(), 4);
    let versions: std::collections::BTreeSet<&str> = back
        .iter()
        .map(|s| s["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        versions.len(),
        1,
        "only the newest version comes back: {back:?}"
    );
    // An unknown data source changes nothing.
    let r = c
        .send_root(
            Method::DELETE,
            "/druid/coordinator/v1/datasources/nothing-here",
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.json(), json!({"numChangedSegments": 0}));
}

/// Druid's "Configure data retention" tutorial: a rule set that keeps one day and drops the
/// rest, applied by the leader on its own; the rules' history and bad rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_rules_drop_all_but_one_day() {
    let cluster = Cluster::start(
        ClusterSpec::workers(&[2]).overlord_args(&["--coordinator-period", "300ms"]),
    )
    .await;
    let c = cluster.client.clone();
    let rules_path = format!("/druid/coordinator/v1/rules/{DS}");
    let mut data = String::new();
    for day in 12..15 {
        data.push_str(&format!(
            "{{\"ts\":\"2015-09-{day}T10:00:00Z\",\"page\":\"p\",\"n\":1}}\n"
        ));
    }
    let task = inline_index_task(
        "three-days",
        DS,
        "2015-09-12/2015-09-15",
        &data,
        json!({}),
        json!({}),
    );
    let status = c
        .wait_complete(&c.submit(&task).await.unwrap(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    assert_eq!(used_segments(&c, DS).await.len(), 3);

    // With only the default rules nothing is dropped.
    let all = c
        .get_root("/druid/coordinator/v1/rules")
        .await
        .unwrap()
        .json();
    assert_eq!(all["_default"][0]["type"], "loadForever");
    let r = c.get_root(&rules_path).await.unwrap();
    assert_eq!(r.json(), json!([]));

    // Malformed rules are refused, naming the rule and field, and change nothing.
    for (body, says) in [
        (json!({"type": "loadForever"}), "array"),
        (json!([{"type": "loadSome"}]), "[0].type"),
        (
            json!([{"type": "loadForever"}, {"type": "loadByInterval"}]),
            "[1].interval",
        ),
        (
            json!([{"type": "dropByPeriod", "period": "a while"}]),
            "[0].period",
        ),
    ] {
        let r = c
            .send_root(Method::POST, &rules_path, Some(&body))
            .await
            .unwrap();
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(says), "{body}: {}", r.body);
    }

    let rules = json!([
        {"type": "loadByInterval", "interval": "2015-09-12/2015-09-13"},
        {"type": "dropForever"}
    ]);
    let r = c
        .http_with_headers(
            Method::POST,
            &rules_path,
            &rules,
            &[("X-Druid-Author", "tutorial")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.get_root(&rules_path).await.unwrap().json(), rules);
    let full = c
        .get_root(&format!("{rules_path}?full"))
        .await
        .unwrap()
        .json();
    assert_eq!(full.as_array().unwrap().len(), 3, "{full}");

    // The leader applies them on its own: only 2015-09-12 stays used.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let used = used_segments(&c, DS).await;
        if used.len() == 1 {
            assert!(used[0]["interval"]
                .as_str()
                .unwrap()
                .starts_with("2015-09-12"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still used: {used:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let history = c
        .get_root(&format!("{rules_path}/history?count=5"))
        .await
        .unwrap()
        .json();
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history[0]["auditInfo"]["author"], "tutorial");
    assert_eq!(history[0]["type"], "rules");
}

/// Runs `outer` (with `{query}` standing for the view's query) in DuckDB, through its Python
/// package (`scripts/test` installs it), and answers the rows as JSON.
fn duckdb_rows(view_sql: &str, outer: &str) -> Value {
    let query = view_sql.trim().trim_end_matches(';');
    let sql = outer.replace("{query}", query);
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import duckdb, json, sys; print(json.dumps(duckdb.sql(sys.argv[1]).fetchall()))",
            &sql,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "DuckDB failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The rows a reader sees: those of the used segments, less the rows inside the interval of a
/// newer used segment (Druid's timeline: a finer, newer segment overshadows part of an older
/// coarse one), as `(time, animal, count, number)`.
fn current_rows(segments: &[Value]) -> Vec<(String, String, i64, i64)> {
    let mut out = Vec::new();
    for s in segments {
        let newer: Vec<(String, String)> = segments
            .iter()
            .filter(|o| o["version"].as_str() > s["version"].as_str())
            .map(|o| {
                let (a, b) = o["interval"].as_str().unwrap().split_once('/').unwrap();
                (a.to_string(), b.to_string())
            })
            .collect();
        for row in drover_scenarios::segment_rows(std::slice::from_ref(s)) {
            let time = row["__time"].as_str().unwrap().to_string();
            // Same-format ISO strings compare as instants.
            if newer.iter().any(|(a, b)| *a <= time && time < *b) {
                continue;
            }
            out.push((
                time,
                row["animal"].as_str().unwrap().to_string(),
                row["count"].as_i64().unwrap(),
                row["number"].as_i64().unwrap(),
            ));
        }
    }
    out.sort();
    out
}

/// Druid's "Update existing data" tutorial: load, overwrite, then append with a `combining`
/// input source that reads the data source's own segments (`druid`) and a new file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_tutorial_overwrites_then_appends_with_a_combining_source() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = cluster.client.clone();
    let data_dir = cluster.dir.join("tutorial-data");
    std::fs::create_dir_all(&data_dir).unwrap();
    for name in [
        "updates-data.json",
        "updates-data2.json",
        "updates-data3.json",
    ] {
        std::fs::write(data_dir.join(name), drover_scenarios::tutorial_file(name)).unwrap();
    }
    let run = |name: &str, pointer: &str| {
        let mut task: Value = serde_json::from_str(&drover_scenarios::tutorial_file(name)).unwrap();
        *task.pointer_mut(pointer).unwrap() = json!(data_dir.display().to_string());
        let c = c.clone();
        async move {
            let id = c.submit(&task).await.unwrap();
            let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
            assert_eq!(status["statusCode"], "SUCCESS", "{status}");
        }
    };
    let row = |t: &str, animal: &str, count: i64, number: i64| {
        (
            format!("2018-01-01T{t}:00.000Z"),
            animal.to_string(),
            count,
            number,
        )
    };
    const DS: &str = "updates-tutorial";

    run("updates-init-index.json", "/spec/ioConfig/firehose/baseDir").await;
    assert_eq!(
        current_rows(&used_segments(&c, DS).await),
        [
            row("01:01", "tiger", 1, 100),
            row("03:01", "aardvark", 1, 42),
            row("03:01", "giraffe", 1, 14124),
        ]
    );

    // Overwrite with daily segments: the day's rows are replaced.
    run(
        "updates-overwrite-index.json",
        "/spec/ioConfig/inputSource/baseDir",
    )
    .await;
    assert_eq!(
        current_rows(&used_segments(&c, DS).await),
        [
            row("01:01", "lion", 1, 100),
            row("03:01", "aardvark", 1, 9999),
            row("04:01", "bear", 1, 111),
        ]
    );

    // A reader without the API gets the same three rows: DuckDB over the current view's query
    // (the weekly segment is still used, partly overshadowed by the daily one).
    assert_eq!(used_segments(&c, DS).await.len(), 2);
    let sql = c
        .get_root(&format!(
            "/drover/v1/datasources/{DS}/current?format=duckdb"
        ))
        .await
        .unwrap();
    assert_eq!(sql.status, 200, "{}", sql.body);
    assert_eq!(
        duckdb_rows(
            &sql.body,
            "SELECT animal, number FROM ({query}) ORDER BY animal"
        ),
        json!([["aardvark", 9999], ["bear", 111], ["lion", 100]])
    );

    // Append: the current rows and the new file, rolled up together into a weekly segment.
    run(
        "updates-append-combining.json",
        "/spec/ioConfig/inputSource/delegates/1/baseDir",
    )
    .await;
    let segments = used_segments(&c, DS).await;
    assert_eq!(segments.len(), 1, "the week's segment overshadows the rest");
    assert_eq!(
        current_rows(&segments),
        [
            row("01:01", "lion", 2, 400),
            row("03:01", "aardvark", 1, 9999),
            row("04:01", "bear", 1, 111),
            row("05:01", "mongoose", 1, 737),
            row("06:01", "snake", 1, 1234),
            row("07:01", "octopus", 1, 115),
        ]
    );

    // Reindexing into another data source, keeping some rows and columns (the druid source's
    // filter and dimensions/metrics): only the lion's row, without `number`.
    let reindex = json!({"type": "index", "spec": {
        "dataSchema": {"dataSource": "lions", "timestampSpec": {"column": "__time", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["animal"]}, "metricsSpec": [{"type": "longSum", "name": "count", "fieldName": "count"}],
            "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none", "rollup": false,
                "intervals": ["2018-01-01/2018-01-03"]}},
        "ioConfig": {"inputSource": {"type": "druid", "dataSource": DS, "interval": "2018-01-01/2018-01-03",
            "filter": {"type": "selector", "dimension": "animal", "value": "lion"},
            "dimensions": ["animal"], "metrics": ["count"]}}}});
    let status = c
        .wait_complete(&c.submit(&reindex).await.unwrap(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let lions = drover_scenarios::segment_rows(&used_segments(&c, "lions").await);
    assert_eq!(lions.len(), 1, "{lions:?}");
    assert_eq!(lions[0]["animal"], "lion");
    assert_eq!(lions[0]["count"], 2);
    assert!(lions[0].get("number").is_none(), "{lions:?}");

    // A druid source with no data source, or a bad interval, is a 400 naming the field.
    let mut bad: Value = serde_json::from_str(&drover_scenarios::tutorial_file(
        "updates-append-combining.json",
    ))
    .unwrap();
    bad["spec"]["ioConfig"]["inputSource"]["delegates"][0]["interval"] = json!("last week");
    let r = c
        .post("/task", serde_json::to_vec(&bad).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body
            .contains("spec.ioConfig.inputSource.delegates[0].interval"),
        "{}",
        r.body
    );
}

/// Druid's "Compact segments" tutorial on wiki-like rows: many small hourly segments compacted
/// keeping their granularity, then into one day, with every row and sum kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_rows_and_sums_while_reducing_segments() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = cluster.client.clone();
    const DS: &str = "compaction-tutorial";
    let mut data = String::new();
    let mut added_total = 0i64;
    for hour in 0..24 {
        for i in 0..100 {
            let added = (hour * 100 + i) % 37;
            added_total += added;
            data.push_str(&format!(
                "{{\"time\":\"2015-09-12T{hour:02}:{:02}:{:02}Z\",\"channel\":\"#en\",\"page\":\"p{}\",\"user\":\"u{}\",\"added\":{added},\"deleted\":1}}\n",
                i % 60,
                i % 7,
                i % 13,
                i % 5
            ));
        }
    }
    // As compaction-init-index.json: hourly, at most 40 rows per segment, no rollup.
    let init = json!({"type": "index_parallel", "spec": {
        "dataSchema": {"dataSource": DS, "timestampSpec": {"column": "time", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["channel", "page", "user",
                {"name": "added", "type": "long"}, {"name": "deleted", "type": "long"}]},
            "metricsSpec": [],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none",
                "intervals": ["2015-09-12/2015-09-13"], "rollup": false}},
        "ioConfig": {"type": "index_parallel", "inputSource": {"type": "inline", "data": data},
            "inputFormat": {"type": "json"}, "appendToExisting": false},
        "tuningConfig": {"type": "index_parallel",
            "partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": 40}}}});
    let run = |task: Value| {
        let c = c.clone();
        async move {
            let id = c.submit(&task).await.unwrap();
            c.wait_complete(&id, TIMEOUT).await.unwrap()
        }
    };
    let totals = |segments: &[Value]| {
        let rows = drover_scenarios::segment_rows(segments);
        let added: i64 = rows.iter().map(|r| r["added"].as_i64().unwrap()).sum();
        (rows.len(), added)
    };
    assert_eq!(run(init).await["statusCode"], "SUCCESS");
    let before = used_segments(&c, DS).await;
    assert_eq!(before.len(), 72, "3 partitions an hour");
    assert_eq!(totals(&before), (2400, added_total));

    // compaction-keep-granularity.json, as Druid ships it.
    let keep = json!({"type": "compact", "dataSource": DS, "interval": "2015-09-12/2015-09-13",
        "tuningConfig": {"type": "index_parallel", "partitionsSpec": {"type": "dynamic"},
            "maxRowsInMemory": 25000}});
    let status = run(keep).await;
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let hourly = used_segments(&c, DS).await;
    assert_eq!(hourly.len(), 24);
    assert_eq!(totals(&hourly), (2400, added_total));
    assert!(hourly.iter().all(|s| s["version"] != before[0]["version"]));
    // The long dimensions kept their type.
    assert!(drover_scenarios::segment_rows(&hourly[..1])[0]["added"].is_i64());

    // compaction-day-granularity.json: one segment for the day.
    let day = json!({"type": "compact", "dataSource": DS, "interval": "2015-09-12/2015-09-13",
        "tuningConfig": {"type": "index_parallel", "partitionsSpec": {"type": "dynamic"},
            "maxRowsInMemory": 25000, "forceExtendableShardSpecs": true},
        "granularitySpec": {"segmentGranularity": "DAY", "queryGranularity": "none"}});
    let status = run(day).await;
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let daily = used_segments(&c, DS).await;
    assert_eq!(daily.len(), 1);
    assert_eq!(totals(&daily), (2400, added_total));

    // Nothing to compact: the task ends saying so, and nothing changes.
    let empty = json!({"type": "compact", "dataSource": DS, "interval": "2015-09-13/2015-09-14"});
    let status = run(empty).await;
    assert_eq!(status["statusCode"], "FAILED");
    assert!(
        status["errorMsg"]
            .as_str()
            .unwrap()
            .contains("nothing to compact"),
        "{status}"
    );
    assert_eq!(used_segments(&c, DS).await, daily);

    // An interval not aligned to the new granularity is refused at submission.
    let r = c
        .post(
            "/task",
            serde_json::to_vec(&json!({"type": "compact", "dataSource": DS,
                "interval": "2015-09-12T05:00:00Z/2015-09-12T07:00:00Z",
                "granularitySpec": {"segmentGranularity": "DAY"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("granularitySpec.segmentGranularity"),
        "{}",
        r.body
    );
}

/// Automatic compaction: many small hourly segments become one per day without an operator,
/// one task at a time within the slot budget, every row kept; then it leaves them alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_compaction_reduces_many_small_segments() {
    let cluster = Cluster::start(
        ClusterSpec::workers(&[2]).overlord_args(&["--coordinator-period", "300ms"]),
    )
    .await;
    let c = cluster.client.clone();
    const DS: &str = "auto-compacted";
    let mut data = String::new();
    for day in 10..13 {
        for hour in 0..6 {
            for i in 0..20 {
                data.push_str(&format!(
                    "{{\"ts\":\"2015-09-{day}T{hour:02}:{i:02}:00Z\",\"page\":\"p{}\",\"n\":1}}\n",
                    i % 3
                ));
            }
        }
    }
    let mut task = inline_index_task(
        "small",
        DS,
        "2015-09-10/2015-09-13",
        &data,
        json!({"partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": 8}}),
        json!({}),
    );
    task["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"] = json!("hour");
    let status = c
        .wait_complete(&c.submit(&task).await.unwrap(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let before = used_segments(&c, DS).await;
    assert_eq!(before.len(), 3 * 6 * 3, "3 partitions an hour");

    let path = "/druid/coordinator/v1/config/compaction";
    let bad = c
        .send_root(
            Method::POST,
            path,
            Some(&json!({"dataSource": DS, "skipOffsetFromLatest": "soon"})),
        )
        .await
        .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("skipOffsetFromLatest"), "{}", bad.body);
    let config = json!({"dataSource": DS, "skipOffsetFromLatest": "PT0S",
        "granularitySpec": {"segmentGranularity": "DAY"},
        "tuningConfig": {"partitionsSpec": {"type": "dynamic"}}});
    let r = c
        .send_root(Method::POST, path, Some(&config))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = c.get_root(path).await.unwrap().json();
    assert_eq!(stored["compactionConfigs"][0]["dataSource"], DS);
    assert_eq!(stored["compactionConfigs"][0]["taskPriority"], 25);

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let daily = loop {
        let used = used_segments(&c, DS).await;
        if used.len() == 3 {
            break used;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} segments still",
            used.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(drover_scenarios::segment_rows(&daily).len(), 360);
    assert!(daily.iter().all(|s| !s["lastCompactionState"].is_null()));
    // Three compactions, newest day first, never two at once (one slot: 2 workers × 0.1).
    let tasks = c.tasks("?type=compact").await.unwrap();
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    let status = c
        .get_root(&format!(
            "/druid/coordinator/v1/compaction/status?dataSource={DS}"
        ))
        .await
        .unwrap()
        .json();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut status = status;
    while status["latestStatus"][0]["segmentCountCompacted"] != 3 {
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        status = c
            .get_root(&format!(
                "/druid/coordinator/v1/compaction/status?dataSource={DS}"
            ))
            .await
            .unwrap()
            .json();
    }
    assert_eq!(
        status["latestStatus"][0]["segmentCountAwaitingCompaction"],
        0
    );
    // Compacted as configured: nothing more is submitted.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(c.tasks("?type=compact").await.unwrap().len(), 3);
    // The config can be removed.
    let r = c
        .send_root(Method::DELETE, &format!("{path}/{DS}"), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.get_root(&format!("{path}/{DS}")).await.unwrap();
    assert_eq!(r.status, 404);
}

/// With `kill_unused_segments` on, the leader deletes unused segments by itself once they have
/// been unused for `kill_buffer_period`: files and rows go, used segments stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_kill_deletes_old_unused_segments() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2]).overlord_args(&[
        "--kill-unused-segments",
        "true",
        "--kill-period",
        "300ms",
        "--kill-buffer-period",
        "1s",
        "--kill-duration-to-retain",
        "0s",
    ]))
    .await;
    let c = cluster.client.clone();
    let status = c
        .wait_complete(&c.submit(&hourly_task()).await.unwrap(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let ids: Vec<String> = used_segments(&c, DS)
        .await
        .iter()
        .map(|s| s["identifier"].as_str().unwrap().to_string())
        .collect();
    let r = c
        .send_root(
            Method::POST,
            &format!("/druid/coordinator/v1/datasources/{DS}/markUnused"),
            Some(&json!({"interval": "2015-09-12T00:00:00Z/2015-09-12T02:00:00Z"})),
        )
        .await
        .unwrap();
    assert_eq!(r.json(), json!({"numChangedSegments": 2}));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = segment_rows_in_store(&cluster).await;
        if rows.len() == 2 {
            assert_eq!(rows, vec![(ids[2].clone(), true), (ids[3].clone(), true)]);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still: {rows:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(files_in_deep_storage(&cluster).len(), 2);
    let kills = c.tasks("?type=kill").await.unwrap();
    assert!(
        kills.iter().all(|t| t["id"]
            .as_str()
            .unwrap()
            .starts_with("coordinator-issued_kill_")),
        "{kills:?}"
    );
}

/// Druid's "Compact segments" tutorial with its own specs and data, as shipped: the wikiticker
/// sample (39,244 rows) as 51 hourly segments of at most 1,000 rows, compacted keeping the
/// granularity (24 segments) and then into one day, every row and metric sum kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druids_compaction_tutorial_on_the_wikiticker_sample() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = cluster.client.clone();
    const DS: &str = "compaction-tutorial";
    let tutorial = |name: &str| -> Value {
        serde_json::from_str(&drover_scenarios::tutorial_file(name)).unwrap()
    };
    let data_dir = drover_ingest::tutorial::tutorial_dir();
    let mut init = tutorial("compaction-init-index.json");
    init["spec"]["ioConfig"]["inputSource"]["baseDir"] = json!(data_dir.display().to_string());
    let sums = |segments: &[Value]| {
        let rows = drover_scenarios::segment_rows(segments);
        let sum = |k: &str| rows.iter().map(|r| r[k].as_i64().unwrap_or(0)).sum::<i64>();
        (rows.len(), sum("added"), sum("deleted"), sum("delta"))
    };
    for (task, segments) in [
        (init, 51),
        (tutorial("compaction-keep-granularity.json"), 24),
        (tutorial("compaction-day-granularity.json"), 1),
    ] {
        let id = c.submit(&task).await.unwrap();
        let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
        assert_eq!(status["statusCode"], "SUCCESS", "{status}");
        let used = used_segments(&c, DS).await;
        assert_eq!(used.len(), segments, "after {}", task["type"]);
        let (rows, added, deleted, delta) = sums(&used);
        assert_eq!(rows, 39_244);
        assert_eq!(delta, added - deleted, "the sample's own invariant");
        // Same sums at every step: compared with the first.
        static FIRST: std::sync::OnceLock<(i64, i64)> = std::sync::OnceLock::new();
        assert_eq!(*FIRST.get_or_init(|| (added, deleted)), (added, deleted));
    }
}

/// Druid's "Delete data" tutorial with its own specs: the wikiticker sample as 24 hourly
/// segments, two hours marked unused by interval and two by id, then its kill task deletes
/// those four, files and rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druids_deletion_tutorial_on_the_wikiticker_sample() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = cluster.client.clone();
    let tutorial = |name: &str| -> Value {
        serde_json::from_str(&drover_scenarios::tutorial_file(name)).unwrap()
    };
    let mut index = tutorial("deletion-index.json");
    index["spec"]["ioConfig"]["inputSource"]["baseDir"] =
        json!(drover_ingest::tutorial::tutorial_dir()
            .display()
            .to_string());
    let status = c
        .wait_complete(&c.submit(&index).await.unwrap(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let segments = used_segments(&c, DS).await;
    assert_eq!(segments.len(), 24);
    let base = format!("/druid/coordinator/v1/datasources/{DS}");
    let r = c
        .send_root(
            Method::POST,
            &format!("{base}/markUnused"),
            Some(&json!({"interval": "2015-09-12T18:00:00.000Z/2015-09-12T20:00:00.000Z"})),
        )
        .await
        .unwrap();
    assert_eq!(r.json(), json!({"numChangedSegments": 2}));
    let ids: Vec<&str> = segments
        .iter()
        .filter(|s| {
            let i = s["interval"].as_str().unwrap();
            i.starts_with("2015-09-12T13") || i.starts_with("2015-09-12T14")
        })
        .map(|s| s["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let r = c
        .send_root(
            Method::POST,
            &format!("{base}/markUnused"),
            Some(&json!({"segmentIds": ids})),
        )
        .await
        .unwrap();
    assert_eq!(r.json(), json!({"numChangedSegments": 2}));
    assert_eq!(used_segments(&c, DS).await.len(), 20);
    assert_eq!(files_in_deep_storage(&cluster).len(), 24);
    let kill = tutorial("deletion-kill.json");
    let status = c
        .wait_complete(&c.submit(&kill).await.unwrap(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    assert_eq!(files_in_deep_storage(&cluster).len(), 20);
    assert_eq!(used_segments(&c, DS).await.len(), 20);
}
