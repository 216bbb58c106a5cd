//! The `jti`s of accepted client assertions (`private_key_jwt`), kept
//! until they expire so that each assertion is used once.

/// `ClientAssertionStore`.
macro_rules! client_assertions_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::store::{ClientAssertionStore, StoreError};

            #[async_trait::async_trait]
            impl ClientAssertionStore for $store {
                async fn use_client_assertion(
                    &self,
                    client_id: &str,
                    jti_hash: &str,
                    expires_at: UnixTime,
                    now: UnixTime,
                ) -> Result<bool, StoreError> {
                    // A live row makes the statement change nothing (a
                    // replay); a row that expired but was not pruned yet is
                    // taken over. One statement, so concurrent uses of one
                    // jti (on any instance) have exactly one winner.
                    let changed = sqlx::query(
                        "INSERT INTO client_assertion_jtis (client_id, jti_hash, expires_at) \
                         VALUES ($1, $2, $3) \
                         ON CONFLICT (client_id, jti_hash) DO UPDATE \
                         SET expires_at = excluded.expires_at \
                         WHERE client_assertion_jtis.expires_at <= $4",
                    )
                    .bind(client_id)
                    .bind(jti_hash)
                    .bind(expires_at)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    Ok(changed == 1)
                }

                async fn prune_client_assertions(&self, now: UnixTime) -> Result<u64, StoreError> {
                    Ok(
                        sqlx::query("DELETE FROM client_assertion_jtis WHERE expires_at <= $1")
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
pub(crate) use client_assertions_sql;
