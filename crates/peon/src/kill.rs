//! Druid's `kill` task: deletes unused segments for good. In batches of `batchSize` (at most
//! `limit` in all) it asks the overlord for unused segments wholly inside its interval, has their
//! rows deleted (`segmentNuke`, which deletes only rows still unused, under the task's exclusive
//! lock on the interval) and then deletes the files of exactly the rows that went. Used segments
//! are never touched, and a file is deleted only once no row points at it. A kill that stops
//! between the two steps leaves files without rows; it never leaves rows without files.

use std::path::Path;

use drover_core::segment::DataSegment;
use drover_core::TaskStatus;
use drover_task::{KillSpec, Task};
use serde_json::{json, Value};

use crate::deep_storage::DeepStorage;
use crate::failure::TaskFailure;
use crate::overlord_client::OverlordClient;

/// What the kill did, as Druid's `killUnusedSegments` report says it.
#[derive(Debug, Default)]
struct Killed {
    segments: u64,
    batches: u64,
    marked_unused: u64,
}

/// `segmentNuke`'s answer: the rows deleted, and those of them whose file another row still
/// points at (a segment carried into a replace's version shares its file), which stay.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Nuked {
    deleted: Vec<String>,
    #[serde(default)]
    files_in_use: Vec<String>,
}

pub fn run(task: &Task, spec: &KillSpec, attempt_dir: &Path) -> TaskStatus {
    let mut killed = Killed::default();
    let result = crate::block_on(kill(task, spec, &mut killed));
    if let Err(e) = write_report(task, attempt_dir, &killed) {
        eprintln!("cannot write report.json: {e}");
    }
    match result {
        Ok(()) => {
            println!(
                "kill task {} deleted {} unused segment(s) in {} batch(es)",
                task.id, killed.segments, killed.batches
            );
            TaskStatus::success(task.id.clone())
        }
        Err(e) => {
            println!(
                "kill task {} failed after deleting {} segment(s): {e}",
                task.id, killed.segments
            );
            TaskStatus::failure(task.id.clone(), e.0)
        }
    }
}

async fn kill(task: &Task, spec: &KillSpec, killed: &mut Killed) -> Result<(), TaskFailure> {
    let overlord = OverlordClient::from_env(task.payload().clone())?;
    let deep = DeepStorage::from_env()?;
    let data_source = task.data_source.as_str();
    if spec.mark_as_unused {
        let n = overlord
            .submit(
                json!({"type": "markSegmentsAsUnused", "dataSource": data_source,
                "interval": spec.interval, "versions": spec.versions}),
            )
            .await?;
        killed.marked_unused = n.as_u64().unwrap_or(0);
        println!(
            "marked {} used segment(s) in [{}] unused (markAsUnused)",
            killed.marked_unused, spec.interval
        );
    }
    loop {
        let wanted = match spec.limit {
            Some(limit) => spec.batch_size.min(limit.saturating_sub(killed.segments)),
            None => spec.batch_size,
        };
        if wanted == 0 {
            println!("reached the limit of {} segment(s)", killed.segments);
            break;
        }
        let answer = overlord
            .submit(
                json!({"type": "retrieveUnusedSegments", "dataSource": data_source,
                "interval": spec.interval, "versions": spec.versions, "limit": wanted,
                "maxUsedStatusLastUpdatedTime": spec.max_used_status_last_updated_time
                    .map(drover_core::time::to_iso)}),
            )
            .await?;
        let batch: Vec<DataSegment> = serde_json::from_value(answer)
            .map_err(|e| fail!("retrieveUnusedSegments answered something unreadable: {e}"))?;
        if batch.is_empty() {
            break;
        }
        let answer = overlord
            .submit(json!({"type": "segmentNuke", "segments": batch}))
            .await?;
        let Nuked {
            deleted,
            files_in_use,
        } = serde_json::from_value(answer)
            .map_err(|e| fail!("segmentNuke answered something unreadable: {e}"))?;
        for segment in batch
            .iter()
            .filter(|s| deleted.contains(&s.id()) && !files_in_use.contains(&s.id()))
        {
            deep.delete(&segment.load_spec).await?;
        }
        killed.segments += deleted.len() as u64;
        killed.batches += 1;
        println!(
            "batch {}: deleted {} of {} unused segment(s)",
            killed.batches,
            deleted.len(),
            batch.len()
        );
        if deleted.is_empty() {
            // Every one was marked used meanwhile: they stay, and so does everything after.
            break;
        }
    }
    if killed.segments == 0 {
        println!(
            "no unused segment of [{data_source}] lies wholly inside [{}]; nothing to delete",
            spec.interval
        );
    }
    Ok(())
}

fn write_report(task: &Task, attempt_dir: &Path, killed: &Killed) -> std::io::Result<()> {
    let report: Value = json!({
        "killUnusedSegments": {
            "type": "killUnusedSegments",
            "taskId": task.id,
            "payload": {
                "numSegmentsKilled": killed.segments,
                "numBatchesProcessed": killed.batches,
                "numSegmentsMarkedAsUnused": killed.marked_unused,
            }
        }
    });
    crate::index::write_report_file(attempt_dir, &report)
}
