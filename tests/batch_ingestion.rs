//! Native batch ingestion end to end: Druid's tutorial specs and other formats POSTed to the
//! overlord, run by peons, published as Parquet segments, listed through the coordinator
//! metadata routes and read back from deep storage. Expected values are computed here from the
//! input, never copied from the output.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use drover_scenarios::serve_http;
use drover_scenarios::{report, segment_rows, tutorial_file, used_segments, Cluster, ClusterSpec};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(120);

async fn run_to_success(cluster: &Cluster, task: &Value) -> String {
    let id = cluster.client.submit(task).await.unwrap();
    let status = cluster.client.wait_complete(&id, TIMEOUT).await.unwrap();
    if status["statusCode"] != "SUCCESS" {
        cluster.fail(format!("task {id} did not succeed: {status}"));
    }
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn rollup_tutorial_spec_as_druid_ships_it() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let data_dir = cluster.dir.join("tutorial-data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let data = tutorial_file("rollup-data.json");
    std::fs::write(data_dir.join("rollup-data.json"), &data).unwrap();

    let mut task: Value = serde_json::from_str(&tutorial_file("rollup-index.json")).unwrap();
    task["spec"]["ioConfig"]["inputSource"]["baseDir"] = json!(data_dir.display().to_string());
    let id = run_to_success(&cluster, &task).await;

    // Expected: rows rolled up per minute and (srcIP, dstIP), summed.
    let mut expected: BTreeMap<(String, String, String), (i64, i64, i64)> = BTreeMap::new();
    let lines: Vec<Value> = data
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for r in &lines {
        let ts = r["timestamp"].as_str().unwrap();
        let minute = format!("{}:00.000Z", &ts[..16]);
        let e = expected
            .entry((
                minute,
                r["srcIP"].as_str().unwrap().into(),
                r["dstIP"].as_str().unwrap().into(),
            ))
            .or_default();
        e.0 += 1;
        e.1 += r["packets"].as_i64().unwrap();
        e.2 += r["bytes"].as_i64().unwrap();
    }

    let r = cluster
        .client
        .get_root("/druid/coordinator/v1/metadata/datasources")
        .await
        .unwrap();
    assert_eq!(r.json(), json!(["rollup-tutorial"]));
    let segments = used_segments(&cluster.client, "rollup-tutorial").await;
    let days: Vec<&str> = segments
        .iter()
        .map(|s| s["interval"].as_str().unwrap())
        .collect();
    assert_eq!(
        days,
        [
            "2018-01-01T00:00:00.000Z/2018-01-02T00:00:00.000Z",
            "2018-01-02T00:00:00.000Z/2018-01-03T00:00:00.000Z"
        ],
        "two daily segments"
    );
    for s in &segments {
        assert_eq!(s["dimensions"], "srcIP,dstIP");
        assert_eq!(s["metrics"], "count,packets,bytes");
        assert_eq!(s["shardSpec"]["type"], "numbered");
        assert!(s["size"].as_u64().unwrap() > 0);
    }
    let rows = segment_rows(&segments);
    let got: BTreeMap<(String, String, String), (i64, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                (
                    r["__time"].as_str().unwrap().to_string(),
                    r["srcIP"].as_str().unwrap().to_string(),
                    r["dstIP"].as_str().unwrap().to_string(),
                ),
                (
                    r["count"].as_i64().unwrap(),
                    r["packets"].as_i64().unwrap(),
                    r["bytes"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(got, expected);

    // The Coordinator's data-source routes describe the same used segments.
    let coordinator = |path: &str| {
        let path = format!("/druid/coordinator/v1/datasources{path}");
        let c = cluster.client.clone();
        async move { c.get_root(&path).await.unwrap() }
    };
    assert_eq!(coordinator("").await.json(), json!(["rollup-tutorial"]));
    let simple = coordinator("?simple").await.json();
    assert_eq!(simple[0]["name"], "rollup-tutorial");
    assert_eq!(simple[0]["properties"]["segments"]["count"], 2);
    let summary = coordinator("/rollup-tutorial").await.json();
    assert_eq!(summary["segments"]["minTime"], "2018-01-01T00:00:00.000Z");
    assert_eq!(summary["segments"]["maxTime"], "2018-01-03T00:00:00.000Z");
    assert_eq!(
        coordinator("/rollup-tutorial/intervals").await.json(),
        json!([
            "2018-01-02T00:00:00.000Z/2018-01-03T00:00:00.000Z",
            "2018-01-01T00:00:00.000Z/2018-01-02T00:00:00.000Z"
        ])
    );
    let ids = coordinator("/rollup-tutorial/segments").await.json();
    assert_eq!(ids.as_array().unwrap().len(), 2);
    let first = ids[0].as_str().unwrap().to_string();
    let one = coordinator(&format!("/rollup-tutorial/segments/{first}")).await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["identifier"], first.as_str());
    let full = coordinator("/rollup-tutorial/segments?full").await.json();
    assert_eq!(full[0]["identifier"], first.as_str());
    assert_eq!(
        coordinator("/rollup-tutorial/segments/nope").await.status,
        404
    );
    assert_eq!(coordinator("/no-such-data-source").await.status, 204);
    assert_eq!(coordinator("/..bad").await.status, 400);

    // `drover-segment <file> | head` ends quietly when its reader goes away first.
    let path = segments[0]["loadSpec"]["path"].as_str().unwrap();
    let mut child = std::process::Command::new(drover_testkit::binary("drover-segment"))
        .arg(path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{:?}: {stderr}",
        out.status
    );

    let report = report(&cluster.client, &id).await;
    let payload = &report["ingestionStatsAndErrors"]["payload"];
    assert_eq!(payload["ingestionState"], "COMPLETED");
    assert_eq!(
        payload["rowStats"]["buildSegments"]["processed"],
        lines.len() as u64
    );
    assert_eq!(payload["rowStats"]["buildSegments"]["unparseable"], 0);
    // The log outlives the task directory, which the middle manager removed.
    let log = cluster.client.log(&id).await.unwrap().unwrap();
    assert!(log.contains("published 2 segment(s)"), "{log}");
}

/// Wikipedia-like edits: the fields of Druid's wikiticker sample.
fn wiki_row(i: usize, time: &str) -> Value {
    json!({
        "time": time, "channel": format!("#ch{}", i % 7), "cityName": null,
        "comment": format!("edit {i}"), "countryIsoCode": null, "countryName": null,
        "isAnonymous": i.is_multiple_of(3), "isMinor": false, "isNew": i.is_multiple_of(5), "isRobot": false,
        "isUnpatrolled": false, "metroCode": null, "namespace": "Main",
        "page": format!("Page {}", i % 1000), "regionIsoCode": null, "regionName": null,
        "user": format!("user{}", i % 300), "added": (i % 500) as i64, "deleted": (i % 17) as i64,
        "delta": (i % 500) as i64 - (i % 17) as i64
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn wikipedia_legacy_spec_over_gzipped_rows() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let data_dir = cluster.dir.join("wiki-data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let file =
        std::fs::File::create(data_dir.join("wikiticker-2015-09-12-sampled.json.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let total = 50_000;
    let mut in_interval = BTreeMap::new();
    for i in 0..total {
        // Every 50th row falls on the next day, outside the spec's interval.
        let day = if i % 50 == 49 { 13 } else { 12 };
        let time = format!(
            "2015-09-{day}T{:02}:{:02}:{:02}.{:03}Z",
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60,
            i % 1000
        );
        let row = wiki_row(i, &time);
        writeln!(gz, "{row}").unwrap();
        if day == 12 {
            in_interval.insert(format!("edit {i}"), row);
        }
    }
    gz.finish().unwrap();

    let mut task: Value = serde_json::from_str(&tutorial_file("wikipedia-index.json")).unwrap();
    task["spec"]["ioConfig"]["firehose"]["baseDir"] = json!(data_dir.display().to_string());
    let id = run_to_success(&cluster, &task).await;

    let segments = used_segments(&cluster.client, "wikipedia").await;
    assert_eq!(segments.len(), 1);
    assert_eq!(
        segments[0]["interval"],
        "2015-09-12T00:00:00.000Z/2015-09-13T00:00:00.000Z"
    );
    let rows = segment_rows(&segments);
    assert_eq!(rows.len(), in_interval.len(), "every in-interval row, once");
    for r in &rows {
        let source = &in_interval[r["comment"].as_str().unwrap()];
        for long in ["added", "deleted", "delta"] {
            assert!(r[long].is_i64(), "{long} is an integer: {r}");
            assert_eq!(r[long], source[long]);
        }
        assert_eq!(r["page"], source["page"]);
        assert_eq!(r["__time"], source["time"]);
        assert_eq!(r["isAnonymous"], source["isAnonymous"].to_string());
    }
    let stats = &report(&cluster.client, &id).await["ingestionStatsAndErrors"]["payload"]
        ["rowStats"]["buildSegments"];
    assert_eq!(stats["processed"], in_interval.len() as u64);
    assert_eq!(stats["thrownAway"], (total - in_interval.len()) as u64);
    // The spec's maxRowsInMemory (25000) is below the 49,000 rows: the peon spilled sorted runs
    // to disk and merged them, and the rows above are still each there once.
    let log = cluster.client.log(&id).await.unwrap().unwrap_or_default();
    let spilled = log
        .lines()
        .find_map(|l| {
            l.split("; ")
                .nth(1)?
                .strip_suffix(" sorted run(s) spilled to disk")
        })
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(
        spilled.is_some_and(|n| n >= 1),
        "no spill in the log:\n{log}"
    );
}

fn index_task(data_source: &str, input_source: Value, input_format: Value, schema: Value) -> Value {
    let mut data_schema = json!({
        "dataSource": data_source,
        "timestampSpec": {"column": "ts", "format": "auto"},
        "dimensionsSpec": {"dimensions": []},
        "metricsSpec": [],
        "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none", "rollup": false}
    });
    for (k, v) in schema.as_object().unwrap() {
        data_schema[k] = v.clone();
    }
    json!({"type": "index_parallel", "spec": {
        "dataSchema": data_schema,
        "ioConfig": {"type": "index_parallel", "inputSource": input_source, "inputFormat": input_format},
        "tuningConfig": {"type": "index_parallel"}
    }})
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_tsv_filters_and_schemaless_discovery() {
    // The http input below is served by this test on 127.0.0.1, which ingestion refuses unless
    // the operator allows it.
    let allow = ["--ingestion-http-allowed-hosts", "127.0.0.1"];
    let mut spec = ClusterSpec::workers(&[3]).overlord_args(&allow);
    spec.middle_managers[0].extra_args = allow.iter().map(|s| s.to_string()).collect();
    let cluster = Cluster::start(spec).await;
    let dir = cluster.dir.join("formats");
    std::fs::create_dir_all(&dir).unwrap();

    // CSV with a header row, through a local baseDir + filter.
    let csv_rows = [
        ("2024-03-01T10:00:00Z", "a", 3),
        ("2024-03-01T11:00:00Z", "b", 4),
        ("2024-03-02T09:00:00Z", "c", 5),
    ];
    let mut csv = String::from("ts,page,n\n");
    for (ts, p, n) in csv_rows {
        csv.push_str(&format!("{ts},{p},{n}\n"));
    }
    std::fs::write(dir.join("data.csv"), &csv).unwrap();
    let csv_task = index_task(
        "csv_ds",
        json!({"type": "local", "baseDir": dir.display().to_string(), "filter": "*.csv"}),
        json!({"type": "csv", "findColumnsFromHeader": true}),
        json!({"dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "n"}]}}),
    );
    // TSV with explicit columns, through a files list.
    let tsv = "2024-03-01T10:00:00Z\tx\t1\n2024-03-01T10:30:00Z\ty\t2\n";
    std::fs::write(dir.join("data.tsv"), tsv).unwrap();
    let tsv_task = index_task(
        "tsv_ds",
        json!({"type": "local", "files": [dir.join("data.tsv").display().to_string()]}),
        json!({"type": "tsv", "columns": ["ts", "page", "n"]}),
        json!({"dimensionsSpec": {"dimensions": ["page"]},
               "metricsSpec": [{"type": "longSum", "name": "n", "fieldName": "n"}]}),
    );
    // A transform filter keeping only some rows of inline JSON.
    let json_rows: Vec<Value> = (0..40)
        .map(|i| json!({"ts": format!("2024-03-01T00:{:02}:00Z", i), "page": format!("p{}", i % 4), "n": i}))
        .collect();
    let inline: String = json_rows.iter().map(|r| format!("{r}\n")).collect();
    let filter = json!({"type": "and", "fields": [
        {"type": "in", "dimension": "page", "values": ["p1", "p2"]},
        {"type": "not", "field": {"type": "selector", "dimension": "n", "value": "1"}}
    ]});
    let filter_task = index_task(
        "filter_ds",
        json!({"type": "inline", "data": inline}),
        json!({"type": "json"}),
        json!({"dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "n"}]},
               "transformSpec": {"filter": filter}}),
    );
    // Expression transforms over CSV (every field a string, as in Druid): arithmetic reads
    // numeric strings, `+` with a string concatenates, and the filter sees transformed fields.
    let transform_task = index_task(
        "transform_ds",
        json!({"type": "local", "baseDir": dir.display().to_string(), "filter": "*.csv"}),
        json!({"type": "csv", "findColumnsFromHeader": true}),
        json!({"dimensionsSpec": {"dimensions": ["label", {"type": "long", "name": "n10"}]},
               "transformSpec": {
                   "transforms": [
                       {"type": "expression", "name": "label", "expression": "concat(page, '-', n)"},
                       {"type": "expression", "name": "n10", "expression": "n * 10 + 1"}],
                   "filter": {"type": "bound", "dimension": "n10", "lower": "40", "ordering": "numeric"}}}),
    );
    // Schemaless: no dimensions listed, every field but the timestamp becomes one.
    let schemaless = "{\"ts\":\"2024-03-01T00:00:00Z\",\"a\":\"1\"}\n{\"ts\":\"2024-03-01T00:01:00Z\",\"b\":\"2\",\"c\":\"x\"}\n";
    let schemaless_task = index_task(
        "schemaless_ds",
        json!({"type": "inline", "data": schemaless}),
        json!({"type": "json"}),
        json!({}),
    );

    // An http source: gzipped JSON served by this test.
    let http_rows: String = (0..25)
        .map(|i| format!("{{\"ts\":\"2024-03-05T00:00:{i:02}Z\",\"page\":\"h{i}\"}}\n"))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(http_rows.as_bytes()).unwrap();
    let url = serve_once(gz.finish().unwrap()).await;
    let http_task = index_task(
        "http_ds",
        json!({"type": "http", "uris": [format!("{url}/data/rows.json.gz")]}),
        json!({"type": "json"}),
        json!({"dimensionsSpec": {"dimensions": ["page"]}}),
    );

    // What cannot run is refused at submission, naming the field.
    let unsupported = index_task(
        "bad_ds",
        json!({"type": "inline", "data": inline}),
        json!({"type": "json"}),
        json!({"transformSpec": {"transforms": [
            {"type": "expression", "name": "x", "expression": "lower(page)"}]}}),
    );
    let r = cluster
        .client
        .post("/task", unsupported.to_string())
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body
            .contains("spec.dataSchema.transformSpec.transforms[0].expression")
            && r.body.contains("[lower] is not supported"),
        "{}",
        r.body
    );

    let mut ids = Vec::new();
    for t in [
        &csv_task,
        &tsv_task,
        &filter_task,
        &schemaless_task,
        &http_task,
        &transform_task,
    ] {
        ids.push(cluster.client.submit(t).await.unwrap());
    }
    for id in &ids {
        let s = cluster.client.wait_complete(id, TIMEOUT).await.unwrap();
        assert_eq!(s["statusCode"], "SUCCESS", "{id}: {s}");
    }

    let csv_rows_got = segment_rows(&used_segments(&cluster.client, "csv_ds").await);
    let mut got: Vec<(String, String, i64)> = csv_rows_got
        .iter()
        .map(|r| {
            (
                r["__time"].as_str().unwrap().replace(".000Z", "Z"),
                r["page"].as_str().unwrap().into(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let expected: Vec<(String, String, i64)> = csv_rows
        .iter()
        .map(|(t, p, n)| (t.to_string(), p.to_string(), *n))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        used_segments(&cluster.client, "csv_ds").await.len(),
        2,
        "two days"
    );

    let tsv_got = segment_rows(&used_segments(&cluster.client, "tsv_ds").await);
    let pages: Vec<&str> = tsv_got
        .iter()
        .map(|r| r["page"].as_str().unwrap())
        .collect();
    assert_eq!(pages, ["x", "y"]);
    assert_eq!(
        tsv_got
            .iter()
            .map(|r| r["n"].as_i64().unwrap())
            .sum::<i64>(),
        3
    );

    let kept: Vec<i64> = json_rows
        .iter()
        .filter(|r| ["p1", "p2"].contains(&r["page"].as_str().unwrap()) && r["n"] != 1)
        .map(|r| r["n"].as_i64().unwrap())
        .collect();
    let mut filtered: Vec<i64> = segment_rows(&used_segments(&cluster.client, "filter_ds").await)
        .iter()
        .map(|r| r["n"].as_i64().unwrap())
        .collect();
    filtered.sort();
    assert_eq!(filtered, kept);
    let stats = &report(&cluster.client, &ids[2]).await["ingestionStatsAndErrors"]["payload"]
        ["rowStats"]["buildSegments"];
    assert_eq!(stats["thrownAway"], (json_rows.len() - kept.len()) as u64);

    let http_got = segment_rows(&used_segments(&cluster.client, "http_ds").await);
    assert_eq!(http_got.len(), 25, "every row of the downloaded .gz file");

    let mut transformed: Vec<(String, i64)> =
        segment_rows(&used_segments(&cluster.client, "transform_ds").await)
            .iter()
            .map(|r| {
                (
                    r["label"].as_str().unwrap().into(),
                    r["n10"].as_i64().unwrap(),
                )
            })
            .collect();
    transformed.sort();
    let expected: Vec<(String, i64)> = csv_rows
        .iter()
        .map(|(_, p, n)| (format!("{p}-{n}"), n * 10 + 1))
        .filter(|(_, n10)| *n10 >= 40)
        .collect();
    assert_eq!(transformed, expected);

    let segs = used_segments(&cluster.client, "schemaless_ds").await;
    assert_eq!(segs[0]["dimensions"], "a,b,c");
    let rows = segment_rows(&segs);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["a"], "1");
    assert_eq!(rows[0]["b"], Value::Null);
    assert_eq!(rows[1]["c"], "x");
}

/// Serves `body` to every GET on a local port (a minimal HTTP/1.1 server for the http source).
async fn serve_once(body: Vec<u8>) -> String {
    let port = serve_http("200 OK\r\nContent-Type: application/gzip", body).await;
    format!("http://127.0.0.1:{port}")
}
