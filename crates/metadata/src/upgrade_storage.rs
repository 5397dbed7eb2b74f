//! `druid_upgradeSegments`: segments appended while another task held a REPLACE lock over them,
//! with that lock's version. The row is written in the append's own publish transaction; when the
//! replacing task publishes, it carries each of these segments into its version (an id with the
//! replace's interval, version and a partition after its own), so that what was appended while
//! it ran is not overshadowed. The rows go when the replacing task ends.

use sqlx::Row;

use crate::error::MetadataError;
use crate::sql::MetadataStore;

/// One `druid_upgradeSegments` row. `task_id` is the replacing task's group id (its lock's
/// `groupId`, which a compaction's is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedUnderReplace {
    pub task_id: String,
    pub segment_id: String,
    pub lock_version: String,
}

impl MetadataStore {
    pub(crate) async fn insert_upgrade_records(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        records: &[AppendedUnderReplace],
    ) -> Result<(), MetadataError> {
        let q = self.backend.sql(&format!(
            "INSERT INTO druid_upgradeSegments (task_id, segment_id, lock_version) SELECT ?, ?, ?{}",
            self.fence_source()
        ));
        for r in records {
            let query = sqlx::query(&q)
                .bind(r.task_id.as_str())
                .bind(r.segment_id.as_str())
                .bind(r.lock_version.as_str());
            if self
                .with_fence(query)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                == 0
            {
                self.check_fence().await?;
            }
        }
        Ok(())
    }

    /// The segments appended under the REPLACE locks of `task_id` (a group id), oldest first.
    pub async fn appended_under_replace(
        &self,
        task_id: &str,
    ) -> Result<Vec<AppendedUnderReplace>, MetadataError> {
        let q = self.backend.sql(
            "SELECT segment_id, lock_version FROM druid_upgradeSegments WHERE task_id = ? ORDER BY id",
        );
        let rows = sqlx::query(&q).bind(task_id).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AppendedUnderReplace {
                    task_id: task_id.to_string(),
                    segment_id: r.try_get("segment_id")?,
                    lock_version: r.try_get("lock_version")?,
                })
            })
            .collect()
    }

    /// Forgets what was appended under the REPLACE locks of `task_id`, once it has ended.
    pub async fn delete_upgrade_records(&self, task_id: &str) -> Result<(), MetadataError> {
        let q = self.backend.sql(&format!(
            "DELETE FROM druid_upgradeSegments WHERE task_id = ?{}",
            self.fence_clause()
        ));
        let query = self.with_fence(sqlx::query(&q).bind(task_id));
        if query.execute(&self.pool).await?.rows_affected() == 0 {
            self.check_fence().await?;
        }
        Ok(())
    }
}
