//! `drover-bench`: starts a real cluster (ZooKeeper, one overlord, two middle managers) from the
//! binaries beside it and prints the figures recorded in docs/benchmarks.md. Build and run it in
//! release mode: `cargo run --release -p drover-bench`.

use std::path::Path;
use std::time::{Duration, Instant};

mod auto_compaction;
mod failover;
mod hardening;
mod ingest;
mod kafka;
mod lifecycle;
mod security;

use clap::Parser;
use drover_testkit::{bin_dir, Cluster, ClusterSpec, ZooKeeper};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Measure Drover's task path on a real single-machine cluster")]
struct Args {
    /// Tasks submitted one at a time for the latency figures.
    #[arg(long, default_value_t = 200)]
    latency_tasks: usize,
    /// Tasks submitted at once for the throughput figure.
    #[arg(long, default_value_t = 1000)]
    throughput_tasks: usize,
    /// Concurrent submitters for the throughput run.
    #[arg(long, default_value_t = 16)]
    submitters: usize,
    /// Task slots per middle manager.
    #[arg(long, default_value_t = 4)]
    capacity: u32,
    /// Peons spawned directly for the spawn → exit figure.
    #[arg(long, default_value_t = 200)]
    peon_runs: usize,
    /// Measure failover instead: leader kill -9 and SIGTERM, middle manager kill -9.
    #[arg(long)]
    failover: bool,
    /// Measure batch ingestion instead: this many generated rows, rollup off and on.
    #[arg(long)]
    ingest: Option<usize>,
    /// With --ingest: build the segments in this process only (no cluster, no DuckDB), five
    /// times each, for profiling the per-core work (e.g. under `perf record`).
    #[arg(long)]
    in_process: bool,
    /// With --ingest --in-process: only this rollup setting (`on` or `off`), for profiling one.
    #[arg(long)]
    rollup: Option<String>,
    /// Measure Kafka ingestion instead: one task over this many messages (rollup off and on),
    /// produce → publish latency, and the replacement of a killed task.
    #[arg(long)]
    kafka: Option<usize>,
    /// Measure the hardening figures instead: listings at 10,000 tasks, 1,100 half-sent
    /// requests, submissions during a metadata-store outage (needs DROVER_TEST_POSTGRES_URL).
    #[arg(long)]
    hardening: bool,
    /// Measure the segment lifecycle instead: compaction of this many rows (beside DuckDB) and
    /// the kill of 10,000 unused segments.
    #[arg(long)]
    lifecycle: Option<usize>,
    /// Measure automatic compaction under a Kafka supervisor instead, for this many seconds.
    #[arg(long)]
    auto_compaction: Option<u64>,
    /// Measure what authentication and TLS cost instead: this many requests per configuration.
    #[arg(long)]
    security: Option<usize>,
    /// The task runners to measure the task path on, side by side.
    #[arg(long, value_delimiter = ',', default_values_t = ["remote".to_string(), "httpRemote".to_string()])]
    runners: Vec<String>,
    /// taskCleanupTimeout for the failover run.
    #[arg(long, default_value = "5s")]
    cleanup_timeout: String,
}

/// A cluster on a ZooKeeper of its own, so nothing else shares it while it is measured. Fields
/// drop in order: the cluster's processes stop before ZooKeeper, and its directory goes last.
pub struct OwnCluster {
    pub cluster: Cluster,
    _zk: ZooKeeper,
    _zk_dir: tempfile::TempDir,
}

impl OwnCluster {
    pub fn zookeeper_pid(&self) -> Option<u32> {
        self._zk.pid()
    }
}

/// CPU seconds a process has used (user + system), and those of its reaped children (a middle
/// manager's peons), from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<f64> = stat
        .rsplit(')')
        .next()?
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // After the command: state, ppid, … utime is the 12th, stime, cutime, cstime follow.
    let ticks = 100.0; // sysconf(_SC_CLK_TCK) on Linux
    Some((
        (fields.get(11)? + fields.get(12)?) / ticks,
        (fields.get(13)? + fields.get(14)?) / ticks,
    ))
}

/// The running peon launchers (`drover-peon --launcher`) among a middle manager's children.
fn launchers_of(mm: u32) -> Vec<u32> {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{mm}/task")) else {
        return vec![];
    };
    threads
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains("--launcher"))
                .unwrap_or(false)
        })
        .collect()
}

