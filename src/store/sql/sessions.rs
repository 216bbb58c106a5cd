//! Server-side browser sessions. The `id` column holds the SHA-256 (hex) of
//! the session id, never the id itself (like every other secret), so a
//! copy of the database lets nobody sign in.

/// `SessionRecordStore`: callers pass the raw id; only its hash reaches SQL.
macro_rules! sessions_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::crypto::hash_secret;
            use $crate::store::{SessionRecordStore, StoreError};

            #[async_trait::async_trait]
            impl SessionRecordStore for $store {
                async fn create_session(
                    &self,
                    id: &str,
                    data: &[u8],
                    expires_at: UnixTime,
                ) -> Result<bool, StoreError> {
                    Ok(sqlx::query(
                        "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(hash_secret(id))
                    .bind(data)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                        == 1)
                }

                async fn save_session(
                    &self,
                    id: &str,
                    data: &[u8],
                    expires_at: UnixTime,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO UPDATE \
                         SET data = excluded.data, expires_at = excluded.expires_at",
                    )
                    .bind(hash_secret(id))
                    .bind(data)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn load_session(
                    &self,
                    id: &str,
                    now: UnixTime,
                ) -> Result<Option<Vec<u8>>, StoreError> {
                    Ok(sqlx::query_scalar(
                        "SELECT data FROM sessions WHERE id = $1 AND expires_at > $2",
                    )
                    .bind(hash_secret(id))
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM sessions WHERE id = $1")
                        .bind(hash_secret(id))
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn prune_sessions(&self, now: UnixTime) -> Result<u64, StoreError> {
                    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                        .bind(now)
                        .execute(&self.pool)
                        .await?
                        .rows_affected())
                }
            }
        };
    };
}
pub(crate) use sessions_sql;
