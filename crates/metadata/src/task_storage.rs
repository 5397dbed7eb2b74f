//! Druid's MetadataTaskStorage over `druid_tasks`: a task is inserted (active, RUNNING) before it
//! is queued, and its status is updated only `WHERE active = TRUE`, so a task ends in exactly one
//! terminal status however many times completion is reported.

use drover_core::{TaskId, TaskStatus};
use drover_task::Task;
use sqlx::Row;

use crate::error::MetadataError;
use crate::sql::MetadataStore;

/// A whole `druid_tasks` row.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub task: Task,
    pub info: TaskInfo,
}

/// A row without its payload: what listings need.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub id: String,
    pub created_date: String,
    pub datasource: String,
    pub task_type: Option<String>,
    pub group_id: Option<String>,
    pub status: TaskStatus,
}

#[derive(Debug, Clone, Default)]
pub struct CompleteTaskFilter {
    /// Only tasks created at or after this ISO time (inclusive).
    pub created_after: Option<String>,
    /// Only tasks created before this ISO time (exclusive).
    pub created_before: Option<String>,
    pub datasource: Option<String>,
    pub task_type: Option<String>,
    pub max: Option<u32>,
}

fn parse_status(bytes: &[u8], id: &str) -> Result<TaskStatus, MetadataError> {
    serde_json::from_slice(bytes)
        .map_err(|e| MetadataError::corrupt(format!("status_payload of task [{id}]: {e}")))
}

fn info_from_row(row: &sqlx::any::AnyRow) -> Result<TaskInfo, MetadataError> {
    let id: String = row.try_get("id")?;
    let status_payload: Vec<u8> = row.try_get("status_payload")?;
    Ok(TaskInfo {
        status: parse_status(&status_payload, &id)?,
        id,
        created_date: row.try_get("created_date")?,
        datasource: row.try_get("datasource")?,
        task_type: row.try_get("type")?,
        group_id: row.try_get("group_id")?,
    })
}

const INFO_COLUMNS: &str = "id, created_date, datasource, type, group_id, status_payload";

impl MetadataStore {
    /// Inserts a new active task. A task id that exists already, active or not, is refused.
    pub async fn insert_task(
        &self,
        task: &Task,
        created_date: &str,
        status: &TaskStatus,
    ) -> Result<(), MetadataError> {
        self.insert_task_by(task, created_date, status, None).await
    }

    /// `insert_task`, done by `deadline` or not at all: the insert runs in a transaction that is
    /// committed only when it finished in time and rolled back otherwise, so a client told "not
    /// stored" never finds its task running later. Only a commit whose answer is late leaves the
    /// outcome open (`Deadline { maybe_stored: true }`).
    pub async fn insert_task_by(
        &self,
        task: &Task,
        created_date: &str,
        status: &TaskStatus,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(), MetadataError> {
        let far = || tokio::time::Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600);
        let deadline = deadline.unwrap_or_else(far);
        let insert = async {
            let mut tx = self.pool.begin().await?;
            self.insert_task_in(&mut tx, task, created_date, status)
                .await?;
            Ok::<_, MetadataError>(tx)
        };
        // Dropping an unfinished transaction rolls it back.
        let tx = tokio::time::timeout_at(deadline, insert)
            .await
            .map_err(|_| MetadataError::Deadline {
                maybe_stored: false,
            })??;
        tokio::time::timeout_at(deadline, tx.commit())
            .await
            .map_err(|_| MetadataError::Deadline { maybe_stored: true })??;
        Ok(())
    }

