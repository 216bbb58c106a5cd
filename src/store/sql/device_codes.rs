//! Device authorizations (RFC 8628): the device code's hash is the key,
//! the user code's hash is unique, and expired rows are pruned.

use super::scope_from_column;
use crate::domain::{DeviceAuthorization, DeviceDecision};
use crate::store::StoreError;

/// The columns of a `device_codes` row, in `DeviceRow` order.
macro_rules! device_columns {
    () => {
        "device_code_hash, user_code_hash, client_id, scope, interval_secs, last_polled_at, \
         sub, auth_time, sid, denied_at, consumed_at, created_at, expires_at"
    };
}
pub(crate) use device_columns;

/// A `device_codes` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct DeviceRow {
    pub device_code_hash: String,
    pub user_code_hash: String,
    pub client_id: String,
    pub scope: String,
    pub interval_secs: i64,
    pub last_polled_at: Option<i64>,
    pub sub: Option<String>,
    pub auth_time: Option<i64>,
    pub sid: Option<String>,
    pub denied_at: Option<i64>,
    pub consumed_at: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl TryFrom<DeviceRow> for DeviceAuthorization {
    type Error = StoreError;

    fn try_from(row: DeviceRow) -> Result<Self, StoreError> {
        // Hashes are not secrets, but the first characters are enough to
        // name a corrupt row.
        let name = row.device_code_hash.chars().take(8).collect::<String>();
        let scope = scope_from_column(&row.scope, "device code", &name)?;
        let decision = match (row.sub, row.auth_time, row.denied_at) {
            (None, None, None) => DeviceDecision::Pending,
            (Some(sub), Some(auth_time), None) => DeviceDecision::Approved {
                sub,
                auth_time,
                sid: row.sid,
            },
            (None, None, Some(at)) => DeviceDecision::Denied { at },
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "device code {name}: both approved and denied"
                )));
            }
        };
        Ok(DeviceAuthorization {
            device_code_hash: row.device_code_hash,
            user_code_hash: row.user_code_hash,
            client_id: row.client_id,
            scope,
            interval_secs: row.interval_secs,
            last_polled_at: row.last_polled_at,
            decision,
            consumed_at: row.consumed_at,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }
}

/// What a redemption reads back from the row it used up.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct RedeemedRow {
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub auth_time: i64,
    pub sid: Option<String>,
}

