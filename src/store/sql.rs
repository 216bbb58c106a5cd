//! The SQL both backends share. Placeholders are `$N`, which SQLite and
//! PostgreSQL both accept; the schema is the same on both. A backend type
//! provides `pool` and `begin_locked()`, then invokes `sql_store!`.

use crate::domain::{Client, ClientMetadata};
use crate::jose::{KeyState, SigningAlg, SigningKeyRecord};

use super::StoreError;
use crate::domain::{AuthorizationCode, Grant, Interaction, LoginFailures, RefreshToken, User};

pub(super) type ClientRow = (String, Option<String>, String, i64);

pub(super) fn client_from_row(row: ClientRow) -> Result<Client, StoreError> {
    let (client_id, secret_hash, metadata, created_at) = row;
    let metadata: ClientMetadata = serde_json::from_str(&metadata)
        .map_err(|e| StoreError::Corrupt(format!("client {client_id}: {e}")))?;
    Ok(Client {
        client_id,
        secret_hash,
        metadata,
        created_at,
    })
}

pub(super) type KeyRow = (
    String,
    String,
    String,
    Vec<u8>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

pub(super) const KEY_COLUMNS: &str =
    "kid, alg, state, private_key, public_jwk, created_at, activated_at, retired_at";

pub(super) fn key_from_row(row: KeyRow) -> Result<SigningKeyRecord, StoreError> {
    let (kid, alg, state, private_key, public_jwk, created_at, activated_at, retired_at) = row;
    Ok(SigningKeyRecord {
        alg: SigningAlg::parse(&alg)
            .ok_or_else(|| StoreError::Corrupt(format!("key {kid}: algorithm {alg:?}")))?,
        state: KeyState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("key {kid}: state {state:?}")))?,
        kid,
        private_key,
        public_jwk,
        created_at,
        activated_at,
        retired_at,
    })
}

pub(super) type UserRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
);
pub(super) const USER_COLUMNS: &str =
    "sub, username, password_hash, email, name, created_at, updated_at";

pub(super) fn user_from_row(row: UserRow) -> User {
    let (sub, username, password_hash, email, name, created_at, updated_at) = row;
    User {
        sub,
        username,
        password_hash,
        email,
        name,
        created_at,
        updated_at,
    }
}

pub(super) type GrantRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);
pub(super) const GRANT_COLUMNS: &str =
    "grant_id, client_id, sub, scope, auth_time, sid, created_at, expires_at, revoked_at";

pub(super) fn grant_from_row(row: GrantRow) -> Result<Grant, StoreError> {
    let (grant_id, client_id, sub, scope, auth_time, sid, created_at, expires_at, revoked_at) = row;
    let scope = scope_from_column(&scope, "grant", &grant_id)?;
    Ok(Grant {
        grant_id,
        client_id,
        sub,
        scope,
        auth_time,
        sid,
        created_at,
        expires_at,
        revoked_at,
    })
}

/// A stored scope that does not parse is corrupt data, never an empty scope.
pub(super) fn scope_from_column(
    text: &str,
    what: &str,
    id: &str,
) -> Result<crate::domain::ScopeSet, StoreError> {
    crate::domain::ScopeSet::parse(text)
        .map_err(|e| StoreError::Corrupt(format!("{what} {id}: scope: {e}")))
}

pub(super) type CodeRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
);
pub(super) const CODE_COLUMNS: &str =
    "code_hash, grant_id, client_id, redirect_uri, code_challenge, nonce, created_at, expires_at";

pub(super) fn code_from_row(row: CodeRow) -> AuthorizationCode {
    let (
        code_hash,
        grant_id,
        client_id,
        redirect_uri,
        code_challenge,
        nonce,
        created_at,
        expires_at,
    ) = row;
    AuthorizationCode {
        code_hash,
        grant_id,
        client_id,
        redirect_uri,
        code_challenge,
        nonce,
        created_at,
        expires_at,
    }
}

pub(super) type LoginFailuresRow = (i64, i64, Option<i64>);

pub(super) fn login_failures_from_row(row: LoginFailuresRow) -> LoginFailures {
    let (failures, window_start, locked_until) = row;
    LoginFailures {
        failures,
        window_start,
        locked_until,
    }
}

pub(super) type RefreshRow = (String, String, i64, i64, Option<i64>);

pub(super) fn refresh_from_row(row: RefreshRow) -> RefreshToken {
    let (token_hash, grant_id, created_at, expires_at, rotated_at) = row;
    RefreshToken {
        token_hash,
        grant_id,
        created_at,
        expires_at,
        rotated_at,
    }
}

/// A unique-constraint violation becomes `Conflict(message)`.
pub(super) fn conflict(e: sqlx::Error, message: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(message.into())
        }
        _ => StoreError::Database(e),
    }
}