/// CPU seconds of the overlord, the middle managers, their peons and ZooKeeper, in that order.
fn cluster_cpu(own: &OwnCluster) -> [f64; 4] {
    let c = &own.cluster;
    let own_cpu = |pid: Option<u32>| pid.and_then(cpu_seconds).unwrap_or((0.0, 0.0));
    let overlord = own_cpu(c.overlords[0].process.pid()).0;
    let (mut mms, mut peons) = (0.0, 0.0);
    for mm in &c.middle_managers {
        let (own, children) = own_cpu(mm.process.pid());
        mms += own;
        peons += children;
        // Forked peons are reaped by the peon launcher, the middle manager's child: its own CPU
        // and its reaped children's count as the peons'.
        for launcher in mm.process.pid().map(launchers_of).unwrap_or_default() {
            let (own, children) = own_cpu(Some(launcher));
            peons += own + children;
        }
    }
    let zk = own_cpu(own.zookeeper_pid()).0;
    [overlord, mms, peons, zk]
}

pub async fn own_cluster(spec: ClusterSpec) -> anyhow::Result<OwnCluster> {
    let zk_dir = tempfile::Builder::new()
        .prefix("drover-bench-zk-")
        .tempdir()?;
    let zk = ZooKeeper::start(zk_dir.path().to_path_buf());
    let cluster = Cluster::start(ClusterSpec {
        zk_connect: Some(zk.connect_string()),
        ..spec
    })
    .await;
    Ok(OwnCluster {
        cluster,
        _zk: zk,
        _zk_dir: zk_dir,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<34} median {:>8.2} ms   p99 {:>8.2} ms   (n={})",
        percentile(&values, 0.5),
        percentile(&values, 0.99),
        values.len()
    );
}

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: drover-bench is a debug build; run it with --release for meaningful figures"
        );
    }
    println!("binaries: {}", bin_dir().display());
    if args.failover {
        return failover::run(&args.cleanup_timeout).await;
    }
    if args.hardening {
        return hardening::run().await;
    }
    if let Some(n) = args.security {
        return security::run(n).await;
    }
    if let Some(seconds) = args.auto_compaction {
        return auto_compaction::run(seconds).await;
    }
    if let Some(rows) = args.lifecycle {
        return lifecycle::run(rows).await;
    }
    if let Some(rows) = args.ingest {
        if args.in_process {
            return ingest::in_process(rows, args.rollup.as_deref());
        }
        return ingest::run(rows).await;
    }
    if let Some(messages) = args.kafka {
        return kafka::run(messages).await;
    }
    // The task path on each runner, one cluster after the other, then side by side.
    let mut figures = Vec::new();
    for runner in &args.runners {
        figures.push((runner, task_path(&args, runner).await?));
    }
    println!(
        "== side by side: 2 middle managers x {} slots ==",
        args.capacity
    );
    println!(
        "{:<12} {:>18} {:>18} {:>18} {:>10} {:>16}",
        "runner",
        "POST->RUNNING med",
        "POST->RUNNING p99",
        "POST->SUCCESS med",
        "tasks/s",
        "MM kill->FAILED"
    );
    for (runner, f) in &figures {
        println!(
            "{runner:<12} {:>15.2} ms {:>15.2} ms {:>15.2} ms {:>10.1} {:>14.2} s",
            f.to_running_median,
            f.to_running_p99,
            f.to_success_median,
            f.throughput,
            f.recovery.as_secs_f64()
        );
    }

    // 4. A noop peon on its own: spawn -> exit, and its peak RSS.
    peon_runs(args.peon_runs)?;
    Ok(())
}

/// What one runner's task path measured.
struct TaskPathFigures {
    to_running_median: f64,
    to_running_p99: f64,
    to_success_median: f64,
    throughput: f64,
    /// kill -9 of a middle manager → its task FAILED (so its supervisor may replace it).
    recovery: Duration,
}

