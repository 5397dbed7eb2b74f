//! Kafka supervisors end to end: librdkafka's mock cluster as the broker (real Kafka protocol on
//! local ports), real ZooKeeper, overlord and middle managers, peons consuming from the mock.
//! Every event carries a unique id; duplicates and losses are counted from the published
//! segments themselves, and the committed offsets are read from `druid_dataSource`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drover_scenarios::{
    parent_of, segment_rows, tutorial_file, used_segments, Cluster, ClusterSpec,
};
use drover_testkit::RawResponse;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};

const TOPIC: &str = "events";

pub(crate) struct Kafka {
    mock: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    producer: BaseProducer,
    next_id: u64,
}

impl Kafka {
    pub(crate) fn start(partitions: i32) -> Kafka {
        let mock = MockCluster::new(1).expect("the mock Kafka cluster starts");
        mock.create_topic(TOPIC, partitions, 1).unwrap();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", mock.bootstrap_servers())
            .set("linger.ms", "5")
            .create()
            .unwrap();
        Kafka {
            mock,
            producer,
            next_id: 0,
        }
    }

    pub(crate) fn servers(&self) -> String {
        self.mock.bootstrap_servers()
    }

    /// Produces `n` events with fresh ids, spread over the partitions by key.
    pub(crate) fn produce(&mut self, n: u64) {
        for _ in 0..n {
            let id = self.next_id;
            self.next_id += 1;
            let payload = json!({
                "ts": now_iso(),
                "id": format!("e{id}"),
                "page": format!("p{}", id % 7),
                "n": 1,
            })
            .to_string();
            let key = id.to_string();
            loop {
                match self
                    .producer
                    .send(BaseRecord::to(TOPIC).key(&key).payload(&payload))
                {
                    Ok(()) => break,
                    Err((_, _)) => {
                        self.producer.poll(Duration::from_millis(10));
                    }
                }
            }
            self.producer.poll(Duration::ZERO);
        }
        self.producer.flush(Duration::from_secs(10)).unwrap();
    }

