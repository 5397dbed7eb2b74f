//! Task actions run inside the queue's task, so lock checks and the publish that depends on them
//! happen with nothing else changing locks in between (Druid's `doInCriticalSection`).

use std::collections::BTreeSet;

use drover_core::interval::{parse_instant, Interval};
use drover_core::lock::LockType;
use drover_core::segment::{numbered_shard_spec, DataSegment};
use drover_core::stream_offsets::StreamOffsets;
use drover_core::TaskId;
use drover_metadata::{
    AppendedUnderReplace, OffsetCommit, PendingSegment, PublishOutcome, SegmentFilter, Usage,
};
use serde_json::{json, Value};

use super::{bounded, ActionOutcome, QueueError, TaskQueue};
use crate::actions::upgrade::{carry_into_newer, carry_into_replace, FinerReplace};
use crate::actions::{allocate, allocation_bucket, overshadowed, TaskAction};
use crate::lockbox::LockResult;

/// A task acts on its own data source only.
fn same_data_source(asked: &str, own: &str) -> Result<(), QueueError> {
    if asked == own {
        Ok(())
    } else {
        Err(QueueError::Action(format!(
            "dataSource [{asked}] is not the task's data source [{own}]"
        )))
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("action results serialize")
}

impl TaskQueue {
    pub(super) async fn action(
        &mut self,
        id: TaskId,
        action: TaskAction,
    ) -> Result<ActionOutcome, QueueError> {
        let Some(q) = self.tasks.get(&id) else {
            return Err(QueueError::NotActive(id.to_string()));
        };
        let data_source = q.task.data_source.clone();
        let write_lock = q.task.write_lock;
        let done = |v: Value| Ok(ActionOutcome::Done(v));
        match action {
            TaskAction::LockAcquire {
                interval,
                lock_type,
                ..
            }
            | TaskAction::LockTryAcquire {
                interval,
                lock_type,
            } => {
                let waits = matches!(action, TaskAction::LockAcquire { .. });
                let lock_type = lock_type.unwrap_or_default();
                let req = self
                    .lock_request(&id, interval, lock_type)
                    .ok_or_else(|| QueueError::NotActive(id.to_string()))?;
                match self.lock(req).await? {
                    LockResult::Acquired { lock, .. } => done(to_json(&lock)),
                    LockResult::Revoked => Err(QueueError::Action(format!(
                        "The lock of task [{id}] on interval [{interval}] was revoked by a higher-priority task"
                    ))),
                    LockResult::Conflict if waits => Ok(ActionOutcome::LockBusy),
                    LockResult::Conflict => done(Value::Null),
                }
            }
            TaskAction::LockList {} => done(to_json(&self.lockbox.locks_of(&id))),
            TaskAction::LockRelease { interval } => {
                if let Some(lock) = self.lockbox.unlock(&id, &interval) {
                    bounded(self.store.delete_lock(&id, &lock)).await?;
                    self.forget_appended_under(&lock).await;
                    self.lock_released.notify_waiters();
                }
                done(Value::Null)
            }
            TaskAction::SegmentAllocate {
                data_source: ds,
                timestamp,
                preferred_segment_granularity,
                sequence_name,
                previous_segment_id,
                task_lock_type,
            } => {
                same_data_source(&ds, &data_source)?;
                let Some(t) = parse_instant(&timestamp) else {
                    return Err(QueueError::Action(format!(
                        "timestamp [{timestamp}] is not an ISO-8601 instant"
                    )));
                };
                // The chunk the row goes in: that of the used segments holding its time, if any.
                let preferred = preferred_segment_granularity.bucket(t);
                let around = bounded(self.store.used_segments(&ds, Some(&preferred))).await?;
                let bucket = allocation_bucket(t, preferred_segment_granularity, &around)
                    .map_err(|e| QueueError::Action(e.to_string()))?;
                let lock_type = task_lock_type.unwrap_or(write_lock);
                let previous = previous_segment_id.unwrap_or_default();
                self.allocate_segment(&id, &ds, bucket, lock_type, &sequence_name, &previous)
                    .await
            }
            TaskAction::SegmentTransactionalInsert {
                segments,
                segments_to_be_overwritten,
                start_metadata,
                end_metadata,
                input_segment_ids,
            } => {
                let commit = match (start_metadata, end_metadata) {
                    (None, None) => None,
                    (Some(start), Some(end)) => {
                        let read = |field: &str, v: &Value| {
                            StreamOffsets::from_metadata(v)
                                .map_err(|e| QueueError::Action(format!("[{field}]: {e}")))
                        };
                        Some(OffsetCommit {
                            key: data_source.to_string(),
                            start: read("startMetadata", &start)?,
                            end: read("endMetadata", &end)?,
                        })
                    }
                    _ => {
                        return Err(QueueError::Action(
                            "[startMetadata] and [endMetadata] go together".into(),
                        ))
                    }
                };
                let extra: Vec<String> = segments_to_be_overwritten
                    .unwrap_or_default()
                    .iter()
                    .map(DataSegment::id)
                    .collect();
                let input: BTreeSet<String> =
                    input_segment_ids.unwrap_or_default().into_iter().collect();
                self.publish(&id, &data_source, segments, extra, commit, &input)
                    .await
            }
            TaskAction::RetrieveUnusedSegments {
                data_source: ds,
                interval,
                versions,
                limit,
                max_used_status_last_updated_time,
            } => {
                same_data_source(&ds, &data_source)?;
                let filter = SegmentFilter::Interval {
                    interval: &interval,
                    versions: versions.as_deref(),
                };
                let usage = Usage::Unused {
                    marked_before: max_used_status_last_updated_time,
                };
                let unused = bounded(self.store.segments_where(&ds, usage, filter, limit)).await?;
                done(to_json(&unused))
            }
            TaskAction::SegmentNuke { segments } => {
                // The segments' intervals must be under the task's exclusive, live locks, as a
                // publish's are: nothing publishes there while their rows go.
                if let Some(s) = segments.iter().find(|s| s.data_source != data_source) {
                    return Err(QueueError::Action(format!(
                        "segment [{}] is not of the task's data source [{data_source}]",
                        s.id()
                    )));
                }
                let intervals: Vec<Interval> = segments.iter().map(|s| s.interval).collect();
                self.lockbox
                    .check_publishable(&id, &intervals)
                    .map_err(|e| QueueError::Action(e.to_string()))?;
                let ids: Vec<String> = segments.iter().map(DataSegment::id).collect();
                let deleted =
                    bounded(self.store.delete_unused_segments(&data_source, &ids)).await?;
                let files_in_use = self
                    .files_still_in_use(&data_source, &segments, &deleted)
                    .await?;
                done(json!({"deleted": deleted, "filesInUse": files_in_use}))
            }
            TaskAction::MarkSegmentsAsUnused {
                data_source: ds,
                interval,
                versions,
            } => {
                same_data_source(&ds, &data_source)?;
                self.lockbox
                    .check_publishable(&id, &[interval])
                    .map_err(|e| QueueError::Action(e.to_string()))?;
                let filter = SegmentFilter::Interval {
                    interval: &interval,
                    versions: versions.as_deref(),
                };
                let ids: Vec<String> =
                    bounded(self.store.segments_where(&ds, Usage::Used, filter, None))
                        .await?
                        .iter()
                        .map(DataSegment::id)
                        .collect();
                let n = bounded(self.store.mark_segments(
                    &ds,
                    &ids,
                    drover_metadata::MarkAs::Unused,
                ))
                .await?;
                done(json!(n))
            }
            TaskAction::SegmentListUsed {
                data_source: ds,
                interval,
                intervals,
            } => {
                let wanted: Vec<Option<Interval>> = match (interval, intervals) {
                    (Some(i), _) => vec![Some(i)],
                    (None, Some(is)) if !is.is_empty() => is.into_iter().map(Some).collect(),
                    _ => vec![None],
                };
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                for i in wanted {
                    for s in bounded(self.store.used_segments(&ds, i.as_ref())).await? {
                        if seen.insert(s.id()) {
                            out.push(s);
                        }
                    }
                }
                done(to_json(&out))
            }
        }
    }

    /// `segmentAllocate`: the same (sequence, previous id, interval) always gets the same id;
    /// otherwise the bucket is locked and the next partition there is recorded as pending.
    /// `null` when the bucket is locked by someone else, as in Druid.
    async fn allocate_segment(
        &mut self,
        id: &TaskId,
        ds: &str,
        bucket: Interval,
        lock_type: LockType,
        sequence: &str,
        previous: &str,
    ) -> Result<ActionOutcome, QueueError> {
        // The lock comes first, even when the segment was allocated before (by a replica, or by
        // this sequence's earlier reader): whoever publishes it must hold a lock covering it.
        let lock = match self
            .lockbox
            .locks_of(id)
            .into_iter()
            .find(|l| l.interval.encloses(&bucket) && !l.revoked)
        {
            Some(l) => l,
            None => {
                let req = self
                    .lock_request(id, bucket, lock_type)
                    .ok_or_else(|| QueueError::NotActive(id.to_string()))?;
                match self.lock(req).await? {
                    LockResult::Acquired { lock, .. } => lock,
                    _ => return Ok(ActionOutcome::Done(Value::Null)),
                }
            }
        };
        if let Some(p) = bounded(
            self.store
                .find_pending_segment(ds, sequence, previous, &bucket),
        )
        .await?
        {
            return Ok(ActionOutcome::Done(to_json(&p)));
        }
        let used = bounded(self.store.used_segments(ds, Some(&bucket))).await?;
        let pending = bounded(self.store.pending_segments(ds, &bucket)).await?;
        let (version, partition) = allocate(&bucket, &used, &pending, &lock.version)
            .map_err(|e| QueueError::Action(e.to_string()))?;
        let segment = PendingSegment {
            data_source: ds.to_string(),
            interval: bucket,
            version,
            shard_spec: numbered_shard_spec(partition),
        };
        let inserted =
            bounded(
                self.store
                    .insert_pending_segment(&segment, sequence, previous, id.as_str()),
            )
            .await?;
        let segment = if inserted {
            segment
        } else {
            bounded(
                self.store
                    .find_pending_segment(ds, sequence, previous, &bucket),
            )
            .await?
            .ok_or_else(|| QueueError::Action("allocation raced and vanished".into()))?
        };
        Ok(ActionOutcome::Done(to_json(&segment)))
    }

    /// Whether the stored offsets are at or past `commit`'s end on every partition it names.
    async fn offsets_already_past(&self, commit: Option<&OffsetCommit>) -> bool {
        let Some(c) = commit else { return false };
        match bounded(self.store.stream_offsets(&c.key)).await {
            Ok(Some(stored)) => {
                stored.stream == c.end.stream
                    && c.end
                        .offsets
                        .iter()
                        .all(|(p, end)| stored.offsets.get(p).is_some_and(|s| s >= end))
            }
            _ => false,
        }
    }

    /// `segmentTransactionalInsert` (and Druid's append and replace forms): the task's locks
    /// must cover every segment, un-revoked and not SHARED. Then, in one transaction:
    /// - under EXCLUSIVE locks, the segments go in and what they overshadow goes out;
    /// - under a REPLACE lock, the same, plus the segments appended under that lock carried
    ///   into its version (see `actions::upgrade`);
    /// - under APPEND locks, the segments go in, each recorded for the REPLACE lock over it if
    ///   one is held, and carried into a newer version committed over it meanwhile.
    async fn publish(
        &mut self,
        id: &TaskId,
        data_source: &str,
        segments: Vec<DataSegment>,
        extra_overwritten: Vec<String>,
        commit: Option<OffsetCommit>,
        input: &BTreeSet<String>,
    ) -> Result<ActionOutcome, QueueError> {
        let failure = |msg: String| {
            Ok(ActionOutcome::Done(json!({
                "segments": [], "success": false, "errorMsg": msg
            })))
        };
        if let Some(s) = segments.iter().find(|s| s.data_source != data_source) {
            return Err(QueueError::Action(format!(
                "segment [{}] is not of the task's data source [{data_source}]",
                s.id()
            )));
        }
        let intervals: Vec<Interval> = segments.iter().map(|s| s.interval).collect();
        if let Err(refused) = self.lockbox.check_publishable(id, &intervals) {
            return failure(refused.to_string());
        }
        let mode = match self.publish_mode(id, &intervals) {
            Ok(mode) => mode,
            Err(why) => return failure(why),
        };
        let group_id = self
            .tasks
            .get(id)
            .map(|q| q.task.group_id.clone())
            .ok_or_else(|| QueueError::NotActive(id.to_string()))?;
        let mut overwritten: BTreeSet<String> = extra_overwritten.into_iter().collect();
        let mut distinct: Vec<Interval> = Vec::new();
        for i in &intervals {
            if !distinct.contains(i) {
                distinct.push(*i);
            }
        }
        let mut used: Vec<DataSegment> = Vec::new();
        for i in &distinct {
            used.extend(bounded(self.store.used_segments(data_source, Some(i))).await?);
        }
        let new_ids: BTreeSet<String> = segments.iter().map(DataSegment::id).collect();
        let mut to_insert = segments.clone();
        let mut appended_under_replace = Vec::new();
        // Overwriting and replacing publishes overshadow what is older in their intervals;
        // appends never do.
        if mode != LockType::Append {
            overwritten.extend(overshadowed(&segments, &used));
            overwritten.retain(|o| !new_ids.contains(o));
        }
        match mode {
            LockType::Append => {
                for s in &segments {
                    if let Some(r) =
                        self.lockbox
                            .replace_lock_covering(data_source, &s.interval, &group_id)
                    {
                        if r.version > s.version {
                            appended_under_replace.push(AppendedUnderReplace {
                                task_id: r.group_id.clone(),
                                segment_id: s.id(),
                                lock_version: r.version.clone(),
                            });
                        }
                    }
                }
                let mut pending = Vec::new();
                for i in &distinct {
                    pending.extend(bounded(self.store.pending_segments(data_source, i)).await?);
                }
                let carried = match carry_into_newer(&segments, &used, &pending) {
                    Ok(c) => c,
                    Err(e) => return failure(e.to_string()),
                };
                // The originals are overshadowed by their copies: only the copies stay used.
                overwritten.extend(overshadowed(&carried, &segments));
                to_insert.extend(carried);
            }
            LockType::Replace => {
                match self
                    .appended_into_replace(&group_id, data_source, &segments, input)
                    .await?
                {
                    Ok(carried) => to_insert.extend(carried),
                    Err(e) => return failure(e.to_string()),
                }
            }
            LockType::Exclusive | LockType::Shared => {}
        }
        let overwritten: Vec<String> = overwritten.into_iter().collect();
        let outcome = bounded(self.store.publish(
            &to_insert,
            &overwritten,
            &appended_under_replace,
            commit.as_ref(),
        ))
        .await;
        // Whether every segment of this publish was already there before it: looked at only
        // when the publish did not go through.
        let all_there_already = || {
            let already: BTreeSet<String> = used.iter().map(DataSegment::id).collect();
            new_ids.iter().all(|n| already.contains(n))
        };
        match outcome {
            // A replica that lost the race to publish the same sequence: its identical segments
            // are there, with their offsets, so it has succeeded too.
            Ok(PublishOutcome::OffsetsMismatch(_))
                if !new_ids.is_empty() && all_there_already() =>
            {
                Ok(ActionOutcome::Done(json!({
                    "segments": segments, "success": true, "errorMsg": null
                })))
            }
            // The same for a sequence without rows: no segments, and the stored offsets have
            // already moved past where it ends.
            Ok(PublishOutcome::OffsetsMismatch(_))
                if new_ids.is_empty() && self.offsets_already_past(commit.as_ref()).await =>
            {
                Ok(ActionOutcome::Done(json!({
                    "segments": [], "success": true, "errorMsg": null
                })))
            }
            Ok(PublishOutcome::OffsetsMismatch(why)) => {
                tracing::warn!(task = %id, reason = %why, "publish refused: offsets do not match");
                failure(why)
            }
            Ok(PublishOutcome::Published) => {
                if let Some(q) = self.tasks.get(id) {
                    let bytes = segments.iter().map(|s| s.size).sum();
                    crate::metrics::segments_added(data_source, &q.task.task_type, bytes);
                }
                tracing::info!(task = %id, segments = segments.len(), carried = to_insert.len() - segments.len(), overwritten = overwritten.len(), "segments published");
                let published: Vec<DataSegment> = to_insert
                    .into_iter()
                    .map(|mut s| {
                        s.identifier = s.id();
                        s
                    })
                    .collect();
                Ok(ActionOutcome::Done(json!({
                    "segments": published, "success": true, "errorMsg": null
                })))
            }
            Err(e @ QueueError::Fenced(_)) => Err(e),
            Err(e) => {
                // A retried publish whose first attempt landed: every segment is there already.
                if all_there_already() {
                    return Ok(ActionOutcome::Done(json!({
                        "segments": segments, "success": true, "errorMsg": null
                    })));
                }
                failure(format!("publishing failed: {e}"))
            }
        }
    }
    /// How a publish over `intervals` goes in, from the task's locks there: APPEND, REPLACE, or
    /// EXCLUSIVE (overwriting). One publish is of one kind.
    fn publish_mode(&self, id: &TaskId, intervals: &[Interval]) -> Result<LockType, String> {
        let mut mode: Option<LockType> = None;
        for i in intervals {
            let kind = match self.lockbox.covering_lock(id, i).map(|l| l.lock_type) {
                Some(t @ (LockType::Append | LockType::Replace)) => t,
                _ => LockType::Exclusive,
            };
            match mode {
                Some(m) if m != kind => {
                    return Err(format!(
                        "one publish cannot mix segments under {m:?} and {kind:?} locks"
                    ))
                }
                _ => mode = Some(kind),
            }
        }
        Ok(mode.unwrap_or(LockType::Exclusive))
    }

    /// The segments appended under the REPLACE locks of `group_id` and not read by the task,
    /// carried into its version beside `replace`.
    async fn appended_into_replace(
        &self,
        group_id: &str,
        data_source: &str,
        replace: &[DataSegment],
        input: &BTreeSet<String>,
    ) -> Result<Result<Vec<DataSegment>, FinerReplace>, QueueError> {
        let records: Vec<AppendedUnderReplace> =
            bounded(self.store.appended_under_replace(group_id))
                .await?
                .into_iter()
                .filter(|r| !input.contains(&r.segment_id))
                .collect();
        if records.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let ids: Vec<String> = records.iter().map(|r| r.segment_id.clone()).collect();
        let mut found = bounded(self.store.segments_where(
            data_source,
            Usage::Used,
            SegmentFilter::Ids(&ids),
            None,
        ))
        .await?;
        found.extend(
            bounded(self.store.segments_where(
                data_source,
                Usage::Unused {
                    marked_before: None,
                },
                SegmentFilter::Ids(&ids),
                None,
            ))
            .await?,
        );
        let mut appended = Vec::new();
        for r in &records {
            match found.iter().find(|s| s.id() == r.segment_id) {
                Some(s) => appended.push((s.clone(), r.lock_version.clone())),
                None => {
                    tracing::warn!(segment = %r.segment_id, "a segment appended under a REPLACE lock is gone; not carried")
                }
            }
        }
        Ok(carry_into_replace(&appended, replace))
    }

    /// Of the segments whose rows a kill deleted, those whose file another row still points at
    /// (an appended segment and its copy in a replace's version share one): their files stay.
    async fn files_still_in_use(
        &self,
        data_source: &str,
        segments: &[DataSegment],
        deleted: &[String],
    ) -> Result<Vec<String>, QueueError> {
        let gone: Vec<&DataSegment> = segments
            .iter()
            .filter(|s| deleted.contains(&s.id()))
            .collect();
        let (Some(start), Some(end)) = (
            gone.iter().map(|s| s.interval.start).min(),
            gone.iter().map(|s| s.interval.end).max(),
        ) else {
            return Ok(Vec::new());
        };
        let span = Interval { start, end };
        let rows = bounded(self.store.all_segments_overlapping(data_source, &span)).await?;
        let in_use: BTreeSet<String> = rows.iter().map(|r| r.load_spec.to_string()).collect();
        Ok(gone
            .iter()
            .filter(|s| in_use.contains(&s.load_spec.to_string()))
            .map(|s| s.id())
            .collect())
    }
}