/// kill -9 of the middle manager running a long task, on the overlord's default
/// `task_cleanup_timeout` and `worker_sync_unstable_timeout`: how long until the task is FAILED,
/// which is when a supervisor starts its replacement. (The test kit's middle managers have a 4 s
/// ZooKeeper session instead of the default 30 s, which the ZooKeeper runner waits for.)
async fn recovery(own: &mut OwnCluster, runner_type: &str) -> anyhow::Result<Duration> {
    let c = own.cluster.client.clone();
    let id = c
        .submit(&json!({"type":"noop","id":"bench_recovery","runTime":600_000}))
        .await?;
    c.wait_running(&id, Duration::from_secs(30)).await?;
    let workers = c.workers().await?;
    let host = workers
        .iter()
        .find(|w| {
            w["runningTasks"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == id.as_str()))
        })
        .and_then(|w| w["worker"]["host"].as_str())
        .ok_or_else(|| anyhow::anyhow!("no worker runs {id}: {workers:?}"))?
        .to_string();
    let victim = own
        .cluster
        .middle_managers
        .iter_mut()
        .find(|m| m.host == host)
        .ok_or_else(|| anyhow::anyhow!("{host} is not one of the middle managers"))?;
    victim.process.kill9();
    let killed = Instant::now();
    let status = c.wait_complete(&id, Duration::from_secs(600)).await?;
    let took = killed.elapsed();
    anyhow::ensure!(status["statusCode"] == "FAILED", "{status}");
    println!("== {runner_type}: recovery ==");
    println!(
        "{:<34} {:>8.2} s",
        "middle manager kill -9 -> FAILED",
        took.as_secs_f64()
    );
    Ok(took)
}

