//! Supervisor specs in `druid_supervisors`: append-only history, one row per version of a spec
//! (create, replace, suspend, resume; terminate appends a tombstone). The newest row of each id
//! says what should run.

use sqlx::Row;

use crate::error::MetadataError;
use crate::sql::MetadataStore;

/// One stored version: `created_date` is Druid's `version` in the history routes.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorVersion {
    pub spec_id: String,
    pub created_date: String,
    pub payload: Vec<u8>,
}

impl MetadataStore {
    /// Appends a version of `spec_id`. Fenced: a deposed leader writes nothing.
    pub async fn insert_supervisor(
        &self,
        spec_id: &str,
        created_date: &str,
        payload: &[u8],
    ) -> Result<(), MetadataError> {
        let sql = self.backend.sql(&format!(
            "INSERT INTO druid_supervisors (spec_id, created_date, payload) SELECT ?, ?, ?{}",
            self.fence_source()
        ));
        let q = sqlx::query(&sql)
            .bind(spec_id)
            .bind(created_date)
            .bind(payload.to_vec());
        if self
            .with_fence(q)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 0
        {
            self.check_fence().await?;
            return Err(MetadataError::corrupt(format!(
                "supervisor [{spec_id}] was not written"
            )));
        }
        Ok(())
    }

    /// Every version, newest first (by insertion order).
    pub async fn supervisor_history(
        &self,
        spec_id: Option<&str>,
    ) -> Result<Vec<SupervisorVersion>, MetadataError> {
        let mut q = "SELECT spec_id, created_date, payload FROM druid_supervisors".to_string();
        if spec_id.is_some() {
            q.push_str(" WHERE spec_id = ?");
        }
        q.push_str(" ORDER BY id DESC");
        let q = self.backend.sql(&q);
        let mut query = sqlx::query(&q);
        if let Some(id) = spec_id {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(SupervisorVersion {
                    spec_id: r.try_get("spec_id")?,
                    created_date: r.try_get("created_date")?,
                    payload: r.try_get("payload")?,
                })
            })
            .collect()
    }

    /// The newest version of each id (tombstones included; the caller skips them).
    pub async fn latest_supervisors(&self) -> Result<Vec<SupervisorVersion>, MetadataError> {
        let mut seen = std::collections::BTreeSet::new();
        Ok(self
            .supervisor_history(None)
            .await?
            .into_iter()
            .filter(|v| seen.insert(v.spec_id.clone()))
            .collect())
    }
}