macro_rules! sql_store {
    ($store:ty) => {
        impl $store {
            async fn bump(
                tx: &mut sqlx::Transaction<'_, <Self as BackendDb>::Db>,
                counter: &'static str,
            ) -> Result<(), StoreError> {
                sqlx::query("UPDATE change_counters SET version = version + 1 WHERE name = $1")
                    .bind(counter)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl ClientStore for $store {
            async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
                let metadata = serde_json::to_string(&client.metadata)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
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
                    "SELECT client_id, secret_hash, metadata, created_at FROM clients WHERE client_id = $1",
                )
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(client_from_row).transpose()
            }

            async fn clients(&self) -> Result<Vec<Client>, StoreError> {
                let rows: Vec<ClientRow> = sqlx::query_as(
                    "SELECT client_id, secret_hash, metadata, created_at FROM clients \
                     ORDER BY created_at, client_id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(client_from_row).collect()
            }

            async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted > 0 {
                    Self::bump(&mut tx, "clients").await?;
                }
                tx.commit().await?;
                Ok(deleted > 0)
            }
        }

        #[async_trait::async_trait]
        impl KeyStore for $store {
            async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
                let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(key_from_row).collect()
            }

            async fn update_signing_keys(
                &self,
                plan: &KeyPlanner<'_>,
            ) -> Result<KeyChanges, StoreError> {
                let mut tx = self.begin_locked().await?;
                let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"
                )))
                .fetch_all(&mut *tx)
                .await?;
                let keys = rows
                    .into_iter()
                    .map(key_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                let changes = plan(&keys)?;
                if changes.is_empty() {
                    tx.rollback().await?;
                    return Ok(changes);
                }
                for kid in &changes.delete {
                    sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                        .bind(kid)
                        .execute(&mut *tx)
                        .await?;
                }
                for k in &changes.update {
                    sqlx::query(
                        "UPDATE signing_keys SET state = $2, activated_at = $3, retired_at = $4 \
                         WHERE kid = $1",
                    )
                    .bind(&k.kid)
                    .bind(k.state.as_str())
                    .bind(k.activated_at)
                    .bind(k.retired_at)
                    .execute(&mut *tx)
                    .await?;
                }
                for k in &changes.insert {
                    sqlx::query(
                        "INSERT INTO signing_keys (kid, alg, state, private_key, public_jwk, \
                         created_at, activated_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&k.kid)
                    .bind(k.alg.as_str())
                    .bind(k.state.as_str())
                    .bind(&k.private_key)
                    .bind(&k.public_jwk)
                    .bind(k.created_at)
                    .bind(k.activated_at)
                    .bind(k.retired_at)
                    .execute(&mut *tx)
                    .await?;
                }
                Self::bump(&mut tx, "keys").await?;
                tx.commit().await?;
                Ok(changes)
            }
        }

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
                Ok(sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl ChangeStore for $store {
            async fn change_versions(&self) -> Result<ChangeVersions, StoreError> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT name, version FROM change_counters")
                        .fetch_all(&self.pool)
                        .await?;
                let mut v = ChangeVersions::default();
                for (name, version) in rows {
                    match name.as_str() {
                        "clients" => v.clients = version,
                        "keys" => v.keys = version,
                        _ => {}
                    }
                }
                Ok(v)
            }
        }

        #[async_trait::async_trait]
        impl UserStore for $store {
            async fn insert_user(&self, u: &User) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO users (sub, username, password_hash, email, name, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&u.sub)
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(&u.email)
                .bind(&u.name)
                .bind(u.created_at)
                .bind(u.updated_at)
                .execute(&self.pool)
                .await
                .map_err(|e| conflict(e, "that username is taken"))?;
                Ok(())
            }

            async fn user(&self, sub: &str) -> Result<Option<User>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE sub = $1"
                )))
                .bind(sub)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(user_from_row))
            }

            async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
                )))
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(user_from_row))
            }

            async fn users(&self) -> Result<Vec<User>, StoreError> {
                let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY username"
                )))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(user_from_row).collect())
            }

            async fn delete_user(&self, sub: &str, now: UnixTime) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let deleted = sqlx::query("DELETE FROM users WHERE sub = $1")
                    .bind(sub)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query("DELETE FROM consents WHERE sub = $1")
                    .bind(sub)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE grants SET revoked_at = $2 WHERE sub = $1 AND revoked_at IS NULL")
                    .bind(sub)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(deleted > 0)
            }

            async fn set_password(&self, sub: &str, hash: &str, now: UnixTime) -> Result<bool, StoreError> {
                Ok(sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE sub = $1")
                    .bind(sub)
                    .bind(hash)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    > 0)
            }
        }

        #[async_trait::async_trait]
        impl GrantStore for $store {
            async fn insert_grant_with_code(
                &self,
                g: &Grant,
                c: &AuthorizationCode,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO grants (grant_id, client_id, sub, scope, auth_time, sid, created_at, \
                     expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, \
                     code_challenge, nonce, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
                let redeemed: Option<CodeRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "UPDATE authorization_codes SET consumed_at = $3 \
                     WHERE code_hash = $1 AND client_id = $2 AND consumed_at IS NULL \
                     RETURNING {CODE_COLUMNS}"
                )))
                .bind(code_hash)
                .bind(client_id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = redeemed {
                    return Ok(CodeRedemption::Redeemed(code_from_row(row)));
                }
                let used: Option<(String, String, Option<i64>)> = sqlx::query_as(
                    "SELECT grant_id, client_id, consumed_at FROM authorization_codes WHERE code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(match used {
                    Some((grant_id, owner, Some(_))) if owner == client_id => {
                        CodeRedemption::Replayed { grant_id }
                    }
                    _ => CodeRedemption::Unknown,
                })
            }

            async fn grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
                let row: Option<GrantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE grant_id = $1"
                )))
                .bind(grant_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(grant_from_row).transpose()
            }

            async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> Result<(), StoreError> {
                sqlx::query("UPDATE grants SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL")
                    .bind(grant_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn insert_refresh_token(&self, t: &RefreshToken) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, rotated_at) \
                     VALUES ($1, $2, $3, $4, $5)",
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

            async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, StoreError> {
                let row: Option<RefreshRow> = sqlx::query_as(
                    "SELECT token_hash, grant_id, created_at, expires_at, rotated_at \
                     FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(refresh_from_row))
            }

            async fn prune_grants(&self, now: UnixTime, keep_after_end: i64) -> Result<u64, StoreError> {
                let mut tx = self.pool.begin().await?;
                let ended = "SELECT grant_id FROM grants WHERE expires_at + $1 <= $2 \
                             OR (revoked_at IS NOT NULL AND revoked_at + $1 <= $2)";
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM refresh_tokens WHERE expires_at <= $2 OR grant_id IN ({ended})"
                )))
                .bind(keep_after_end)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM authorization_codes WHERE expires_at + $1 <= $2 OR grant_id IN ({ended})"
                )))
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
                    let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
                        "SELECT grant_id, expires_at, rotated_at FROM refresh_tokens WHERE token_hash = $1",
                    )
                    .bind(old_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match row {
                        Some((_, _, Some(rotated))) if grace > 0 && now - rotated <= grace => {
                            RefreshRotation::Rotated
                        }
                        Some((grant_id, _, Some(_))) => {
                            sqlx::query(
                                "UPDATE grants SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL",
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
                if matches!(outcome, RefreshRotation::Rotated) {
                    sqlx::query(
                        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, rotated_at) \
                         VALUES ($1, $2, $3, $4, NULL)",
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
        }

        #[async_trait::async_trait]
        impl ConsentStore for $store {
            async fn consent(
                &self,
                sub: &str,
                client_id: &str,
            ) -> Result<Option<crate::domain::ScopeSet>, StoreError> {
                let scope: Option<String> =
                    sqlx::query_scalar("SELECT scope FROM consents WHERE sub = $1 AND client_id = $2")
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
                scope: &crate::domain::ScopeSet,
                now: UnixTime,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO consents (sub, client_id, scope, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (sub, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
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

        #[async_trait::async_trait]
        impl LoginThrottleStore for $store {
            async fn login_failures(&self, key: &str) -> Result<Option<LoginFailures>, StoreError> {
                let row: Option<LoginFailuresRow> = sqlx::query_as(
                    "SELECT failures, window_start, locked_until FROM login_failures WHERE key = $1",
                )
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(login_failures_from_row))
            }

            async fn count_login_attempt(
                &self,
                key: &str,
                now: UnixTime,
                window_secs: i64,
            ) -> Result<LoginFailures, StoreError> {
                // One statement: concurrent attempts each see the count
                // including all earlier ones (PostgreSQL re-reads the locked
                // row on conflict; SQLite runs one writer at a time).
                let row: LoginFailuresRow = sqlx::query_as(
                    "INSERT INTO login_failures (key, failures, window_start, locked_until) VALUES ($1, 1, $2, NULL) \
                     ON CONFLICT (key) DO UPDATE SET \
                     failures = CASE WHEN login_failures.locked_until > $2 THEN login_failures.failures \
                                     WHEN login_failures.window_start + $3 > $2 THEN login_failures.failures + 1 \
                                     ELSE 1 END, \
                     window_start = CASE WHEN login_failures.locked_until > $2 THEN login_failures.window_start \
                                         WHEN login_failures.window_start + $3 > $2 THEN login_failures.window_start \
                                         ELSE $2 END \
                     RETURNING failures, window_start, locked_until",
                )
                .bind(key)
                .bind(now)
                .bind(window_secs)
                .fetch_one(&self.pool)
                .await?;
                Ok(login_failures_from_row(row))
            }

            async fn lock_login(
                &self,
                key: &str,
                now: UnixTime,
                until: UnixTime,
            ) -> Result<LoginFailures, StoreError> {
                let row: LoginFailuresRow = sqlx::query_as(
                    "INSERT INTO login_failures (key, failures, window_start, locked_until) VALUES ($1, 0, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET failures = 0, window_start = $2, \
                     locked_until = CASE WHEN login_failures.locked_until > $3 THEN login_failures.locked_until \
                                         ELSE $3 END \
                     RETURNING failures, window_start, locked_until",
                )
                .bind(key)
                .bind(now)
                .bind(until)
                .fetch_one(&self.pool)
                .await?;
                Ok(login_failures_from_row(row))
            }

            async fn return_login_attempt(&self, key: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE login_failures SET failures = failures - 1 WHERE key = $1 AND failures > 0")
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn clear_login_failures(&self, key: &str, now: UnixTime) -> Result<(), StoreError> {
                sqlx::query(
                    "DELETE FROM login_failures WHERE key = $1 AND (locked_until IS NULL OR locked_until <= $2)",
                )
                .bind(key)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
            async fn prune_login_failures(&self, now: UnixTime, window_secs: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "DELETE FROM login_failures WHERE window_start + $2 <= $1 \
                     AND (locked_until IS NULL OR locked_until <= $1)",
                )
                .bind(now)
                .bind(window_secs)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl SessionRecordStore for $store {
            async fn create_session(&self, id: &str, data: &[u8], expires_at: UnixTime) -> Result<bool, StoreError> {
                Ok(sqlx::query(
                    "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(data)
                .bind(expires_at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn save_session(&self, id: &str, data: &[u8], expires_at: UnixTime) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
                )
                .bind(id)
                .bind(data)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn load_session(&self, id: &str, now: UnixTime) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(sqlx::query_scalar("SELECT data FROM sessions WHERE id = $1 AND expires_at > $2")
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM sessions WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn prune_sessions(&self, now: UnixTime) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl InteractionStore for $store {
            async fn insert_interaction(&self, i: &Interaction) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO interactions (id, client_id, request, browser_hash, csrf_hash, sub, \
                     auth_time, amr, acr, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&i.id)
                .bind(&i.client_id)
                .bind(&i.request)
                .bind(&i.browser_hash)
                .bind(&i.csrf_hash)
                .bind(&i.sub)
                .bind(i.auth_time)
                .bind(i.amr.join(" "))
                .bind(&i.acr)
                .bind(i.created_at)
                .bind(i.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn interaction(&self, id: &str, now: UnixTime) -> Result<Option<Interaction>, StoreError> {
                let row: Option<InteractionRow> = sqlx::query_as(
                    "SELECT id, client_id, request, browser_hash, csrf_hash, sub, auth_time, amr, acr, \
                     created_at, expires_at FROM interactions WHERE id = $1 AND expires_at > $2",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(interaction_from_row))
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
                let updated = sqlx::query(
                    "UPDATE interactions SET sub = $2, auth_time = $3, amr = $4, acr = $5 \
                     WHERE id = $1 AND expires_at > $6",
                )
                .bind(id)
                .bind(sub)
                .bind(auth_time)
                .bind(amr.join(" "))
                .bind(acr)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(updated > 0)
            }

            async fn finish_interaction(&self, id: &str) -> Result<bool, StoreError> {
                let deleted = sqlx::query("DELETE FROM interactions WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(deleted > 0)
            }

            async fn prune_interactions(&self, now: UnixTime) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM interactions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }
    };
}
pub(super) use sql_store;

pub(super) type InteractionRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    String,
    Option<String>,
    i64,
    i64,
);

pub(super) fn interaction_from_row(row: InteractionRow) -> Interaction {
    let (
        id,
        client_id,
        request,
        browser_hash,
        csrf_hash,
        sub,
        auth_time,
        amr,
        acr,
        created_at,
        expires_at,
    ) = row;
    Interaction {
        id,
        client_id,
        request,
        browser_hash,
        csrf_hash,
        sub,
        auth_time,
        amr: amr
            .split(' ')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
        acr,
        created_at,
        expires_at,
    }
}

/// Names the sqlx database type of a backend, for the shared SQL.
pub(super) trait BackendDb {
    type Db: sqlx::Database;
}
