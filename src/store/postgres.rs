//! PostgreSQL backend: many Tessera instances share one database.
//! Read-then-write sections (key rotation, migrations) take a transaction
//! scoped advisory lock, so exactly one instance acts at a time.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use super::migrate::{self, run_migrations};
use super::sql::*;
use super::*;
use crate::domain::*;

/// Advisory lock id for schema and key changes ("tessera" in ASCII).
const LOCK_ID: i64 = 0x0074_6573_7365_7261;

pub struct PostgresStore {
    pool: PgPool,
}

impl BackendDb for PostgresStore {
    type Db = Postgres;
}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_locked().await?;
        sqlx::query(migrate::CREATE_TABLE).execute(&mut *tx).await?;
        run_migrations!(tx, migrate::POSTGRES);
        tx.commit().await?;
        Ok(())
    }

    async fn begin_locked(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOCK_ID)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

sql_store!(PostgresStore);
