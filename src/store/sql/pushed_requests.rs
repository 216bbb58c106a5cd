//! Pushed authorization requests (RFC 9126), kept in the database so that
//! the instance the browser reaches need not be the one the client pushed
//! to.

use crate::domain::PushedRequest;

/// A `pushed_authorization_requests` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct PushedRequestRow {
    pub request_uri_hash: String,
    pub client_id: String,
    pub params: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<PushedRequestRow> for PushedRequest {
    fn from(row: PushedRequestRow) -> Self {
        PushedRequest {
            request_uri_hash: row.request_uri_hash,
            client_id: row.client_id,
            params: row.params,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

/// `PushedRequestStore`.
macro_rules! pushed_requests_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::PushedRequest;
            use $crate::store::sql::pushed_requests::PushedRequestRow;
            use $crate::store::{PushedRequestStore, StoreError};

            #[async_trait::async_trait]
            impl PushedRequestStore for $store {
                async fn insert_pushed_request(&self, r: &PushedRequest) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO pushed_authorization_requests (request_uri_hash, \
                         client_id, params, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&r.request_uri_hash)
                    .bind(&r.client_id)
                    .bind(&r.params)
                    .bind(r.created_at)
                    .bind(r.expires_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn take_pushed_request(
                    &self,
                    request_uri_hash: &str,
                    client_id: &str,
                    now: UnixTime,
                ) -> Result<Option<PushedRequest>, StoreError> {
                    // Racing DELETEs of one row: one removes and returns it,
                    // the others find nothing. Another client's attempt, or
                    // a late one, leaves the row alone.
                    let row: Option<PushedRequestRow> = sqlx::query_as(
                        "DELETE FROM pushed_authorization_requests \
                         WHERE request_uri_hash = $1 AND client_id = $2 AND expires_at > $3 \
                         RETURNING request_uri_hash, client_id, params, created_at, expires_at",
                    )
                    .bind(request_uri_hash)
                    .bind(client_id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(PushedRequest::from))
                }

                async fn prune_pushed_requests(&self, now: UnixTime) -> Result<u64, StoreError> {
                    Ok(sqlx::query(
                        "DELETE FROM pushed_authorization_requests WHERE expires_at <= $1",
                    )
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
                }
            }
        };
    };
}
pub(crate) use pushed_requests_sql;
