//! The reading loop of an `index_kafka` task, on its own thread: it owns the consumer, the
//! sequences, the current offsets and one row builder per open sequence. The chat API reaches it
//! only through `Control` messages (and reads the snapshot it publishes), so no lock is held
//! while it reads, parses or publishes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_core::interval::Interval;
use drover_ingest::format::RecordReader;
use drover_ingest::parse_report::{parse_exception_report, ErrorType};
use drover_ingest::record::{Record, RowError};
use drover_ingest::row_builder::{RowBuilder, RowStats};
use drover_ingest::IngestionSpec;
use drover_kafka::task::sequence_numbers;
use drover_kafka::{KafkaTaskIo, Offsets};
use drover_task::Task;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use super::handoff::{checkpoint_reason, Held, Limits};
use super::outage::{is_transient, Outage, Verdict};
use super::publish::Publisher;
use super::sequences::{Sequences, SetEnd};
use crate::failure::TaskFailure;
use crate::index::thread_cpu_time;
use crate::live::LiveReport;

/// Druid's `SeekableStreamIndexTaskRunner.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    NotStarted,
    Starting,
    Reading,
    Paused,
    Publishing,
}

/// What the chat API sees.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: Status,
    pub current: Offsets,
    pub sequences: Sequences,
    pub start_time: String,
}

pub enum Control {
    /// Reply: the current offsets, once paused.
    Pause(oneshot::Sender<Offsets>),
    Resume(oneshot::Sender<()>),
    SetEndOffsets {
        end: Offsets,
        finish: bool,
        reply: oneshot::Sender<Result<Offsets, TaskFailure>>,
    },
    /// Stop reading and end without publishing (a replica has published, or the supervisor is
    /// done with this task).
    Stop,
}

/// How the reading ended.
pub enum Outcome {
    /// Every sequence was read and published.
    Published { segments: usize },
    /// Stopped on request.
    Stopped,
}

/// How often the snapshot is refreshed while messages flow.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);

pub struct Reader {
    pub task: Task,
    pub io: KafkaTaskIo,
    pub spec: IngestionSpec,
    /// Taken by the reading loop (the messages it polls borrow it).
    consumer: Option<BaseConsumer>,
    pub sequences: Sequences,
    pub sequences_file: PathBuf,
    pub work_dir: PathBuf,
    pub controls: Receiver<Control>,
    pub snapshot: watch::Sender<Snapshot>,
    pub publisher: Publisher,
    /// The counts and recent parse errors the chat API and the report show.
    live: Arc<LiveReport>,
    pub current: Offsets,
    builders: BTreeMap<u32, RowBuilder>,
    /// Counts of the sequences already published.
    stats_done: RowStats,
    status: Status,
    segments: usize,
    /// When the first message arrived and the reading thread's CPU time then, for the read
    /// rate the log reports.
    first_message: Option<(Instant, Duration)>,
    /// Messages taken from Kafka (including the ones thrown away).
    messages: u64,
    /// The open sequence a checkpoint was asked for (once per sequence).
    checkpoint_asked: Option<u32>,
    /// When the open sequence started reading, for `intermediateHandoffPeriod`.
    sequence_started: Instant,
    /// The brokers cannot be reached (see `outage`), and the last error said so.
    outage: Option<(Outage, String)>,
    /// When the brokers were last asked whether they are back.
    outage_probed: Instant,
}

fn add_stats(a: &mut RowStats, b: &RowStats) {
    a.processed += b.processed;
    a.processed_with_error += b.processed_with_error;
    a.thrown_away += b.thrown_away;
    a.unparseable += b.unparseable;
}

