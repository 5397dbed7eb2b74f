//! `drover-bench --kafka N`: streaming ingestion through a real cluster (ZooKeeper, one overlord,
//! one middle manager) from librdkafka's mock cluster, which runs inside this process and serves
//! the real Kafka protocol on a local port. Three measurements:
//!
//! 1. one `index_kafka` task reading N wikipedia-like JSON messages of one partition, rollup off
//!    and on: its reading loop parses and rolls up on one thread, so messages/s of its read phase
//!    is messages/s per core (the peon's log says how long it took from the first message to
//!    the last);
//! 2. produce → published: a supervisor with a short `taskDuration`, one event every 250 ms, and
//!    the moment `druid_dataSource` holds an offset past each event (the segment holding it is
//!    published in the same transaction);
//! 3. kill -9 of a reading peon → the supervisor's replacement task exists, runs, and reads.

use std::time::{Duration, Instant};

use drover_metadata::MetadataStore;
use drover_testkit::{ApiClient, Cluster, ClusterSpec};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::ingest::{dimensions_and_metrics, number_before, row};
use crate::{own_cluster, percentile};

pub(crate) type Mock = MockCluster<'static, rdkafka::producer::DefaultProducerContext>;

pub(crate) fn producer(mock: &Mock) -> anyhow::Result<BaseProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("linger.ms", "5")
        .set("batch.num.messages", "1000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

/// librdkafka's mock broker keeps about 5 MB per partition (rdkafka_mock.c: `max_size`) and
/// drops older message sets beyond that; 10,000 of these messages stay well under it.
const MESSAGES_PER_PARTITION: usize = 10_000;

/// Sends one message to `partition`, waiting for room in the producer's queue.
pub(crate) fn send(p: &BaseProducer, topic: &str, partition: i32, payload: &str) {
    loop {
        match p.send(
            BaseRecord::<(), str>::to(topic)
                .partition(partition)
                .payload(payload),
        ) {
            Ok(()) => break,
            Err(_) => {
                p.poll(Duration::from_millis(5));
            }
        }
    }
    p.poll(Duration::ZERO);
}

/// A hand-made `index_kafka` task reading every partition from 0 to `ends`.
fn kafka_task(id: &str, servers: &str, topic: &str, ends: &[i64], rollup: bool) -> Value {
    let (dimensions, metrics, query) = dimensions_and_metrics(rollup);
    let offsets = |kind: &str, end: bool| {
        let map: serde_json::Map<String, Value> = ends
            .iter()
            .enumerate()
            .map(|(p, e)| (p.to_string(), json!(if end { *e } else { 0 })))
            .collect();
        json!({"type": kind, "stream": topic, "partitionSequenceNumberMap": map})
    };
    json!({
        "type": "index_kafka", "id": id, "dataSource": id,
        "dataSchema": {"dataSource": id, "timestampSpec": {"column": "time", "format": "iso"},
            "dimensionsSpec": {"dimensions": dimensions}, "metricsSpec": metrics,
            "granularitySpec": {"segmentGranularity": "day", "queryGranularity": query, "rollup": rollup}},
        "tuningConfig": {"type": "kafka"},
        "ioConfig": {"type": "kafka", "taskGroupId": 0, "baseSequenceName": id,
            "startSequenceNumbers": offsets("start", false), "endSequenceNumbers": offsets("end", true),
            "consumerProperties": {"bootstrap.servers": servers},
            "inputFormat": {"type": "json"}, "useTransaction": true}
    })
}

pub(crate) fn supervisor(id: &str, servers: &str, topic: &str, task_duration: &str) -> Value {
    let (dimensions, metrics, query) = dimensions_and_metrics(false);
    json!({"type": "kafka", "spec": {
        "dataSchema": {"dataSource": id, "timestampSpec": {"column": "time", "format": "iso"},
            "dimensionsSpec": {"dimensions": dimensions}, "metricsSpec": metrics,
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": query, "rollup": false}},
        "ioConfig": {"topic": topic, "inputFormat": {"type": "json"},
            "consumerProperties": {"bootstrap.servers": servers},
            "taskCount": 1, "replicas": 1, "taskDuration": task_duration, "startDelay": "PT0S",
            "period": "PT1S", "useEarliestOffset": true, "completionTimeout": "PT60S"},
        "tuningConfig": {"type": "kafka"}}})
}

/// An event stamped now, so it falls in the current hour's segment.
fn live_event(i: usize) -> String {
    let mut v = row(i);
    v["time"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    v.to_string()
}

pub async fn run(messages: usize) -> anyhow::Result<()> {
    let own = own_cluster(ClusterSpec::workers(&[2])).await?;
    let cluster = &own.cluster;
    let mock: Mock = MockCluster::new(1)?;
    let servers = mock.bootstrap_servers();

    throughput(cluster, &mock, messages).await?;
    let store = MetadataStore::connect(&format!(
        "sqlite://{}",
        cluster.dir.join("metadata.db").display()
    ))
    .await?;
    produce_to_publish(cluster, &mock, &store, &servers).await?;
    replace_killed_task(cluster, &mock, &servers).await?;
    drop(own);
    Ok(())
}

/// Figure 1: one task reading N messages, rollup off and on.
async fn throughput(cluster: &Cluster, mock: &Mock, messages: usize) -> anyhow::Result<()> {
    let topic = "wiki";
    let partitions = messages.div_ceil(MESSAGES_PER_PARTITION).max(1);
    mock.create_topic(topic, partitions as i32, 1)?;
    let p = producer(mock)?;
    let started = Instant::now();
    let mut bytes = 0usize;
    let mut ends = vec![0i64; partitions];
    for i in 0..messages {
        let payload = row(i).to_string();
        bytes += payload.len();
        let partition = i / MESSAGES_PER_PARTITION;
        send(&p, topic, partition as i32, &payload);
        ends[partition] += 1;
    }
    p.flush(Duration::from_secs(120))?;
    println!(
        "== index_kafka, one task ==\nproduced {messages} wikipedia-like JSON messages ({:.0} MB) \
         into {partitions} partition(s) in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:<44} {:>9.0} messages/s (what the mock broker serves)",
        "a bare librdkafka consumer, no parsing",
        bare_consume_rate(mock, topic, partitions, messages)?
    );
    let servers = mock.bootstrap_servers();
    for rollup in [false, true] {
        let id = format!("bench_kafka_rollup_{}", if rollup { "on" } else { "off" });
        cluster
            .client
            .submit(&kafka_task(&id, &servers, topic, &ends, rollup))
            .await?;
        let status = cluster
            .client
            .wait_complete(&id, Duration::from_secs(1800))
            .await?;
        anyhow::ensure!(status["statusCode"] == "SUCCESS", "{id}: {status}");
        let log = cluster.client.log(&id).await?.unwrap_or_default();
        let read = number_before(&log, "read to its end:", "message(s)").unwrap_or(0);
        let read_ms = number_before(&log, "read to its end:", "ms").unwrap_or(0);
        let cpu_ms = log
            .lines()
            .find(|l| l.contains("read to its end:"))
            .and_then(|l| {
                l.split(" ms of CPU")
                    .next()?
                    .split_whitespace()
                    .last()?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        let publish_ms = number_before(&log, "published sequence", "ms").unwrap_or(0);
        let rss_kb = number_before(&log, "peak RSS", "kB").unwrap_or(0);
        anyhow::ensure!(
            read as usize == messages,
            "{id} read {read} messages, not {messages}"
        );
        println!(
            "rollup {:<3}: read+parse+rollup {:>6} ms = {:>9.0} messages/s; {:>6} ms of CPU on the reading thread = \
             {:>9.0} messages/s/core; merge+Parquet+publish {:>5} ms; whole task {:>6} ms; peak peon RSS {:.1} MB",
            if rollup { "on" } else { "off" },
            read_ms,
            messages as f64 / (read_ms.max(1) as f64 / 1000.0),
            cpu_ms,
            messages as f64 / (cpu_ms.max(1) as f64 / 1000.0),
            publish_ms,
            status["duration"].as_i64().unwrap_or(0),
            rss_kb as f64 / 1024.0,
        );
    }
    Ok(())
}

/// How fast a plain consumer in this process gets the topic from the mock broker.
fn bare_consume_rate(
    mock: &Mock,
    topic: &str,
    partitions: usize,
    messages: usize,
) -> anyhow::Result<f64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("group.id", "bench-bare")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for partition in 0..partitions {
        tpl.add_partition_offset(topic, partition as i32, Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    let mut seen = 0usize;
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen < messages && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m?;
            first.get_or_insert_with(Instant::now);
            seen += 1;
            std::hint::black_box(m.payload());
        }
    }
    anyhow::ensure!(
        seen == messages,
        "the bare consumer got {seen} of {messages} messages"
    );
    let secs = first.map_or(1.0, |f| f.elapsed().as_secs_f64());
    Ok(seen as f64 / secs)
}

/// The task ids of the supervisor's reading tasks, from its status report.
async fn active_tasks(client: &ApiClient, id: &str) -> Vec<String> {
    let Ok(r) = client.get(&format!("/supervisor/{id}/status")).await else {
        return Vec::new();
    };
    if r.status != 200 {
        return Vec::new();
    }
    r.json()["payload"]["activeTasks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        anyhow::ensure!(Instant::now() < deadline, "{what}: not after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn print_summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<44} median {:>6.2} s   p90 {:>6.2} s   min {:>6.2} s   max {:>6.2} s   (n={})",
        percentile(&values, 0.5),
        percentile(&values, 0.9),
        percentile(&values, 0.0),
        percentile(&values, 1.0),
        values.len()
    );
}

/// Figure 2: one event every 250 ms into a supervisor with a 5 s taskDuration; each event's
/// latency is the time until the committed offset passes it.
async fn produce_to_publish(
    cluster: &Cluster,
    mock: &Mock,
    store: &MetadataStore,
    servers: &str,
) -> anyhow::Result<()> {
    let (id, topic, task_duration) = ("latency", "latency", "PT5S");
    mock.create_topic(topic, 1, 1)?;
    let r = cluster
        .client
        .post(
            "/supervisor",
            supervisor(id, servers, topic, task_duration).to_string(),
        )
        .await?;
    anyhow::ensure!(r.status == 200, "supervisor refused: {}", r.body);
    wait_for("a reading task", Duration::from_secs(60), async || {
        (!active_tasks(&cluster.client, id).await.is_empty()).then_some(())
    })
    .await?;

    // The committed offset, watched every 10 ms: (when, offset) at each change.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = Vec::<(Instant, i64)>::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(Some(o)) = store.stream_offsets(id).await {
                    let at = o.offsets.get("0").copied().unwrap_or(0);
                    if seen.last().is_none_or(|(_, last)| *last != at) {
                        seen.push((Instant::now(), at));
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    let p = producer(mock)?;
    let events = 120; // one every 250 ms: 30 s
    let mut produced = Vec::with_capacity(events);
    for i in 0..events {
        send(&p, topic, 0, &live_event(i));
        p.flush(Duration::from_secs(10))?;
        produced.push(Instant::now());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_for(
        "every event published",
        Duration::from_secs(120),
        async || {
            let o = store.stream_offsets(id).await.ok()??;
            (o.offsets.get("0").copied().unwrap_or(0) >= events as i64).then_some(())
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let commits = watcher.await?;
    // Event i has offset i (one partition, one producer, no transactions).
    let latencies: Vec<f64> = produced
        .iter()
        .enumerate()
        .filter_map(|(i, at)| {
            let (when, _) = commits.iter().find(|(_, o)| *o > i as i64)?;
            Some(when.saturating_duration_since(*at).as_secs_f64())
        })
        .collect();
    println!("== produce -> published segment, taskDuration {task_duration}, period PT1S ==");
    println!("{} publishes for {events} events", commits.len());
    print_summary("produce -> offset committed with its segment", latencies);
    let r = cluster
        .client
        .post(&format!("/supervisor/{id}/terminate"), "{}")
        .await?;
    anyhow::ensure!(r.status == 200, "terminate: {}", r.body);
    Ok(())
}

/// The pid of a running task's peon, from the first line of its log.
async fn peon_pid(client: &ApiClient, task: &str) -> Option<i32> {
    let log = client.log(task).await.ok()??;
    if !log.contains("chat API on ") {
        return None;
    }
    let line = log
        .lines()
        .find_map(|l| l.strip_prefix("drover-peon pid="))?;
    line.split_whitespace().next()?.parse().ok()
}

/// Figure 3: kill -9 of the reading peon, three rounds: when the supervisor has a replacement
/// task, when the runner has it on a worker, and when its peon is reading.
async fn replace_killed_task(cluster: &Cluster, mock: &Mock, servers: &str) -> anyhow::Result<()> {
    let (id, topic) = ("replace", "replace");
    mock.create_topic(topic, 1, 1)?;
    let p = producer(mock)?;
    for i in 0..1000 {
        send(&p, topic, 0, &live_event(i));
    }
    p.flush(Duration::from_secs(10))?;
    let r = cluster
        .client
        .post(
            "/supervisor",
            supervisor(id, servers, topic, "PT1H").to_string(),
        )
        .await?;
    anyhow::ensure!(r.status == 200, "supervisor refused: {}", r.body);
    let client = &cluster.client;
    let (mut to_failed, mut to_created, mut to_running, mut to_reading) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let (victim, pid) = wait_for("a reading peon", Duration::from_secs(60), async || {
            for t in active_tasks(client, id).await {
                if let Some(pid) = peon_pid(client, &t).await {
                    return Some((t, pid));
                }
            }
            None
        })
        .await?;
        let killed = Instant::now();
        // SAFETY: kill(2) with a pid read from the peon's own log; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let mut failed = None;
        let replacement = wait_for("a replacement task", Duration::from_secs(60), async || {
            if failed.is_none() {
                if let Ok(Some(s)) = client.status(&victim).await {
                    if s["statusCode"] == "FAILED" {
                        failed = Some(killed.elapsed());
                    }
                }
            }
            active_tasks(client, id)
                .await
                .into_iter()
                .find(|t| *t != victim)
        })
        .await?;
        to_created.push(killed.elapsed().as_secs_f64());
        client
            .wait_running(&replacement, Duration::from_secs(60))
            .await?;
        to_running.push(killed.elapsed().as_secs_f64());
        wait_for(
            "the replacement reading",
            Duration::from_secs(60),
            async || {
                let log = client.log(&replacement).await.ok()??;
                log.contains("reading topic").then_some(())
            },
        )
        .await?;
        to_reading.push(killed.elapsed().as_secs_f64());
        let failed = match failed {
            Some(f) => f,
            None => {
                client
                    .wait_complete(&victim, Duration::from_secs(60))
                    .await?;
                killed.elapsed()
            }
        };
        to_failed.push(failed.as_secs_f64());
    }
    println!("== kill -9 of a reading peon -> replacement (3 rounds) ==");
    print_summary("killed task FAILED (API)", to_failed);
    print_summary("replacement in the supervisor's status", to_created);
    print_summary("replacement RUNNING on a worker (API)", to_running);
    print_summary("replacement reading (its peon's log)", to_reading);
    Ok(())
}
