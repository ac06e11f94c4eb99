//! The control plane's store: SQLite in the data directory by default,
//! PostgreSQL when several gateways share state.
//!
//! Both backends run the same SQL (written once with `$1` placeholders and
//! portable types) behind [`Store`]; the repository methods in `records` are
//! written once on top of three primitives: `query`, `execute` and
//! `transaction`. A transaction is a list of statements applied all or
//! nothing, which is how a failed request leaves nothing partial behind.

mod guardrails;
mod migrations;
mod postgres;
mod records;
mod reviews;
mod sessions;
mod sqlite;
mod webhooks;

use std::path::Path;

pub use guardrails::GuardrailRecord;
pub(crate) use records::now;
pub use records::{
    AgentRecord, ConnectionRecord, PluginChange, PluginConfigRecord, PluginEntryRecord,
    ResourceRecord, TokenRecord, UserRecord,
};
pub use reviews::{ReviewEvent, ReviewFilter, ReviewGroup, ReviewRecord};
pub(crate) use sessions::now_ms;
pub use sessions::{EventBatch, SessionFilter, SessionRecord};
pub use webhooks::{AttemptRecord, DeliveryRecord};

/// A value bound to or read from a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (`BIGINT`).
    Int(i64),
    /// Text (`TEXT`).
    Text(String),
    /// Bytes (`BLOB` / `BYTEA`).
    Blob(Vec<u8>),
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<Vec<u8>> for Value {
    fn from(value: Vec<u8>) -> Self {
        Self::Blob(value)
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Self {
        value.map_or(Self::Null, Self::Text)
    }
}

/// One result row, read by column index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(Vec<Value>);

impl Row {
    fn get(&self, index: usize) -> Result<&Value, StoreError> {
        self.0
            .get(index)
            .ok_or(StoreError::Corrupt("missing column"))
    }

    /// A non-null text column.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the column is absent or not text.
    pub fn text(&self, index: usize) -> Result<String, StoreError> {
        match self.get(index)? {
            Value::Text(text) => Ok(text.clone()),
            _ => Err(StoreError::Corrupt("expected text")),
        }
    }

    /// A nullable text column.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the column is absent or neither text nor null.
    pub fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        match self.get(index)? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text.clone())),
            _ => Err(StoreError::Corrupt("expected text or null")),
        }
    }

    /// A non-null integer column.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the column is absent or not an integer.
    pub fn int(&self, index: usize) -> Result<i64, StoreError> {
        match self.get(index)? {
            Value::Int(value) => Ok(*value),
            _ => Err(StoreError::Corrupt("expected integer")),
        }
    }

    /// A non-null bytes column.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the column is absent or not bytes.
    pub fn blob(&self, index: usize) -> Result<Vec<u8>, StoreError> {
        match self.get(index)? {
            Value::Blob(bytes) => Ok(bytes.clone()),
            _ => Err(StoreError::Corrupt("expected bytes")),
        }
    }
}

/// One statement of a transaction.
#[derive(Debug, Clone)]
pub struct Statement {
    sql: &'static str,
    params: Vec<Value>,
}

impl Statement {
    /// A statement with its parameters (`$1`, `$2`, ... in order).
    pub fn new(sql: &'static str, params: Vec<Value>) -> Self {
        Self { sql, params }
    }
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint refused the write (the name exists).
    #[error("conflict: the value already exists")]
    Conflict,
    /// The SQLite backend failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL backend failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The data directory could not be prepared.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// A stored row does not have the shape this version expects.
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    /// The database was migrated by a newer gateway.
    #[error("the database schema version {found} is newer than this gateway knows ({known})")]
    TooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this gateway knows.
        known: i64,
    },
    /// The blocking SQLite worker went away.
    #[error("store worker stopped")]
    WorkerGone,
}

/// The store: one of the two backends, same behaviour.
#[derive(Clone)]
pub enum Store {
    /// SQLite in a file (the embedded default).
    Sqlite(sqlite::SqliteStore),
    /// PostgreSQL, shared by several gateways.
    Postgres(postgres::PostgresStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend())
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies
    /// pending migrations.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or a migration fails.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let store = Self::Sqlite(sqlite::SqliteStore::open(path).await?);
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to PostgreSQL at `url` (`postgres://user@host:port/db`) and
    /// applies pending migrations.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or a migration fails.
    pub async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let store = Self::Postgres(postgres::PostgresStore::connect(url).await?);
        store.migrate().await?;
        Ok(store)
    }

    /// The backend's name, for logs.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.migrate().await,
            Self::Postgres(store) => store.migrate().await,
        }
    }

    /// Runs a query and returns its rows.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn query(
        &self,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, StoreError> {
        match self {
            Self::Sqlite(store) => store.query(sql, params).await,
            Self::Postgres(store) => store.query(sql, params).await,
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] on a uniqueness violation, or any backend error.
    pub async fn execute(&self, sql: &'static str, params: Vec<Value>) -> Result<u64, StoreError> {
        let mut changed = self.transaction(vec![Statement::new(sql, params)]).await?;
        Ok(changed.pop().unwrap_or(0))
    }

    /// Runs statements in one transaction, all or nothing; returns the rows
    /// each changed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] on a uniqueness violation (nothing is
    /// written), or any backend error.
    pub async fn transaction(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        match self {
            Self::Sqlite(store) => store.transaction(statements).await,
            Self::Postgres(store) => store.transaction(statements).await,
        }
    }
}

/// Rewrites `$N` placeholders as SQLite's `?N`.
fn to_sqlite_placeholders(sql: &str) -> String {
    sql.replace('$', "?")
}

#[cfg(test)]
pub(crate) mod tests;
