//! The sub-tasks of an `index_parallel` task, run by their own peons. Each does its part and
//! hands the result back in its report's `subTaskReport` (read by the supervisor through the
//! overlord): pushed segments, a split's partition measures, partial segments' locations.
//! None publishes: the supervisor does, once every sub-task is done.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use drover_core::segment::DataSegment;
use drover_core::TaskStatus;
use drover_ingest::input::Input;
use drover_ingest::partitioning::PartitionPlan;
use drover_ingest::IngestionSpec;
use drover_task::Task;
use serde_json::{json, Value};

use super::PartialLocation;
use crate::deep_storage::DeepStorage;
use crate::failure::TaskFailure;
use crate::index::{
    build_rows, determine_stats, gather_inputs, path_safe, pause_before_publish, write_segments,
    Progress,
};
use crate::overlord_client::OverlordClient;

pub fn run(task: &Task, spec: &IngestionSpec, task_dir: &Path, attempt_dir: &Path) -> TaskStatus {
    let mut progress = Progress::new(task, attempt_dir);
    progress.serve_live_reports();
    let result = crate::block_on(work(task, spec, task_dir, &mut progress))
        .map(|report| progress.sub_task_report = Some(report));
    progress.conclude(task, attempt_dir, result)
}

async fn work(
    task: &Task,
    spec: &IngestionSpec,
    task_dir: &Path,
    progress: &mut Progress,
) -> Result<Value, TaskFailure> {
    let overlord = OverlordClient::from_env(task.payload().clone())?;
    let deep = DeepStorage::from_env()?;
    let report = match task.task_type.as_str() {
        "single_phase_sub_task" => {
            let gathered = gather_inputs(spec, task_dir, &overlord, &deep).await?;
            let built = build_rows(spec, &gathered.inputs, task_dir, progress, None)?;
            let segments = write_segments(task, spec, &built, None, &overlord, &deep).await?;
            progress.segments = segments.len();
            json!({"segments": segments, "rowStats": built.stats})
        }
        "partial_dimension_cardinality" | "partial_dimension_distribution" => {
            progress.set_state("DETERMINE_PARTITIONS");
            let gathered = gather_inputs(spec, task_dir, &overlord, &deep).await?;
            let stats = determine_stats(spec, &gathered.inputs, task_dir)?;
            json!({"stats": stats})
        }
        "partial_index_generate" | "partial_range_index_generate" => {
            generate(task, spec, task_dir, progress, &overlord, &deep).await?
        }
        "partial_index_generic_merge" => {
            merge(task, spec, task_dir, progress, &overlord, &deep).await?
        }
        other => return Err(fail!("[{other}] is not a sub-task type")),
    };
    pause_before_publish(task).await;
    progress.set_state("COMPLETED");
    Ok(report)
}

fn supervisor_of(task: &Task) -> Result<&str, TaskFailure> {
    task.supervisor_task_id
        .as_ref()
        .map(|s| s.as_str())
        .ok_or_else(|| fail!("a sub-task needs its supervisorTaskId"))
}

/// Writes the split's rows as partial segments, one per (time chunk, bucket) of the plan.
async fn generate(
    task: &Task,
    spec: &IngestionSpec,
    task_dir: &Path,
    progress: &mut Progress,
    overlord: &OverlordClient,
    deep: &DeepStorage,
) -> Result<Value, TaskFailure> {
    let plan: PartitionPlan = serde_json::from_value(
        task.payload()
            .get("partitionPlan")
            .cloned()
            .unwrap_or_default(),
    )
    .map_err(|e| fail!("invalid field [partitionPlan]: {e}"))?;
    let gathered = gather_inputs(spec, task_dir, overlord, deep).await?;
    let built = build_rows(spec, &gathered.inputs, task_dir, progress, Some(&plan))?;
    let supervisor = supervisor_of(task)?;
    let mut partials = Vec::new();
    for p in &built.partitions {
        let bytes = std::fs::read(&p.path)
            .map_err(|e| fail!("cannot read partial segment {}: {e}", p.path.display()))?;
        let key = format!(
            "{}/shuffle/{}/{}/{}_{}.parquet",
            spec.data_source,
            path_safe(supervisor),
            path_safe(task.id.as_str()),
            p.interval.start.timestamp_millis(),
            p.bucket
        );
        let load_spec = deep.put(&key, bytes).await?;
        std::fs::remove_file(&p.path).ok();
        partials.push(PartialLocation {
            interval: p.interval,
            bucket_id: p.bucket,
            load_spec,
            rows: p.rows,
            sub_task_id: task.id.to_string(),
        });
    }
    println!("wrote {} partial segment(s)", partials.len());
    let dimensions: Vec<Value> = built.dimensions.iter().map(|d| d.to_json()).collect();
    Ok(json!({"partials": partials, "dimensions": dimensions, "rowStats": built.stats}))
}

/// Merges the partial segments of each (time chunk, bucket) in `partitionLocations` into one
/// segment, rolled up again, and pushes it.
async fn merge(
    task: &Task,
    spec: &IngestionSpec,
    task_dir: &Path,
    progress: &mut Progress,
    overlord: &OverlordClient,
    deep: &DeepStorage,
) -> Result<Value, TaskFailure> {
    let locations: Vec<PartialLocation> = serde_json::from_value(
        task.payload()
            .get("partitionLocations")
            .cloned()
            .unwrap_or_default(),
    )
    .map_err(|e| fail!("invalid field [partitionLocations]: {e}"))?;
    let mut groups: BTreeMap<(i64, u32), Vec<&PartialLocation>> = BTreeMap::new();
    for l in &locations {
        groups
            .entry((l.interval.start.timestamp_millis(), l.bucket_id))
            .or_default()
            .push(l);
    }
    // One bucket per chunk: a merged bucket is one segment, however many rows it has.
    let one_file = PartitionPlan {
        num_shards: Some(1),
        ..Default::default()
    };
    let mut segments: Vec<DataSegment> = Vec::new();
    let mut buckets: Vec<u32> = Vec::new();
    for (i, ((_, bucket), parts)) in groups.into_iter().enumerate() {
        let dir = task_dir.join(format!("merge-{i}"));
        let rows = dir.join("partials.json");
        std::fs::create_dir_all(&dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&rows)
                .map_err(|e| fail!("cannot write {}: {e}", rows.display()))?,
        );
        let millis = |ms: i64| json!(ms);
        for part in &parts {
            let bytes = deep.read(&part.load_spec).await?;
            drover_ingest::segment::write_json_lines(
                bytes,
                &mut out,
                &|_| true,
                &[("__time", &millis)],
            )
            .map_err(|e| {
                fail!(
                    "cannot read a partial segment of [{}]: {e}",
                    part.sub_task_id
                )
            })?;
        }
        out.flush()
            .map_err(|e| fail!("cannot write {}: {e}", rows.display()))?;
        drop(out);
        let mut built = build_rows(spec, &[Input::File(rows)], &dir, progress, Some(&one_file))?;
        // Numbered by bucket until the supervisor numbers them: the number names the file in
        // deep storage, which must differ from this task's other buckets in the chunk.
        for p in &mut built.partitions {
            p.partition_num = bucket;
        }
        let pushed = write_segments(task, spec, &built, None, overlord, deep).await?;
        buckets.extend(std::iter::repeat_n(bucket, pushed.len()));
        segments.extend(pushed);
        std::fs::remove_dir_all(&dir).ok();
    }
    progress.segments = segments.len();
    Ok(json!({"segments": segments, "buckets": buckets}))
}
