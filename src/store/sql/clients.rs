//! Registered clients; their RFC 7591 metadata is stored as JSON.

use crate::domain::{Client, ClientMetadata};
use crate::store::StoreError;

/// A `clients` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct ClientRow {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub metadata: String,
    pub created_at: i64,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    /// Metadata that is not valid JSON for `ClientMetadata` (including a
    /// scope that does not parse) is corrupt, never a default.
    fn try_from(row: ClientRow) -> Result<Self, StoreError> {
        let metadata: ClientMetadata = serde_json::from_str(&row.metadata)
            .map_err(|e| StoreError::Corrupt(format!("client {}: metadata: {e}", row.client_id)))?;
        Ok(Client {
            client_id: row.client_id,
            secret_hash: row.secret_hash,
            metadata,
            created_at: row.created_at,
        })
    }
}

/// `ClientStore`. Writes bump the `clients` change counter
/// (`change_counters_sql!`) in the same transaction.
macro_rules! clients_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::Client;
            use $crate::store::sql::clients::ClientRow;
            use $crate::store::{ClientStore, StoreError};

            #[async_trait::async_trait]
            impl ClientStore for $store {
                async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
                    let metadata = serde_json::to_string(&client.metadata)
                        .map_err(|e| StoreError::Unstorable(format!("client metadata: {e}")))?;
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
                        "SELECT client_id, secret_hash, metadata, created_at FROM clients \
                         WHERE client_id = $1",
                    )
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Client::try_from).transpose()
                }

                async fn clients(&self) -> Result<Vec<Client>, StoreError> {
                    let rows: Vec<ClientRow> = sqlx::query_as(
                        "SELECT client_id, secret_hash, metadata, created_at FROM clients \
                         ORDER BY created_at, client_id",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(Client::try_from).collect()
                }

                async fn delete_client(
                    &self,
                    client_id: &str,
                    now: $crate::clock::UnixTime,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if deleted > 0 {
                        // Issue 7.6: its grants end with it, and with them
                        // every refresh and access token issued under them.
                        sqlx::query(
                            "UPDATE grants SET revoked_at = $2 \
                             WHERE client_id = $1 AND revoked_at IS NULL",
                        )
                        .bind(client_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        // And so do the API keys it owns.
                        sqlx::query($crate::store::sql::api_keys::REVOKE_KEYS_OF_OWNER)
                            .bind("client")
                            .bind(client_id)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        // The resources it owned are nobody's now: its
                        // token-exchange rights end with it.
                        let disowned = sqlx::query(
                            "UPDATE resources SET owner_client_id = NULL \
                             WHERE owner_client_id = $1",
                        )
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if disowned > 0 {
                            Self::bump(&mut tx, "resources").await?;
                        }
                        Self::bump(&mut tx, "clients").await?;
                    }
                    tx.commit().await?;
                    Ok(deleted > 0)
                }

                async fn clients_page(
                    &self,
                    after: Option<(UnixTime, &str)>,
                    limit: i64,
                ) -> Result<Vec<Client>, StoreError> {
                    let rows: Vec<ClientRow> = match after {
                        None => {
                            sqlx::query_as(
                                "SELECT client_id, secret_hash, metadata, created_at FROM clients \
                                 ORDER BY created_at, client_id LIMIT $1",
                            )
                            .bind(limit)
                            .fetch_all(&self.pool)
                            .await?
                        }
                        Some((created_at, client_id)) => {
                            sqlx::query_as(
                                "SELECT client_id, secret_hash, metadata, created_at FROM clients \
                                 WHERE created_at > $1 OR (created_at = $1 AND client_id > $2) \
                                 ORDER BY created_at, client_id LIMIT $3",
                            )
                            .bind(created_at)
                            .bind(client_id)
                            .bind(limit)
                            .fetch_all(&self.pool)
                            .await?
                        }
                    };
                    rows.into_iter().map(Client::try_from).collect()
                }

                async fn insert_client_with_registration_token(
                    &self,
                    client: &Client,
                    registration_token_hash: &str,
                ) -> Result<(), StoreError> {
                    let metadata = serde_json::to_string(&client.metadata)
                        .map_err(|e| StoreError::Unstorable(format!("client metadata: {e}")))?;
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(
                        "INSERT INTO clients \
                         (client_id, secret_hash, metadata, created_at, registration_token_hash) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&client.client_id)
                    .bind(&client.secret_hash)
                    .bind(metadata)
                    .bind(client.created_at)
                    .bind(registration_token_hash)
                    .execute(&mut *tx)
                    .await?;
                    Self::bump(&mut tx, "clients").await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn registration_token_hash(
                    &self,
                    client_id: &str,
                ) -> Result<Option<String>, StoreError> {
                    let hash: Option<Option<String>> = sqlx::query_scalar(
                        "SELECT registration_token_hash FROM clients WHERE client_id = $1",
                    )
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(hash.flatten())
                }

                async fn replace_client(&self, client: &Client) -> Result<bool, StoreError> {
                    let metadata = serde_json::to_string(&client.metadata)
                        .map_err(|e| StoreError::Unstorable(format!("client metadata: {e}")))?;
                    let mut tx = self.pool.begin().await?;
                    let replaced = sqlx::query(
                        "UPDATE clients SET secret_hash = $2, metadata = $3 WHERE client_id = $1",
                    )
                    .bind(&client.client_id)
                    .bind(&client.secret_hash)
                    .bind(metadata)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if replaced > 0 {
                        Self::bump(&mut tx, "clients").await?;
                    }
                    tx.commit().await?;
                    Ok(replaced > 0)
                }
            }
        };
    };
}
pub(crate) use clients_sql;
