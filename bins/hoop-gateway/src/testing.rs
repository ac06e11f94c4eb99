//! Test support: private temporary directories and per-run PostgreSQL
//! databases, both removed when dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::Store;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = crate::crypto::random_bytes::<4>().unwrap();
    format!(
        "{}_{n}_{:08x}",
        std::process::id(),
        u32::from_be_bytes(random)
    )
}

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        let path = std::env::temp_dir().join(format!("hoop-gateway-test-{}", unique_suffix()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests use: `HOOP_TEST_POSTGRES_URL`, or the
/// local trust-auth server.
pub(crate) fn postgres_admin_url() -> String {
    std::env::var("HOOP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database on the test PostgreSQL server, dropped on drop.
pub(crate) struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    pub(crate) async fn create() -> Self {
        let name = format!("hoop_test_{}", unique_suffix());
        let (client, connection) =
            tokio_postgres::connect(&postgres_admin_url(), tokio_postgres::NoTls)
                .await
                .expect("the tests need PostgreSQL at 127.0.0.1:5432 (user postgres, trust)");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let base = postgres_admin_url();
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => format!("{base}/{name}"),
        };
        Self { name, url }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a thread with its own runtime
        // can block on the DROP without nesting runtimes.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&postgres_admin_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A store on one backend plus what keeps it alive; reopenable, to test
/// restarts.
pub(crate) struct TestStore {
    pub(crate) dir: TempDir,
    pub(crate) database: Option<TestDatabase>,
}

impl TestStore {
    pub(crate) async fn new(backend: Backend) -> Self {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        Self {
            dir: TempDir::new(),
            database,
        }
    }

    pub(crate) async fn open(&self) -> Store {
        match &self.database {
            Some(database) => Store::open_postgres(database.url()).await.unwrap(),
            None => Store::open_sqlite(&self.dir.path().join("hoop.db"))
                .await
                .unwrap(),
        }
    }
}

/// Runs each named `async fn(Backend)` once per backend, as
/// `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::Backend::Postgres).await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
