//! Interactions: validated authorization requests waiting for the person,
//! kept in the database so that any instance can continue them.

use crate::domain::Interaction;
use crate::store::StoreError;

/// An `interactions` row; `amr` is space-separated.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct InteractionRow {
    pub id: String,
    pub client_id: String,
    pub request: String,
    pub browser_hash: String,
    pub csrf_hash: String,
    pub sub: Option<String>,
    pub auth_time: Option<i64>,
    pub amr: String,
    pub acr: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<InteractionRow> for Interaction {
    fn from(row: InteractionRow) -> Self {
        Interaction {
            id: row.id,
            client_id: row.client_id,
            request: row.request,
            browser_hash: row.browser_hash,
            csrf_hash: row.csrf_hash,
            sub: row.sub,
            auth_time: row.auth_time,
            amr: row
                .amr
                .split(' ')
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect(),
            acr: row.acr,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

/// The stored form of `amr`: its values space-separated. A value that is
/// empty or holds whitespace would not read back as itself, so it is
/// refused (RFC 8176 values never do).
pub(in crate::store) fn amr_column(amr: &[String]) -> Result<String, StoreError> {
    if let Some(bad) = amr
        .iter()
        .find(|m| m.is_empty() || m.contains(char::is_whitespace))
    {
        return Err(StoreError::Unstorable(format!("the amr value {bad:?}")));
    }
    Ok(amr.join(" "))
}

/// `InteractionStore`.
macro_rules! interactions_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::Interaction;
            use $crate::store::sql::interactions::{InteractionRow, amr_column};
            use $crate::store::{InteractionStore, StoreError};

            #[async_trait::async_trait]
            impl InteractionStore for $store {
                async fn insert_interaction(&self, i: &Interaction) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO interactions (id, client_id, request, browser_hash, \
                         csrf_hash, sub, auth_time, amr, acr, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(&i.id)
                    .bind(&i.client_id)
                    .bind(&i.request)
                    .bind(&i.browser_hash)
                    .bind(&i.csrf_hash)
                    .bind(&i.sub)
                    .bind(i.auth_time)
                    .bind(amr_column(&i.amr)?)
                    .bind(&i.acr)
                    .bind(i.created_at)
                    .bind(i.expires_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn interaction(
                    &self,
                    id: &str,
                    now: UnixTime,
                ) -> Result<Option<Interaction>, StoreError> {
                    let row: Option<InteractionRow> = sqlx::query_as(
                        "SELECT id, client_id, request, browser_hash, csrf_hash, sub, auth_time, \
                         amr, acr, created_at, expires_at FROM interactions \
                         WHERE id = $1 AND expires_at > $2",
                    )
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(Interaction::from))
                }

                async fn record_interaction_login(
                    &self,
                    id: &str,
                    sub: &str,
                    auth_time: UnixTime,
                    amr: &[String],
                    acr: Option<&str>,
                    now: UnixTime,
                ) -> Result<bool, StoreError> {
                    Ok(sqlx::query(
                        "UPDATE interactions SET sub = $2, auth_time = $3, amr = $4, acr = $5 \
                         WHERE id = $1 AND expires_at > $6",
                    )
                    .bind(id)
                    .bind(sub)
                    .bind(auth_time)
                    .bind(amr_column(amr)?)
                    .bind(acr)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                        == 1)
                }

                async fn finish_interaction(&self, id: &str) -> Result<bool, StoreError> {
                    // Racing DELETEs of one row: one removes it, the others
                    // (after waiting on its row lock, or on SQLite's single
                    // writer) find nothing to delete.
                    Ok(sqlx::query("DELETE FROM interactions WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await?
                        .rows_affected()
                        == 1)
                }

                async fn prune_interactions(&self, now: UnixTime) -> Result<u64, StoreError> {
                    Ok(
                        sqlx::query("DELETE FROM interactions WHERE expires_at <= $1")
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
pub(crate) use interactions_sql;
