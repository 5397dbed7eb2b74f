//! Druid's parallel batch ingestion. An `index_parallel` task with `maxNumConcurrentSubTasks`
//! above 1 and a splittable input source becomes a supervisor task: it cuts the input into
//! splits and runs sub-tasks over them through the overlord (each a real task on any middle
//! manager, with its own locks, report and retries), then publishes everything they wrote in
//! one transaction.
//!
//! - `dynamic` partitioning: one phase of `single_phase_sub_task`s, each building and pushing
//!   the segments of its split; the supervisor numbers them per time chunk and publishes.
//! - `hashed`/`range`/`single_dim`: up to three phases. `partial_dimension_cardinality` or
//!   `partial_dimension_distribution` sub-tasks measure each split's time chunks (skipped for
//!   `hashed` with `numShards`), the supervisor turns the merged measures into buckets; then
//!   `partial_index_generate` / `partial_range_index_generate` sub-tasks write each split's rows
//!   as partial segments, one per (time chunk, bucket), to deep storage (Druid's `deepstore`
//!   intermediary storage); then `partial_index_generic_merge` sub-tasks merge the partials of
//!   each (time chunk, bucket) into its segment, rolled up again. The supervisor publishes them
//!   with Druid's hashed/range shard specs and deletes the partials.
//!
//! Sub-tasks lock for their supervisor too (see the overlord's queue), so every segment of a
//! time chunk has one version and the supervisor holds the locks it publishes under.

pub mod progress;
mod runner;
pub mod splits;
pub mod sub_task;

use std::collections::BTreeMap;
use std::sync::Arc;

use drover_core::interval::Interval;
use drover_core::segment::{numbered_shard_spec, DataSegment};
use drover_ingest::partitioning::{shard_specs, ChunkStats, PartitionPlan, PartitionsSpec};
use drover_ingest::row_builder::RowStats;
use drover_ingest::IngestionSpec;
use drover_task::Task;
use serde_json::{json, Value};

use crate::deep_storage::DeepStorage;
use crate::failure::TaskFailure;
use crate::index::{pause_before_publish, publish, Progress};
use crate::overlord_client::OverlordClient;
use progress::Tracker;
use runner::{Runner, SubTaskSpec};

/// A partial segment a generate sub-task wrote: one (time chunk, bucket) of its split.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartialLocation {
    pub interval: Interval,
    pub bucket_id: u32,
    pub load_spec: Value,
    pub rows: u64,
    pub sub_task_id: String,
}

