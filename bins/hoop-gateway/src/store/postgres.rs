//! The shared backend: PostgreSQL, for several gateways on one state.
//!
//! A small fixed set of connections is shared round-robin; a transaction
//! holds one connection for its duration. Migrations take an advisory lock so
//! gateways starting together do not race each other.

use std::collections::HashMap;
use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;
use tokio::sync::RwLock;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Statement as Prepared};

use super::migrations::{Dialect, MIGRATIONS};
use super::{Row, Statement, StoreError, Value};

/// How many server connections one gateway keeps: enough for concurrent API
/// requests on a small machine without exhausting the server's slots.
const POOL_SIZE: usize = 4;

/// An arbitrary constant naming the migration lock.
const MIGRATION_LOCK: i64 = 0x686f_6f70; // "hoop"

/// A shared handle on the PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    clients: Arc<Vec<Pooled>>,
    next: Arc<AtomicUsize>,
}

/// One of the pool's connections, and the statements prepared on it.
struct Pooled {
    client: RwLock<Client>,
    /// By their text: the store's statements are a fixed set of constants,
    /// so this holds one entry per statement the connection has run.
    prepared: Mutex<HashMap<&'static str, Prepared>>,
}

impl Pooled {
    /// `sql` prepared on `client` (this connection), the first time it
    /// runs: each later run is one round trip (bind, execute) instead of
    /// two (parse and describe first).
    async fn prepared(&self, client: &Client, sql: &'static str) -> Result<Prepared, StoreError> {
        let cached = self
            .prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let statement = client.prepare(sql).await.map_err(map_error)?;
        self.prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sql, statement.clone());
        Ok(statement)
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Int(value) => value.to_sql(ty, out),
            Self::Text(text) => text.to_sql(ty, out),
            Self::Blob(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn read_row(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let value = match *column.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(Value::Int),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(index)?
                .map(|v| Value::Int(i64::from(v))),
            Type::TEXT | Type::VARCHAR => row.try_get::<_, Option<String>>(index)?.map(Value::Text),
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(index)?.map(Value::Blob),
            _ => return Err(StoreError::Corrupt("unexpected column type")),
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

fn map_error(error: tokio_postgres::Error) -> StoreError {
    let code = error.code();
    if code == Some(&SqlState::UNIQUE_VIOLATION) || code == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
        StoreError::Conflict
    } else {
        StoreError::Postgres(error)
    }
}

fn params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl PostgresStore {
    pub(super) async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut clients = Vec::with_capacity(POOL_SIZE);
        for _ in 0..POOL_SIZE {
            let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(%error, "postgres store connection closed");
                }
            });
            clients.push(Pooled {
                client: RwLock::new(client),
                prepared: Mutex::new(HashMap::new()),
            });
        }
        Ok(Self {
            clients: Arc::new(clients),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// One of the pool's connections. Queries share it (tokio-postgres
    /// pipelines them: read lock); a transaction needs it alone (write lock).
    fn pick(&self) -> &Pooled {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        &self.clients[index]
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pick().client.write().await;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
                &[],
            )
            .await?
            .try_get(0)?;
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
            tx.batch_execute(&migration.render(Dialect::Postgres))
                .await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[&version, &super::records::now()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn query(
        &self,
        sql: &'static str,
        values: Vec<Value>,
    ) -> Result<Vec<Row>, StoreError> {
        let pooled = self.pick();
        let client = pooled.client.read().await;
        let statement = pooled.prepared(&client, sql).await?;
        let rows = client
            .query(&statement, &params(&values))
            .await
            .map_err(map_error)?;
        rows.iter().map(read_row).collect()
    }

    pub(super) async fn transaction(
        &self,
        statements: Vec<Statement>,
    ) -> Result<Vec<u64>, StoreError> {
        let pooled = self.pick();
        let mut client = pooled.client.write().await;
        let mut prepared = Vec::with_capacity(statements.len());
        for statement in &statements {
            prepared.push(pooled.prepared(&client, statement.sql).await?);
        }
        let tx = client.transaction().await.map_err(map_error)?;
        let mut changed = Vec::with_capacity(statements.len());
        for (statement, prepared) in statements.iter().zip(&prepared) {
            let count = tx
                .execute(prepared, &params(&statement.params))
                .await
                .map_err(map_error)?;
            changed.push(count);
        }
        tx.commit().await.map_err(map_error)?;
        Ok(changed)
    }
}
