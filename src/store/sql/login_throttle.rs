//! Sign-in attempt counters for `auth::throttle`.

use crate::domain::LoginFailures;

/// A `login_failures` row, without its key.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct LoginFailuresRow {
    pub failures: i64,
    pub window_start: i64,
    pub locked_until: Option<i64>,
}

impl From<LoginFailuresRow> for LoginFailures {
    fn from(row: LoginFailuresRow) -> Self {
        LoginFailures {
            failures: row.failures,
            window_start: row.window_start,
            locked_until: row.locked_until,
        }
    }
}

/// `LoginThrottleStore`: every write is one statement, atomic on both
/// backends.
macro_rules! login_throttle_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::LoginFailures;
            use $crate::store::sql::login_throttle::LoginFailuresRow;
            use $crate::store::{LoginThrottleStore, StoreError};

            #[async_trait::async_trait]
            impl LoginThrottleStore for $store {
                async fn login_failures(
                    &self,
                    key: &str,
                ) -> Result<Option<LoginFailures>, StoreError> {
                    let row: Option<LoginFailuresRow> = sqlx::query_as(
                        "SELECT failures, window_start, locked_until FROM login_failures \
                         WHERE key = $1",
                    )
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(LoginFailures::from))
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
                        "INSERT INTO login_failures (key, failures, window_start, locked_until) \
                         VALUES ($1, 1, $2, NULL) \
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
                    Ok(row.into())
                }

                async fn lock_login(
                    &self,
                    key: &str,
                    now: UnixTime,
                    until: UnixTime,
                ) -> Result<LoginFailures, StoreError> {
                    let row: LoginFailuresRow = sqlx::query_as(
                        "INSERT INTO login_failures (key, failures, window_start, locked_until) \
                         VALUES ($1, 0, $2, $3) \
                         ON CONFLICT (key) DO UPDATE SET failures = 0, window_start = $2, \
                         locked_until = CASE WHEN login_failures.locked_until > $3 \
                                             THEN login_failures.locked_until ELSE $3 END \
                         RETURNING failures, window_start, locked_until",
                    )
                    .bind(key)
                    .bind(now)
                    .bind(until)
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(row.into())
                }

                async fn remember_login_until(
                    &self,
                    key: &str,
                    now: UnixTime,
                    until: UnixTime,
                ) -> Result<(), StoreError> {
                    self.lock_login(key, now, until).await.map(|_| ())
                }

                async fn return_login_attempt(&self, key: &str) -> Result<(), StoreError> {
                    sqlx::query(
                        "UPDATE login_failures SET failures = failures - 1 \
                         WHERE key = $1 AND failures > 0",
                    )
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn clear_login_failures(
                    &self,
                    key: &str,
                    now: UnixTime,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "DELETE FROM login_failures \
                         WHERE key = $1 AND (locked_until IS NULL OR locked_until <= $2)",
                    )
                    .bind(key)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn prune_login_failures(
                    &self,
                    now: UnixTime,
                    window_secs: i64,
                ) -> Result<u64, StoreError> {
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
        };
    };
}
pub(crate) use login_throttle_sql;
