//! Changing which segments are used (Druid's data-management routes, retention rules) and
//! deleting the rows of unused ones (the `kill` task). Every write is fenced: a deposed leader
//! changes nothing. A segment is used or not; nothing here touches the files.

use chrono::{DateTime, Utc};
use drover_core::interval::Interval;
use drover_core::segment::DataSegment;
use drover_core::time::{now_iso, to_iso};
use sqlx::Row;

use crate::error::MetadataError;
use crate::sql::MetadataStore;

/// Ids per statement: far below every backend's limit on bound parameters.
const IDS_PER_STATEMENT: usize = 500;

/// Which segments of a data source a change or a lookup applies to.
#[derive(Debug, Clone, Copy)]
pub enum SegmentFilter<'a> {
    /// Wholly inside the interval (start inclusive, end exclusive, as Druid), of these versions
    /// when given.
    Interval {
        interval: &'a Interval,
        versions: Option<&'a [String]>,
    },
    Ids(&'a [String]),
    All,
}

/// What `mark_segments` makes segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkAs {
    Used,
    Unused,
}

/// Used segments, or unused ones (those marked unused before a time, when given: a kill leaves
/// recently dropped segments a grace period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Used,
    Unused {
        marked_before: Option<DateTime<Utc>>,
    },
}

impl Usage {
    fn used(self) -> bool {
        self == Usage::Used
    }

    /// ` AND used_status_last_updated <= ?` when it applies; bind `marked_before_bind` after.
    fn clause(self) -> &'static str {
        match self {
            Usage::Unused {
                marked_before: Some(_),
            } => " AND used_status_last_updated <= ?",
            _ => "",
        }
    }

    fn marked_before(self) -> Option<String> {
        match self {
            Usage::Unused {
                marked_before: Some(t),
            } => Some(to_iso(t)),
            _ => None,
        }
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl MetadataStore {
    /// The segments of `data_source` in `usage` that `filter` selects, oldest first, at most
    /// `limit`.
    pub async fn segments_where(
        &self,
        data_source: &str,
        usage: Usage,
        filter: SegmentFilter<'_>,
        limit: Option<u64>,
    ) -> Result<Vec<DataSegment>, MetadataError> {
        let used = usage.used();
        let mut out = Vec::new();
        if let SegmentFilter::Ids(ids) = filter {
            for chunk in ids.chunks(IDS_PER_STATEMENT) {
                let q = self.backend.sql(&format!(
                    "SELECT payload FROM druid_segments WHERE dataSource = ? AND used = ?{} AND id IN ({}) ORDER BY start, id",
                    usage.clause(),
                    placeholders(chunk.len())
                ));
                let mut query = sqlx::query(&q).bind(data_source).bind(used);
                if let Some(t) = usage.marked_before() {
                    query = query.bind(t);
                }
                for id in chunk {
                    query = query.bind(id.as_str());
                }
                out.extend(decode(query.fetch_all(&self.pool).await?)?);
            }
            if let Some(limit) = limit {
                out.truncate(limit as usize);
            }
            return Ok(out);
        }
        let end = self.backend.quote("end");
        let mut q = format!(
            "SELECT payload FROM druid_segments WHERE dataSource = ? AND used = ?{}",
            usage.clause()
        );
        let mut versions: &[String] = &[];
        if let SegmentFilter::Interval {
            versions: Some(v), ..
        } = filter
        {
            versions = v;
        }
        if let SegmentFilter::Interval { .. } = filter {
            // ISO strings of one format compare as instants.
            q.push_str(&format!(" AND start >= ? AND {end} <= ?"));
            if !versions.is_empty() {
                q.push_str(&format!(
                    " AND version IN ({})",
                    placeholders(versions.len())
                ));
            }
        }
        q.push_str(" ORDER BY start, id");
        if let Some(limit) = limit {
            q.push_str(&format!(" LIMIT {limit}"));
        }
        let q = self.backend.sql(&q);
        let mut query = sqlx::query(&q).bind(data_source).bind(used);
        if let Some(t) = usage.marked_before() {
            query = query.bind(t);
        }
        if let SegmentFilter::Interval { interval, .. } = filter {
            query = query
                .bind(to_iso(interval.start))
                .bind(to_iso(interval.end));
            for v in versions {
                query = query.bind(v.as_str());
            }
        }
        out.extend(decode(query.fetch_all(&self.pool).await?)?);
        Ok(out)
    }

    /// Marks those of `ids` (of `data_source`) that are not so already `to`; how many changed.
    pub async fn mark_segments(
        &self,
        data_source: &str,
        ids: &[String],
        to: MarkAs,
    ) -> Result<u64, MetadataError> {
        let used = to == MarkAs::Used;
        let now = now_iso();
        let mut changed = 0;
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let q = self.backend.sql(&format!(
                "UPDATE druid_segments SET used = ?, used_status_last_updated = ? \
                 WHERE dataSource = ? AND used = ? AND id IN ({}){}",
                placeholders(chunk.len()),
                self.fence_clause()
            ));
            let mut query = sqlx::query(&q)
                .bind(used)
                .bind(now.clone())
                .bind(data_source)
                .bind(!used);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            changed += self
                .with_fence(query)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        if changed == 0 && !ids.is_empty() {
            // Nothing to change, or a stale epoch: the fence says which.
            self.check_fence().await?;
        }
        Ok(changed)
    }

    /// Deletes the rows of those of `ids` that are unused; one used meanwhile stays. Returns the
    /// ids deleted, so that only their files are removed.
    pub async fn delete_unused_segments(
        &self,
        data_source: &str,
        ids: &[String],
    ) -> Result<Vec<String>, MetadataError> {
        let mut deleted = Vec::new();
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let mut tx = self.pool.begin().await?;
            // Which of them are unused now; the delete below repeats the condition, so a
            // segment marked used in between is neither deleted nor reported.
            let select = self.backend.sql(&format!(
                "SELECT id FROM druid_segments WHERE dataSource = ? AND used = ? AND id IN ({})",
                placeholders(chunk.len())
            ));
            let mut query = sqlx::query(&select).bind(data_source).bind(false);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            let unused: Vec<String> = query
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?;
            if unused.is_empty() {
                tx.rollback().await?;
                continue;
            }
            let delete = self.backend.sql(&format!(
                "DELETE FROM druid_segments WHERE dataSource = ? AND used = ? AND id IN ({}){}",
                placeholders(unused.len()),
                self.fence_clause()
            ));
            let mut query = sqlx::query(&delete).bind(data_source).bind(false);
            for id in &unused {
                query = query.bind(id.as_str());
            }
            let n = self
                .with_fence(query)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n as usize != unused.len() {
                tx.rollback().await?;
                self.check_fence().await?;
                return Err(MetadataError::corrupt(format!(
                    "deleting {} unused segments of [{data_source}] deleted {n}",
                    unused.len()
                )));
            }
            tx.commit().await?;
            deleted.extend(unused);
        }
        Ok(deleted)
    }
}

