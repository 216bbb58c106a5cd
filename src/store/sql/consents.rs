//! Remembered consent: the scopes a person has granted a client.

use super::scope_from_column;
use crate::store::{Consent, StoreError};

/// A `consents` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct ConsentRow {
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    pub updated_at: i64,
}

impl TryFrom<ConsentRow> for Consent {
    type Error = StoreError;

    fn try_from(row: ConsentRow) -> Result<Self, StoreError> {
        let scope = scope_from_column(&row.scope, "consent of", &row.client_id)?;
        Ok(Consent {
            sub: row.sub,
            client_id: row.client_id,
            scope,
            updated_at: row.updated_at,
        })
    }
}

/// `ConsentStore`.
macro_rules! consents_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::ScopeSet;
            use $crate::store::sql::consents::ConsentRow;
            use $crate::store::sql::scope_from_column;
            use $crate::store::{Consent, ConsentStore, StoreError};

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

                async fn consents_of_user(&self, sub: &str) -> Result<Vec<Consent>, StoreError> {
                    let rows: Vec<ConsentRow> = sqlx::query_as(
                        "SELECT sub, client_id, scope, updated_at FROM consents WHERE sub = $1 \
                         ORDER BY client_id",
                    )
                    .bind(sub)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(Consent::try_from).collect()
                }

                async fn revoke_consents(
                    &self,
                    sub: &str,
                    client_id: Option<&str>,
                    now: UnixTime,
                ) -> Result<u64, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let deleted = sqlx::query(
                        "DELETE FROM consents WHERE sub = $1 AND ($2 IS NULL OR client_id = $2)",
                    )
                    .bind(sub)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    sqlx::query(
                        "UPDATE grants SET revoked_at = $3 WHERE sub = $1 \
                         AND ($2 IS NULL OR client_id = $2) AND revoked_at IS NULL",
                    )
                    .bind(sub)
                    .bind(client_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(deleted)
                }
            }
        };
    };
}
pub(crate) use consents_sql;
