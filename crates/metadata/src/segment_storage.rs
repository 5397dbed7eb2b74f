//! `druid_segments`: published segments. A publish inserts its segments and marks the segments
//! it overwrites unused in one transaction: readers see all of it or none of it.

use drover_core::interval::Interval;
use drover_core::segment::DataSegment;
use drover_core::time::now_iso;
use sqlx::Row;

use crate::error::MetadataError;
use crate::sql::MetadataStore;

impl MetadataStore {
    /// Inserts `segments` as used and marks `overwritten` (segment ids) unused, atomically. A
    /// fenced store writes nothing once its epoch is stale.
    pub async fn publish_segments(
        &self,
        segments: &[DataSegment],
        overwritten: &[String],
    ) -> Result<(), MetadataError> {
        let end = self.backend.quote("end");
        let source = self.fence_source();
        let now = now_iso();
        let mut tx = self.pool.begin().await?;
        let insert = self.backend.sql(&format!(
            "INSERT INTO druid_segments (id, dataSource, created_date, start, {end}, partitioned, version, used, payload, used_status_last_updated) \
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?{source}"
        ));
        for segment in segments {
            let mut segment = segment.clone();
            segment.identifier = segment.id();
            let mut q = sqlx::query(&insert)
                .bind(segment.identifier.clone())
                .bind(segment.data_source.clone())
                .bind(now.clone())
                .bind(drover_core::time::to_iso(segment.interval.start))
                .bind(drover_core::time::to_iso(segment.interval.end))
                .bind(segment.shard_spec.get("type").and_then(|t| t.as_str()) != Some("none"))
                .bind(segment.version.clone())
                .bind(true)
                .bind(serde_json::to_vec(&segment).expect("segments serialize"))
                .bind(now.clone());
            q = self.with_fence(q);
            if q.execute(&mut *tx).await?.rows_affected() == 0 {
                tx.rollback().await?;
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
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Used segments of a data source, overlapping `interval` when given, oldest first.
    pub async fn used_segments(
        &self,
        data_source: &str,
        interval: Option<&Interval>,
    ) -> Result<Vec<DataSegment>, MetadataError> {
        let end = self.backend.quote("end");
        let mut q =
            "SELECT payload FROM druid_segments WHERE dataSource = ? AND used = ?".to_string();
        if interval.is_some() {
            // ISO strings of one format compare as instants.
            q.push_str(&format!(" AND start < ? AND {end} > ?"));
        }
        q.push_str(" ORDER BY start, id");
        let q = self.backend.sql(&q);
        let mut query = sqlx::query(&q).bind(data_source).bind(true);
        if let Some(i) = interval {
            query = query
                .bind(drover_core::time::to_iso(i.end))
                .bind(drover_core::time::to_iso(i.start));
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let payload: Vec<u8> = r.try_get("payload")?;
                serde_json::from_slice(&payload)
                    .map_err(|e| MetadataError::corrupt(format!("segment payload: {e}")))
            })
            .collect()
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
