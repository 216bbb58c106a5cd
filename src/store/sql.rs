//! The SQL both backends share. Placeholders are `$N`, which SQLite and
//! PostgreSQL both accept; the schema is the same on both. A backend type
//! provides `pool` and `begin_locked()`, then invokes `sql_store!`.

use crate::jose::{KeyState, SigningAlg, SigningKeyRecord};
use crate::oauth::client::{Client, ClientMetadata};

use super::StoreError;

pub(super) type ClientRow = (String, Option<String>, String, i64);

pub(super) fn client_from_row(row: ClientRow) -> Result<Client, StoreError> {
    let (client_id, secret_hash, metadata, created_at) = row;
    let metadata: ClientMetadata = serde_json::from_str(&metadata)
        .map_err(|e| StoreError::Corrupt(format!("client {client_id}: {e}")))?;
    Ok(Client {
        client_id,
        secret_hash,
        metadata,
        created_at,
    })
}

pub(super) type KeyRow = (
    String,
    String,
    String,
    Vec<u8>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

pub(super) const KEY_COLUMNS: &str =
    "kid, alg, state, private_key, public_jwk, created_at, activated_at, retired_at";

pub(super) fn key_from_row(row: KeyRow) -> Result<SigningKeyRecord, StoreError> {
    let (kid, alg, state, private_key, public_jwk, created_at, activated_at, retired_at) = row;
    Ok(SigningKeyRecord {
        alg: SigningAlg::parse(&alg)
            .ok_or_else(|| StoreError::Corrupt(format!("key {kid}: algorithm {alg:?}")))?,
        state: KeyState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("key {kid}: state {state:?}")))?,
        kid,
        private_key,
        public_jwk,
        created_at,
        activated_at,
        retired_at,
    })
}

macro_rules! sql_store {
    ($store:ty) => {
        impl $store {
            async fn bump(
                tx: &mut sqlx::Transaction<'_, <Self as BackendDb>::Db>,
                counter: &'static str,
            ) -> Result<(), StoreError> {
                sqlx::query("UPDATE change_counters SET version = version + 1 WHERE name = $1")
                    .bind(counter)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl ClientStore for $store {
            async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
                let metadata = serde_json::to_string(&client.metadata)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO clients (client_id, secret_hash, metadata, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&client.client_id)
                .bind(&client.secret_hash)
                .bind(metadata)
                .bind(client.created_at)
                .execute(&mut *tx)
                .await?;
                Self::bump(&mut tx, "clients").await?;
                tx.commit().await?;
                Ok(())
            }

            async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
                let row: Option<ClientRow> = sqlx::query_as(
                    "SELECT client_id, secret_hash, metadata, created_at FROM clients WHERE client_id = $1",
                )
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(client_from_row).transpose()
            }

            async fn clients(&self) -> Result<Vec<Client>, StoreError> {
                let rows: Vec<ClientRow> = sqlx::query_as(
                    "SELECT client_id, secret_hash, metadata, created_at FROM clients \
                     ORDER BY created_at, client_id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(client_from_row).collect()
            }

            async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted > 0 {
                    Self::bump(&mut tx, "clients").await?;
                }
                tx.commit().await?;
                Ok(deleted > 0)
            }
        }

        #[async_trait::async_trait]
        impl KeyStore for $store {
            async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
                let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(key_from_row).collect()
            }

            async fn update_signing_keys(
                &self,
                plan: &KeyPlanner<'_>,
            ) -> Result<KeyChanges, StoreError> {
                let mut tx = self.begin_locked().await?;
                let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"
                )))
                .fetch_all(&mut *tx)
                .await?;
                let keys = rows
                    .into_iter()
                    .map(key_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                let changes = plan(&keys)?;
                if changes.is_empty() {
                    tx.rollback().await?;
                    return Ok(changes);
                }
                for kid in &changes.delete {
                    sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                        .bind(kid)
                        .execute(&mut *tx)
                        .await?;
                }
                for k in &changes.update {
                    sqlx::query(
                        "UPDATE signing_keys SET state = $2, activated_at = $3, retired_at = $4 \
                         WHERE kid = $1",
                    )
                    .bind(&k.kid)
                    .bind(k.state.as_str())
                    .bind(k.activated_at)
                    .bind(k.retired_at)
                    .execute(&mut *tx)
                    .await?;
                }
                for k in &changes.insert {
                    sqlx::query(
                        "INSERT INTO signing_keys (kid, alg, state, private_key, public_jwk, \
                         created_at, activated_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&k.kid)
                    .bind(k.alg.as_str())
                    .bind(k.state.as_str())
                    .bind(&k.private_key)
                    .bind(&k.public_jwk)
                    .bind(k.created_at)
                    .bind(k.activated_at)
                    .bind(k.retired_at)
                    .execute(&mut *tx)
                    .await?;
                }
                Self::bump(&mut tx, "keys").await?;
                tx.commit().await?;
                Ok(changes)
            }
        }

        #[async_trait::async_trait]
        impl RevocationStore for $store {
            async fn revoke_access_token(
                &self,
                jti: &str,
                expires_at: UnixTime,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (jti) DO NOTHING",
                )
                .bind(jti)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT expires_at FROM revoked_tokens WHERE jti = $1")
                        .bind(jti)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(found.is_some())
            }

            async fn prune_revocations(&self, now: UnixTime) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl ChangeStore for $store {
            async fn change_versions(&self) -> Result<ChangeVersions, StoreError> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT name, version FROM change_counters")
                        .fetch_all(&self.pool)
                        .await?;
                let mut v = ChangeVersions::default();
                for (name, version) in rows {
                    match name.as_str() {
                        "clients" => v.clients = version,
                        "keys" => v.keys = version,
                        _ => {}
                    }
                }
                Ok(v)
            }
        }
    };
}
pub(super) use sql_store;

/// Names the sqlx database type of a backend, for the shared SQL.
pub(super) trait BackendDb {
    type Db: sqlx::Database;
}
