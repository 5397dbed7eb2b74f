//! The connection pool and the few places where the three SQL dialects differ.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

use crate::error::MetadataError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, MetadataError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(MetadataError::UnsupportedUrl(redact(url))),
        }
    }

    /// `BLOB` / `BYTEA` / `LONGBLOB`, as Druid's connectors choose.
    pub(crate) fn payload_type(self) -> &'static str {
        match self {
            Backend::Sqlite => "BLOB",
            Backend::Postgres => "BYTEA",
            Backend::MySql => "LONGBLOB",
        }
    }

    pub(crate) fn serial_type(self) -> &'static str {
        match self {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
            Backend::MySql => "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
        }
    }

    /// `end` is a reserved word.
    pub(crate) fn quote(self, ident: &str) -> String {
        match self {
            Backend::MySql => format!("`{ident}`"),
            _ => format!("\"{ident}\""),
        }
    }

    /// The Any driver does not rewrite placeholders: queries are written with `?` and turned
    /// into `$1, $2, ...` for PostgreSQL here.
    pub(crate) fn sql(self, query: &str) -> String {
        if self != Backend::Postgres {
            return query.to_string();
        }
        let mut out = String::with_capacity(query.len() + 8);
        let mut n = 0;
        for c in query.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// Hides a password in a URL before it is logged or returned.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Clone)]
pub struct MetadataStore {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    /// The leadership epoch every write is checked against (see `leadership.rs`).
    pub(crate) fence: Option<i64>,
    /// Told once per refused write when the fence refuses it, so the leadership task learns of
    /// it from the store itself, whoever made the write.
    pub(crate) on_fenced: Option<tokio::sync::mpsc::UnboundedSender<()>>,
}

impl MetadataStore {
    /// Connects and creates every `druid_*` table that is missing.
    pub async fn connect(url: &str) -> Result<MetadataStore, MetadataError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let mut url = url.to_string();
        let mut max_connections = 8;
        if backend == Backend::Sqlite {
            if url.contains(":memory:") {
                // Each pooled connection to `sqlite::memory:` is its own database.
                max_connections = 1;
            } else if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let options =
            AnyConnectOptions::from_str(&url)?.log_statements(tracing::log::LevelFilter::Trace);
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; the busy timeout makes writers
                        // from several pooled connections wait for each other instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let store = MetadataStore {
            pool,
            backend,
            fence: None,
            on_fenced: None,
        };
        store.ensure_schema().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_placeholders_for_postgres_only() {
        assert_eq!(
            Backend::Postgres.sql("a = ? AND b = ?"),
            "a = $1 AND b = $2"
        );
        assert_eq!(Backend::MySql.sql("a = ?"), "a = ?");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
        assert!(Backend::from_url("oracle://x").is_err());
    }
}