/// `DeviceCodeStore`.
macro_rules! device_codes_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::{DeviceAuthorization, Grant};
            use $crate::store::sql::device_codes::{DeviceRow, RedeemedRow, device_columns};
            use $crate::store::sql::{conflict, scope_from_column};
            use $crate::store::{DeviceCodeStore, StoreError};

            #[async_trait::async_trait]
            impl DeviceCodeStore for $store {
                async fn insert_device_code(
                    &self,
                    d: &DeviceAuthorization,
                ) -> Result<(), StoreError> {
                    sqlx::query(concat!(
                        "INSERT INTO device_codes (",
                        device_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, NULL, $7, $8, $9)"
                    ))
                    .bind(&d.device_code_hash)
                    .bind(&d.user_code_hash)
                    .bind(&d.client_id)
                    .bind(d.scope.to_string())
                    .bind(d.interval_secs)
                    .bind(d.last_polled_at)
                    .bind(d.consumed_at)
                    .bind(d.created_at)
                    .bind(d.expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| conflict(e, "the user code is taken"))?;
                    Ok(())
                }

                async fn device_code(
                    &self,
                    device_code_hash: &str,
                ) -> Result<Option<DeviceAuthorization>, StoreError> {
                    let row: Option<DeviceRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        device_columns!(),
                        " FROM device_codes WHERE device_code_hash = $1"
                    ))
                    .bind(device_code_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(DeviceAuthorization::try_from).transpose()
                }

                async fn pending_device_code(
                    &self,
                    user_code_hash: &str,
                    now: UnixTime,
                ) -> Result<Option<DeviceAuthorization>, StoreError> {
                    let row: Option<DeviceRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        device_columns!(),
                        " FROM device_codes WHERE user_code_hash = $1 AND sub IS NULL \
                         AND denied_at IS NULL AND expires_at > $2"
                    ))
                    .bind(user_code_hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(DeviceAuthorization::try_from).transpose()
                }

                async fn record_device_poll(
                    &self,
                    device_code_hash: &str,
                    now: UnixTime,
                    slow_down_secs: i64,
                ) -> Result<Option<i64>, StoreError> {
                    // One statement: racing polls each see the others'.
                    Ok(sqlx::query_scalar(
                        "UPDATE device_codes SET \
                         interval_secs = CASE WHEN last_polled_at IS NOT NULL \
                                              AND $2 < last_polled_at + interval_secs \
                                         THEN interval_secs + $3 ELSE interval_secs END, \
                         last_polled_at = $2 \
                         WHERE device_code_hash = $1 RETURNING interval_secs",
                    )
                    .bind(device_code_hash)
                    .bind(now)
                    .bind(slow_down_secs)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn approve_device_code(
                    &self,
                    user_code_hash: &str,
                    sub: &str,
                    auth_time: UnixTime,
                    sid: Option<&str>,
                    now: UnixTime,
                ) -> Result<bool, StoreError> {
                    Ok(sqlx::query(
                        "UPDATE device_codes SET sub = $2, auth_time = $3, sid = $4 \
                         WHERE user_code_hash = $1 AND sub IS NULL AND denied_at IS NULL \
                         AND expires_at > $5",
                    )
                    .bind(user_code_hash)
                    .bind(sub)
                    .bind(auth_time)
                    .bind(sid)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                        == 1)
                }

                async fn deny_device_code(
                    &self,
                    user_code_hash: &str,
                    now: UnixTime,
                ) -> Result<bool, StoreError> {
                    Ok(sqlx::query(
                        "UPDATE device_codes SET denied_at = $2 \
                         WHERE user_code_hash = $1 AND sub IS NULL AND denied_at IS NULL \
                         AND expires_at > $2",
                    )
                    .bind(user_code_hash)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                        == 1)
                }

                async fn redeem_device_code(
                    &self,
                    device_code_hash: &str,
                    client_id: &str,
                    grant_id: &str,
                    grant_expires_at: UnixTime,
                    now: UnixTime,
                ) -> Result<Option<Grant>, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    // Racing UPDATEs of one row: one sets consumed_at, the
                    // others (after waiting on its row lock, or on SQLite's
                    // single writer) no longer match.
                    let row: Option<RedeemedRow> = sqlx::query_as(
                        "UPDATE device_codes SET consumed_at = $3 \
                         WHERE device_code_hash = $1 AND client_id = $2 AND sub IS NOT NULL \
                         AND consumed_at IS NULL AND expires_at > $3 \
                         RETURNING client_id, sub, scope, auth_time, sid",
                    )
                    .bind(device_code_hash)
                    .bind(client_id)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    let grant = Grant {
                        grant_id: grant_id.to_string(),
                        scope: scope_from_column(&row.scope, "grant", grant_id)?,
                        client_id: row.client_id,
                        sub: row.sub,
                        auth_time: row.auth_time,
                        sid: row.sid,
                        created_at: now,
                        expires_at: grant_expires_at,
                        revoked_at: None,
                        resources: Vec::new(),
                    };
                    $crate::store::sql::grants::insert_grant!(&mut *tx, &grant);
                    tx.commit().await?;
                    Ok(Some(grant))
                }

                async fn prune_device_codes(&self, now: UnixTime) -> Result<u64, StoreError> {
                    Ok(
                        sqlx::query("DELETE FROM device_codes WHERE expires_at <= $1")
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
pub(crate) use device_codes_sql;