    /// Produces one message as it is (to partition 0), e.g. one that is not JSON.
    fn produce_raw(&mut self, payload: &str) {
        self.producer
            .send(
                BaseRecord::<(), str>::to(TOPIC)
                    .partition(0)
                    .payload(payload),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        self.producer.flush(Duration::from_secs(10)).unwrap();
    }
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn supervisor_spec(
    servers: &str,
    task_count: u32,
    replicas: u32,
    duration: &str,
) -> Value {
    json!({
        "type": "kafka",
        "spec": {
            "dataSchema": {
                "dataSource": "events",
                "timestampSpec": {"column": "ts", "format": "iso"},
                "dimensionsSpec": {"dimensions": ["id", "page"]},
                "metricsSpec": [{"type": "longSum", "name": "n", "fieldName": "n"}],
                "granularitySpec": {"segmentGranularity": "HOUR", "queryGranularity": "NONE", "rollup": false}
            },
            "ioConfig": {
                "topic": TOPIC,
                "inputFormat": {"type": "json"},
                "consumerProperties": {"bootstrap.servers": servers},
                "taskCount": task_count,
                "replicas": replicas,
                "taskDuration": duration,
                "startDelay": "PT0S",
                "period": "PT1S",
                "useEarliestOffset": true,
                "completionTimeout": "PT90S"
            },
            "tuningConfig": {"type": "kafka", "offsetFetchPeriod": "PT5S"}
        }
    })
}

/// POSTs a supervisor spec, which must be accepted; returns the answer's JSON.
pub(crate) async fn submit_supervisor(cluster: &Cluster, spec: &Value) -> Value {
    let r = cluster
        .client
        .post("/supervisor", spec.to_string())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// POSTs `/supervisor/{id}/{action}`, which must succeed; returns the answer.
async fn supervisor_action(cluster: &Cluster, id: &str, action: &str) -> RawResponse {
    let r = cluster
        .client
        .post(&format!("/supervisor/{id}/{action}"), "{}")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{action}: {}", r.body);
    r
}

/// Ids in the published segments, with how often each appears.
async fn published_ids(cluster: &Cluster, data_source: &str) -> BTreeMap<String, u32> {
    let segments = used_segments(&cluster.client, data_source).await;
    let mut ids = BTreeMap::new();
    for row in segment_rows(&segments) {
        let id = row["id"].as_str().unwrap_or_default().to_string();
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

/// Asks `check` until it answers `Ok`; after `timeout` fails the test with its last `Err`.
async fn poll_until<T>(
    cluster: &Cluster,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(why) if Instant::now() > deadline => {
                cluster.fail(format!("still not so after {timeout:?}: {why}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// Waits until `expected` distinct ids are published; fails the test after `timeout`.
pub(crate) async fn wait_published(
    cluster: &Cluster,
    expected: usize,
    timeout: Duration,
) -> BTreeMap<String, u32> {
    poll_until(cluster, timeout, async || {
        let ids = published_ids(cluster, "events").await;
        if ids.len() >= expected {
            return Ok(ids);
        }
        let status = cluster
            .client
            .get("/supervisor/events/status")
            .await
            .unwrap();
        Err(format!(
            "only {} of {expected} events published; supervisor: {}",
            ids.len(),
            status.body
        ))
    })
    .await
}

/// Waits until `druid_dataSource` holds the topic's end offsets.
pub(crate) async fn wait_committed_to_end(cluster: &Cluster, kafka: &Kafka, partitions: i32) {
    let latest = latest_offsets(kafka, partitions);
    poll_until(cluster, Duration::from_secs(60), async || {
        let committed = committed_offsets(cluster).await;
        if committed == latest {
            return Ok(());
        }
        Err(format!(
            "committed offsets {committed:?} never reached the topic's end {latest:?}"
        ))
    })
    .await
}

fn assert_exactly_once(ids: &BTreeMap<String, u32>, produced: u64) {
    let doubled: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        doubled.is_empty(),
        "events published more than once: {doubled:?}"
    );
    let missing: Vec<String> = (0..produced)
        .map(|i| format!("e{i}"))
        .filter(|id| !ids.contains_key(id))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "events never published: {missing:?}");
    assert_eq!(ids.len() as u64, produced, "unexpected ids in the segments");
}

/// The offsets committed in `druid_dataSource` for the data source.
async fn committed_offsets(cluster: &Cluster) -> BTreeMap<String, i64> {
    use sqlx::Row;
    let url = format!(
        "sqlite://{}?mode=ro",
        cluster.dir.join("metadata.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let row =
        sqlx::query("SELECT commit_metadata_payload FROM druid_dataSource WHERE dataSource = ?")
            .bind("events")
            .fetch_optional(&pool)
            .await
            .unwrap();
    pool.close().await;
    let Some(row) = row else {
        return BTreeMap::new();
    };
    let bytes: Vec<u8> = row.get(0);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["partitions"]["partitionSequenceNumberMap"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, o)| (p.clone(), o.as_i64().unwrap()))
        .collect()
}

fn latest_offsets(kafka: &Kafka, partitions: i32) -> BTreeMap<String, i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.servers())
        .set("group.id", "test-offsets")
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            let (_, hi) = c
                .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
                .unwrap();
            (p.to_string(), hi)
        })
        .collect()
}

/// Waits until every reading task has read to the end of the topic (per the status report and
/// the mock cluster's offsets).
async fn wait_caught_up(cluster: &Cluster, kafka: &Kafka, partitions: i32) {
    let latest = latest_offsets(kafka, partitions);
    poll_until(cluster, Duration::from_secs(60), async || {
        let status = cluster
            .client
            .get("/supervisor/events/status")
            .await
            .unwrap()
            .json();
        let active = status["payload"]["activeTasks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let caught_up = !active.is_empty()
            && active.iter().all(|t| {
                latest
                    .iter()
                    .all(|(p, o)| t["currentOffsets"][p].as_i64() == Some(*o))
            });
        if caught_up {
            return Ok(());
        }
        Err(format!("reading tasks never reached {latest:?}: {status}"))
    })
    .await
}

/// Every completed `index_kafka` task succeeded.
async fn assert_no_reading_task_failed(cluster: &Cluster) {
    let failed: Vec<Value> = completed_kafka_tasks(cluster)
        .await
        .into_iter()
        .filter(|t| t["statusCode"] != "SUCCESS")
        .collect();
    assert!(failed.is_empty(), "reading tasks failed: {failed:?}");
}

async fn completed_kafka_tasks(cluster: &Cluster) -> Vec<Value> {
    cluster
        .client
        .tasks("?state=complete&datasource=events")
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t["type"] == "index_kafka")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_through_rollovers_with_replicas() {
    let mut kafka = Kafka::start(3);
    let cluster = Cluster::start(ClusterSpec::workers(&[6, 6])).await;
    let r = submit_supervisor(&cluster, &supervisor_spec(&kafka.servers(), 2, 2, "PT4S")).await;
    assert_eq!(r["id"], "events");

    // 20,000 events over about ten seconds, while tasks roll over.
    for _ in 0..10 {
        kafka.produce(2_000);
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let ids = wait_published(&cluster, 20_000, Duration::from_secs(120)).await;
    assert_exactly_once(&ids, 20_000);

    // At least two rollovers: two groups finished at least twice each.
    poll_until(&cluster, Duration::from_secs(60), async || {
        let done = completed_kafka_tasks(&cluster).await;
        let succeeded = done.iter().filter(|t| t["statusCode"] == "SUCCESS").count();
        if succeeded >= 8 {
            return Ok(());
        }
        Err(format!("fewer than two rollovers: {done:?}"))
    })
    .await;
    // Committed offsets catch up with the end of the topic.
    wait_committed_to_end(&cluster, &kafka, 3).await;
    let latest = latest_offsets(&kafka, 3);

    // The status report names the stream, partitions and lag from the mock's offsets.
    let status = cluster
        .client
        .get("/supervisor/events/status")
        .await
        .unwrap();
    assert_eq!(status.status, 200, "{}", status.body);
    let payload = &status.json()["payload"];
    assert_eq!(payload["stream"], TOPIC);
    assert_eq!(payload["partitions"], 3);
    assert_eq!(payload["replicas"], 2);
    assert_eq!(payload["state"], "RUNNING", "{payload}");
    assert_eq!(payload["healthy"], true);
    for (p, o) in &latest {
        assert_eq!(payload["latestOffsets"][p], *o, "{payload}");
    }
    let health = cluster
        .client
        .get("/supervisor/events/health")
        .await
        .unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(
        cluster.client.get("/supervisor").await.unwrap().json(),
        json!(["events"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn suspend_resume_and_reset() {
    let mut kafka = Kafka::start(2);
    let cluster = Cluster::start(ClusterSpec::workers(&[4])).await;
    submit_supervisor(&cluster, &supervisor_spec(&kafka.servers(), 1, 1, "PT30S")).await;
    kafka.produce(1_000);

    // Suspend: the reading task publishes what it read and no new task starts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = supervisor_action(&cluster, "events", "suspend").await;
    assert_eq!(r.json()["suspended"], true);
    let again = cluster
        .client
        .post("/supervisor/events/suspend", "{}")
        .await
        .unwrap();
    assert_eq!(again.status, 400, "{}", again.body);
    let ids = wait_published(&cluster, 1_000, Duration::from_secs(60)).await;
    assert_exactly_once(&ids, 1_000);
    poll_until(&cluster, Duration::from_secs(30), async || {
        let running = cluster
            .client
            .tasks("?state=running&datasource=events")
            .await
            .unwrap();
        let pending = cluster
            .client
            .tasks("?state=pending&datasource=events")
            .await
            .unwrap();
        if running.is_empty() && pending.is_empty() {
            return Ok(());
        }
        Err(format!(
            "tasks still active after suspend: {running:?} {pending:?}"
        ))
    })
    .await;
    kafka.produce(500);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(cluster
        .client
        .tasks("?state=running&datasource=events")
        .await
        .unwrap()
        .is_empty());
    let status = cluster
        .client
        .get("/supervisor/events/status")
        .await
        .unwrap()
        .json();
    assert_eq!(status["payload"]["state"], "SUSPENDED", "{status}");

    // Resume: reading continues from the stored offsets, nothing lost or doubled.
    supervisor_action(&cluster, "events", "resume").await;
    kafka.produce(500);
    wait_caught_up(&cluster, &kafka, 2).await;
    supervisor_action(&cluster, "events", "suspend").await;
    let ids = wait_published(&cluster, 2_000, Duration::from_secs(60)).await;
    assert_exactly_once(&ids, 2_000);

    // Reset: the stored offsets go, and reading starts again from the earliest offset, so
    // every event is read a second time (Druid's documented effect of a reset).
    supervisor_action(&cluster, "events", "reset").await;
    assert!(
        committed_offsets(&cluster).await.is_empty(),
        "reset leaves no offsets"
    );
    supervisor_action(&cluster, "events", "resume").await;
    wait_caught_up(&cluster, &kafka, 2).await;
    supervisor_action(&cluster, "events", "suspend").await;
    poll_until(&cluster, Duration::from_secs(60), async || {
        let ids = published_ids(&cluster, "events").await;
        if ids.values().all(|n| *n == 2) && ids.len() == 2_000 {
            return Ok(());
        }
        Err("after a reset every event should be read again from the earliest offset".into())
    })
    .await;

    // History holds every version, newest first; terminate writes a tombstone.
    let history = cluster
        .client
        .get("/supervisor/events/history")
        .await
        .unwrap()
        .json();
    assert!(history.as_array().unwrap().len() >= 5, "{history}");
    assert_eq!(history[0]["spec"]["suspended"], true);
    supervisor_action(&cluster, "events", "terminate").await;
    let gone = cluster.client.get("/supervisor/events").await.unwrap();
    assert_eq!(gone.status, 404, "{}", gone.body);
    assert_eq!(gone.json()["error"], "[events] does not exist");
    let history = cluster
        .client
        .get("/supervisor/history")
        .await
        .unwrap()
        .json();
    assert_eq!(history["events"][0]["spec"]["type"], "NoopSupervisorSpec");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tutorial_spec_is_accepted_and_ingests() {
    let kafka = {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("wikipedia", 1, 1).unwrap();
        mock
    };
    let cluster = Cluster::start(ClusterSpec::workers(&[2, 2])).await;
    let mut spec: Value =
        serde_json::from_str(&tutorial_file("wikipedia-kafka-supervisor.json")).unwrap();
    spec["ioConfig"]["consumerProperties"]["bootstrap.servers"] = json!(kafka.bootstrap_servers());
    let r = submit_supervisor(&cluster, &spec).await;
    assert_eq!(r["id"], "wikipedia");
    let stored = cluster
        .client
        .get("/supervisor/wikipedia")
        .await
        .unwrap()
        .json();
    assert_eq!(stored["spec"]["ioConfig"]["replicas"], 2);

    // The tutorial reads from the latest offset: produce once its two replicas run.
    poll_until(&cluster, Duration::from_secs(60), async || {
        let running = cluster
            .client
            .tasks("?state=running&datasource=wikipedia")
            .await
            .unwrap();
        if running.len() == 2 {
            return Ok(());
        }
        Err(format!(
            "the tutorial supervisor did not start two replicas: {running:?}"
        ))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .create()
        .unwrap();
    let lines = [
        r##"{"time":"2015-09-12T00:46:58.771Z","channel":"#en.wikipedia","page":"Talk:Oswald Tilghman","user":"GELongstreet","added":36,"deleted":0,"delta":36}"##,
        r##"{"time":"2015-09-12T00:47:00.496Z","channel":"#ca.wikipedia","page":"Israel Ballet","user":"Jlcbot","added":17,"deleted":0,"delta":17}"##,
        r##"{"time":"2015-09-12T00:47:05.474Z","channel":"#en.wikipedia","page":"Peremptory norm","user":"60.225.66.142","added":0,"deleted":5,"delta":-5}"##,
    ];
    for l in lines {
        producer
            .send(BaseRecord::<(), str>::to("wikipedia").payload(l))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    // Suspending makes the replicas publish now rather than after the tutorial's ten minutes.
    poll_until(&cluster, Duration::from_secs(30), async || {
        let stats = cluster
            .client
            .get("/supervisor/wikipedia/stats")
            .await
            .unwrap()
            .json();
        let processed: u64 = stats
            .as_object()
            .into_iter()
            .flat_map(|g| g.values())
            .flat_map(|t| t.as_object().into_iter().flat_map(|m| m.values()))
            .map(|s| {
                s["totals"]["buildSegments"]["processed"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        if processed == 3 {
            return Ok(());
        }
        Err(format!(
            "the replicas did not read the three events: {stats}"
        ))
    })
    .await;
    supervisor_action(&cluster, "wikipedia", "suspend").await;
    let segments = poll_until(&cluster, Duration::from_secs(60), async || {
        let segments = used_segments(&cluster.client, "wikipedia").await;
        if segments.is_empty() {
            return Err("the tutorial supervisor published nothing".to_string());
        }
        Ok(segments)
    })
    .await;
    let rows = segment_rows(&segments);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        segments[0]["interval"],
        "2015-09-12T00:00:00.000Z/2015-09-13T00:00:00.000Z"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_supervisor_specs_are_refused_naming_the_field() {
    let cluster = Cluster::start(ClusterSpec::workers(&[1])).await;
    let cases = [
        (
            json!({"type": "kinesis", "spec": {}}),
            "[kinesis] is not supported",
        ),
        (json!({"spec": {}}), "no [type]"),
        (
            json!({"type": "kafka", "spec": {"dataSchema": {"dataSource": "x"}, "ioConfig": {"topic": "t"}}}),
            "spec.ioConfig.consumerProperties",
        ),
        (
            json!({"type": "kafka", "spec": {"dataSchema": {"dataSource": "../x"},
                "ioConfig": {"topic": "t", "consumerProperties": {"bootstrap.servers": "h:1"}}}}),
            "spec.dataSchema.dataSource",
        ),
    ];
    for (spec, expected) in cases {
        let r = cluster
            .client
            .post("/supervisor", spec.to_string())
            .await
            .unwrap();
        assert_eq!(r.status, 400, "{spec}: {}", r.body);
        assert!(r.body.contains(expected), "{spec}: {}", r.body);
    }
    for path in ["/supervisor/nope", "/supervisor/nope/status"] {
        let r = cluster.client.get(path).await.unwrap();
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.json()["error"], "[nope] does not exist");
    }
    let r = cluster
        .client
        .post("/supervisor/nope/suspend", "{}")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = cluster
        .client
        .post(
            "/supervisor/nope/resetOffsets",
            json!({"type": "kafka"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 404);
}

/// A running `index_kafka` task of the data source and its peon's pid (from its log).
async fn a_reading_peon(cluster: &Cluster) -> (String, i32) {
    poll_until(cluster, Duration::from_secs(60), async || {
        let running = cluster
            .client
            .tasks("?state=running&datasource=events")
            .await
            .unwrap();
        for t in running {
            let id = t["id"].as_str().unwrap().to_string();
            if let Ok(Some(log)) = cluster.client.log(&id).await {
                if log.contains("chat API on http://127.0.0.1:") {
                    if let Some(pid) = drover_scenarios::log_facts(&log).pid {
                        return Ok((id, pid));
                    }
                }
            }
        }
        Err("no index_kafka peon came up".to_string())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_through_peon_middle_manager_and_overlord_crashes() {
    let mut kafka = Kafka::start(3);
    let mut cluster = Cluster::start(
        ClusterSpec::workers(&[4, 4, 4]).overlord_args(&["--task-cleanup-timeout", "3s"]),
    )
    .await;
    submit_supervisor(&cluster, &supervisor_spec(&kafka.servers(), 2, 1, "PT6S")).await;

    // kill -9 of a peon that is reading: its task fails, a replacement reads its offsets again.
    kafka.produce(2_000);
    let (task, pid) = a_reading_peon(&cluster).await;
    kafka.produce(1_000);
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = cluster
        .client
        .wait_complete(&task, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(status["statusCode"], "FAILED", "{status}");
    kafka.produce(1_000);

    // kill -9 of a middle manager: its peons go with it; after the cleanup timeout their tasks
    // fail and the supervisor starts them elsewhere.
    let (_, pid) = a_reading_peon(&cluster).await;
    kill_the_middle_manager_of(&mut cluster, pid);
    kafka.produce(1_000);

    // The overlord restarts (kill -9): the supervisor comes back from druid_supervisors and
    // adopts the tasks that are still running.
    cluster.restart_overlord().await;
    kafka.produce(1_000);

    let ids = wait_published(&cluster, 6_000, Duration::from_secs(180)).await;
    assert_exactly_once(&ids, 6_000);
    wait_committed_to_end(&cluster, &kafka, 3).await;
    // Nothing published twice even after everything settled.
    assert_exactly_once(&published_ids(&cluster, "events").await, 6_000);
}

/// kill -9 of the middle manager running the only reading task, with the overlord's defaults
/// (no `task_cleanup_timeout` given): the task fails, its replacement reads on from the other
/// worker, and every event is published once. How long that takes is printed (`drover-bench`
/// measures the same recovery for a noop task); it is about 20 s.
#[tokio::test(flavor = "multi_thread")]
async fn reading_resumes_after_a_middle_manager_kill_on_default_settings() {
    let mut kafka = Kafka::start(1);
    let mut cluster = Cluster::start(ClusterSpec::workers(&[2, 2])).await;
    submit_supervisor(&cluster, &supervisor_spec(&kafka.servers(), 1, 1, "PT20S")).await;
    kafka.produce(500);
    wait_caught_up(&cluster, &kafka, 1).await;
    let (task, pid) = a_reading_peon(&cluster).await;
    kill_the_middle_manager_of(&mut cluster, pid);
    let killed = Instant::now();
    kafka.produce(500);

    let status = cluster
        .client
        .wait_complete(&task, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(status["statusCode"], "FAILED", "{status}");
    println!(
        "the killed worker's task failed {:?} after the kill",
        killed.elapsed()
    );
    wait_caught_up(&cluster, &kafka, 1).await;
    println!(
        "reading to the end again {:?} after the kill",
        killed.elapsed()
    );
    let ids = wait_published(&cluster, 1_000, Duration::from_secs(120)).await;
    assert_exactly_once(&ids, 1_000);
}

/// A middle manager that comes back within `task_cleanup_timeout` restores its reading task,
/// whether it was killed (kill -9) or stopped (SIGTERM): the same task, in a new attempt, reads
/// on from the start of its first unpublished sequence, and every event is published once.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_middle_manager_restores_its_reading_task() {
    let mut kafka = Kafka::start(1);
    let mut cluster = Cluster::start(
        ClusterSpec::workers(&[2]).overlord_args(&["--task-cleanup-timeout", "60s"]),
    )
    .await;
    submit_supervisor(&cluster, &supervisor_spec(&kafka.servers(), 1, 1, "PT1H")).await;
    let mut produced = 0;
    for graceful in [false, true] {
        kafka.produce(300);
        produced += 300;
        wait_caught_up(&cluster, &kafka, 1).await;
        let (task, _) = a_reading_peon(&cluster).await;
        let mm = &mut cluster.middle_managers[0].process;
        if graceful {
            assert!(mm.terminate(Duration::from_secs(30)), "no exit on SIGTERM");
        } else {
            mm.kill9();
        }
        kafka.produce(300);
        produced += 300;
        cluster.middle_managers[0].process.restart();
        // The same task reads on, having said it was restored, to the end of the topic.
        let log_file = cluster.middle_managers[0]
            .base_task_dir
            .join(&task)
            .join("log");
        let attempt = if graceful { "attempt=3" } else { "attempt=2" };
        poll_until(&cluster, Duration::from_secs(60), async || {
            let log = std::fs::read_to_string(&log_file).unwrap_or_default();
            if log.contains(attempt)
                && log
                    .rsplit(attempt)
                    .next()
                    .is_some_and(|l| l.contains("reading topic"))
            {
                return Ok(());
            }
            Err(format!(
                "{task} was not restored (graceful: {graceful}); its log:\n{log}"
            ))
        })
        .await;
        wait_caught_up(&cluster, &kafka, 1).await;
        let status = cluster.client.status(&task).await.unwrap().unwrap();
        assert_eq!(status["statusCode"], "RUNNING", "{task}: {status}");
        let log = cluster.client.log(&task).await.unwrap().unwrap_or_default();
        assert!(
            log.contains(attempt),
            "the overlord serves a stale log:\n{log}"
        );
    }
    // Suspending makes the restored task publish what it read.
    supervisor_action(&cluster, "events", "suspend").await;
    let ids = wait_published(&cluster, produced, Duration::from_secs(120)).await;
    assert_exactly_once(&ids, produced as u64);
}

/// kill -9 of the middle manager whose peon is `pid`: the peon's parent, or its grandparent when
/// the middle manager's peon launcher forked it.
fn kill_the_middle_manager_of(cluster: &mut Cluster, pid: i32) {
    let parent = parent_of(pid);
    let grandparent = parent.and_then(parent_of);
    cluster
        .middle_managers
        .iter_mut()
        .find(|mm| {
            let mm = mm.process.pid().map(|p| p as i32);
            mm.is_some() && (mm == parent || mm == grandparent)
        })
        .expect("the peon descends from one of the middle managers")
        .process
        .kill9();
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_ask_for_checkpoints_and_publish_while_they_read() {
    let mut kafka = Kafka::start(2);
    let cluster = Cluster::start(ClusterSpec::workers(&[4, 4])).await;
    // An hour-long task: everything published before it ends comes from checkpoints.
    let mut spec = supervisor_spec(&kafka.servers(), 1, 2, "PT1H");
    spec["spec"]["tuningConfig"]["maxRowsPerSegment"] = json!(1000);
    submit_supervisor(&cluster, &spec).await;
    for _ in 0..8 {
        kafka.produce(500);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Sequences of about 1,000 rows are published while both replicas keep reading.
    poll_until(&cluster, Duration::from_secs(90), async || {
        let committed: i64 = committed_offsets(&cluster).await.values().sum();
        if committed >= 3_000 {
            return Ok(());
        }
        Err(format!("only {committed} offsets committed by checkpoints"))
    })
    .await;
    let done = completed_kafka_tasks(&cluster).await;
    if let Some(t) = done.first() {
        let log = cluster
            .client
            .log(t["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap_or_default();
        let id = t["id"].as_str().unwrap();
        let report = cluster
            .client
            .get(&format!("/task/{id}/reports"))
            .await
            .unwrap()
            .body;
        panic!(
            "the tasks should still be reading, but {t} ended; its log:\n{log}\nreport: {report}"
        );
    }
    let running = cluster
        .client
        .tasks("?state=running&datasource=events")
        .await
        .unwrap();
    assert_eq!(running.len(), 2, "{running:?}");
    let log = cluster
        .client
        .log(running[0]["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        log.contains("maxRowsPerSegment 1000") || log.contains("end offsets set to"),
        "no checkpoint in the task's log:\n{log}"
    );
    // The chat API listens on the middle manager's host, not on every interface.
    assert!(
        log.contains("chat API on http://127.0.0.1:"),
        "the chat API's address is not in the log:\n{log}"
    );
    let status = cluster
        .client
        .get("/supervisor/events/status")
        .await
        .unwrap()
        .json();
    assert_eq!(status["payload"]["healthy"], true, "{status}");

    // Suspending publishes the rest: every event exactly once, offsets at the end.
    supervisor_action(&cluster, "events", "suspend").await;
    let ids = wait_published(&cluster, 4_000, Duration::from_secs(60)).await;
    assert_exactly_once(&ids, 4_000);
    wait_committed_to_end(&cluster, &kafka, 2).await;
    let segments = used_segments(&cluster.client, "events").await;
    assert!(
        segments.len() >= 4,
        "checkpoints should have published several sequences: {} segment(s)",
        segments.len()
    );
}

/// The ids of the data source's running tasks.
async fn running_task_ids(cluster: &Cluster) -> Vec<String> {
    cluster
        .client
        .tasks("?state=running&datasource=events")
        .await
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// A broker that goes down under reading tasks and comes back (librdkafka's mock broker refuses
/// connections while down, as a restarting broker does): the tasks wait it out instead of
/// failing, read on from where they were, and every event lands exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn reading_tasks_wait_out_a_broker_restart() {
    let mut kafka = Kafka::start(2);
    let cluster = Cluster::start(ClusterSpec::workers(&[4, 4])).await;
    // Replicas 2: before the fix both replicas failed together on the first transport error.
    submit_supervisor(&cluster, &supervisor_spec(&kafka.servers(), 1, 2, "PT1H")).await;
    kafka.produce(1_000);
    wait_caught_up(&cluster, &kafka, 2).await;
    let readers = running_task_ids(&cluster).await;
    assert_eq!(readers.len(), 2, "two replicas read: {readers:?}");

    // The only broker (id 1) goes down for a while, then comes back.
    kafka.mock.broker_down(-1).unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    kafka.mock.broker_up(-1).unwrap();
    kafka.produce(1_000);
    wait_caught_up(&cluster, &kafka, 2).await;

    // The same two tasks are still reading, none failed, and each said what it waited for.
    let running = running_task_ids(&cluster).await;
    for id in &readers {
        assert!(running.contains(id), "{id} no longer runs: {running:?}");
        let log = cluster.client.log(id).await.unwrap().unwrap_or_default();
        assert!(
            log.contains("cannot reach the Kafka brokers") && log.contains("reachable again"),
            "{id} did not log the outage:\n{log}"
        );
    }
    assert!(
        completed_kafka_tasks(&cluster).await.is_empty(),
        "a task ended during the outage"
    );

    supervisor_action(&cluster, "events", "suspend").await;
    let ids = wait_published(&cluster, 2_000, Duration::from_secs(60)).await;
    assert_exactly_once(&ids, 2_000);
    wait_committed_to_end(&cluster, &kafka, 2).await;
}

/// Druid's concurrent append and replace: with `useConcurrentLocks`, the supervisor's tasks keep
/// appending (APPEND locks) to the hours a compaction rewrites into a day (REPLACE lock) — neither
/// waits for the other. Each compaction holds its lock for seconds before publishing, so reading
/// tasks publish under it; those segments are carried into the compaction's version. Every event
/// ends up exactly once in the used segments, and a kill of what is unused afterwards leaves the
/// files that carried segments share.
#[tokio::test(flavor = "multi_thread")]
async fn compaction_rewrites_the_hours_a_supervisor_keeps_appending_to() {
    let mut kafka = Kafka::start(2);
    let cluster = Cluster::start(ClusterSpec::workers(&[4, 4])).await;
    let mut spec = supervisor_spec(&kafka.servers(), 2, 1, "PT3S");
    spec["context"] = json!({"useConcurrentLocks": true});
    submit_supervisor(&cluster, &spec).await;
    // Today and tomorrow: events carry the time they were produced, and a run may cross
    // midnight.
    let today = chrono::Utc::now().date_naive();
    let days = format!("{today}/{}", today + chrono::Days::new(2));

    kafka.produce(300);
    wait_published(&cluster, 300, Duration::from_secs(60)).await;
    let mut produced = 300;
    for round in 0..3 {
        let compact = json!({
            "type": "compact",
            "id": format!("compact-events-{round}"),
            "dataSource": "events",
            "ioConfig": {"type": "compact", "inputSpec": {"type": "interval", "interval": days}},
            "granularitySpec": {"segmentGranularity": "DAY"},
            "context": {"useConcurrentLocks": true, "drover.pauseBeforePublishMs": 5000}
        });
        let id = cluster.client.submit(&compact).await.unwrap();
        // The supervisor's tasks go on reading and publishing while the compaction holds its
        // REPLACE lock on the day.
        for _ in 0..4 {
            kafka.produce(100);
            produced += 100;
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        let status = cluster
            .client
            .wait_complete(&id, Duration::from_secs(90))
            .await
            .unwrap();
        if status["statusCode"] != "SUCCESS" {
            cluster.fail(format!("compaction {id} did not succeed: {status}"));
        }
    }
    wait_committed_to_end(&cluster, &kafka, 2).await;
    let ids = wait_published(&cluster, produced as usize, Duration::from_secs(60)).await;
    assert_exactly_once(&ids, produced);

    // Segments published under a compaction's lock were carried into its version: used
    // segments whose file was written for another version (deep storage keys name the version
    // a segment was written with, colons left out).
    let used = used_segments(&cluster.client, "events").await;
    let carried = used
        .iter()
        .filter(|s| {
            let written_as = s["version"].as_str().unwrap_or_default().replace(':', "");
            s["loadSpec"]["path"]
                .as_str()
                .is_some_and(|p| !p.contains(&format!("/{written_as}/")))
        })
        .count();
    assert!(
        carried > 0,
        "no appended segment was carried into a compaction's version: {used:?}"
    );
    assert_no_reading_task_failed(&cluster).await;

    // The originals of carried segments are unused; killing them keeps the files their copies use.
    let kill =
        json!({"type": "kill", "id": "kill-events", "dataSource": "events", "interval": days});
    let id = cluster.client.submit(&kill).await.unwrap();
    let status = cluster
        .client
        .wait_complete(&id, Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    assert_exactly_once(&published_ids(&cluster, "events").await, produced);
}

/// With authentication and TLS on, the supervisor talks to its tasks' chat APIs (HTTPS on their
/// TLS ports) and the tasks to the overlord with the internal credentials: ingestion is exactly
/// once as without them.
#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_with_authentication_and_tls() {
    let mut kafka = Kafka::start(2);
    let cluster = Cluster::start(
        ClusterSpec::workers(&[4])
            .basic_auth(crate::cli::PASSWORD, "internal-secret")
            .tls(),
    )
    .await;
    let mut spec = supervisor_spec(&kafka.servers(), 2, 1, "PT4S");
    spec["spec"]["tuningConfig"]["maxSavedParseExceptions"] = json!(5);
    submit_supervisor(&cluster, &spec).await;
    kafka.produce(200);
    kafka.produce_raw("not json at all");
    let ids = wait_published(&cluster, 200, Duration::from_secs(60)).await;
    assert_exactly_once(&ids, 200);
    // The bad message is a parse error of the supervisor, shaped as Druid's report; and a
    // reading task's report is live, with its counts and their moving averages.
    poll_until(&cluster, Duration::from_secs(30), async || {
        let r = cluster
            .client
            .get("/supervisor/events/parseErrors")
            .await
            .unwrap();
        let errors = r.json();
        match errors.as_array().map(Vec::as_slice) {
            Some([e])
                if e["input"] == "not json at all"
                    && e["errorType"] == "unparseable"
                    && e["details"][0].is_string()
                    && e["timeOfExceptionMillis"].is_i64() =>
            {
                Ok(())
            }
            _ => Err(format!("parseErrors: {} {}", r.status, r.body)),
        }
    })
    .await;
    poll_until(&cluster, Duration::from_secs(30), async || {
        for id in running_task_ids(&cluster).await {
            let r = cluster
                .client
                .get(&format!("/task/{id}/reports"))
                .await
                .unwrap();
            let payload = &r.json()["ingestionStatsAndErrors"]["payload"];
            if payload["ingestionState"] == "BUILD_SEGMENTS"
                && payload["rowStats"]["totals"]["buildSegments"]["processed"].is_u64()
                && payload["rowStats"]["movingAverages"]["buildSegments"]["1m"]["processed"]
                    .is_f64()
            {
                return Ok(());
            }
        }
        Err("no reading task has a live report".to_string())
    })
    .await;
    kafka.produce(100);
    wait_committed_to_end(&cluster, &kafka, 2).await;
    let ids = wait_published(&cluster, 300, Duration::from_secs(60)).await;
    assert_exactly_once(&ids, 300);
    assert_no_reading_task_failed(&cluster).await;
    // `drover supervisor status` shows the lag of each partition.
    poll_until(&cluster, Duration::from_secs(30), async || {
        let url = cluster.overlords[0].url.clone();
        let out = crate::cli::drover(&cluster, &url, &["supervisor", "status", "events"]).await;
        let table = crate::cli::text(&out.stdout);
        let header = table
            .lines()
            .any(|l| l.starts_with("PARTITION") && l.ends_with("LAG"));
        let rows = ["0 ", "1 "]
            .iter()
            .all(|p| table.lines().any(|l| l.starts_with(p) && l.ends_with(" 0")));
        if out.status.success() && header && rows {
            return Ok(());
        }
        Err(format!(
            "supervisor status: {table}{}",
            crate::cli::text(&out.stderr)
        ))
    })
    .await;
    // Prometheus sees the supervisor caught up (its lag as its status report has it).
    poll_until(&cluster, Duration::from_secs(60), async || {
        let text = cluster.client.get_root("/metrics").await.unwrap().body;
        let caught_up = text
            .lines()
            .any(|l| l == r#"druid_ingest_kafka_lag{dataSource="events",stream="events"} 0"#);
        let healthy = text.lines().any(|l| {
            l.starts_with(r#"druid_supervisor_healthy{supervisorId="events""#) && l.ends_with(" 1")
        });
        if caught_up && healthy {
            return Ok(());
        }
        Err(format!(
            "metrics do not show the supervisor caught up and healthy: {text}"
        ))
    })
    .await;
}
