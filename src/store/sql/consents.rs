//! Remembered consent: the scopes a person has granted a client.

/// `ConsentStore`.
macro_rules! consents_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::ScopeSet;
            use $crate::store::sql::scope_from_column;
            use $crate::store::{ConsentStore, StoreError};

            #[async_trait::async_trait]
            impl ConsentStore for $store {
                async fn consent(
                    &self,
                    sub: &str,
                    client_id: &str,
                ) -> Result<Option<ScopeSet>, StoreError> {
                    let scope: Option<String> = sqlx::query_scalar(
                        "SELECT scope FROM consents WHERE sub = $1 AND client_id = $2",
                    )
                    .bind(sub)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    scope
                        .map(|s| scope_from_column(&s, "consent of", client_id))
                        .transpose()
                }

                async fn save_consent(
                    &self,
                    sub: &str,
                    client_id: &str,
                    scope: &ScopeSet,
                    now: UnixTime,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO consents (sub, client_id, scope, updated_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (sub, client_id) DO UPDATE \
                         SET scope = excluded.scope, updated_at = excluded.updated_at",
                    )
                    .bind(sub)
                    .bind(client_id)
                    .bind(scope.to_string())
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }
            }
        };
    };
}
pub(crate) use consents_sql;
