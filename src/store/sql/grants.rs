//! Grants (refresh families) with their authorization codes and refresh
//! tokens: one aggregate, because revoking a grant ends all of them.

use super::scope_from_column;
use crate::domain::{AuthorizationCode, Grant, RefreshToken};
use crate::store::StoreError;

/// The stored form of a grant's resources: space-separated. An identifier
/// that is empty or holds whitespace would not read back as itself, so it
/// is refused (`oauth::resource` never lets one through).
pub(in crate::store) fn resources_column(resources: &[String]) -> Result<String, StoreError> {
    if let Some(bad) = resources
        .iter()
        .find(|r| r.is_empty() || r.contains(char::is_whitespace))
    {
        return Err(StoreError::Unstorable(format!("the resource {bad:?}")));
    }
    Ok(resources.join(" "))
}

/// Inserts grant `$g` through `$executor` (a transaction: a grant is
/// always stored together with what it was granted through, a code or a
/// device code).
macro_rules! insert_grant {
    ($executor:expr, $g:expr) => {{
        let g: &$crate::domain::Grant = $g;
        sqlx::query(
            "INSERT INTO grants (grant_id, client_id, sub, scope, auth_time, sid, \
             created_at, expires_at, revoked_at, resources) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&g.grant_id)
        .bind(&g.client_id)
        .bind(&g.sub)
        .bind(g.scope.to_string())
        .bind(g.auth_time)
        .bind(&g.sid)
        .bind(g.created_at)
        .bind(g.expires_at)
        .bind(g.revoked_at)
        .bind($crate::store::sql::grants::resources_column(&g.resources)?)
        .execute($executor)
        .await?;
    }};
}
pub(crate) use insert_grant;

/// A `grants` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct GrantRow {
    pub grant_id: String,
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub auth_time: i64,
    pub sid: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Space-separated resource identifiers (RFC 8707), '' for none.
    pub resources: String,
}

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;

    /// A scope that does not parse is corrupt, never an empty scope.
    fn try_from(row: GrantRow) -> Result<Self, StoreError> {
        let scope = scope_from_column(&row.scope, "grant", &row.grant_id)?;
        Ok(Grant {
            grant_id: row.grant_id,
            client_id: row.client_id,
            sub: row.sub,
            scope,
            auth_time: row.auth_time,
            sid: row.sid,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            resources: row
                .resources
                .split(' ')
                .filter(|r| !r.is_empty())
                .map(String::from)
                .collect(),
        })
    }
}

/// An `authorization_codes` row, without `consumed_at`.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<CodeRow> for AuthorizationCode {
    fn from(row: CodeRow) -> Self {
        AuthorizationCode {
            code_hash: row.code_hash,
            grant_id: row.grant_id,
            client_id: row.client_id,
            redirect_uri: row.redirect_uri,
            code_challenge: row.code_challenge,
            nonce: row.nonce,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

/// What `consume_code` needs to tell a replay from an unknown code.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct CodeUseRow {
    pub grant_id: String,
    pub client_id: String,
    pub consumed_at: Option<i64>,
}

/// A `refresh_tokens` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct RefreshRow {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
}

impl From<RefreshRow> for RefreshToken {
    fn from(row: RefreshRow) -> Self {
        RefreshToken {
            token_hash: row.token_hash,
            grant_id: row.grant_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            rotated_at: row.rotated_at,
        }
    }
}

