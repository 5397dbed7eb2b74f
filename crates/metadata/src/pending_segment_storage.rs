//! `druid_pendingSegments`: segment ids handed out by `segmentAllocate` before they are
//! published. An allocation is keyed by the SHA-1 of (sequence name, previous segment id,
//! interval), so asking again with the same sequence — a retry, or a replica — gets the same id.

use drover_core::interval::Interval;
use drover_core::segment::{partition_num_of, segment_id};
use drover_core::time::{now_iso, to_iso};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use sqlx::Row;

use crate::error::MetadataError;
use crate::sql::MetadataStore;

/// Druid's `SegmentIdWithShardSpec`, the JSON of a pending segment and `segmentAllocate`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingSegment {
    pub data_source: String,
    pub interval: Interval,
    pub version: String,
    pub shard_spec: serde_json::Value,
}

impl PendingSegment {
    pub fn partition_num(&self) -> u32 {
        partition_num_of(&self.shard_spec)
    }

    pub fn id(&self) -> String {
        segment_id(
            &self.data_source,
            &self.interval,
            &self.version,
            self.partition_num(),
        )
    }
}

/// The allocation key: upper-case hex SHA-1, as Druid stores it.
pub fn allocation_key(sequence_name: &str, previous_id: &str, interval: &Interval) -> String {
    let mut h = Sha1::new();
    for part in [
        sequence_name,
        previous_id,
        &to_iso(interval.start),
        &to_iso(interval.end),
    ] {
        h.update(part.as_bytes());
        h.update([0xff]);
    }
    h.finalize().iter().map(|b| format!("{b:02X}")).collect()
}

impl MetadataStore {
    /// The segment allocated before for this sequence, previous id and interval.
    pub async fn find_pending_segment(
        &self,
        data_source: &str,
        sequence_name: &str,
        previous_id: &str,
        interval: &Interval,
    ) -> Result<Option<PendingSegment>, MetadataError> {
        let q = self.backend.sql(
            "SELECT payload FROM druid_pendingSegments WHERE dataSource = ? AND sequence_name_prev_id_sha1 = ?",
        );
        let row = sqlx::query(&q)
            .bind(data_source)
            .bind(allocation_key(sequence_name, previous_id, interval))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode(&r)).transpose()
    }

    /// Pending segments of the data source overlapping `interval`.
    pub async fn pending_segments(
        &self,
        data_source: &str,
        interval: &Interval,
    ) -> Result<Vec<PendingSegment>, MetadataError> {
        let end = self.backend.quote("end");
        let q = self.backend.sql(&format!(
            "SELECT payload FROM druid_pendingSegments WHERE dataSource = ? AND start < ? AND {end} > ?"
        ));
        let rows = sqlx::query(&q)
            .bind(data_source)
            .bind(to_iso(interval.end))
            .bind(to_iso(interval.start))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode).collect()
    }

    /// Records an allocation. `Ok(false)` when another allocation took the key first (the caller
    /// reads that one back). Fenced like every leader write.
    pub async fn insert_pending_segment(
        &self,
        segment: &PendingSegment,
        sequence_name: &str,
        previous_id: &str,
        task_allocator_id: &str,
    ) -> Result<bool, MetadataError> {
        let end = self.backend.quote("end");
        let q = self.backend.sql(&format!(
            "INSERT INTO druid_pendingSegments (id, dataSource, created_date, start, {end}, sequence_name, \
             sequence_prev_id, sequence_name_prev_id_sha1, payload, task_allocator_id) \
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?{}",
            self.fence_source()
        ));
        let query = sqlx::query(&q)
            .bind(segment.id())
            .bind(segment.data_source.clone())
            .bind(now_iso())
            .bind(to_iso(segment.interval.start))
            .bind(to_iso(segment.interval.end))
            .bind(sequence_name)
            .bind(previous_id)
            .bind(allocation_key(
                sequence_name,
                previous_id,
                &segment.interval,
            ))
            .bind(serde_json::to_vec(segment).expect("pending segments serialize"))
            .bind(task_allocator_id);
        match self.with_fence(query).execute(&self.pool).await {
            Ok(r) if r.rows_affected() == 0 => {
                self.check_fence().await?;
                Err(MetadataError::corrupt(format!(
                    "pending segment [{}] was not inserted",
                    segment.id()
                )))
            }
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets the allocations of `data_source` whose sequence names start with `prefix`, so a
    /// stream re-read after a reset allocates new segments instead of finding the published
    /// ones. Fenced. Returns how many went.
    pub async fn delete_pending_segments(
        &self,
        data_source: &str,
        prefix: &str,
    ) -> Result<u64, MetadataError> {
        let q = self.backend.sql(&format!(
            "DELETE FROM druid_pendingSegments WHERE dataSource = ? AND sequence_name LIKE ?{}",
            self.fence_clause()
        ));
        let query = sqlx::query(&q).bind(data_source).bind(format!("{prefix}%"));
        let deleted = self
            .with_fence(query)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted == 0 {
            self.check_fence().await?;
        }
        Ok(deleted)
    }
}

fn decode(row: &sqlx::any::AnyRow) -> Result<PendingSegment, MetadataError> {
    let payload: Vec<u8> = row.try_get("payload")?;
    serde_json::from_slice(&payload)
        .map_err(|e| MetadataError::corrupt(format!("pending segment payload: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_key_depends_on_every_part() {
        let i = Interval::parse("2024-01-01/2024-01-02").unwrap();
        let j = Interval::parse("2024-01-02/2024-01-03").unwrap();
        let k = allocation_key("seq", "", &i);
        assert_eq!(k.len(), 40);
        assert_eq!(k, k.to_uppercase());
        assert_eq!(k, allocation_key("seq", "", &i));
        assert_ne!(k, allocation_key("seq", "prev", &i));
        assert_ne!(k, allocation_key("seq2", "", &i));
        assert_ne!(k, allocation_key("seq", "", &j));
    }
}