/// Runs `task` as a supervisor over `splits` (input sources' JSON).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn supervise(
    task: &Task,
    spec: &IngestionSpec,
    splits: Vec<Value>,
    progress: &mut Progress,
    overlord: &OverlordClient,
    deep: &DeepStorage,
    tracker: Arc<Tracker>,
) -> Result<(), TaskFailure> {
    tracker.set_parallel();
    let tuning = &spec.tuning.parallel;
    println!(
        "parallel mode: {} split(s), at most {} sub-task(s) at a time, maxRetry {}",
        splits.len(),
        tuning.max_num_concurrent_sub_tasks,
        tuning.max_retry
    );
    let runner = Runner {
        overlord,
        supervisor: task,
        max_concurrent: tuning.max_num_concurrent_sub_tasks as usize,
        max_retry: tuning.max_retry,
        tracker,
    };
    let spec_json = task
        .payload()
        .get("spec")
        .cloned()
        .ok_or_else(|| fail!("an index_parallel task's spec must be under [spec]"))?;
    let sub_task = |task_type: &str, spec_id: String, spec: Value| SubTaskSpec {
        payload: json!({
            "type": task_type,
            "groupId": task.group_id,
            "supervisorTaskId": task.id,
            "subtaskSpecId": spec_id,
            "dataSource": task.data_source,
            "context": task.context(),
            "spec": spec,
        }),
        spec_id,
    };
    let over_splits = |task_type: &str, extra: &dyn Fn(&mut Value)| -> Vec<SubTaskSpec> {
        splits
            .iter()
            .enumerate()
            .map(|(i, split)| {
                let mut s = spec_json.clone();
                s["ioConfig"]["inputSource"] = split.clone();
                let mut sub = sub_task(task_type, format!("{}_{i}", task.id), s);
                extra(&mut sub.payload);
                sub
            })
            .collect()
    };
    progress.set_state("BUILD_SEGMENTS");

    let partitions = &spec.tuning.partitions;
    let (segments, partials) = if !partitions.is_secondary() {
        let reports = runner
            .run_phase(
                "segment generation",
                over_splits("single_phase_sub_task", &|_| {}),
            )
            .await?;
        progress.set_stats(sum_row_stats(&reports));
        let mut segments = segments_of(&reports)?;
        if !spec.append_to_existing {
            number_per_chunk(&mut segments);
        }
        (segments, Vec::new())
    } else {
        let plan = if partitions.needs_stats() {
            let (stats_type, _) = partitions.phase_task_types();
            let phase = match partitions {
                PartitionsSpec::Range { .. } => "partial dimension distribution",
                _ => "partial dimension cardinality",
            };
            let reports = runner
                .run_phase(phase, over_splits(stats_type, &|_| {}))
                .await?;
            let mut stats = ChunkStats::default();
            for r in reports {
                let s: ChunkStats = serde_json::from_value(r["stats"].clone())
                    .map_err(|e| fail!("a sub-task's partition stats are unreadable: {e}"))?;
                stats.merge(s);
            }
            PartitionPlan::from_stats(partitions, &stats)
        } else {
            PartitionPlan::from_stats(partitions, &ChunkStats::default())
        };
        let (_, generate_type) = partitions.phase_task_types();
        let plan_json = json!(plan);
        let reports = runner
            .run_phase(
                "partial segment generation",
                over_splits(generate_type, &|p| p["partitionPlan"] = plan_json.clone()),
            )
            .await?;
        progress.set_stats(sum_row_stats(&reports));
        let mut partials: Vec<PartialLocation> = Vec::new();
        let mut dimensions: Vec<Value> = Vec::new();
        for r in &reports {
            let found: Vec<PartialLocation> = serde_json::from_value(r["partials"].clone())
                .map_err(|e| fail!("a sub-task's partial segments are unreadable: {e}"))?;
            partials.extend(found);
            for d in r["dimensions"].as_array().into_iter().flatten() {
                if !dimensions.iter().any(|have| have["name"] == d["name"]) {
                    dimensions.push(d.clone());
                }
            }
        }
        let merge_spec = merge_spec(&spec_json, spec, &dimensions);
        let groups = merge_groups(&partials, tuning.total_num_merge_tasks as usize);
        let merges: Vec<SubTaskSpec> = groups
            .into_iter()
            .enumerate()
            .map(|(i, locations)| {
                let mut sub = sub_task(
                    "partial_index_generic_merge",
                    format!("{}_merge_{i}", task.id),
                    merge_spec.clone(),
                );
                sub.payload["partitionLocations"] = json!(locations);
                sub
            })
            .collect();
        let reports = match runner.run_phase("partial segment merge", merges).await {
            Ok(r) => r,
            Err(e) => {
                delete_partials(deep, &partials).await;
                return Err(e);
            }
        };
        let mut bucketed: Vec<(DataSegment, u32)> = Vec::new();
        for r in &reports {
            let segments: Vec<DataSegment> = serde_json::from_value(r["segments"].clone())
                .map_err(|e| fail!("a merge sub-task's segments are unreadable: {e}"))?;
            let buckets: Vec<u32> = serde_json::from_value(r["buckets"].clone())
                .map_err(|e| fail!("a merge sub-task's buckets are unreadable: {e}"))?;
            bucketed.extend(segments.into_iter().zip(buckets));
        }
        bucketed.sort_by_key(|(s, b)| (s.interval.start, *b));
        let written: Vec<(i64, u32)> = bucketed
            .iter()
            .map(|(s, b)| (s.interval.start.timestamp_millis(), *b))
            .collect();
        let specs = shard_specs(partitions, &plan, &written);
        let segments = bucketed
            .into_iter()
            .zip(specs)
            .map(|((mut s, _), shard)| {
                s.shard_spec = shard;
                s
            })
            .collect();
        (segments, partials)
    };

    progress.segments = segments.len();
    pause_before_publish(task).await;
    let published = publish(overlord, &segments, &[], &[]).await;
    // Published or not, nothing will read the partial segments again.
    delete_partials(deep, &partials).await;
    published?;
    progress.set_state("COMPLETED");
    Ok(())
}

async fn delete_partials(deep: &DeepStorage, partials: &[PartialLocation]) {
    for p in partials {
        if let Err(e) = deep.delete(&p.load_spec).await {
            println!("cannot delete a partial segment: {e}");
        }
    }
}

