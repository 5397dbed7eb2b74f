//! The `index` / `index_parallel` task (run here with one worker: Drover does not split batch
//! ingestion into sub-tasks): read the inputs, build segment partitions, write them as Parquet to
//! deep storage, and publish them with one `segmentTransactionalInsert` under the task's locks.
//! The report (`report.json`, Druid's `ingestionStatsAndErrors`) is written whatever happens.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drover_core::interval::Interval;
use drover_core::lock::TaskLock;
use drover_core::segment::{numbered_shard_spec, DataSegment};
use drover_core::time::to_iso;
use drover_core::TaskStatus;
use drover_ingest::build::{build_partitioned, partition_stats, BuildObserver, Built, ParseError};
use drover_ingest::input::Input;
use drover_ingest::partitioning::{shard_specs, ChunkStats, PartitionPlan};
use drover_ingest::row_builder::RowStats;
use drover_ingest::segment::WrittenPartition;
use drover_ingest::IngestionSpec;
use drover_task::Task;
use serde_json::{json, Value};

use crate::deep_storage::DeepStorage;
use crate::failure::TaskFailure;
use crate::live::LiveReport;
use crate::overlord_client::OverlordClient;
use crate::parallel::progress::Tracker;

/// Druid's `taskLockTimeout` default.
const DEFAULT_LOCK_TIMEOUT_MS: u64 = 300_000;

/// How far an ingestion task got: what its final report says, and (through `live`, which its
/// chat API serves) what its live reports say while it runs.
pub(crate) struct Progress {
    pub segments: usize,
    /// The state, the counts and the recent parse errors, as the chat API shows them.
    pub live: Arc<LiveReport>,
    /// A parallel task's sub-task: what it hands its supervisor (`subTaskReport`).
    pub sub_task_report: Option<Value>,
}

impl Progress {
    /// `attempt_dir`: where `live-stats.json` goes for the middle manager's metrics.
    pub(crate) fn new(task: &Task, attempt_dir: &Path) -> Progress {
        let live = LiveReport::new(task.id.as_str(), 0);
        std::fs::create_dir_all(attempt_dir).ok();
        live.write_stats_to(
            attempt_dir.join("live-stats.json"),
            task.data_source.as_str(),
            &task.task_type,
        );
        Progress {
            segments: 0,
            live,
            sub_task_report: None,
        }
    }

    /// `ingestionState`: `NOT_STARTED`, `BUILD_SEGMENTS`, `COMPLETED`.
    pub(crate) fn set_state(&mut self, state: &'static str) {
        self.live.set_state(state);
    }

    pub(crate) fn set_stats(&mut self, stats: RowStats) {
        self.live.set_totals(stats);
    }

    /// Serves this task's live reports on its chat API, if it has one. A batch task runs on
    /// without: the reports are a view, not part of the work.
    pub(crate) fn serve_live_reports(&self) {
        self.serve_live_reports_and(axum::Router::new());
    }

    /// [`Self::serve_live_reports`], with more routes beside them.
    pub(crate) fn serve_live_reports_and(&self, more: axum::Router) {
        let routes = crate::chat_server::report_routes(self.live.clone()).merge(more);
        if let Err(e) = crate::chat_server::start(routes) {
            println!("no live reports for this task: {e}");
        }
    }

    /// Writes the report whatever happened, and turns the outcome into the task's status.
    pub(crate) fn conclude(
        &self,
        task: &Task,
        attempt_dir: &Path,
        result: Result<(), TaskFailure>,
    ) -> TaskStatus {
        self.live.write_stats_file();
        let error = result.as_ref().err().cloned();
        if let Err(e) = write_report(
            task,
            attempt_dir,
            self,
            error.as_ref().map(|e| e.0.as_str()),
        ) {
            eprintln!("cannot write report.json: {e}");
        }
        match result {
            Ok(()) => {
                println!(
                    "{} task {} published {} segment(s); rows: {:?}",
                    task.task_type,
                    task.id,
                    self.segments,
                    self.live.totals()
                );
                TaskStatus::success(task.id.clone())
            }
            Err(e) => {
                println!("{} task {} failed: {e}", task.task_type, task.id);
                TaskStatus::failure(task.id.clone(), e.0)
            }
        }
    }
}

pub fn run(task: &Task, spec: &IngestionSpec, task_dir: &Path, attempt_dir: &Path) -> TaskStatus {
    let mut progress = Progress::new(task, attempt_dir);
    let tracker = Tracker::new(task.id.as_str());
    progress.serve_live_reports_and(if task.task_type == "index_parallel" {
        crate::parallel::progress::routes(tracker.clone())
    } else {
        axum::Router::new()
    });
    let result = crate::block_on(ingest(task, spec, task_dir, &mut progress, tracker));
    progress.conclude(task, attempt_dir, result)
}

