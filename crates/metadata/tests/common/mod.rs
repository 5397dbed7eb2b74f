//! Fresh, throwaway databases for the conformance suite: a SQLite file, and a new database on the
//! PostgreSQL and MySQL/MariaDB servers the test command starts. A missing server is a failure
//! with a message saying how to start it, never a silent skip.

use drover_metadata::MetadataStore;
use rand::Rng;
use sqlx::{AnyConnection, Connection, Executor};

pub const POSTGRES_ENV: &str = "DROVER_TEST_POSTGRES_URL";
pub const MYSQL_ENV: &str = "DROVER_TEST_MYSQL_URL";
pub const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const MYSQL_DEFAULT: &str = "mysql://root@127.0.0.1:3306/mysql";

pub struct TestDb {
    pub store: MetadataStore,
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
        let store = MetadataStore::connect(&url).await.unwrap();
        TestDb {
            store,
            admin_url: None,
            name: String::new(),
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        Self::server(POSTGRES_ENV, POSTGRES_DEFAULT).await
    }

    pub async fn mysql() -> TestDb {
        Self::server(MYSQL_ENV, MYSQL_DEFAULT).await
    }

    async fn server(env: &str, default: &str) -> TestDb {
        let (admin_url, name, url) = empty_database(env, default).await;
        let store = MetadataStore::connect(&url).await.unwrap();
        TestDb {
            store,
            admin_url: Some(admin_url),
            name,
            _dir: None,
        }
    }

    /// A store on a database made with [`empty_database`], dropped with it.
    #[allow(dead_code)] // Each test binary compiles this module; not all of them adopt.
    pub async fn adopt(store: MetadataStore, admin_url: String, name: String) -> TestDb {
        TestDb {
            store,
            admin_url: Some(admin_url),
            name,
            _dir: None,
        }
    }

    pub async fn drop_db(self) {
        self.store.close().await;
        if let Some(url) = self.admin_url {
            let mut admin = AnyConnection::connect(&url).await.unwrap();
            // The closed pool's sessions may still be ending on the server side: PostgreSQL can
            // end them itself (FORCE); both get a few tries.
            let force = if url.starts_with("postgres") {
                " WITH (FORCE)"
            } else {
                ""
            };
            let drop = format!("DROP DATABASE {}{force}", self.name);
            let mut tries = 0;
            while let Err(e) = admin.execute(drop.as_str()).await {
                tries += 1;
                assert!(tries < 20, "cannot drop test database {}: {e}", self.name);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// A new, empty database on the server `env` names (else `default`): the admin URL, its name,
/// and its URL.
pub async fn empty_database(env: &str, default: &str) -> (String, String, String) {
    sqlx::any::install_default_drivers();
    let admin_url = std::env::var(env).unwrap_or_else(|_| default.to_string());
    let mut admin = AnyConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach the test database server at {admin_url} ({e}). Run the tests with \
                 scripts/test, which starts PostgreSQL and MariaDB, or set {env}."
            )
        });
    let name = format!("drover_test_{:08x}", rand::rng().random::<u32>());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    admin.close().await.ok();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
    let url = format!("{base}/{name}");
    (admin_url, name, url)
}
