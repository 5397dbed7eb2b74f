//! `drover-bench --ingest`: JSON batch ingestion of generated wikipedia-like rows through a real
//! cluster (one overlord, one middle manager), rollup off and on, side by side with DuckDB doing
//! the same JSON → Parquet work in the same run (one thread, then two), and the same rows as an
//! `index_parallel` task with two sub-tasks (the scaling from one core to two). Each is measured
//! three times, in turns, and the best of each is compared. A task's peon
//! reads, rolls up and writes on one thread, so a task's rows/s is rows/s per core. Its log
//! reports the read and merge+write times, the runs spilled and its peak RSS. DuckDB also reads
//! the first round's segments back, which must hold what its own answer holds.

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

/// The number in the first `key=number` of the log.
fn value_of(log: &str, key: &str) -> Option<u64> {
    let at = log.find(&format!("{key}="))? + key.len() + 1;
    let digits = log[at..].split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// What one run cost: whole task (in the peon, or the supervisor's for a parallel task) and
/// its phases from the log.
struct Measured {
    task_ms: u64,
    read_ms: u64,
    write_ms: u64,
    rss_kb: u64,
    /// The peon's CPU time in user and kernel mode, in ms.
    cpu_ms: (u64, u64),
    spills: u64,
    segments: usize,
    bytes: u64,
    /// The segment files (local deep storage).
    paths: Vec<String>,
}

async fn measure(cluster: &drover_testkit::Cluster, t: &Value) -> anyhow::Result<Measured> {
    let id = cluster.client.submit(t).await?;
    let status = cluster
        .client
        .wait_complete(&id, Duration::from_secs(1800))
        .await?;
    anyhow::ensure!(status["statusCode"] == "SUCCESS", "{id}: {status}");
    let log = cluster.client.log(&id).await?.unwrap_or_default();
    let ds = t["spec"]["dataSchema"]["dataSource"]
        .as_str()
        .unwrap_or_default();
    let stored: Vec<Value> = serde_json::from_str(
        &cluster
            .client
            .get_root(&format!(
                "/druid/coordinator/v1/metadata/datasources/{ds}/segments?full"
            ))
            .await?
            .body,
    )?;
    Ok(Measured {
        task_ms: status["duration"].as_i64().unwrap_or(0).max(1) as u64,
        read_ms: number_before(&log, "input row(s) in", "ms").unwrap_or(0),
        write_ms: number_before(&log, "merged and wrote", "ms").unwrap_or(0),
        rss_kb: number_before(&log, "uploaded", "kB").unwrap_or(0),
        cpu_ms: (
            value_of(&log, "cpu_user_ms").unwrap_or(0),
            value_of(&log, "cpu_system_ms").unwrap_or(0),
        ),
        spills: number_before(&log, "input row(s) in", "sorted").unwrap_or(0),
        segments: stored.len(),
        bytes: stored.iter().filter_map(|s| s["size"].as_u64()).sum(),
        paths: stored
            .iter()
            .filter_map(|s| s["loadSpec"]["path"].as_str().map(String::from))
            .collect(),
    })
}

/// DuckDB doing the same JSON → Parquet work on `threads` threads: the same columns typed the
/// same way, rolled up the same way, sorted by time, into one Parquet file. Answers ms.
fn duckdb_ms(dir: &std::path::Path, rollup: bool, threads: u32) -> anyhow::Result<u64> {
    let query = duckdb_query(dir, rollup);
    let out = dir.with_extension(format!("duckdb-{threads}.parquet"));
    let script = format!(
        "import duckdb, time\ncon = duckdb.connect()\ncon.execute('SET threads = {threads}')\n\
         start = time.time()\ncon.execute(\"COPY ({query}) TO '{}' (FORMAT parquet)\")\n\
         print(round((time.time() - start) * 1000))",
        out.display()
    );
    let printed = crate::lifecycle::duckdb(&script)?;
    let ms: u64 = printed
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("DuckDB printed no time: {printed}"))?;
    std::fs::remove_file(out).ok();
    Ok(ms.max(1))
}

