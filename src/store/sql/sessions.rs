//! Server-side browser sessions. The `id` column holds the SHA-256 (hex) of
//! the session id, never the id itself (like every other secret), so a
//! copy of the database lets nobody sign in. The `sub` column names the
//! signed-in person, so that a password change can end their sessions;
//! the `sid` column its OIDC session id, so that ending a session tells
//! the clients that got tokens in it (`sql::backchannel`).

/// Ends every session of `$1` except the one whose id hash is `$2` (none
/// when `$2` is NULL). Shared with `UserStore::set_password`, which runs it
/// in its own transaction.
pub(in crate::store) const DELETE_SESSIONS_OF_SUB: &str =
    "DELETE FROM sessions WHERE sub = $1 AND ($2 IS NULL OR id <> $2)";

/// `DELETE_SESSIONS_OF_SUB`, answering the OIDC `sid` of each session it
/// ends (NULL for rows written before schema 10), so that the clients that
/// got tokens in them are owed Logout Tokens (`sql::backchannel`).
pub(in crate::store) const END_SESSIONS_OF_SUB: &str =
    "DELETE FROM sessions WHERE sub = $1 AND ($2 IS NULL OR id <> $2) RETURNING sid";

/// `SessionRecordStore`: callers pass the raw id; only its hash reaches SQL.
macro_rules! sessions_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::crypto::hash_secret;
            use $crate::store::sql::sessions::DELETE_SESSIONS_OF_SUB;
            use $crate::store::{SessionRecordStore, StoreError};

            #[async_trait::async_trait]
            impl SessionRecordStore for $store {
                async fn create_session(
                    &self,
                    id: &str,
                    sub: Option<&str>,
                    sid: Option<&str>,
                    data: &[u8],
                    expires_at: UnixTime,
                ) -> Result<bool, StoreError> {
                    Ok(sqlx::query(
                        "INSERT INTO sessions (id, sub, sid, data, expires_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(hash_secret(id))
                    .bind(sub)
                    .bind(sid)
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
                    sub: Option<&str>,
                    sid: Option<&str>,
                    data: &[u8],
                    expires_at: UnixTime,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO sessions (id, sub, sid, data, expires_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE \
                         SET sub = excluded.sub, sid = excluded.sid, data = excluded.data, \
                         expires_at = excluded.expires_at",
                    )
                    .bind(hash_secret(id))
                    .bind(sub)
                    .bind(sid)
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

                async fn delete_sessions_of(
                    &self,
                    sub: &str,
                    keep: Option<&str>,
                ) -> Result<u64, StoreError> {
                    Ok(sqlx::query(DELETE_SESSIONS_OF_SUB)
                        .bind(sub)
                        .bind(keep.map(hash_secret))
                        .execute(&self.pool)
                        .await?
                        .rows_affected())
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
