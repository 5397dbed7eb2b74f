//! `druid_tasklocks`: one row per lock a task holds (the lockbox's source of truth when a new
//! leader takes over). Writes are fenced by the leader's epoch like every leader write.

use drover_core::lock::TaskLock;
use drover_core::TaskId;
use sqlx::Row;

use crate::error::MetadataError;
use crate::sql::MetadataStore;

fn encode(lock: &TaskLock) -> Vec<u8> {
    serde_json::to_vec(lock).expect("locks serialize")
}

impl MetadataStore {
    pub async fn insert_lock(&self, task: &TaskId, lock: &TaskLock) -> Result<(), MetadataError> {
        let source = self.fence_source();
        let q = self.backend.sql(&format!(
            "INSERT INTO druid_tasklocks (task_id, lock_payload) SELECT ?, ?{source}"
        ));
        let mut query = sqlx::query(&q).bind(task.as_str()).bind(encode(lock));
        query = self.with_fence(query);
        if query.execute(&self.pool).await?.rows_affected() == 0 {
            self.check_fence().await?;
        }
        Ok(())
    }

    /// Rewrites a task's lock (revocation marks it `revoked`).
    pub async fn replace_lock(
        &self,
        task: &TaskId,
        old: &TaskLock,
        new: &TaskLock,
    ) -> Result<bool, MetadataError> {
        let q = self.backend.sql(&format!(
            "UPDATE druid_tasklocks SET lock_payload = ? WHERE task_id = ? AND lock_payload = ?{}",
            self.fence_clause()
        ));
        let mut query = sqlx::query(&q)
            .bind(encode(new))
            .bind(task.as_str())
            .bind(encode(old));
        query = self.with_fence(query);
        let changed = query.execute(&self.pool).await?.rows_affected() > 0;
        if !changed {
            self.check_fence().await?;
        }
        Ok(changed)
    }

    pub async fn delete_lock(&self, task: &TaskId, lock: &TaskLock) -> Result<(), MetadataError> {
        let q = self.backend.sql(&format!(
            "DELETE FROM druid_tasklocks WHERE task_id = ? AND lock_payload = ?{}",
            self.fence_clause()
        ));
        let mut query = sqlx::query(&q).bind(task.as_str()).bind(encode(lock));
        query = self.with_fence(query);
        if query.execute(&self.pool).await?.rows_affected() == 0 {
            self.check_fence().await?;
        }
        Ok(())
    }

    /// Every stored lock with its task, in insertion order.
    pub async fn all_locks(&self) -> Result<Vec<(String, TaskLock)>, MetadataError> {
        let rows = sqlx::query("SELECT task_id, lock_payload FROM druid_tasklocks ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let task: String = r.try_get("task_id")?;
                let payload: Vec<u8> = r.try_get("lock_payload")?;
                let lock = serde_json::from_slice(&payload)
                    .map_err(|e| MetadataError::corrupt(format!("lock of task [{task}]: {e}")))?;
                Ok((task, lock))
            })
            .collect()
    }
}