/// Latency one task at a time, throughput of many at once, and the servers' memory, on a
/// cluster of two middle managers using `runner_type`.
async fn task_path(args: &Args, runner_type: &str) -> anyhow::Result<TaskPathFigures> {
    let mut own =
        own_cluster(ClusterSpec::workers(&[args.capacity, args.capacity]).runner(runner_type))
            .await?;
    let cluster = &own.cluster;
    let c = cluster.client.clone();

    // 1. Latency, one task at a time.
    let (mut to_running, mut to_success, mut to_peon) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.latency_tasks {
        let id = format!("bench_latency_{i}");
        let posted = Instant::now();
        let posted_wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64()
            * 1000.0;
        c.submit(&json!({"type":"noop","id":id,"runTime":0}))
            .await?;
        let mut running_at = None;
        loop {
            let s = c.status(&id).await?.unwrap_or_default();
            let done = s["statusCode"] == "SUCCESS" || s["statusCode"] == "FAILED";
            if running_at.is_none() && (done || s["runnerStatusCode"] == "RUNNING") {
                running_at = Some(posted.elapsed());
            }
            if done {
                anyhow::ensure!(s["statusCode"] == "SUCCESS", "latency task failed: {s}");
                to_success.push(posted.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        to_running.push(running_at.unwrap().as_secs_f64() * 1000.0);
        if let Some(log) = c.log(&id).await? {
            let started = log
                .lines()
                .find(|l| l.contains(" started at "))
                .and_then(|l| {
                    l.split_whitespace()
                        .skip_while(|w| *w != "at")
                        .nth(1)?
                        .parse::<f64>()
                        .ok()
                });
            if let Some(ms) = started {
                to_peon.push(ms - posted_wall);
            }
        }
    }
    println!("== {runner_type}: latency, runTime 0, one task at a time ==");
    let mut sorted = to_running.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (to_running_median, to_running_p99) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99));
    let mut sorted = to_success.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let to_success_median = percentile(&sorted, 0.5);
    summary("POST -> RUNNING (API)", to_running);
    summary("POST -> task running in its peon", to_peon);
    summary("POST -> SUCCESS (API)", to_success);

    // 2. Throughput through two middle managers.
    let n = args.throughput_tasks;
    let cpu_before = cluster_cpu(&own);
    let started = Instant::now();
    let mut submitters = Vec::new();
    for s in 0..args.submitters {
        let c = c.clone();
        let ids: Vec<usize> = (0..n).filter(|i| i % args.submitters == s).collect();
        submitters.push(tokio::spawn(async move {
            for i in ids {
                c.submit(&json!({"type":"noop","id":format!("bench_tput_{i}"),"runTime":0}))
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for s in submitters {
        s.await??;
    }
    let submitted = started.elapsed();
    // Done when none is waiting, pending or running and all are complete. The first three lists
    // are the overlord's memory and are polled often; the complete list comes from the metadata
    // store and is read only when the others are empty (polling it ten times a second took about
    // a tenth of the overlord's CPU during the run). The lists are read in the order a task moves
    // through them, so a task can be missed only by having moved on.
    let ours = |t: &&serde_json::Value| {
        t["id"]
            .as_str()
            .is_some_and(|i| i.starts_with("bench_tput_"))
    };
    loop {
        let mut active = 0;
        for state in ["waiting", "pending", "running"] {
            active += c
                .tasks(&format!("?state={state}"))
                .await?
                .iter()
                .filter(ours)
                .count();
        }
        let done = if active == 0 {
            c.tasks("?state=complete")
                .await?
                .iter()
                .filter(ours)
                .count()
        } else {
            0
        };
        if done >= n {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "throughput run stalled with {active} tasks active"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let elapsed = started.elapsed();
    let failed = c
        .tasks("?state=complete")
        .await?
        .iter()
        .filter(|t| t["statusCode"] == "FAILED")
        .count();
    println!(
        "== {runner_type}: throughput, {n} noop tasks (runTime 0), 2 middle managers x {} slots ==",
        args.capacity
    );
    println!(
        "all submitted after {:.2} s; all complete after {:.2} s; failed: {failed}",
        submitted.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    let throughput = n as f64 / elapsed.as_secs_f64();
    println!("{:<34} {:>8.1} tasks/s", "throughput", throughput);
    // Where the time went: CPU seconds each part used during the run, against the 2 cores ×
    // the run's length the machine had.
    let cpu_after = cluster_cpu(&own);
    let used: Vec<f64> = cpu_after
        .iter()
        .zip(cpu_before.iter())
        .map(|(a, b)| a - b)
        .collect();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    println!(
        "CPU during the run: overlord {:.2} s, middle managers {:.2} s, peons {:.2} s, ZooKeeper {:.2} s (of {:.2} s on {cores} cores)",
        used[0],
        used[1],
        used[2],
        used[3],
        elapsed.as_secs_f64() * cores
    );

    // 3. Memory of the long-running processes after all that.
    println!("== {runner_type}: memory ==");
    let mut procs = vec![("overlord", cluster.overlords[0].process.pid())];
    procs.extend(
        cluster
            .middle_managers
            .iter()
            .map(|m| ("middle manager", m.process.pid())),
    );
    for (name, pid) in procs {
        let pid = pid.unwrap();
        println!(
            "{name:<34} RSS {:>6.1} MB   peak {:>6.1} MB",
            proc_status_kb(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0,
            proc_status_kb(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0
        );
    }
    let recovery = recovery(&mut own, runner_type).await?;
    drop(own);
    Ok(TaskPathFigures {
        to_running_median,
        to_running_p99,
        to_success_median,
        throughput,
        recovery,
    })
}

fn peon_runs(runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("drover-bench-peon-")
        .tempdir()?;
    let peon = bin_dir().join("drover-peon");
    let mut times = Vec::new();
    for i in 0..runs {
        let task_dir = write_task(dir.path(), &format!("peon_{i}"), 0)?;
        let start = Instant::now();
        let status = wait_keeping_stdin(spawn_peon(&peon, &task_dir)?)?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(status.success(), "peon failed ({status})");
    }
    println!("== noop peon alone ==");
    summary("peon spawn -> exit", times);

    // Peak RSS from the peon's own /proc entry while it sleeps: after exec, so none of this
    // process's memory is counted (wait4's ru_maxrss would count it after a vfork-style spawn);
    // the status write at the end allocates next to nothing.
    let mut peak_kb = 0u64;
    for i in 0..20 {
        let task_dir = write_task(dir.path(), &format!("rss_{i}"), 300)?;
        let child = spawn_peon(&peon, &task_dir)?;
        std::thread::sleep(Duration::from_millis(150));
        peak_kb = peak_kb.max(proc_status_kb(child.id(), "VmHWM:").unwrap_or(0));
        wait_keeping_stdin(child)?;
    }
    println!(
        "{:<34} {:>6.1} MB",
        "noop peon peak RSS (VmHWM)",
        peak_kb as f64 / 1024.0
    );
    Ok(())
}

fn write_task(dir: &Path, id: &str, run_time_ms: u64) -> anyhow::Result<std::path::PathBuf> {
    let task_dir = dir.join(id);
    std::fs::create_dir_all(&task_dir)?;
    std::fs::write(
        task_dir.join("task.json"),
        format!(r#"{{"type":"noop","id":"{id}","runTime":{run_time_ms}}}"#),
    )?;
    Ok(task_dir)
}

/// A peon with its stdin open, as the middle manager starts it.
fn spawn_peon(peon: &Path, task_dir: &Path) -> anyhow::Result<std::process::Child> {
    Ok(std::process::Command::new(peon)
        .arg(task_dir)
        .arg("1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?)
}

/// `Child::wait` closes stdin first, which a peon rightly takes as its parent's death.
fn wait_keeping_stdin(mut child: std::process::Child) -> anyhow::Result<std::process::ExitStatus> {
    let stdin = child.stdin.take();
    let status = child.wait()?;
    drop(stdin);
    Ok(status)
}
