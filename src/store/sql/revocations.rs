//! The `jti` deny-list of revoked access tokens.

/// `RevocationStore`.
macro_rules! revocations_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::store::{RevocationStore, StoreError};

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
                    Ok(
                        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
                            .bind(now)
                            .execute(&self.pool)
                            .await?
                            .rows_affected(),
                    )
                }
            }
        };
    };
}
pub(crate) use revocations_sql;
