//! Registered resources (APIs, RFC 8707).

use super::{conflict, scope_from_column};
use crate::domain::Resource;
use crate::jose::SigningAlg;
use crate::store::StoreError;

/// A `resources` row; `scopes` space-separated.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct ResourceRow {
    pub identifier: String,
    pub name: String,
    pub scopes: String,
    pub access_token_ttl_secs: Option<i64>,
    pub signing_alg: Option<String>,
    pub secret_hash: Option<String>,
    pub owner_client_id: Option<String>,
    pub created_at: i64,
}

impl TryFrom<ResourceRow> for Resource {
    type Error = StoreError;

    /// A scope or algorithm that does not parse is corrupt, never a default.
    fn try_from(row: ResourceRow) -> Result<Self, StoreError> {
        let scopes = scope_from_column(&row.scopes, "resource", &row.identifier)?;
        let signing_alg = row
            .signing_alg
            .map(|a| {
                SigningAlg::parse(&a).ok_or_else(|| {
                    StoreError::Corrupt(format!("resource {}: signing_alg {a:?}", row.identifier))
                })
            })
            .transpose()?;
        Ok(Resource {
            identifier: row.identifier,
            name: row.name,
            scopes,
            access_token_ttl_secs: row.access_token_ttl_secs,
            signing_alg,
            secret_hash: row.secret_hash,
            owner_client_id: row.owner_client_id,
            created_at: row.created_at,
        })
    }
}

/// A taken identifier, as `StoreError::Conflict`.
pub(in crate::store) fn identifier_taken(e: sqlx::Error, identifier: &str) -> StoreError {
    conflict(
        e,
        &format!("a resource with identifier {identifier:?} already exists"),
    )
}

/// `ResourceStore`. Writes bump the `resources` change counter
/// (`change_counters_sql!`) in the same transaction.
macro_rules! resources_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::domain::Resource;
            use $crate::store::sql::resources::{ResourceRow, identifier_taken};
            use $crate::store::{ResourceStore, StoreError};

            #[async_trait::async_trait]
            impl ResourceStore for $store {
                async fn insert_resource(&self, r: &Resource) -> Result<(), StoreError> {
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(
                        "INSERT INTO resources (identifier, name, scopes, \
                         access_token_ttl_secs, signing_alg, secret_hash, owner_client_id, \
                         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&r.identifier)
                    .bind(&r.name)
                    .bind(r.scopes.to_string())
                    .bind(r.access_token_ttl_secs)
                    .bind(r.signing_alg.map(|a| a.as_str()))
                    .bind(&r.secret_hash)
                    .bind(&r.owner_client_id)
                    .bind(r.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| identifier_taken(e, &r.identifier))?;
                    Self::bump(&mut tx, "resources").await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn resource(&self, identifier: &str) -> Result<Option<Resource>, StoreError> {
                    let row: Option<ResourceRow> = sqlx::query_as(
                        "SELECT identifier, name, scopes, access_token_ttl_secs, signing_alg, \
                         secret_hash, owner_client_id, created_at FROM resources WHERE identifier = $1",
                    )
                    .bind(identifier)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Resource::try_from).transpose()
                }

                async fn resources(&self) -> Result<Vec<Resource>, StoreError> {
                    let rows: Vec<ResourceRow> = sqlx::query_as(
                        "SELECT identifier, name, scopes, access_token_ttl_secs, signing_alg, \
                         secret_hash, owner_client_id, created_at FROM resources ORDER BY identifier",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(Resource::try_from).collect()
                }

                async fn resources_page(
                    &self,
                    after: Option<&str>,
                    limit: i64,
                ) -> Result<Vec<Resource>, StoreError> {
                    // '' sorts before every identifier, which is never empty.
                    let rows: Vec<ResourceRow> = sqlx::query_as(
                        "SELECT identifier, name, scopes, access_token_ttl_secs, signing_alg, \
                         secret_hash, owner_client_id, created_at FROM resources WHERE identifier > $1 \
                         ORDER BY identifier LIMIT $2",
                    )
                    .bind(after.unwrap_or(""))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(Resource::try_from).collect()
                }

                async fn delete_resource(&self, identifier: &str) -> Result<bool, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let deleted = sqlx::query("DELETE FROM resources WHERE identifier = $1")
                        .bind(identifier)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if deleted > 0 {
                        Self::bump(&mut tx, "resources").await?;
                    }
                    tx.commit().await?;
                    Ok(deleted > 0)
                }
            }
        };
    };
}
pub(crate) use resources_sql;