fn sum_row_stats(reports: &[Value]) -> RowStats {
    let mut total = RowStats::default();
    for r in reports {
        if let Ok(s) = serde_json::from_value::<RowStats>(r["rowStats"].clone()) {
            total.processed += s.processed;
            total.processed_with_error += s.processed_with_error;
            total.thrown_away += s.thrown_away;
            total.unparseable += s.unparseable;
        }
    }
    total
}

fn segments_of(reports: &[Value]) -> Result<Vec<DataSegment>, TaskFailure> {
    let mut out = Vec::new();
    for r in reports {
        let segments: Vec<DataSegment> = serde_json::from_value(r["segments"].clone())
            .map_err(|e| fail!("a sub-task's pushed segments are unreadable: {e}"))?;
        out.extend(segments);
    }
    Ok(out)
}

/// Overwriting sub-tasks each number their segments from 0: the supervisor numbers each time
/// chunk's segments 0.. across them (they share the chunk's version).
fn number_per_chunk(segments: &mut [DataSegment]) {
    segments.sort_by_key(|s| s.interval.start);
    let mut next: BTreeMap<(i64, String), u32> = BTreeMap::new();
    for s in segments {
        let n = next
            .entry((s.interval.start.timestamp_millis(), s.version.clone()))
            .or_default();
        s.shard_spec = numbered_shard_spec(*n);
        *n += 1;
    }
}

/// The (time chunk, bucket) pairs of `partials`, in order, dealt into at most `tasks` merge
/// sub-tasks (a pair never split between two).
fn merge_groups(partials: &[PartialLocation], tasks: usize) -> Vec<Vec<PartialLocation>> {
    let mut by_bucket: BTreeMap<(i64, u32), Vec<PartialLocation>> = BTreeMap::new();
    for p in partials {
        by_bucket
            .entry((p.interval.start.timestamp_millis(), p.bucket_id))
            .or_default()
            .push(p.clone());
    }
    let n = tasks.clamp(1, by_bucket.len().max(1));
    let per = by_bucket.len().div_ceil(n).max(1);
    let pairs: Vec<Vec<PartialLocation>> = by_bucket.into_values().collect();
    pairs.chunks(per).map(|c| c.concat()).collect()
}

/// The spec merge sub-tasks read partial segments with: rows as the partials hold them
/// (`__time` in ms, the dimensions found, the metrics rolled up by their combining
/// aggregators), no transforms or filter (applied already).
fn merge_spec(spec_json: &Value, spec: &IngestionSpec, dimensions: &[Value]) -> Value {
    let mut s = spec_json.clone();
    let schema = &mut s["dataSchema"];
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("parser");
        obj.remove("transformSpec");
    }
    schema["timestampSpec"] = json!({"column": "__time", "format": "millis"});
    schema["dimensionsSpec"] = json!({"dimensions": dimensions});
    schema["metricsSpec"] = json!(spec
        .metrics
        .iter()
        .map(|m| m.combining_json())
        .collect::<Vec<_>>());
    s["ioConfig"] = json!({"type": "partial_index_generic_merge", "inputFormat": {"type": "json"}});
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(interval: &str, version: &str) -> DataSegment {
        serde_json::from_value(json!({
            "dataSource": "wiki", "interval": interval, "version": version,
            "loadSpec": {}, "dimensions": "", "metrics": "",
            "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 0}, "size": 0
        }))
        .unwrap()
    }

    #[test]
    fn segments_of_a_chunk_are_numbered_across_sub_tasks() {
        let mut s = vec![
            segment("2015-09-12/2015-09-13", "v1"),
            segment("2015-09-11/2015-09-12", "v1"),
            segment("2015-09-12/2015-09-13", "v1"),
        ];
        number_per_chunk(&mut s);
        let nums: Vec<u32> = s.iter().map(DataSegment::partition_num).collect();
        assert_eq!(nums, vec![0, 0, 1]);
    }

    #[test]
    fn merge_groups_keep_each_bucket_whole() {
        let p = |day: u32, bucket: u32, task: &str| PartialLocation {
            interval: Interval::parse(&format!("2015-09-{day:02}/2015-09-{:02}", day + 1)).unwrap(),
            bucket_id: bucket,
            load_spec: json!({}),
            rows: 1,
            sub_task_id: task.into(),
        };
        let partials = vec![p(12, 0, "a"), p(12, 1, "a"), p(12, 0, "b"), p(13, 0, "b")];
        let groups = merge_groups(&partials, 2);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0].len(),
            3,
            "both partials of (12, 0) and the one of (12, 1)"
        );
        assert_eq!(groups[1].len(), 1);
        assert_eq!(merge_groups(&partials, 10).len(), 3);
    }
}
