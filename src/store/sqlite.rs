//! SQLite backend: the zero-configuration default. WAL mode lets readers
//! proceed during writes; `BEGIN IMMEDIATE` serialises writers that must
//! read-then-write (key rotation, migrations), also across processes.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::migrate::{self, run_migrations};
use super::sql::*;
use super::*;
use crate::domain::*;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl BackendDb for SqliteStore {
    type Db = Sqlite;
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Corrupt(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(migrate::CREATE_TABLE)
            .execute(&self.pool)
            .await?;
        let mut tx = self.begin_locked().await?;
        run_migrations!(tx, migrate::SQLITE);
        tx.commit().await?;
        Ok(())
    }

    /// A write transaction that holds the database's write lock from its
    /// first statement.
    async fn begin_locked(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

sql_store!(SqliteStore);
