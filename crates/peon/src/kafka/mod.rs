//! The `index_kafka` task (see docs/api.md and docs/architecture.md): reads its partitions from its
//! start offsets (assigned, no consumer group, `read_committed`), parses and rolls up with the
//! batch ingestion code, and publishes each sequence with its offsets. The chat API runs on a
//! thread of its own beside the reading loop, on `DROVER_PEON_PORT`.

mod chat;
mod handoff;
mod outage;
mod publish;
mod reader;
mod sequences;

use std::path::Path;

use drover_core::time::now_iso;
use drover_core::TaskStatus;
use drover_task::{KafkaTaskSpec, Task};
use rdkafka::consumer::BaseConsumer;
use tokio::sync::watch;

use crate::deep_storage::DeepStorage;
use crate::index::Progress;
use crate::overlord_client::OverlordClient;

use self::reader::{Outcome, Reader, Snapshot, Status};
use self::sequences::Sequences;
use crate::failure::TaskFailure;

pub fn run(task: &Task, spec: &KafkaTaskSpec, task_dir: &Path, attempt_dir: &Path) -> TaskStatus {
    let mut progress = Progress::new(task, attempt_dir);
    let result = ingest(task, spec, task_dir, &mut progress);
    progress.conclude(task, attempt_dir, result)
}

fn ingest(
    task: &Task,
    spec: &KafkaTaskSpec,
    task_dir: &Path,
    progress: &mut Progress,
) -> Result<(), TaskFailure> {
    let io = &spec.io;
    let persist = task_dir.join("persist");
    std::fs::create_dir_all(&persist)
        .map_err(|e| fail!("cannot create {}: {e}", persist.display()))?;
    let sequences_file = persist.join("sequences.json");
    let sequences = match Sequences::load(&sequences_file)? {
        Some(s) => {
            println!(
                "restored: resuming from the sequences saved in {}",
                sequences_file.display()
            );
            s
        }
        None => Sequences::new(&io.checkpoints, &io.end),
    };

    let mut config = drover_kafka::client::consumer_config(&io.consumer_properties);
    // Never skip silently past data that is gone: an out-of-range offset is an error.
    config.set("auto.offset.reset", "error");
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| fail!("cannot create a Kafka consumer: {e}"))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| fail!("cannot start the async runtime: {e}"))?;
    let overlord = OverlordClient::from_env(task.payload().clone())?;
    let deep = DeepStorage::from_env()?;

    let (snapshot_tx, snapshot_rx) = watch::channel(Snapshot {
        status: Status::NotStarted,
        current: sequences.read_from(),
        sequences: sequences.clone(),
        start_time: now_iso(),
    });
    let (controls_tx, controls_rx) = std::sync::mpsc::channel();
    progress
        .live
        .set_keep(spec.schema.tuning.max_saved_parse_exceptions as usize);
    // Without a chat API the task reads to its end offsets.
    crate::chat_server::start(chat::router(chat::ChatState {
        task_id: task.id.to_string(),
        controls: controls_tx,
        snapshot: snapshot_rx,
        live: progress.live.clone(),
    }))?;

    progress.set_state("BUILD_SEGMENTS");
    let reader = Reader::new(
        task.clone(),
        spec.io.clone(),
        spec.schema.clone(),
        consumer,
        sequences,
        sequences_file,
        task_dir.join("work"),
        controls_rx,
        snapshot_tx,
        publish::Publisher {
            rt: rt.handle().clone(),
            overlord,
            deep,
        },
        progress.live.clone(),
    );
    let (result, stats) = reader.run();
    progress.set_stats(stats);
    match result? {
        Outcome::Published { segments } => progress.segments = segments,
        Outcome::Stopped => println!(
            "stopped before publishing; nothing of this task's open sequences is published"
        ),
    }
    progress.set_state("COMPLETED");
    println!("peak RSS {} kB", crate::index::peak_rss_kb().unwrap_or(0));
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}