/// `GrantStore`.
macro_rules! grants_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::{
                AuthorizationCode, CodeRedemption, Grant, RefreshRotation, RefreshToken,
            };
            use $crate::store::sql::grants::{
                CodeRow, CodeUseRow, GrantRow, RefreshRow,
            };
            use $crate::store::{GrantStore, StoreError};

            #[async_trait::async_trait]
            impl GrantStore for $store {
                async fn insert_grant_with_code(
                    &self,
                    g: &Grant,
                    c: &AuthorizationCode,
                ) -> Result<(), StoreError> {
                    let mut tx = self.pool.begin().await?;
                    $crate::store::sql::grants::insert_grant!(&mut *tx, g);
                    sqlx::query(
                        "INSERT INTO authorization_codes (code_hash, grant_id, client_id, \
                         redirect_uri, code_challenge, nonce, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&c.code_hash)
                    .bind(&c.grant_id)
                    .bind(&c.client_id)
                    .bind(&c.redirect_uri)
                    .bind(&c.code_challenge)
                    .bind(&c.nonce)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .execute(&mut *tx)
                    .await?;
                    // Expired codes are of no use to anyone; drop them here.
                    sqlx::query("DELETE FROM authorization_codes WHERE expires_at < $1")
                        .bind(c.created_at - 86_400)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn consume_code(
                    &self,
                    code_hash: &str,
                    client_id: &str,
                    now: UnixTime,
                ) -> Result<CodeRedemption, StoreError> {
                    // The conditional UPDATE is the atomic step: exactly one
                    // caller sees `consumed_at IS NULL`.
                    let redeemed: Option<CodeRow> = sqlx::query_as(
                        "UPDATE authorization_codes SET consumed_at = $3 \
                         WHERE code_hash = $1 AND client_id = $2 AND consumed_at IS NULL \
                         RETURNING code_hash, grant_id, client_id, redirect_uri, code_challenge, \
                         nonce, created_at, expires_at",
                    )
                    .bind(code_hash)
                    .bind(client_id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                    if let Some(row) = redeemed {
                        return Ok(CodeRedemption::Redeemed(row.into()));
                    }
                    let used: Option<CodeUseRow> = sqlx::query_as(
                        "SELECT grant_id, client_id, consumed_at FROM authorization_codes \
                         WHERE code_hash = $1",
                    )
                    .bind(code_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(match used {
                        Some(CodeUseRow {
                            grant_id,
                            client_id: owner,
                            consumed_at: Some(_),
                        }) if owner == client_id => CodeRedemption::Replayed { grant_id },
                        _ => CodeRedemption::Unknown,
                    })
                }

                async fn pending_code_grant(
                    &self,
                    code_hash: &str,
                    client_id: &str,
                    now: UnixTime,
                ) -> Result<Option<Grant>, StoreError> {
                    let row: Option<GrantRow> = sqlx::query_as(
                        "SELECT g.grant_id, g.client_id, g.sub, g.scope, g.auth_time, g.sid, \
                         g.created_at, g.expires_at, g.revoked_at, g.resources \
                         FROM authorization_codes c JOIN grants g ON g.grant_id = c.grant_id \
                         WHERE c.code_hash = $1 AND c.client_id = $2 \
                         AND c.consumed_at IS NULL AND c.expires_at > $3",
                    )
                    .bind(code_hash)
                    .bind(client_id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Grant::try_from).transpose()
                }

                async fn grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
                    let row: Option<GrantRow> = sqlx::query_as(
                        "SELECT grant_id, client_id, sub, scope, auth_time, sid, created_at, \
                         expires_at, revoked_at, resources FROM grants WHERE grant_id = $1",
                    )
                    .bind(grant_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Grant::try_from).transpose()
                }

                async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> Result<(), StoreError> {
                    sqlx::query(
                        "UPDATE grants SET revoked_at = $2 \
                         WHERE grant_id = $1 AND revoked_at IS NULL",
                    )
                    .bind(grant_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn insert_refresh_token(&self, t: &RefreshToken) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, \
                         rotated_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&t.token_hash)
                    .bind(&t.grant_id)
                    .bind(t.created_at)
                    .bind(t.expires_at)
                    .bind(t.rotated_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn refresh_token(
                    &self,
                    token_hash: &str,
                ) -> Result<Option<RefreshToken>, StoreError> {
                    let row: Option<RefreshRow> = sqlx::query_as(
                        "SELECT token_hash, grant_id, created_at, expires_at, rotated_at \
                         FROM refresh_tokens WHERE token_hash = $1",
                    )
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(RefreshToken::from))
                }

                async fn rotate_refresh_token(
                    &self,
                    old_hash: &str,
                    new: &RefreshToken,
                    now: UnixTime,
                    grace: i64,
                ) -> Result<RefreshRotation, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    // The conditional UPDATE is the atomic step: of two racing
                    // callers only one sees `rotated_at IS NULL`.
                    let fresh = sqlx::query(
                        "UPDATE refresh_tokens SET rotated_at = $2 \
                         WHERE token_hash = $1 AND rotated_at IS NULL AND expires_at > $2",
                    )
                    .bind(old_hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    let outcome = if fresh {
                        RefreshRotation::Rotated
                    } else {
                        let old: Option<RefreshRow> = sqlx::query_as(
                            "SELECT token_hash, grant_id, created_at, expires_at, rotated_at \
                             FROM refresh_tokens WHERE token_hash = $1",
                        )
                        .bind(old_hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                        match old {
                            Some(RefreshRow {
                                grant_id,
                                rotated_at: Some(rotated),
                                ..
                            }) if grace > 0 && now - rotated <= grace => {
                                // Issue 7.9: a racing refresh within the
                                // window. The successor is derived from the
                                // old token, so this caller holds the one
                                // the first rotation stored (in its own
                                // transaction, committed before ours saw
                                // `rotated_at`): answer with it, never
                                // store a second live branch. A successor
                                // not stored (rotated by a version that drew
                                // it at random) cannot be handed out.
                                let stored: Option<String> = sqlx::query_scalar(
                                    "SELECT token_hash FROM refresh_tokens \
                                     WHERE token_hash = $1 AND grant_id = $2",
                                )
                                .bind(&new.token_hash)
                                .bind(grant_id)
                                .fetch_optional(&mut *tx)
                                .await?;
                                if stored.is_some() {
                                    RefreshRotation::Rotated
                                } else {
                                    RefreshRotation::Invalid
                                }
                            }
                            Some(RefreshRow {
                                grant_id,
                                rotated_at: Some(_),
                                ..
                            }) => {
                                sqlx::query(
                                    "UPDATE grants SET revoked_at = $2 \
                                     WHERE grant_id = $1 AND revoked_at IS NULL",
                                )
                                .bind(grant_id)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                                RefreshRotation::Reused
                            }
                            _ => RefreshRotation::Invalid,
                        }
                    };
                    if fresh {
                        sqlx::query(
                            "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, \
                             expires_at, rotated_at) VALUES ($1, $2, $3, $4, NULL)",
                        )
                        .bind(&new.token_hash)
                        .bind(&new.grant_id)
                        .bind(new.created_at)
                        .bind(new.expires_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(outcome)
                }

                async fn prune_grants(
                    &self,
                    now: UnixTime,
                    keep_after_end: i64,
                ) -> Result<u64, StoreError> {
                    // A grant has ended when it expired or was revoked; its
                    // tokens go with it once `keep_after_end` has passed.
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(
                        "DELETE FROM refresh_tokens WHERE expires_at <= $2 OR grant_id IN \
                         (SELECT grant_id FROM grants WHERE expires_at + $1 <= $2 \
                          OR (revoked_at IS NOT NULL AND revoked_at + $1 <= $2))",
                    )
                    .bind(keep_after_end)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "DELETE FROM authorization_codes WHERE expires_at + $1 <= $2 OR grant_id IN \
                         (SELECT grant_id FROM grants WHERE expires_at + $1 <= $2 \
                          OR (revoked_at IS NOT NULL AND revoked_at + $1 <= $2))",
                    )
                    .bind(keep_after_end)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let grants = sqlx::query(
                        "DELETE FROM grants WHERE expires_at + $1 <= $2 \
                         OR (revoked_at IS NOT NULL AND revoked_at + $1 <= $2)",
                    )
                    .bind(keep_after_end)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    tx.commit().await?;
                    Ok(grants)
                }

                async fn grants_of_user(
                    &self,
                    sub: &str,
                    after: Option<(UnixTime, &str)>,
                    limit: i64,
                ) -> Result<Vec<Grant>, StoreError> {
                    let rows: Vec<GrantRow> = match after {
                        None => {
                            sqlx::query_as(
                                "SELECT grant_id, client_id, sub, scope, auth_time, sid, \
                                 created_at, expires_at, revoked_at, resources FROM grants WHERE sub = $1 \
                                 ORDER BY created_at DESC, grant_id DESC LIMIT $2",
                            )
                            .bind(sub)
                            .bind(limit)
                            .fetch_all(&self.pool)
                            .await?
                        }
                        Some((created_at, grant_id)) => {
                            sqlx::query_as(
                                "SELECT grant_id, client_id, sub, scope, auth_time, sid, \
                                 created_at, expires_at, revoked_at, resources FROM grants WHERE sub = $1 \
                                 AND (created_at < $2 OR (created_at = $2 AND grant_id < $3)) \
                                 ORDER BY created_at DESC, grant_id DESC LIMIT $4",
                            )
                            .bind(sub)
                            .bind(created_at)
                            .bind(grant_id)
                            .bind(limit)
                            .fetch_all(&self.pool)
                            .await?
                        }
                    };
                    rows.into_iter().map(Grant::try_from).collect()
                }
            }
        };
    };
}
pub(crate) use grants_sql;
