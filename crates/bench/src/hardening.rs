//! `drover-bench --hardening`: the figures of the hardening issue, measured the same way on other
//! builds (point `DROVER_BIN_DIR` at their binaries for a "before" column). Only default
//! settings are used; the test kit starts servers with `--port 0 --port-file`, which builds from
//! before 2026-12-01 lack (the recorded "before" figures were taken just before that change).
//!
//! 1. Listings at 10,000 waiting tasks: size and latency of `/tasks`, `/tasks?max=100`,
//!    `/runningTasks` (nothing runs) and `/task/{id}/status`.
//! 2. Idle connections: 1,100 half-sent requests, then what a new client gets and how long until
//!    the API serves again; the overlord's open descriptors meanwhile.
//! 3. A metadata-store outage: 20 submissions while PostgreSQL (behind a proxy that stops passing
//!    bytes) does not answer: how fast they are answered, and how many of the tasks exist once
//!    it answers again.

use std::time::{Duration, Instant};

use drover_testkit::{ApiClient, ClusterSpec, FreezableProxy};
use serde_json::json;

use crate::{own_cluster, percentile};

const WAITING_TASKS: usize = 10_000;
const HALF_SENT: usize = 1_100;
const OUTAGE_SUBMISSIONS: usize = 20;

pub async fn run() -> anyhow::Result<()> {
    listings().await?;
    idle_connections().await?;
    metadata_outage().await?;
    Ok(())
}

/// Latency of `n` GETs of `path` (ms, sorted) and the size of the last answer.
async fn time_gets(c: &ApiClient, path: &str, n: usize) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut times = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = c.get(path).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(r.status == 200, "{path}: {} {}", r.status, r.body);
        size = r.body.len();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok((times, size))
}

