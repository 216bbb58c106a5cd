//! API keys, found by the hash of the whole key.

use crate::domain::{ApiKey, ApiKeyOwner, RateLimit};
use crate::store::StoreError;
use crate::store::sql::scope_from_column;

/// `SELECT` of every column `ApiKeyRow` reads, followed by `$rest`
/// (sqlx takes only static SQL).
macro_rules! select_api_keys {
    ($rest:literal) => {
        concat!(
            "SELECT id, key_hash, prefix, start, name, scopes, owner_kind, owner, meta, \
             created_at, expires_at, revoked_at, rate_limit_count, rate_limit_window_secs, \
             use_count, last_used_at, rotated_from FROM api_keys ",
            $rest
        )
    };
}
pub(crate) use select_api_keys;

/// An `api_keys` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct ApiKeyRow {
    pub id: String,
    pub key_hash: String,
    pub prefix: String,
    pub start: String,
    pub name: String,
    pub scopes: String,
    pub owner_kind: String,
    pub owner: String,
    pub meta: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub rate_limit_count: Option<i64>,
    pub rate_limit_window_secs: Option<i64>,
    pub use_count: i64,
    pub last_used_at: Option<i64>,
    pub rotated_from: Option<String>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;

    /// A row that does not parse is corrupt data, never a key with fewer
    /// scopes or no owner.
    fn try_from(row: ApiKeyRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("api key {}: {what}", row.id));
        let owner = ApiKeyOwner::from_parts(&row.owner_kind, row.owner.clone())
            .ok_or_else(|| corrupt("owner_kind"))?;
        let meta = match serde_json::from_str(&row.meta) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err(corrupt("meta is not a JSON object")),
        };
        let rate_limit = match (row.rate_limit_count, row.rate_limit_window_secs) {
            (Some(count), Some(window_secs)) => Some(RateLimit { count, window_secs }),
            (None, None) => None,
            _ => return Err(corrupt("half a rate limit")),
        };
        Ok(ApiKey {
            scopes: scope_from_column(&row.scopes, "api key", &row.id)?,
            id: row.id,
            key_hash: row.key_hash,
            prefix: row.prefix,
            start: row.start,
            name: row.name,
            owner,
            meta,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            rate_limit,
            use_count: row.use_count,
            last_used_at: row.last_used_at,
            rotated_from: row.rotated_from,
        })
    }
}

/// Revokes every live key of one owner (`$1` kind, `$2` id) at `$3`: run
/// in the transaction that deletes the owner, so a deleted client's or
/// person's keys die with them.
pub(in crate::store) const REVOKE_KEYS_OF_OWNER: &str = "UPDATE api_keys SET revoked_at = $3 \
     WHERE owner_kind = $1 AND owner = $2 AND revoked_at IS NULL";

