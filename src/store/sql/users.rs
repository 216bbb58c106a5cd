//! People who sign in.

use crate::domain::User;

/// A `users` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct UserRow {
    pub sub: String,
    pub username: String,
    pub password_hash: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            sub: row.sub,
            username: row.username,
            password_hash: row.password_hash,
            email: row.email,
            name: row.name,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// `UserStore`.
macro_rules! users_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::User;
            use $crate::store::sql::conflict;
            use $crate::store::sql::users::UserRow;
            use $crate::store::{StoreError, UserStore};

            #[async_trait::async_trait]
            impl UserStore for $store {
                async fn insert_user(&self, u: &User) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO users (sub, username, password_hash, email, name, \
                         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
                    let row: Option<UserRow> = sqlx::query_as(
                        "SELECT sub, username, password_hash, email, name, created_at, updated_at \
                         FROM users WHERE sub = $1",
                    )
                    .bind(sub)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(User::from))
                }

                async fn user_by_username(
                    &self,
                    username: &str,
                ) -> Result<Option<User>, StoreError> {
                    let row: Option<UserRow> = sqlx::query_as(
                        "SELECT sub, username, password_hash, email, name, created_at, updated_at \
                         FROM users WHERE username = $1",
                    )
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(User::from))
                }

                async fn users(&self) -> Result<Vec<User>, StoreError> {
                    let rows: Vec<UserRow> = sqlx::query_as(
                        "SELECT sub, username, password_hash, email, name, created_at, updated_at \
                         FROM users ORDER BY username",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(User::from).collect())
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
                    sqlx::query(
                        "UPDATE grants SET revoked_at = $2 WHERE sub = $1 AND revoked_at IS NULL",
                    )
                    .bind(sub)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    // A deleted person is signed in nowhere any more (and
                    // the clients that got tokens in those sessions are
                    // told, OIDC Back-Channel Logout), and their API keys
                    // stop working.
                    $crate::store::sql::backchannel::end_sessions_and_queue_logouts!(
                        &mut *tx,
                        sub,
                        None::<String>,
                        now
                    );
                    sqlx::query($crate::store::sql::api_keys::REVOKE_KEYS_OF_OWNER)
                        .bind("user")
                        .bind(sub)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(deleted > 0)
                }

                async fn set_password(
                    &self,
                    sub: &str,
                    hash: &str,
                    now: UnixTime,
                    keep_session: Option<&str>,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let changed = sqlx::query(
                        "UPDATE users SET password_hash = $2, updated_at = $3 WHERE sub = $1",
                    )
                    .bind(sub)
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        > 0;
                    if !changed {
                        return Ok(false);
                    }
                    // Issue 7.7: whoever knew the old password keeps nothing
                    // it got them: no grant (so no refresh or access token
                    // issued under one) and no other session.
                    sqlx::query(
                        "UPDATE grants SET revoked_at = $2 WHERE sub = $1 AND revoked_at IS NULL",
                    )
                    .bind(sub)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    // The clients that got tokens in the ended sessions
                    // are told (OIDC Back-Channel Logout).
                    $crate::store::sql::backchannel::end_sessions_and_queue_logouts!(
                        &mut *tx,
                        sub,
                        keep_session.map($crate::crypto::hash_secret),
                        now
                    );
                    tx.commit().await?;
                    Ok(true)
                }

                async fn users_page(
                    &self,
                    after_username: Option<&str>,
                    limit: i64,
                ) -> Result<Vec<User>, StoreError> {
                    let rows: Vec<UserRow> = sqlx::query_as(
                        "SELECT sub, username, password_hash, email, name, created_at, updated_at \
                         FROM users WHERE $1 IS NULL OR username > $1 ORDER BY username LIMIT $2",
                    )
                    .bind(after_username)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(User::from).collect())
                }

                async fn update_user_profile(
                    &self,
                    sub: &str,
                    email: Option<&str>,
                    name: Option<&str>,
                    now: UnixTime,
                ) -> Result<bool, StoreError> {
                    Ok(sqlx::query(
                        "UPDATE users SET email = $2, name = $3, updated_at = $4 WHERE sub = $1",
                    )
                    .bind(sub)
                    .bind(email)
                    .bind(name)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                        > 0)
                }
            }
        };
    };
}
pub(crate) use users_sql;