impl Reader {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        task: Task,
        io: KafkaTaskIo,
        mut spec: IngestionSpec,
        consumer: BaseConsumer,
        sequences: Sequences,
        sequences_file: PathBuf,
        work_dir: PathBuf,
        controls: Receiver<Control>,
        snapshot: watch::Sender<Snapshot>,
        publisher: Publisher,
        live: Arc<LiveReport>,
    ) -> Reader {
        // Late and early messages (minimumMessageTime / maximumMessageTime, both inclusive) are
        // thrown away like rows outside the schema's intervals.
        if io.minimum_message_time.is_some() || io.maximum_message_time.is_some() {
            let start = io
                .minimum_message_time
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
            let end = io
                .maximum_message_time
                .map_or(chrono::DateTime::<chrono::Utc>::MAX_UTC, |t| {
                    t + chrono::Duration::milliseconds(1)
                });
            if let Ok(window) = Interval::new(start, end) {
                spec.granularity.intervals = vec![window];
            }
        }
        let current = sequences.read_from();
        Reader {
            task,
            io,
            spec,
            consumer: Some(consumer),
            sequences,
            sequences_file,
            work_dir,
            controls,
            snapshot,
            publisher,
            live,
            current,
            builders: BTreeMap::new(),
            stats_done: RowStats::default(),
            status: Status::Starting,
            segments: 0,
            first_message: None,
            messages: 0,
            checkpoint_asked: None,
            sequence_started: Instant::now(),
            outage: None,
            outage_probed: Instant::now(),
        }
    }

    pub fn stats(&self) -> RowStats {
        let mut total = self.stats_done;
        for b in self.builders.values() {
            add_stats(&mut total, &b.stats);
        }
        total
    }

    fn publish_snapshot(&self) {
        self.snapshot.send_modify(|s| {
            s.status = self.status;
            s.current.clone_from(&self.current);
            s.sequences = self.sequences.clone();
        });
        self.live.set_totals(self.stats());
    }

    fn assign(&self, consumer: &BaseConsumer) -> Result<(), TaskFailure> {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &self.current {
            tpl.add_partition_offset(&self.io.topic, *p, Offset::Offset(*o))
                .map_err(|e| fail!("cannot assign partition {p}: {e}"))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| fail!("cannot assign the task's partitions: {e}"))
    }

    /// Reads until every sequence is published or a stop is asked for.
    pub fn run(mut self) -> (Result<Outcome, TaskFailure>, RowStats) {
        let result = self.read();
        (result, self.stats())
    }

    fn read(&mut self) -> Result<Outcome, TaskFailure> {
        let consumer = self.consumer.take().expect("read runs once");
        self.assign(&consumer)?;
        println!(
            "reading topic [{}] from offsets {:?}; sequences {:?}",
            self.io.topic,
            self.current,
            self.sequences.all()
        );
        self.status = Status::Reading;
        self.publish_snapshot();
        let poll = Duration::from_millis(self.io.poll_timeout_ms.clamp(1, 1000));
        let mut records = RecordReader::new(self.spec.input_format.clone());
        let mut last_snapshot = Instant::now();
        let mut since_check = 0u32;
        loop {
            // Controls first: a pause must not wait behind a stream of messages.
            loop {
                let waiting = self.status == Status::Paused;
                let control = if waiting {
                    match self.controls.recv_timeout(Duration::from_millis(100)) {
                        Ok(c) => c,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => return Ok(Outcome::Stopped),
                    }
                } else {
                    match self.controls.try_recv() {
                        Ok(c) => c,
                        Err(_) => break,
                    }
                };
                if self.control(control)? {
                    return Ok(Outcome::Stopped);
                }
            }
            // The clock is read every 256 messages only: at several hundred thousand messages a
            // second, reading it for each one costs a few percent.
            if since_check >= 4096
                || (since_check.is_multiple_of(256) && last_snapshot.elapsed() >= SNAPSHOT_EVERY)
            {
                since_check = 0;
                if let Some(done) = self.publish_ready()? {
                    return Ok(done);
                }
                if let Some(why) = self.checkpoint_due() {
                    self.ask_for_checkpoint(&why)?;
                }
                self.publish_snapshot();
                last_snapshot = Instant::now();
            }
            match consumer.poll(poll) {
                None => {
                    if self.outage.is_some() {
                        self.probe_brokers(&consumer)?;
                    } else {
                        self.catch_up_positions(&consumer);
                    }
                    since_check = u32::MAX;
                }
                Some(Err(e)) if is_transient(&e) => self.broker_trouble(&e)?,
                Some(Err(e)) => return Err(describe(&e, &self.io.topic).into()),
                Some(Ok(m)) => {
                    self.outage_over();
                    since_check += 1;
                    let (p, o) = (m.partition(), m.offset());
                    if self.current.get(&p).is_some_and(|c| o < *c) {
                        continue;
                    }
                    let Some(index) = self.sequences.route(p, o) else {
                        // Past the end of the last sequence: this partition is done.
                        let end = self.sequences.last().end[&p];
                        self.current.insert(p, end);
                        continue;
                    };
                    self.current.insert(p, o + 1);
                    self.first_message
                        .get_or_insert_with(|| (Instant::now(), thread_cpu_time()));
                    self.messages += 1;
                    let seq_id = self.sequences.all()[index].id;
                    self.add(seq_id, m.payload(), &mut records)?;
                }
            }
        }
    }

    /// Applies one control message; `true` means stop.
    fn control(&mut self, control: Control) -> Result<bool, TaskFailure> {
        match control {
            Control::Pause(reply) => {
                if matches!(self.status, Status::Reading | Status::Paused) {
                    self.status = Status::Paused;
                    self.publish_snapshot();
                    reply.send(self.current.clone()).ok();
                }
            }
            Control::Resume(reply) => {
                if self.status == Status::Paused {
                    self.status = Status::Reading;
                    self.publish_snapshot();
                }
                reply.send(()).ok();
            }
            Control::SetEndOffsets { end, finish, reply } => {
                if self.status != Status::Paused {
                    reply
                        .send(Err(
                            "Task must be paused before changing the end offsets".into()
                        ))
                        .ok();
                    return Ok(false);
                }
                match self.sequences.set_end_offsets(&end, finish, &self.current) {
                    Ok(SetEnd::Duplicate) => {
                        reply.send(Ok(end)).ok();
                    }
                    Ok(SetEnd::Set(end)) => {
                        self.sequences.save(&self.sequences_file)?;
                        if !finish {
                            self.sequence_started = Instant::now();
                        }
                        println!(
                            "end offsets set to {end:?} ({})",
                            if finish { "final" } else { "checkpoint" }
                        );
                        reply.send(Ok(end)).ok();
                    }
                    Err(e) => {
                        reply.send(Err(e)).ok();
                        return Ok(false);
                    }
                }
                // Druid resumes the task once its end offsets are set.
                self.status = Status::Reading;
                self.publish_snapshot();
            }
            Control::Stop => {
                println!("stop requested: ending without publishing");
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether the open sequence should be checkpointed now (see `handoff`), and why.
    fn checkpoint_due(&self) -> Option<String> {
        let open = self.sequences.last();
        if self.status != Status::Reading
            || self.sequences.is_finished()
            || self.checkpoint_asked == Some(open.id)
        {
            return None;
        }
        let rows = |b: &RowBuilder| b.stats.processed + b.stats.processed_with_error;
        let held = Held {
            rows_in_open: self.builders.get(&open.id).map_or(0, rows),
            rows_total: self.builders.values().map(rows).sum(),
            open_for: self.sequence_started.elapsed(),
        };
        checkpoint_reason(
            held,
            Limits {
                max_rows_per_segment: self.spec.tuning.max_rows_per_segment,
                max_total_rows: self.spec.tuning.max_total_rows,
                intermediate_handoff_period: self.io.intermediate_handoff_period,
            },
        )
    }

    /// Pauses and asks the supervisor (through the overlord) to checkpoint the open sequence; the
    /// supervisor pauses every replica, sets the same end offsets on all of them with
    /// `finish=false`, which resumes them.
    fn ask_for_checkpoint(&mut self, why: &str) -> Result<(), TaskFailure> {
        let open = self.sequences.last().clone();
        self.checkpoint_asked = Some(open.id);
        self.status = Status::Paused;
        self.publish_snapshot();
        println!(
            "sequence {} {why}: paused, asking supervisor [{}] for a checkpoint",
            open.id, self.io.supervisor_id
        );
        let start = json!({"type": "kafka", "partitions": sequence_numbers("start", &self.io.topic, &open.start)});
        let action = json!({
            "type": "checkPointDataSourceMetadata",
            "supervisorId": self.io.supervisor_id,
            "taskGroupId": self.io.task_group_id,
            "checkpointMetadata": start,
            // Older overlords read these.
            "previousCheckPoint": start,
            "currentCheckPoint": {"type": "kafka", "partitions": sequence_numbers("start", &self.io.topic, &self.current)},
            "sequenceName": "dummy",
        });
        let result = self
            .publisher
            .rt
            .block_on(self.publisher.overlord.submit(action))?;
        if result != Value::Bool(true) {
            return Err(fail!(
                "Checkpoint request with sequences [{:?}] failed, dying",
                self.sequences.all()
            ));
        }
        Ok(())
    }

    /// A transient consumer error: an outage begins, or goes on (and may have lasted too long).
    fn broker_trouble(&mut self, e: &KafkaError) -> Result<(), TaskFailure> {
        let now = Instant::now();
        let error = e.to_string();
        match &mut self.outage {
            None => {
                let (outage, line) = Outage::begin(now, &error, self.io.broker_outage_timeout);
                println!("{line}");
                self.outage = Some((outage, error));
                self.outage_probed = now;
                Ok(())
            }
            Some((outage, last)) => {
                let verdict = outage.check(now, Some(&error));
                *last = error;
                self.act_on(verdict)
            }
        }
    }

    /// During an outage, an empty poll says nothing about the brokers (an idle topic polls
    /// empty too): once a second, ask the leader of a partition for its offsets. An answer ends
    /// the outage.
    fn probe_brokers(&mut self, consumer: &BaseConsumer) -> Result<(), TaskFailure> {
        let now = Instant::now();
        if now.duration_since(self.outage_probed) < Duration::from_secs(1) {
            let verdict = match &mut self.outage {
                Some((outage, last)) => outage.check(now, Some(last.as_str())),
                None => return Ok(()),
            };
            return self.act_on(verdict);
        }
        self.outage_probed = now;
        let Some(&partition) = self.current.keys().next() else {
            return Ok(());
        };
        match consumer.fetch_watermarks(&self.io.topic, partition, Duration::from_secs(1)) {
            Ok(_) => {
                self.outage_over();
                Ok(())
            }
            Err(e) => self.broker_trouble(&e),
        }
    }

    /// The brokers answer again: the outage, if there was one, is over (and the log says so).
    fn outage_over(&mut self) {
        if let Some((outage, _)) = self.outage.take() {
            println!("{}", outage.end(Instant::now()));
        }
    }

    fn act_on(&self, verdict: Verdict) -> Result<(), TaskFailure> {
        match verdict {
            Verdict::Wait(None) => Ok(()),
            Verdict::Wait(Some(line)) => {
                println!("{line}");
                Ok(())
            }
            Verdict::Fail(reason) => Err(reason.into()),
        }
    }

    /// A partition with gaps (transaction markers) may never deliver the message just before its
    /// end offset; the consumer's position says how far it really is.
    fn catch_up_positions(&mut self, consumer: &BaseConsumer) {
        let Ok(positions) = consumer.position() else {
            return;
        };
        let last_end = self.sequences.last().end.clone();
        for e in positions.elements() {
            if let Offset::Offset(pos) = e.offset() {
                let p = e.partition();
                if let (Some(c), Some(end)) = (self.current.get(&p).copied(), last_end.get(&p)) {
                    if pos > c {
                        self.current.insert(p, pos.min(*end));
                    }
                }
            }
        }
    }

    fn add(
        &mut self,
        seq_id: u32,
        payload: Option<&[u8]>,
        records: &mut RecordReader,
    ) -> Result<(), TaskFailure> {
        if !self.builders.contains_key(&seq_id) {
            let dir = self
                .work_dir
                .join(format!("sequence-{seq_id}"))
                .join("spill");
            std::fs::create_dir_all(&dir)
                .map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
            let b = RowBuilder::new(&self.spec, &dir)?;
            self.builders.insert(seq_id, b);
        }
        let builder = self.builders.get_mut(&seq_id).expect("inserted above");
        let unparseable_before = builder.stats.unparseable;
        let errors_before = builder.stats.unparseable + builder.stats.processed_with_error;
        let problem = match payload.map(std::str::from_utf8) {
            None => {
                builder.stats.thrown_away += 1;
                None
            }
            Some(Err(_)) => {
                builder.unparseable();
                Some(RowError::from("the message is not valid UTF-8"))
            }
            Some(Ok(text)) => {
                let mut record = Record::new(builder.fields());
                match records.read(text, builder.fields(), &mut record) {
                    Err(e) => {
                        builder.unparseable();
                        Some(e)
                    }
                    Ok(false) => None,
                    Ok(true) => builder
                        .add(&mut record)
                        .map_err(|e| fail!("cannot spill rows to disk: {e}"))?
                        .err(),
                }
            }
        };
        let errors = builder.stats.unparseable + builder.stats.processed_with_error;
        if errors > errors_before {
            let why = problem.map_or_else(
                || "a field could not be read as its type".to_string(),
                |e| e.0,
            );
            if self.spec.tuning.log_parse_exceptions {
                println!("parse exception: {why}");
            }
            let error_type = if builder.stats.unparseable > unparseable_before {
                ErrorType::Unparseable
            } else {
                ErrorType::ProcessedWithError
            };
            let input = payload.map(String::from_utf8_lossy).unwrap_or_default();
            self.live.push_error(parse_exception_report(
                &input,
                error_type,
                &why,
                chrono::Utc::now().timestamp_millis(),
            ));
            let stats = self.stats();
            if stats.unparseable + stats.processed_with_error
                > self.spec.tuning.max_parse_exceptions
            {
                return Err(fail!(
                    "Max parse exceptions[{}] exceeded",
                    self.spec.tuning.max_parse_exceptions
                ));
            }
        }
        Ok(())
    }

    /// Publishes every closed sequence that has been read to its end, in order; when the last
    /// one is done, the task is.
    fn publish_ready(&mut self) -> Result<Option<Outcome>, TaskFailure> {
        for index in self.sequences.ready_to_publish(&self.current) {
            let last = self.sequences.is_finished() && index + 1 == self.sequences.all().len();
            if last {
                self.status = Status::Publishing;
                self.publish_snapshot();
            }
            let seq = self.sequences.all()[index].clone();
            if let Some((first, cpu)) = self.first_message {
                println!(
                    "sequence {} read to its end: {} message(s) in {} ms since the first message, \
                     {} ms of CPU on the reading thread",
                    seq.id,
                    self.messages,
                    first.elapsed().as_millis(),
                    thread_cpu_time().saturating_sub(cpu).as_millis()
                );
            }
            let builder = self.builders.remove(&seq.id);
            if let Some(b) = &builder {
                add_stats(&mut self.stats_done, &b.stats);
            }
            let dir = self.work_dir.join(format!("sequence-{}", seq.id));
            let (segments, output) = self
                .publisher
                .publish(&self.task, &self.spec, &self.io, &seq, builder, &dir)?;
            self.segments += segments;
            self.live.add_output(output);
            std::fs::remove_dir_all(&dir).ok();
            self.sequences.mark_published(index);
            self.sequences.save(&self.sequences_file)?;
        }
        if self.sequences.is_finished() && self.sequences.all().iter().all(|s| s.published) {
            return Ok(Some(Outcome::Published {
                segments: self.segments,
            }));
        }
        Ok(None)
    }
}

fn describe(e: &KafkaError, topic: &str) -> String {
    let text = e.to_string();
    if text.contains("OffsetOutOfRange")
        || text.contains("out of range")
        || text.contains("AutoOffsetReset")
    {
        format!(
            "an offset of topic [{topic}] is out of range (the data is gone from Kafka or the \
             offsets were never there): {text}; reset the supervisor or its offsets"
        )
    } else {
        format!("reading topic [{topic}] failed: {text}")
    }
}
