//! `drover-bench --ingest`: JSON batch ingestion of generated wikipedia-like rows through a real
//! cluster (one overlord, one middle manager), rollup off and on. The peon reads, rolls up and
//! writes on one thread, so rows/s of its read phase is rows/s per core. Its log reports the
//! read, merge+write and upload times, the runs spilled and its peak RSS.

use std::io::Write;
use std::time::{Duration, Instant};

use drover_testkit::ClusterSpec;
use serde_json::{json, Value};

use crate::own_cluster;

const CHANNELS: [&str; 7] = ["en", "de", "fr", "ja", "ru", "it", "es"];
const COUNTRIES: [(&str, &str); 4] = [
    ("US", "United States"),
    ("DE", "Germany"),
    ("FR", "France"),
    ("JP", "Japan"),
];

/// One wikipedia-like row: the 19 fields of Druid's wikiticker sample.
pub fn row(i: usize) -> Value {
    let (iso, country) = COUNTRIES[i % 4];
    json!({
        "time": format!("2015-09-12T{:02}:{:02}:{:02}.{:03}Z", (i / 3600) % 24, (i / 60) % 60, i % 60, i % 1000),
        "channel": format!("#{}.wikipedia", CHANNELS[i % 7]),
        "cityName": if i.is_multiple_of(4) { Value::Null } else { json!(format!("City {}", i % 97)) },
        "comment": format!("/* section {} */ edit number {i}", i % 13),
        "countryIsoCode": iso, "countryName": country,
        "isAnonymous": i.is_multiple_of(3), "isMinor": i.is_multiple_of(2), "isNew": i.is_multiple_of(5), "isRobot": i.is_multiple_of(11),
        "isUnpatrolled": false, "metroCode": Value::Null, "namespace": "Main",
        "page": format!("Page title number {}", i % 5000), "regionIsoCode": Value::Null, "regionName": Value::Null,
        "user": format!("User{}", i % 2000),
        "added": (i * 7 % 1000) as i64, "deleted": (i % 37) as i64, "delta": (i * 7 % 1000) as i64 - (i % 37) as i64
    })
}

/// Rollup off: every field (3 typed long). Rollup on: 5 dimensions, hourly, count + 3 longSums.
/// Returns the dimensions, the metrics and the query granularity.
pub fn dimensions_and_metrics(rollup: bool) -> (Value, Value, &'static str) {
    if rollup {
        (
            json!(["channel", "countryIsoCode", "isRobot", "namespace", "page"]),
            json!([{"type": "count", "name": "count"},
                   {"type": "longSum", "name": "added", "fieldName": "added"},
                   {"type": "longSum", "name": "deleted", "fieldName": "deleted"},
                   {"type": "longSum", "name": "delta", "fieldName": "delta"}]),
            "hour",
        )
    } else {
        (
            json!(["channel", "cityName", "comment", "countryIsoCode", "countryName", "isAnonymous",
                   "isMinor", "isNew", "isRobot", "isUnpatrolled", "metroCode", "namespace", "page",
                   "regionIsoCode", "regionName", "user",
                   {"name": "added", "type": "long"}, {"name": "deleted", "type": "long"},
                   {"name": "delta", "type": "long"}]),
            json!([]),
            "none",
        )
    }
}

fn task(id: &str, dir: &str, rollup: bool, max_rows_in_memory: Option<u64>) -> Value {
    let (dimensions, metrics, query) = dimensions_and_metrics(rollup);
    json!({"type": "index", "id": id, "spec": {
        "dataSchema": {"dataSource": id, "timestampSpec": {"column": "time", "format": "iso"},
            "dimensionsSpec": {"dimensions": dimensions}, "metricsSpec": metrics,
            "granularitySpec": {"segmentGranularity": "day", "queryGranularity": query,
                                "rollup": rollup, "intervals": ["2015-09-12/2015-09-13"]}},
        "ioConfig": {"type": "index", "inputSource": {"type": "local", "baseDir": dir, "filter": "*.json"},
                     "inputFormat": {"type": "json"}},
        "tuningConfig": {"type": "index", "maxRowsInMemory": max_rows_in_memory}}})
}

/// The number just before the word `unit` on the first log line containing `line_start`.
pub fn number_before(log: &str, line_start: &str, unit: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(line_start))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.trim_end_matches([';', ':', ',']) == unit)?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

pub async fn run(rows: usize) -> anyhow::Result<()> {
    let own = own_cluster(ClusterSpec::workers(&[1])).await?;
    let cluster = &own.cluster;
    let data_dir = cluster.dir.join("bench-data");
    std::fs::create_dir_all(&data_dir)?;
    let started = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(data_dir.join("wiki.json"))?);
    for i in 0..rows {
        writeln!(out, "{}", row(i))?;
    }
    out.flush()?;
    let bytes = std::fs::metadata(data_dir.join("wiki.json"))?.len();
    println!(
        "generated {rows} wikipedia-like rows ({:.0} MB of JSON) in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    // Druid's default maxRowsInMemory (1,000,000), then a tenth of it to show spilling.
    for (id, rollup, max_rows_in_memory) in [
        ("bench_rollup_off", false, None),
        ("bench_rollup_on", true, None),
        ("bench_rollup_off_spilling", false, Some(100_000)),
    ] {
        let t = task(
            id,
            &data_dir.display().to_string(),
            rollup,
            max_rows_in_memory,
        );
        cluster.client.submit(&t).await?;
        let status = cluster
            .client
            .wait_complete(id, Duration::from_secs(1800))
            .await?;
        anyhow::ensure!(status["statusCode"] == "SUCCESS", "{id}: {status}");
        let log = cluster.client.log(id).await?.unwrap_or_default();
        let read_ms = number_before(&log, "input row(s) in", "ms").unwrap_or(0);
        let spills = number_before(&log, "input row(s) in", "sorted").unwrap_or(0);
        let write_ms = number_before(&log, "merged and wrote", "ms").unwrap_or(0);
        let upload_ms = number_before(&log, "uploaded", "ms").unwrap_or(0);
        let rss_kb = number_before(&log, "uploaded", "kB").unwrap_or(0);
        let task_ms = status["duration"].as_i64().unwrap_or(0);
        let stored: Vec<Value> = serde_json::from_str(
            &cluster
                .client
                .get_root(&format!(
                    "/druid/coordinator/v1/metadata/datasources/{id}/segments?full"
                ))
                .await?
                .body,
        )?;
        let size: u64 = stored.iter().filter_map(|s| s["size"].as_u64()).sum();
        println!(
            "rollup {:<3} maxRowsInMemory {:>9}: read+parse+rollup {:>6} ms = {:>9.0} rows/s/core ({} run(s) spilled); \
             merge+Parquet {:>5} ms; upload {:>4} ms; whole task {:>6} ms = {:>9.0} rows/s; \
             peak peon RSS {:.1} MB; {} segment(s), {:.1} MB",
            if rollup { "on" } else { "off" },
            max_rows_in_memory.unwrap_or(1_000_000),
            read_ms,
            rows as f64 / (read_ms.max(1) as f64 / 1000.0),
            spills,
            write_ms,
            upload_ms,
            task_ms,
            rows as f64 / (task_ms.max(1) as f64 / 1000.0),
            rss_kb as f64 / 1024.0,
            stored.len(),
            size as f64 / 1e6,
        );
    }
    drop(own);
    Ok(())
}
