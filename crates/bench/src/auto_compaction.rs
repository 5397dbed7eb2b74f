//! `drover-bench --auto-compaction SECONDS`: how a data source's segment count evolves under a
//! Kafka supervisor with automatic compaction on. Events come from librdkafka's mock cluster with
//! event times that advance one hour every two seconds (so the supervisor keeps writing new
//! hours, and finished days fall behind `skipOffsetFromLatest`); the supervisor writes hourly
//! segments with a short `taskDuration`; automatic compaction rewrites each finished day into one
//! segment. Every few seconds it prints the used segments; at the end it checks, through DuckDB
//! over the overlord's current view, that every event is there exactly once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_testkit::{ApiClient, ClusterSpec};
use rdkafka::mocking::MockCluster;
use reqwest::Method;
use serde_json::json;

use crate::ingest::row;
use crate::kafka::{producer, send, supervisor, Mock};
use crate::lifecycle::duckdb;
use crate::own_cluster;

/// How many used segments the data source has.
async fn used_segments(c: &ApiClient, ds: &str) -> anyhow::Result<usize> {
    Ok(
        c.get_root(&format!("/druid/coordinator/v1/datasources/{ds}/segments"))
            .await?
            .json()
            .as_array()
            .map_or(0, Vec::len),
    )
}

/// Real seconds per simulated hour of event time.
const SECONDS_PER_HOUR: f64 = 2.0;

pub async fn run(seconds: u64) -> anyhow::Result<()> {
    let own =
        own_cluster(ClusterSpec::workers(&[3]).overlord_args(&["--coordinator-period", "1s"]))
            .await?;
    let cluster = &own.cluster;
    let c = &cluster.client;
    let mock: Mock = MockCluster::new(1)?;
    let servers = mock.bootstrap_servers();
    let topic = "events";
    mock.create_topic(topic, 1, 1)?;
    let ds = "bench_auto_compacted";

    let r = c
        .send_root(
            Method::POST,
            "/druid/coordinator/v1/config/compaction",
            Some(&json!({"dataSource": ds, "skipOffsetFromLatest": "PT3H",
                "granularitySpec": {"segmentGranularity": "DAY"},
                "tuningConfig": {"partitionsSpec": {"type": "dynamic"}}})),
        )
        .await?;
    anyhow::ensure!(r.status == 200, "compaction config: {}", r.body);
    let r = c
        .post(
            "/supervisor",
            supervisor(ds, &servers, topic, "PT6S").to_string(),
        )
        .await?;
    anyhow::ensure!(r.status == 200, "supervisor: {}", r.body);

    // The producer: 100 events a second, their times advancing an hour every two seconds.
    let produced = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = {
        let (produced, stop) = (produced.clone(), stop.clone());
        let p = producer(&mock)?;
        let started = Instant::now();
        let base = drover_core::time::parse_iso("2015-09-12T00:00:00Z").expect("a date");
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let hours = started.elapsed().as_secs_f64() / SECONDS_PER_HOUR;
                let at = base + chrono::Duration::milliseconds((hours * 3_600_000.0) as i64);
                for _ in 0..10 {
                    let mut v = row(i);
                    v["time"] = json!(drover_core::time::to_iso(at));
                    send(&p, topic, 0, &v.to_string());
                    i += 1;
                }
                produced.store(i, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = rdkafka::producer::Producer::flush(&p, Duration::from_secs(10));
        })
    };

    println!("seconds  simulated-hours  events  used-segments  compaction-tasks");
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let used = used_segments(c, ds).await?;
        peak = peak.max(used);
        let compactions = c.tasks("?type=compact").await?.len();
        println!(
            "{:>7.0}  {:>15.1}  {:>6}  {:>13}  {:>16}",
            started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64() / SECONDS_PER_HOUR,
            produced.load(Ordering::Relaxed),
            used,
            compactions
        );
    }
    stop.store(true, Ordering::Relaxed);
    producing.join().ok();
    let total = produced.load(Ordering::Relaxed);
    // Let the supervisor publish what it has read, then count the current rows with DuckDB.
    c.post("/supervisor/bench_auto_compacted/suspend", "")
        .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let counted = loop {
        let view = c
            .get_root(&format!(
                "/drover/v1/datasources/{ds}/current?format=duckdb"
            ))
            .await?
            .body;
        let script = format!(
            "import duckdb\nq = {view:?}.strip().rstrip(';')\nprint(duckdb.sql(f'SELECT count(*) FROM ({{q}})').fetchall()[0][0])"
        );
        // A DuckDB error (not installed, say) ends the run once the deadline has passed.
        let n: usize = match duckdb(&script) {
            Ok(line) => line.parse().unwrap_or(0),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => 0,
        };
        if n >= total || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let used = used_segments(c, ds).await?;
    println!(
        "after {seconds} s: {total} events produced, {counted} rows in the current view (DuckDB); \
         {used} used segments at the end, {peak} at the peak"
    );
    drop(own);
    Ok(())
}