/// DuckDB reads the segments Drover wrote, and finds in them what its own answer to the same
/// job holds: rows, sums, distinct values, first and last time.
fn duckdb_reads(paths: &[String], dir: &std::path::Path, rollup: bool) -> anyhow::Result<String> {
    let files = paths
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let summary = "count(*), sum(added), sum(delta), count(DISTINCT channel), \
        count(DISTINCT page), min(epoch_ms(__time)), max(epoch_ms(__time))";
    let query = duckdb_query(dir, rollup);
    let script = format!(
        "import duckdb\ncon = duckdb.connect()\n\
         print(con.execute(\"SELECT {summary} FROM read_parquet([{files}])\").fetchone())\n\
         print(con.execute(\"SELECT {summary} FROM ({query})\").fetchone())"
    );
    let printed = crate::lifecycle::duckdb(&script)?;
    let (drover, duckdb) = printed
        .split_once('\n')
        .ok_or_else(|| anyhow::anyhow!("DuckDB printed: {printed}"))?;
    anyhow::ensure!(
        drover.trim() == duckdb.trim(),
        "DuckDB reads {drover} from Drover's segments but answers {duckdb} itself"
    );
    Ok(drover.trim().to_string())
}

/// The job in DuckDB's SQL: the same columns typed the same way, rolled up the same way,
/// sorted by time.
fn duckdb_query(dir: &std::path::Path, rollup: bool) -> String {
    let columns = "{'time': 'TIMESTAMP', 'channel': 'VARCHAR', 'cityName': 'VARCHAR', \
        'comment': 'VARCHAR', 'countryIsoCode': 'VARCHAR', 'countryName': 'VARCHAR', \
        'isAnonymous': 'VARCHAR', 'isMinor': 'VARCHAR', 'isNew': 'VARCHAR', 'isRobot': 'VARCHAR', \
        'isUnpatrolled': 'VARCHAR', 'metroCode': 'VARCHAR', 'namespace': 'VARCHAR', \
        'page': 'VARCHAR', 'regionIsoCode': 'VARCHAR', 'regionName': 'VARCHAR', 'user': 'VARCHAR', \
        'added': 'BIGINT', 'deleted': 'BIGINT', 'delta': 'BIGINT'}";
    let input = format!(
        "read_json('{}/*.json', format='newline_delimited', columns={columns})",
        dir.display()
    );
    if rollup {
        format!(
            "SELECT date_trunc('hour', time) AS __time, channel, countryIsoCode, isRobot, namespace, \
             page, count(*) AS count, sum(added) AS added, sum(deleted) AS deleted, \
             sum(delta) AS delta FROM {input} GROUP BY ALL ORDER BY ALL"
        )
    } else {
        format!("SELECT time AS __time, * EXCLUDE (time) FROM {input} ORDER BY ALL")
    }
}

