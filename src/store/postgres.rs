//! PostgreSQL backend: many Tessera instances share one database.
//! Read-then-write sections (key rotation, migrations) take a transaction
//! scoped advisory lock, so exactly one instance acts at a time.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use super::migrate::{self, run_migrations};
use super::sql::{
    BackendDb, api_keys_sql, audit_sql, backchannel_sql, change_counters_sql,
    client_assertions_sql, clients_sql, consents_sql, device_codes_sql, grants_sql,
    interactions_sql, keys_sql, login_throttle_sql, pool_use, pushed_requests_sql, resources_sql,
    revocations_sql, sessions_sql, users_sql,
};
use super::{PendingKeyUses, PoolMonitor, PoolUse, StoreError};

/// Advisory lock id for schema and key changes ("tessera" in ASCII).
const LOCK_ID: i64 = 0x0074_6573_7365_7261;

pub struct PostgresStore {
    pool: PgPool,
    /// Uses of API keys without a rate limit, written in batches.
    api_key_uses: PendingKeyUses,
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
        let store = Self {
            pool,
            api_key_uses: PendingKeyUses::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_locked().await?;
        sqlx::query(migrate::CREATE_TABLE).execute(&mut *tx).await?;
        // Databases migrated before checksums were recorded lack the column.
        // Looked up first (the table resolved through search_path, as every
        // query here), so that a start needs no ALTER once it exists.
        let has_checksum: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute \
             WHERE attrelid = 'tessera_migrations'::regclass AND attname = 'checksum' \
             AND NOT attisdropped)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if !has_checksum {
            sqlx::query("ALTER TABLE tessera_migrations ADD COLUMN checksum TEXT")
                .execute(&mut *tx)
                .await?;
        }
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

impl PoolMonitor for PostgresStore {
    fn pool_use(&self) -> PoolUse {
        pool_use(&self.pool)
    }
}

api_keys_sql!(PostgresStore);
change_counters_sql!(PostgresStore);
clients_sql!(PostgresStore);
client_assertions_sql!(PostgresStore);
resources_sql!(PostgresStore);
keys_sql!(PostgresStore);
revocations_sql!(PostgresStore);
users_sql!(PostgresStore);
grants_sql!(PostgresStore);
consents_sql!(PostgresStore);
login_throttle_sql!(PostgresStore);
sessions_sql!(PostgresStore);
interactions_sql!(PostgresStore);
pushed_requests_sql!(PostgresStore);
device_codes_sql!(PostgresStore);
audit_sql!(PostgresStore);
backchannel_sql!(PostgresStore, " FOR UPDATE SKIP LOCKED");
