//! The embedded backend: one SQLite file in the data directory.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool under a
//! mutex; the control plane's writes are small and SQLite serialises writers
//! anyway. WAL mode keeps readers from waiting on the fsync of a writer.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{ErrorCode, ToSql};

use super::migrations::{Dialect, MIGRATIONS};
use super::{Row, Statement, StoreError, Value, to_sqlite_placeholders};

/// A shared handle on the SQLite database.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<rusqlite::Connection>>,
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Self::Int(value) => ToSqlOutput::from(*value),
            Self::Text(text) => ToSqlOutput::from(text.as_str()),
            Self::Blob(bytes) => ToSqlOutput::from(bytes.as_slice()),
        })
    }
}

fn read_value(value: ValueRef<'_>) -> Result<Value, StoreError> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(value) => Value::Int(value),
        ValueRef::Text(text) => Value::Text(
            std::str::from_utf8(text)
                .map_err(|_| StoreError::Corrupt("text is not UTF-8"))?
                .to_owned(),
        ),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
        ValueRef::Real(_) => return Err(StoreError::Corrupt("unexpected real")),
    })
}

fn map_error(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict,
        _ => StoreError::Sqlite(error),
    }
}

impl SqliteStore {
    pub(super) async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let connection = tokio::task::spawn_blocking(move || {
            let connection = rusqlite::Connection::open(&path)?;
            connection.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
            )?;
            Ok::<_, rusqlite::Error>(connection)
        })
        .await
        .map_err(|_| StoreError::WorkerGone)??;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a half-applied
            // transaction (rusqlite rolls back on drop), so a poisoned lock
            // is still safe to use.
            let mut guard = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            work(&mut guard)
        })
        .await
        .map_err(|_| StoreError::WorkerGone)?
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        self.with(|connection| {
            let tx = connection.transaction()?;
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations \
                 (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
            )?;
            let current: i64 = tx.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |row| row.get(0),
            )?;
            let known = MIGRATIONS.len() as i64;
            if current > known {
                return Err(StoreError::TooNew {
                    found: current,
                    known,
                });
            }
            for (index, migration) in MIGRATIONS.iter().enumerate() {
                let version = index as i64 + 1;
                if version <= current {
                    continue;
                }
                tx.execute_batch(&migration.render(Dialect::Sqlite))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                    rusqlite::params![version, super::records::now()],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn query(
        &self,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, StoreError> {
        self.with(move |connection| {
            let mut statement = connection
                .prepare_cached(&to_sqlite_placeholders(sql))
                .map_err(map_error)?;
            let columns = statement.column_count();
            let mut rows = statement
                .query(rusqlite::params_from_iter(params.iter()))
                .map_err(map_error)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(map_error)? {
                let mut values = Vec::with_capacity(columns);
                for index in 0..columns {
                    values.push(read_value(row.get_ref(index)?)?);
                }
                out.push(Row(values));
            }
            Ok(out)
        })
        .await
    }

    pub(super) async fn transaction(
        &self,
        statements: Vec<Statement>,
    ) -> Result<Vec<u64>, StoreError> {
        self.with(move |connection| {
            let tx = connection.transaction().map_err(map_error)?;
            let mut changed = Vec::with_capacity(statements.len());
            for statement in &statements {
                let mut prepared = tx
                    .prepare_cached(&to_sqlite_placeholders(statement.sql))
                    .map_err(map_error)?;
                let count = prepared
                    .execute(rusqlite::params_from_iter(statement.params.iter()))
                    .map_err(map_error)?;
                changed.push(count as u64);
            }
            tx.commit().map_err(map_error)?;
            Ok(changed)
        })
        .await
    }
}