fn context_u64(task: &Task, key: &str) -> Option<u64> {
    task.context()
        .and_then(|c| c.get(key))
        .and_then(Value::as_u64)
}

async fn ingest(
    task: &Task,
    spec: &IngestionSpec,
    task_dir: &Path,
    progress: &mut Progress,
    tracker: Arc<Tracker>,
) -> Result<(), TaskFailure> {
    let overlord = OverlordClient::from_env(task.payload().clone())?;
    let deep = DeepStorage::from_env()?;
    // Sub-tasks are given the spec under `spec` (very old specs put it at the top level).
    if task.task_type == "index_parallel"
        && spec.tuning.parallel.max_num_concurrent_sub_tasks > 1
        && task.payload().get("spec").is_some()
    {
        let source = task
            .payload()
            .pointer("/spec/ioConfig/inputSource")
            .cloned()
            .unwrap_or_default();
        match crate::parallel::splits::split(&spec.input_source, &source, &spec.tuning.parallel)
            .await?
        {
            Some(splits) => {
                return crate::parallel::supervise(
                    task, spec, splits, progress, &overlord, &deep, tracker,
                )
                .await
            }
            None => println!("the input source cannot be split: running as one task"),
        }
    }
    let rewrite = Rewrite::default();
    build_and_publish(task, spec, task_dir, progress, &overlord, &deep, &rewrite).await
}

/// What a compaction adds to a publish.
#[derive(Default)]
pub(crate) struct Rewrite<'a> {
    /// Marked unused in the publish's transaction (`dropExisting`).
    pub replaced: &'a [DataSegment],
    /// Recorded on every new segment as `lastCompactionState`.
    pub state: Option<Value>,
}

/// Reads the spec's inputs into segments and publishes them under the task's locks.
pub(crate) async fn build_and_publish(
    task: &Task,
    spec: &IngestionSpec,
    task_dir: &Path,
    progress: &mut Progress,
    overlord: &OverlordClient,
    deep: &DeepStorage,
    rewrite: &Rewrite<'_>,
) -> Result<(), TaskFailure> {
    let gathered = gather_inputs(spec, task_dir, overlord, deep).await?;
    let plan = match spec.tuning.partitions.needs_stats() {
        true => {
            progress.set_state("DETERMINE_PARTITIONS");
            let stats = determine_stats(spec, &gathered.inputs, task_dir)?;
            Some(PartitionPlan::from_stats(&spec.tuning.partitions, &stats))
        }
        false if spec.tuning.partitions.is_secondary() => Some(PartitionPlan::from_stats(
            &spec.tuning.partitions,
            &Default::default(),
        )),
        false => None,
    };
    let built = build_rows(spec, &gathered.inputs, task_dir, progress, plan.as_ref())?;
    let write_started = std::time::Instant::now();
    let mut segments = write_segments(task, spec, &built, plan.as_ref(), overlord, deep).await?;
    for s in &mut segments {
        s.last_compaction_state = rewrite.state.clone();
    }
    println!(
        "uploaded {} segment file(s) in {} ms; peak RSS {} kB",
        segments.len(),
        write_started.elapsed().as_millis(),
        peak_rss_kb().unwrap_or(0)
    );
    progress.segments = segments.len();
    pause_before_publish(task).await;
    publish(
        overlord,
        &segments,
        rewrite.replaced,
        &gathered.segments_read,
    )
    .await?;
    progress.set_state("COMPLETED");
    Ok(())
}

