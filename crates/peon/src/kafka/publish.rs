//! Publishing one sequence: merge its rows into segment files, allocate each segment under the
//! sequence's name (so replicas get the same ids), upload them, then one
//! `segmentTransactionalInsert` with the sequence's start and end offsets — the segments and the
//! offset advance commit together or not at all (see docs/ingestion.md). A sequence without rows still
//! commits its offsets.

use std::path::Path;

use drover_ingest::build::write_segment_files;
use drover_ingest::row_builder::RowBuilder;
use drover_ingest::IngestionSpec;
use drover_kafka::task::sequence_numbers;
use drover_kafka::{KafkaTaskIo, Offsets};
use drover_task::Task;
use serde_json::{json, Value};
use tokio::runtime::Handle;

use super::sequences::Sequence;
use crate::deep_storage::DeepStorage;
use crate::failure::TaskFailure;
use crate::index::{allocate, upload};
use crate::live::Output;
use crate::overlord_client::OverlordClient;

pub struct Publisher {
    pub rt: Handle,
    pub overlord: OverlordClient,
    pub deep: DeepStorage,
}

/// Druid's `kafka` commit metadata for a sequence's start or end.
fn metadata(kind: &str, topic: &str, offsets: &Offsets) -> Value {
    json!({"type": "kafka", "partitions": sequence_numbers(kind, topic, offsets)})
}

impl Publisher {
    /// Returns what the sequence published: its segments and their rows, and the sorted runs its
    /// rows were spilled in.
    pub fn publish(
        &self,
        task: &Task,
        spec: &IngestionSpec,
        io: &KafkaTaskIo,
        seq: &Sequence,
        builder: Option<RowBuilder>,
        dir: &Path,
    ) -> Result<(usize, Output), TaskFailure> {
        let started = std::time::Instant::now();
        let mut output = Output::default();
        let (partitions, dimensions) = match builder {
            Some(b) => {
                output.persists = b.spills() as u64;
                output.persist_ms = b.spill_time().as_millis() as u64;
                write_segment_files(spec, b, &dir.join("segments")).map_err(|e| e.to_string())?
            }
            None => (Vec::new(), Vec::new()),
        };
        output.rows = partitions.iter().map(|p| p.rows).sum();
        let dimensions: Vec<String> = dimensions.into_iter().map(|d| d.name).collect();
        let metrics: Vec<String> = spec.metrics.iter().map(|m| m.name.clone()).collect();
        let sequence_name = format!("{}_{}", io.base_sequence_name, seq.id);
        self.rt.block_on(async {
            let mut previous = None;
            let mut segments = Vec::new();
            for p in &partitions {
                let (interval, version, num) =
                    allocate(&self.overlord, spec, &p.interval, &sequence_name, &mut previous).await?;
                segments.push(upload(task, spec, p, interval, version, drover_core::segment::numbered_shard_spec(num), &dimensions, &metrics, &self.deep).await?);
            }
            let result = self
                .overlord
                .submit(json!({
                    "type": "segmentTransactionalInsert",
                    "segments": segments,
                    "startMetadata": metadata("start", &io.topic, &seq.start),
                    "endMetadata": metadata("end", &io.topic, &seq.end),
                }))
                .await?;
            if result.get("success").and_then(Value::as_bool) != Some(true) {
                return Err(fail!(
                    "Transaction failure publishing segments of sequence [{sequence_name}], aborting: {}",
                    result
                        .get("errorMsg")
                        .and_then(Value::as_str)
                        .unwrap_or("no reason given")
                ));
            }
            println!(
                "published sequence [{sequence_name}]: {} segment(s), offsets {:?} → {:?}, in {} ms",
                segments.len(),
                seq.start,
                seq.end,
                started.elapsed().as_millis()
            );
            Ok((segments.len(), output))
        })
    }
}
