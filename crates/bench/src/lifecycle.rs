//! `drover-bench --lifecycle ROWS`: the segment-lifecycle figures. Compaction: ROWS wikipedia-like
//! rows in many small hourly segments compacted into one day by a `compact` task (its peon reads
//! and rewrites on one thread, so its rows/s is per core), beside DuckDB on one thread rewriting
//! the same current rows into one Parquet file, in the same run. Kill: 10,000 one-row segments
//! marked unused, then deleted by one `kill` task.

use std::io::Write;
use std::time::{Duration, Instant};

use drover_testkit::ClusterSpec;
use reqwest::Method;
use serde_json::{json, Value};

use crate::ingest::{dimensions_and_metrics, number_before, row};
use crate::own_cluster;

const TIMEOUT: Duration = Duration::from_secs(3600);

fn index_task(id: &str, data_source: &str, dir: &str, max_rows_per_segment: usize) -> Value {
    let (dimensions, metrics, query) = dimensions_and_metrics(false);
    json!({"type": "index", "id": id, "spec": {
        "dataSchema": {"dataSource": data_source, "timestampSpec": {"column": "time", "format": "iso"},
            "dimensionsSpec": {"dimensions": dimensions}, "metricsSpec": metrics,
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": query,
                                "rollup": false, "intervals": ["2015-09-12/2015-09-13"]}},
        "ioConfig": {"type": "index", "inputSource": {"type": "local", "baseDir": dir, "filter": "*.json"},
                     "inputFormat": {"type": "json"}},
        "tuningConfig": {"type": "index", "partitionsSpec": {"type": "dynamic",
            "maxRowsPerSegment": max_rows_per_segment}}}})
}

