//! `druid_segments`: published segments. A publish inserts its segments and marks the segments
//! it overwrites unused in one transaction: readers see all of it or none of it. A streaming
//! publish also moves its stream's offsets in `druid_dataSource` in that same transaction, by
//! compare-and-swap on their SHA-1 (see docs/ingestion.md): rows and offsets land together or not at all.

use drover_core::interval::Interval;
use drover_core::segment::DataSegment;
use drover_core::stream_offsets::{decide_commit, CommitDecision, StreamOffsets};
use drover_core::time::now_iso;
use sha1::{Digest, Sha1};
use sqlx::Row;

use crate::error::MetadataError;
use crate::sql::MetadataStore;
use crate::upgrade_storage::AppendedUnderReplace;

/// The offsets a streaming publish started from and ended at, kept under `key` (the data source,
/// or the supervisor id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommit {
    pub key: String,
    pub start: StreamOffsets,
    pub end: StreamOffsets,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    Published,
    /// The stored offsets do not match the publish's start: nothing was written.
    OffsetsMismatch(String),
}

/// Compare-and-swap rounds lost to a concurrent writer before giving up.
const COMMIT_ATTEMPTS: usize = 5;

fn sha1_upper(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

impl MetadataStore {
    /// Inserts `segments` as used and marks `overwritten` (segment ids) unused, atomically. A
    /// fenced store writes nothing once its epoch is stale.
    pub async fn publish_segments(
        &self,
        segments: &[DataSegment],
        overwritten: &[String],
    ) -> Result<(), MetadataError> {
        self.publish(segments, overwritten, &[], None)
            .await
            .map(|_| ())
    }

    /// `publish_segments` that also moves the stream offsets of `commit`, in the same
    /// transaction, when they start where the stored ones are.
    pub async fn publish_segments_with_offsets(
        &self,
        segments: &[DataSegment],
        overwritten: &[String],
        commit: &OffsetCommit,
    ) -> Result<PublishOutcome, MetadataError> {
        self.publish(segments, overwritten, &[], Some(commit)).await
    }

    /// The whole of a publish in one transaction: `segments` in, `overwritten` unused,
    /// `appended` recorded for the REPLACE locks they were appended under, and the stream
    /// offsets moved when there is a `commit` (which must start where the stored ones are).
    pub async fn publish(
        &self,
        segments: &[DataSegment],
        overwritten: &[String],
        appended: &[AppendedUnderReplace],
        commit: Option<&OffsetCommit>,
    ) -> Result<PublishOutcome, MetadataError> {
        let Some(commit) = commit else {
            let mut tx = self.pool.begin().await?;
            self.insert_segments(&mut tx, segments, overwritten).await?;
            self.insert_upgrade_records(&mut tx, appended).await?;
            tx.commit().await?;
            return Ok(PublishOutcome::Published);
        };
        for _ in 0..COMMIT_ATTEMPTS {
            let mut tx = self.pool.begin().await?;
            let stored = self.read_offsets(&mut tx, &commit.key).await?;
            let new =
                match decide_commit(stored.as_ref().map(|(o, _)| o), &commit.start, &commit.end) {
                    CommitDecision::Commit(new) => new,
                    CommitDecision::Mismatch(why) => {
                        tx.rollback().await?;
                        return Ok(PublishOutcome::OffsetsMismatch(why));
                    }
                };
            let old_sha1 = stored.map(|(_, sha1)| sha1);
            if !self
                .swap_offsets(&mut tx, &commit.key, old_sha1.as_deref(), &new)
                .await?
            {
                // Someone else moved them meanwhile (or our leadership ended): look again.
                tx.rollback().await?;
                self.check_fence().await?;
                continue;
            }
            self.insert_segments(&mut tx, segments, overwritten).await?;
            self.insert_upgrade_records(&mut tx, appended).await?;
            tx.commit().await?;
            return Ok(PublishOutcome::Published);
        }
        Err(MetadataError::corrupt(format!(
            "the offsets of [{}] kept changing during {COMMIT_ATTEMPTS} publish attempts",
            commit.key
        )))
    }

    /// The stored offsets under `key` (the data source or supervisor id).
    pub async fn stream_offsets(&self, key: &str) -> Result<Option<StreamOffsets>, MetadataError> {
        let mut conn = self.pool.acquire().await?;
        Ok(self.read_offsets(&mut conn, key).await?.map(|(o, _)| o))
    }

    /// Replaces the stored offsets unconditionally (`resetDataSourceMetadata`), or deletes them
    /// with `None`. Fenced.
    pub async fn reset_stream_offsets(
        &self,
        key: &str,
        offsets: Option<&StreamOffsets>,
    ) -> Result<(), MetadataError> {
        let mut tx = self.pool.begin().await?;
        let delete = self.backend.sql(&format!(
            "DELETE FROM druid_dataSource WHERE dataSource = ?{}",
            self.fence_clause()
        ));
        self.with_fence(sqlx::query(&delete).bind(key))
            .execute(&mut *tx)
            .await?;
        if let Some(o) = offsets {
            if !self.swap_offsets(&mut tx, key, None, o).await? {
                tx.rollback().await?;
                self.check_fence().await?;
                return Err(MetadataError::corrupt(format!(
                    "the offsets of [{key}] could not be reset"
                )));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn read_offsets(
        &self,
        conn: &mut sqlx::AnyConnection,
        key: &str,
    ) -> Result<Option<(StreamOffsets, String)>, MetadataError> {
        let q = self.backend.sql(
            "SELECT commit_metadata_payload, commit_metadata_sha1 FROM druid_dataSource WHERE dataSource = ?",
        );
        let Some(row) = sqlx::query(&q).bind(key).fetch_optional(conn).await? else {
            return Ok(None);
        };
        let payload: Vec<u8> = row.try_get("commit_metadata_payload")?;
        let sha1: String = row.try_get("commit_metadata_sha1")?;
        let value: serde_json::Value = serde_json::from_slice(&payload)
            .map_err(|e| MetadataError::corrupt(format!("commit metadata of [{key}]: {e}")))?;
        let offsets = StreamOffsets::from_metadata(&value)
            .map_err(|e| MetadataError::corrupt(format!("commit metadata of [{key}]: {e}")))?;
        Ok(Some((offsets, sha1)))
    }

    /// Writes `new` under `key` if the row's SHA-1 is still `old_sha1` (no row for `None`).
    /// `Ok(false)` when it was not: changed, or fenced.
    async fn swap_offsets(
        &self,
        tx: &mut Tx<'_>,
        key: &str,
        old_sha1: Option<&str>,
        new: &StreamOffsets,
    ) -> Result<bool, MetadataError> {
        let payload = serde_json::to_vec(&new.to_metadata()).expect("offsets serialize");
        let sha1 = sha1_upper(&payload);
        let result = match old_sha1 {
            None => {
                let q = self.backend.sql(&format!(
                    "INSERT INTO druid_dataSource (dataSource, created_date, commit_metadata_payload, commit_metadata_sha1) \
                     SELECT ?, ?, ?, ?{}",
                    self.fence_source()
                ));
                let q = sqlx::query(&q)
                    .bind(key)
                    .bind(now_iso())
                    .bind(payload)
                    .bind(sha1);
                // A row inserted meanwhile by someone else breaks the key: a lost race.
                match self.with_fence(q).execute(&mut **tx).await {
                    Ok(r) => r.rows_affected(),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => 0,
                    Err(e) => return Err(e.into()),
                }
            }
            Some(old) => {
                let q = self.backend.sql(&format!(
                    "UPDATE druid_dataSource SET commit_metadata_payload = ?, commit_metadata_sha1 = ? \
                     WHERE dataSource = ? AND commit_metadata_sha1 = ?{}",
                    self.fence_clause()
                ));
                let q = sqlx::query(&q).bind(payload).bind(sha1).bind(key).bind(old);
                self.with_fence(q).execute(&mut **tx).await?.rows_affected()
            }
        };
        Ok(result == 1)
    }

    async fn insert_segments(
        &self,
        tx: &mut Tx<'_>,
        segments: &[DataSegment],
        overwritten: &[String],
    ) -> Result<(), MetadataError> {
        let end = self.backend.quote("end");
        let source = self.fence_source();
        let now = now_iso();
        let insert = self.backend.sql(&format!(
            "INSERT INTO druid_segments (id, dataSource, created_date, start, {end}, partitioned, version, used, payload, used_status_last_updated) \
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?{source}"
        ));
        for segment in segments {
            let mut segment = segment.clone();
            segment.identifier = segment.id();
            let mut q = sqlx::query(&insert)
                .bind(segment.identifier.clone())
                .bind(segment.data_source.to_string())
                .bind(now.clone())
                .bind(drover_core::time::to_iso(segment.interval.start))
                .bind(drover_core::time::to_iso(segment.interval.end))
                .bind(segment.shard_spec.get("type").and_then(|t| t.as_str()) != Some("none"))
                .bind(segment.version.clone())
                .bind(true)
                .bind(serde_json::to_vec(&segment).expect("segments serialize"))
                .bind(now.clone());
            q = self.with_fence(q);
            if q.execute(&mut **tx).await?.rows_affected() == 0 {
                self.check_fence().await?;
                return Err(MetadataError::corrupt(format!(
                    "segment [{}] was not inserted",
                    segment.identifier
                )));
            }
        }
        let unuse = self.backend.sql(&format!(
            "UPDATE druid_segments SET used = ?, used_status_last_updated = ? WHERE id = ?{}",
            self.fence_clause()
        ));
        for id in overwritten {
            let mut q = sqlx::query(&unuse)
                .bind(false)
                .bind(now.clone())
                .bind(id.as_str());
            q = self.with_fence(q);
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Used segments of a data source, overlapping `interval` when given, oldest first.
    pub async fn used_segments(
        &self,
        data_source: &str,
        interval: Option<&Interval>,
    ) -> Result<Vec<DataSegment>, MetadataError> {
        self.segments_overlapping(data_source, Some(true), interval)
            .await
    }

    /// Every segment row of a data source overlapping `interval`, used or not: what may still
    /// point at a file (an appended segment carried into a replace's version shares its file).
    pub async fn all_segments_overlapping(
        &self,
        data_source: &str,
        interval: &Interval,
    ) -> Result<Vec<DataSegment>, MetadataError> {
        self.segments_overlapping(data_source, None, Some(interval))
            .await
    }

    async fn segments_overlapping(
        &self,
        data_source: &str,
        used: Option<bool>,
        interval: Option<&Interval>,
    ) -> Result<Vec<DataSegment>, MetadataError> {
        let end = self.backend.quote("end");
        let mut q = "SELECT payload FROM druid_segments WHERE dataSource = ?".to_string();
        if used.is_some() {
            q.push_str(" AND used = ?");
        }
        if interval.is_some() {
            // ISO strings of one format compare as instants.
            q.push_str(&format!(" AND start < ? AND {end} > ?"));
        }
        q.push_str(" ORDER BY start, id");
        let q = self.backend.sql(&q);
        let mut query = sqlx::query(&q).bind(data_source);
        if let Some(used) = used {
            query = query.bind(used);
        }
        if let Some(i) = interval {
            query = query
                .bind(drover_core::time::to_iso(i.end))
                .bind(drover_core::time::to_iso(i.start));
        }
        crate::segment_marking::decode(query.fetch_all(&self.pool).await?)
    }

    /// Data sources with at least one used segment.
    pub async fn data_sources(&self) -> Result<Vec<String>, MetadataError> {
        // PostgreSQL folds the unquoted column name to lower case: alias it.
        let q = self
            .backend
            .sql("SELECT DISTINCT dataSource AS data_source FROM druid_segments WHERE used = ? ORDER BY data_source");
        let rows = sqlx::query(&q).bind(true).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get("data_source")?)).collect()
    }
}