/// `ApiKeyStore`.
macro_rules! api_keys_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::{ApiKey, KeyUse};
            use $crate::store::sql::api_keys::{ApiKeyRow, select_api_keys};
            use $crate::store::sql::conflict;
            use $crate::store::{ApiKeyStore, StoreError};

            impl $store {
                async fn insert_api_key_in(
                    conn: &mut <<Self as $crate::store::sql::BackendDb>::Db as sqlx::Database>::Connection,
                    key: &ApiKey,
                ) -> Result<(), StoreError> {
                    let meta = serde_json::Value::Object(key.meta.clone()).to_string();
                    sqlx::query(
                        "INSERT INTO api_keys (id, key_hash, prefix, start, name, scopes, \
                         owner_kind, owner, meta, created_at, expires_at, revoked_at, \
                         rate_limit_count, rate_limit_window_secs, window_start, window_count, \
                         use_count, last_used_at, rotated_from) VALUES ($1, $2, $3, $4, $5, $6, \
                         $7, $8, $9, $10, $11, $12, $13, $14, $10, 0, $15, $16, $17)",
                    )
                    .bind(&key.id)
                    .bind(&key.key_hash)
                    .bind(&key.prefix)
                    .bind(&key.start)
                    .bind(&key.name)
                    .bind(key.scopes.to_string())
                    .bind(key.owner.kind())
                    .bind(key.owner.id())
                    .bind(meta)
                    .bind(key.created_at)
                    .bind(key.expires_at)
                    .bind(key.revoked_at)
                    .bind(key.rate_limit.map(|l| l.count))
                    .bind(key.rate_limit.map(|l| l.window_secs))
                    .bind(key.use_count)
                    .bind(key.last_used_at)
                    .bind(&key.rotated_from)
                    .execute(conn)
                    .await
                    .map_err(|e| conflict(e, "an API key with that id exists"))?;
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl ApiKeyStore for $store {
                async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    Self::insert_api_key_in(&mut *conn, key).await
                }

                async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
                    // What is read shows every use so far.
                    self.flush_api_key_uses().await?;
                    let row: Option<ApiKeyRow> =
                        sqlx::query_as(select_api_keys!("WHERE id = $1"))
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await?;
                    row.map(ApiKey::try_from).transpose()
                }

                async fn api_key_by_hash(
                    &self,
                    key_hash: &str,
                ) -> Result<Option<ApiKey>, StoreError> {
                    let row: Option<ApiKeyRow> = sqlx::query_as(select_api_keys!("WHERE key_hash = $1"))
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(ApiKey::try_from).transpose()
                }

                async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
                    // What is read shows every use so far.
                    self.flush_api_key_uses().await?;
                    let rows: Vec<ApiKeyRow> = sqlx::query_as(select_api_keys!("ORDER BY created_at, id"))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(ApiKey::try_from).collect()
                }

                async fn api_keys_page(
                    &self,
                    after_id: Option<&str>,
                    limit: i64,
                ) -> Result<Vec<ApiKey>, StoreError> {
                    self.flush_api_key_uses().await?;
                    let rows: Vec<ApiKeyRow> = sqlx::query_as(select_api_keys!(
                        "WHERE $1 IS NULL OR id > $1 ORDER BY id LIMIT $2"
                    ))
                    .bind(after_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(ApiKey::try_from).collect()
                }

                async fn revoke_api_key(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
                    let revoked = sqlx::query(
                        "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    Ok(revoked > 0)
                }

                async fn rotate_api_key(
                    &self,
                    old_id: &str,
                    replacement: &ApiKey,
                    old_expires_at: UnixTime,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let shortened = sqlx::query(
                        "UPDATE api_keys SET expires_at = CASE \
                         WHEN expires_at IS NULL OR expires_at > $2 THEN $2 ELSE expires_at END \
                         WHERE id = $1 AND revoked_at IS NULL \
                         AND NOT EXISTS (SELECT 1 FROM api_keys WHERE rotated_from = $1)",
                    )
                    .bind(old_id)
                    .bind(old_expires_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if shortened == 0 {
                        return Ok(false);
                    }
                    match Self::insert_api_key_in(&mut *tx, replacement).await {
                        // Another rotation of the same key won the race (the
                        // unique index on rotated_from): nothing is stored.
                        Err(StoreError::Conflict(_)) => return Ok(false),
                        other => other?,
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn record_api_key_use(
                    &self,
                    id: &str,
                    now: UnixTime,
                    window_secs: Option<i64>,
                ) -> Result<Option<KeyUse>, StoreError> {
                    let Some(window_secs) = window_secs else {
                        // No limit to hold: the hot path writes nothing.
                        if self.api_key_uses.add(id, now) {
                            self.flush_api_key_uses().await?;
                        }
                        return Ok(Some(KeyUse {
                            window_count: 0,
                            window_start: now,
                        }));
                    };
                    // One statement, so that concurrent uses on any number of
                    // instances are each counted once, and a key revoked or
                    // expired meanwhile is not used; it locks only this key's
                    // row. Every right-hand side reads the row as it was
                    // before this update (SQL semantics, both backends).
                    let row: Option<(i64, i64)> = sqlx::query_as(
                        "UPDATE api_keys SET \
                         window_start = CASE WHEN $3 IS NOT NULL AND $2 - window_start >= $3 \
                             THEN $2 ELSE window_start END, \
                         window_count = CASE WHEN $3 IS NOT NULL AND $2 - window_start >= $3 \
                             THEN 1 ELSE window_count + 1 END, \
                         use_count = use_count + 1, \
                         last_used_at = $2 \
                         WHERE id = $1 AND revoked_at IS NULL \
                         AND (expires_at IS NULL OR expires_at > $2) \
                         RETURNING window_count, window_start",
                    )
                    .bind(id)
                    .bind(now)
                    .bind(window_secs)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(|(window_count, window_start)| KeyUse {
                        window_count,
                        window_start,
                    }))
                }

                async fn flush_api_key_uses(&self) -> Result<(), StoreError> {
                    let uses = self.api_key_uses.take();
                    if uses.is_empty() {
                        return Ok(());
                    }
                    let written: Result<(), StoreError> = async {
                        let mut tx = self.pool.begin().await?;
                        for (id, count, last_used_at) in &uses {
                            sqlx::query(
                                "UPDATE api_keys SET use_count = use_count + $2, \
                                 last_used_at = CASE WHEN last_used_at IS NULL \
                                 OR last_used_at < $3 THEN $3 ELSE last_used_at END \
                                 WHERE id = $1",
                            )
                            .bind(id)
                            .bind(count)
                            .bind(last_used_at)
                            .execute(&mut *tx)
                            .await?;
                        }
                        tx.commit().await?;
                        Ok(())
                    }
                    .await;
                    if written.is_err() {
                        // Kept for the next try rather than lost.
                        self.api_key_uses.restore(uses);
                    }
                    written
                }
            }
        };
    };
}
pub(crate) use api_keys_sql;