/// The segments of rows selecting `payload`.
pub(crate) fn decode(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<DataSegment>, MetadataError> {
    rows.iter()
        .map(|r| {
            let payload: Vec<u8> = r.try_get("payload")?;
            serde_json::from_slice(&payload)
                .map_err(|e| MetadataError::corrupt(format!("segment payload: {e}")))
        })
        .collect()
}

impl MetadataStore {
    /// Data sources with unused segments marked unused before `marked_before`, with the span of
    /// those segments: what an automatic kill may delete.
    pub async fn unused_spans(
        &self,
        marked_before: DateTime<Utc>,
    ) -> Result<Vec<(String, Interval)>, MetadataError> {
        let end = self.backend.quote("end");
        // PostgreSQL folds unquoted names to lower case: alias them.
        let q = self.backend.sql(&format!(
            "SELECT dataSource AS data_source, MIN(start) AS first_start, MAX({end}) AS last_end \
             FROM druid_segments WHERE used = ? AND used_status_last_updated <= ? \
             GROUP BY dataSource ORDER BY dataSource"
        ));
        let rows = sqlx::query(&q)
            .bind(false)
            .bind(to_iso(marked_before))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let ds: String = r.try_get("data_source")?;
            let start: String = r.try_get("first_start")?;
            let end: String = r.try_get("last_end")?;
            let parse = |t: &str| {
                drover_core::time::parse_iso(t)
                    .ok_or_else(|| MetadataError::corrupt(format!("segment time [{t}] of [{ds}]")))
            };
            if let Ok(span) = Interval::new(parse(&start)?, parse(&end)?) {
                out.push((ds, span));
            }
        }
        Ok(out)
    }
}