/// The spec's inputs, fetched where needed into the task directory.
pub(crate) async fn gather_inputs(
    spec: &IngestionSpec,
    task_dir: &Path,
    overlord: &OverlordClient,
    deep: &DeepStorage,
) -> Result<crate::inputs::Gathered, TaskFailure> {
    let gathered = crate::inputs::gather(
        &spec.input_source,
        &spec.timestamp,
        overlord,
        deep,
        &task_dir.join("tmp"),
    )
    .await?;
    println!(
        "reading {} input(s): {}",
        gathered.inputs.len(),
        gathered
            .inputs
            .iter()
            .map(Input::describe)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(gathered)
}

/// The first pass of hashed and range partitioning (its parse errors are counted by the
/// second).
pub(crate) fn determine_stats(
    spec: &IngestionSpec,
    inputs: &[Input],
    task_dir: &Path,
) -> Result<ChunkStats, TaskFailure> {
    let started = std::time::Instant::now();
    let stats = partition_stats(
        spec,
        inputs,
        &task_dir.join("determine"),
        &mut |_: &str, _: RowStats| {},
    )
    .map_err(|e| fail!("{e}"))?;
    std::fs::remove_dir_all(task_dir.join("determine")).ok();
    println!(
        "determined partitions of {} time chunk(s) in {} ms",
        stats.chunks.len(),
        started.elapsed().as_millis()
    );
    Ok(stats)
}

/// Reads `inputs` into segment files (bucketed by `plan`), telling `progress` as it goes.
pub(crate) fn build_rows(
    spec: &IngestionSpec,
    inputs: &[Input],
    task_dir: &Path,
    progress: &mut Progress,
    plan: Option<&PartitionPlan>,
) -> Result<Built, TaskFailure> {
    progress.set_state("BUILD_SEGMENTS");
    progress
        .live
        .set_keep(spec.tuning.max_saved_parse_exceptions as usize);
    // CPU-bound and blocking, which is fine: nothing else runs on this one-thread runtime (the
    // chat API has its own thread).
    let mut observer = Observer {
        progress,
        log_errors: spec.tuning.log_parse_exceptions,
    };
    let built = build_partitioned(spec, inputs, &task_dir.join("work"), &mut observer, plan)
        .map_err(|e| TaskFailure(e.to_string()))?;
    progress.set_stats(built.stats);
    progress.live.add_output(crate::live::Output {
        rows: built.partitions.iter().map(|p| p.rows).sum(),
        persists: built.spills as u64,
        persist_ms: built.spill_time.as_millis() as u64,
    });
    println!(
        "read {} input row(s) in {} ms: {:?}; {} sorted run(s) spilled to disk",
        built.stats.processed + built.stats.thrown_away + built.stats.unparseable,
        built.read_ms,
        built.stats,
        built.spills
    );
    println!(
        "merged and wrote {} segment file(s) in {} ms",
        built.partitions.len(),
        built.write_ms
    );
    Ok(built)
}

/// Context `drover.pauseBeforePublishMs`: a window for tests to act in.
pub(crate) async fn pause_before_publish(task: &Task) {
    if let Some(ms) = context_u64(task, "drover.pauseBeforePublishMs") {
        println!("pausing {ms} ms before publishing (context drover.pauseBeforePublishMs)");
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// `segmentTransactionalInsert` of `segments`, replacing `replaced`.
pub(crate) async fn publish(
    overlord: &OverlordClient,
    segments: &[DataSegment],
    replaced: &[DataSegment],
    segments_read: &[String],
) -> Result<(), TaskFailure> {
    if segments.is_empty() && replaced.is_empty() {
        return Ok(());
    }
    let result = overlord
        .submit(
            json!({"type": "segmentTransactionalInsert", "segments": segments,
            "segmentsToBeOverwritten": replaced, "inputSegmentIds": segments_read}),
        )
        .await?;
    if result.get("success").and_then(Value::as_bool) != Some(true) {
        return Err(fail!(
            "Failed to publish segments: {}",
            result
                .get("errorMsg")
                .and_then(Value::as_str)
                .unwrap_or("no reason given")
        ));
    }
    println!("published {} segment(s)", segments.len());
    Ok(())
}

/// Takes the build's news into the task's progress.
struct Observer<'a> {
    progress: &'a mut Progress,
    log_errors: bool,
}

impl BuildObserver for Observer<'_> {
    fn parse_error(&mut self, error: &ParseError<'_>, stats: RowStats) {
        if self.log_errors {
            println!("parse exception: {}", error.detail);
        }
        // A build that fails on too many errors still reports the counts it reached.
        self.progress.set_stats(stats);
        self.progress.live.push_error(error.report());
    }

    fn progress(&mut self, stats: RowStats) {
        self.progress.set_stats(stats);
    }
}

/// Puts each partition in deep storage and describes it. Overwriting takes the version of the
/// task's lock on the bucket (partitions numbered from 0, or as `plan`'s buckets say);
/// appending asks the overlord to allocate each partition after what is there.
pub(crate) async fn write_segments(
    task: &Task,
    spec: &IngestionSpec,
    built: &Built,
    plan: Option<&PartitionPlan>,
    overlord: &OverlordClient,
    deep: &DeepStorage,
) -> Result<Vec<DataSegment>, TaskFailure> {
    let lock_timeout = context_u64(task, "taskLockTimeout").unwrap_or(DEFAULT_LOCK_TIMEOUT_MS);
    let mut locks: Vec<TaskLock> = if spec.append_to_existing {
        Vec::new()
    } else {
        serde_json::from_value(overlord.submit(json!({"type": "lockList"})).await?)
            .map_err(|e| fail!("lockList answer: {e}"))?
    };
    let bucketed: Option<Vec<Value>> = plan.map(|plan| {
        let written: Vec<(i64, u32)> = built
            .partitions
            .iter()
            .map(|p| (p.interval.start.timestamp_millis(), p.bucket))
            .collect();
        shard_specs(&spec.tuning.partitions, plan, &written)
    });
    let dimensions: Vec<String> = built.dimensions.iter().map(|d| d.name.clone()).collect();
    let metrics: Vec<String> = spec.metrics.iter().map(|m| m.name.clone()).collect();
    let mut previous: Option<String> = None;
    let mut out = Vec::new();
    for (i, p) in built.partitions.iter().enumerate() {
        let (interval, version, shard_spec) = if spec.append_to_existing {
            let (interval, version, num) =
                allocate(overlord, spec, &p.interval, task.id.as_str(), &mut previous).await?;
            (interval, version, numbered_shard_spec(num))
        } else {
            let lock = match locks.iter().find(|l| l.interval.encloses(&p.interval)) {
                Some(l) => l.clone(),
                None => {
                    let lock = acquire(overlord, task, &p.interval, lock_timeout).await?;
                    locks.push(lock.clone());
                    lock
                }
            };
            if lock.revoked {
                return Err(fail!(
                    "Task lock on interval [{}] was revoked by a higher-priority task",
                    lock.interval
                ));
            }
            let shard_spec = match &bucketed {
                Some(specs) => specs[i].clone(),
                None => numbered_shard_spec(p.partition_num),
            };
            (p.interval, lock.version, shard_spec)
        };
        out.push(
            upload(
                task,
                spec,
                p,
                interval,
                version,
                shard_spec,
                &dimensions,
                &metrics,
                deep,
            )
            .await?,
        );
    }
    Ok(out)
}

/// `segmentAllocate` for the bucket of `interval` in `sequence`, after `previous` (which becomes
/// the allocated id): the same sequence, previous id and bucket always get the same segment, so
/// replicas of a streaming task agree. Returns (interval, version, partition number): the
/// interval is the bucket's, or that of a coarser time chunk already there (a compacted day).
pub(crate) async fn allocate(
    overlord: &OverlordClient,
    spec: &IngestionSpec,
    interval: &Interval,
    sequence: &str,
    previous: &mut Option<String>,
) -> Result<(Interval, String, u32), TaskFailure> {
    let allocated = overlord
        .submit(json!({
            "type": "segmentAllocate",
            "dataSource": spec.data_source,
            "timestamp": to_iso(interval.start),
            "queryGranularity": spec.granularity.query,
            "preferredSegmentGranularity": spec.granularity.segment,
            "sequenceName": sequence,
            "previousSegmentId": previous,
            "skipSegmentLineageCheck": false,
        }))
        .await?;
    if allocated.is_null() {
        return Err(fail!(
            "could not allocate a segment for [{interval}]: the interval is locked by another task"
        ));
    }
    let version = allocated["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let num = allocated["shardSpec"]["partitionNum"].as_u64().unwrap_or(0) as u32;
    let chunk = match allocated.get("interval").and_then(Value::as_str) {
        Some(text) => Interval::parse(text)
            .map_err(|e| fail!("segmentAllocate answered a bad interval [{text}]: {e}"))?,
        None => *interval,
    };
    if !chunk.encloses(interval) {
        return Err(fail!(
            "segmentAllocate answered [{chunk}], which does not hold the rows of [{interval}]"
        ));
    }
    *previous = Some(drover_core::segment::segment_id(
        &spec.data_source,
        &chunk,
        &version,
        num,
    ));
    Ok((chunk, version, num))
}

/// Puts one segment file in deep storage (under a key that names the task, so replicas writing
/// the same segment never clobber each other) and describes it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn upload(
    task: &Task,
    spec: &IngestionSpec,
    p: &WrittenPartition,
    interval: Interval,
    version: String,
    shard_spec: Value,
    dimensions: &[String],
    metrics: &[String],
    deep: &DeepStorage,
) -> Result<DataSegment, TaskFailure> {
    let bytes = std::fs::read(&p.path)
        .map_err(|e| fail!("cannot read segment file {}: {e}", p.path.display()))?;
    let size = bytes.len() as u64;
    let key = format!(
        "{}/{}_{}/{}/{}/{}.parquet",
        spec.data_source,
        path_safe(&to_iso(interval.start)),
        path_safe(&to_iso(interval.end)),
        path_safe(&version),
        drover_core::segment::partition_num_of(&shard_spec),
        task.id
    );
    let load_spec = deep.put(&key, bytes).await?;
    std::fs::remove_file(&p.path).ok();
    let segment = DataSegment {
        data_source: spec.data_source.clone(),
        interval,
        version,
        load_spec,
        dimensions: dimensions.join(","),
        metrics: metrics.join(","),
        shard_spec,
        binary_version: 9,
        size,
        identifier: String::new(),
        last_compaction_state: None,
    };
    println!(
        "wrote segment {} ({} rows, {size} bytes)",
        segment.id(),
        p.rows
    );
    Ok(segment)
}

async fn acquire(
    overlord: &OverlordClient,
    task: &Task,
    interval: &Interval,
    timeout_ms: u64,
) -> Result<TaskLock, TaskFailure> {
    println!("acquiring a {:?} lock on [{interval}]", task.write_lock);
    let lock = overlord
        .submit(json!({"type": "lockAcquire", "lockType": task.write_lock,
            "interval": interval, "timeoutMs": timeout_ms}))
        .await?;
    if lock.is_null() {
        return Err(fail!(
            "could not acquire a lock on [{interval}] within {timeout_ms} ms (taskLockTimeout)"
        ));
    }
    serde_json::from_value(lock).map_err(|e| fail!("lockAcquire answer: {e}"))
}

/// The process's high-water resident set size (`VmHWM`), for the log and the benchmark.
pub(crate) fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the peon process has used so far (`getrusage`): its CPU time in user and kernel mode,
/// the pages it faulted in, and how often it was taken off a core while it could still run
/// (involuntary context switches, which say other work competed for the cores).
pub(crate) struct ProcessUsage {
    user: Duration,
    system: Duration,
    minor_faults: i64,
    preempted: i64,
}

impl ProcessUsage {
    pub(crate) fn now() -> ProcessUsage {
        // SAFETY: rusage is a plain C struct, for which all zeros is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage only writes into the struct we own and pass by reference.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        ProcessUsage {
            user: time(ru.ru_utime),
            system: time(ru.ru_stime),
            minor_faults: ru.ru_minflt,
            preempted: ru.ru_nivcsw,
        }
    }
}