/// Writes `rows` generated rows to `data_dir` as two files of half the rows each (so that a
/// parallel task has two splits), and says how long that took.
fn generate(data_dir: &std::path::Path, rows: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let started = Instant::now();
    for half in 0..2 {
        let mut out = std::io::BufWriter::new(std::fs::File::create(
            data_dir.join(format!("wiki-{half}.json")),
        )?);
        for i in (half * rows / 2)..((half + 1) * rows / 2) {
            writeln!(out, "{}", row(i))?;
        }
        out.flush()?;
    }
    let bytes: u64 = (0..2)
        .map(|h| {
            std::fs::metadata(data_dir.join(format!("wiki-{h}.json")))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    println!(
        "generated {rows} wikipedia-like rows ({:.0} MB of JSON) in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--ingest N --in-process`: the `index` task's build (read, parse, roll up, sort, write
/// Parquet) on the generated rows in this process, five times for rollup off and on; the
/// fastest run's phases are printed. No cluster, no upload, no publish: the per-core work alone,
/// for `perf record`.
pub fn in_process(rows: usize, only: Option<&str>) -> anyhow::Result<()> {
    let settings: Vec<bool> = match only {
        None => vec![false, true],
        Some("on") => vec![true],
        Some("off") => vec![false],
        Some(other) => anyhow::bail!("--rollup must be on or off, not {other}"),
    };
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("bench-data");
    generate(&data_dir, rows)?;
    let inputs: Vec<drover_ingest::input::Input> = (0..2)
        .map(|h| drover_ingest::input::Input::File(data_dir.join(format!("wiki-{h}.json"))))
        .collect();
    for rollup in settings {
        let t = task("bench", &data_dir.display().to_string(), rollup, None);
        let spec = drover_ingest::IngestionSpec::from_task(&t)?;
        let mut best: Option<(u128, u128, u128)> = None;
        for _ in 0..5 {
            let work = tempfile::tempdir()?;
            let started = Instant::now();
            let built =
                drover_ingest::build::build(&spec, &inputs, work.path(), &mut |_: &str, _| {})?;
            let run = (started.elapsed().as_millis(), built.read_ms, built.write_ms);
            let bytes: u64 = built
                .partitions
                .iter()
                .filter_map(|p| std::fs::metadata(&p.path).ok())
                .map(|m| m.len())
                .sum();
            eprintln!(
                "  build: {} ms (read {} ms, write {} ms), {} file(s) of {:.1} MB",
                run.0,
                run.1,
                run.2,
                built.partitions.len(),
                bytes as f64 / 1e6
            );
            best = Some(best.map_or(run, |b| b.min(run)));
        }
        let (total, read, write) = best.expect("five runs");
        println!(
            "rollup {}: fastest of 5 builds in process {total} ms = {:.0} rows/s \
             (read+parse+rollup {read} ms, merge+Parquet {write} ms)",
            if rollup { "on " } else { "off" },
            rows as f64 / (total.max(1) as f64 / 1000.0)
        );
    }
    Ok(())
}

/// Rounds of each measurement: Drover, DuckDB and the parallel task take turns, and the best
/// of each is compared, so that a slow spell of this machine (whose timings wander by ±30%)
/// does not land on one side only.
const ROUNDS: usize = 3;

/// The fastest of some runs, and all of them as measured.
fn best(ms: &[u64]) -> (u64, String) {
    let all = ms.iter().map(u64::to_string).collect::<Vec<_>>().join("/");
    (ms.iter().copied().min().unwrap_or(1).max(1), all)
}

pub async fn run(rows: usize) -> anyhow::Result<()> {
    // One middle manager: a task alone, then a parallel task and its two sub-tasks.
    let own = own_cluster(ClusterSpec::workers(&[3])).await?;
    let cluster = &own.cluster;
    let data_dir = cluster.dir.join("bench-data");
    generate(&data_dir, rows)?;
    let rate = |ms: u64| rows as f64 / (ms as f64 / 1000.0);
    let dir = data_dir.display().to_string();
    for rollup in [false, true] {
        let name = if rollup { "on" } else { "off" };
        let (mut one_ms, mut duck1_ms, mut duck2_ms, mut parallel_ms) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut last = None;
        for round in 0..ROUNDS {
            let ds = format!("bench_rollup_{name}_{round}");
            let one = task(&ds, &dir, rollup, None);
            let m = measure(cluster, &one).await?;
            one_ms.push(m.task_ms);
            if round == 0 {
                let read = duckdb_reads(&m.paths, &data_dir, rollup)?;
                println!("rollup {name:<3}: DuckDB reads Drover's segment(s): {read}, as in its own answer");
            }
            last = Some(m);
            duck1_ms.push(duckdb_ms(&data_dir, rollup, 1)?);
            duck2_ms.push(duckdb_ms(&data_dir, rollup, 2)?);
            // The same rows as an index_parallel task: two splits, two sub-tasks at a time.
            let ds = format!("bench_parallel_rollup_{name}_{round}");
            let mut parallel = task(&ds, &dir, rollup, None);
            parallel["type"] = json!("index_parallel");
            parallel["spec"]["ioConfig"]["type"] = json!("index_parallel");
            parallel["spec"]["tuningConfig"] = json!({"type": "index_parallel",
                "maxNumConcurrentSubTasks": 2, "splitHintSpec": {"type": "maxSize", "maxNumFiles": 1}});
            let p = measure(cluster, &parallel).await?;
            anyhow::ensure!(p.segments == 2, "{ds}: {} segment(s), not 2", p.segments);
            let subs = cluster
                .client
                .tasks(&format!("?state=complete&datasource={ds}"))
                .await?;
            let mut sub_ms = Vec::new();
            for t in subs.iter().filter(|t| t["type"] != "index_parallel") {
                let id = t["id"].as_str().unwrap_or_default();
                let log = cluster.client.log(id).await?.unwrap_or_default();
                sub_ms.push(format!(
                    "{} ms (read {} ms, write {} ms; CPU {} ms user, {} ms system, preempted {} times)",
                    t["duration"],
                    number_before(&log, "input row(s) in", "ms").unwrap_or(0),
                    number_before(&log, "merged and wrote", "ms").unwrap_or(0),
                    value_of(&log, "cpu_user_ms").unwrap_or(0),
                    value_of(&log, "cpu_system_ms").unwrap_or(0),
                    value_of(&log, "preempted").unwrap_or(0),
                ));
            }
            eprintln!(
                "  parallel round {round}: {} ms; sub-tasks {}",
                p.task_ms,
                sub_ms.join(", ")
            );
            parallel_ms.push(p.task_ms);
        }
        let m = last.expect("at least one round");
        let ((one, one_all), (duck1, duck1_all), (duck2, duck2_all), (par, par_all)) = (
            best(&one_ms),
            best(&duck1_ms),
            best(&duck2_ms),
            best(&parallel_ms),
        );
        println!(
            "rollup {name:<3}: Drover one task {one:>6} ms = {:>9.0} rows/s, best of {one_all} ms \
             (last run: read+parse+rollup {} ms, merge+Parquet {} ms, {} run(s) spilled, CPU {} ms user + {} ms system, peak RSS {:.0} MB, {} segment(s) {:.1} MB)",
            rate(one),
            m.read_ms,
            m.write_ms,
            m.spills,
            m.cpu_ms.0,
            m.cpu_ms.1,
            m.rss_kb as f64 / 1024.0,
            m.segments,
            m.bytes as f64 / 1e6
        );
        println!(
            "rollup {name:<3}: DuckDB 1 thread {duck1:>6} ms = {:>9.0} rows/s, best of {duck1_all} ms; \
             2 threads {duck2:>6} ms = {:>9.0} rows/s, best of {duck2_all} ms",
            rate(duck1),
            rate(duck2),
        );
        println!(
            "rollup {name:<3}: Drover index_parallel, 2 sub-tasks {par:>6} ms = {:>9.0} rows/s, best of {par_all} ms",
            rate(par),
        );
        println!(
            "rollup {name:<3}: Drover / DuckDB(1 thread) = {:.2}x (round by round: {}); scaling from one task to two sub-tasks = {:.2}x (round by round: {})",
            duck1 as f64 / one as f64,
            ratios(&duck1_ms, &one_ms),
            one as f64 / par as f64,
            ratios(&one_ms, &parallel_ms),
        );
    }
    drop(own);
    Ok(())
}

/// `a[i] / b[i]` for each round, as `1.23x/0.98x/…`.
fn ratios(a: &[u64], b: &[u64]) -> String {
    a.iter()
        .zip(b)
        .map(|(a, b)| format!("{:.2}x", *a as f64 / (*b).max(1) as f64))
        .collect::<Vec<_>>()
        .join("/")
}
