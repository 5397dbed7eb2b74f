//! The built-in console (`/console`) in a real browser: headless Chromium (Debian's package)
//! loads each page of a cluster that has run tasks and a Kafka supervisor, after its JavaScript
//! ran; the rendered DOM must show the data, and each screenshot must be a page with text on
//! it (kept in `$TMPDIR/drover-console-screenshots/` to look at).

use std::path::{Path, PathBuf};
use std::time::Duration;

use drover_scenarios::{noop, one_row_task, Cluster, ClusterSpec};

use crate::kafka_ingestion::{submit_supervisor, supervisor_spec, Kafka};

const TIMEOUT: Duration = Duration::from_secs(60);

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = std::process::Command::new("which").arg(name).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("no Chromium: scripts/test installs Debian's `chromium` package");
}

/// Loads `url` in headless Chromium, lets its scripts run, and answers the DOM; the page's
/// screenshot goes to `shot`.
async fn browse(dir: &Path, url: &str, shot: &Path) -> String {
    let dom = chromium_run(dir, &["--dump-dom", url]).await;
    chromium_run(dir, &[&format!("--screenshot={}", shot.display()), url]).await;
    dom
}

/// Runs headless Chromium with `args` after the usual flags; answers what it printed.
async fn chromium_run(dir: &Path, args: &[&str]) -> String {
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1400,900",
            "--virtual-time-budget=3000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium").display()
        ))
        .args(args)
        .kill_on_drop(true);
    let out = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("chromium ends")
        .unwrap();
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many of the screenshot's pixels are dark (text) and how many distinct colours it has:
/// a blank or error page has next to none.
fn ink(shot: &Path) -> (usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let mut dark = 0;
    let mut colours = std::collections::HashSet::new();
    for px in buf[..info.buffer_size()].chunks(channels) {
        let (r, g, b) = (px[0] as u32, px[1] as u32, px[2] as u32);
        if r + g + b < 200 {
            dark += 1;
        }
        colours.insert((r, g, b));
    }
    (dark, colours.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_tasks_workers_supervisors_and_data_sources() {
    let mut kafka = Kafka::start(2);
    let cluster = Cluster::start(ClusterSpec::workers(&[4])).await;
    let c = &cluster.client;
    let id = c
        .submit(&one_row_task("console-index", "console_ds"))
        .await
        .unwrap();
    let done = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(done["statusCode"], "SUCCESS", "{done}");
    let id = c.submit(&noop("console-noop", 0)).await.unwrap();
    c.wait_complete(&id, TIMEOUT).await.unwrap();
    submit_supervisor(&cluster, &supervisor_spec(&kafka.servers(), 1, 1, "PT120S")).await;
    kafka.produce(50);
    wait_published_or_reading(&cluster).await;

    let base = &cluster.overlords[0].url;
    let dir = &cluster.dir;
    let page = async |path: &str, name: &str| {
        let shot = dir.join(format!("console-{name}.png"));
        let dom = browse(dir, &format!("{base}{path}"), &shot).await;
        let (dark, colours) = ink(&shot);
        assert!(
            dark > 2_000 && colours > 20,
            "{name}: the screenshot {} looks empty ({dark} dark pixels, {colours} colours)",
            shot.display()
        );
        // Kept after the cluster's directory is gone, to look at.
        let kept = std::env::temp_dir().join("drover-console-screenshots");
        std::fs::create_dir_all(&kept).unwrap();
        std::fs::copy(&shot, kept.join(format!("{name}.png"))).unwrap();
        println!(
            "console page {path}: screenshot {}",
            kept.join(format!("{name}.png")).display()
        );
        dom
    };

    let overview = page("/console", "overview").await;
    assert!(
        overview.contains("slots used") && overview.contains(" / 4<"),
        "{overview}"
    );
    assert!(overview.contains("data sources"), "{overview}");

    let tasks = page("/console/tasks?state=complete", "tasks").await;
    assert!(
        tasks.contains("console-index") && tasks.contains("console-noop"),
        "{tasks}"
    );
    assert!(tasks.contains(">SUCCESS<"), "{tasks}");
    let filtered = page(
        "/console/tasks?state=complete&datasource=console_ds",
        "tasks-filtered",
    )
    .await;
    assert!(
        filtered.contains("console-index") && !filtered.contains("console-noop"),
        "{filtered}"
    );

    // The task's page, after its script fetched the log tail and the report.
    let task = page("/console/tasks/console-index", "task").await;
    assert!(
        task.contains("drover-peon finished task console-index"),
        "log tail: {task}"
    );
    assert!(
        task.contains("1 rows processed"),
        "rows from the report: {task}"
    );
    assert!(
        task.contains("\"ingestionState\": \"COMPLETED\""),
        "report: {task}"
    );

    let workers = page("/console/workers", "workers").await;
    let host = &cluster.middle_managers[0].host;
    assert!(workers.contains(host.as_str()), "{host}: {workers}");

    let supervisors = page("/console/supervisors", "supervisors").await;
    assert!(supervisors.contains("<td>events</td>"), "{supervisors}");
    assert!(
        supervisors.contains("0: 0, 1: 0"),
        "lag by partition: {supervisors}"
    );

    let data_sources = page("/console/datasources", "datasources").await;
    assert!(
        data_sources.contains("<td>console_ds</td><td>1</td>"),
        "{data_sources}"
    );

    // The middle manager's metrics count the reading task's rows while it still reads (its
    // task duration is two minutes): live, not at its end.
    // (The peon writes its counts every 5 s.)
    let kafka = r#"{dataSource="events",taskType="index_kafka"}"#;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mm = loop {
        let mm = reqwest::get(format!("{}/metrics", cluster.middle_managers[0].url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let processed = mm.lines().find_map(|l| {
            l.strip_prefix(&format!("druid_ingest_events_processed_total{kafka} "))?
                .parse::<f64>()
                .ok()
        });
        if processed == Some(50.0) {
            break mm;
        }
        assert!(std::time::Instant::now() < deadline, "{processed:?}: {mm}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        !mm.contains(&format!("druid_worker_task_success_count_total{kafka}")),
        "the task has not ended: {mm}"
    );
    let index = r#"{dataSource="console_ds",taskType="index"}"#;
    assert!(
        mm.contains(&format!("druid_ingest_rows_output_total{index} 1")),
        "{mm}"
    );
    assert!(
        mm.contains(&format!("druid_ingest_persists_count_total{index} 0")),
        "{mm}"
    );
}

/// The supervisor's tasks have read every event (its lag is 0 on each partition).
async fn wait_published_or_reading(cluster: &Cluster) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let r = cluster
            .client
            .get("/supervisor/events/status")
            .await
            .unwrap();
        let lag = &r.json()["payload"]["minimumLag"];
        if lag["0"] == 0 && lag["1"] == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the supervisor never caught up: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