/// Runs a DuckDB script on one thread through its Python package; answers what it prints.
pub(crate) fn duckdb(script: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "DuckDB (python3 -c ...) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub async fn run(rows: usize) -> anyhow::Result<()> {
    let own = own_cluster(ClusterSpec::workers(&[2])).await?;
    let cluster = &own.cluster;
    let c = &cluster.client;
    let data_dir = cluster.dir.join("bench-data");
    std::fs::create_dir_all(&data_dir)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(data_dir.join("wiki.json"))?);
    for i in 0..rows {
        writeln!(out, "{}", row(i))?;
    }
    out.flush()?;

    // 1. Compaction: many small hourly segments into one day.
    let per_segment = (rows / 200).max(1);
    let ds = "bench_compaction";
    let id = c
        .submit(&index_task(
            "bench_small_segments",
            ds,
            &data_dir.display().to_string(),
            per_segment,
        ))
        .await?;
    let status = c.wait_complete(&id, TIMEOUT).await?;
    anyhow::ensure!(status["statusCode"] == "SUCCESS", "{status}");
    let before: Vec<Value> = c
        .get_root(&format!(
            "/druid/coordinator/v1/datasources/{ds}/segments?full"
        ))
        .await?
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default();
    let view = c
        .get_root(&format!(
            "/drover/v1/datasources/{ds}/current?format=duckdb"
        ))
        .await?
        .body;
    let compact = json!({"type": "compact", "id": "bench_compact", "dataSource": ds,
        "interval": "2015-09-12/2015-09-13",
        "granularitySpec": {"segmentGranularity": "DAY"},
        "tuningConfig": {"partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": rows + 1}}});
    c.submit(&compact).await?;
    let status = c.wait_complete("bench_compact", TIMEOUT).await?;
    anyhow::ensure!(status["statusCode"] == "SUCCESS", "{status}");
    let log = c.log("bench_compact").await?.unwrap_or_default();
    let segments_ms = number_before(&log, "druid input", "ms").unwrap_or(0);
    let read_ms = number_before(&log, "input row(s) in", "ms").unwrap_or(0);
    let write_ms = number_before(&log, "merged and wrote", "ms").unwrap_or(0);
    let task_ms = status["duration"].as_i64().unwrap_or(0);
    let after = c
        .get_root(&format!("/druid/coordinator/v1/datasources/{ds}/segments"))
        .await?
        .json();
    println!(
        "compaction of {rows} rows: {} hourly segments -> {} (DAY); segments read back into rows {segments_ms} ms; \
         parse+rebuild {read_ms} ms = {:.0} rows/s/core; merge+Parquet {write_ms} ms; whole task {task_ms} ms = {:.0} rows/s",
        before.len(),
        after.as_array().map_or(0, Vec::len),
        rows as f64 / (read_ms.max(1) as f64 / 1000.0),
        rows as f64 / (task_ms.max(1) as f64 / 1000.0),
    );
    // DuckDB, one thread, rewriting the same current rows (the view's query) sorted by time.
    let target = cluster.dir.join("duckdb-compacted.parquet");
    let script = format!(
        "import duckdb, time\ncon = duckdb.connect()\ncon.execute('SET threads = 1')\n\
         q = {view:?}.strip().rstrip(';')\nstart = time.time()\n\
         con.execute(f\"COPY (SELECT * FROM ({{q}}) ORDER BY __time) TO '{}' (FORMAT parquet)\")\n\
         ms = (time.time() - start) * 1000\n\
         n = con.execute(\"SELECT count(*) FROM read_parquet('{}')\").fetchone()[0]\n\
         print(f'{{n}} {{ms:.0f}}')",
        target.display(),
        target.display()
    );
    match duckdb(&script) {
        Ok(line) => {
            let mut parts = line.split_whitespace();
            let n: f64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0.0);
            let ms: f64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0.0);
            println!(
                "DuckDB (1 thread) rewriting the same {n:.0} rows into one Parquet file: {ms:.0} ms = {:.0} rows/s",
                n / (ms.max(1.0) / 1000.0)
            );
        }
        Err(e) => println!("DuckDB baseline not run: {e}"),
    }

    // 2. Kill: 10,000 one-row segments, marked unused, then deleted by one task.
    let kill_rows = 10_000;
    let kill_dir = cluster.dir.join("kill-data");
    std::fs::create_dir_all(&kill_dir)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(kill_dir.join("rows.json"))?);
    for i in 0..kill_rows {
        writeln!(out, "{}", row(i * 8))?;
    }
    out.flush()?;
    let ds = "bench_kill";
    let started = Instant::now();
    let id = c
        .submit(&index_task(
            "bench_many_segments",
            ds,
            &kill_dir.display().to_string(),
            1,
        ))
        .await?;
    let status = c.wait_complete(&id, TIMEOUT).await?;
    anyhow::ensure!(status["statusCode"] == "SUCCESS", "{status}");
    println!(
        "ingested {kill_rows} one-row segments in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let marked = c
        .send_root(
            Method::DELETE,
            &format!("/druid/coordinator/v1/datasources/{ds}"),
            None,
        )
        .await?;
    println!(
        "DELETE /datasources/{ds} (mark all unused): {} in {:.0} ms",
        marked.body,
        started.elapsed().as_secs_f64() * 1000.0
    );
    let kill = json!({"type": "kill", "id": "bench_kill_task", "dataSource": ds,
        "interval": "2015-09-12/2015-09-13"});
    let started = Instant::now();
    c.submit(&kill).await?;
    let status = c.wait_complete("bench_kill_task", TIMEOUT).await?;
    anyhow::ensure!(status["statusCode"] == "SUCCESS", "{status}");
    let report = c.get("/task/bench_kill_task/reports").await?.json();
    let deep = cluster.deep_storage_dir.join(ds);
    let left = walk_files(&deep);
    println!(
        "kill of {} unused segments (batchSize 100): task {} ms, submit to SUCCESS {:.0} ms; {left} file(s) left",
        report["killUnusedSegments"]["payload"]["numSegmentsKilled"],
        status["duration"],
        started.elapsed().as_secs_f64() * 1000.0
    );
    drop(own);
    Ok(())
}

fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_files(&p)
            } else {
                1
            }
        })
        .sum()
}
