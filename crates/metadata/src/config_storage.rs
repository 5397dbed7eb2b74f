//! Dynamic configuration (`druid_config`) with its audit trail (`druid_audit`): a new value and
//! its audit row are written in one transaction.

use sqlx::Row;

use crate::error::MetadataError;
use crate::sql::MetadataStore;

/// Who changed a config and why (Druid's `X-Druid-Author` / `X-Druid-Comment` headers).
#[derive(Debug, Clone, Default)]
pub struct AuditInfo {
    pub author: String,
    pub comment: String,
    pub ip: String,
}

/// A `druid_audit` row.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub key: String,
    pub audit_type: String,
    pub info: AuditInfo,
    pub payload: String,
    pub created_date: String,
}

impl MetadataStore {
    pub async fn get_config(&self, name: &str) -> Result<Option<Vec<u8>>, MetadataError> {
        let q = self
            .backend
            .sql("SELECT payload FROM druid_config WHERE name = ?");
        let row = sqlx::query(&q)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("payload")).transpose()?)
    }

    /// Stores `payload` under `name` and appends the audit row, atomically. A fenced store
    /// writes only while its epoch is current; otherwise nothing is written.
    pub async fn set_config(
        &self,
        name: &str,
        payload: &[u8],
        audit: &AuditRecord,
    ) -> Result<(), MetadataError> {
        let fence = self.fence_clause();
        // INSERT ... SELECT from the epoch row inserts nothing once the epoch has moved on.
        let source = self.fence_source();
        let mut tx = self.pool.begin().await?;
        let update = self.backend.sql(&format!(
            "UPDATE druid_config SET payload = ? WHERE name = ?{fence}"
        ));
        let mut q = sqlx::query(&update).bind(payload.to_vec()).bind(name);
        q = self.with_fence(q);
        let mut written = q.execute(&mut *tx).await?.rows_affected() > 0;
        if !written {
            let insert = self.backend.sql(&format!(
                "INSERT INTO druid_config (name, payload) SELECT ?, ?{source}"
            ));
            let mut q = sqlx::query(&insert).bind(name).bind(payload.to_vec());
            q = self.with_fence(q);
            written = q.execute(&mut *tx).await?.rows_affected() > 0;
        }
        let audited = self.insert_audit(&mut tx, audit).await?;
        if !(written && audited) {
            tx.rollback().await?;
            self.check_fence().await?;
            return Err(MetadataError::corrupt(format!(
                "config [{name}] was not written"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends `audit` in `tx`, fenced; whether it was written.
    pub(crate) async fn insert_audit(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        audit: &AuditRecord,
    ) -> Result<bool, MetadataError> {
        let source = self.fence_source();
        let audit_sql = self.backend.sql(&format!(
            "INSERT INTO druid_audit (audit_key, type, author, comment, created_date, payload) SELECT ?, ?, ?, ?, ?, ?{source}"
        ));
        let q = sqlx::query(&audit_sql)
            .bind(&audit.key)
            .bind(&audit.audit_type)
            .bind(&audit.info.author)
            .bind(&audit.info.comment)
            .bind(&audit.created_date)
            .bind(audit.payload.as_bytes().to_vec());
        Ok(self.with_fence(q).execute(&mut **tx).await?.rows_affected() > 0)
    }

    /// Audit rows of one key and type, newest first: those created in `[since, until)` when
    /// given, at most `limit`.
    pub async fn audit_history(
        &self,
        key: &str,
        audit_type: &str,
        since: Option<&str>,
        until: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<AuditRecord>, MetadataError> {
        let mut q =
            "SELECT audit_key, type, author, comment, created_date, payload FROM druid_audit \
                     WHERE audit_key = ? AND type = ?"
                .to_string();
        if since.is_some() {
            q.push_str(" AND created_date >= ?");
        }
        if until.is_some() {
            q.push_str(" AND created_date < ?");
        }
        q.push_str(" ORDER BY created_date DESC, id DESC");
        if let Some(limit) = limit {
            q.push_str(&format!(" LIMIT {limit}"));
        }
        let q = self.backend.sql(&q);
        let mut query = sqlx::query(&q).bind(key).bind(audit_type);
        for v in [since, until].into_iter().flatten() {
            query = query.bind(v);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let payload: Vec<u8> = r.try_get("payload")?;
                Ok(AuditRecord {
                    key: r.try_get("audit_key")?,
                    audit_type: r.try_get("type")?,
                    info: AuditInfo {
                        author: r.try_get("author")?,
                        comment: r.try_get("comment")?,
                        ip: String::new(),
                    },
                    payload: String::from_utf8_lossy(&payload).into_owned(),
                    created_date: r.try_get("created_date")?,
                })
            })
            .collect()
    }
}
