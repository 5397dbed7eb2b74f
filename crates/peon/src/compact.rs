//! Druid's `compact` task: the used segments of an interval (or the listed ones) are read back
//! through a `druid` input source and written again as new segments of the lock's newer version,
//! which overshadow them. What the user left out of the schema comes from the segments: their
//! dimensions (with the types their columns have), their metrics (summed again: `longSum` or
//! `doubleSum` by column type), their segment granularity.

use std::path::Path;

use drover_core::granularity::Granularity;
use drover_core::segment::DataSegment;
use drover_core::TaskStatus;
use drover_ingest::segment::{column_kinds, ColumnKind};
use drover_task::{CompactSpec, Task};
use serde_json::{json, Value};

use crate::deep_storage::DeepStorage;
use crate::failure::TaskFailure;
use crate::index::{build_and_publish, Progress, Rewrite};
use crate::overlord_client::OverlordClient;

pub fn run(task: &Task, spec: &CompactSpec, task_dir: &Path, attempt_dir: &Path) -> TaskStatus {
    let mut progress = Progress::new(task, attempt_dir);
    progress.serve_live_reports();
    let result = crate::block_on(compact(task, spec, task_dir, &mut progress));
    progress.conclude(task, attempt_dir, result)
}

async fn compact(
    task: &Task,
    spec: &CompactSpec,
    task_dir: &Path,
    progress: &mut Progress,
) -> Result<(), TaskFailure> {
    let overlord = OverlordClient::from_env(task.payload().clone())?;
    let deep = DeepStorage::from_env()?;
    let data_source = &task.data_source;
    let answer = overlord
        .submit(json!({"type": "segmentListUsed", "dataSource": data_source,
            "intervals": [spec.interval]}))
        .await?;
    let mut segments: Vec<DataSegment> = serde_json::from_value(answer)
        .map_err(|e| fail!("segmentListUsed answered something unreadable: {e}"))?;
    if let Some(ids) = &spec.segment_ids {
        segments.retain(|s| ids.contains(&s.id()));
        if let Some(missing) = ids
            .iter()
            .find(|id| !segments.iter().any(|s| s.id() == **id))
        {
            return Err(fail!(
                "segment [{missing}] is not a used segment of [{data_source}]"
            ));
        }
    }
    if segments.is_empty() {
        // Said first: errorMsg is cut at 100 characters.
        return Err(fail!(
            "nothing to compact: no used segment of [{data_source}] in [{}]",
            spec.interval
        ));
    }
    if let Some(s) = segments
        .iter()
        .find(|s| !spec.interval.encloses(&s.interval))
    {
        return Err(fail!(
            "segment [{}] reaches outside [{}]: compact an interval that covers whole segments",
            s.id(),
            spec.interval
        ));
    }
    let granularity = match spec.segment_granularity {
        Some(g) => g,
        None => granularity_of(&segments).ok_or_else(|| {
            fail!(
                "the segments of [{}] have different granularities; give \
                 granularitySpec.segmentGranularity",
                spec.interval
            )
        })?,
    };
    let (dimensions, metrics) = schema_of(&segments, &deep).await?;
    let ingestion = spec
        .ingestion_spec(data_source, dimensions, metrics, granularity)
        .map_err(|e| fail!("the compaction's spec is not valid: {e}"))?;
    println!(
        "compacting {} segment(s) of [{data_source}] in [{}] into {} segments",
        segments.len(),
        spec.interval,
        granularity.name()
    );
    let rewrite = Rewrite {
        replaced: if spec.drop_existing { &segments } else { &[] },
        state: Some(spec.state()),
    };
    build_and_publish(
        task, &ingestion, task_dir, progress, &overlord, &deep, &rewrite,
    )
    .await
}

/// The one granularity whose buckets all the segments are, if there is one.
fn granularity_of(segments: &[DataSegment]) -> Option<Granularity> {
    const CANDIDATES: [Granularity; 14] = [
        Granularity::Second,
        Granularity::Minute,
        Granularity::FiveMinute,
        Granularity::TenMinute,
        Granularity::FifteenMinute,
        Granularity::ThirtyMinute,
        Granularity::Hour,
        Granularity::SixHour,
        Granularity::EightHour,
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
        Granularity::Quarter,
        Granularity::Year,
    ];
    CANDIDATES.into_iter().find(|g| {
        segments
            .iter()
            .all(|s| g.bucket(s.interval.start) == s.interval)
    })
}

/// The segments' dimensions and metrics as a `dimensionsSpec` and a `metricsSpec`: names in
/// the order the segments list them, types from the first segment's columns.
async fn schema_of(
    segments: &[DataSegment],
    deep: &DeepStorage,
) -> Result<(Value, Value), TaskFailure> {
    let names = |list: fn(&DataSegment) -> &str| {
        let mut out: Vec<String> = Vec::new();
        for s in segments {
            for name in list(s).split(',').filter(|n| !n.is_empty()) {
                if !out.iter().any(|o| o == name) {
                    out.push(name.to_string());
                }
            }
        }
        out
    };
    let dimension_names = names(|s| &s.dimensions);
    let metric_names = names(|s| &s.metrics);
    let bytes = deep.read(&segments[0].load_spec).await?;
    let kinds = column_kinds(bytes)
        .map_err(|e| fail!("cannot read segment [{}]: {e}", segments[0].id()))?;
    let kind_of = |name: &str| kinds.iter().find(|(n, _)| n == name).map(|(_, k)| *k);
    let dimensions: Vec<Value> = dimension_names
        .iter()
        .map(|name| match kind_of(name) {
            Some(ColumnKind::Long) => json!({"name": name, "type": "long"}),
            Some(ColumnKind::Double) => json!({"name": name, "type": "double"}),
            _ => json!(name),
        })
        .collect();
    let metrics: Vec<Value> = metric_names
        .iter()
        .map(|name| {
            let kind = match kind_of(name) {
                Some(ColumnKind::Double) => "doubleSum",
                _ => "longSum",
            };
            json!({"type": kind, "name": name, "fieldName": name})
        })
        .collect();
    Ok((json!({"dimensions": dimensions}), json!(metrics)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(interval: &str) -> DataSegment {
        serde_json::from_value(json!({
            "dataSource": "wiki", "interval": interval, "version": "v1",
            "loadSpec": {}, "dimensions": "", "metrics": "",
            "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 0}, "size": 0
        }))
        .unwrap()
    }

    #[test]
    fn the_segments_granularity_is_found_or_refused_when_mixed() {
        let hours = [
            segment("2015-09-12T00:00:00Z/2015-09-12T01:00:00Z"),
            segment("2015-09-12T05:00:00Z/2015-09-12T06:00:00Z"),
        ];
        assert_eq!(granularity_of(&hours), Some(Granularity::Hour));
        let days = [segment("2015-09-12/2015-09-13")];
        assert_eq!(granularity_of(&days), Some(Granularity::Day));
        let mixed = [hours[0].clone(), days[0].clone()];
        assert_eq!(granularity_of(&mixed), None);
    }
}
