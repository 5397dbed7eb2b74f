//! `drover task …`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::client::{segment, Overlord};
use crate::output::{self, Output};

/// How often a waiting or following command asks again.
const POLL: Duration = Duration::from_millis(500);

#[derive(Subcommand)]
pub enum TaskCommand {
    /// POST a task spec (Druid's JSON) and print its id.
    Submit {
        /// The task's JSON file (`-` for stdin).
        file: PathBuf,
        /// Wait until it ends, with a progress bar of rows; exit 1 if it fails.
        #[arg(long)]
        wait: bool,
    },
    /// A task's status.
    Status { id: String },
    /// Tasks, newest first.
    List {
        /// `running`, `pending`, `waiting` or `complete`.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        datasource: Option<String>,
        /// At most this many (Druid's `max`).
        #[arg(long)]
        max: Option<u32>,
    },
    /// A task's log; `--follow` prints what it writes until it ends.
    Log {
        id: String,
        #[arg(long, short)]
        follow: bool,
    },
    /// A task's report: live while it runs, final once it ended.
    Reports { id: String },
    /// Ask a task to stop.
    Shutdown { id: String },
}

pub async fn run(o: &Overlord, out: Output, c: TaskCommand) -> anyhow::Result<ExitCode> {
    match c {
        TaskCommand::Submit { file, wait } => submit(o, out, &file, wait).await,
        TaskCommand::Status { id } => {
            let v = o
                .get(&format!("/druid/indexer/v1/task/{}/status", segment(&id)))
                .await?;
            match out {
                Output::Json => output::json(&v),
                Output::Table => output::list(
                    out,
                    &Value::Array(vec![v["status"].clone()]),
                    STATUS_COLUMNS,
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::List {
            state,
            datasource,
            max,
        } => {
            let mut query = Vec::new();
            if let Some(s) = state {
                query.push(format!("state={}", segment(&s)));
            }
            if let Some(d) = datasource {
                query.push(format!("datasource={}", segment(&d)));
            }
            if let Some(m) = max {
                query.push(format!("max={m}"));
            }
            let v = o
                .get(&format!("/druid/indexer/v1/tasks?{}", query.join("&")))
                .await?;
            output::list(out, &v, STATUS_COLUMNS);
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Log { id, follow } => log(o, &id, follow).await,
        TaskCommand::Reports { id } => {
            output::json(
                &o.get(&format!("/druid/indexer/v1/task/{}/reports", segment(&id)))
                    .await?,
            );
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Shutdown { id } => {
            let v = o
                .post(
                    &format!("/druid/indexer/v1/task/{}/shutdown", segment(&id)),
                    None,
                )
                .await?;
            match out {
                Output::Json => output::json(&v),
                Output::Table => println!("asked task {id} to shut down"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

const STATUS_COLUMNS: &[(&str, &str)] = &[
    ("ID", "/id"),
    ("TYPE", "/type"),
    ("DATASOURCE", "/dataSource"),
    ("STATUS", "/statusCode"),
    ("RUNNER", "/runnerStatusCode"),
    ("CREATED", "/createdTime"),
    ("DURATION_MS", "/duration"),
    ("ERROR", "/errorMsg"),
];

async fn submit(o: &Overlord, out: Output, file: &PathBuf, wait: bool) -> anyhow::Result<ExitCode> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the task from stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let spec: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let answer = o.post("/druid/indexer/v1/task", Some(&spec)).await?;
    let id = answer["task"]
        .as_str()
        .context("the answer names no task")?
        .to_string();
    if !wait {
        match out {
            Output::Json => output::json(&answer),
            Output::Table => println!("{id}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("submitted {id}");
    let status = wait_with_progress(o, &id).await?;
    match out {
        Output::Json => output::json(&status),
        Output::Table => output::list(out, &Value::Array(vec![status.clone()]), STATUS_COLUMNS),
    }
    Ok(if status["statusCode"] == "SUCCESS" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Polls the task's status until it ends; meanwhile a spinner with its state and the rows its
/// live report counts (on stderr, so stdout stays the answer).
async fn wait_with_progress(o: &Overlord, id: &str) -> anyhow::Result<Value> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let status_path = format!("/druid/indexer/v1/task/{}/status", segment(id));
    let reports_path = format!("/druid/indexer/v1/task/{}/reports", segment(id));
    loop {
        let status = o.get(&status_path).await?["status"].clone();
        if matches!(status["statusCode"].as_str(), Some("SUCCESS" | "FAILED")) {
            bar.finish_and_clear();
            let line = match status["statusCode"].as_str() {
                Some("SUCCESS") => format!("{id}: SUCCESS in {} ms", status["duration"]),
                _ => format!("{id}: FAILED: {}", output::cell(&status["errorMsg"])),
            };
            eprintln!("{line}");
            return Ok(status);
        }
        let mut msg = format!("{id}: {}", output::cell(&status["runnerStatusCode"]));
        if status["runnerStatusCode"] == "RUNNING" {
            if let Ok(answer) = o.send(reqwest::Method::GET, &reports_path, None).await {
                if let Ok(report) = answer.json() {
                    msg.push_str(&rows_line(&report));
                }
            }
        }
        bar.set_message(msg);
        tokio::time::sleep(POLL).await;
    }
}

/// `, 1234 rows processed (310/s), 2 unparseable`, from a live report.
fn rows_line(report: &Value) -> String {
    let payload = &report["ingestionStatsAndErrors"]["payload"];
    let totals = &payload["rowStats"]["totals"]["buildSegments"];
    let Some(processed) = totals["processed"].as_u64() else {
        return String::new();
    };
    let mut line = format!(", {processed} rows processed");
    if let Some(rate) =
        payload["rowStats"]["movingAverages"]["buildSegments"]["1m"]["processed"].as_f64()
    {
        line.push_str(&format!(" ({rate:.0}/s)"));
    }
    for (key, name) in [
        ("unparseable", "unparseable"),
        ("thrownAway", "thrown away"),
    ] {
        if let Some(n) = totals[key].as_u64().filter(|n| *n > 0) {
            line.push_str(&format!(", {n} {name}"));
        }
    }
    line
}

/// Prints the log; with `follow`, keeps printing what is added until the task ends.
async fn log(o: &Overlord, id: &str, follow: bool) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let path = format!("/druid/indexer/v1/task/{}/log", segment(id));
    let status_path = format!("/druid/indexer/v1/task/{}/status", segment(id));
    let mut offset = 0usize;
    loop {
        // Whether it had ended before this read: then this read has everything.
        let ended = !follow || {
            let status = o.get(&status_path).await?;
            matches!(
                status["status"]["statusCode"].as_str(),
                Some("SUCCESS" | "FAILED")
            )
        };
        let answer = o
            .send(
                reqwest::Method::GET,
                &format!("{path}?offset={offset}"),
                None,
            )
            .await?;
        match answer.status.as_u16() {
            200 => {
                offset += answer.body.len();
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(answer.body.as_bytes())?;
                stdout.flush()?;
            }
            // No log yet (the task has not started), unless it never will.
            404 if follow && !ended => {}
            status => anyhow::bail!("HTTP {status}: {}", answer.body.trim()),
        }
        if ended {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_progress_line_reads_a_live_report() {
        let report = json!({"ingestionStatsAndErrors": {"payload": {"rowStats": {
            "totals": {"buildSegments": {"processed": 1200, "unparseable": 2, "thrownAway": 0}},
            "movingAverages": {"buildSegments": {"1m": {"processed": 310.4}}}}}}});
        assert_eq!(
            rows_line(&report),
            ", 1200 rows processed (310/s), 2 unparseable"
        );
        assert_eq!(rows_line(&json!({})), "");
    }
}