impl std::fmt::Display for ProcessUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cpu_user_ms={} cpu_system_ms={} page_faults={} preempted={}",
            self.user.as_millis(),
            self.system.as_millis(),
            self.minor_faults,
            self.preempted
        )
    }
}

/// CPU time the calling thread has used, for the read rate per core the logs report.
pub(crate) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_THREAD_CPUTIME_ID is always
    // available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// ISO instants carry ':' which some object stores and file systems dislike.
pub(crate) fn path_safe(s: &str) -> String {
    s.replace(':', "")
}

fn write_report(
    task: &Task,
    attempt_dir: &Path,
    progress: &Progress,
    error: Option<&str>,
) -> std::io::Result<()> {
    let zeros = RowStats::default();
    let unparseable = progress.live.errors();
    let report = json!({
        "ingestionStatsAndErrors": {
            "type": "ingestionStatsAndErrors",
            "taskId": task.id,
            "payload": {
                "ingestionState": progress.live.state(),
                "unparseableEvents": if unparseable.is_empty() {
                    json!({})
                } else {
                    json!({"buildSegments": unparseable})
                },
                "rowStats": {
                    "determinePartitions": zeros,
                    "buildSegments": progress.live.totals(),
                },
                "errorMsg": error,
                "segmentAvailabilityConfirmed": false,
                "segmentAvailabilityWaitTimeMs": 0,
                "segmentsPublished": if error.is_none() { progress.segments } else { 0 },
            }
        }
    });
    let mut report = report;
    if let Some(Value::Object(handed)) = &progress.sub_task_report {
        let mut handed = handed.clone();
        handed.insert("type".into(), json!("subTaskReport"));
        report["subTaskReport"] = Value::Object(handed);
    }
    write_report_file(attempt_dir, &report)
}

/// Writes a task's report as `report.json` in its attempt directory, whole or not at all.
pub(crate) fn write_report_file(attempt_dir: &Path, report: &Value) -> std::io::Result<()> {
    std::fs::create_dir_all(attempt_dir)?;
    let tmp = attempt_dir.join("report.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(report).expect("reports serialize"))?;
    std::fs::rename(tmp, attempt_dir.join("report.json"))
}
