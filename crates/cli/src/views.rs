//! `drover supervisor …`, `drover datasource …`, `drover worker …`.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::{segment, Overlord};
use crate::output::{self, cell, Output};

#[derive(Subcommand)]
pub enum SupervisorCommand {
    /// Supervisors with their state.
    List,
    /// A supervisor's state, tasks and lag per partition.
    Status {
        id: String,
    },
    Suspend {
        id: String,
    },
    Resume {
        id: String,
    },
    /// Forget its stored offsets (it starts again per `useEarliestOffset`).
    Reset {
        id: String,
    },
    /// Stop it for good; its reading tasks publish first.
    Terminate {
        id: String,
    },
}

#[derive(Subcommand)]
pub enum DatasourceCommand {
    /// Data sources with their used segments' count, size and time span.
    List,
    /// A data source's used segments.
    Segments { datasource: String },
}

#[derive(Subcommand)]
pub enum WorkerCommand {
    /// Middle managers, their slots and tasks.
    List,
    /// The dynamic worker config (`selectStrategy`, `autoScaler`).
    Config,
}

pub async fn supervisor(
    o: &Overlord,
    out: Output,
    c: SupervisorCommand,
) -> anyhow::Result<ExitCode> {
    let path =
        |id: &str, action: &str| format!("/druid/indexer/v1/supervisor/{}/{action}", segment(id));
    let (id, action) = match c {
        SupervisorCommand::List => {
            let v = o.get("/druid/indexer/v1/supervisor?state=true").await?;
            output::list(
                out,
                &v,
                &[
                    ("ID", "/id"),
                    ("STATE", "/state"),
                    ("DETAILED", "/detailedState"),
                    ("HEALTHY", "/healthy"),
                    ("SUSPENDED", "/suspended"),
                ],
            );
            return Ok(ExitCode::SUCCESS);
        }
        SupervisorCommand::Status { id } => {
            let v = o.get(&path(&id, "status")).await?;
            match out {
                Output::Json => output::json(&v),
                Output::Table => status_table(&v["payload"]),
            }
            return Ok(ExitCode::SUCCESS);
        }
        SupervisorCommand::Suspend { id } => (id, "suspend"),
        SupervisorCommand::Resume { id } => (id, "resume"),
        SupervisorCommand::Reset { id } => (id, "reset"),
        SupervisorCommand::Terminate { id } => (id, "terminate"),
    };
    let v = o.post(&path(&id, action), None).await?;
    match out {
        Output::Json => output::json(&v),
        Output::Table => println!("{action}: {id}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The state, then one row per partition: latest offset, the furthest a reading task got, lag.
fn status_table(p: &Value) {
    println!(
        "{} on {}: {} ({}), healthy {}, aggregate lag {}",
        cell(&p["dataSource"]),
        cell(&p["stream"]),
        cell(&p["state"]),
        cell(&p["detailedState"]),
        cell(&p["healthy"]),
        cell(&p["aggregateLag"]),
    );
    let latest = p["latestOffsets"].as_object().cloned().unwrap_or_default();
    let mut partitions: Vec<(&String, &Value)> = latest.iter().collect();
    partitions.sort_by_key(|(k, _)| k.parse::<i64>().unwrap_or(i64::MAX));
    let rows: Vec<Vec<String>> = partitions
        .into_iter()
        .map(|(partition, latest)| {
            let current = p["activeTasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["currentOffsets"][partition].as_i64())
                .max();
            vec![
                partition.clone(),
                cell(latest),
                current.map_or("-".into(), |c| c.to_string()),
                cell(&p["minimumLag"][partition]),
            ]
        })
        .collect();
    output::table(&["PARTITION", "LATEST", "CURRENT", "LAG"], &rows);
    let tasks: Vec<Vec<String>> = ["activeTasks", "publishingTasks"]
        .iter()
        .flat_map(|k| p[*k].as_array().cloned().unwrap_or_default())
        .map(|t| {
            vec![
                cell(&t["id"]),
                cell(&t["type"]),
                cell(&t["remainingSeconds"]),
            ]
        })
        .collect();
    if !tasks.is_empty() {
        println!();
        output::table(&["TASK", "TYPE", "REMAINING_S"], &tasks);
    }
}

pub async fn datasource(
    o: &Overlord,
    out: Output,
    c: DatasourceCommand,
) -> anyhow::Result<ExitCode> {
    match c {
        DatasourceCommand::List => {
            let v = o.get("/druid/coordinator/v1/datasources?simple").await?;
            output::list(
                out,
                &v,
                &[
                    ("NAME", "/name"),
                    ("SEGMENTS", "/properties/segments/count"),
                    ("SIZE_BYTES", "/properties/segments/size"),
                    ("MIN_TIME", "/properties/segments/minTime"),
                    ("MAX_TIME", "/properties/segments/maxTime"),
                ],
            );
        }
        DatasourceCommand::Segments { datasource } => {
            let v = o
                .get(&format!(
                    "/druid/coordinator/v1/metadata/datasources/{}/segments?full",
                    segment(&datasource)
                ))
                .await?;
            let v = match v {
                Value::Array(segments) => Value::Array(
                    segments
                        .into_iter()
                        .map(|mut s| {
                            s["partition"] = s["shardSpec"]["partitionNum"].clone();
                            s
                        })
                        .collect(),
                ),
                other => other,
            };
            output::list(
                out,
                &v,
                &[
                    ("INTERVAL", "/interval"),
                    ("VERSION", "/version"),
                    ("PARTITION", "/partition"),
                    ("SIZE_BYTES", "/size"),
                ],
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn worker(o: &Overlord, out: Output, c: WorkerCommand) -> anyhow::Result<ExitCode> {
    match c {
        WorkerCommand::List => {
            let v = o.get("/druid/indexer/v1/workers").await?;
            let v = match v {
                Value::Array(workers) => Value::Array(
                    workers
                        .into_iter()
                        .map(|mut w| {
                            w["tasks"] = json!(w["runningTasks"].as_array().map_or(0, Vec::len));
                            w
                        })
                        .collect(),
                ),
                other => other,
            };
            output::list(
                out,
                &v,
                &[
                    ("HOST", "/worker/host"),
                    ("CATEGORY", "/worker/category"),
                    ("CAPACITY", "/worker/capacity"),
                    ("USED", "/currCapacityUsed"),
                    ("TASKS", "/tasks"),
                    ("VERSION", "/worker/version"),
                    ("BLACKLISTED_UNTIL", "/blacklistedUntil"),
                ],
            );
        }
        WorkerCommand::Config => output::json(&o.get("/druid/indexer/v1/worker").await?),
    }
    Ok(ExitCode::SUCCESS)
}
