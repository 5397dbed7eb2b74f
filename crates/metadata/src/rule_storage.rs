//! Retention rules (`druid_rules`): every change adds a version (`<dataSource>_<version>`, the
//! newest one in force) with its audit row, in one transaction. `_default` holds the rules that
//! apply after a data source's own.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::config_storage::AuditRecord;
use crate::error::MetadataError;
use crate::sql::MetadataStore;

/// The key of the rules every data source falls back to.
pub const DEFAULT_RULES_KEY: &str = "_default";

impl MetadataStore {
    /// The rules in force, per data source (their JSON array as stored).
    pub async fn current_rules(&self) -> Result<BTreeMap<String, Vec<u8>>, MetadataError> {
        // PostgreSQL folds unquoted names to lower case: alias them.
        let q = self.backend.sql(
            "SELECT r.dataSource AS data_source, r.payload AS payload FROM druid_rules r \
             JOIN (SELECT dataSource AS ds, MAX(version) AS newest FROM druid_rules GROUP BY dataSource) n \
             ON r.dataSource = n.ds AND r.version = n.newest",
        );
        let rows = sqlx::query(&q).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("data_source")?, r.try_get("payload")?)))
            .collect()
    }

    /// Stores a new version of `data_source`'s rules with its audit row. Fenced.
    pub async fn set_rules(
        &self,
        data_source: &str,
        payload: &[u8],
        audit: &AuditRecord,
    ) -> Result<(), MetadataError> {
        let source = self.fence_source();
        let version = drover_core::time::now_iso();
        let mut tx = self.pool.begin().await?;
        let insert = self.backend.sql(&format!(
            "INSERT INTO druid_rules (id, dataSource, version, payload) SELECT ?, ?, ?, ?{source}"
        ));
        let q = sqlx::query(&insert)
            .bind(format!("{data_source}_{version}"))
            .bind(data_source)
            .bind(version)
            .bind(payload.to_vec());
        let written = self.with_fence(q).execute(&mut *tx).await?.rows_affected() > 0;
        let audited = self.insert_audit(&mut tx, audit).await?;
        if !(written && audited) {
            tx.rollback().await?;
            self.check_fence().await?;
            return Err(MetadataError::corrupt(format!(
                "the rules of [{data_source}] were not written"
            )));
        }
        tx.commit().await?;
        Ok(())
    }
}