async fn listings() -> anyhow::Result<()> {
    let own = own_cluster(ClusterSpec::workers(&[1])).await?;
    let c = own.cluster.client.clone();
    let started = Instant::now();
    let mut submitters = Vec::new();
    for s in 0..8 {
        let c = c.clone();
        submitters.push(tokio::spawn(async move {
            for i in (s..WAITING_TASKS).step_by(8) {
                let task = json!({"type": "noop", "id": format!("waiting_{i}"),
                                  "isReadyResult": "NO"});
                c.submit(&task).await?;
            }
            anyhow::Ok(())
        }));
    }
    for s in submitters {
        s.await??;
    }
    println!(
        "== listings at {WAITING_TASKS} waiting tasks (submitted in {:.1} s) ==",
        started.elapsed().as_secs_f64()
    );
    for (path, n) in [
        ("/tasks", 30),
        ("/tasks?max=100", 100),
        ("/runningTasks", 100),
        ("/task/waiting_77/status", 100),
    ] {
        let (times, size) = time_gets(&c, path, n).await?;
        println!(
            "{path:<26} {size:>9} bytes   median {:>7.2} ms   p99 {:>7.2} ms   (n={n})",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
    Ok(())
}

/// Sets this process's soft limit on open files (`None`: up to the hard limit); processes it
/// starts afterwards inherit it.
fn set_open_files_limit(soft: Option<u64>) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = soft.map_or(limit.rlim_max, |s| s.min(limit.rlim_max));
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

async fn idle_connections() -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    // The servers start with the soft limit most distributions give a service, 1,024 (they may
    // raise it themselves); the benchmark then takes its own up to the hard limit.
    set_open_files_limit(Some(1024));
    let own = own_cluster(ClusterSpec::workers(&[1])).await?;
    set_open_files_limit(None);
    let cluster = &own.cluster;
    let url = cluster.overlords[0].url.clone();
    let addr = url.trim_start_matches("http://").to_string();
    let pid = cluster.overlords[0].process.pid().unwrap_or_default();
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let fds_before = fds();
    let mut held = Vec::with_capacity(HALF_SENT);
    for _ in 0..HALF_SENT {
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(mut s) => {
                s.write_all(b"GET /druid/indexer/v1/tasks HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .ok();
                held.push(s);
            }
            Err(_) => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_during = fds();
    // A new client, with a patience of 15 s.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let asked = Instant::now();
    let first = match client
        .get(format!("{url}/druid/indexer/v1/tasks"))
        .send()
        .await
    {
        Ok(r) => format!("{}", r.status().as_u16()),
        Err(e) if e.is_timeout() => "no answer (client gave up)".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let first_after = asked.elapsed();
    // How long until a new client is served, while the half-sent requests stay open.
    let mut served_after = None;
    while asked.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = client
            .get(format!("{url}/druid/indexer/v1/tasks"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            if r.status().is_success() {
                served_after = Some(asked.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("== {} half-sent requests held open ==", held.len());
    println!("overlord descriptors           {fds_before} before, {fds_during} during");
    println!(
        "a new client's first request   {first} after {:.2} s",
        first_after.as_secs_f64()
    );
    match served_after {
        Some(t) => println!("API serves again after         {:.2} s", t.as_secs_f64()),
        None => println!("API serves again after         not within 60 s"),
    }
    drop(held);
    Ok(())
}

async fn metadata_outage() -> anyhow::Result<()> {
    let Some(admin_url) = std::env::var("DROVER_TEST_POSTGRES_URL").ok() else {
        println!(
            "== metadata outage: skipped (set DROVER_TEST_POSTGRES_URL, as scripts/test does) =="
        );
        return Ok(());
    };
    let host = admin_url
        .rsplit_once('@')
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_string();
    let proxy = FreezableProxy::start(&host).await;
    let db = create_database(&admin_url).await?;
    let (user, _) = admin_url.rsplit_once('@').unwrap();
    let url = format!("{user}@{}/{db}", proxy.addr);
    let own = own_cluster(ClusterSpec {
        metadata_url: Some(url),
        ..ClusterSpec::workers(&[2])
    })
    .await?;
    let c = own.cluster.client.clone();
    c.submit(&json!({"type": "noop", "id": "warm", "runTime": 0}))
        .await?;

    proxy.freeze();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let started = Instant::now();
    let mut waits = Vec::new();
    for n in 0..OUTAGE_SUBMISSIONS {
        let (client, base) = (client.clone(), c.base.clone());
        waits.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/druid/indexer/v1/task"))
                .header("Content-Type", "application/json")
                .body(
                    json!({"type": "noop", "id": format!("outage_{n}"), "runTime": 0}).to_string(),
                )
                .send()
                .await;
            let answer = match r {
                Ok(r) => r.status().as_u16().to_string(),
                Err(e) if e.is_timeout() => "timeout".to_string(),
                Err(_) => "error".to_string(),
            };
            (answer, started.elapsed().as_secs_f64())
        }));
    }
    let mut answers: std::collections::BTreeMap<String, usize> = Default::default();
    let mut times = Vec::new();
    for w in waits {
        let (answer, t) = w.await?;
        *answers.entry(answer).or_default() += 1;
        times.push(t);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    proxy.thaw();
    tokio::time::sleep(Duration::from_secs(40)).await;
    let mut stored = 0;
    for n in 0..OUTAGE_SUBMISSIONS {
        if c.get(&format!("/task/outage_{n}/status")).await?.status == 200 {
            stored += 1;
        }
    }
    println!("== {OUTAGE_SUBMISSIONS} submissions while PostgreSQL does not answer (client timeout 10 s) ==");
    println!("answers                        {answers:?}");
    println!(
        "answered after                 median {:.2} s, max {:.2} s",
        percentile(&times, 0.5),
        percentile(&times, 1.0)
    );
    println!("stored anyway once it answered {stored} of {OUTAGE_SUBMISSIONS}");
    Ok(())
}

/// A throwaway database on the PostgreSQL server at `admin_url`.
async fn create_database(admin_url: &str) -> anyhow::Result<String> {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(admin_url).await?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos();
    let name = format!("drover_bench_{nanos:08x}");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    admin.close().await.ok();
    Ok(name)
}
