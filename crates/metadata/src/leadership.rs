//! Fencing a deposed leader. Each overlord that gains leadership claims a new epoch in
//! `drover_leader_epoch` (Drover's own table); its store then checks that epoch in the same SQL
//! statement as every write, so once a newer leader has claimed, an older one's writes change
//! nothing and fail with `MetadataError::Fenced`.

use sqlx::Row;

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

use crate::error::MetadataError;
use crate::sql::MetadataStore;

/// The row overlords compete for.
pub(crate) const OVERLORD_FENCE: &str = "overlord";

impl MetadataStore {
    /// Claims the next epoch for `leader` (its URL) and returns a store whose writes are fenced
    /// by it.
    pub async fn claim_leadership(&self, leader: &str) -> Result<MetadataStore, MetadataError> {
        let now = drover_core::time::now_iso();
        for _ in 0..5 {
            let mut tx = self.pool.begin().await?;
            let bump = self
                .backend
                .sql("UPDATE drover_leader_epoch SET epoch = epoch + 1, leader = ?, updated = ? WHERE name = ?");
            let bumped = sqlx::query(&bump)
                .bind(leader)
                .bind(&now)
                .bind(OVERLORD_FENCE)
                .execute(&mut *tx)
                .await?;
            if bumped.rows_affected() == 0 {
                let insert = self
                    .backend
                    .sql("INSERT INTO drover_leader_epoch (name, epoch, leader, updated) VALUES (?, ?, ?, ?)");
                let inserted = sqlx::query(&insert)
                    .bind(OVERLORD_FENCE)
                    .bind(1i64)
                    .bind(leader)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await;
                match inserted {
                    Ok(_) => {}
                    // Another overlord inserted the row first: bump it instead.
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let read = self
                .backend
                .sql("SELECT epoch FROM drover_leader_epoch WHERE name = ?");
            let epoch: i64 = sqlx::query(&read)
                .bind(OVERLORD_FENCE)
                .fetch_one(&mut *tx)
                .await?
                .try_get("epoch")?;
            tx.commit().await?;
            tracing::info!(epoch, %leader, "claimed leadership epoch");
            return Ok(MetadataStore {
                fence: Some(epoch),
                ..self.clone()
            });
        }
        Err(MetadataError::corrupt(
            "could not claim a leadership epoch after 5 attempts",
        ))
    }

    /// The same store, telling `signal` whenever the fence refuses one of its writes.
    pub fn on_fenced(self, signal: tokio::sync::mpsc::UnboundedSender<()>) -> MetadataStore {
        MetadataStore {
            on_fenced: Some(signal),
            ..self
        }
    }

    /// The epoch this store's writes are fenced by, if any.
    pub fn fence(&self) -> Option<i64> {
        self.fence
    }

    /// The epoch stored now.
    pub async fn current_epoch(&self) -> Result<Option<i64>, MetadataError> {
        let read = self
            .backend
            .sql("SELECT epoch FROM drover_leader_epoch WHERE name = ?");
        let row = sqlx::query(&read)
            .bind(OVERLORD_FENCE)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("epoch")).transpose()?)
    }

    /// `AND EXISTS (...)` when fenced, for UPDATE statements; bind `fence_binds` after the rest.
    pub(crate) fn fence_clause(&self) -> &'static str {
        if self.fence.is_some() {
            " AND EXISTS (SELECT 1 FROM drover_leader_epoch WHERE name = ? AND epoch = ?)"
        } else {
            ""
        }
    }

    /// ` FROM drover_leader_epoch WHERE ...` when fenced, for `INSERT ... SELECT ?, ...` statements:
    /// they insert nothing once the epoch has moved on. Bind `with_fence` after the rest.
    pub(crate) fn fence_source(&self) -> &'static str {
        if self.fence.is_some() {
            " FROM drover_leader_epoch WHERE name = ? AND epoch = ?"
        } else {
            ""
        }
    }

    /// Binds the fence's two parameters (`name`, `epoch`) after a query's own, when fenced.
    pub(crate) fn with_fence<'q>(&self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        match self.fence {
            Some(epoch) => query.bind(OVERLORD_FENCE).bind(epoch),
            None => query,
        }
    }

    /// After a guarded write changed nothing: was it the fence?
    pub(crate) async fn check_fence(&self) -> Result<(), MetadataError> {
        let Some(mine) = self.fence else {
            return Ok(());
        };
        match self.current_epoch().await? {
            Some(current) if current == mine => Ok(()),
            current => {
                // The one place a fenced write is found out: say so to whoever listens.
                if let Some(signal) = &self.on_fenced {
                    signal.send(()).ok();
                }
                Err(MetadataError::Fenced {
                    mine,
                    current: current.unwrap_or(0),
                })
            }
        }
    }
}