    async fn insert_task_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        task: &Task,
        created_date: &str,
        status: &TaskStatus,
    ) -> Result<(), MetadataError> {
        const COLUMNS: &str =
            "id, created_date, datasource, payload, status_payload, active, type, group_id";
        // Fenced: insert only while this store's epoch is the current one.
        let q = match self.fence {
            None => format!("INSERT INTO druid_tasks ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            Some(_) => format!(
                "INSERT INTO druid_tasks ({COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ? \
                 FROM drover_leader_epoch WHERE name = ? AND epoch = ?"
            ),
        };
        let q = self.backend.sql(&q);
        let mut query = sqlx::query(&q)
            .bind(task.id.as_str())
            .bind(created_date)
            .bind(task.data_source.as_str())
            .bind(task.to_json_bytes())
            .bind(serde_json::to_vec(status).expect("status serializes"))
            .bind(!status.is_complete())
            .bind(task.task_type.as_str())
            .bind(task.group_id.as_str());
        query = self.with_fence(query);
        match query.execute(&mut **tx).await {
            Ok(done) if done.rows_affected() == 0 => {
                self.check_fence().await?;
                Err(MetadataError::corrupt("task insert changed no row"))
            }
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(MetadataError::TaskExists(task.id.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records a status. Only an active task is updated, so the first terminal status wins and
    /// later reports change nothing. Returns whether a row changed.
    pub async fn set_task_status(&self, status: &TaskStatus) -> Result<bool, MetadataError> {
        let q = self.backend.sql(&format!(
            "UPDATE druid_tasks SET active = ?, status_payload = ? WHERE id = ? AND active = ?{}",
            self.fence_clause()
        ));
        let mut query = sqlx::query(&q)
            .bind(!status.is_complete())
            .bind(serde_json::to_vec(status).expect("status serializes"))
            .bind(status.id.as_str())
            .bind(true);
        query = self.with_fence(query);
        let done = query.execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            self.check_fence().await?;
            return Ok(false);
        }
        Ok(true)
    }

    pub async fn get_task(&self, id: &TaskId) -> Result<Option<TaskRow>, MetadataError> {
        let q = self.backend.sql(&format!(
            "SELECT {INFO_COLUMNS}, payload FROM druid_tasks WHERE id = ?"
        ));
        let Some(row) = sqlx::query(&q)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let info = info_from_row(&row)?;
        let payload: Vec<u8> = row.try_get("payload")?;
        let task = Task::from_json_bytes(&payload)
            .map_err(|e| MetadataError::corrupt(format!("payload of task [{id}]: {e}")))?;
        Ok(Some(TaskRow { task, info }))
    }

    pub async fn get_task_info(&self, id: &TaskId) -> Result<Option<TaskInfo>, MetadataError> {
        let q = self.backend.sql(&format!(
            "SELECT {INFO_COLUMNS} FROM druid_tasks WHERE id = ?"
        ));
        let row = sqlx::query(&q)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(info_from_row).transpose()
    }

    /// Statuses of the given ids; ids not in storage are left out.
    pub async fn get_statuses(&self, ids: &[TaskId]) -> Result<Vec<TaskStatus>, MetadataError> {
        Ok(self
            .get_task_infos(ids)
            .await?
            .into_iter()
            .map(|info| info.status)
            .collect())
    }

    /// The rows of the given ids, oldest first; ids not in storage are left out. A few hundred
    /// ids a query, so a listing of what runs costs what runs, not every active task.
    pub async fn get_task_infos(&self, ids: &[TaskId]) -> Result<Vec<TaskInfo>, MetadataError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let q = self.backend.sql(&format!(
                "SELECT {INFO_COLUMNS} FROM druid_tasks WHERE id IN ({marks})"
            ));
            let mut query = sqlx::query(&q);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                out.push(info_from_row(&row)?);
            }
        }
        out.sort_by(|a, b| (&a.created_date, &a.id).cmp(&(&b.created_date, &b.id)));
        Ok(out)
    }

    /// Active tasks with their payloads, oldest first: what the TaskQueue loads.
    pub async fn active_tasks(&self) -> Result<Vec<TaskRow>, MetadataError> {
        let q = self.backend.sql(&format!(
            "SELECT {INFO_COLUMNS}, payload FROM druid_tasks WHERE active = ? ORDER BY created_date, id"
        ));
        let rows = sqlx::query(&q).bind(true).fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let info = info_from_row(row)?;
            let payload: Vec<u8> = row.try_get("payload")?;
            match Task::from_json_bytes(&payload) {
                Ok(task) => out.push(TaskRow { task, info }),
                // One unreadable row must not stop the others from running; it is reported.
                Err(e) => {
                    tracing::error!(task = %info.id, error = %e, "skipping active task with unreadable payload")
                }
            }
        }
        Ok(out)
    }

    /// Active tasks without payloads, oldest first: what listings need.
    pub async fn active_task_infos(&self) -> Result<Vec<TaskInfo>, MetadataError> {
        let q = self.backend.sql(&format!(
            "SELECT {INFO_COLUMNS} FROM druid_tasks WHERE active = ? ORDER BY created_date, id"
        ));
        let rows = sqlx::query(&q).bind(true).fetch_all(&self.pool).await?;
        rows.iter().map(info_from_row).collect()
    }

    /// Completed tasks, newest first.
    pub async fn complete_task_infos(
        &self,
        filter: &CompleteTaskFilter,
    ) -> Result<Vec<TaskInfo>, MetadataError> {
        self.task_infos_where(false, filter).await
    }

    /// Active tasks without payloads, oldest first, filtered (and limited) in SQL: a listing
    /// of a few reads a few rows, however many tasks wait.
    pub async fn active_task_infos_where(
        &self,
        filter: &CompleteTaskFilter,
    ) -> Result<Vec<TaskInfo>, MetadataError> {
        self.task_infos_where(true, filter).await
    }

    /// Active tasks oldest first, complete ones newest first.
    async fn task_infos_where(
        &self,
        active: bool,
        filter: &CompleteTaskFilter,
    ) -> Result<Vec<TaskInfo>, MetadataError> {
        let mut q = format!("SELECT {INFO_COLUMNS} FROM druid_tasks WHERE active = ?");
        if filter.created_after.is_some() {
            q.push_str(" AND created_date >= ?");
        }
        if filter.created_before.is_some() {
            q.push_str(" AND created_date < ?");
        }
        if filter.datasource.is_some() {
            q.push_str(" AND datasource = ?");
        }
        if filter.task_type.is_some() {
            q.push_str(" AND type = ?");
        }
        q.push_str(if active {
            " ORDER BY created_date, id"
        } else {
            " ORDER BY created_date DESC, id DESC"
        });
        if let Some(max) = filter.max {
            q.push_str(&format!(" LIMIT {max}"));
        }
        let q = self.backend.sql(&q);
        let mut query = sqlx::query(&q).bind(active);
        for value in [
            &filter.created_after,
            &filter.created_before,
            &filter.datasource,
            &filter.task_type,
        ]
        .into_iter()
        .flatten()
        {
            query = query.bind(value.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(info_from_row).collect()
    }

    /// Whether the store answers at all (used by health checks).
    pub async fn ping(&self) -> Result<(), MetadataError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
