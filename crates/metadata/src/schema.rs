//! Druid's tables (see docs/architecture.md#tables), created when missing. Most stay empty until the features that
//! use them land; creating them all now means an operator sees the full schema from day one.

use sqlx::Executor;

use crate::error::MetadataError;
use crate::sql::{Backend, MetadataStore};

impl MetadataStore {
    pub async fn ensure_schema(&self) -> Result<(), MetadataError> {
        let b = self.backend;
        let payload = b.payload_type();
        let serial = b.serial_type();
        let end = b.quote("end");
        let tables = [
            format!(
                "CREATE TABLE IF NOT EXISTS druid_tasks (id VARCHAR(255) NOT NULL PRIMARY KEY, \
                 created_date VARCHAR(255) NOT NULL, datasource VARCHAR(255) NOT NULL, \
                 payload {payload} NOT NULL, status_payload {payload} NOT NULL, \
                 active BOOLEAN NOT NULL DEFAULT FALSE, type VARCHAR(255), group_id VARCHAR(255))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_tasklogs (id {serial}, task_id VARCHAR(255), log_payload {payload})"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_tasklocks (id {serial}, task_id VARCHAR(255), lock_payload {payload})"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_segments (id VARCHAR(255) NOT NULL PRIMARY KEY, \
                 dataSource VARCHAR(255) NOT NULL, created_date VARCHAR(255) NOT NULL, \
                 start VARCHAR(255) NOT NULL, {end} VARCHAR(255) NOT NULL, partitioned BOOLEAN NOT NULL, \
                 version VARCHAR(255) NOT NULL, used BOOLEAN NOT NULL, payload {payload} NOT NULL, \
                 used_status_last_updated VARCHAR(255))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_pendingSegments (id VARCHAR(255) NOT NULL PRIMARY KEY, \
                 dataSource VARCHAR(255) NOT NULL, created_date VARCHAR(255) NOT NULL, \
                 start VARCHAR(255) NOT NULL, {end} VARCHAR(255) NOT NULL, \
                 sequence_name VARCHAR(255) NOT NULL, sequence_prev_id VARCHAR(255) NOT NULL, \
                 sequence_name_prev_id_sha1 VARCHAR(255) NOT NULL UNIQUE, payload {payload} NOT NULL, \
                 upgraded_from_segment_id VARCHAR(255), task_allocator_id VARCHAR(255))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_dataSource (dataSource VARCHAR(255) NOT NULL PRIMARY KEY, \
                 created_date VARCHAR(255) NOT NULL, commit_metadata_payload {payload} NOT NULL, \
                 commit_metadata_sha1 VARCHAR(255) NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_supervisors (id {serial}, spec_id VARCHAR(255) NOT NULL, \
                 created_date VARCHAR(255) NOT NULL, payload {payload} NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_config (name VARCHAR(255) NOT NULL PRIMARY KEY, payload {payload} NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_audit (id {serial}, audit_key VARCHAR(255) NOT NULL, \
                 type VARCHAR(255) NOT NULL, author VARCHAR(255) NOT NULL, comment VARCHAR(2048) NOT NULL, \
                 created_date VARCHAR(255) NOT NULL, payload {payload} NOT NULL)"
            ),
            // Drover's own: the leadership epoch that fences a deposed overlord's writes.
            "CREATE TABLE IF NOT EXISTS drover_leader_epoch (name VARCHAR(255) NOT NULL PRIMARY KEY, \
             epoch BIGINT NOT NULL, leader VARCHAR(255) NOT NULL, updated VARCHAR(255) NOT NULL)"
                .to_string(),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_upgradeSegments (id {serial}, task_id VARCHAR(255) NOT NULL, \
                 segment_id VARCHAR(255) NOT NULL, lock_version VARCHAR(255) NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_rules (id VARCHAR(255) NOT NULL PRIMARY KEY, \
                 dataSource VARCHAR(255) NOT NULL, version VARCHAR(255) NOT NULL, payload {payload} NOT NULL)"
            ),
        ];
        let indexes = [
            "idx_druid_tasks_active_created_date ON druid_tasks (active, created_date)".to_string(),
            "idx_druid_tasklogs_task_id ON druid_tasklogs (task_id)".to_string(),
            "idx_druid_tasklocks_task_id ON druid_tasklocks (task_id)".to_string(),
            "idx_druid_segments_used ON druid_segments (used)".to_string(),
            format!("idx_druid_segments_datasource_used_end_start ON druid_segments (dataSource, used, {end}, start)"),
            format!("idx_druid_pendingSegments_datasource_end ON druid_pendingSegments (dataSource, {end})"),
            "idx_druid_pendingSegments_datasource_sequence ON druid_pendingSegments (dataSource, sequence_name)"
                .to_string(),
            "idx_druid_supervisors_spec_id ON druid_supervisors (spec_id)".to_string(),
            "idx_druid_audit_key_time ON druid_audit (audit_key, created_date)".to_string(),
            "idx_druid_audit_type_time ON druid_audit (type, created_date)".to_string(),
            "idx_druid_rules_datasource ON druid_rules (dataSource)".to_string(),
            "idx_druid_upgradeSegments_task_id ON druid_upgradeSegments (task_id)".to_string(),
        ];
        for ddl in &tables {
            self.execute_ddl(ddl).await?;
        }
        for index in &indexes {
            self.create_index(index).await?;
        }
        Ok(())
    }

    /// Runs one `CREATE … IF NOT EXISTS`. Two overlords starting together on an empty
    /// database both get past PostgreSQL's "not exists" check and one fails on the catalog's
    /// unique index: a statement that fails is tried again a few times, and then sees what the
    /// other made.
    async fn execute_ddl(&self, ddl: &str) -> Result<(), sqlx::Error> {
        let mut tries = 0;
        loop {
            match self.pool.execute(ddl).await {
                Ok(_) => return Ok(()),
                Err(e) if tries < 4 => {
                    tries += 1;
                    tracing::debug!(error = %e, ddl, "schema statement failed; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn create_index(&self, spec: &str) -> Result<(), MetadataError> {
        let ddl = match self.backend {
            // MySQL (unlike MariaDB) has no `CREATE INDEX IF NOT EXISTS`; a duplicate is error 1061.
            Backend::MySql => format!("CREATE INDEX {spec}"),
            _ => format!("CREATE INDEX IF NOT EXISTS {spec}"),
        };
        match self.execute_ddl(&ddl).await {
            Ok(()) => Ok(()),
            Err(e)
                if self.backend == Backend::MySql
                    && e.to_string().contains("Duplicate key name") =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
